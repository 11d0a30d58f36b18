//! An export flow's keys: outbox, selection, template, file name and mark.

use std::path::PathBuf;

use super::ConfigError;
use super::read::{Item, Node};

/// An export flow's settings, read but not run yet.
#[derive(Debug, Clone)]
pub struct ExportFlow {
    /// `outbox`: the folder files are published in (required).
    pub outbox: String,
    /// `model`, default `stock.picking`.
    pub model: String,
    /// `domain` as JSON, default outgoing pickings in state `assigned`.
    pub domain: serde_json::Value,
    /// `template`, default `builtin:picking`.
    pub template: String,
    /// `schema`, relative to the config file (not checked yet).
    pub schema: Option<PathBuf>,
    /// `filename`, default `{name}.xml`.
    pub filename: String,
    /// `mark = "field"` or `{ field = "x_edi_exported" }`: the Odoo field set once published.
    pub mark: Option<String>,
}

/// Export flows are read so today's configs keep working; the export pipeline comes later.
pub(super) fn parse_export(t: &mut Node) -> Result<ExportFlow, ConfigError> {
    let outbox = t
        .require(
            "outbox",
            "the folder files are published in, e.g. outbox = \"/in/orders\"",
        )?
        .text()?;
    let model = t.take("model").map(Item::model_name).transpose()?;
    let domain = t.take("domain").map(Item::json).transpose()?;
    let template = t.take("template").map(Item::text).transpose()?;
    let schema = t.take("schema").map(Item::path).transpose()?;
    let filename = t.take("filename").map(Item::text).transpose()?;
    let mark = match t.take("mark") {
        None => None,
        Some(item) if item.value.is_str() => Some(item.text()?),
        Some(item) => {
            let mut mark = item.table_or("a field name or { field = \"x_edi_exported\" }")?;
            let field = mark
                .require("field", "the Odoo field set once published")?
                .identifier()?;
            mark.finish()?;
            Some(field)
        }
    };
    Ok(ExportFlow {
        outbox,
        model: model.unwrap_or_else(|| "stock.picking".to_string()),
        domain: domain.unwrap_or_else(|| {
            serde_json::json!([
                ["picking_type_code", "=", "outgoing"],
                ["state", "=", "assigned"]
            ])
        }),
        template: template.unwrap_or_else(|| "builtin:picking".to_string()),
        schema,
        filename: filename.unwrap_or_else(|| "{name}.xml".to_string()),
        mark,
    })
}
