//! The mapping's typed configuration: what a flow's files are and how a record becomes an Odoo operation.
//!
//! [`crate::config`] reads these from `[flows.<name>]` and `[flows.<name>.mapping]`; the mapping
//! and Odoo's actions only ever see these types.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::mapping::path::{FieldPath, RecordPath};

/// What the flow's files are.
#[derive(Debug, Clone)]
pub enum Format {
    /// `format = "xml"` (default): `schema` is the XSD every file is validated against
    /// (required, relative to the config file, checked to exist).
    Xml { schema: PathBuf },
    /// `format = "csv"`.
    Csv(CsvFormat),
}

/// How a CSV flow's files are read.
#[derive(Debug, Clone)]
pub struct CsvFormat {
    /// `delimiter`, one ASCII character (default ",").
    pub delimiter: u8,
    /// `encoding`, a WHATWG label such as `utf-8` or `windows-1252` (default utf-8).
    pub encoding: &'static encoding_rs::Encoding,
    /// `decimal`, "." (default) or ",".
    pub decimal: char,
    /// `columns`: the expected header, in order, with a type per column.
    pub columns: Vec<CsvColumn>,
}

/// One entry of `columns`: `{ name, type, optional }`.
#[derive(Debug, Clone)]
pub struct CsvColumn {
    /// The header text, as written.
    pub name: String,
    /// `type`, default string; a field mapped from this column takes it unless it says
    /// otherwise.
    pub ty: ValueType,
    /// An empty cell is allowed.
    pub optional: bool,
}

/// The type a mapped value is converted to (`type = "string" | "float" | "integer" |
/// "boolean" | "date"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    String,
    Float,
    Integer,
    Boolean,
    /// `YYYY-MM-DD`.
    Date,
}

/// `[flows.<name>.mapping]`: which element or row is a record and what it does in Odoo.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// The repeating record element (XML) — for CSV, each row is a record and this is `None`.
    pub record: Option<RecordPath>,
    /// Prefix → namespace URI.
    pub namespaces: BTreeMap<String, String>,
    /// Odoo model written (`model`; for `set_stock` always `stock.quant`).
    pub model: String,
    pub action: Action,
}

// One per flow, built once at start-up: boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Action {
    /// `action = "upsert"`.
    Upsert(UpsertMapping),
    /// `action = "set_stock"`.
    SetStock(SetStockMapping),
    /// `action = "confirm_delivery"`.
    ConfirmDelivery(ConfirmDeliveryMapping),
}

/// Create or update `model` by `key`.
#[derive(Debug, Clone)]
pub struct UpsertMapping {
    /// Key fields (each must also be a mapped field).
    pub key: Vec<String>,
    /// Odoo field → where its value comes from, in config order.
    pub fields: Vec<FieldMapping>,
}

/// Where one Odoo field's value comes from.
#[derive(Debug, Clone)]
pub struct FieldMapping {
    /// Odoo field name.
    pub field: String,
    /// `path` (or the plain string) or `value`.
    pub source: ValueSource,
    /// `type`, default string (for a constant: the TOML value's type; for a CSV column: the
    /// column's type).
    pub ty: ValueType,
    /// `optional`: a missing or empty value is left out instead of failing the record.
    pub optional: bool,
    /// Many2one: the value is looked up in `model` by `field`.
    pub lookup: Option<Lookup>,
}

/// Read from the record, or a constant.
#[derive(Debug, Clone)]
pub enum ValueSource {
    /// A path relative to the record (XML), or a column (CSV).
    Path(FieldPath),
    /// `path = ["a", "b"]`: the first of these paths that is present — an element or
    /// attribute that exists (XML), a column whose cell is not empty (CSV) — in this order.
    FirstOf(Vec<FieldPath>),
    /// `{ value = … }`.
    Constant(serde_json::Value),
}

impl ValueSource {
    /// The paths read, in the order they are tried; none for a constant.
    pub fn paths(&self) -> &[FieldPath] {
        match self {
            ValueSource::Path(path) => std::slice::from_ref(path),
            ValueSource::FirstOf(paths) => paths,
            ValueSource::Constant(_) => &[],
        }
    }
}

/// `lookup = { model, field }`: the id of the `model` record whose `field` equals the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub model: String,
    pub field: String,
}

/// Set on-hand quantities on `stock.quant`. The field mappings carry the Odoo field they fill:
/// `product_id`, `inventory_quantity`, `location_id`, `lot_id`.
#[derive(Debug, Clone)]
pub struct SetStockMapping {
    /// `product = "path"` or `{ path, by }` (by default `default_code`), looked up in
    /// `product.product`.
    pub product: FieldMapping,
    /// `quantity` path (float).
    pub quantity: FieldMapping,
    /// `location = "WH/Stock"` (complete name) or `{ path, by = "barcode" | "complete_name" }`.
    pub location: FieldMapping,
    /// `lot = { path, optional }`: looked up in `stock.lot` by `name`.
    pub lot: Option<FieldMapping>,
    /// `snapshot`, default `partial`.
    pub snapshot: Snapshot,
}

/// `snapshot`: whether the file lists every product of its locations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Snapshot {
    /// Only the products in the file change.
    Partial,
    /// Products absent from the file are set to 0 in the file's locations.
    Full,
}

/// Close a delivery with the warehouse's shipping confirmation: one record is one picking, its
/// `lines` the products shipped. The field mappings carry the Odoo field they fill:
/// `name`/`origin` (the picking), `product_id`, `quantity`, `lot_id`, `carrier_tracking_ref`.
#[derive(Debug, Clone)]
pub struct ConfirmDeliveryMapping {
    /// `picking = { path, by = "name" | "origin" }` (by default `name`): the field is the
    /// `stock.picking` field matched.
    pub picking: FieldMapping,
    /// `lines`: the repeated element under the record, one shipped product each.
    pub lines: FieldPath,
    /// `product = { path, by }` under a line, looked up in `product.product` (by default
    /// `default_code`).
    pub product: FieldMapping,
    /// `quantity` under a line (float): the quantity shipped.
    pub quantity: FieldMapping,
    /// `lot = { path, optional }` under a line: a lot or serial number of the product, looked
    /// up in `stock.lot` by `name`.
    pub lot: Option<FieldMapping>,
    /// `tracking = { path, optional }` under the record: the carrier's tracking number, written
    /// to `carrier_tracking_ref` (Odoo's `stock_delivery` module).
    pub tracking: Option<FieldMapping>,
    /// `backorder`: what happens to what was not shipped.
    pub backorder: Backorder,
    /// `allow_over_delivery` (default false): whether a quantity above the demand is shipped.
    pub allow_over_delivery: bool,
}

/// `backorder = "create" | "none"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backorder {
    /// What was not shipped stays to ship, in a new picking (Odoo's backorder).
    Create,
    /// What was not shipped is dropped: the picking is closed with what was shipped.
    None,
}
