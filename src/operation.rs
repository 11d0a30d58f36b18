//! The Odoo operations a mapping produces and the Odoo side applies: the contract between
//! them. One operation is one JSON object — what `validate` prints one per line, what
//! `dry_run` shows, and what the Odoo actions send.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Create or update `model` by `key`.
    Upsert,
    /// Set the on-hand quantity of a product in a location (lot optional): `stock.quant`.
    SetStock,
    /// Ship what a delivery confirmation lists on the `stock.picking` it names and validate it.
    ConfirmDelivery,
}

/// A value that Odoo must look up before it can be written (a many2one such as `uom_id` by
/// name, or a set_stock product by `default_code`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LookupRef {
    pub model: String,
    pub field: String,
    pub value: Value,
}

/// One record's worth of work in Odoo.
///
/// For `upsert`: `key` holds the key fields and values, `values` every mapped field (keys
/// included). For `set_stock`: `key` holds `product_id`, `location_id` and optionally `lot_id`
/// (as raw values to be looked up), `values` holds `inventory_quantity`. For
/// `confirm_delivery`: `key` holds the picking's `name` (or `origin`), `values` holds `lines`
/// (a list of `{product_id, quantity, lot_id?}` with the product and lot as the file names
/// them) and optionally `carrier_tracking_ref`; `lookups` has `product_id` with every product
/// value of the lines as a list.
/// `lookups` maps a field of `key`/`values` to how its raw value is resolved to an id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub action: ActionKind,
    pub model: String,
    pub key: Map<String, Value>,
    pub values: Map<String, Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lookups: BTreeMap<String, LookupRef>,
    /// 1-based index of the record in its file.
    pub record: u64,
    /// Line of the record's start in its file.
    pub line: u64,
}
