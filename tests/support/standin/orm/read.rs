//! Reading: a field's value in the ORM's own terms (stored, inherited from the template,
//! computed, one2many from its inverse), display names, and values as `read` returns them.

use serde_json::{Value, json};

use super::super::Vals;
use super::super::errors::Fail;
use super::fields::{Field, Ty};
use super::{Env, as_id, id_list, truthy};

impl Env<'_> {
    /// The value of a field in the ORM's own terms: many2one as id or false, x2many as ids.
    pub(crate) fn raw(&self, model: &str, id: i64, field: &str) -> Value {
        if field == "id" {
            return json!(id);
        }
        let Some(f) = self.field(model, field) else {
            return Value::Null;
        };
        if f.inherited {
            let tmpl = as_id(&self.stored(model, id, "product_tmpl_id")).unwrap_or(0);
            return self.raw("product.template", tmpl, field);
        }
        if f.store {
            let v = self.stored(model, id, field);
            return if v.is_null() { f.ty.empty() } else { v };
        }
        if let Some(v) = self.computed(model, id, field) {
            return v;
        }
        if f.ty == Ty::One2many {
            let (rel, inv) = (
                f.relation.clone().unwrap_or_default(),
                f.inverse.clone().unwrap_or_default(),
            );
            return json!(self.where_eq(&rel, &inv, &json!(id)));
        }
        f.ty.empty()
    }

    fn computed(&self, model: &str, id: i64, field: &str) -> Option<Value> {
        Some(match (model, field) {
            (_, "display_name") => json!(self.display_name(model, id)),
            ("product.template", "default_code" | "barcode") => {
                let variants = self.variants(id);
                match variants.as_slice() {
                    [one] => self.raw("product.product", *one, field),
                    _ => json!(false),
                }
            }
            ("product.template", "product_variant_id") => {
                json!(self.variants(id).first().copied().unwrap_or(0)).pipe_false()
            }
            ("product.template", "product_variant_ids") => json!(self.variants(id)),
            ("product.template", "qty_available") => json!(
                self.variants(id)
                    .iter()
                    .map(|&p| self.qty_available(p))
                    .sum::<f64>()
            ),
            ("product.template", "virtual_available") => json!(
                self.variants(id)
                    .iter()
                    .map(|&p| self.virtual_available(p))
                    .sum::<f64>()
            ),
            ("product.product", "qty_available") => json!(self.qty_available(id)),
            ("product.product", "virtual_available") => json!(self.virtual_available(id)),
            ("stock.quant", "inventory_diff_quantity") => {
                if truthy(&self.stored(model, id, "inventory_quantity_set")) {
                    json!(
                        self.num(model, id, "inventory_quantity") - self.num(model, id, "quantity")
                    )
                } else {
                    json!(0.0)
                }
            }
            ("stock.quant", "inventory_quantity_auto_apply") => {
                json!(self.num(model, id, "quantity"))
            }
            ("stock.quant", "product_uom_id") => {
                let p = as_id(&self.stored(model, id, "product_id")).unwrap_or(0);
                self.raw("product.product", p, "uom_id")
            }
            ("res.partner", "country_code") => match as_id(&self.stored(model, id, "country_id")) {
                Some(c) => self.raw("res.country", c, "code"),
                None => json!(false),
            },
            // The demand in the product's unit: the stand-in knows one unit per product.
            ("stock.move", "product_qty") => json!(self.num(model, id, "product_uom_qty")),
            ("stock.lot", "product_qty") => {
                // Odoo sums the lot's internal quants: with none, Python's `sum([])` is the
                // integer 0 (18/94, 19/102, 17/54).
                let quants: Vec<f64> = self
                    .where_eq("stock.quant", "lot_id", &json!(id))
                    .into_iter()
                    .filter(|&q| {
                        as_id(&self.stored("stock.quant", q, "location_id"))
                            .is_some_and(|l| self.is_internal(l))
                    })
                    .map(|q| self.num("stock.quant", q, "quantity"))
                    .collect();
                if quants.is_empty() {
                    json!(0)
                } else {
                    json!(quants.iter().sum::<f64>())
                }
            }
            ("stock.picking", "picking_type_code") => {
                let t = as_id(&self.stored(model, id, "picking_type_id")).unwrap_or(0);
                self.raw("stock.picking.type", t, "code")
            }
            ("stock.picking", "move_ids_without_package") => self.raw(model, id, "move_ids"),
            ("ir.model.data", "complete_name") => json!(format!(
                "{}.{}",
                self.stored(model, id, "module").as_str().unwrap_or(""),
                self.stored(model, id, "name").as_str().unwrap_or("")
            )),
            _ => return None,
        })
    }

    pub(crate) fn num(&self, model: &str, id: i64, field: &str) -> f64 {
        self.raw(model, id, field).as_f64().unwrap_or(0.0)
    }

    pub(crate) fn str_of(&self, model: &str, id: i64, field: &str) -> String {
        match self.raw(model, id, field) {
            Value::String(s) => s,
            _ => String::new(),
        }
    }

    pub(crate) fn variants(&self, tmpl: i64) -> Vec<i64> {
        self.where_eq("product.product", "product_tmpl_id", &json!(tmpl))
    }

    pub(crate) fn display_name(&self, model: &str, id: i64) -> String {
        let name = self.str_of(model, id, "name");
        match model {
            "product.product" | "product.template" => {
                let code = self.str_of(model, id, "default_code");
                if code.is_empty() {
                    name
                } else {
                    format!("[{code}] {name}")
                }
            }
            "stock.location" | "product.category" => {
                let full = self.str_of(model, id, "complete_name");
                if full.is_empty() { name } else { full }
            }
            "stock.picking.type" => {
                let wh = as_id(&self.stored(model, id, "warehouse_id"));
                match wh {
                    Some(wh) => format!("{}: {name}", self.str_of("stock.warehouse", wh, "name")),
                    None => name,
                }
            }
            "res.partner" => match as_id(&self.stored(model, id, "parent_id")) {
                Some(parent) if !name.is_empty() => {
                    format!("{}, {name}", self.display_name(model, parent))
                }
                Some(parent) => self.display_name(model, parent),
                None => name,
            },
            "res.country.state" => {
                let country = as_id(&self.stored(model, id, "country_id")).unwrap_or(0);
                format!("{name} ({})", self.str_of("res.country", country, "code"))
            }
            "ir.model.data" => self
                .raw(model, id, "complete_name")
                .as_str()
                .unwrap_or("")
                .into(),
            "stock.move" => {
                let reference = as_id(&self.stored(model, id, "picking_id"))
                    .map(|p| self.str_of("stock.picking", p, "name"))
                    .unwrap_or_default();
                if reference.is_empty() {
                    name
                } else {
                    reference
                }
            }
            _ if name.is_empty() => format!("{model},{id}"),
            _ => name,
        }
    }

    /// A field's value as `read` returns it.
    pub(crate) fn read_value(&self, model: &str, id: i64, f: &Field) -> Value {
        let raw = self.raw(model, id, &f.name);
        match f.ty {
            Ty::Many2one => {
                let rel = f.relation.as_deref().unwrap_or_default();
                match as_id(&raw) {
                    Some(rid) if self.exists(rel, rid) => json!([rid, self.display_name(rel, rid)]),
                    _ => json!(false),
                }
            }
            Ty::Float => json!(raw.as_f64().unwrap_or(0.0)),
            Ty::Integer => json!(raw.as_i64().unwrap_or(0)),
            Ty::Boolean => json!(truthy(&raw)),
            Ty::One2many | Ty::Many2many => json!(id_list(&raw)),
            // PostgreSQL keeps fractions of a second (and orders by them); Odoo reads whole
            // seconds.
            Ty::Datetime => match raw {
                Value::String(s) => json!(s.get(..19).unwrap_or(&s)),
                _ => json!(false),
            },
            _ => match raw {
                Value::String(s) => json!(s),
                _ => json!(false),
            },
        }
    }

    /// Every stored (or inherited) field, raw: what [`OdooStandin::records`] shows.
    pub(crate) fn raw_record(&self, model: &str, id: i64) -> Vals {
        let mut out = Vals::new();
        out.insert("id".into(), json!(id));
        if let Some(m) = self.db.models.get(model) {
            for f in m.fields.values() {
                if (f.store || f.inherited) && f.name != "id" {
                    out.insert(f.name.clone(), self.raw(model, id, &f.name));
                }
            }
        }
        out
    }

    pub(crate) fn check_read_fields(&self, model: &str, fields: &[String]) -> Result<(), Fail> {
        let m = self.model(model)?;
        for f in fields {
            if f != "id" && !m.fields.contains_key(f) {
                // "on model 'x'" on 17 and 18 (18/132), "on 'x'" on 19 (19/128, 19/139).
                return Err(Fail::value(if self.v() >= 19 {
                    format!("Invalid field '{f}' on '{model}'")
                } else {
                    format!("Invalid field '{f}' on model '{model}'")
                }));
            }
        }
        Ok(())
    }

    pub(crate) fn read(
        &self,
        model: &str,
        ids: &[i64],
        fields: Option<&[String]>,
    ) -> Result<Value, Fail> {
        let m = self.model(model)?;
        let names: Vec<String> = match fields {
            Some(list) if !list.is_empty() => {
                self.check_read_fields(model, list)?;
                list.to_vec()
            }
            _ => m.fields.keys().cloned().collect(),
        };
        let mut out = Vec::new();
        for &id in ids {
            if !self.exists(model, id) {
                // Reading a missing id leaves it out (transcript 18/23).
                continue;
            }
            let mut rec = Vals::new();
            rec.insert("id".into(), json!(id));
            for name in &names {
                if name == "id" {
                    continue;
                }
                let f = &m.fields[name];
                rec.insert(name.clone(), self.read_value(model, id, f));
            }
            out.push(Value::Object(rec));
        }
        Ok(Value::Array(out))
    }
}

trait PipeFalse {
    fn pipe_false(self) -> Value;
}

impl PipeFalse for Value {
    /// `0` (no record) reads as `false`.
    fn pipe_false(self) -> Value {
        if self == json!(0) { json!(false) } else { self }
    }
}
