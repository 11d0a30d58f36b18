//! Turns the records of a file into Odoo operations, as the flow's mapping says.
//!
//! [`map_file`] streams the file ([`crate::import::records`]), evaluates every field path on
//! each record, converts the values to their configured types and hands one
//! [`Operation`] per good record to a sink. A record with any problem (a missing required value,
//! a value that does not convert) produces no operation; all its problems are listed and the
//! file is read to the end, so the error report names every bad record at once. Only a failure
//! of the whole file (unreadable, not well-formed, wrong encoding, wrong CSV header) stops it.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Number, Value};

use crate::config::{
    Action, CsvFormat, FieldMapping, Format, Lookup, Mapping, SetStockMapping, UpsertMapping,
    ValueSource, ValueType,
};
use crate::error::Consequence;
use crate::import::path::FieldPath;
use crate::import::records::{CsvRows, Raw, Record, XmlRecords, shorten};
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
    /// The whole story in one sentence: record, line, field, value and what was expected.
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
    fn add_problems(&mut self, problems: &mut Vec<MapProblem>) {
        self.problem_count += problems.len() as u64;
        let room = LISTED_PROBLEMS.saturating_sub(self.problems.len());
        self.problems.extend(problems.drain(..).take(room));
        // Whatever `take` left in the drain is dropped with it.
    }
}

/// A failure of the whole file: no record after it is read.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// The local copy cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The document is not well-formed XML (or uses what edi-bridge refuses, such as a DOCTYPE).
    #[error("XML error at line {line}, column {column}: {message}")]
    Xml {
        line: u64,
        column: u64,
        message: String,
    },
    /// The bytes are not text in the file's encoding.
    #[error("bad encoding at line {line}: {message}")]
    Encoding { line: u64, message: String },
    /// The CSV header row is not the configured columns.
    #[error(
        "the CSV header does not match the configured columns: expected {}, found {}",
        list(expected),
        list(found)
    )]
    CsvHeader {
        expected: Vec<String>,
        found: Vec<String>,
    },
    /// The CSV file cannot be parsed.
    #[error("CSV error at line {line}: {message}")]
    Csv { line: u64, message: String },
    /// The mapping cannot be applied to this format (no record path for XML, a path naming no
    /// configured CSV column).
    #[error("mapping: {0}")]
    Mapping(String),
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "no header".to_owned()
    } else {
        format!("\"{}\"", names.join("\", \""))
    }
}

impl MapError {
    /// What happens to the file: an unreadable spool file is an outage, bad content rejects the
    /// file, a mapping that does not fit its format stops the flow.
    pub fn consequence(&self) -> Consequence {
        match self {
            MapError::Io { .. } => Consequence::Retry,
            MapError::Xml { .. }
            | MapError::Encoding { .. }
            | MapError::CsvHeader { .. }
            | MapError::Csv { .. } => Consequence::Reject,
            MapError::Mapping(_) => Consequence::Stop,
        }
    }

