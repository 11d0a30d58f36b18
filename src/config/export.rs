//! An export flow's keys: outbox, selection, template, schema, file name, mark and notes.

use std::path::PathBuf;

use super::ConfigError;
use super::read::{Item, Node};

/// An export flow's settings.
#[derive(Debug, Clone)]
pub struct ExportFlow {
    /// `outbox`: the folder files are published in (required).
    pub outbox: String,
    /// `model`, default `stock.picking`.
    pub model: String,
    /// `domain` as JSON, default outgoing pickings in state `assigned`.
    pub domain: serde_json::Value,
    /// `template`: `builtin:picking` (default) or a template file.
    pub template: Template,
    /// `schema`, relative to the config file; without it the built-in template is validated
    /// against the canonical `picking.xsd` compiled into edi-bridge.
    pub schema: Option<PathBuf>,
    /// `filename`, default `{name}.xml`: `{name}`, `{id}`, `{origin}`, `{yyyy}`, `{mm}`,
    /// `{dd}`, `{HH}`, `{MM}`, `{SS}` (checked here).
    pub filename: String,
    /// `mark = "field"` or `{ field = "x_edi_exported" }`: the Odoo field set once published.
    pub mark: Option<String>,
    /// `chatter = true`: a note on the record names the published file.
    pub chatter: bool,
    /// `note_on_failure = true`: a note on the record says why its document was not published.
    pub note_on_failure: bool,
}

/// What renders an export flow's documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Template {
    /// `builtin:picking`: the canonical delivery order of `xsd/picking.xsd`.
    BuiltinPicking,
    /// A minijinja template file (relative to the config file), XML escaping on.
    File(PathBuf),
}

/// The placeholders `filename` may use.
pub const FILENAME_PLACEHOLDERS: &[&str] =
    &["name", "id", "origin", "yyyy", "mm", "dd", "HH", "MM", "SS"];

pub(super) fn parse_export(t: &mut Node) -> Result<ExportFlow, ConfigError> {
    let outbox = t
        .require(
            "outbox",
            "the folder files are published in, e.g. outbox = \"/in/orders\"",
        )?
        .text()?;
    let model = t.take("model").map(Item::model_name).transpose()?;
    let domain = t.take("domain").map(Item::json).transpose()?;
    if let Some(domain) = &domain
        && !domain.is_array()
    {
        return Err(t.cx.err(
            &t.child_key("domain"),
            "an Odoo domain is a list of conditions, e.g. [[\"state\", \"=\", \"assigned\"]]",
        ));
    }
    let template = match t.take("template") {
        None => Template::BuiltinPicking,
        Some(item) => {
            let key = item.key.clone();
            let cx = item.cx;
            let text = item.value.as_str().unwrap_or_default().to_string();
            if text == "builtin:picking" {
                Template::BuiltinPicking
            } else if text.starts_with("builtin:") {
                return Err(cx.err(
                    &key,
                    format!(
                        "no built-in template {text:?}; the built-in one is \"builtin:picking\""
                    ),
                ));
            } else {
                Template::File(item.existing_file()?)
            }
        }
    };
    let schema_key = t.child_key("schema");
    let schema = t.take("schema").map(Item::path).transpose()?;
    if schema.is_none() && matches!(template, Template::File(_)) {
        return Err(t.cx.err(
            &schema_key,
            "a flow with its own template needs the XSD its documents are checked against \
             before they are published, e.g. schema = \"xsd/partner-orders.xsd\"",
        ));
    }
    let filename_key = t.child_key("filename");
    let filename = t.take("filename").map(Item::text).transpose()?;
    if let Some(name) = &filename {
        check_filename(name).map_err(|m| t.cx.err(&filename_key, m))?;
    }
    let mark = match t.take("mark") {
        None => None,
        Some(item) if item.value.is_str() => Some(item.identifier()?),
        Some(item) => {
            let mut mark = item.table_or("a field name or { field = \"x_edi_exported\" }")?;
            let field = mark
                .require("field", "the Odoo field set once published")?
                .identifier()?;
            mark.finish()?;
            Some(field)
        }
    };
    let chatter = t.take("chatter").map(Item::boolean).transpose()?;
    let note_on_failure = t.take("note_on_failure").map(Item::boolean).transpose()?;
    Ok(ExportFlow {
        outbox,
        model: model.unwrap_or_else(|| "stock.picking".to_string()),
        domain: domain.unwrap_or_else(|| {
            serde_json::json!([
                ["picking_type_code", "=", "outgoing"],
                ["state", "=", "assigned"]
            ])
        }),
        template,
        schema,
        filename: filename.unwrap_or_else(|| "{name}.xml".to_string()),
        mark,
        chatter: chatter.unwrap_or(false),
        note_on_failure: note_on_failure.unwrap_or(false),
    })
}

/// A file name template: no folder, only known placeholders, at least one that tells records
/// apart (`{name}` or `{id}`), so two records never share a file.
fn check_filename(template: &str) -> Result<(), String> {
    if template.contains('/') || template.contains('\\') {
        return Err(format!(
            "{template:?} names a folder; `filename` is a file name in the outbox (set the \
             folder with `outbox`)"
        ));
    }
    let mut rest = template;
    let mut distinct = false;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(format!("{template:?}: a `{{` without its `}}`"));
        };
        let name = &after[..close];
        if !FILENAME_PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "{template:?}: unknown placeholder {{{name}}}; known: {}",
                FILENAME_PLACEHOLDERS
                    .iter()
                    .map(|p| format!("{{{p}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        distinct |= matches!(name, "name" | "id");
        rest = &after[close + 1..];
    }
    if !distinct {
        return Err(format!(
            "{template:?} gives every record the same file name; use {{name}} or {{id}}, e.g. \
             \"{{name}}.xml\""
        ));
    }
    Ok(())
}
