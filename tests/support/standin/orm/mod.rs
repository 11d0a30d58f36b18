//! The in-memory ORM: the database (model definitions, records, an index of stored
//! many2one values) and `Env`, one call's view of it with its context. Its methods are split
//! by what they do: `read` (field values as Odoo computes and reads them), `search` (domains
//! evaluated, hierarchy, order), `write` (values converted, records created, written and
//! deleted, x2many commands); `domain` parses domains and compares values; `fields` describes
//! fields and models.

pub(crate) mod domain;
pub(crate) mod fields;
mod read;
mod search;
mod write;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::errors::Fail;
use super::state::FailOnValue;
use super::{StandinOptions, Vals};
use fields::{Field, ModelDef, Ty};

/// The user every call runs as.
pub(crate) const ADMIN_UID: i64 = 2;
/// The limited user's id (transcript 18/114).
pub(crate) const BASIC_UID: i64 = 8;

#[derive(Clone)]
pub(crate) struct Db {
    pub(crate) models: BTreeMap<String, ModelDef>,
    pub(crate) data: BTreeMap<String, BTreeMap<i64, Vals>>,
    /// Stored many2one values indexed by target: (model, field) → target id → records.
    /// One2many reads, quantities on hand and variants of a template stay cheap with
    /// thousands of records.
    pub(crate) refs: BTreeMap<(String, String), BTreeMap<i64, BTreeSet<i64>>>,
    /// The company has answered the SMS-on-delivery question (never, through the API).
    pub(crate) sms_warned: bool,
    /// The server's time when a test pins it ([`super::OdooStandin::set_clock`]); the real
    /// time otherwise.
    pub(crate) clock: Option<String>,
}

/// One call's view of the database.
pub(crate) struct Env<'a> {
    pub(crate) db: &'a mut Db,
    pub(crate) seq: &'a mut BTreeMap<String, i64>,
    pub(crate) fails: &'a [FailOnValue],
    pub(crate) opts: &'a StandinOptions,
    pub(crate) ctx: Vals,
    /// Set by `load` when a row failed: the call answers normally but nothing is kept.
    pub(crate) rollback: bool,
}

pub(crate) fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

pub(crate) fn as_id(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().filter(|&i| i > 0),
        Value::Array(a) => a.first().and_then(Value::as_i64),
        _ => None,
    }
}

pub(crate) fn id_list(v: &Value) -> Vec<i64> {
    match v {
        Value::Array(a) => a.iter().filter_map(Value::as_i64).collect(),
        Value::Number(n) => n.as_i64().into_iter().collect(),
        _ => Vec::new(),
    }
}

/// Python's `float(text)` for the strings Odoo would accept.
pub(crate) fn parse_float(text: &str) -> Option<f64> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    t.replace('_', "").parse::<f64>().ok()
}

impl Env<'_> {
    pub(crate) fn v(&self) -> u32 {
        self.opts.version
    }

    /// The server's time: pinned by the test, or now.
    pub(crate) fn clock(&self) -> String {
        self.db.clock.clone().unwrap_or_else(now)
    }

    pub(crate) fn model(&self, model: &str) -> Result<&ModelDef, Fail> {
        self.db
            .models
            .get(model)
            .ok_or_else(|| Fail::user(format!("Object {model} doesn't exist")))
    }

    pub(crate) fn field(&self, model: &str, field: &str) -> Option<&Field> {
        self.db.models.get(model)?.fields.get(field)
    }

    pub(crate) fn exists(&self, model: &str, id: i64) -> bool {
        self.db.data.get(model).is_some_and(|t| t.contains_key(&id))
    }

    fn rec(&self, model: &str, id: i64) -> Option<&Vals> {
        self.db.data.get(model)?.get(&id)
    }

    pub(crate) fn all_ids(&self, model: &str) -> Vec<i64> {
        self.db
            .data
            .get(model)
            .map(|t| t.keys().copied().collect())
            .unwrap_or_default()
    }

    pub(crate) fn stored(&self, model: &str, id: i64, field: &str) -> Value {
        self.rec(model, id)
            .and_then(|r| r.get(field))
            .cloned()
            .unwrap_or(Value::Null)
    }

    pub(crate) fn set(&mut self, model: &str, id: i64, field: &str, value: Value) {
        if !self.exists(model, id) {
            return;
        }
        if self.indexed(model, field) {
            let old = self.stored(model, id, field);
            self.unindex(model, id, field, &old);
            self.index(model, id, field, &value);
        }
        if let Some(rec) = self.db.data.get_mut(model).and_then(|t| t.get_mut(&id)) {
            rec.insert(field.to_string(), value);
        }
    }

    /// Whether `field` is a stored many2one (kept in `Db::refs`).
    fn indexed(&self, model: &str, field: &str) -> bool {
        self.field(model, field)
            .is_some_and(|f| f.ty == Ty::Many2one && f.store)
    }

    fn index(&mut self, model: &str, id: i64, field: &str, value: &Value) {
        if let Some(target) = as_id(value) {
            self.db
                .refs
                .entry((model.to_string(), field.to_string()))
                .or_default()
                .entry(target)
                .or_default()
                .insert(id);
        }
    }

    fn unindex(&mut self, model: &str, id: i64, field: &str, value: &Value) {
        if let Some(target) = as_id(value)
            && let Some(set) = self
                .db
                .refs
                .get_mut(&(model.to_string(), field.to_string()))
                .and_then(|t| t.get_mut(&target))
        {
            set.remove(&id);
        }
    }

    /// Adds a record row, indexing its many2one values.
    pub(crate) fn insert_record(&mut self, model: &str, id: i64, rec: Vals) {
        for (k, v) in &rec {
            if self.indexed(model, k) {
                self.index(model, id, k, v);
            }
        }
        self.db
            .data
            .entry(model.to_string())
            .or_default()
            .insert(id, rec);
    }

    /// Records of `model` whose stored `field` equals `value`, in id order.
    pub(crate) fn where_eq(&self, model: &str, field: &str, value: &Value) -> Vec<i64> {
        if let (Some(target), true) = (value.as_i64(), self.indexed(model, field)) {
            return self
                .db
                .refs
                .get(&(model.to_string(), field.to_string()))
                .and_then(|t| t.get(&target))
                .map(|set| set.iter().copied().collect())
                .unwrap_or_default();
        }
        self.db
            .data
            .get(model)
            .map(|t| {
                t.iter()
                    .filter(|(_, r)| r.get(field) == Some(value))
                    .map(|(id, _)| *id)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn find_one(&self, model: &str, field: &str, value: &str) -> Option<i64> {
        self.where_eq(model, field, &json!(value)).first().copied()
    }

    /// The next id of `model`: never below the highest existing id, never reused.
    fn alloc(&mut self, model: &str) -> i64 {
        let max = self
            .db
            .data
            .get(model)
            .and_then(|t| t.keys().next_back().copied())
            .unwrap_or(0);
        let next = self.seq.entry(model.to_string()).or_insert(1);
        let id = (*next).max(max + 1);
        *next = id + 1;
        id
    }

    pub(crate) fn user_name(&self) -> String {
        self.stored("res.users", ADMIN_UID, "name")
            .as_str()
            .unwrap_or("Administrator")
            .to_string()
    }
}
