//! `[flows.<name>.mapping]` (and a CSV flow's columns), read into [`crate::mapping::config`]'s types.

use std::collections::BTreeMap;

use super::ConfigError;
use super::read::{Ctx, Item, Node, is_identifier};
use crate::mapping::config::{
    Action, Backorder, ConfirmDeliveryMapping, CsvColumn, CsvFormat, FieldMapping, Format, Lookup,
    Mapping, SetStockMapping, Snapshot, UpsertMapping, ValueSource, ValueType,
};
use crate::mapping::path::{FieldPath, column_path, parse_field_path, parse_record_path};

mod delivery;
mod stock;

use delivery::parse_confirm_delivery;
use stock::parse_set_stock;

pub(super) fn parse_csv(t: &mut Node) -> Result<CsvFormat, ConfigError> {
    let delimiter = match t.take("delimiter") {
        None => b',',
        Some(item) => {
            let key = item.key.clone();
            let text = item.string()?;
            match text.as_bytes() {
                [b] if b.is_ascii() && !matches!(b, b'"' | b'\n' | b'\r') => *b,
                _ => {
                    return Err(t.cx.err(
                        &key,
                        format!(
                            "expected one ASCII character such as \",\", \";\" or \"\\t\", \
                             found {text:?}"
                        ),
                    ));
                }
            }
        }
    };
    let encoding = match t.take("encoding") {
        None => encoding_rs::UTF_8,
        Some(item) => {
            let key = item.key.clone();
            let label = item.text()?;
            encoding_rs::Encoding::for_label_no_replacement(label.as_bytes()).ok_or_else(|| {
                t.cx.err(
                    &key,
                    format!(
                        "unknown encoding {label:?}; expected a label such as \"utf-8\", \
                         \"windows-1252\" or \"iso-8859-15\""
                    ),
                )
            })?
        }
    };
    let decimal = match t.take("decimal") {
        None => '.',
        Some(item) => item.choice(&[(".", '.'), (",", ',')])?,
    };
    let columns_item = t.require(
        "columns",
        "the file's header, in order, e.g. columns = [{ name = \"sku\" }, \
         { name = \"qty\", type = \"float\" }]",
    )?;
    let columns_key = columns_item.key.clone();
    let mut columns: Vec<CsvColumn> = Vec::new();
    for item in columns_item.array()? {
        let mut c = item.table()?;
        let name_item = c.require("name", "the column's header text")?;
        let name_key = name_item.key.clone();
        let name = name_item.text()?;
        if columns.iter().any(|other| other.name == name) {
            return Err(t
                .cx
                .err(&name_key, format!("column {name:?} is declared twice")));
        }
        let ty = c.take("type").map(Item::value_type).transpose()?;
        let optional = c.take("optional").map(Item::boolean).transpose()?;
        c.finish()?;
        columns.push(CsvColumn {
            name,
            ty: ty.unwrap_or(ValueType::String),
            optional: optional.unwrap_or(false),
        });
    }
    if columns.is_empty() {
        return Err(t.cx.err(&columns_key, "declare at least one column"));
    }
    Ok(CsvFormat {
        delimiter,
        encoding,
        decimal,
        columns,
    })
}

