//! What this Odoo has, asked once per run: the move's quantity fields, the tracking number;
//! and the lots a batch names.

use super::*;

impl<'a> Applier<'a> {
    /// The move quantity fields of this Odoo, asked once per run.
    pub(super) async fn done_field(&self) -> Result<DoneField, OdooError> {
        if let Some(known) = *self.delivery.done.borrow() {
            return Ok(known);
        }
        let fields = self
            .client
            .fields_get(
                "stock.move",
                Some(&["quantity", "picked", "quantity_done"]),
                &["type"],
            )
            .await?;
        let done = if fields.contains_key("picked") && fields.contains_key("quantity") {
            DoneField::QuantityPicked
        } else if fields.contains_key("quantity_done") {
            DoneField::QuantityDone
        } else {
            return Err(OdooError::Config {
                message: "stock.move has neither 'quantity' and 'picked' (Odoo 17+) nor \
                          'quantity_done' (Odoo 16): this Odoo's stock module is not one \
                          edi-bridge knows"
                    .into(),
            });
        };
        *self.delivery.done.borrow_mut() = Some(done);
        Ok(done)
    }

    /// Whether `stock.picking` has `carrier_tracking_ref`, asked once per run.
    pub(super) async fn has_tracking_ref(&self) -> Result<bool, OdooError> {
        if let Some(known) = *self.delivery.tracking_ref.borrow() {
            return Ok(known);
        }
        let fields = self
            .client
            .fields_get("stock.picking", Some(&["carrier_tracking_ref"]), &["type"])
            .await?;
        let has = fields.contains_key("carrier_tracking_ref");
        *self.delivery.tracking_ref.borrow_mut() = Some(has);
        Ok(has)
    }

    /// The lots the lines name, per (name, product): one `search_read`.
    pub(super) async fn delivery_lots(
        &self,
        records: &[Confirmation<'_>],
    ) -> Result<HashMap<(String, i64), Vec<i64>>, OdooError> {
        let mut names = BTreeSet::new();
        let mut products = BTreeSet::new();
        for c in records {
            for l in &c.lines {
                if let Some(lot) = &l.lot
                    && let Ok(p) = self.looked_up("product_id", &product_ref(c.op, &l.product))
                {
                    names.insert(text(lot));
                    products.insert(p);
                }
            }
        }
        let mut found: HashMap<(String, i64), Vec<i64>> = HashMap::new();
        if names.is_empty() {
            return Ok(found);
        }
        let lots = self
            .client
            .search_read(
                "stock.lot",
                json!([["name", "in", names], ["product_id", "in", products]]),
                &["name", "product_id"],
                SearchOptions::default(),
            )
            .await;
        let lots = match lots {
            Ok(l) => l,
            // Refused as data: every line with a lot then fails as "not found".
            Err(e) if e.consequence() == Consequence::Reject => return Ok(found),
            Err(e) => return Err(e),
        };
        for lot in &lots {
            if let (Some(id), Some(product)) =
                (record_id(lot), lot.get("product_id").and_then(many2one_id))
            {
                found
                    .entry((lot.get("name").map(text).unwrap_or_default(), product))
                    .or_default()
                    .push(id);
            }
        }
        Ok(found)
    }
}
