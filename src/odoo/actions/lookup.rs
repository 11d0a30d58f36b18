//! Lookups: the ids that the references of operations (a unit by name, a product by code,
//! a lot by name for its product) resolve to, read with one `search_read` per (model, field)
//! and kept for the run, so that a value is looked up once however many records name it.
//! Products read for set_stock bring their `tracking` along. A location looked up by
//! warehouse is the stock location of the warehouse with that name or code.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};

use super::compare::{many2one_id, record_id, text};
use super::{Applier, Refusal, Tag, Vals};
use crate::error::Consequence;
use crate::odoo::client::SearchOptions;
use crate::odoo::error::OdooError;
use crate::operation::{LookupRef, Operation};

impl<'a> Applier<'a> {
    /// The operation's values with looked-up fields replaced by ids.
    pub(super) fn resolved_values(&self, op: &Operation) -> Result<Vals, Refusal> {
        let mut vals = op.values.clone();
        for (field, r) in &op.lookups {
            let id = self.looked_up(field, r)?;
            vals.insert(field.clone(), json!(id));
        }
        // Keys are among the values; a key that is not (a hand-written operation) still counts.
        for (k, v) in &op.key {
            if !vals.contains_key(k) {
                vals.insert(k.clone(), v.clone());
            }
        }
        Ok(vals)
    }

    /// The id `r` resolved to (after [`Applier::resolve`]), or why there is none.
    pub(super) fn looked_up(&self, field: &str, r: &LookupRef) -> Result<i64, Refusal> {
        let lookups = self.lookups.borrow();
        let found = lookups
            .get(&(r.model.clone(), r.field.clone()))
            .and_then(|m| m.get(&text(&r.value)));
        resolved(found, field, r, "")
    }

