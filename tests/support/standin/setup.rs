//! What a test seeds and inspects through the [`OdooStandin`] it holds: records read raw,
//! products, locations, lots, partners, stock and deliveries created through the same rules
//! as an RPC call, the transcripts' demo data.

use serde_json::{Value, json};

use super::errors::Fail;
use super::orm::Env;
use super::seed::{
    seed_17_export_products, seed_demo, seed_recorded_deliveries, seed_second_recording,
};
use super::{Demo, OdooStandin, Vals};

impl OdooStandin {
    /// The keys of an `[odoo]` config section that reach this stand-in (url, database, login,
    /// API key), with a call `timeout` when given, then `extra` as it is.
    pub fn config_keys(&self, timeout: Option<&str>, extra: &str) -> String {
        let opts = self.options();
        let timeout = timeout
            .map(|t| format!("timeout = \"{t}\"\n"))
            .unwrap_or_default();
        format!(
            "url = \"{}\"\ndatabase = \"{}\"\nlogin = \"{}\"\napi_key = \"{}\"\n{timeout}{extra}",
            self.url(),
            opts.database,
            opts.login,
            opts.api_key
        )
    }

    /// The records of `model` in id order, archived ones included: stored fields with raw
    /// values (many2one as an id or `false`, many2many as a list of ids) plus `id`.
    /// `product.product` records also show their template's fields.
    pub fn records(&self, model: &str) -> Vec<Vals> {
        self.with_env(|env| {
            let ids = env.all_ids(model);
            Ok(ids.iter().map(|&id| env.raw_record(model, id)).collect())
        })
    }

    /// How many records `model` holds, archived ones included.
    pub fn count(&self, model: &str) -> usize {
        self.with_env(|env| Ok(env.db.data.get(model).map_or(0, |t| t.len())))
    }

    /// One record as in [`records`](Self::records).
    pub fn record(&self, model: &str, id: i64) -> Option<Vals> {
        self.with_env(|env| Ok(env.exists(model, id).then(|| env.raw_record(model, id))))
    }

    /// The records matching an Odoo domain, e.g. `json!([["default_code", "=", "X"]])`,
    /// archived ones included.
    pub fn search_records(&self, model: &str, domain: Value) -> Vec<Vals> {
        self.with_env(|env| {
            env.ctx.insert("active_test".into(), json!(false));
            let ids = env.search(model, &domain, None, 0, None)?;
            Ok(ids.iter().map(|&id| env.raw_record(model, id)).collect())
        })
    }

    /// Creates a record through the same rules as an RPC `create` (panics on an Odoo error).
    pub fn add_record(&self, model: &str, vals: Value) -> i64 {
        let vals = vals
            .as_object()
            .cloned()
            .expect("vals must be a JSON object");
        self.with_env(|env| env.create(model, &vals))
    }

    /// Writes a record through the same rules as an RPC `write` (panics on an Odoo error).
    pub fn write_record(&self, model: &str, id: i64, vals: Value) {
        let vals = vals
            .as_object()
            .cloned()
            .expect("vals must be a JSON object");
        self.with_env(|env| env.write(model, &[id], &vals))
    }

    /// A storable product (`type = consu`, `is_storable`, Units); returns the
    /// `product.product` id.
    pub fn add_product(&self, default_code: &str, name: &str) -> i64 {
        self.add_product_with(json!({"default_code": default_code, "name": name}))
    }

    /// A storable product with more values (`barcode`, `list_price`, `uom_id`, `weight`,
    /// `tracking`, `active`, …); returns the `product.product` id.
    pub fn add_product_with(&self, vals: Value) -> i64 {
        let mut vals = vals
            .as_object()
            .cloned()
            .expect("vals must be a JSON object");
        if self.shared.lock().opts.version >= 18 {
            vals.entry("type").or_insert(json!("consu"));
            vals.entry("is_storable").or_insert(json!(true));
        } else {
            vals.entry("detailed_type").or_insert(json!("product"));
        }
        self.with_env(|env| env.create("product.product", &vals))
    }

    /// A unit of measure.
    pub fn add_uom(&self, name: &str) -> i64 {
        self.add_record("uom.uom", json!({ "name": name }))
    }

    /// An internal location, e.g. `add_location("WH/Shelf 2", Some("SHELF-2"))`; its parent
    /// is the location whose complete name is the prefix, when there is one.
    pub fn add_location(&self, complete_name: &str, barcode: Option<&str>) -> i64 {
        let (parent, name) = match complete_name.rsplit_once('/') {
            Some((parent, name)) => (Some(parent), name),
            None => (None, complete_name),
        };
        self.with_env(|env| {
            let parent_id = parent.and_then(|p| env.find_one("stock.location", "complete_name", p));
            let mut vals = Vals::new();
            vals.insert("name".into(), json!(name));
            vals.insert("usage".into(), json!("internal"));
            vals.insert("location_id".into(), json!(parent_id.unwrap_or(0)));
            vals.insert("complete_name".into(), json!(complete_name));
            vals.insert("barcode".into(), barcode.map_or(json!(false), |b| json!(b)));
            env.create("stock.location", &vals)
        })
    }

