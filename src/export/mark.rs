//! Marking published records in Odoo: the flow's mark field (a boolean set to true, a
//! datetime set to now, a date set to today) in one `write` for all records of a pass, and
//! with `chatter = true` a note on each naming its file (`message_post` takes one record at a
//! time). With `note_on_failure = true` a record whose document was refused gets a note
//! saying why.

use serde_json::{Map, Value, json};

use super::select::MarkKind;
use crate::odoo::client::{Args, OdooClient, OdooError};

/// Sets the mark on `ids` in one call; when Odoo refuses the batch (a record deleted
/// meanwhile), each record is marked on its own so the others are not held back. Returns
/// the ids that could not be marked, with why.
pub async fn mark(
    client: &OdooClient,
    model: &str,
    field: &str,
    kind: &MarkKind,
    ids: &[i64],
) -> Vec<(i64, OdooError)> {
    if ids.is_empty() {
        return Vec::new();
    }
    let vals = mark_value(field, kind);
    match client.write(model, ids, vals.clone(), None).await {
        Ok(()) => Vec::new(),
        Err(e) if ids.len() == 1 => vec![(ids[0], e)],
        Err(_) => {
            let mut failed = Vec::new();
            for &id in ids {
                if let Err(e) = client.write(model, &[id], vals.clone(), None).await {
                    failed.push((id, e));
                }
            }
            failed
        }
    }
}

fn mark_value(field: &str, kind: &MarkKind) -> Map<String, Value> {
    let now = jiff::Timestamp::now();
    let value = match kind {
        MarkKind::Boolean => json!(true),
        // Odoo's datetimes are UTC, "YYYY-MM-DD HH:MM:SS".
        MarkKind::Datetime => json!(now.strftime("%Y-%m-%d %H:%M:%S").to_string()),
        MarkKind::Date => json!(now.strftime("%Y-%m-%d").to_string()),
    };
    let mut vals = Map::new();
    vals.insert(field.to_string(), value);
    vals
}

/// Posts `body` as a note on one record (its chatter). The answer is the message id: a bare
/// id over JSON-RPC, `[id]` over JSON-2 — either is fine here.
pub async fn note(client: &OdooClient, model: &str, id: i64, body: &str) -> Result<(), OdooError> {
    let mut args = Args::new();
    args.insert("body".into(), json!(body));
    args.insert("message_type".into(), json!("comment"));
    args.insert("subtype_xmlid".into(), json!("mail.mt_note"));
    client
        .call(model, "message_post", Some(vec![id]), args, None)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_by_field_type() {
        assert_eq!(
            Value::Object(mark_value("x_edi_exported", &MarkKind::Boolean)),
            json!({"x_edi_exported": true})
        );
        let dt = mark_value("x_edi_exported_at", &MarkKind::Datetime);
        let text = dt["x_edi_exported_at"].as_str().unwrap();
        assert_eq!(text.len(), 19, "{text}");
        assert_eq!(&text[10..11], " ");
    }
}