/// Where a mapping's paths point: XML elements through namespaces, or CSV columns.
#[derive(Clone, Copy)]
enum Source<'a> {
    Xml(&'a BTreeMap<String, String>),
    Csv(&'a [CsvColumn]),
}

impl Source<'_> {
    /// The path `text` at `key`, and for CSV the column it names (its type and optionality
    /// are the mapped field's defaults).
    fn path(
        &self,
        cx: &Ctx,
        key: &str,
        text: &str,
    ) -> Result<(FieldPath, Option<CsvColumn>), ConfigError> {
        match self {
            Source::Xml(namespaces) => {
                let path = parse_field_path(text, namespaces)
                    .map_err(|e| cx.err(key, format!("invalid path {text:?}: {e}")))?;
                Ok((path, None))
            }
            Source::Csv(columns) => match columns.iter().find(|c| c.name == text) {
                Some(column) => Ok((column_path(text), Some(column.clone()))),
                None => Err(cx.err(
                    key,
                    format!(
                        "{text:?} is not a declared column; a CSV flow's paths are column \
                         names: {}",
                        columns
                            .iter()
                            .map(|c| format!("{:?}", c.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )),
            },
        }
    }
}

/// `path`: one path (a string), or the paths tried in order (`["a", "b"]`: the first present
/// gives the value). Every entry is checked like a single path, at its own key (`path[1]`).
/// For CSV, the columns named (in order).
fn path_source(source: Source, item: Item) -> Result<(ValueSource, Vec<CsvColumn>), ConfigError> {
    let cx = item.cx;
    if item.value.is_str() {
        let key = item.key.clone();
        let text = item.text()?;
        let (path, column) = source.path(cx, &key, &text)?;
        return Ok((ValueSource::Path(path), column.into_iter().collect()));
    }
    if !item.value.is_array() {
        return Err(item.expected(
            "a path string such as \"p:Name\", or an array of paths tried in order such as \
             [\"p:SellerId\", \"p:Gtin\"]",
        ));
    }
    let key = item.key.clone();
    let entries = item.array()?;
    if entries.is_empty() {
        return Err(cx.err(
            &key,
            "is an empty array; give one path, or the paths tried in order such as \
             [\"p:SellerId\", \"p:Gtin\"]",
        ));
    }
    let mut paths = Vec::new();
    let mut columns = Vec::new();
    for entry in entries {
        let entry_key = entry.key.clone();
        let text = entry.text()?;
        let (path, column) = source.path(cx, &entry_key, &text)?;
        if paths.iter().any(|p: &FieldPath| p.text == path.text) {
            return Err(cx.err(&entry_key, format!("{text:?} is listed twice")));
        }
        paths.push(path);
        columns.extend(column);
    }
    let source = if paths.len() == 1 {
        ValueSource::Path(paths.remove(0))
    } else {
        ValueSource::FirstOf(paths)
    };
    Ok((source, columns))
}

/// The default type of a field read from CSV `columns`: theirs, when they agree.
fn columns_type(cx: &Ctx, key: &str, columns: &[CsvColumn]) -> Result<ValueType, ConfigError> {
    let Some(first) = columns.first() else {
        return Ok(ValueType::String);
    };
    match columns.iter().find(|c| c.ty != first.ty) {
        None => Ok(first.ty),
        Some(other) => Err(cx.err(
            key,
            format!(
                "columns {:?} and {:?} have different types; say which the field takes \
                 with type = \"…\"",
                first.name, other.name
            ),
        )),
    }
}

/// Keys of a `set_stock` or `confirm_delivery` mapping, refused on `upsert`.
const SET_STOCK_KEYS: [&str; 10] = [
    "product",
    "quantity",
    "location",
    "lot",
    "snapshot",
    "picking",
    "lines",
    "tracking",
    "backorder",
    "allow_over_delivery",
];

pub(super) fn parse_mapping(mut m: Node, format: &Format) -> Result<Mapping, ConfigError> {
    let namespaces_item = m.take("namespaces");
    let record_item = m.take("record");
    let (namespaces, record) = match format {
        Format::Xml { .. } => {
            let namespaces = match namespaces_item {
                Some(item) => parse_namespaces(item.table()?)?,
                None => BTreeMap::new(),
            };
            let record = match record_item {
                Some(item) => item,
                None => {
                    return Err(m.missing(
                        "record",
                        "the absolute path of the repeating record element, e.g. \
                         record = \"/p:Products/p:Product\"",
                    ));
                }
            };
            let key = record.key.clone();
            let text = record.text()?;
            let record = parse_record_path(&text, &namespaces)
                .map_err(|e| m.cx.err(&key, format!("invalid path {text:?}: {e}")))?;
            (namespaces, Some(record))
        }
        Format::Csv(_) => {
            if let Some(item) = record_item.or(namespaces_item) {
                return Err(item.err(
                    "is for XML flows; in a CSV flow every row is a record and paths are \
                     column names"
                        .to_string(),
                ));
            }
            (BTreeMap::new(), None)
        }
    };
    let source = match format {
        Format::Xml { .. } => Source::Xml(&namespaces),
        Format::Csv(csv) => Source::Csv(&csv.columns),
    };
    #[derive(Clone, Copy)]
    enum Kind {
        Upsert,
        SetStock,
        ConfirmDelivery,
    }
    let action_item = m.require(
        "action",
        "\"upsert\", \"set_stock\" or \"confirm_delivery\"",
    )?;
    let action_key = action_item.key.clone();
    let kind = action_item.choice(&[
        ("upsert", Kind::Upsert),
        ("set_stock", Kind::SetStock),
        ("confirm_delivery", Kind::ConfirmDelivery),
    ])?;
    let (model, action) = match kind {
        Kind::Upsert => {
            if let Some(key) = SET_STOCK_KEYS.iter().find(|k| m.has(k)) {
                return Err(m.cx.err(
                    &m.child_key(key),
                    "is a set_stock setting; an upsert maps Odoo fields under \
                     [flows.<name>.mapping.fields]",
                ));
            }
            let model = m
                .require(
                    "model",
                    "the Odoo model written, e.g. model = \"product.product\"",
                )?
                .model_name()?;
            let upsert = parse_upsert(&mut m, source)?;
            (model, Action::Upsert(upsert))
        }
        Kind::SetStock => {
            if let Some(key) = ["fields", "key"].iter().find(|k| m.has(k)) {
                return Err(m.cx.err(
                    &m.child_key(key),
                    "is an upsert setting; set_stock takes product, quantity, location, lot \
                     and snapshot",
                ));
            }
            if let Some(item) = m.take("model") {
                let key = item.key.clone();
                let model = item.text()?;
                if model != "stock.quant" {
                    return Err(m.cx.err(
                        &key,
                        format!(
                            "set_stock always writes \"stock.quant\", found {model:?} \
                             (remove model or use action = \"upsert\")"
                        ),
                    ));
                }
            }
            let set_stock = parse_set_stock(&mut m, source)?;
            ("stock.quant".to_string(), Action::SetStock(set_stock))
        }
        Kind::ConfirmDelivery => {
            let Source::Xml(namespaces) = source else {
                return Err(m.cx.err(
                    &action_key,
                    "confirm_delivery reads XML files (a record per picking with its lines \
                     under it); a CSV flow can upsert or set_stock",
                ));
            };
            if let Some(key) = ["fields", "key", "location", "snapshot"]
                .iter()
                .find(|k| m.has(k))
            {
                return Err(m.cx.err(
                    &m.child_key(key),
                    "is not a confirm_delivery setting; confirm_delivery takes picking, lines, \
                     product, quantity, lot, tracking, backorder and allow_over_delivery",
                ));
            }
            if let Some(item) = m.take("model") {
                let key = item.key.clone();
                let model = item.text()?;
                if model != "stock.picking" {
                    return Err(m.cx.err(
                        &key,
                        format!(
                            "confirm_delivery always works on \"stock.picking\", found \
                             {model:?} (remove model)"
                        ),
                    ));
                }
            }
            let confirm = parse_confirm_delivery(&mut m, namespaces)?;
            (
                "stock.picking".to_string(),
                Action::ConfirmDelivery(confirm),
            )
        }
    };
    m.finish()?;
    Ok(Mapping {
        record,
        namespaces,
        model,
        action,
    })
}

fn parse_namespaces(t: Node) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut namespaces = BTreeMap::new();
    for (prefix, item) in t.entries() {
        let valid = prefix
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
            && prefix
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '.' | '_'));
        if !valid {
            return Err(item.err(format!(
                "{prefix:?} is not a usable prefix; expected a name such as p or cbc"
            )));
        }
        namespaces.insert(prefix, item.text()?);
    }
    Ok(namespaces)
}