    /// A lot of `product` (the product's `tracking` is set to `lot` if it was `none`).
    pub fn add_lot(&self, name: &str, product: i64) -> i64 {
        self.with_env(|env| {
            if env.raw("product.product", product, "tracking") == json!("none") {
                let mut vals = Vals::new();
                vals.insert("tracking".into(), json!("lot"));
                env.write("product.product", &[product], &vals)?;
            }
            let mut vals = Vals::new();
            vals.insert("name".into(), json!(name));
            vals.insert("product_id".into(), json!(product));
            env.create("stock.lot", &vals)
        })
    }

    /// A company contact.
    pub fn add_partner(&self, name: &str) -> i64 {
        self.add_record("res.partner", json!({ "name": name, "is_company": true }))
    }

    /// Sets the on-hand quantity of a product in a location directly (seeding: no move).
    pub fn put_stock(&self, product: i64, location: i64, quantity: f64) {
        self.with_env(|env| {
            let quant = env.find_quant(product, location, None);
            let mut vals = Vals::new();
            vals.insert("quantity".into(), json!(quantity));
            match quant {
                Some(q) => env.write("stock.quant", &[q], &vals),
                None => {
                    vals.insert("product_id".into(), json!(product));
                    vals.insert("location_id".into(), json!(location));
                    env.create("stock.quant", &vals).map(|_| ())
                }
            }
        })
    }

    /// `qty_available` of a `product.product` (internal locations).
    pub fn qty_available(&self, product: i64) -> f64 {
        self.with_env(|env| Ok(env.qty_available(product)))
    }

    /// `WH/Stock`.
    pub fn stock_location(&self) -> i64 {
        self.with_env(|env| Ok(env.stock_location()))
    }

    /// An outgoing picking in state `assigned` from `WH/Stock` to the customers, one fully
    /// reserved move per `(product, quantity)`; returns the picking id.
    pub fn add_delivery(&self, partner: i64, lines: &[(i64, f64)]) -> i64 {
        self.with_env(|env| env.add_delivery(partner, lines, None, None))
    }

    /// Cancels a picking as `action_cancel` does (its open moves cancelled, their
    /// reservation released).
    pub fn cancel_delivery(&self, picking: i64) {
        self.with_env(|env| env.action_cancel(&[picking]).map(|_| ()))
    }

    /// Pins the server's time (`"YYYY-MM-DD HH:MM:SS"`, UTC) for the dates Odoo stamps on
    /// pickings (scheduled date of a new transfer, date of a validation); `None` lets it run.
    pub fn set_clock(&self, at: Option<&str>) {
        self.shared.lock().db.clock = at.map(str::to_string);
    }

    /// Moves a model's id sequence forward so the next record gets at least `next_id`.
    pub fn advance_sequence(&self, model: &str, next_id: i64) {
        let mut st = self.shared.lock();
        let entry = st.seq.entry(model.to_string()).or_insert(1);
        *entry = (*entry).max(next_id);
    }

    /// The slice of Odoo's demo data the transcripts saw, with the same ids: Office Chair
    /// and Office Lamp, Wood Corner, and five ready deliveries with their moves. Call it
    /// once, on a fresh stand-in.
    pub fn seed_demo(&self) -> Demo {
        self.with_env(seed_demo)
    }

    /// The data of the transcripts' second recording (products `TR2-*`, "TR2 Customer
    /// GmbH"), with the recorded ids. Call it after [`OdooStandin::seed_demo`].
    pub fn seed_second_recording(&self) {
        self.with_env(seed_second_recording)
    }

    /// Deliveries a recording made between two exchanges, with the recorded ids: `(picking,
    /// first move, origin)` each, confirmed and reserved unless `draft`. Call it where the
    /// recording made them.
    pub fn seed_recorded_deliveries(&self, pickings: &[(i64, i64, &str)], draft: bool) {
        self.with_env(|env| seed_recorded_deliveries(env, pickings, draft))
    }

    /// Germany and the export products 17's recording made before its deliveries.
    pub fn seed_17_export_products(&self) {
        self.with_env(seed_17_export_products)
    }

    fn with_env<T>(&self, f: impl FnOnce(&mut Env) -> Result<T, Fail>) -> T {
        let mut st = self.shared.lock();
        let st = &mut *st;
        let mut env = Env {
            db: &mut st.db,
            seq: &mut st.seq,
            fails: &st.fails,
            opts: &st.opts,
            ctx: Vals::new(),
            rollback: false,
        };
        match f(&mut env) {
            Ok(v) => v,
            Err(fail) => panic!("stand-in setup failed: {}: {}", fail.name, fail.message),
        }
    }
}
