//! Rendering a record into its document: the built-in canonical delivery order
//! (`builtin:picking`, defined by `xsd/picking.xsd`) or the flow's own template file, both
//! with minijinja and XML escaping always on — a value can never break the document's
//! structure. Then the document is checked against the flow's schema with [`crate::schema`]:
//! an invalid document is never published.
//!
//! The context a template gets (documented in the README):
//! `picking` ([`Picking`]: `id`, `name`, `origin`, `scheduled_date`, `note`, `carrier`,
//! `tracking_ref`, `delivery` and `customer` ([`crate::export::select::Party`]: `name`,
//! `street`, `street2`, `zip`, `city`, `state`, `country_code`, `country`, `phone`, `email`),
//! `lines` ([`crate::export::select::Line`]: `number`, `move_id`, `product` (`id`, `code`,
//! `barcode`, `name`), `quantity`, `reserved`, `unit`)), `flow` (the flow's name),
//! `file_name` (the name the file is published under) and `generated_at` (now, UTC, ISO 8601).
//! Absent values are `none` and render as nothing; an unknown name is an error.

use std::path::{Path, PathBuf};

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

use super::select::Picking;
use crate::config::{ExportFlow, Template};
use crate::schema::{self, XmlProblem};

/// The built-in template of `builtin:picking`.
pub const BUILTIN_PICKING: &str = include_str!("picking.xml.j2");
/// The canonical schema the built-in template is checked against when the flow names none.
pub const PICKING_XSD: &str = include_str!("../../xsd/picking.xsd");

/// A flow's compiled template and the schema its documents are checked against.
pub struct Renderer {
    env: Environment<'static>,
    schema: PathBuf,
}

/// Why a record's document was not made: the template failed, or the document is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The template could not be rendered for this record.
    Template(String),
    /// The document does not validate against the schema.
    Invalid(Vec<XmlProblem>),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Template(e) => write!(f, "the template failed: {e}"),
            Refusal::Invalid(problems) => {
                write!(f, "the document is not valid against the flow's schema: ")?;
                let shown: Vec<String> = problems.iter().take(5).map(|p| p.to_string()).collect();
                f.write_str(&shown.join("; "))?;
                if problems.len() > 5 {
                    write!(f, "; and {} more", problems.len() - 5)?;
                }
                Ok(())
            }
        }
    }
}

impl Renderer {
    /// Compiles the flow's template and finds its schema. `spool` is where the built-in
    /// schema is written when the flow names none. Errors are configuration problems.
    pub fn build(flow: &str, export: &ExportFlow, spool: &Path) -> Result<Renderer, String> {
        let source = match &export.template {
            Template::BuiltinPicking => BUILTIN_PICKING.to_string(),
            Template::File(path) => std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "cannot read the template {}: {e}: fix `flows.{flow}.template`",
                    path.display()
                )
            })?,
        };
        let schema = match &export.schema {
            Some(path) => path.clone(),
            None => builtin_schema(spool)?,
        };
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::Custom("xml".into()));
        env.set_formatter(xml_formatter);
        env.add_template_owned("document", source).map_err(|e| {
            format!(
                "the template of flow {flow} does not compile: {e:#}: fix `flows.{flow}.template`"
            )
        })?;
        schema::check_schema(&schema).map_err(|e| format!("{e}: fix `flows.{flow}.schema`"))?;
        Ok(Renderer { env, schema })
    }

    /// The schema documents are checked against.
    pub fn schema(&self) -> &Path {
        &self.schema
    }

    /// Renders `picking` and validates the document.
    pub fn render(
        &self,
        flow: &str,
        picking: &Picking,
        file_name: &str,
        generated_at: &str,
    ) -> Result<Vec<u8>, Refusal> {
        let template = self
            .env
            .get_template("document")
            .map_err(|e| Refusal::Template(format!("{e:#}")))?;
        let ctx = minijinja::context! {
            picking => Value::from(minijinja::value::Serde(picking)),
            flow => flow,
            file_name => file_name,
            generated_at => generated_at,
        };
        let text = template
            .render(ctx)
            .map_err(|e| Refusal::Template(format!("{e:#}")))?;
        let mut text = text;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        let document = text.into_bytes();
        let problems = schema::validate_bytes(&self.schema, &document)
            .map_err(|e| Refusal::Template(e.to_string()))?;
        if problems.is_empty() {
            Ok(document)
        } else {
            Err(Refusal::Invalid(problems))
        }
    }
}