fn parse_upsert(m: &mut Node, source: Source) -> Result<UpsertMapping, ConfigError> {
    let fields_item = m.require(
        "fields",
        "a [flows.<name>.mapping.fields] table: Odoo field = path",
    )?;
    let fields_key = fields_item.key.clone();
    let mut fields: Vec<FieldMapping> = Vec::new();
    for (field, item) in fields_item.table()?.entries() {
        if !is_identifier(&field) {
            return Err(item.err(format!(
                "{field:?} is not an Odoo field name (letters, digits and _)"
            )));
        }
        fields.push(parse_field(field, item, source)?);
    }
    if fields.is_empty() {
        return Err(m.cx.err(&fields_key, "map at least one field"));
    }
    let key_item = m.require(
        "key",
        "the fields that identify a record, e.g. key = [\"default_code\"]",
    )?;
    let key_key = key_item.key.clone();
    let mut key: Vec<String> = Vec::new();
    for item in key_item.array()? {
        let name = item.text()?;
        match fields.iter().find(|f| f.field == name) {
            None => {
                return Err(m.cx.err(
                    &key_key,
                    format!(
                        "key field {name:?} is not mapped; map it under \
                         [flows.<name>.mapping.fields]"
                    ),
                ));
            }
            Some(f) if f.optional => {
                return Err(m.cx.err(
                    &key_key,
                    format!(
                        "key field {name:?} is mapped as optional; a key must always have a value"
                    ),
                ));
            }
            Some(_) => {}
        }
        if key.contains(&name) {
            return Err(m.cx.err(&key_key, format!("{name:?} is listed twice")));
        }
        key.push(name);
    }
    if key.is_empty() {
        return Err(m.cx.err(
            &key_key,
            "list at least one field, e.g. key = [\"default_code\"]",
        ));
    }
    Ok(UpsertMapping { key, fields })
}