    /// The line the error is about, when there is one.
    pub fn line(&self) -> Option<u64> {
        match self {
            MapError::Xml { line, .. }
            | MapError::Encoding { line, .. }
            | MapError::Csv { line, .. } => Some(*line),
            MapError::CsvHeader { .. } => Some(1),
            MapError::Io { .. } | MapError::Mapping(_) => None,
        }
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
        match mapper.map_record(&record, &mut problems) {
            Some(op) if problems.is_empty() => {
                outcome.operations += 1;
                sink(op);
            }
            _ => outcome.add_problems(&mut problems),
        }
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
        let at = Place::Csv.of(row.index, row.line);
        if row.cells.len() != format.columns.len() {
            problems.push(MapProblem {
                record: row.index,
                line: row.line,
                field: None,
                value: None,
                message: format!(
                    "{at}: {} fields, expected {} (one per configured column)",
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
                (!column.optional).then(|| format!("{at}: column {}: missing value", column.name))
            } else {
                convert(cell, column.ty, format.decimal)
                    .err()
                    .map(|expected| {
                        format!(
                            "{at}: column {}: expected {expected}, found \"{}\"",
                            column.name,
                            shorten(cell)
                        )
                    })
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
        match mapper.map_record(&row, &mut problems) {
            Some(op) if problems.is_empty() => {
                outcome.operations += 1;
                sink(op);
            }
            _ => outcome.add_problems(&mut problems),
        }
    }
    Ok(outcome)
}

/// A CSV mapping's paths must be bare names of configured columns.
fn check_columns(format: &CsvFormat, mapping: &Mapping) -> Result<(), MapError> {
    for f in mapped_fields(&mapping.action) {
        let ValueSource::Path(path) = &f.source else {
            continue;
        };
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
    }
}

/// Where records come from, for the words of a problem.
#[derive(Clone, Copy)]
enum Place {
    Xml,
    Csv,
}

impl Place {
    fn of(self, index: u64, line: u64) -> String {
        match self {
            Place::Xml => format!("record {index} (line {line})"),
            Place::Csv => format!("row {index} (line {line})"),
        }
    }

    fn source(self, path: &FieldPath) -> String {
        match self {
            Place::Xml => format!("path {}", path.text),
            Place::Csv => format!("column {}", path.text),
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
        }
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
                    message: format!(
                        "{}: key field {k} has no value, so the record cannot be matched in Odoo",
                        self.place.of(record.index(), record.line())
                    ),
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
    /// `Err` once its problem is listed.
    fn value(
        &self,
        f: &FieldMapping,
        ty: ValueType,
        record: &dyn Record,
        problems: &mut Vec<MapProblem>,
    ) -> Result<Option<Value>, Failed> {
        let path = match &f.source {
            ValueSource::Constant(value) => return Ok(Some(value.clone())),
            ValueSource::Path(path) => path,
        };
        let raw = match record.value(path) {
            Raw::Reported => return Err(Failed),
            Raw::Text(text) if !text.is_empty() => text,
            Raw::Text(_) | Raw::Absent if f.optional => return Ok(None),
            Raw::Text(_) | Raw::Absent => {
                problems.push(MapProblem {
                    record: record.index(),
                    line: record.line(),
                    field: Some(f.field.clone()),
                    value: None,
                    message: format!(
                        "{}: field {} ({}): missing value",
                        self.place.of(record.index(), record.line()),
                        f.field,
                        self.place.source(path)
                    ),
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
                    message: format!(
                        "{}: field {} ({}): expected {expected}, found \"{shown}\"",
                        self.place.of(record.index(), record.line()),
                        f.field,
                        self.place.source(path)
                    ),
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

/// Converts trimmed, non-empty text to a value of type `ty`. `decimal` is the decimal separator
/// of floats (`.` for XML, the flow's `decimal` for CSV). The error says what was expected.
pub fn convert(raw: &str, ty: ValueType, decimal: char) -> Result<Value, String> {
    match ty {
        ValueType::String => Ok(Value::String(raw.to_owned())),
        ValueType::Float => parse_float(raw, decimal)
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| {
                if decimal == ',' {
                    "a number with a decimal comma such as 12,50 (no thousands separator)".into()
                } else {
                    "a number such as 12.50 (no thousands separator)".into()
                }
            }),
        ValueType::Integer => {
            if !is_integer(raw) {
                return Err("a whole number".into());
            }
            raw.parse::<i64>()
                .map(|n| Value::Number(n.into()))
                .map_err(|_| "a whole number between -2^63 and 2^63-1".into())
        }
        ValueType::Boolean => match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(Value::Bool(true)),
            "false" | "0" | "no" => Ok(Value::Bool(false)),
            _ => Err("a boolean (true/false, yes/no or 1/0)".into()),
        },
        ValueType::Date => {
            if is_date(raw) {
                Ok(Value::String(raw.to_owned()))
            } else {
                Err("a date YYYY-MM-DD".into())
            }
        }
    }
}

fn is_integer(raw: &str) -> bool {
    let digits = raw.strip_prefix(['+', '-']).unwrap_or(raw);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Plain decimal notation (an exponent allowed, as XSD doubles have one); anything with a
/// second separator — a thousands separator — is refused rather than guessed.
fn parse_float(raw: &str, decimal: char) -> Option<f64> {
    let unsigned = raw.strip_prefix(['+', '-']).unwrap_or(raw);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
        None => (unsigned, None),
    };
    let (whole, fraction) = match mantissa.split_once(decimal) {
        Some((w, f)) => (w, f),
        None => (mantissa, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return None;
    }
    if exponent.is_some_and(|exp| !is_integer(exp)) {
        return None;
    }
    let text = if decimal == '.' {
        raw.to_owned()
    } else {
        raw.replace(decimal, ".")
    };
    text.parse::<f64>().ok().filter(|f| f.is_finite())
}

fn is_date(raw: &str) -> bool {
    let b = raw.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let number = |s: &str| {
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (Some(year), Some(month), Some(day)) = (
        number(&raw[..4]).and_then(|y: i64| i16::try_from(y).ok()),
        number(&raw[5..7]).and_then(|m: i64| i8::try_from(m).ok()),
        number(&raw[8..]).and_then(|d: i64| i8::try_from(d).ok()),
    ) else {
        return false;
    };
    jiff::civil::Date::new(year, month, day).is_ok()
}