/// The canonical schema, written once beside the spool so libxml2 can load it.
fn builtin_schema(spool: &Path) -> Result<PathBuf, String> {
    let dir = spool.join("xsd");
    let path = dir.join("picking.xsd");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(PICKING_XSD) {
        std::fs::create_dir_all(&dir)
            .and_then(|()| {
                let part = dir.join(".picking.xsd.part");
                std::fs::write(&part, PICKING_XSD)?;
                std::fs::rename(&part, &path)
            })
            .map_err(|e| {
                format!(
                    "cannot write the built-in schema to {}: {e}",
                    path.display()
                )
            })?;
    }
    Ok(path)
}

/// Writes every value XML-escaped (`&`, `<`, `>`, `"`, `'`), drops characters XML 1.0 cannot
/// hold, and renders `none` as nothing. Values marked safe (`|safe`) go out as they are.
fn xml_formatter(
    out: &mut minijinja::Output,
    _state: &mut minijinja::State,
    value: &Value,
) -> Result<(), minijinja::Error> {
    if value.is_none() || value.is_undefined() {
        return Ok(());
    }
    let text = value.to_string();
    let written = if value.is_safe() {
        out.write_str(&text)
    } else {
        out.write_str(&xml_escape(&text))
    };
    written.map_err(|e| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string()))
}

/// `text` escaped for XML text and attribute values.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::select::sample_picking;

    fn export(template: Template, schema: Option<PathBuf>) -> ExportFlow {
        ExportFlow {
            outbox: "/in".into(),
            model: "stock.picking".into(),
            domain: serde_json::json!([]),
            template,
            schema,
            filename: "{name}.xml".into(),
            mark: None,
            chatter: false,
            note_on_failure: false,
        }
    }

    #[test]
    fn the_builtin_document_is_valid_and_escaped() {
        let dir = tempfile::tempdir().unwrap();
        let r = Renderer::build(
            "orders",
            &export(Template::BuiltinPicking, None),
            dir.path(),
        )
        .unwrap();
        let doc = r
            .render(
                "orders",
                &sample_picking(),
                "WH_OUT_00042.xml",
                "2026-11-29T20:00:00Z",
            )
            .unwrap();
        let text = String::from_utf8(doc).unwrap();
        assert!(text.contains("<Name>WH/OUT/00042</Name>"), "{text}");
        assert!(
            text.contains("<Note>Leave at the back door &amp; ring twice</Note>"),
            "{text}"
        );
        assert!(text.contains("<ProductName>TR2 Export Gadget &lt;large&gt;</ProductName>"));
        assert!(text.contains("<Quantity>2.5</Quantity>"), "{text}");
        assert!(text.contains("<CountryCode>DE</CountryCode>"));
        assert!(
            !text.contains("<TrackingRef>"),
            "absent values leave no element"
        );
    }

    #[test]
    fn a_template_producing_an_invalid_document_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let template = dir.path().join("bad.xml.j2");
        std::fs::write(
            &template,
            "<DeliveryOrder xmlns=\"urn:edi-bridge:picking:1\"><Header><Name>{{ picking.name }}</Name></Header></DeliveryOrder>",
        )
        .unwrap();
        let schema = dir.path().join("picking.xsd");
        std::fs::write(&schema, PICKING_XSD).unwrap();
        let r = Renderer::build(
            "orders",
            &export(Template::File(template.clone()), Some(schema)),
            dir.path(),
        )
        .unwrap();
        match r.render("orders", &sample_picking(), "x.xml", "2026-11-29T20:00:00Z") {
            Err(Refusal::Invalid(problems)) => {
                assert!(problems[0].message.contains("OdooId"), "{problems:?}")
            }
            other => panic!("expected invalid, got {other:?}"),
        }
        // A name the context does not have is an error, not an empty string.
        std::fs::write(&template, "<x>{{ picking.nam }}</x>").unwrap();
        let r = Renderer::build(
            "orders",
            &export(
                Template::File(template),
                Some(dir.path().join("picking.xsd")),
            ),
            dir.path(),
        )
        .unwrap();
        assert!(matches!(
            r.render("orders", &sample_picking(), "x.xml", "t"),
            Err(Refusal::Template(_))
        ));
    }

    #[test]
    fn xml_escaping_drops_what_xml_cannot_hold() {
        assert_eq!(
            xml_escape("a<b>&\"'\u{1}c\n"),
            "a&lt;b&gt;&amp;&quot;&apos;c\n"
        );
    }
}
