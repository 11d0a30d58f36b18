//! Turns the records of a file into Odoo operations, as the flow's mapping says.
//!
//! [`map_file`] streams the file ([`crate::mapping::records`]), evaluates every field path on
//! each record, converts the values to their configured types and hands one
//! [`Operation`] per good record to a sink. A record with any problem (a missing required value,
//! a value that does not convert) produces no operation; all its problems are listed and the
//! file is read to the end, so the error report names every bad record at once. Only a failure
//! of the whole file (unreadable, not well-formed, wrong encoding, wrong CSV header) stops it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::mapping::config::{
    Action, ConfirmDeliveryMapping, CsvFormat, FieldMapping, Format, Lookup, Mapping,
    SetStockMapping, UpsertMapping, ValueSource, ValueType,
};
use crate::mapping::convert::convert;
use crate::mapping::error::{MapError, list};
use crate::mapping::path::FieldPath;
use crate::mapping::records::{CsvRows, Raw, Record, XmlRecords, shorten};
use crate::operation::{ActionKind, LookupRef, Operation};

/// How many problems a [`MapOutcome`] lists; the rest are only counted.
pub const LISTED_PROBLEMS: usize = 100;

/// Why one record (or CSV row) produced no operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MapProblem {
    /// 1-based index of the record (the row, for CSV).
    pub record: u64,
    /// Line of the record's start.
    pub line: u64,
    /// The Odoo field (or, for a CSV column check, the column).
    pub field: Option<String>,
    /// The value found, if there was one.
    pub value: Option<String>,
    /// What is wrong, and where in the record it was read (`missing value at path p:Name`,
    /// `expected a whole number in column Qty`); the record, line, field and value are the
    /// fields above, so the message does not repeat them.
    pub message: String,
}

/// What mapping a file gave, besides the operations sent to the sink.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MapOutcome {
    /// Records read.
    pub records: u64,
    /// Operations sent to the sink (one per good record).
    pub operations: u64,
    /// The first [`LISTED_PROBLEMS`] problems, in file order.
    pub problems: Vec<MapProblem>,
    /// All problems, listed or not.
    pub problem_count: u64,
}

impl MapOutcome {
    /// One record's result: its operation to the sink, or its problems to the list.
    fn take(
        &mut self,
        op: Option<Operation>,
        problems: &mut Vec<MapProblem>,
        sink: &mut dyn FnMut(Operation),
    ) {
        match op {
            Some(op) if problems.is_empty() => {
                self.operations += 1;
                sink(op);
            }
            _ => self.add_problems(problems),
        }
    }

    fn add_problems(&mut self, problems: &mut Vec<MapProblem>) {
        self.problem_count += problems.len() as u64;
        let room = LISTED_PROBLEMS.saturating_sub(self.problems.len());
        self.problems.extend(problems.drain(..).take(room));
        // Whatever `take` left in the drain is dropped with it.
    }
}

/// Streams `file`, maps every record with `mapping` and gives each good record's operation to
/// `sink`, in file order. On `Err`, operations already given to the sink belong to a file that
/// must be rejected as a whole.
pub fn map_file(
    format: &Format,
    mapping: &Mapping,
    file: &Path,
    sink: &mut dyn FnMut(Operation),
) -> Result<MapOutcome, MapError> {
    match format {
        Format::Xml { .. } => map_xml(mapping, file, sink),
        Format::Csv(csv) => map_csv(csv, mapping, file, sink),
    }
}

fn map_xml(
    mapping: &Mapping,
    file: &Path,
    sink: &mut dyn FnMut(Operation),
) -> Result<MapOutcome, MapError> {
    let record_path = mapping.record.as_ref().ok_or_else(|| {
        MapError::Mapping("an XML flow needs `record`, the path of the record element".into())
    })?;
    let mapper = Mapper {
        mapping,
        decimal: '.',
        place: Place::Xml,
    };
    let mut records = XmlRecords::open(file, record_path)?;
    let mut outcome = MapOutcome::default();
    let mut problems = Vec::new();
    while let Some(record) = records.next_record()? {
        outcome.records += 1;
        let op = mapper.map_record(&record, &mut problems);
        outcome.take(op, &mut problems, sink);
        // `record` (the element tree) is dropped here, before the next one is read.
    }
    Ok(outcome)
}

fn map_csv(
    format: &CsvFormat,
    mapping: &Mapping,
    file: &Path,
    sink: &mut dyn FnMut(Operation),
) -> Result<MapOutcome, MapError> {
    check_columns(format, mapping)?;
    let mapper = Mapper {
        mapping,
        decimal: format.decimal,
        place: Place::Csv,
    };
    let mut rows = CsvRows::open(file, format)?;
    let mut outcome = MapOutcome::default();
    let mut problems = Vec::new();
    while let Some(mut row) = rows.next_row()? {
        outcome.records += 1;
        if row.cells.len() != format.columns.len() {
            problems.push(MapProblem {
                record: row.index,
                line: row.line,
                field: None,
                value: None,
                message: format!(
                    "{} values, expected {} (one per configured column)",
                    row.cells.len(),
                    format.columns.len()
                ),
            });
            outcome.add_problems(&mut problems);
            continue;
        }
        // Every column is checked against its type, used by the mapping or not: the CSV
        // contract is the configured columns.
        for (i, column) in format.columns.iter().enumerate() {
            let cell = row.cells.get(i).unwrap_or("");
            let problem = if cell.is_empty() {
                (!column.optional).then(|| "missing value (a required column)".to_string())
            } else {
                convert(cell, column.ty, format.decimal)
                    .err()
                    .map(|expected| format!("expected {expected}"))
            };
            if let Some(message) = problem {
                row.reported[i] = true;
                problems.push(MapProblem {
                    record: row.index,
                    line: row.line,
                    field: Some(column.name.clone()),
                    value: (!cell.is_empty()).then(|| shorten(cell).into_owned()),
                    message,
                });
            }
        }
        let op = mapper.map_record(&row, &mut problems);
        outcome.take(op, &mut problems, sink);
    }
    Ok(outcome)
}

/// A CSV mapping's paths must be bare names of configured columns.
fn check_columns(format: &CsvFormat, mapping: &Mapping) -> Result<(), MapError> {
    for f in mapped_fields(&mapping.action) {
        for path in f.source.paths() {
            check_column(format, f, path)?;
        }
    }
    Ok(())
}

fn check_column(format: &CsvFormat, f: &FieldMapping, path: &FieldPath) -> Result<(), MapError> {
    let column = match (path.steps.as_slice(), &path.attr) {
        ([step], None) if step.predicate.is_none() => step.name.local.as_str(),
        _ => {
            return Err(MapError::Mapping(format!(
                "field {}: `{}` is not a column name",
                f.field, path.text
            )));
        }
    };
    if !format.columns.iter().any(|c| c.name == column) {
        return Err(MapError::Mapping(format!(
            "field {}: no configured column is named \"{column}\" (columns: {})",
            f.field,
            list(
                &format
                    .columns
                    .iter()
                    .map(|c| c.name.clone())
                    .collect::<Vec<_>>()
            )
        )));
    }
    Ok(())
}

