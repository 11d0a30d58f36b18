//! Writing: values converted as Odoo's `convert_to_cache` does, records created, written and
//! deleted, x2many commands, and the errors PostgreSQL and Odoo raise on the way (unknown field,
//! NOT NULL, foreign key, the constraints a test added).

use serde_json::{Value, json};

use super::super::Vals;
use super::super::errors::{Fail, py_ids, py_repr};
use super::fields::{Field, Ty};
use super::store::{Fid, Row};
use super::{ADMIN_UID, Env, as_id, id_list, now, parse_float, truthy};

impl Env<'_> {
    fn unknown_field(&self, model: &str, field: &str) -> Fail {
        // Odoo 19 words it differently from 18 (transcripts 18/15 and 19/13).
        if self.v() >= 19 {
            Fail::value(format!("Invalid field '{field}' in '{model}'"))
        } else {
            Fail::value(format!("Invalid field '{field}' on model '{model}'"))
        }
    }

    pub(crate) fn check_vals_fields(&self, model: &str, vals: &Vals) -> Result<(), Fail> {
        for key in vals.keys() {
            if key != "id" && self.field(model, key).is_none() {
                return Err(self.unknown_field(model, key));
            }
        }
        Ok(())
    }

    /// Converts a value for a (non-x2many) field the way Odoo's `convert_to_cache` does.
    pub(crate) fn convert(&self, model: &str, f: &Field, value: &Value) -> Result<Value, Fail> {
        let wrong = || {
            Fail::value(format!(
                "Wrong value for {model}.{}: {}",
                f.name,
                py_repr(value)
            ))
        };
        Ok(match f.ty {
            Ty::Char | Ty::Text | Ty::Html => match value {
                Value::Null | Value::Bool(false) => json!(false),
                Value::String(s) => json!(s),
                Value::Number(n) => json!(n.to_string()),
                Value::Bool(true) => json!("True"),
                _ => return Err(wrong()),
            },
            Ty::Selection => match value {
                Value::Null | Value::Bool(false) => json!(false),
                Value::String(s)
                    if f.selection.is_empty() || f.selection.iter().any(|(k, _)| k == s) =>
                {
                    json!(s)
                }
                _ => return Err(wrong()),
            },
            Ty::Date | Ty::Datetime => match value {
                Value::Null | Value::Bool(false) => json!(false),
                Value::String(s) if f.ty == Ty::Datetime && s.len() == 10 => {
                    json!(format!("{s} 00:00:00"))
                }
                Value::String(s) => json!(s),
                _ => return Err(wrong()),
            },
            Ty::Integer => match value {
                Value::Null | Value::Bool(false) => json!(0),
                Value::Bool(true) => json!(1),
                Value::Number(n) => json!(n.as_f64().unwrap_or(0.0) as i64),
                Value::String(s) => match s.trim().parse::<i64>() {
                    Ok(i) => json!(i),
                    Err(_) => {
                        return Err(Fail::value(format!(
                            "invalid literal for int() with base 10: {}",
                            py_repr(value)
                        )));
                    }
                },
                _ => return Err(wrong()),
            },
            Ty::Float => match value {
                Value::Null | Value::Bool(false) => json!(0.0),
                Value::Bool(true) => json!(1.0),
                Value::Number(n) => json!(round_as_stored(
                    self.v(),
                    &f.name,
                    n.as_f64().unwrap_or(0.0)
                )),
                Value::String(s) => match parse_float(s) {
                    Some(x) => json!(round_as_stored(self.v(), &f.name, x)),
                    None => {
                        return Err(Fail::value(format!(
                            "could not convert string to float: {}",
                            py_repr(value)
                        )));
                    }
                },
                _ => return Err(wrong()),
            },
            Ty::Boolean => json!(truthy(value)),
            Ty::Many2one => match value {
                Value::Null | Value::Bool(false) => json!(false),
                Value::Number(n) if n.as_i64() == Some(0) => json!(false),
                Value::Number(_) | Value::Array(_) => {
                    let id = as_id(value).ok_or_else(wrong)?;
                    let rel = f.relation.as_deref().unwrap_or_default();
                    if !self.exists(rel, id) {
                        return Err(self.foreign_key(model, f));
                    }
                    json!(id)
                }
                _ => return Err(wrong()),
            },
            Ty::One2many | Ty::Many2many => return Err(wrong()),
        })
    }

    fn foreign_key(&self, model: &str, f: &Field) -> Fail {
        let m = &self.db.models[model];
        if self.v() >= 19 {
            // 19 words the FK violation anew (19/132, 19/133).
            return Fail::validation(format!(
                "The operation cannot be completed: Another model is using the record you are trying to delete.\n\nThe troublemaker is: '{}' ({model})\nThanks to the following constraint: '{}' ({})\nHow about archiving the record instead?",
                m.description, f.string, f.name
            ));
        }
        Fail::validation(format!(
            "The operation cannot be completed: another model requires the record being deleted. If possible, archive it instead.\n\nModel: {} ({model})\nConstraint: {}_{}_fkey\n",
            m.description,
            model.replace('.', "_"),
            f.name
        ))
    }

    pub(crate) fn not_null(&self, model: &str, field: &str) -> Fail {
        let m = &self.db.models[model];
        let label = m
            .fields
            .get(field)
            .map(|f| f.string.clone())
            .unwrap_or_default();
        if self.v() >= 19 {
            Fail::validation(format!(
                "The operation cannot be completed: Missing required value for the field '{label}' ({field}).\nModel: '{}' ({model})\n- create/update: a mandatory field is not set\n- delete: another model requires the record being deleted, you can archive it instead\n",
                m.description
            ))
        } else {
            Fail::validation(format!(
                "The operation cannot be completed:\n- Create/update: a mandatory field is not set.\n- Delete: another model requires the record being deleted. If possible, archive it instead.\n\nModel: {} ({model})\nField: {label} ({field})\n",
                m.description
            ))
        }
    }

    /// Applies x2many commands (`[[6, 0, ids]]`, `[[4, id]]`, `[[0, 0, vals]]`, a plain id
    /// list, …) to record `id`.
    fn apply_x2many(&mut self, model: &str, id: i64, f: &Field, value: &Value) -> Result<(), Fail> {
        let rel = f.relation.clone().unwrap_or_default();
        let mut current = id_list(&self.raw(model, id, &f.name));
        let commands: Vec<Value> = match value {
            Value::Null | Value::Bool(false) => vec![json!([5])],
            Value::Array(items) if items.iter().all(Value::is_i64) => {
                vec![json!([6, 0, items])]
            }
            Value::Array(items) => items.clone(),
            _ => {
                return Err(Fail::value(format!(
                    "Wrong value for {model}.{}: {}",
                    f.name,
                    py_repr(value)
                )));
            }
        };
        for cmd in commands {
            let parts = cmd.as_array().cloned().unwrap_or_default();
            let code = parts.first().and_then(Value::as_i64).unwrap_or(-1);
            let arg_id = parts.get(1).and_then(Value::as_i64).unwrap_or(0);
            match code {
                0 => {
                    let mut vals = parts
                        .get(2)
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    if let Some(inv) = &f.inverse {
                        vals.insert(inv.clone(), json!(id));
                    }
                    let child = self.create(&rel, &vals)?;
                    current.push(child);
                }
                1 => {
                    let vals = parts
                        .get(2)
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    self.write(&rel, &[arg_id], &vals)?;
                }
                2 => {
                    self.unlink(&rel, &[arg_id])?;
                    current.retain(|&c| c != arg_id);
                }
                3 => current.retain(|&c| c != arg_id),
                4 => {
                    if !current.contains(&arg_id) {
                        current.push(arg_id);
                    }
                }
                5 => current.clear(),
                6 => current = id_list(parts.get(2).unwrap_or(&Value::Null)),
                _ => {
                    return Err(Fail::value(format!(
                        "Wrong value for {model}.{}: {}",
                        f.name,
                        py_repr(&cmd)
                    )));
                }
            }
        }
        match (f.ty, &f.inverse) {
            (Ty::One2many, Some(inv)) => {
                for child in &current {
                    self.set(&rel, *child, inv, json!(id));
                }
            }
            _ => self.set(model, id, &f.name, json!(current)),
        }
        Ok(())
    }

    /// Creates one record of `model` from field values: unknown fields and bad values fail
    /// before an id is taken; a missing required value fails after (as PostgreSQL's NOT NULL
    /// does, consuming the id).
    /// On 17 a template's `type` and `detailed_type` follow each other (transcript 17/11):
    /// the values with the one not sent set like the one sent.
    fn product_kind_synced(&self, model: &str, vals: &Vals) -> Option<Vals> {
        if model != "product.template" || self.v() >= 18 {
            return None;
        }
        let (from, to) = match (vals.get("detailed_type"), vals.get("type")) {
            (Some(v), None) => (v.clone(), "type"),
            (None, Some(v)) => (v.clone(), "detailed_type"),
            _ => return None,
        };
        let mut vals = vals.clone();
        vals.insert(to.into(), from);
        Some(vals)
    }

    pub(crate) fn plain_create(&mut self, model: &str, vals: &Vals) -> Result<i64, Fail> {
        self.check_vals_fields(model, vals)?;
        let synced = self.product_kind_synced(model, vals);
        let vals = synced.as_ref().unwrap_or(vals);
        let fields: Vec<Field> = self.db.models[model].fields.values().cloned().collect();
        let mut given: Vec<(String, Value)> = Vec::new();
        let mut later: Vec<(Field, Value)> = Vec::new();
        for f in &fields {
            if let Some(v) = vals.get(&f.name) {
                if f.ty.x2many() {
                    later.push((f.clone(), v.clone()));
                } else if f.store {
                    given.push((f.name.clone(), self.convert(model, f, v)?));
                }
            }
        }
        let id = self.alloc(model);
        for f in &fields {
            if f.required && f.store {
                let value = match given.iter().find(|(name, _)| *name == f.name) {
                    Some((_, v)) => Some(v.clone()),
                    None if f.ty.x2many() => None,
                    None => Some(f.default.clone().unwrap_or_else(|| f.ty.empty())),
                };
                if !truthy_required(value.as_ref()) {
                    return Err(self.not_null(model, &f.name));
                }
            }
        }
        // The row: the given values over the base every record of the model gets (defaults,
        // creator, stamps), which the given stamps do not override.
        let base = self.db.base(model, &now());
        let own: Vec<(Fid, Value)> = given
            .into_iter()
            .filter(|(name, _)| {
                !matches!(
                    name.as_str(),
                    "create_date" | "write_date" | "create_uid" | "write_uid"
                )
            })
            .map(|(name, v)| (self.db.names.intern(&name), v))
            .collect();
        self.db.put_row(model, id, Row::new(Some(base), own));
        for (f, v) in later {
            self.apply_x2many(model, id, &f, &v)?;
        }
        Ok(id)
    }

    pub(crate) fn plain_write(
        &mut self,
        model: &str,
        ids: &[i64],
        vals: &Vals,
    ) -> Result<(), Fail> {
        self.check_vals_fields(model, vals)?;
        let synced = self.product_kind_synced(model, vals);
        let vals = synced.as_ref().unwrap_or(vals);
        let missing: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|&i| !self.exists(model, i))
            .collect();
        if !missing.is_empty() {
            return Err(Fail::missing(format!(
                "Record does not exist or has been deleted.\n(Record: {model}{}, User: {ADMIN_UID})",
                py_ids(&missing)
            )));
        }
        let mut converted: Vec<(Field, Value)> = Vec::new();
        for (key, v) in vals {
            let f = self.db.models[model].fields[key].clone();
            if f.ty == Ty::Many2one && self.v() < 19 {
                // Up to 18 a write naming a missing record fails on reading it, before the
                // database could refuse it (18/126); 19 lets the FK refuse it (19/133).
                let rel = f.relation.as_deref().unwrap_or_default();
                if let Some(id) = v.as_i64().filter(|&id| id != 0 && !self.exists(rel, id)) {
                    return Err(Fail::missing(format!(
                        "Record does not exist or has been deleted.\n(Record: {rel}{}, User: {ADMIN_UID})",
                        py_ids(&[id])
                    )));
                }
            }
            if f.ty.x2many() {
                converted.push((f, v.clone()));
            } else if f.store {
                let c = self.convert(model, &f, v)?;
                if f.required && !truthy_required(Some(&c)) {
                    return Err(self.not_null(model, &f.name));
                }
                converted.push((f, c));
            }
        }
        let stamp = now();
        for &id in ids {
            for (f, v) in &converted {
                if f.ty.x2many() {
                    self.apply_x2many(model, id, f, v)?;
                } else {
                    self.set(model, id, &f.name, v.clone());
                }
            }
            self.set(model, id, "write_date", json!(stamp));
        }
        Ok(())
    }

    pub(crate) fn unlink(&mut self, model: &str, ids: &[i64]) -> Result<(), Fail> {
        for &id in ids {
            if model == "product.template" {
                for v in self.variants(id) {
                    self.unlink("product.product", &[v])?;
                }
            }
            if model == "ir.model.fields" {
                let target = self.str_of(model, id, "model");
                let name = self.str_of(model, id, "name");
                if let Some(m) = self.db.models.get_mut(&target) {
                    m.fields.remove(&name);
                }
            }
            self.db.take_row(model, id);
        }
        Ok(())
    }

    /// Constraints added by the test ([`OdooStandin::fail_on_value`]).
    pub(crate) fn check_fail_values(&self, model: &str, ids: &[i64]) -> Result<(), Fail> {
        for rule in self.fails.iter().filter(|r| r.model == model) {
            for &id in ids {
                if self.raw(model, id, &rule.field) == rule.value {
                    return Err(Fail::validation(rule.message.clone()));
                }
            }
        }
        Ok(())
    }
}

/// A required value is missing when it is false or null (an empty string is a value for
/// PostgreSQL's NOT NULL).
fn truthy_required(v: Option<&Value>) -> bool {
    !matches!(v, None | Some(Value::Null) | Some(Value::Bool(false)))
}

/// A float as Odoo stores it: rounded half-up to the field's digits (Odoo's `float_round`,
/// 2.675 → 2.68), or exactly when the field has none (prices on 19).
fn round_as_stored(version: u32, field: &str, x: f64) -> f64 {
    match super::fields::float_digits(version, field) {
        Some(d) => {
            let scale = 10f64.powi(d as i32);
            let scaled = x * scale;
            let nudged = scaled + scaled.signum() * f64::EPSILON * scaled.abs().max(1.0) * 16.0;
            nudged.round() / scale
        }
        None => x,
    }
}
