//! Comparing values the way Odoo stores them, so that a record already up to date costs no
//! write: a many2one reads `[id, name]`, empty values read `false`, floats come back rounded
//! to their field's digits (learned once per model and run with `fields_get`). Also the
//! helpers that read Odoo's answers as ids, numbers and text.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::{Applier, Vals};
use crate::error::Consequence;
use crate::odoo::error::OdooError;

impl<'a> Applier<'a> {
    /// Learns the type and precision of `fields` of `model`, once per run.
    pub(super) async fn describe(
        &self,
        model: &str,
        fields: &BTreeSet<&str>,
    ) -> Result<(), OdooError> {
        let missing: Vec<&str> = {
            let mut cache = self.fields.borrow_mut();
            let known = cache.entry(model.to_string()).or_default();
            fields
                .iter()
                .copied()
                .filter(|f| !known.contains_key(*f))
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        match self
            .client
            .fields_get(model, Some(&missing), &["type", "digits", "relation"])
            .await
        {
            Ok(answer) => {
                // `fields_get` silently leaves out the names the model does not have: a
                // mapping naming one (or a field an upgrade renamed) would fail every record
                // of every file, so the flow stops before the first write, naming it.
                let unknown: Vec<&str> = missing
                    .iter()
                    .copied()
                    .filter(|f| *f != "id" && !answer.contains_key(*f))
                    .collect();
                if !unknown.is_empty() {
                    return Err(unknown_fields(model, &unknown));
                }
                let mut cache = self.fields.borrow_mut();
                let known = cache.entry(model.to_string()).or_default();
                for f in missing {
                    known.insert(f.to_string(), answer.get(f).map(FieldInfo::parse));
                }
            }
            // Then the reads say what is wrong, record by record; values are compared
            // without types meanwhile.
            Err(e) if e.consequence() == Consequence::Reject => {
                let mut cache = self.fields.borrow_mut();
                let known = cache.entry(model.to_string()).or_default();
                for f in missing {
                    known.insert(f.to_string(), None);
                }
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// The decimal places of `field` of `model`, once [`Applier::describe`] learned them.
    pub(super) fn digits(&self, model: &str, field: &str) -> Option<u32> {
        self.fields
            .borrow()
            .get(model)
            .and_then(|m| m.get(field))
            .and_then(|i| i.as_ref())
            .and_then(|i| i.digits)
    }
}

/// The flow cannot work while its mapping names fields `model` does not have.
fn unknown_fields(model: &str, unknown: &[&str]) -> OdooError {
    let (what, names) = match unknown {
        [one] => ("field", format!("'{one}'")),
        many => (
            "fields",
            many.iter()
                .map(|f| format!("'{f}'"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
    };
    OdooError::Config {
        message: format!(
            "the mapping names the {what} {names} of model '{model}', which this Odoo does not \
             have (fields_get does not list it): fix the mapping, or install the module that \
             adds it; the files wait in the inbox"
        ),
    }
}

/// A field as `fields_get` describes it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FieldInfo {
    pub(super) ty: String,
    /// Decimal places Odoo rounds a float to when it stores it.
    pub(super) digits: Option<u32>,
}

impl FieldInfo {
    fn parse(v: &Value) -> FieldInfo {
        FieldInfo {
            ty: v
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            digits: v
                .get("digits")
                .and_then(Value::as_array)
                .and_then(|d| d.get(1))
                .and_then(Value::as_u64)
                .and_then(|d| u32::try_from(d).ok()),
        }
    }

    fn numeric(&self) -> bool {
        matches!(self.ty.as_str(), "float" | "integer" | "monetary")
    }
}

/// The id of a record as read.
pub(super) fn record_id(rec: &Vals) -> Option<i64> {
    rec.get("id").and_then(Value::as_i64)
}

/// A many2one as read (`[id, name]`) or as written (an id).
pub(super) fn many2one_id(v: &Value) -> Option<i64> {
    match v {
        Value::Array(a) => a.first().and_then(Value::as_i64),
        other => other.as_i64(),
    }
}

/// A many2one's name as read, for messages.
pub(super) fn display(v: &Value) -> String {
    match v {
        Value::Array(a) => a.get(1).map(text).unwrap_or_default(),
        other => text(other),
    }
}

/// Whether a value read from Odoo holds something (`false` and `null` are empty).
pub(super) fn is_set(v: Option<&Value>) -> bool {
    !matches!(v, None | Some(Value::Null) | Some(Value::Bool(false)))
}

/// A number, or a text that reads as one.
pub(super) fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A value as text: what a lookup matches and what messages show.
pub(super) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 1e15 => (f as i64).to_string(),
            _ => n.to_string(),
        },
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// One key field's value as compared: many2one by id, empty as "".
pub(super) fn atom(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => String::new(),
        Some(Value::Array(a)) => a.first().map(text).unwrap_or_default(),
        Some(other) => text(other),
    }
}

/// The values of `vals` that differ from the record as Odoo has it.
pub(super) fn changes(
    vals: &Vals,
    current: &Vals,
    info: &HashMap<String, Option<FieldInfo>>,
) -> Vals {
    vals.iter()
        .filter(|(field, desired)| match current.get(*field) {
            Some(now) => !same(desired, now, info.get(*field).and_then(Option::as_ref)),
            None => true,
        })
        .map(|(field, desired)| (field.clone(), desired.clone()))
        .collect()
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Whether the `desired` value is what Odoo already has (`current`, as read): a many2one
/// reads `[id, name]`, empty values read `false`, floats come back rounded to their field's
/// digits, and a numeric field reads 0 where `false` was written.
fn same(desired: &Value, current: &Value, info: Option<&FieldInfo>) -> bool {
    let numeric = info.is_some_and(FieldInfo::numeric);
    let many2one = info.is_none_or(|i| i.ty == "many2one");
    let current = match current {
        Value::Array(a) if many2one && a.len() == 2 && a[0].is_i64() && a[1].is_string() => &a[0],
        other => other,
    };
    if numeric {
        let as_number = |v: &Value| if is_empty(v) { Some(0.0) } else { number(v) };
        if let (Some(a), Some(b)) = (as_number(desired), as_number(current)) {
            return same_float(a, b, info.and_then(|i| i.digits));
        }
    }
    if is_empty(desired) || is_empty(current) {
        return is_empty(desired) && is_empty(current);
    }
    match (desired, current) {
        (Value::Number(_), Value::Number(_)) => match (number(desired), number(current)) {
            (Some(a), Some(b)) => same_float(a, b, info.and_then(|i| i.digits)),
            _ => false,
        },
        (Value::Array(a), Value::Array(b)) => {
            let ids = |list: &[Value]| {
                let mut ids: Vec<String> = list.iter().map(text).collect();
                ids.sort();
                ids
            };
            ids(a) == ids(b)
        }
        (Value::String(_), Value::String(_)) | (Value::Bool(_), Value::Bool(_)) => {
            desired == current
        }
        // A number mapped into a text field, a text into a number field: as Odoo shows them.
        (Value::Number(_) | Value::String(_), Value::Number(_) | Value::String(_)) => {
            match (number(desired), number(current)) {
                (Some(a), Some(b)) => same_float(a, b, info.and_then(|i| i.digits)),
                _ => text(desired) == text(current),
            }
        }
        _ => desired == current,
    }
}

/// Equal once each side is rounded half-up to `digits` decimals, as Odoo stores them (its
/// `float_compare`), or equal up to float noise when the precision is unknown.
pub(super) fn same_float(a: f64, b: f64, digits: Option<u32>) -> bool {
    match digits {
        Some(d) => {
            let scale = 10f64.powi(d.min(15) as i32);
            // Odoo's `float_round` nudges by an epsilon so that 2.675 rounds to 2.68.
            let round = |x: f64| {
                let scaled = x * scale;
                (scaled + scaled.signum() * f64::EPSILON * scaled.abs().max(1.0) * 16.0).round()
            };
            round(a) == round(b)
        }
        None => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
    }
}

/// Like [`text`] but keeps every digit of a float.
pub(super) fn text_exact(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        other => text(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_compare_as_odoo_rounds_them() {
        assert!(same_float(2.675, 2.68, Some(2)), "2.675 is stored as 2.68");
        assert!(same_float(1.005, 1.01, Some(2)));
        assert!(!same_float(2.674, 2.68, Some(2)));
        assert!(same_float(12.0, 12.000_000_000_01, None));
        assert!(!same_float(12.0, 12.01, None));
    }

    #[test]
    fn prices_compare_as_each_version_stores_them() {
        // Odoo 18: digits [16, 2], 2.675 is stored 2.68; a second pass must not rewrite it.
        let v18 = FieldInfo::parse(&json!({"type": "float", "digits": [16, 2]}));
        assert_eq!(v18.digits, Some(2));
        assert!(same(&json!(2.675), &json!(2.68), Some(&v18)));
        // Odoo 19: `digits: false`, stored exactly: 2.675 is 2.675 and 2.68 is another price.
        let v19 = FieldInfo::parse(&json!({"type": "float", "digits": false}));
        assert_eq!(v19.digits, None);
        assert!(same(&json!(2.675), &json!(2.675), Some(&v19)));
        assert!(same(&json!(1.005), &json!(1.005), Some(&v19)));
        assert!(!same(&json!(2.675), &json!(2.68), Some(&v19)));
    }

    fn info(ty: &str, digits: Option<u32>) -> FieldInfo {
        FieldInfo {
            ty: ty.into(),
            digits,
        }
    }

    #[test]
    fn values_compare_as_odoo_reads_them() {
        let m2o = info("many2one", None);
        assert!(same(&json!(3), &json!([3, "Units"]), Some(&m2o)));
        assert!(!same(&json!(4), &json!([3, "Units"]), Some(&m2o)));
        // Without a description a [id, name] pair still reads as a many2one.
        assert!(same(&json!(3), &json!([3, "Units"]), None));
        let price = info("float", Some(2));
        assert!(same(&json!(12.345), &json!(12.35), Some(&price)));
        assert!(!same(&json!(12.36), &json!(12.35), Some(&price)));
        assert!(same(&json!(3), &json!(3.0), Some(&price)));
        assert!(same(&json!(false), &json!(0.0), Some(&price)));
        assert!(same(&json!(0.1 + 0.2), &json!(0.3), None));
        assert!(!same(&json!(0.31), &json!(0.3), None));
        let text_field = info("char", None);
        assert!(same(&json!(""), &json!(false), Some(&text_field)));
        assert!(same(&json!(null), &json!(false), Some(&text_field)));
        assert!(!same(&json!("x"), &json!(false), Some(&text_field)));
        assert!(same(&json!("123"), &json!("123"), Some(&text_field)));
        assert!(same(&json!(123), &json!("123"), Some(&text_field)));
        let flag = info("boolean", None);
        assert!(same(&json!(false), &json!(false), Some(&flag)));
        assert!(!same(&json!(true), &json!(false), Some(&flag)));
    }

    #[test]
    fn only_changed_fields_are_sent() {
        let described: HashMap<String, Option<FieldInfo>> = [
            ("uom_id".to_string(), Some(info("many2one", None))),
            ("list_price".to_string(), Some(info("float", Some(2)))),
        ]
        .into_iter()
        .collect();
        let desired = json!({"default_code": "A", "name": "New", "uom_id": 1, "list_price": 5.001});
        let current = json!({"id": 9, "default_code": "A", "name": "Old", "uom_id": [1, "Units"], "list_price": 5.0});
        let changed = changes(
            desired.as_object().unwrap(),
            current.as_object().unwrap(),
            &described,
        );
        assert_eq!(Value::Object(changed), json!({"name": "New"}));
    }
}
