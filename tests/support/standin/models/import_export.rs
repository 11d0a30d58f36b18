//! Import and export: external ids (looked up, invented by `export_data`), `export_data`, and
//! `load` — Odoo's import, cell by cell, all rows or none.

use serde_json::{Value, json};

use super::super::Vals;
use super::super::errors::Fail;
use super::super::orm::fields::{Field, Ty};
use super::super::orm::{Env, as_id, parse_float, truthy};
use super::strings;

impl Env<'_> {
    fn split_xmlid(xmlid: &str) -> (String, String) {
        match xmlid.split_once('.') {
            Some((module, name)) => (module.into(), name.into()),
            None => ("__import__".into(), xmlid.into()),
        }
    }

    /// The record an external id names in `model`, if it still exists.
    fn xmlid_lookup(&self, model: &str, xmlid: &str) -> Option<i64> {
        let (module, name) = Self::split_xmlid(xmlid);
        self.all_ids("ir.model.data")
            .into_iter()
            .find(|&x| {
                self.str_of("ir.model.data", x, "module") == module
                    && self.str_of("ir.model.data", x, "name") == name
                    && self.str_of("ir.model.data", x, "model") == model
            })
            .and_then(|x| self.raw("ir.model.data", x, "res_id").as_i64())
            .filter(|&id| self.exists(model, id))
    }

    fn xmlid_of(&mut self, model: &str, id: i64) -> Result<String, Fail> {
        let found = self.all_ids("ir.model.data").into_iter().find(|&x| {
            self.str_of("ir.model.data", x, "model") == model
                && self.raw("ir.model.data", x, "res_id") == json!(id)
        });
        if let Some(x) = found {
            return Ok(self
                .raw("ir.model.data", x, "complete_name")
                .as_str()
                .unwrap_or("")
                .to_string());
        }
        // export_data invents an __export__ id for records that have none.
        let name = format!(
            "{}_{id}_{:08x}",
            model.replace('.', "_"),
            (id as u64).wrapping_mul(0x9e37_79b9) & 0xffff_ffff
        );
        self.plain_create(
            "ir.model.data",
            json!({"module": "__export__", "name": name, "model": model, "res_id": id})
                .as_object()
                .expect("object"),
        )?;
        Ok(format!("__export__.{name}"))
    }

    pub(crate) fn export_data(
        &mut self,
        model: &str,
        ids: &[i64],
        fields: &[String],
    ) -> Result<Value, Fail> {
        let mut rows = Vec::new();
        for &id in ids {
            if !self.exists(model, id) {
                continue;
            }
            let mut row = Vec::new();
            for name in fields {
                let cell = match name.as_str() {
                    "id" => json!(self.xmlid_of(model, id)?),
                    ".id" => json!(id),
                    _ => {
                        let (base, suffix) = match name.split_once('/') {
                            Some((b, s)) => (b, Some(s)),
                            None => (name.as_str(), None),
                        };
                        let f = self
                            .field(model, base)
                            .cloned()
                            .ok_or_else(|| Fail::value(format!("Invalid field name '{name}'")))?;
                        let raw = self.raw(model, id, base);
                        match (f.ty, suffix) {
                            (Ty::Many2one, Some("id")) => match as_id(&raw) {
                                Some(r) => json!(
                                    self.xmlid_of(f.relation.as_deref().unwrap_or_default(), r)?
                                ),
                                None => json!(""),
                            },
                            (Ty::Many2one, _) => match as_id(&raw) {
                                Some(r) => json!(
                                    self.display_name(f.relation.as_deref().unwrap_or_default(), r)
                                ),
                                None => json!(""),
                            },
                            (Ty::Boolean, _) => json!(truthy(&raw)),
                            (_, _) if !truthy(&raw) && !raw.is_number() => json!(""),
                            _ => self.read_value(model, id, &f),
                        }
                    }
                };
                row.push(cell);
            }
            rows.push(Value::Array(row));
        }
        Ok(json!({ "datas": rows }))
    }

    /// Converts one import cell (always a string) the way Odoo's import does; the error is
    /// the message `load` reports for the row.
    fn import_value(&self, f: &Field, suffix: Option<&str>, text: &str) -> Result<Value, String> {
        if text.is_empty() {
            return Ok(json!(false));
        }
        let rel = f.relation.as_deref().unwrap_or_default();
        match (f.ty, suffix) {
            (Ty::Many2one, Some("id")) => self
                .xmlid_lookup(rel, text)
                .map(|id| json!(id))
                .ok_or_else(|| {
                    format!(
                        "No matching record found for external id '{text}' in field '{}'",
                        f.string
                    )
                }),
            (Ty::Many2one, Some(".id")) => text
                .parse::<i64>()
                .ok()
                .filter(|&id| self.exists(rel, id))
                .map(|id| json!(id))
                .ok_or_else(|| {
                    format!(
                        "No matching record found for database id '{text}' in field '{}'",
                        f.string
                    )
                }),
            (Ty::Many2one, _) => self
                .all_ids(rel)
                .into_iter()
                .find(|&id| {
                    self.display_name(rel, id) == text || self.str_of(rel, id, "name") == text
                })
                .map(|id| json!(id))
                .ok_or_else(|| {
                    format!(
                        "No matching record found for name '{text}' in field '{}'",
                        f.string
                    )
                }),
            (Ty::Float, _) => parse_float(text).map(|x| json!(x)).ok_or_else(|| {
                format!(
                    "'{text}' does not seem to be a number for field '{}'",
                    f.string
                )
            }),
            (Ty::Integer, _) => text.trim().parse::<i64>().map(|x| json!(x)).map_err(|_| {
                format!(
                    "'{text}' does not seem to be an integer for field '{}'",
                    f.string
                )
            }),
            (Ty::Boolean, _) => Ok(json!(!matches!(
                text.to_lowercase().as_str(),
                "0" | "false" | "no" | "off"
            ))),
            (Ty::Selection, _) => f
                .selection
                .iter()
                .find(|(k, v)| k == text || v.eq_ignore_ascii_case(text))
                .map(|(k, _)| json!(k))
                .ok_or_else(|| {
                    format!("Value '{text}' not found in selection field '{}'", f.string)
                }),
            (Ty::One2many | Ty::Many2many, _) => Err(format!(
                "The stand-in does not import {} fields ('{}')",
                f.ty.odoo_name(),
                f.string
            )),
            _ => Ok(json!(text)),
        }
    }

    /// Why the create `load` attempts for a row whose `.id` is unknown fails: the first
    /// required field without a default the row leaves unset, worded as each version's
    /// import reports a NOT NULL violation (17/28, 18/85, 19/92).
    fn load_create_refusal(&self, model: &str, vals: &Vals) -> Option<String> {
        let f = self.db.models[model]
            .fields
            .values()
            .find(|f| f.required && f.default.is_none() && !vals.contains_key(&f.name))?;
        let table = if f.inherited {
            "product_template".to_string()
        } else {
            model.replace('.', "_")
        };
        Some(match self.v() {
            17 => format!("Missing required value for the field '{}'", f.name),
            18 if f.inherited => format!(
                "Missing required value for the field '{}' on a linked model [{table}]",
                f.name
            ),
            18 => format!(
                "Missing required value for the field '{}' ({})",
                f.string, f.name
            ),
            _ => format!(
                "Missing required value for the field '{}' ({}).\nModel: Unknown\n- create/update: a mandatory field is not set\n- delete: another model requires the record being deleted, you can archive it instead\n",
                f.string, f.name
            ),
        })
    }

    /// `load(fields, data)`: Odoo's import. Any bad row gives `ids: false` with messages,
    /// and nothing is kept (transcripts 18/25–31, 19/36–39).
    pub(crate) fn load(&mut self, model: &str, a: &Vals) -> Result<Value, Fail> {
        let columns = strings(a.get("fields")).unwrap_or_default();
        let data: Vec<Vec<Value>> = a
            .get("data")
            .and_then(Value::as_array)
            .map(|rows| {
                rows.iter()
                    .map(|r| r.as_array().cloned().unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default();
        enum Col {
            XmlId,
            DbId,
            Field(Field, Option<String>),
        }
        let mut cols = Vec::new();
        for name in &columns {
            cols.push(match name.as_str() {
                "id" => Col::XmlId,
                ".id" => Col::DbId,
                _ => {
                    let (base, suffix) = match name.split_once('/') {
                        Some((b, s)) => (b, Some(s.to_string())),
                        None => (name.as_str(), None),
                    };
                    let f = self
                        .field(model, base)
                        .cloned()
                        .filter(|_| matches!(suffix.as_deref(), None | Some("id") | Some(".id")))
                        .ok_or_else(|| {
                            if self.v() == 17 {
                                // 17 looks the column up without a check: a bare KeyError (17/25).
                                Fail::new("builtins.KeyError", base)
                            } else {
                                Fail::value(format!("Invalid field name '{name}'"))
                            }
                        })?;
                    Col::Field(f, suffix)
                }
            });
        }
        let rows_of = |i: usize| json!({"from": i, "to": i});
        let mut messages: Vec<Value> = Vec::new();
        let mut ids: Vec<i64> = Vec::new();
        let mut prepared = Vec::new();
        for (i, row) in data.iter().enumerate() {
            let mut vals = Vals::new();
            let (mut xmlid, mut dbid, mut ok) = (None, None, true);
            for (col, cell) in cols.iter().zip(row.iter()) {
                let text = match cell {
                    Value::String(s) => s.clone(),
                    Value::Null | Value::Bool(false) => String::new(),
                    other => other.to_string(),
                };
                match col {
                    Col::XmlId if !text.is_empty() => xmlid = Some(text),
                    Col::DbId if !text.is_empty() => dbid = Some(text),
                    Col::XmlId | Col::DbId => {}
                    Col::Field(f, suffix) => match self.import_value(f, suffix.as_deref(), &text) {
                        Ok(v) => {
                            vals.insert(f.name.clone(), v);
                        }
                        Err(message) => {
                            ok = false;
                            messages.push(json!({
                                "rows": rows_of(i), "type": "error", "record": i,
                                "field": f.name, "message": message, "field_name": f.string,
                            }));
                        }
                    },
                }
            }
            prepared.push((i, ok, xmlid, dbid, vals));
        }
        for (i, ok, xmlid, dbid, vals) in prepared {
            if !ok {
                continue;
            }
            let missing = vals.iter().find_map(|(k, v)| {
                let f = self.field(model, k)?;
                (f.required && !truthy(v)).then(|| f.clone())
            });
            if let Some(f) = missing {
                messages.push(json!({
                    "rows": rows_of(i), "record": i, "type": "error",
                    "message": format!("Missing required value for the field '{}' ({})", f.string, f.name),
                    "field": f.name,
                }));
                continue;
            }
            let target = match (&xmlid, &dbid) {
                (Some(x), _) => self.xmlid_lookup(model, x),
                (None, Some(d)) => match d.parse::<i64>().ok().filter(|&id| self.exists(model, id))
                {
                    Some(id) => Some(id),
                    None => {
                        // Odoo reports the unknown id, then still tries to create the row
                        // and reports why that failed too (18/85–86, 19/92–93, 17/28–29).
                        messages.push(json!({
                            "rows": rows_of(i), "record": i, "type": "error",
                            "message": format!("Unknown database identifier '{d}'"),
                            "field": ".id",
                        }));
                        if let Some(message) = self.load_create_refusal(model, &vals) {
                            messages.push(json!({
                                "rows": rows_of(i), "record": i, "type": "error",
                                "message": message,
                            }));
                        }
                        continue;
                    }
                },
                (None, None) => None,
            };
            let result = match target {
                Some(id) => self.write(model, &[id], &vals).map(|_| id),
                None => self.create(model, &vals).and_then(|id| {
                    if let Some(x) = &xmlid {
                        let (module, name) = Self::split_xmlid(x);
                        self.plain_create(
                            "ir.model.data",
                            json!({"module": module, "name": name, "model": model, "res_id": id, "noupdate": false})
                                .as_object()
                                .expect("object"),
                        )?;
                    }
                    Ok(id)
                }),
            };
            match result {
                Ok(id) => ids.push(id),
                Err(fail) => messages.push(json!({
                    "rows": rows_of(i), "record": i, "type": "error", "message": fail.message,
                })),
            }
        }
        if messages.is_empty() {
            Ok(json!({"ids": ids, "messages": [], "nextrow": 0}))
        } else {
            self.rollback = true;
            Ok(json!({"ids": false, "messages": messages, "nextrow": 0}))
        }
    }
}
