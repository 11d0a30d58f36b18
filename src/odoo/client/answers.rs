//! Odoo's answers read into typed values: the records of a read, the result of a `load`.

use serde_json::{Map, Value};

use super::wire::snippet;
use super::{LoadMessage, LoadResult};
use crate::odoo::error::OdooError;

pub(super) fn records(what: &str, value: Value) -> Result<Vec<Map<String, Value>>, OdooError> {
    match value {
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Object(map) => Ok(map),
                other => Err(protocol_error(what, &other)),
            })
            .collect(),
        other => Err(protocol_error(what, &other)),
    }
}

pub(super) fn parse_load(what: &str, value: Value) -> Result<LoadResult, OdooError> {
    let ids = match value.get("ids") {
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(Value::as_i64)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| protocol_error(what, &value))?,
        ),
        Some(Value::Bool(false)) => None,
        _ => return Err(protocol_error(what, &value)),
    };
    let messages = value
        .get("messages")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|m| LoadMessage {
                    kind: m
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("error")
                        .to_string(),
                    record: m.get("record").and_then(Value::as_i64),
                    field: m.get("field").and_then(Value::as_str).map(str::to_string),
                    message: m
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(LoadResult { ids, messages })
}

pub(super) fn protocol_error(what: &str, value: &Value) -> OdooError {
    let text = value.to_string();
    OdooError::Protocol {
        call: what.into(),
        detail: format!("unexpected value: {}", snippet(text.as_bytes())),
    }
}