fn mapped_fields(action: &Action) -> Vec<&FieldMapping> {
    match action {
        Action::Upsert(u) => u.fields.iter().collect(),
        Action::SetStock(s) => [Some(&s.product), Some(&s.quantity), Some(&s.location)]
            .into_iter()
            .chain([s.lot.as_ref()])
            .flatten()
            .collect(),
        Action::ConfirmDelivery(c) => [Some(&c.picking), Some(&c.product), Some(&c.quantity)]
            .into_iter()
            .chain([c.lot.as_ref(), c.tracking.as_ref()])
            .flatten()
            .collect(),
    }
}

/// Where records come from, for the words of a problem.
#[derive(Clone, Copy)]
enum Place {
    Xml,
    Csv,
}

impl Place {
    /// Where a value was read: `at path p:Name`, `in column Qty`.
    fn source(self, path: &FieldPath) -> String {
        match self {
            Place::Xml => format!("at path {}", path.text),
            Place::Csv => format!("in column {}", path.text),
        }
    }

    /// Several paths tried, none present.
    fn none_of(self, paths: &[FieldPath]) -> String {
        let names = paths
            .iter()
            .map(|p| p.text.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        match self {
            Place::Xml => format!("none of the paths {names} is present"),
            Place::Csv => format!("none of the columns {names} has a value"),
        }
    }
}

struct Mapper<'a> {
    mapping: &'a Mapping,
    decimal: char,
    place: Place,
}

/// A field's value could not be had; its problem is already listed.
struct Failed;

impl Mapper<'_> {
    /// The operation of one record, or `None` with the record's problems added to `problems`.
    fn map_record(&self, record: &dyn Record, problems: &mut Vec<MapProblem>) -> Option<Operation> {
        match &self.mapping.action {
            Action::Upsert(upsert) => self.upsert(upsert, record, problems),
            Action::SetStock(stock) => self.set_stock(stock, record, problems),
            Action::ConfirmDelivery(confirm) => self.confirm_delivery(confirm, record, problems),
        }
    }

    /// One picking's confirmation: its key, the tracking number and every line's product,
    /// quantity and lot, as the file names them (Odoo looks them up).
    fn confirm_delivery(
        &self,
        confirm: &ConfirmDeliveryMapping,
        record: &dyn Record,
        problems: &mut Vec<MapProblem>,
    ) -> Option<Operation> {
        let picking = self.value(&confirm.picking, ValueType::String, record, problems);
        let tracking = match &confirm.tracking {
            Some(t) => self.value(t, ValueType::String, record, problems),
            None => Ok(None),
        };
        let parts = record.parts(&confirm.lines);
        if parts.is_empty() {
            problems.push(MapProblem {
                record: record.index(),
                line: record.line(),
                field: None,
                value: None,
                message: format!(
                    "no line at path {}: a confirmation ships at least one product",
                    confirm.lines.text
                ),
            });
        }
        let mut lines = Vec::new();
        let mut products = Vec::new();
        let mut bad = false;
        for (i, part) in parts.iter().enumerate() {
            let before = problems.len();
            let product = self.value(&confirm.product, ValueType::String, part, problems);
            let quantity = self.value(&confirm.quantity, ValueType::Float, part, problems);
            let lot = match &confirm.lot {
                Some(lot) => self.value(lot, ValueType::String, part, problems),
                None => Ok(None),
            };
            if let Ok(Some(q)) = &quantity
                && q.as_f64().is_some_and(|q| q < 0.0)
            {
                problems.push(MapProblem {
                    record: record.index(),
                    line: record.line(),
                    field: Some("quantity".into()),
                    value: Some(q.to_string()),
                    message: match confirm.quantity.source.paths().first() {
                        Some(path) => format!(
                            "a shipped quantity cannot be negative {}",
                            self.place.source(path)
                        ),
                        None => "a shipped quantity cannot be negative".to_string(),
                    },
                });
            }
            for p in &mut problems[before..] {
                p.message = format!("line {} ({}): {}", i + 1, confirm.lines.text, p.message);
            }
            if problems.len() > before {
                bad = true;
                continue;
            }
            let (Ok(Some(product)), Ok(Some(quantity)), Ok(lot)) = (product, quantity, lot) else {
                bad = true;
                continue;
            };
            let mut line = Map::new();
            line.insert("product_id".into(), product.clone());
            line.insert("quantity".into(), quantity);
            if let Some(lot) = lot {
                line.insert("lot_id".into(), lot);
            }
            if !products.contains(&product) {
                products.push(product);
            }
            lines.push(Value::Object(line));
        }
        let (Ok(Some(picking)), Ok(tracking)) = (picking, tracking) else {
            return None;
        };
        if bad || lines.is_empty() {
            return None;
        }
        let mut key = Map::new();
        key.insert(confirm.picking.field.clone(), picking);
        let mut values = Map::new();
        values.insert("lines".into(), Value::Array(lines));
        if let Some(tracking) = tracking {
            values.insert("carrier_tracking_ref".into(), tracking);
        }
        let mut lookups = BTreeMap::new();
        if let Some(lookup) = &confirm.product.lookup {
            lookups.insert(
                "product_id".into(),
                lookup_ref(lookup, &Value::Array(products)),
            );
        }
        Some(Operation {
            action: ActionKind::ConfirmDelivery,
            model: "stock.picking".into(),
            key,
            values,
            lookups,
            record: record.index(),
            line: record.line(),
        })
    }

    fn upsert(
        &self,
        upsert: &UpsertMapping,
        record: &dyn Record,
        problems: &mut Vec<MapProblem>,
    ) -> Option<Operation> {
        let mut values = Map::new();
        let mut lookups = BTreeMap::new();
        let mut failed = Vec::new();
        for f in &upsert.fields {
            match self.value(f, f.ty, record, problems) {
                Ok(Some(value)) => {
                    if let Some(lookup) = &f.lookup {
                        lookups.insert(f.field.clone(), lookup_ref(lookup, &value));
                    }
                    values.insert(f.field.clone(), value);
                }
                Ok(None) => {}
                Err(Failed) => failed.push(f.field.as_str()),
            }
        }
        let mut key = Map::new();
        for k in &upsert.key {
            match values.get(k) {
                Some(v) => {
                    key.insert(k.clone(), v.clone());
                }
                None if failed.contains(&k.as_str()) => {}
                None => problems.push(MapProblem {
                    record: record.index(),
                    line: record.line(),
                    field: Some(k.clone()),
                    value: None,
                    message: "the key field has no value, so the record cannot be matched in Odoo"
                        .to_string(),
                }),
            }
        }
        if !failed.is_empty() || key.len() != upsert.key.len() {
            return None;
        }
        Some(Operation {
            action: ActionKind::Upsert,
            model: self.mapping.model.clone(),
            key,
            values,
            lookups,
            record: record.index(),
            line: record.line(),
        })
    }

    fn set_stock(
        &self,
        stock: &SetStockMapping,
        record: &dyn Record,
        problems: &mut Vec<MapProblem>,
    ) -> Option<Operation> {
        let product = self.value(&stock.product, stock.product.ty, record, problems);
        let location = self.value(&stock.location, stock.location.ty, record, problems);
        let lot = match &stock.lot {
            Some(lot) => self.value(lot, lot.ty, record, problems),
            None => Ok(None),
        };
        // An on-hand quantity is a float whatever the config says.
        let quantity = self.value(&stock.quantity, ValueType::Float, record, problems);
        let (Ok(Some(product)), Ok(Some(location)), Ok(lot), Ok(Some(quantity))) =
            (product, location, lot, quantity)
        else {
            return None;
        };

        let mut key = Map::new();
        let mut lookups = BTreeMap::new();
        let product_lookup = stock.product.lookup.clone().unwrap_or(Lookup {
            model: "product.product".into(),
            field: "default_code".into(),
        });
        lookups.insert("product_id".into(), lookup_ref(&product_lookup, &product));
        key.insert("product_id".into(), product);
        let location_lookup = stock.location.lookup.clone().unwrap_or(Lookup {
            model: "stock.location".into(),
            field: "complete_name".into(),
        });
        lookups.insert(
            "location_id".into(),
            lookup_ref(&location_lookup, &location),
        );
        key.insert("location_id".into(), location);
        if let Some(lot) = lot {
            let lot_lookup = stock
                .lot
                .as_ref()
                .and_then(|l| l.lookup.clone())
                .unwrap_or(Lookup {
                    model: "stock.lot".into(),
                    field: "name".into(),
                });
            lookups.insert("lot_id".into(), lookup_ref(&lot_lookup, &lot));
            key.insert("lot_id".into(), lot);
        }
        let mut values = Map::new();
        values.insert("inventory_quantity".into(), quantity);
        Some(Operation {
            action: ActionKind::SetStock,
            model: "stock.quant".into(),
            key,
            values,
            lookups,
            record: record.index(),
            line: record.line(),
        })
    }

    /// The converted value of one field: `Ok(None)` for an optional field with no value,
    /// `Err` once its problem is listed. Of several paths, the first present is read.
    fn value(
        &self,
        f: &FieldMapping,
        ty: ValueType,
        record: &dyn Record,
        problems: &mut Vec<MapProblem>,
    ) -> Result<Option<Value>, Failed> {
        let paths = match &f.source {
            ValueSource::Constant(value) => return Ok(Some(value.clone())),
            ValueSource::Path(_) | ValueSource::FirstOf(_) => f.source.paths(),
        };
        let mut found = None;
        for path in paths {
            match record.value(path) {
                Raw::Reported => return Err(Failed),
                Raw::Absent => {}
                // An empty CSV cell is no value: the next column is tried.
                Raw::Text("") if matches!(self.place, Place::Csv) => {}
                Raw::Text(text) => {
                    found = Some((path, text));
                    break;
                }
            }
        }
        let (path, raw) = match found {
            Some((path, text)) if !text.is_empty() => (path, text),
            _ if f.optional => return Ok(None),
            found => {
                let message = match (found, paths) {
                    (Some((path, _)), _) | (None, [path]) => {
                        format!("missing value {}", self.place.source(path))
                    }
                    (None, _) => format!("missing value: {}", self.place.none_of(paths)),
                };
                problems.push(MapProblem {
                    record: record.index(),
                    line: record.line(),
                    field: Some(f.field.clone()),
                    value: None,
                    message,
                });
                return Err(Failed);
            }
        };
        convert(raw, ty, self.decimal)
            .map(Some)
            .map_err(|expected| {
                let shown = shorten(raw);
                problems.push(MapProblem {
                    record: record.index(),
                    line: record.line(),
                    field: Some(f.field.clone()),
                    value: Some(shown.clone().into_owned()),
                    message: format!("expected {expected} {}", self.place.source(path)),
                });
                Failed
            })
    }
}

