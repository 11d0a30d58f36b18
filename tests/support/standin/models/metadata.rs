//! Metadata: custom `x_` fields created through `ir.model.fields` (the model gains the field
//! at once) and `fields_get`.

use serde_json::{Value, json};

use super::super::Vals;
use super::super::errors::{Fail, py_repr};
use super::super::orm::fields::{Ty, fd};
use super::super::orm::{Env, as_id, truthy};

impl Env<'_> {
    pub(crate) fn create_custom_field(&mut self, vals: &Vals) -> Result<i64, Fail> {
        self.check_vals_fields("ir.model.fields", vals)?;
        let name = vals
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if !name.starts_with("x_") {
            return Err(Fail::validation(
                "The operation cannot be completed: Custom fields must have a name that starts with 'x_'!",
            ));
        }
        let target = match vals.get("model_id").and_then(as_id) {
            Some(m) => self.str_of("ir.model", m, "model"),
            None => vals
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        };
        if !self.db.models.contains_key(&target) {
            return Err(self.not_null("ir.model.fields", "model_id"));
        }
        if self.field(&target, &name).is_some() {
            return Err(Fail::validation(
                "The operation cannot be completed: Field names must be unique per model.",
            ));
        }
        let ttype = vals.get("ttype").and_then(Value::as_str).unwrap_or("");
        let ty = Ty::from_odoo(ttype).ok_or_else(|| {
            Fail::value(format!(
                "Wrong value for ir.model.fields.ttype: {}",
                py_repr(&json!(ttype))
            ))
        })?;
        let model_id = self.find_one("ir.model", "model", &target).unwrap_or(0);
        let mut record = vals.clone();
        record.insert("model".into(), json!(target));
        record.insert("model_id".into(), json!(model_id));
        record.entry("state").or_insert(json!("manual"));
        let id = self.plain_create("ir.model.fields", &record)?;
        let label = vals
            .get("field_description")
            .and_then(Value::as_str)
            .unwrap_or(&name)
            .to_string();
        let mut field = fd(&name, ty, &label);
        field.custom = true;
        field.required = vals.get("required").is_some_and(truthy);
        if let Some(rel) = vals.get("relation").and_then(Value::as_str) {
            field.relation = Some(rel.into());
        }
        if ty == Ty::One2many {
            field.inverse = vals
                .get("relation_field")
                .and_then(Value::as_str)
                .map(str::to_string);
            field.store = false;
        }
        self.db
            .models
            .get_mut(&target)
            .expect("model exists")
            .fields
            .insert(name, field);
        Ok(id)
    }

    pub(crate) fn fields_get(
        &self,
        model: &str,
        allfields: Option<Vec<String>>,
        attributes: Option<Vec<String>>,
    ) -> Result<Value, Fail> {
        let m = self.model(model)?;
        let attrs: Vec<String> = attributes.filter(|a| !a.is_empty()).unwrap_or_else(|| {
            [
                "string",
                "type",
                "required",
                "readonly",
                "store",
                "relation",
                "selection",
                "searchable",
                "sortable",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect()
        });
        let mut out = Vals::new();
        for f in m.fields.values() {
            if let Some(only) = &allfields
                && !only.is_empty()
                && !only.contains(&f.name)
            {
                continue;
            }
            let mut d = Vals::new();
            for attr in &attrs {
                let v = match attr.as_str() {
                    "string" => json!(f.string),
                    "type" => json!(f.ty.odoo_name()),
                    "required" => json!(f.required),
                    "readonly" => json!(f.readonly),
                    "store" => json!(f.store),
                    "searchable" => json!(true),
                    "sortable" => json!(f.store),
                    "name" => json!(f.name),
                    "relation" if f.relation.is_some() => json!(f.relation),
                    // 19 shows at least two decimals of a cost whose digits it dropped (19/99).
                    "min_display_digits"
                        if self.v() >= 19
                            && f.name == "standard_price"
                            && model.starts_with("product.") =>
                    {
                        json!(2)
                    }
                    // stock.move's product_qty is declared with `digits=0` (17/77).
                    "digits" if model == "stock.move" && f.name == "product_qty" => json!(0),
                    "digits" if f.ty == Ty::Float => {
                        match super::super::orm::fields::float_digits(self.v(), &f.name) {
                            Some(d) => json!([16, d]),
                            None => json!(false),
                        }
                    }
                    "relation_field" if f.inverse.is_some() => json!(f.inverse),
                    "selection" if f.ty == Ty::Selection => json!(
                        f.selection
                            .iter()
                            .map(|(k, v)| json!([k, v]))
                            .collect::<Vec<_>>()
                    ),
                    _ => continue,
                };
                d.insert(attr.clone(), v);
            }
            out.insert(f.name.clone(), Value::Object(d));
        }
        Ok(Value::Object(out))
    }
}
