//! How records are kept: a row holds the values it was given, packed in a few bytes, over a
//! shared base of the values every record of its model got when it was created (defaults,
//! creator, stamps); field names are interned as small numbers. Searches go through indexes of
//! stored many2one values and of a few string fields, and a call's changes are journaled so
//! that a failed call puts back only the rows it touched.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use serde_json::{Number, Value};

use super::fields::ModelDef;

/// A field name as a small number ([`Names`]).
pub(crate) type Fid = u16;

/// Field names interned: the same number for the same name in every model.
#[derive(Clone, Default)]
pub(crate) struct Names {
    names: Vec<Box<str>>,
    ids: HashMap<Box<str>, Fid>,
}

impl Names {
    pub(crate) fn get(&self, name: &str) -> Option<Fid> {
        self.ids.get(name).copied()
    }

    pub(crate) fn intern(&mut self, name: &str) -> Fid {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = Fid::try_from(self.names.len()).expect("fewer than 65536 field names");
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    pub(crate) fn name(&self, id: Fid) -> &str {
        &self.names[id as usize]
    }
}

/// Values every record of a model got at creation, shared by the rows created alike.
#[derive(Debug, PartialEq)]
pub(crate) struct Base {
    /// Sorted by field.
    vals: Vec<(Fid, Value)>,
}

impl Base {
    pub(crate) fn new(mut vals: Vec<(Fid, Value)>) -> Base {
        vals.sort_by_key(|(f, _)| *f);
        Base { vals }
    }

    fn get(&self, fid: Fid) -> Option<&Value> {
        self.vals
            .binary_search_by_key(&fid, |(f, _)| *f)
            .ok()
            .map(|i| &self.vals[i].1)
    }
}

/// One record: its own values (packed) over an optional shared base. A field the row has
/// neither in its own values nor in its base is not set (reads as `null`).
#[derive(Clone, Default)]
pub(crate) struct Row {
    base: Option<Arc<Base>>,
    own: Box<[u8]>,
}

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const INT: u8 = 3;
const FLOAT: u8 = 4;
const STR: u8 = 5;
const JSON: u8 = 6;

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn get_varint(buf: &[u8], pos: &mut usize) -> u64 {
    let mut n = 0u64;
    let mut shift = 0;
    loop {
        let b = buf[*pos];
        *pos += 1;
        n |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return n;
        }
        shift += 7;
    }
}