fn lookup_ref(lookup: &Lookup, value: &Value) -> LookupRef {
    LookupRef {
        model: lookup.model.clone(),
        field: lookup.field.clone(),
        value: value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use serde_json::json;

    use std::path::PathBuf;

    use super::*;
    use crate::error::Consequence;
    use crate::mapping::config::{CsvColumn, Snapshot};
    use crate::mapping::path::{column_path, parse_field_path, parse_record_path};

    const PRODUCTS_NS: &str = "urn:edi-bridge:products:1";

    fn namespaces() -> BTreeMap<String, String> {
        BTreeMap::from([("p".to_owned(), PRODUCTS_NS.to_owned())])
    }

    fn field(name: &str, path: &str, ty: ValueType) -> FieldMapping {
        FieldMapping {
            field: name.to_owned(),
            source: ValueSource::Path(parse_field_path(path, &namespaces()).unwrap()),
            ty,
            optional: false,
            lookup: None,
        }
    }

    fn optional(mut f: FieldMapping) -> FieldMapping {
        f.optional = true;
        f
    }

    fn looked_up(mut f: FieldMapping, model: &str, by: &str) -> FieldMapping {
        f.lookup = Some(Lookup {
            model: model.to_owned(),
            field: by.to_owned(),
        });
        f
    }

    fn constant(name: &str, value: Value) -> FieldMapping {
        FieldMapping {
            field: name.to_owned(),
            source: ValueSource::Constant(value),
            ty: ValueType::String,
            optional: false,
            lookup: None,
        }
    }

    fn column(name: &str, ty: ValueType) -> FieldMapping {
        FieldMapping {
            source: ValueSource::Path(column_path(name)),
            ..field(name, ".", ty)
        }
    }

    fn upsert(record: Option<&str>, key: &[&str], fields: Vec<FieldMapping>) -> Mapping {
        Mapping {
            record: record.map(|r| parse_record_path(r, &namespaces()).unwrap()),
            namespaces: namespaces(),
            model: "product.product".to_owned(),
            action: Action::Upsert(UpsertMapping {
                key: key.iter().map(|k| k.to_string()).collect(),
                fields,
            }),
        }
    }

    fn xml() -> Format {
        Format::Xml {
            schema: PathBuf::from("xsd/products.xsd"),
        }
    }

    fn run(format: &Format, mapping: &Mapping, bytes: &[u8]) -> (MapOutcome, Vec<Operation>) {
        let (outcome, ops) = try_run(format, mapping, bytes);
        (outcome.unwrap_or_else(|e| panic!("{e}")), ops)
    }

    fn try_run(
        format: &Format,
        mapping: &Mapping,
        bytes: &[u8],
    ) -> (Result<MapOutcome, MapError>, Vec<Operation>) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f.flush().unwrap();
        let mut ops = Vec::new();
        let outcome = map_file(format, mapping, f.path(), &mut |op| ops.push(op));
        (outcome, ops)
    }

    fn product_mapping() -> Mapping {
        upsert(
            Some("/p:Products/p:Product"),
            &["default_code"],
            vec![
                field("default_code", "@sku", ValueType::String),
                field("name", "p:Name", ValueType::String),
                optional(field("barcode", "p:Ean", ValueType::String)),
                field("list_price", "p:Price", ValueType::Float),
                looked_up(
                    field("uom_id", "p:Unit", ValueType::String),
                    "uom.uom",
                    "name",
                ),
                constant("is_storable", json!(true)),
            ],
        )
    }

    const PRODUCTS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Products xmlns="urn:edi-bridge:products:1">
  <Product sku="A-100">
    <Name> Widget &amp; Co </Name>
    <Ean>5400000000001</Ean>
    <Price>12.50</Price>
    <Unit>Units</Unit>
  </Product>
  <Product sku="A-200">
    <Name>Gadget</Name>
    <Price>3</Price>
    <Unit>Units</Unit>
  </Product>
</Products>
"#;

    #[test]
    fn each_product_becomes_one_upsert_with_its_keys_values_and_lookups() {
        let (outcome, ops) = run(&xml(), &product_mapping(), PRODUCTS.as_bytes());
        assert_eq!(
            outcome,
            MapOutcome {
                records: 2,
                operations: 2,
                problems: vec![],
                problem_count: 0
            }
        );
        let units = LookupRef {
            model: "uom.uom".into(),
            field: "name".into(),
            value: json!("Units"),
        };
        assert_eq!(
            ops[0],
            Operation {
                action: ActionKind::Upsert,
                model: "product.product".into(),
                key: json!({"default_code": "A-100"})
                    .as_object()
                    .unwrap()
                    .clone(),
                values: json!({
                    "default_code": "A-100",
                    "name": "Widget & Co",
                    "barcode": "5400000000001",
                    "list_price": 12.5,
                    "uom_id": "Units",
                    "is_storable": true,
                })
                .as_object()
                .unwrap()
                .clone(),
                lookups: BTreeMap::from([("uom_id".to_owned(), units)]),
                record: 1,
                line: 3,
            }
        );
        // An optional field with no element is left out, not sent as null.
        assert_eq!(ops[1].record, 2);
        assert_eq!(ops[1].line, 9);
        assert!(!ops[1].values.contains_key("barcode"));
        assert_eq!(ops[1].values["list_price"], json!(3.0));
    }

    #[test]
    fn values_that_do_not_convert_are_listed_with_record_line_field_and_value() {
        let mapping = upsert(
            Some("/Items/Item"),
            &["code"],
            vec![
                field("code", "@code", ValueType::String),
                optional(field("price", "Price", ValueType::Float)),
                optional(field("qty", "Qty", ValueType::Integer)),
                optional(field("active", "Active", ValueType::Boolean)),
                optional(field("since", "Since", ValueType::Date)),
            ],
        );
        let doc = r#"<Items>
<Item code="ok"><Price>-1.25</Price><Qty>+7</Qty><Active>YES</Active><Since>2024-02-29</Since></Item>
<Item code="thousands"><Price>1,234.50</Price></Item>
<Item code="comma"><Price>12,50</Price></Item>
<Item code="word"><Qty>seven</Qty></Item>
<Item code="fraction"><Qty>7.0</Qty></Item>
<Item code="bool"><Active>maybe</Active></Item>
<Item code="date"><Since>2023-02-29</Since></Item>
<Item code="datefmt"><Since>29/02/2024</Since></Item>
<Item code="nan"><Price>NaN</Price></Item>
<Item code="two"><Price>x</Price><Qty>y</Qty></Item>
<Item code="last"><Active>0</Active><Price>.5</Price><Qty>-3</Qty></Item>
</Items>"#;
        let (outcome, ops) = run(&xml(), &mapping, doc.as_bytes());
        assert_eq!(outcome.records, 11);
        assert_eq!(outcome.operations, 2);
        assert_eq!(outcome.problem_count, 10);
        let codes: Vec<_> = ops.iter().map(|o| o.key["code"].clone()).collect();
        assert_eq!(codes, vec![json!("ok"), json!("last")]);
        assert_eq!(ops[0].values["price"], json!(-1.25));
        assert_eq!(ops[0].values["qty"], json!(7));
        assert_eq!(ops[0].values["active"], json!(true));
        assert_eq!(ops[0].values["since"], json!("2024-02-29"));
        assert_eq!(ops[1].values["active"], json!(false));
        assert_eq!(ops[1].values["price"], json!(0.5));
        assert_eq!(ops[1].values["qty"], json!(-3));

        let p = &outcome.problems[0];
        assert_eq!((p.record, p.line), (2, 3));
        assert_eq!(p.field.as_deref(), Some("price"));
        assert_eq!(p.value.as_deref(), Some("1,234.50"));
        assert_eq!(
            p.message,
            "expected a number such as 12.50 (no thousands separator) at path Price"
        );
        let by_record: Vec<(u64, u64, &str, &str)> = outcome
            .problems
            .iter()
            .map(|p| {
                (
                    p.record,
                    p.line,
                    p.field.as_deref().unwrap(),
                    p.value.as_deref().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            by_record,
            vec![
                (2, 3, "price", "1,234.50"),
                (3, 4, "price", "12,50"),
                (4, 5, "qty", "seven"),
                (5, 6, "qty", "7.0"),
                (6, 7, "active", "maybe"),
                (7, 8, "since", "2023-02-29"),
                (8, 9, "since", "29/02/2024"),
                (9, 10, "price", "NaN"),
                (10, 11, "price", "x"),
                (10, 11, "qty", "y"),
            ]
        );
        assert!(
            outcome.problems[3]
                .message
                .contains("expected a whole number")
        );
        assert!(outcome.problems[4].message.contains("expected a boolean"));
        assert!(
            outcome.problems[5]
                .message
                .contains("expected a date YYYY-MM-DD")
        );
    }

    /// A problem as the error report lists it (what the import does with a [`MapProblem`]).
    fn reported(p: &MapProblem) -> String {
        let mut problem = crate::report::Problem::new(p.message.clone())
            .record(p.record)
            .at(p.line, None);
        if let Some(field) = &p.field {
            problem = problem.field(field.clone());
        }
        if let Some(value) = &p.value {
            problem = problem.value(value.clone());
        }
        problem.render()
    }

    #[test]
    fn a_reported_problem_says_record_line_field_and_value_once() {
        let mapping = upsert(
            Some("/R/L"),
            &["code"],
            vec![
                field("code", "@code", ValueType::String),
                field("price", "Price", ValueType::Float),
            ],
        );
        let doc = "<R>\n<L code=\"a\"><Price>twelve</Price></L>\n<L code=\"b\"/>\n<L/>\n</R>";
        let (outcome, _) = run(&xml(), &mapping, doc.as_bytes());
        let lines: Vec<String> = outcome.problems.iter().map(reported).collect();
        assert_eq!(
            lines,
            [
                "record 1 (line 2), field price, value \"twelve\": expected a number such as \
                 12.50 (no thousands separator) at path Price",
                "record 2 (line 3), field price: missing value at path Price",
                "record 3 (line 4), field code: missing value at path @code",
                "record 3 (line 4), field price: missing value at path Price",
            ]
        );

        let text = "Référence;Désignation;Prix;Stock;Mis à jour\nA;Un;x;;\nB;;1;;\n";
        let (outcome, _) = run(
            &csv_format(UTF_8_ENCODING, '.'),
            &csv_mapping(),
            text.as_bytes(),
        );
        let lines: Vec<String> = outcome.problems.iter().map(reported).collect();
        assert_eq!(
            lines,
            [
                "record 1 (line 2), field Prix, value \"x\": expected a number such as 12.50 \
                 (no thousands separator)",
                "record 2 (line 3), field Désignation: missing value (a required column)",
            ]
        );
    }

    #[test]
    fn a_missing_required_value_is_a_problem_and_an_empty_optional_is_left_out() {
        let mapping = upsert(
            Some("/p:Products/p:Product"),
            &["default_code"],
            vec![
                field("default_code", "@sku", ValueType::String),
                field("name", "p:Name", ValueType::String),
                optional(field("barcode", "p:Ean", ValueType::String)),
            ],
        );
        let doc = r#"<p:Products xmlns:p="urn:edi-bridge:products:1">
  <p:Product sku="1"><p:Name>One</p:Name><p:Ean>  </p:Ean></p:Product>
  <p:Product sku="2"><p:Name> </p:Name></p:Product>
  <p:Product sku="3"/>
  <p:Product><p:Name>No key</p:Name></p:Product>
</p:Products>"#;
        let (outcome, ops) = run(&xml(), &mapping, doc.as_bytes());
        assert_eq!(ops.len(), 1);
        assert_eq!(
            ops[0].values,
            *json!({"default_code": "1", "name": "One"})
                .as_object()
                .unwrap()
        );
        let found: Vec<(u64, &str)> = outcome
            .problems
            .iter()
            .map(|p| (p.record, p.message.as_str()))
            .collect();
        assert_eq!(
            found,
            vec![
                (2, "missing value at path p:Name"),
                (3, "missing value at path p:Name"),
                (4, "missing value at path @sku"),
            ]
        );
        assert!(outcome.problems.iter().all(|p| p.value.is_none()));
    }

    #[test]
    fn an_empty_optional_key_field_stops_its_record() {
        let mapping = upsert(
            Some("/R/L"),
            &["ref"],
            vec![optional(field("ref", "@ref", ValueType::String))],
        );
        let (outcome, ops) = run(&xml(), &mapping, b"<R><L ref=\"a\"/><L/></R>");
        assert_eq!(ops.len(), 1);
        assert_eq!(outcome.problem_count, 1);
        assert!(
            outcome.problems[0]
                .message
                .contains("the key field has no value"),
            "{:?}",
            outcome.problems
        );
    }

    #[test]
    fn a_problem_names_the_line_where_its_record_starts() {
        let mut doc = String::from("<?xml version=\"1.0\"?>\n<!-- header\n comment -->\n<R>\n");
        for i in 1..=5 {
            // Records spread over several lines; record 4 is the bad one.
            let price = if i == 4 { "four" } else { "4.0" };
            doc.push_str(&format!(
                "  <L n=\"{i}\">\n    <P>\n{price}\n    </P>\n  </L>\n"
            ));
        }
        doc.push_str("</R>\n");
        let mapping = upsert(
            Some("/R/L"),
            &["n"],
            vec![
                field("n", "@n", ValueType::Integer),
                field("p", "P", ValueType::Float),
            ],
        );
        let (outcome, ops) = run(&xml(), &mapping, doc.as_bytes());
        assert_eq!(
            ops.iter().map(|o| o.line).collect::<Vec<_>>(),
            [5, 10, 15, 25]
        );
        let p = &outcome.problems[0];
        assert_eq!((p.record, p.line), (4, 20));
        assert_eq!(p.field.as_deref(), Some("p"));
        assert!(p.message.ends_with("at path P"), "{}", p.message);
        assert_eq!(doc.lines().nth(19).unwrap().trim(), "<L n=\"4\">");
    }

    #[test]
    fn only_the_first_hundred_problems_are_listed_but_all_are_counted() {
        let mut doc = String::from("<R>");
        for _ in 0..250 {
            doc.push_str("<L><P>bad</P></L>");
        }
        doc.push_str("</R>");
        let mapping = upsert(
            Some("/R/L"),
            &["p"],
            vec![field("p", "P", ValueType::Integer)],
        );
        let (outcome, ops) = run(&xml(), &mapping, doc.as_bytes());
        assert!(ops.is_empty());
        assert_eq!(outcome.records, 250);
        assert_eq!(outcome.problem_count, 250);
        assert_eq!(outcome.problems.len(), LISTED_PROBLEMS);
        assert_eq!(outcome.problems[99].record, 100);
    }

    #[test]
    fn a_hundred_thousand_products_map_with_one_record_in_memory_at_a_time() {
        use crate::mapping::records::LIVE_ELEMENTS;
        let mut doc = String::from("<Products xmlns=\"urn:edi-bridge:products:1\">\n");
        for i in 0..100_000 {
            doc.push_str(&format!(
                "<Product sku=\"S{i}\"><Name>N{i}</Name><Price>{i}.5</Price><Unit>Units</Unit></Product>\n"
            ));
        }
        doc.push_str("</Products>\n");
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(doc.as_bytes()).unwrap();
        let base = LIVE_ELEMENTS.with(|n| n.get());
        let (mut count, mut most) = (0u64, 0i64);
        let outcome = map_file(&xml(), &product_mapping(), f.path(), &mut |op| {
            count += 1;
            assert_eq!(op.line, count + 1);
            most = most.max(LIVE_ELEMENTS.with(|n| n.get()) - base);
        })
        .unwrap();
        assert_eq!(
            (outcome.records, outcome.operations, count),
            (100_000, 100_000, 100_000)
        );
        // The record being mapped (Product and its 3 children) is all that is alive.
        assert!(most <= 4, "{most} elements alive while mapping");
        assert_eq!(LIVE_ELEMENTS.with(|n| n.get()), base);
    }

    fn stock(location: FieldMapping, lot: Option<FieldMapping>) -> Mapping {
        Mapping {
            record: Some(parse_record_path("/StockReport/Line", &namespaces()).unwrap()),
            namespaces: namespaces(),
            model: "stock.quant".into(),
            action: Action::SetStock(SetStockMapping {
                product: looked_up(
                    field("product_id", "Sku", ValueType::String),
                    "product.product",
                    "default_code",
                ),
                quantity: field("inventory_quantity", "OnHand", ValueType::Float),
                location,
                lot,
                snapshot: Snapshot::Partial,
            }),
        }
    }

    const STOCK: &str = r#"<StockReport>
<Line><Sku>A-100</Sku><OnHand>5</OnHand><Lot>L-1</Lot><Bin>BIN-7</Bin></Line>
<Line><Sku>A-200</Sku><OnHand>0.5</OnHand><Bin>BIN-8</Bin></Line>
</StockReport>"#;

    #[test]
    fn set_stock_with_a_fixed_location_and_an_optional_lot() {
        let location = looked_up(
            constant("location_id", json!("WH/Stock")),
            "stock.location",
            "complete_name",
        );
        let lot = looked_up(
            optional(field("lot_id", "Lot", ValueType::String)),
            "stock.lot",
            "name",
        );
        let (outcome, ops) = run(&xml(), &stock(location, Some(lot)), STOCK.as_bytes());
        assert_eq!(outcome.operations, 2);
        assert_eq!(
            serde_json::to_value(&ops[0]).unwrap(),
            json!({
                "action": "set_stock",
                "model": "stock.quant",
                "key": {"product_id": "A-100", "location_id": "WH/Stock", "lot_id": "L-1"},
                "values": {"inventory_quantity": 5.0},
                "lookups": {
                    "product_id": {"model": "product.product", "field": "default_code", "value": "A-100"},
                    "location_id": {"model": "stock.location", "field": "complete_name", "value": "WH/Stock"},
                    "lot_id": {"model": "stock.lot", "field": "name", "value": "L-1"},
                },
                "record": 1,
                "line": 2,
            })
        );
        // No lot in the record: no lot_id at all.
        assert_eq!(
            Value::Object(ops[1].key.clone()),
            json!({"product_id": "A-200", "location_id": "WH/Stock"})
        );
        assert!(!ops[1].lookups.contains_key("lot_id"));
        assert_eq!(ops[1].values["inventory_quantity"], json!(0.5));
    }

    #[test]
    fn set_stock_with_a_location_read_from_the_record_by_barcode() {
        let location = looked_up(
            field("location_id", "Bin", ValueType::String),
            "stock.location",
            "barcode",
        );
        let lot = looked_up(
            field("lot_id", "Lot", ValueType::String),
            "stock.lot",
            "name",
        );
        let (outcome, ops) = run(&xml(), &stock(location, Some(lot)), STOCK.as_bytes());
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].key["location_id"], json!("BIN-7"));
        assert_eq!(
            ops[0].lookups["location_id"],
            LookupRef {
                model: "stock.location".into(),
                field: "barcode".into(),
                value: json!("BIN-7")
            }
        );
        // The lot is required here, and the second line has none.
        assert_eq!(outcome.problem_count, 1);
        assert_eq!(outcome.problems[0].message, "missing value at path Lot");
    }

    #[test]
    fn set_stock_quantities_must_be_numbers() {
        let location = constant("location_id", json!("WH/Stock"));
        let doc = "<StockReport><Line><Sku>A</Sku><OnHand>many</OnHand></Line></StockReport>";
        let (outcome, ops) = run(&xml(), &stock(location, None), doc.as_bytes());
        assert!(ops.is_empty());
        assert_eq!(
            outcome.problems[0].field.as_deref(),
            Some("inventory_quantity")
        );
        assert_eq!(outcome.problems[0].value.as_deref(), Some("many"));
    }

    fn confirm_mapping() -> Mapping {
        let ns = BTreeMap::from([("d".to_owned(), "urn:d".to_owned())]);
        let path = |p: &str| ValueSource::Path(parse_field_path(p, &ns).unwrap());
        let f = |field: &str, p: &str, ty, optional| FieldMapping {
            field: field.to_owned(),
            source: path(p),
            ty,
            optional,
            lookup: None,
        };
        Mapping {
            record: Some(parse_record_path("/d:C/d:S", &ns).unwrap()),
            namespaces: ns.clone(),
            model: "stock.picking".into(),
            action: Action::ConfirmDelivery(crate::mapping::config::ConfirmDeliveryMapping {
                picking: f("name", "d:Order", ValueType::String, false),
                lines: parse_field_path("d:Line", &ns).unwrap(),
                product: looked_up(
                    f("product_id", "d:Sku", ValueType::String, false),
                    "product.product",
                    "default_code",
                ),
                quantity: f("quantity", "d:Shipped", ValueType::Float, false),
                lot: Some(f("lot_id", "d:Lot", ValueType::String, true)),
                tracking: Some(f(
                    "carrier_tracking_ref",
                    "d:Tracking",
                    ValueType::String,
                    true,
                )),
                backorder: crate::mapping::config::Backorder::Create,
                allow_over_delivery: false,
            }),
        }
    }

    #[test]
    fn a_confirmation_maps_its_lines_and_names_the_bad_line() {
        let doc = r#"<C xmlns="urn:d">
  <S><Order>WH/OUT/1</Order><Tracking>T1</Tracking>
    <Line><Sku>A</Sku><Shipped>2</Shipped><Lot>L1</Lot></Line>
    <Line><Sku>A</Sku><Shipped>1.5</Shipped></Line>
    <Line><Sku>B</Sku><Shipped>0</Shipped></Line>
  </S>
  <S><Order>WH/OUT/2</Order>
    <Line><Sku>A</Sku><Shipped>1</Shipped></Line>
    <Line><Shipped>-1</Shipped></Line>
  </S>
  <S><Order>WH/OUT/3</Order></S>
</C>"#;
        let (outcome, ops) = run(&xml(), &confirm_mapping(), doc.as_bytes());
        assert_eq!(outcome.records, 3);
        assert_eq!(ops.len(), 1);
        assert_eq!(
            serde_json::to_value(&ops[0]).unwrap(),
            json!({
                "action": "confirm_delivery",
                "model": "stock.picking",
                "key": {"name": "WH/OUT/1"},
                "values": {
                    "carrier_tracking_ref": "T1",
                    "lines": [
                        {"product_id": "A", "quantity": 2.0, "lot_id": "L1"},
                        {"product_id": "A", "quantity": 1.5},
                        {"product_id": "B", "quantity": 0.0}
                    ]
                },
                "lookups": {"product_id": {
                    "model": "product.product", "field": "default_code", "value": ["A", "B"]
                }},
                "record": 1,
                "line": 2
            })
        );
        let messages: Vec<(u64, &str)> = outcome
            .problems
            .iter()
            .map(|p| (p.record, p.message.as_str()))
            .collect();
        assert_eq!(
            messages,
            vec![
                (2, "line 2 (d:Line): missing value at path d:Sku"),
                (
                    2,
                    "line 2 (d:Line): a shipped quantity cannot be negative at path d:Shipped"
                ),
                (
                    3,
                    "no line at path d:Line: a confirmation ships at least one product"
                ),
            ]
        );
    }

    #[test]
    fn an_xml_mapping_without_a_record_path_stops_the_flow() {
        let mapping = upsert(None, &[], vec![]);
        let (result, _) = try_run(&xml(), &mapping, b"<R/>");
        let err = result.unwrap_err();
        assert!(matches!(err, MapError::Mapping(_)), "{err}");
        assert_eq!(err.consequence(), Consequence::Stop);
    }

    #[test]
    fn an_unreadable_file_is_retried() {
        let mut ops = Vec::new();
        let err = map_file(
            &xml(),
            &product_mapping(),
            Path::new("/nonexistent/edi-bridge/file.xml"),
            &mut |op| ops.push(op),
        )
        .unwrap_err();
        assert!(matches!(err, MapError::Io { .. }), "{err}");
        assert_eq!(err.consequence(), Consequence::Retry);
    }

    // ------------------------------------------------ path = ["a", "b"]: the first present

    const UBL_NS: [(&str, &str); 3] = [
        (
            "cat",
            "urn:oasis:names:specification:ubl:schema:xsd:Catalogue-2",
        ),
        (
            "cac",
            "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
        ),
        (
            "cbc",
            "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
        ),
    ];

    fn ubl_path(text: &str) -> FieldPath {
        let ns = UBL_NS
            .iter()
            .map(|(p, u)| (p.to_string(), u.to_string()))
            .collect();
        parse_field_path(text, &ns).unwrap()
    }

    fn first_of(name: &str, paths: &[&str]) -> FieldMapping {
        FieldMapping {
            field: name.to_owned(),
            source: ValueSource::FirstOf(paths.iter().map(|p| ubl_path(p)).collect()),
            ty: ValueType::String,
            optional: false,
            lookup: None,
        }
    }

    const SELLER_ID: &str = "cac:Item/cac:SellersItemIdentification/cbc:ID";
    const GTIN: &str = "cac:Item/cac:StandardItemIdentification/cbc:ID[@schemeID='0160']";

    /// A UBL 2.1 catalogue: line 1 has the seller's item ID and a GTIN, line 2 only a GTIN,
    /// line 3 neither.
    const UBL_CATALOGUE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Catalogue xmlns="urn:oasis:names:specification:ubl:schema:xsd:Catalogue-2"
    xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
    xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:UBLVersionID>2.1</cbc:UBLVersionID>
  <cbc:ID>CAT-2026-11</cbc:ID>
  <cbc:IssueDate>2026-11-27</cbc:IssueDate>
  <cac:ProviderParty><cac:PartyName><cbc:Name>Acme</cbc:Name></cac:PartyName></cac:ProviderParty>
  <cac:ReceiverParty><cac:PartyName><cbc:Name>Us</cbc:Name></cac:PartyName></cac:ReceiverParty>
  <cac:CatalogueLine>
    <cbc:ID>1</cbc:ID>
    <cac:Item>
      <cbc:Name>Desk 160</cbc:Name>
      <cac:SellersItemIdentification><cbc:ID>FURN-DESK-160</cbc:ID></cac:SellersItemIdentification>
      <cac:StandardItemIdentification><cbc:ID schemeID="0160">5400000000017</cbc:ID></cac:StandardItemIdentification>
    </cac:Item>
  </cac:CatalogueLine>
  <cac:CatalogueLine>
    <cbc:ID>2</cbc:ID>
    <cac:Item>
      <cbc:Name>Chair</cbc:Name>
      <cac:StandardItemIdentification><cbc:ID schemeID="0160">5400000000024</cbc:ID></cac:StandardItemIdentification>
    </cac:Item>
  </cac:CatalogueLine>
  <cac:CatalogueLine>
    <cbc:ID>3</cbc:ID>
    <cac:Item><cbc:Name>Lamp</cbc:Name></cac:Item>
  </cac:CatalogueLine>
</Catalogue>
"#;

    fn catalogue_mapping(default_code: FieldMapping) -> Mapping {
        let ns: BTreeMap<String, String> = UBL_NS
            .iter()
            .map(|(p, u)| (p.to_string(), u.to_string()))
            .collect();
        Mapping {
            record: Some(parse_record_path("/cat:Catalogue/cac:CatalogueLine", &ns).unwrap()),
            namespaces: ns,
            model: "product.product".to_owned(),
            action: Action::Upsert(UpsertMapping {
                key: vec!["name".to_owned()],
                fields: vec![
                    FieldMapping {
                        source: ValueSource::Path(ubl_path("cac:Item/cbc:Name")),
                        ..first_of("name", &[])
                    },
                    default_code,
                ],
            }),
        }
    }

    #[test]
    fn the_first_present_path_gives_the_value() {
        let mapping = catalogue_mapping(optional(first_of("default_code", &[SELLER_ID, GTIN])));
        let (outcome, ops) = run(&xml(), &mapping, UBL_CATALOGUE.as_bytes());
        assert_eq!((outcome.records, outcome.problem_count), (3, 0));
        let codes: Vec<_> = ops.iter().map(|o| o.values.get("default_code")).collect();
        assert_eq!(
            codes,
            [
                // Both present: the first wins.
                Some(&json!("FURN-DESK-160")),
                // Only the second present.
                Some(&json!("5400000000024")),
                // None present, optional: left out.
                None,
            ]
        );
        // The order of the paths decides.
        let mapping = catalogue_mapping(optional(first_of("default_code", &[GTIN, SELLER_ID])));
        let (_, ops) = run(&xml(), &mapping, UBL_CATALOGUE.as_bytes());
        assert_eq!(ops[0].values["default_code"], json!("5400000000017"));
    }

    #[test]
    fn a_required_field_none_of_whose_paths_is_present_names_them_all() {
        let mapping = catalogue_mapping(first_of("default_code", &[SELLER_ID, GTIN]));
        let (outcome, ops) = run(&xml(), &mapping, UBL_CATALOGUE.as_bytes());
        assert_eq!(ops.len(), 2);
        assert_eq!(outcome.problem_count, 1);
        let p = &outcome.problems[0];
        assert_eq!(
            (p.record, p.line, p.field.as_deref()),
            (3, 25, Some("default_code"))
        );
        assert!(
            p.message
                .contains(&format!("none of the paths {SELLER_ID}, {GTIN} is present")),
            "{}",
            p.message
        );
    }

    #[test]
    fn a_present_but_empty_element_is_the_value_found() {
        // The element exists: its (empty) text is the value, the next path is not tried.
        let doc = "<R><L><A/><B>b</B></L><L><B>b</B></L></R>";
        let mapping = upsert(
            Some("/R/L"),
            &["k"],
            vec![
                constant("k", json!("x")),
                FieldMapping {
                    field: "v".into(),
                    source: ValueSource::FirstOf(vec![
                        parse_field_path("A", &namespaces()).unwrap(),
                        parse_field_path("B", &namespaces()).unwrap(),
                    ]),
                    ..field("v", ".", ValueType::String)
                },
            ],
        );
        let (outcome, ops) = run(&xml(), &mapping, doc.as_bytes());
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].record, 2);
        assert_eq!(ops[0].values["v"], json!("b"));
        assert!(
            outcome.problems[0].message.ends_with("at path A"),
            "{}",
            outcome.problems[0].message
        );
    }

    #[test]
    fn a_csv_field_takes_the_first_column_with_a_value() {
        let mut mapping = csv_mapping();
        if let Action::Upsert(u) = &mut mapping.action {
            u.fields.push(FieldMapping {
                field: "description".into(),
                source: ValueSource::FirstOf(vec![column_path("Mis à jour"), column_path("Stock")]),
                ..column("Stock", ValueType::String)
            });
        }
        let text = "Référence;Désignation;Prix;Stock;Mis à jour
                    A;Un;1;3;2024-05-01
                    B;Deux;2;4;
                    C;Trois;3;;
";
        let (outcome, ops) = run(&csv_format(UTF_8_ENCODING, '.'), &mapping, text.as_bytes());
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0].values["description"], json!("2024-05-01"));
        // An empty cell is no value: the next column gives it.
        assert_eq!(ops[1].values["description"], json!("4"));
        assert_eq!(outcome.problem_count, 1);
        assert!(
            outcome.problems[0]
                .message
                .contains("none of the columns Mis à jour, Stock has a value"),
            "{}",
            outcome.problems[0].message
        );

        // Every column of the list must be a configured one.
        if let Action::Upsert(u) = &mut mapping.action {
            u.fields.last_mut().unwrap().source =
                ValueSource::FirstOf(vec![column_path("Stock"), column_path("Couleur")]);
        }
        let (result, _) = try_run(&csv_format(UTF_8_ENCODING, '.'), &mapping, b"x");
        let err = result.unwrap_err();
        assert!(err.to_string().contains("\"Couleur\""), "{err}");
    }

    // ------------------------------------------------------------------------------------ CSV

    fn csv_format(encoding: &'static encoding_rs::Encoding, decimal: char) -> Format {
        let col = |name: &str, ty, optional| CsvColumn {
            name: name.to_owned(),
            ty,
            optional,
        };
        Format::Csv(CsvFormat {
            delimiter: b';',
            encoding,
            decimal,
            columns: vec![
                col("Référence", ValueType::String, false),
                col("Désignation", ValueType::String, false),
                col("Prix", ValueType::Float, false),
                col("Stock", ValueType::Integer, true),
                col("Mis à jour", ValueType::Date, true),
            ],
        })
    }

    fn csv_mapping() -> Mapping {
        upsert(
            None,
            &["default_code"],
            vec![
                FieldMapping {
                    field: "default_code".into(),
                    ..column("Référence", ValueType::String)
                },
                FieldMapping {
                    field: "name".into(),
                    ..column("Désignation", ValueType::String)
                },
                FieldMapping {
                    field: "list_price".into(),
                    ..column("Prix", ValueType::Float)
                },
            ],
        )
    }

    fn windows_1252(text: &str) -> Vec<u8> {
        let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(text);
        assert!(!unmappable);
        bytes.into_owned()
    }

    #[test]
    fn csv_in_windows_1252_with_a_decimal_comma() {
        let text = "Référence;Désignation;Prix;Stock;Mis à jour\n\
                    A-1;Crème brûlée;12,50;3;2024-05-01\n\
                    A-2;Pâté;0,5;;\n";
        let (outcome, ops) = run(
            &csv_format(encoding_rs::WINDOWS_1252, ','),
            &csv_mapping(),
            &windows_1252(text),
        );
        assert_eq!((outcome.records, outcome.operations), (2, 2));
        assert_eq!(
            Value::Object(ops[0].values.clone()),
            json!({"default_code": "A-1", "name": "Crème brûlée", "list_price": 12.5})
        );
        assert_eq!((ops[0].record, ops[0].line), (1, 2));
        assert_eq!((ops[1].record, ops[1].line), (2, 3));
        assert_eq!(ops[1].values["name"], json!("Pâté"));
        assert_eq!(ops[1].values["list_price"], json!(0.5));
    }

    #[test]
    fn csv_cells_are_checked_against_every_column_type_used_or_not() {
        let text = "Référence;Désignation;Prix;Stock;Mis à jour\n\
                    A-1;Un;1,5;lots;\n\
                    A-2;Deux;1.234,50;2;2024-13-01\n\
                    A-3;;2,0;;\n\
                    A-4;Quatre;4\n\
                    A-5;Cinq;5,25;5;2024-01-31\n";
        let (outcome, ops) = run(
            &csv_format(encoding_rs::WINDOWS_1252, ','),
            &csv_mapping(),
            &windows_1252(text),
        );
        assert_eq!(outcome.records, 5);
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].key["default_code"], json!("A-5"));
        let messages: Vec<&str> = outcome
            .problems
            .iter()
            .map(|p| p.message.as_str())
            .collect();
        assert_eq!(
            messages,
            vec![
                "expected a whole number",
                "expected a number with a decimal comma such as 12,50 (no thousands separator)",
                "expected a date YYYY-MM-DD",
                // The column check reports the empty cell once; the mapping does not repeat it.
                "missing value (a required column)",
                "3 values, expected 5 (one per configured column)",
            ]
        );
        assert_eq!(outcome.problems[0].field.as_deref(), Some("Stock"));
        assert_eq!(outcome.problems[0].value.as_deref(), Some("lots"));
        assert_eq!(outcome.problems[1].record, 2);
        assert_eq!(outcome.problems[1].line, 3);
    }

    #[test]
    fn a_csv_mapping_problem_names_row_line_field_and_column() {
        let format = csv_format(UTF_8_ENCODING, '.');
        // The column is optional, the mapped field is not.
        let mut mapping = csv_mapping();
        if let Action::Upsert(u) = &mut mapping.action {
            u.fields.push(FieldMapping {
                field: "qty_hint".into(),
                ..column("Stock", ValueType::Integer)
            });
        }
        let text = "Référence;Désignation;Prix;Stock;Mis à jour\nA;B;1.5;;\n";
        let (outcome, ops) = run(&format, &mapping, text.as_bytes());
        assert!(ops.is_empty());
        assert_eq!(outcome.problems[0].message, "missing value in column Stock");
    }

    const UTF_8_ENCODING: &encoding_rs::Encoding = encoding_rs::UTF_8;

    #[test]
    fn a_csv_header_must_be_the_configured_columns() {
        let format = csv_format(UTF_8_ENCODING, '.');
        let text = "Référence;Prix;Désignation;Stock;Mis à jour\nA;1.5;B;;\n";
        let (result, ops) = try_run(&format, &csv_mapping(), text.as_bytes());
        let err = result.unwrap_err();
        assert!(ops.is_empty());
        assert_eq!(
            err.to_string(),
            "the CSV header does not match the configured columns: expected \"Référence\", \
             \"Désignation\", \"Prix\", \"Stock\", \"Mis à jour\", found \"Référence\", \"Prix\", \
             \"Désignation\", \"Stock\", \"Mis à jour\""
        );
        assert_eq!(err.consequence(), Consequence::Reject);

        let (empty, _) = try_run(&format, &csv_mapping(), b"");
        let empty = empty.unwrap_err();
        assert!(empty.to_string().ends_with("found no header"), "{empty}");
    }

    #[test]
    fn a_csv_with_a_utf8_bom_reads_its_header_and_rows() {
        let mut bytes = vec![0xEF, 0xBB, 0xBF];
        bytes.extend_from_slice(
            "Référence;Désignation;Prix;Stock;Mis à jour\r\nA;Été;2;;\r\n".as_bytes(),
        );
        // Even when the flow says windows-1252, a BOM says UTF-8.
        for encoding in [UTF_8_ENCODING, encoding_rs::WINDOWS_1252] {
            let (outcome, ops) = run(&csv_format(encoding, '.'), &csv_mapping(), &bytes);
            assert_eq!(outcome.operations, 1, "{:?}", outcome.problems);
            assert_eq!(ops[0].values["name"], json!("Été"));
        }
    }

    #[test]
    fn csv_lines_are_right_with_crlf_line_ends_and_quoted_newlines() {
        let text = "R\u{e9}f\u{e9}rence;D\u{e9}signation;Prix;Stock;Mis \u{e0} jour\r\n\
                    A;\"Deux\r\nlignes\";1;;\r\n\
                    B;Une;x;;\r\n\
                    C;\"Q\";3;;\r\n";
        let (outcome, ops) = run(
            &csv_format(UTF_8_ENCODING, '.'),
            &csv_mapping(),
            text.as_bytes(),
        );
        let lines: Vec<(u64, u64)> = ops.iter().map(|o| (o.record, o.line)).collect();
        assert_eq!(lines, vec![(1, 2), (3, 5)]);
        assert_eq!(ops[0].values["name"], json!("Deux\r\nlignes"));
        assert_eq!(ops[1].values["name"], json!("Q"));
        assert_eq!(
            (outcome.problems[0].record, outcome.problems[0].line),
            (2, 4)
        );
    }

    #[test]
    fn a_utf8_csv_with_other_bytes_is_a_bad_encoding() {
        let mut bytes = "Référence;Désignation;Prix;Stock;Mis à jour\nA;B;1;;\n"
            .as_bytes()
            .to_vec();
        bytes.extend_from_slice(&windows_1252("C;Crème;2;;\n"));
        let (result, _) = try_run(&csv_format(UTF_8_ENCODING, '.'), &csv_mapping(), &bytes);
        let err = result.unwrap_err();
        assert!(matches!(err, MapError::Encoding { line: 3, .. }), "{err}");
    }

    #[test]
    fn a_csv_path_must_name_a_configured_column() {
        let mut mapping = csv_mapping();
        if let Action::Upsert(u) = &mut mapping.action {
            u.fields.push(column("Couleur", ValueType::String));
        }
        let (result, _) = try_run(&csv_format(UTF_8_ENCODING, '.'), &mapping, b"x");
        let err = result.unwrap_err();
        assert!(err.to_string().contains("\"Couleur\""), "{err}");
        assert_eq!(err.consequence(), Consequence::Stop);
    }
}
