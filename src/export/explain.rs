//! `explain FLOW --record NAME`: why a record was or was not exported — what the ledger
//! knows of its publications, whether it matches the flow's domain in Odoo now, and whether
//! its mark is set.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::select;
use crate::config::{Config, Direction};
use crate::ledger::{Ledger, PubState};
use crate::odoo::client::{OdooClient, SearchOptions};

/// The explanation, as text for a person.
pub async fn explain_record(
    config: &Config,
    ledger: &Ledger,
    flow: &str,
    name: &str,
) -> Result<String, String> {
    let flow_cfg = config
        .flow(flow)
        .ok_or_else(|| format!("no flow named {flow}"))?;
    let Direction::Export(export) = &flow_cfg.direction else {
        return Err(format!(
            "flow {flow} is an import flow: use `explain {flow} FILE`"
        ));
    };
    let mut out = String::new();
    let history = ledger
        .publications_named(flow, name)
        .map_err(|e| e.to_string())?;
    let when = |ms: i64| {
        jiff::Timestamp::from_millisecond(ms)
            .map(|t| t.to_string())
            .unwrap_or_default()
    };
    if history.is_empty() {
        let _ = writeln!(
            out,
            "{name}: the ledger has no publication of it in flow {flow}."
        );
    } else {
        let _ = writeln!(out, "{name}: publications in flow {flow}:");
        for p in &history {
            let state = match p.state {
                PubState::Publishing => {
                    "being published (unfinished: an outage or a crash; the next pass publishes it again under the same name)"
                }
                PubState::Published => {
                    "published, not marked in Odoo yet (the next pass marks it without publishing again)"
                }
                PubState::Done => "published and marked",
                PubState::Failed => "refused: nothing was published",
            };
            let _ = writeln!(
                out,
                "  {} {}{}: {state}{}{}",
                when(p.updated_at),
                transport_path(&export.outbox, &p.file_name),
                if p.replay {
                    " (replayed on purpose)"
                } else {
                    ""
                },
                p.sha256
                    .as_deref()
                    .map(|s| format!(", sha256 {}", &s[..s.len().min(16)]))
                    .unwrap_or_default(),
                p.detail
                    .as_deref()
                    .map(|d| format!("\n    why: {d}"))
                    .unwrap_or_default(),
            );
        }
    }
    if config.odoo.connection.is_none() {
        let _ = writeln!(
            out,
            "No Odoo server is configured: cannot say whether it matches the domain now."
        );
        return Ok(out);
    }
    let client = OdooClient::connect(&config.odoo)
        .await
        .map_err(|e| format!("Odoo: {e}"))?;
    let fields = select::resolve_fields(&client, export)
        .await
        .map_err(|e| e.to_string())?;
    let names: Vec<&str> = fields.picking.iter().map(String::as_str).collect();
    let found = client
        .search_read(
            &export.model,
            json!([["name", "=", name]]),
            &names,
            SearchOptions::default(),
        )
        .await
        .map_err(|e| format!("Odoo: {e}"))?;
    let Some(record) = found.first() else {
        let _ = writeln!(
            out,
            "Odoo has no {} named {name}: it is never exported.",
            export.model
        );
        return Ok(out);
    };
    let id = record.get("id").and_then(Value::as_i64).unwrap_or(0);
    let mut domain = export.domain.as_array().cloned().unwrap_or_default();
    domain.push(json!(["id", "=", id]));
    let matches = client
        .search_count(&export.model, Value::Array(domain), None)
        .await
        .map_err(|e| format!("Odoo: {e}"))?
        > 0;
    let _ = writeln!(
        out,
        "In Odoo: {} {name} (id {id}) {} the flow's domain {}.",
        export.model,
        if matches { "matches" } else { "does not match" },
        export.domain
    );
    let marked = fields.mark.as_ref().map(|(field, _)| {
        (
            field,
            record
                .get(field)
                .is_some_and(|v| !matches!(v, Value::Bool(false) | Value::Null)),
        )
    });
    if let Some((field, set)) = &marked {
        let _ = writeln!(
            out,
            "Its mark {field} is {}.",
            if *set { "set" } else { "not set" }
        );
    }
    let latest = history.last().map(|p| p.state);
    let verdict = match (matches, marked, latest) {
        (false, _, _) => "It is not exported: it does not match the domain (not ready, or not an outgoing delivery).".to_string(),
        (true, Some((_, true)), _) => "It is not exported again: it is marked as exported. Clear the mark in Odoo to export it again, or `edi-bridge replay FLOW --record NAME`.".to_string(),
        (true, _, Some(PubState::Failed)) => "Its document was refused (see why above): fix the template or the record; every pass tries again.".to_string(),
        (true, _, Some(PubState::Published)) => "Its file is published; the next pass marks it.".to_string(),
        (true, None, Some(PubState::Done)) => "It is not exported again: the ledger has published it and the flow has no mark field. `edi-bridge replay FLOW --record NAME` publishes it again.".to_string(),
        (true, _, _) => "The next pass exports it.".to_string(),
    };
    let _ = writeln!(out, "{verdict}");
    Ok(out)
}

fn transport_path(outbox: &str, file: &str) -> String {
    crate::transport::join(outbox, file)
}