fn encode(out: &mut Vec<u8>, fid: Fid, v: &Value) {
    out.extend_from_slice(&fid.to_le_bytes());
    match v {
        Value::Null => out.push(NULL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Number(n) if n.is_i64() => {
            out.push(INT);
            let i = n.as_i64().expect("i64");
            put_varint(out, ((i << 1) ^ (i >> 63)) as u64);
        }
        Value::Number(n) if n.is_f64() => {
            out.push(FLOAT);
            out.extend_from_slice(&n.as_f64().expect("f64").to_le_bytes());
        }
        Value::String(s) => {
            out.push(STR);
            put_varint(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        other => {
            let text = serde_json::to_string(other).expect("a JSON value serializes");
            out.push(JSON);
            put_varint(out, text.len() as u64);
            out.extend_from_slice(text.as_bytes());
        }
    }
}

/// The entry at `pos`: its field, where its value starts, and where the next entry starts.
fn entry(buf: &[u8], pos: usize) -> (Fid, usize, usize) {
    let fid = Fid::from_le_bytes([buf[pos], buf[pos + 1]]);
    let start = pos + 2;
    let mut p = start + 1;
    match buf[start] {
        INT => {
            get_varint(buf, &mut p);
        }
        FLOAT => p += 8,
        STR | JSON => {
            let len = get_varint(buf, &mut p) as usize;
            p += len;
        }
        _ => {}
    }
    (fid, start, p)
}

fn decode(buf: &[u8], start: usize) -> Value {
    let mut p = start + 1;
    match buf[start] {
        NULL => Value::Null,
        FALSE => Value::Bool(false),
        TRUE => Value::Bool(true),
        INT => {
            let z = get_varint(buf, &mut p);
            Value::from(((z >> 1) as i64) ^ -((z & 1) as i64))
        }
        FLOAT => {
            let x = f64::from_le_bytes(buf[p..p + 8].try_into().expect("8 bytes"));
            Number::from_f64(x).map_or(Value::Null, Value::Number)
        }
        STR => {
            let len = get_varint(buf, &mut p) as usize;
            Value::String(
                std::str::from_utf8(&buf[p..p + len])
                    .expect("stored text is UTF-8")
                    .to_string(),
            )
        }
        _ => {
            let len = get_varint(buf, &mut p) as usize;
            serde_json::from_slice(&buf[p..p + len]).expect("stored JSON parses")
        }
    }
}

impl Row {
    /// A row of `own` values over `base`; own values equal to the base's are left out.
    pub(crate) fn new(base: Option<Arc<Base>>, own: Vec<(Fid, Value)>) -> Row {
        let mut row = Row {
            base,
            own: Box::new([]),
        };
        let own: Vec<(Fid, Value)> = own
            .into_iter()
            .filter(|(f, v)| row.base.as_ref().and_then(|b| b.get(*f)) != Some(v))
            .collect();
        row.own = pack(own);
        row
    }

    fn own_entries(&self) -> Vec<(Fid, Value)> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < self.own.len() {
            let (fid, start, next) = entry(&self.own, pos);
            out.push((fid, decode(&self.own, start)));
            pos = next;
        }
        out
    }

    /// The value of field `fid`, if the row has it.
    pub(crate) fn get(&self, fid: Fid) -> Option<Value> {
        let mut pos = 0;
        while pos < self.own.len() {
            let (f, start, next) = entry(&self.own, pos);
            if f == fid {
                return Some(decode(&self.own, start));
            }
            pos = next;
        }
        self.base.as_ref()?.get(fid).cloned()
    }

    /// Whether field `fid` holds exactly the string `text`.
    pub(crate) fn has_str(&self, fid: Fid, text: &str) -> bool {
        let mut pos = 0;
        while pos < self.own.len() {
            let (f, start, next) = entry(&self.own, pos);
            if f == fid {
                if self.own[start] != STR {
                    return false;
                }
                let mut p = start + 1;
                let len = get_varint(&self.own, &mut p) as usize;
                return &self.own[p..p + len] == text.as_bytes();
            }
            pos = next;
        }
        self.base
            .as_ref()
            .and_then(|b| b.get(fid))
            .is_some_and(|v| v.as_str() == Some(text))
    }

    pub(crate) fn set(&mut self, fid: Fid, value: Value) {
        let mut own = self.own_entries();
        own.retain(|(f, _)| *f != fid);
        // A value back to the base's needs no entry of its own.
        if self.base.as_ref().and_then(|b| b.get(fid)) != Some(&value) {
            own.push((fid, value));
        }
        self.own = pack(own);
    }

    /// Every field the row has, with its value.
    pub(crate) fn entries(&self) -> Vec<(Fid, Value)> {
        let own = self.own_entries();
        let mut out: Vec<(Fid, Value)> = self
            .base
            .iter()
            .flat_map(|b| b.vals.iter())
            .filter(|(f, _)| !own.iter().any(|(o, _)| o == f))
            .cloned()
            .collect();
        out.extend(own);
        out
    }
}

fn pack(own: Vec<(Fid, Value)>) -> Box<[u8]> {
    let mut buf = Vec::new();
    for (f, v) in &own {
        encode(&mut buf, *f, v);
    }
    buf.into_boxed_slice()
}

/// The string fields kept in an index (stored, searched by value on large tables).
pub(crate) const STRING_INDEXES: &[(&str, &str)] = &[
    ("product.product", "default_code"),
    ("product.product", "barcode"),
    ("stock.lot", "name"),
    ("stock.location", "barcode"),
    ("stock.location", "complete_name"),
];

/// Many2one fields on every record that nothing looks records up by: not indexed.
pub(crate) const UNINDEXED_MANY2ONE: &[&str] = &["create_uid", "write_uid"];

pub(crate) fn text_hash(text: &str) -> u64 {
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// Model definitions; the first change within a call keeps a copy to go back to.
#[derive(Clone)]
pub(crate) struct Models {
    map: BTreeMap<String, ModelDef>,
    saved: Option<BTreeMap<String, ModelDef>>,
    in_call: bool,
}

impl From<BTreeMap<String, ModelDef>> for Models {
    fn from(map: BTreeMap<String, ModelDef>) -> Models {
        Models {
            map,
            saved: None,
            in_call: false,
        }
    }
}

impl Deref for Models {
    type Target = BTreeMap<String, ModelDef>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl DerefMut for Models {
    fn deref_mut(&mut self) -> &mut Self::Target {
        if self.in_call && self.saved.is_none() {
            self.saved = Some(self.map.clone());
        }
        &mut self.map
    }
}

/// What a call changed, to put back if it fails.
#[derive(Clone, Default)]
pub(crate) struct Journal {
    /// Each row the call touched as it was before (`None`: it did not exist).
    pub(crate) rows: Vec<(String, i64, Option<Row>)>,
    pub(crate) touched: HashSet<(String, i64)>,
    pub(crate) sms_warned: bool,
    pub(crate) clock: Option<String>,
}

/// Sets of `(key, record id)`: the records of a key in id order.
pub(crate) type KeyIndex = BTreeMap<(String, String), BTreeSet<(u64, i64)>>;

pub(crate) fn keyed(index: &KeyIndex, model: &str, field: &str, key: u64) -> Vec<i64> {
    index
        .get(&(model.to_string(), field.to_string()))
        .map(|set| {
            set.range((key, i64::MIN)..=(key, i64::MAX))
                .map(|(_, id)| *id)
                .collect()
        })
        .unwrap_or_default()
}

impl Models {
    pub(crate) fn begin(&mut self) {
        self.in_call = true;
        self.saved = None;
    }

    pub(crate) fn end(&mut self, rollback: bool) {
        self.in_call = false;
        if let Some(saved) = self.saved.take()
            && rollback
        {
            self.map = saved;
        }
    }
}

impl std::fmt::Debug for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.entries()).finish()
    }
}