/// One entry of `fields`: `"path"`, `{ path, type, optional, lookup }` or `{ value, … }`.
fn parse_field(field: String, item: Item, source: Source) -> Result<FieldMapping, ConfigError> {
    let cx = item.cx;
    if item.value.is_str() {
        let (path, columns) = path_source(source, item)?;
        return Ok(FieldMapping {
            field,
            source: path,
            ty: columns.first().map_or(ValueType::String, |c| c.ty),
            optional: columns.first().is_some_and(|c| c.optional),
            lookup: None,
        });
    }
    let mut t = item.table_or(
        "a path string (\"p:Name\") or a table such as { path = \"p:Price\", type = \"float\" } \
         or { value = true }",
    )?;
    let ty = t.take("type").map(Item::value_type).transpose()?;
    let lookup = t.take("lookup").map(Item::lookup).transpose()?;
    let optional = t.take("optional");
    let (value_source, ty, optional) = match (t.take("path"), t.take("value")) {
        (Some(_), Some(value)) => {
            return Err(value.err(
                "give either path (read from the file) or value (a constant), not both".to_string(),
            ));
        }
        (Some(path), None) => {
            let key = path.key.clone();
            let (path, columns) = path_source(source, path)?;
            let optional = optional.map(Item::boolean).transpose()?;
            let ty = match ty {
                Some(ty) => ty,
                None => columns_type(cx, &key, &columns)?,
            };
            (
                path,
                ty,
                // Several columns: optional only when every one of them may be empty.
                optional.unwrap_or(!columns.is_empty() && columns.iter().all(|c| c.optional)),
            )
        }
        (None, Some(value)) => {
            if let Some(optional) = optional {
                return Err(
                    optional.err("is for paths; a constant value is always present".to_string())
                );
            }
            let inferred = match value.value {
                toml::Value::Boolean(_) => ValueType::Boolean,
                toml::Value::Integer(_) => ValueType::Integer,
                toml::Value::Float(_) => ValueType::Float,
                toml::Value::Datetime(_) => ValueType::Date,
                _ => ValueType::String,
            };
            (
                ValueSource::Constant(value.json()?),
                ty.unwrap_or(inferred),
                false,
            )
        }
        (None, None) => {
            return Err(t.missing(
                "path",
                "path = \"…\" (read from the file) or value = … (a constant)",
            ));
        }
    };
    t.finish()?;
    Ok(FieldMapping {
        field,
        source: value_source,
        ty,
        optional,
        lookup,
    })
}

/// A `{ path, by }` or plain path setting: the path and the `by` chosen among `choices`
/// (the first is the default).
fn path_by(
    item: Item,
    source: Source,
    what: &str,
    choices: &[(&str, &'static str)],
) -> Result<(ValueSource, &'static str), ConfigError> {
    if item.value.is_str() {
        return Ok((path_source(source, item)?.0, choices[0].1));
    }
    let mut t = item.table_or(&format!(
        "a path string or {{ path = \"…\", by = \"{}\" }}",
        choices[0].0
    ))?;
    let path = t.require("path", &format!("the {what}'s path"))?;
    let by = match t.take("by") {
        Some(item) => item.choice(choices)?,
        None => choices[0].1,
    };
    t.finish()?;
    Ok((path_source(source, path)?.0, by))
}

/// A quantity's path: a path string, or `{ path = "…" }`.
fn quantity_path(source: Source, quantity: Item) -> Result<ValueSource, ConfigError> {
    if quantity.value.is_str() {
        return Ok(path_source(source, quantity)?.0);
    }
    let mut t = quantity.table_or("a path string or { path = \"…\" }")?;
    let path = t.require("path", "the quantity's path")?;
    t.finish()?;
    Ok(path_source(source, path)?.0)
}

/// A plain path or `{ path, optional }` setting.
fn path_optional(
    item: Item,
    source: Source,
    what: &str,
) -> Result<(ValueSource, bool), ConfigError> {
    if item.value.is_str() {
        return Ok((path_source(source, item)?.0, false));
    }
    let mut t = item.table_or("a path string or { path = \"…\", optional = true }")?;
    let path = t.require("path", &format!("the {what}'s path"))?;
    let optional = t.take("optional").map(Item::boolean).transpose()?;
    t.finish()?;
    Ok((path_source(source, path)?.0, optional.unwrap_or(false)))
}

impl Item<'_> {
    fn value_type(self) -> Result<ValueType, ConfigError> {
        self.choice(&[
            ("string", ValueType::String),
            ("float", ValueType::Float),
            ("integer", ValueType::Integer),
            ("boolean", ValueType::Boolean),
            ("date", ValueType::Date),
        ])
    }

    fn lookup(self) -> Result<Lookup, ConfigError> {
        let mut t = self.table_or("a table such as { model = \"uom.uom\", field = \"name\" }")?;
        let model = t
            .require("model", "the model looked in, e.g. model = \"uom.uom\"")?
            .model_name()?;
        let field = t
            .require("field", "the field matched, e.g. field = \"name\"")?
            .identifier()?;
        t.finish()?;
        Ok(Lookup { model, field })
    }
}
