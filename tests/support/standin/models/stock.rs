//! Stock: on-hand and forecast quantities, quants (inventory mode, the checks on every quant),
//! inventory adjustments applied with their moves, and stock moved by validated transfers.

use serde_json::{Value, json};

use super::super::Vals;
use super::super::errors::{Fail, py_ids};
use super::super::orm::{ADMIN_UID, Env, as_id, now, truthy};

impl Env<'_> {
    pub(crate) fn stock_location(&self) -> i64 {
        as_id(&self.stored("stock.warehouse", 1, "lot_stock_id")).unwrap_or(0)
    }

    pub(crate) fn location_by_usage(&self, usage: &str) -> i64 {
        self.where_eq("stock.location", "usage", &json!(usage))
            .first()
            .copied()
            .unwrap_or(0)
    }

    pub(crate) fn is_internal(&self, location: i64) -> bool {
        self.stored("stock.location", location, "usage") == json!("internal")
    }

    pub(crate) fn qty_available(&self, product: i64) -> f64 {
        self.where_eq("stock.quant", "product_id", &json!(product))
            .into_iter()
            .filter(|&q| {
                as_id(&self.stored("stock.quant", q, "location_id"))
                    .is_some_and(|l| self.is_internal(l))
            })
            .map(|q| self.num("stock.quant", q, "quantity"))
            .sum()
    }

    pub(crate) fn virtual_available(&self, product: i64) -> f64 {
        let mut qty = self.qty_available(product);
        for m in self.where_eq("stock.move", "product_id", &json!(product)) {
            let state = self.str_of("stock.move", m, "state");
            if matches!(state.as_str(), "draft" | "done" | "cancel") {
                continue;
            }
            let src = as_id(&self.stored("stock.move", m, "location_id")).unwrap_or(0);
            let dst = as_id(&self.stored("stock.move", m, "location_dest_id")).unwrap_or(0);
            let demand = self.num("stock.move", m, "product_uom_qty");
            match (self.is_internal(src), self.is_internal(dst)) {
                (false, true) => qty += demand,
                (true, false) => qty -= demand,
                _ => {}
            }
        }
        qty
    }

    pub(crate) fn find_quant(&self, product: i64, location: i64, lot: Option<i64>) -> Option<i64> {
        let lot = lot.map(|l| json!(l)).unwrap_or(json!(false));
        self.where_eq("stock.quant", "product_id", &json!(product))
            .into_iter()
            .find(|&q| {
                self.stored("stock.quant", q, "location_id") == json!(location)
                    && self.raw("stock.quant", q, "lot_id") == lot
                    && !truthy(&self.raw("stock.quant", q, "package_id"))
                    && !truthy(&self.raw("stock.quant", q, "owner_id"))
            })
    }

    /// Whether stock is kept for `product`: `is_storable` from 18 on, `type = 'product'` on 17.
    pub(crate) fn is_storable(&self, product: i64) -> bool {
        if self.v() >= 18 {
            truthy(&self.raw("product.product", product, "is_storable"))
        } else {
            self.raw("product.product", product, "type") == json!("product")
        }
    }

    /// A quant row, with the checks Odoo runs on every quant.
    fn new_quant(&mut self, vals: &Vals) -> Result<i64, Fail> {
        let q = self.plain_create("stock.quant", vals)?;
        let product = as_id(&self.stored("stock.quant", q, "product_id")).unwrap_or(0);
        if !self.is_storable(product) {
            return Err(Fail::validation(
                "Quants cannot be created for consumables or services.",
            ));
        }
        let location = as_id(&self.stored("stock.quant", q, "location_id")).unwrap_or(0);
        if self.stored("stock.location", location, "usage") == json!("view") {
            return Err(Fail::validation(format!(
                "You cannot take products from or deliver products to a location of type \"view\" ({}).",
                self.str_of("stock.location", location, "name")
            )));
        }
        Ok(q)
    }

    /// `stock.quant.create` as Odoo does it: in inventory mode only the inventory fields
    /// are accepted, an existing quant for the same product/location/lot is reused, and
    /// `inventory_quantity_auto_apply` applies at once (transcripts 18/37–45, 19/41).
    pub(crate) fn create_quant(&mut self, vals: &Vals) -> Result<i64, Fail> {
        self.check_vals_fields("stock.quant", vals)?;
        let inventory = vals.contains_key("inventory_quantity")
            || vals.contains_key("inventory_quantity_auto_apply");
        if !(self.ctx_flag("inventory_mode") && inventory) {
            return self.new_quant(vals);
        }
        const ALLOWED: &[&str] = &[
            "product_id",
            "location_id",
            "lot_id",
            "package_id",
            "owner_id",
            "inventory_quantity",
            "inventory_quantity_auto_apply",
            "inventory_date",
            "user_id",
            "inventory_quantity_set",
            "is_outdated",
        ];
        if vals.keys().any(|k| !ALLOWED.contains(&k.as_str())) {
            return Err(Fail::user(
                "Quant's creation is restricted, you can't do this operation.",
            ));
        }
        let auto = vals.contains_key("inventory_quantity_auto_apply");
        let qty_field = self.db.models["stock.quant"].fields["inventory_quantity"].clone();
        let given = vals
            .get("inventory_quantity_auto_apply")
            .or_else(|| vals.get("inventory_quantity"))
            .cloned()
            .unwrap_or(json!(0));
        let qty = self.convert("stock.quant", &qty_field, &given)?;
        let product = vals.get("product_id").and_then(as_id).unwrap_or(0);
        let location = vals.get("location_id").and_then(as_id).unwrap_or(0);
        let lot = vals.get("lot_id").and_then(as_id);
        let quant = match self.find_quant(product, location, lot) {
            Some(q) => q,
            None => {
                let mut base = Vals::new();
                for key in [
                    "product_id",
                    "location_id",
                    "lot_id",
                    "package_id",
                    "owner_id",
                ] {
                    if let Some(v) = vals.get(key) {
                        base.insert(key.into(), v.clone());
                    }
                }
                self.new_quant(&base)?
            }
        };
        self.set("stock.quant", quant, "inventory_quantity", qty);
        self.set("stock.quant", quant, "inventory_quantity_set", json!(true));
        self.set("stock.quant", quant, "user_id", json!(ADMIN_UID));
        if auto {
            self.auto_apply(&[quant])?;
        }
        Ok(quant)
    }

    pub(crate) fn write_quant(&mut self, ids: &[i64], vals: &Vals) -> Result<(), Fail> {
        let inventory = vals.contains_key("inventory_quantity")
            || vals.contains_key("inventory_quantity_auto_apply");
        if !(self.ctx_flag("inventory_mode") && inventory) {
            return self.plain_write("stock.quant", ids, vals);
        }
        const ALLOWED: &[&str] = &[
            "inventory_quantity",
            "inventory_quantity_auto_apply",
            "inventory_date",
            "user_id",
            "inventory_quantity_set",
            "is_outdated",
            "lot_id",
            "package_id",
            "owner_id",
        ];
        if vals.keys().any(|k| !ALLOWED.contains(&k.as_str())) {
            return Err(Fail::user(
                "Quant's editing is restricted, you can't do this operation.",
            ));
        }
        let mut plain = vals.clone();
        let auto = plain.remove("inventory_quantity_auto_apply");
        if let Some(q) = auto {
            plain.insert("inventory_quantity".into(), q);
        }
        self.plain_write("stock.quant", ids, &plain)?;
        for &q in ids {
            self.set("stock.quant", q, "inventory_quantity_set", json!(true));
        }
        if vals.contains_key("inventory_quantity_auto_apply") {
            self.auto_apply(ids)?;
        }
        Ok(())
    }

    /// The inverse of `inventory_quantity_auto_apply`. 18 and 19 apply a lot-tracked product
    /// without a lot silently, to a quant with `lot_id` false (18/102–104, 19/110–112); 17
    /// asks for the lot like `action_apply_inventory` and ignores the wizard, so nothing is
    /// applied and the count stays pending (17/58–63).
    fn auto_apply(&mut self, quants: &[i64]) -> Result<(), Fail> {
        self.apply_inventory_checking_lots(quants, self.v() < 18)?;
        Ok(())
    }

    /// `action_apply_inventory`: `None` when applied; a wizard action when a tracked
    /// product has no lot (then nothing is applied).
    pub(crate) fn apply_inventory(&mut self, quants: &[i64]) -> Result<Option<Value>, Fail> {
        self.apply_inventory_checking_lots(quants, true)
    }

    fn apply_inventory_checking_lots(
        &mut self,
        quants: &[i64],
        check_lots: bool,
    ) -> Result<Option<Value>, Fail> {
        let missing: Vec<i64> = quants
            .iter()
            .copied()
            .filter(|&q| !self.exists("stock.quant", q))
            .collect();
        if !missing.is_empty() {
            return Err(Fail::missing(format!(
                "Record does not exist or has been deleted.\n(Record: stock.quant{}, User: {ADMIN_UID})",
                py_ids(&missing)
            )));
        }
        let mut untracked: Vec<i64> = Vec::new();
        for &q in quants {
            if !truthy(&self.stored("stock.quant", q, "inventory_quantity_set")) {
                continue;
            }
            let product = as_id(&self.stored("stock.quant", q, "product_id")).unwrap_or(0);
            let tracking = self.str_of("product.product", product, "tracking");
            let inv = self.num("stock.quant", q, "inventory_quantity");
            let qty = self.num("stock.quant", q, "quantity");
            if check_lots
                && matches!(tracking.as_str(), "lot" | "serial")
                && !truthy(&self.raw("stock.quant", q, "lot_id"))
                && inv != qty
                && qty == 0.0
            {
                untracked.push(product);
            }
        }
        if !untracked.is_empty() {
            let mut ctx = self.ctx.clone();
            ctx.insert("default_quant_ids".into(), json!(quants));
            ctx.insert("default_product_ids".into(), json!(untracked));
            return Ok(Some(json!({
                "name": "Tracked Products in Inventory Adjustment",
                "type": "ir.actions.act_window",
                "view_mode": "form",
                "views": [[false, "form"]],
                "res_model": "stock.track.confirmation",
                "target": "new",
                "context": ctx,
            })));
        }
        let adjustment = self.location_by_usage("inventory");
        let user = self.user_name();
        for &q in quants {
            if !truthy(&self.stored("stock.quant", q, "inventory_quantity_set")) {
                continue;
            }
            let inv = self.num("stock.quant", q, "inventory_quantity");
            let qty = self.num("stock.quant", q, "quantity");
            let diff = inv - qty;
            if diff != 0.0 {
                let product = as_id(&self.stored("stock.quant", q, "product_id")).unwrap_or(0);
                let location = as_id(&self.stored("stock.quant", q, "location_id")).unwrap_or(0);
                let (src, dst) = if diff > 0.0 {
                    (adjustment, location)
                } else {
                    (location, adjustment)
                };
                let uom = self.raw("product.product", product, "uom_id");
                let lot = self.raw("stock.quant", q, "lot_id");
                let mv = self.plain_create(
                    "stock.move",
                    json!({
                        "name": format!("Product Quantity Updated ({user})"),
                        "product_id": product,
                        "product_uom_qty": diff.abs(),
                        "quantity": diff.abs(),
                        "product_uom": uom,
                        "location_id": src,
                        "location_dest_id": dst,
                        "state": "done",
                        "is_inventory": true,
                        "picked": true,
                        "date": now(),
                    })
                    .as_object()
                    .expect("object"),
                )?;
                self.plain_create(
                    "stock.move.line",
                    json!({
                        "move_id": mv,
                        "product_id": product,
                        "quantity": diff.abs(),
                        "location_id": src,
                        "location_dest_id": dst,
                        "lot_id": lot,
                        "picked": true,
                    })
                    .as_object()
                    .expect("object"),
                )?;
            }
            self.set("stock.quant", q, "quantity", json!(inv));
            self.set("stock.quant", q, "inventory_quantity", json!(0.0));
            self.set("stock.quant", q, "inventory_quantity_set", json!(false));
        }
        Ok(None)
    }

    /// Adds `delta` to the on-hand quantity of an internal location (validated moves).
    pub(crate) fn move_stock(
        &mut self,
        product: i64,
        location: i64,
        delta: f64,
    ) -> Result<(), Fail> {
        self.move_lot_stock(product, location, None, delta)
    }

    /// Moves stock of one lot (or none) in or out of an internal location.
    pub(crate) fn move_lot_stock(
        &mut self,
        product: i64,
        location: i64,
        lot: Option<i64>,
        delta: f64,
    ) -> Result<(), Fail> {
        if !self.is_internal(location) || !self.is_storable(product) {
            return Ok(());
        }
        match self.find_quant(product, location, lot) {
            Some(q) => {
                let qty = self.num("stock.quant", q, "quantity") + delta;
                self.set("stock.quant", q, "quantity", json!(qty));
            }
            None => {
                let mut vals =
                    json!({"product_id": product, "location_id": location, "quantity": delta});
                if let Some(lot) = lot {
                    vals["lot_id"] = json!(lot);
                }
                self.plain_create("stock.quant", vals.as_object().expect("object"))?;
            }
        }
        Ok(())
    }
}
