//! Pickings: deliveries and their moves, reservation, and `button_validate` with the wizards
//! it can answer instead (SMS on 19, backorder) and the backorders it creates.

use serde_json::{Value, json};

use super::super::Vals;
use super::super::errors::{Fail, py_ids};
use super::super::orm::{ADMIN_UID, Env, as_id, id_list, now, truthy};

impl Env<'_> {
    pub(crate) fn next_picking_name(&self, picking_type: i64) -> String {
        let wh = as_id(&self.stored("stock.picking.type", picking_type, "warehouse_id"))
            .map(|w| self.str_of("stock.warehouse", w, "code"))
            .unwrap_or_else(|| "WH".into());
        let code = self.str_of("stock.picking.type", picking_type, "sequence_code");
        let code = if code.is_empty() {
            "INT".to_string()
        } else {
            code
        };
        let prefix = format!("{wh}/{code}/");
        let last = self
            .all_ids("stock.picking")
            .into_iter()
            .filter_map(|p| {
                self.str_of("stock.picking", p, "name")
                    .strip_prefix(&prefix)
                    .and_then(|n| n.parse::<u64>().ok())
            })
            .max()
            .unwrap_or(0);
        format!("{prefix}{:05}", last + 1)
    }

    fn picking_moves(&self, picking: i64) -> Vec<i64> {
        self.where_eq("stock.move", "picking_id", &json!(picking))
            .into_iter()
            .filter(|&m| {
                !matches!(
                    self.str_of("stock.move", m, "state").as_str(),
                    "done" | "cancel"
                )
            })
            .collect()
    }

    /// What a move delivers on validation: its quantity once picked.
    fn done_qty(&self, mv: i64) -> f64 {
        if truthy(&self.raw("stock.move", mv, "picked")) {
            self.num("stock.move", mv, "quantity")
        } else {
            0.0
        }
    }

    pub(crate) fn add_delivery(
        &mut self,
        partner: i64,
        lines: &[(i64, f64)],
        name: Option<&str>,
        scheduled: Option<&str>,
    ) -> Result<i64, Fail> {
        let stock = self.stock_location();
        let customers = self.location_by_usage("customer");
        let out_type = self
            .where_eq("stock.picking.type", "code", &json!("outgoing"))
            .first()
            .copied()
            .unwrap_or(0);
        let mut vals = json!({
            "partner_id": partner,
            "picking_type_id": out_type,
            "location_id": stock,
            "location_dest_id": customers,
            "state": "assigned",
            "scheduled_date": scheduled.map(str::to_string).unwrap_or_else(now),
            "origin": "outgoing shipment",
            "move_type": "direct",
        });
        if let Some(name) = name {
            vals["name"] = json!(name);
        }
        let picking = self.create("stock.picking", vals.as_object().expect("object"))?;
        for &(product, qty) in lines {
            self.add_move(picking, product, qty, qty)?;
        }
        Ok(picking)
    }

    pub(crate) fn add_move(
        &mut self,
        picking: i64,
        product: i64,
        demand: f64,
        reserved: f64,
    ) -> Result<i64, Fail> {
        let src = as_id(&self.stored("stock.picking", picking, "location_id")).unwrap_or(0);
        let dst = as_id(&self.stored("stock.picking", picking, "location_dest_id")).unwrap_or(0);
        let state = if reserved >= demand {
            "assigned"
        } else if reserved > 0.0 {
            "partially_available"
        } else {
            "confirmed"
        };
        let mv = self.plain_create(
            "stock.move",
            json!({
                "name": self.display_name("product.product", product),
                "picking_id": picking,
                "product_id": product,
                "product_uom_qty": demand,
                "quantity": reserved,
                "product_uom": self.raw("product.product", product, "uom_id"),
                "location_id": src,
                "location_dest_id": dst,
                "state": state,
                "picked": false,
                "date": self.raw("stock.picking", picking, "scheduled_date"),
                "partner_id": self.raw("stock.picking", picking, "partner_id"),
                "picking_type_id": self.raw("stock.picking", picking, "picking_type_id"),
                "origin": self.raw("stock.picking", picking, "origin"),
            })
            .as_object()
            .expect("object"),
        )?;
        if reserved > 0.0 {
            self.plain_create(
                "stock.move.line",
                json!({
                    "move_id": mv,
                    "picking_id": picking,
                    "product_id": product,
                    "quantity": reserved,
                    "location_id": src,
                    "location_dest_id": dst,
                })
                .as_object()
                .expect("object"),
            )?;
        }
        Ok(mv)
    }

    /// `stock.picking.button_validate` as Odoo 19 answers it (transcripts 19/48–65): the
    /// SMS wizard unless `skip_sms`, moves with a quantity become picked when none is, the
    /// backorder wizard on a partial quantity unless `skip_backorder`, then done.
    pub(crate) fn button_validate(&mut self, pickings: &[i64]) -> Result<Value, Fail> {
        self.check_pickings_exist(pickings)?;
        // An already done picking: 18 and 19 answer `true` and change nothing (18/145,
        // 19/150); 17 refuses it as it refuses a picking with nothing reserved (17/88).
        let done: Vec<i64> = pickings
            .iter()
            .copied()
            .filter(|&p| self.str_of("stock.picking", p, "state") == "done")
            .collect();
        if !done.is_empty() && self.v() == 17 {
            return Err(self.nothing_to_validate());
        }
        let pickings: Vec<i64> = pickings
            .iter()
            .copied()
            .filter(|p| !done.contains(p))
            .collect();
        if pickings.is_empty() {
            return Ok(json!(true));
        }
        let pickings = pickings.as_slice();
        if pickings
            .iter()
            .any(|&p| self.str_of("stock.picking", p, "state") == "cancel")
        {
            return Err(self.nothing_to_validate());
        }
        if !self.ctx_flag("skip_sms") && !self.db.sms_warned {
            let needs_sms = pickings.iter().any(|&p| {
                self.raw("stock.picking", p, "picking_type_code") == json!("outgoing")
                    && as_id(&self.stored("stock.picking", p, "partner_id")).is_some_and(
                        |partner| !self.str_of("res.partner", partner, "phone").is_empty(),
                    )
            });
            if needs_sms {
                let wizard = self.plain_create(
                    "confirm.stock.sms",
                    json!({"pick_ids": [[6, 0, pickings]]})
                        .as_object()
                        .expect("object"),
                )?;
                let mut ctx = self.ctx.clone();
                ctx.insert("button_validate_picking_ids".into(), json!(pickings));
                // The wizard's form view id in each recorded database (17/83, 18/141, 19/48).
                let view = match self.v() {
                    17 => 729,
                    18 => 755,
                    _ => 791,
                };
                return Ok(json!({
                    "name": "SMS",
                    "type": "ir.actions.act_window",
                    "view_mode": "form",
                    "res_model": "confirm.stock.sms",
                    "views": [[view, "form"]],
                    "view_id": view,
                    "target": "new",
                    "res_id": wizard,
                    "context": ctx,
                }));
            }
        }
        for &p in pickings {
            let moves = self.picking_moves(p);
            if moves
                .iter()
                .all(|&m| !truthy(&self.raw("stock.move", m, "picked")))
            {
                for &m in &moves {
                    if self.num("stock.move", m, "quantity") > 0.0 {
                        self.set("stock.move", m, "picked", json!(true));
                    }
                }
            }
            if moves.iter().all(|&m| self.done_qty(m) <= 0.0) {
                return Err(self.nothing_to_validate());
            }
        }
        let partial: Vec<i64> = pickings
            .iter()
            .copied()
            .filter(|&p| {
                self.picking_moves(p)
                    .iter()
                    .any(|&m| self.done_qty(m) < self.num("stock.move", m, "product_uom_qty"))
            })
            .collect();
        if !partial.is_empty() && !self.ctx_flag("skip_backorder") {
            let mut ctx = self.ctx.clone();
            ctx.insert("button_validate_picking_ids".into(), json!(pickings));
            ctx.insert("default_show_transfers".into(), json!(false));
            ctx.insert(
                "default_pick_ids".into(),
                json!(partial.iter().map(|p| json!([4, p])).collect::<Vec<_>>()),
            );
            // The wizard's form view id in the recorded databases (17/92, 19/53).
            let view = if self.v() == 17 { 602 } else { 659 };
            return Ok(json!({
                "name": "Create Backorder?",
                "type": "ir.actions.act_window",
                "view_mode": "form",
                "res_model": "stock.backorder.confirmation",
                "views": [[view, "form"]],
                "view_id": view,
                "target": "new",
                "context": ctx,
            }));
        }
        let no_backorder = id_list(
            self.ctx
                .get("picking_ids_not_to_backorder")
                .unwrap_or(&Value::Null),
        );
        for &p in pickings {
            let backorder = partial.contains(&p) && !no_backorder.contains(&p);
            self.finish_picking(p, backorder)?;
        }
        Ok(json!(true))
    }

    /// `button_validate` on a picking with nothing to ship (also a cancelled one): the text
    /// never says why (17/107, 18/165, 19/170).
    fn nothing_to_validate(&self) -> Fail {
        Fail::user(if self.v() >= 19 {
            "Transfer trouble alert! Validating a zero quantity transfer? You're not moving invisible goods around are you?\nSet some quantities and let's get moving!"
        } else {
            "You cannot validate a transfer if no quantities are reserved. To force the transfer, encode quantities."
        })
    }

    /// A picking's state from its moves, as Odoo computes it for "as soon as possible":
    /// ready as soon as one move has something reserved.
    pub(crate) fn picking_state(&self, picking: i64) -> &'static str {
        let states: Vec<String> = self
            .where_eq("stock.move", "picking_id", &json!(picking))
            .into_iter()
            .map(|m| self.str_of("stock.move", m, "state"))
            .collect();
        if states.is_empty() || states.iter().any(|s| s == "draft") {
            "draft"
        } else if states.iter().all(|s| s == "cancel") {
            "cancel"
        } else if states.iter().all(|s| s == "done" || s == "cancel") {
            "done"
        } else if states
            .iter()
            .any(|s| s == "assigned" || s == "partially_available")
        {
            "assigned"
        } else {
            "confirmed"
        }
    }

    fn check_pickings_exist(&self, pickings: &[i64]) -> Result<(), Fail> {
        let missing: Vec<i64> = pickings
            .iter()
            .copied()
            .filter(|&p| !self.exists("stock.picking", p))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Fail::missing(format!(
                "Record does not exist or has been deleted.\n(Record: stock.picking{}, User: {ADMIN_UID})",
                py_ids(&missing)
            )))
        }
    }

    /// Confirms a picking's draft moves; a delivery reserves at once (reservation method
    /// "at confirmation": 18/130, 19/137 leave the picking ready).
    fn confirm_moves(&mut self, picking: i64) {
        let outgoing = self.raw("stock.picking", picking, "picking_type_code") == json!("outgoing");
        for m in self.where_eq("stock.move", "picking_id", &json!(picking)) {
            if self.str_of("stock.move", m, "state") != "draft" {
                continue;
            }
            self.set("stock.move", m, "state", json!("confirmed"));
            if outgoing {
                self.reserve(m);
            }
        }
        let state = self.picking_state(picking);
        self.set("stock.picking", picking, "state", json!(state));
    }

    pub(crate) fn confirm_added_moves(&mut self, picking: i64) {
        let drafts = self
            .where_eq("stock.move", "picking_id", &json!(picking))
            .into_iter()
            .any(|m| self.str_of("stock.move", m, "state") == "draft");
        if drafts {
            self.confirm_moves(picking);
        }
    }

    /// `stock.picking.action_confirm`.
    pub(crate) fn action_confirm(&mut self, pickings: &[i64]) -> Result<Value, Fail> {
        self.check_pickings_exist(pickings)?;
        for &p in pickings {
            self.confirm_moves(p);
        }
        Ok(json!(true))
    }

    /// `stock.picking.action_assign`: reserves what is not reserved yet.
    pub(crate) fn action_assign(&mut self, pickings: &[i64]) -> Result<Value, Fail> {
        self.check_pickings_exist(pickings)?;
        for &p in pickings {
            self.confirm_moves(p);
            for m in self.picking_moves(p) {
                if matches!(
                    self.str_of("stock.move", m, "state").as_str(),
                    "confirmed" | "partially_available"
                ) {
                    self.reserve(m);
                }
            }
            let state = self.picking_state(p);
            self.set("stock.picking", p, "state", json!(state));
        }
        Ok(json!(true))
    }

    /// `stock.picking.action_cancel`: open moves cancelled, their reservation released.
    pub(crate) fn action_cancel(&mut self, pickings: &[i64]) -> Result<Value, Fail> {
        self.check_pickings_exist(pickings)?;
        for &p in pickings {
            for m in self.picking_moves(p) {
                self.set("stock.move", m, "state", json!("cancel"));
                self.set("stock.move", m, "quantity", json!(0.0));
                for line in self.where_eq("stock.move.line", "move_id", &json!(m)) {
                    self.unlink("stock.move.line", &[line])?;
                }
            }
            let state = self.picking_state(p);
            self.set("stock.picking", p, "state", json!(state));
        }
        Ok(json!(true))
    }

    fn finish_picking(&mut self, picking: i64, backorder: bool) -> Result<(), Fail> {
        let moves = self.picking_moves(picking);
        if backorder {
            let mut vals = Vals::new();
            for key in [
                "partner_id",
                "picking_type_id",
                "location_id",
                "location_dest_id",
                "origin",
                "scheduled_date",
                "move_type",
            ] {
                vals.insert(key.into(), self.raw("stock.picking", picking, key));
            }
            vals.insert("backorder_id".into(), json!(picking));
            vals.insert("state".into(), json!("confirmed"));
            let bo = self.create("stock.picking", &vals)?;
            for &m in &moves {
                let done = self.done_qty(m);
                let rest = self.num("stock.move", m, "product_uom_qty") - done;
                if rest <= 0.0 {
                    continue;
                }
                if done <= 0.0 {
                    self.set("stock.move", m, "picking_id", json!(bo));
                    self.set("stock.move", m, "state", json!("confirmed"));
                    continue;
                }
                let product = as_id(&self.stored("stock.move", m, "product_id")).unwrap_or(0);
                let new_move = self.add_move(bo, product, rest, 0.0)?;
                self.set(
                    "stock.move",
                    new_move,
                    "name",
                    self.raw("stock.move", m, "name"),
                );
                self.set("stock.move", m, "product_uom_qty", json!(done));
            }
            // The backorder is reserved from what is left, as Odoo's _action_assign does.
            let mut any_reserved = false;
            for m in self.picking_moves(bo) {
                any_reserved |= self.reserve(m) > 0.0;
            }
            if any_reserved {
                self.set("stock.picking", bo, "state", json!("assigned"));
            }
        }
        for m in self.picking_moves(picking) {
            let done = self.done_qty(m);
            if done > 0.0 {
                let product = as_id(&self.stored("stock.move", m, "product_id")).unwrap_or(0);
                let src = as_id(&self.stored("stock.move", m, "location_id")).unwrap_or(0);
                let dst = as_id(&self.stored("stock.move", m, "location_dest_id")).unwrap_or(0);
                // Lots shipped are the move lines' (their quantities); the rest has none.
                let mut by_lot: Vec<(Option<i64>, f64)> = Vec::new();
                for line in self.where_eq("stock.move.line", "move_id", &json!(m)) {
                    if let Some(lot) = as_id(&self.stored("stock.move.line", line, "lot_id")) {
                        by_lot.push((Some(lot), self.num("stock.move.line", line, "quantity")));
                    }
                }
                let with_lot: f64 = by_lot.iter().map(|(_, q)| q).sum();
                if done - with_lot > 0.0 {
                    by_lot.push((None, done - with_lot));
                }
                for (lot, qty) in by_lot {
                    self.move_lot_stock(product, src, lot, -qty)?;
                    self.move_lot_stock(product, dst, lot, qty)?;
                }
                self.set("stock.move", m, "state", json!("done"));
            } else {
                self.set("stock.move", m, "state", json!("cancel"));
            }
        }
        self.set("stock.picking", picking, "state", json!("done"));
        let stamp = self.clock();
        self.set("stock.picking", picking, "date_done", json!(stamp));
        Ok(())
    }

    /// Reserves what the source location has left for a move; returns the reserved quantity.
    fn reserve(&mut self, mv: i64) -> f64 {
        let product = as_id(&self.stored("stock.move", mv, "product_id")).unwrap_or(0);
        let src = as_id(&self.stored("stock.move", mv, "location_id")).unwrap_or(0);
        let demand = self.num("stock.move", mv, "product_uom_qty");
        let given = self.num("stock.move", mv, "quantity");
        let reserved = if truthy(&self.raw("stock.move", mv, "picked")) && given > 0.0 {
            // Quantities set by hand (a move added picked, 18/167) are kept as they are.
            given
        } else if self.is_internal(src) {
            let on_hand = self
                .find_quant(product, src, None)
                .map(|q| self.num("stock.quant", q, "quantity"))
                .unwrap_or(0.0);
            let elsewhere: f64 = self
                .where_eq("stock.move", "product_id", &json!(product))
                .into_iter()
                .filter(|&o| {
                    o != mv
                        && self.stored("stock.move", o, "location_id") == json!(src)
                        && !matches!(
                            self.str_of("stock.move", o, "state").as_str(),
                            "done" | "cancel"
                        )
                })
                .map(|o| self.num("stock.move", o, "quantity"))
                .sum();
            (on_hand - elsewhere).max(0.0).min(demand)
        } else {
            demand
        };
        let state = if reserved >= demand {
            "assigned"
        } else if reserved > 0.0 {
            "partially_available"
        } else {
            "confirmed"
        };
        self.set("stock.move", mv, "quantity", json!(reserved));
        self.set("stock.move", mv, "state", json!(state));
        self.sync_move_line(mv, reserved);
        reserved
    }

    /// The move line that carries a move's reserved quantity.
    fn sync_move_line(&mut self, mv: i64, quantity: f64) {
        let lines = self.where_eq("stock.move.line", "move_id", &json!(mv));
        match lines.first() {
            Some(&line) => self.set("stock.move.line", line, "quantity", json!(quantity)),
            None if quantity > 0.0 => {
                let vals = json!({
                    "move_id": mv,
                    "picking_id": self.raw("stock.move", mv, "picking_id"),
                    "product_id": self.raw("stock.move", mv, "product_id"),
                    "quantity": quantity,
                    "location_id": self.raw("stock.move", mv, "location_id"),
                    "location_dest_id": self.raw("stock.move", mv, "location_dest_id"),
                    "picked": self.raw("stock.move", mv, "picked"),
                });
                let _ = self.plain_create("stock.move.line", vals.as_object().expect("object"));
            }
            None => {}
        }
    }

    /// `process` (with backorder) / `process_cancel_backorder` (without) on the wizard.
    pub(crate) fn answer_backorder_wizard(
        &mut self,
        wizards: &[i64],
        create_backorder: bool,
    ) -> Result<Value, Fail> {
        let mut pickings: Vec<i64> = id_list(
            self.ctx
                .get("button_validate_picking_ids")
                .unwrap_or(&Value::Null),
        );
        for &w in wizards {
            for p in id_list(&self.raw("stock.backorder.confirmation", w, "pick_ids")) {
                if !pickings.contains(&p) {
                    pickings.push(p);
                }
            }
        }
        self.ctx.insert("skip_backorder".into(), json!(true));
        self.ctx.insert("skip_sms".into(), json!(true));
        if !create_backorder {
            self.ctx
                .insert("picking_ids_not_to_backorder".into(), json!(pickings));
        }
        self.button_validate(&pickings)?;
        Ok(json!(true))
    }
}
