//! What `check` tests of an export flow beyond its partner's outbox: the template compiles and
//! renders a valid document for a sample delivery; in Odoo the domain's fields and the mark
//! field exist (the mark a boolean or a datetime), and the first record the flow would
//! export renders and validates too.

use serde_json::Value;

use super::render::Renderer;
use super::select::{self, sample_picking};
use crate::check::Check;
use crate::config::{Config, ExportFlow, Flow};
use crate::odoo::client::{OdooClient, SearchOptions};

/// The template renders a valid document for the sample delivery.
pub fn template(config: &Config, flow: &Flow, export: &ExportFlow) -> Check {
    let subject = format!("flow {}", flow.name);
    let renderer = match Renderer::build(&flow.name, export, &config.spool) {
        Ok(r) => r,
        Err(e) => return Check::fail(subject, e),
    };
    match renderer.render(
        &flow.name,
        &sample_picking(),
        "WH_OUT_00042.xml",
        "2026-11-29T12:00:00Z",
    ) {
        Ok(_) => Check::ok(
            subject,
            format!(
                "template renders a sample delivery valid against {}",
                renderer.schema().display()
            ),
        ),
        Err(refusal) => Check::fail(
            subject,
            format!(
                "a sample delivery: {refusal}: fix `flows.{}.template`",
                flow.name
            ),
        ),
    }
}

/// The flow's fields in Odoo, and a real record rendered when one matches.
pub async fn odoo(
    config: &Config,
    client: &OdooClient,
    flow: &Flow,
    export: &ExportFlow,
    checks: &mut Vec<Check>,
) {
    let subject = format!("flow {}", flow.name);
    let fields = match select::resolve_fields(client, export).await {
        Ok(f) => f,
        Err(e) => {
            checks.push(Check::fail(subject, e.to_string()));
            return;
        }
    };
    checks.push(Check::ok(
        &subject,
        match (fields.carrier, fields.tracking) {
            (true, true) => "carrier_id and carrier_tracking_ref are read (stock_delivery)".to_string(),
            (true, false) => "carrier_id is read; no carrier_tracking_ref on this Odoo".to_string(),
            (false, _) => "no carrier fields on this Odoo (stock_delivery not installed): documents carry no Carrier or TrackingRef".to_string(),
        },
    ));
    if let Some((field, kind)) = &fields.mark {
        checks.push(Check::ok(
            &subject,
            format!("mark field {field} exists ({kind:?})"),
        ));
    }
    let mut named = Vec::new();
    domain_fields(&export.domain, &mut named);
    let names: Vec<&str> = named.iter().map(String::as_str).collect();
    match client
        .fields_get(&export.model, Some(&names), &["type"])
        .await
    {
        Ok(known) => {
            let missing: Vec<&str> = names
                .iter()
                .copied()
                .filter(|f| !known.contains_key(*f))
                .collect();
            checks.push(if missing.is_empty() {
                Check::ok(
                    &subject,
                    format!(
                        "domain fields exist on {} ({})",
                        export.model,
                        names.join(", ")
                    ),
                )
            } else {
                Check::fail(
                    &subject,
                    format!(
                        "no field {} on {}: fix `flows.{}.domain`",
                        missing.join(", "),
                        export.model,
                        flow.name
                    ),
                )
            });
        }
        Err(e) => checks.push(Check::fail(&subject, format!("{e}"))),
    }
    // The first record the flow would export, rendered and validated (nothing published).
    let domain = select::selection_domain(export, &fields, None);
    let names: Vec<&str> = fields.picking.iter().map(String::as_str).collect();
    let first = client
        .search_read(
            &export.model,
            domain,
            &names,
            SearchOptions {
                limit: Some(1),
                ..SearchOptions::default()
            },
        )
        .await;
    let Ok(Some(record)) = first.map(|r| r.into_iter().next()) else {
        return;
    };
    let Ok(renderer) = Renderer::build(&flow.name, export, &config.spool) else {
        return;
    };
    match select::read_pickings(client, &fields, &[record]).await {
        Ok(pickings) => {
            for p in pickings {
                checks.push(
                    match renderer.render(&flow.name, &p, "check.xml", "2026-11-29T12:00:00Z") {
                        Ok(_) => {
                            Check::ok(&subject, format!("{} renders a valid document", p.name))
                        }
                        Err(refusal) => Check::fail(&subject, format!("{}: {refusal}", p.name)),
                    },
                );
            }
        }
        Err(e) => checks.push(Check::fail(&subject, format!("reading a record: {e}"))),
    }
}

/// The field names a domain's conditions use (the first part of a dotted path).
fn domain_fields(domain: &Value, out: &mut Vec<String>) {
    if let Some(items) = domain.as_array() {
        for item in items {
            if let Some(field) = item
                .as_array()
                .and_then(|c| c.first())
                .and_then(Value::as_str)
            {
                let field = field.split('.').next().unwrap_or(field).to_string();
                if !out.contains(&field) {
                    out.push(field);
                }
            }
        }
    }
}