    /// Looks up every value of `refs` not seen yet this run: one `search_read` per
    /// (model, field).
    /// `with_tracking` (set_stock): products are read with their `tracking` too.
    pub(super) async fn resolve<'r>(
        &self,
        refs: impl IntoIterator<Item = &'r LookupRef>,
        with_tracking: bool,
    ) -> Result<(), OdooError> {
        let mut pending: BTreeMap<(String, String), BTreeMap<String, Value>> = BTreeMap::new();
        for r in refs {
            let key = (r.model.clone(), r.field.clone());
            let t = text(&r.value);
            if self
                .lookups
                .borrow()
                .get(&key)
                .is_some_and(|m| m.contains_key(&t))
            {
                continue;
            }
            pending.entry(key).or_default().insert(t, r.value.clone());
        }
        for ((model, field), values) in pending {
            if (model.as_str(), field.as_str()) == WAREHOUSE {
                self.resolve_warehouses(values).await?;
                continue;
            }
            let domain = json!([[field, "in", values.values().collect::<Vec<_>>()]]);
            // Products come with their tracking: set_stock refuses lines without a lot for
            // tracked products, at no extra call.
            let products = with_tracking && model == "product.product";
            let fields: Vec<&str> = if products {
                vec![field.as_str(), "tracking"]
            } else {
                vec![field.as_str()]
            };
            let answer = self
                .client
                .search_read(&model, domain, &fields, SearchOptions::default())
                .await;
            let mut lookups = self.lookups.borrow_mut();
            let cache = lookups.entry((model, field.clone())).or_default();
            match answer {
                Ok(records) => {
                    let mut ids: HashMap<String, Vec<i64>> = HashMap::new();
                    for rec in &records {
                        if let (true, Some(id), Some(tracking)) = (
                            products,
                            record_id(rec),
                            rec.get("tracking").and_then(Value::as_str),
                        ) {
                            self.tracking.borrow_mut().insert(id, tracking.to_string());
                        }
                        if let (Some(id), Some(v)) = (record_id(rec), rec.get(&field)) {
                            ids.entry(text(v)).or_default().push(id);
                        }
                    }
                    for t in values.into_keys() {
                        let found = Found::from_ids(ids.remove(&t).unwrap_or_default());
                        cache.insert(t, found);
                    }
                }
                Err(e) if e.consequence() == Consequence::Reject => {
                    for t in values.into_keys() {
                        cache.insert(t, Found::Refused(Refusal::odoo(&e)));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Locations given by warehouse (`by = "warehouse"`): the stock location (`lot_stock_id`)
    /// of the warehouse whose name or short name (code) is the value, in one `search_read`.
    async fn resolve_warehouses(&self, values: BTreeMap<String, Value>) -> Result<(), OdooError> {
        let wanted: Vec<&Value> = values.values().collect();
        let domain = json!(["|", ["name", "in", wanted], ["code", "in", wanted]]);
        let answer = self
            .client
            .search_read(
                "stock.warehouse",
                domain,
                &["name", "code", "lot_stock_id"],
                SearchOptions::default(),
            )
            .await;
        let mut lookups = self.lookups.borrow_mut();
        let cache = lookups
            .entry((WAREHOUSE.0.to_string(), WAREHOUSE.1.to_string()))
            .or_default();
        match answer {
            Ok(warehouses) => {
                let mut ids: HashMap<String, Vec<i64>> = HashMap::new();
                for w in &warehouses {
                    let Some(stock) = w.get("lot_stock_id").and_then(many2one_id) else {
                        continue;
                    };
                    for field in ["name", "code"] {
                        if let Some(v) = w.get(field).filter(|v| v.is_string()) {
                            ids.entry(text(v)).or_default().push(stock);
                        }
                    }
                }
                for t in values.into_keys() {
                    cache.insert(
                        t.clone(),
                        Found::from_ids(ids.remove(&t).unwrap_or_default()),
                    );
                }
            }
            Err(e) if e.consequence() == Consequence::Reject => {
                for t in values.into_keys() {
                    cache.insert(t, Found::Refused(Refusal::odoo(&e)));
                }
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Forgets the values of `model` that were not found: records created since may match.
    pub(super) fn forget_missing(&self, model: &str) {
        for ((m, _), cache) in self.lookups.borrow_mut().iter_mut() {
            if m == model {
                cache.retain(|_, found| !matches!(found, Found::Missing));
            }
        }
    }

    /// Reads the `tracking` of the products of lines without a lot, once per run.
    pub(super) async fn resolve_tracking(
        &self,
        targets: &[(Tag, &Operation, i64, i64)],
    ) -> Result<(), OdooError> {
        let wanted: BTreeSet<i64> = targets
            .iter()
            .filter(|(_, op, product, _)| {
                !op.lookups.contains_key("lot_id") && !self.tracking.borrow().contains_key(product)
            })
            .map(|(_, _, product, _)| *product)
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let mut context = serde_json::Map::new();
        context.insert("active_test".into(), Value::Bool(false));
        let rows = self
            .client
            .search_read(
                "product.product",
                json!([["id", "in", wanted.iter().collect::<Vec<_>>()]]),
                &["tracking"],
                SearchOptions {
                    context: Some(context),
                    ..SearchOptions::default()
                },
            )
            .await?;
        for row in rows {
            if let (Some(id), Some(tracking)) = (
                row.get("id").and_then(Value::as_i64),
                row.get("tracking").and_then(Value::as_str),
            ) {
                self.tracking.borrow_mut().insert(id, tracking.to_string());
            }
        }
        // Products Odoo did not describe count as untracked.
        let mut tracking = self.tracking.borrow_mut();
        for id in wanted {
            tracking.entry(id).or_insert_with(|| "none".into());
        }
        Ok(())
    }

    /// Looks up the lots of `targets` not seen yet this run, for their products: one
    /// `search_read` per (model, field).
    pub(super) async fn resolve_lots(
        &self,
        targets: &[(Tag, &Operation, i64, i64)],
    ) -> Result<(), OdooError> {
        type Wanted = (
            BTreeSet<i64>,
            BTreeMap<String, Value>,
            BTreeSet<(i64, String)>,
        );
        let mut pending: BTreeMap<(String, String), Wanted> = BTreeMap::new();
        for (_, op, product, _) in targets {
            let Some(r) = op.lookups.get("lot_id") else {
                continue;
            };
            let t = text(&r.value);
            let key = (r.model.clone(), r.field.clone(), *product, t.clone());
            if self.lots.borrow().contains_key(&key) {
                continue;
            }
            let entry = pending
                .entry((r.model.clone(), r.field.clone()))
                .or_default();
            entry.0.insert(*product);
            entry.1.insert(t.clone(), r.value.clone());
            entry.2.insert((*product, t));
        }
        for ((model, field), (products, values, wanted)) in pending {
            let domain = json!([
                [field, "in", values.values().collect::<Vec<_>>()],
                ["product_id", "in", products]
            ]);
            let answer = self
                .client
                .search_read(
                    &model,
                    domain,
                    &[field.as_str(), "product_id"],
                    SearchOptions::default(),
                )
                .await;
            let mut ids: HashMap<(i64, String), Vec<i64>> = HashMap::new();
            let refused = match answer {
                Ok(records) => {
                    for rec in &records {
                        let product = rec.get("product_id").and_then(many2one_id);
                        if let (Some(id), Some(product), Some(v)) =
                            (record_id(rec), product, rec.get(&field))
                        {
                            ids.entry((product, text(v))).or_default().push(id);
                        }
                    }
                    None
                }
                Err(e) if e.consequence() == Consequence::Reject => Some(Refusal::odoo(&e)),
                Err(e) => return Err(e),
            };
            for (product, t) in wanted {
                let found = match &refused {
                    Some(r) => Found::Refused(r.clone()),
                    None => Found::from_ids(ids.remove(&(product, t.clone())).unwrap_or_default()),
                };
                self.lots
                    .borrow_mut()
                    .insert((model.clone(), field.clone(), product, t), found);
            }
        }
        Ok(())
    }
}

/// A location looked up by warehouse: `stock.location` "whose warehouse is" the value, read
/// from `stock.warehouse` by name or code.
const WAREHOUSE: (&str, &str) = ("stock.location", "warehouse");

/// What a looked-up value resolved to.
#[derive(Debug, Clone)]
pub(super) enum Found {
    One(i64),
    Missing,
    Many(Vec<i64>),
    /// Odoo refused the lookup itself (e.g. an unknown field).
    Refused(Refusal),
}

impl Found {
    fn from_ids(mut ids: Vec<i64>) -> Found {
        ids.sort_unstable();
        ids.dedup();
        match ids.as_slice() {
            [] => Found::Missing,
            [id] => Found::One(*id),
            _ => Found::Many(ids),
        }
    }
}

/// The id of a looked-up value, or why there is none. `suffix` follows the value in the
/// message (e.g. ` for product 'A-100'`).
pub(super) fn resolved(
    found: Option<&Found>,
    field: &str,
    r: &LookupRef,
    suffix: &str,
) -> Result<i64, Refusal> {
    let value = text(&r.value);
    let refusal = |message: String| Refusal {
        message,
        exception: None,
        field: Some(field.to_string()),
        value: Some(value.clone()),
    };
    match found {
        Some(Found::One(id)) => Ok(*id),
        Some(Found::Missing) | None => Err(refusal(format!(
            "{} with {} '{value}' not found{suffix}",
            r.model, r.field
        ))),
        Some(Found::Many(ids)) => Err(refusal(format!(
            "{} with {} '{value}' is not unique{suffix}: {} records match (ids {})",
            r.model,
            r.field,
            ids.len(),
            ids.iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        Some(Found::Refused(odoo)) => Err(Refusal {
            message: format!(
                "looking up {} by {} '{value}': {}",
                r.model, r.field, odoo.message
            ),
            exception: odoo.exception.clone(),
            field: Some(field.to_string()),
            value: Some(value.clone()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_messages_name_the_model_field_and_value() {
        let r = LookupRef {
            model: "uom.uom".into(),
            field: "name".into(),
            value: json!("Boxes"),
        };
        let e = resolved(Some(&Found::Missing), "uom_id", &r, "").unwrap_err();
        assert_eq!(e.message, "uom.uom with name 'Boxes' not found");
        assert_eq!(e.field.as_deref(), Some("uom_id"));
        assert_eq!(e.value.as_deref(), Some("Boxes"));
        let e = resolved(Some(&Found::Many(vec![3, 7])), "uom_id", &r, "").unwrap_err();
        assert_eq!(
            e.message,
            "uom.uom with name 'Boxes' is not unique: 2 records match (ids 3, 7)"
        );
        assert_eq!(resolved(Some(&Found::One(4)), "uom_id", &r, "").unwrap(), 4);
    }
}
