//! The in-memory ORM: the database (model definitions, records, indexes of stored many2one
//! values and of a few string fields, the journal of the current call) and `Env`, one call's
//! view of it with its context. Its methods are split by what they do: `read` (field values as
//! Odoo computes and reads them), `search` (domains evaluated, through an index where one
//! serves, hierarchy, order), `write` (values converted, records created, written and deleted,
//! x2many commands); `store` is how a record is kept (compact rows over shared defaults);
//! `domain` parses domains and compares values; `fields` describes fields and models.

pub(crate) mod domain;
pub(crate) mod fields;
mod read;
mod search;
pub(crate) mod store;
mod write;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};

use super::errors::Fail;
use super::state::FailOnValue;
use super::{StandinOptions, Vals};
use fields::{Field, ModelDef, Ty};
use store::{
    Base, Fid, Journal, KeyIndex, Models, Names, Row, STRING_INDEXES, UNINDEXED_MANY2ONE, text_hash,
};

/// The user every call runs as.
pub(crate) const ADMIN_UID: i64 = 2;
/// The limited user's id (transcript 18/114).
pub(crate) const BASIC_UID: i64 = 8;

#[derive(Clone)]
pub(crate) struct Db {
    pub(crate) models: Models,
    /// Records per model, by id ([`store`]: compact rows over shared defaults).
    pub(crate) data: BTreeMap<String, BTreeMap<i64, Row>>,
    /// Field names as the small numbers rows are keyed by.
    pub(crate) names: Names,
    /// Stored many2one values indexed by target: (model, field) → (target id, record).
    /// One2many reads, quantities on hand and variants of a template stay cheap with
    /// thousands of records.
    pub(crate) refs: KeyIndex,
    /// The string fields of [`store::STRING_INDEXES`]: (model, field) → (hash of the text,
    /// record); searches and the barcode check by value stay cheap with millions of products.
    pub(crate) texts: KeyIndex,
    /// The shared base of the last record created per model.
    bases: HashMap<String, Arc<Base>>,
    /// What the current call changed, to undo it if the call fails.
    journal: Option<Journal>,
    /// The company has answered the SMS-on-delivery question (never, through the API).
    pub(crate) sms_warned: bool,
    /// The server's time when a test pins it ([`super::OdooStandin::set_clock`]); the real
    /// time otherwise.
    pub(crate) clock: Option<String>,
}

/// How a field is indexed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Indexed {
    /// A stored many2one: by target id.
    Ref,
    /// A string field of [`store::STRING_INDEXES`]: by the text's hash.
    Text,
}

impl Db {
    pub(crate) fn new(models: BTreeMap<String, ModelDef>) -> Db {
        Db {
            models: models.into(),
            data: BTreeMap::new(),
            names: Names::default(),
            refs: KeyIndex::new(),
            texts: KeyIndex::new(),
            bases: HashMap::new(),
            journal: None,
            sms_warned: false,
            clock: None,
        }
    }

    /// Starts a call: from here its changes can be undone by [`Db::end`].
    pub(crate) fn begin(&mut self) {
        self.models.begin();
        self.journal = Some(Journal {
            sms_warned: self.sms_warned,
            clock: self.clock.clone(),
            ..Journal::default()
        });
    }

    /// Ends a call, putting back what it changed when `rollback`.
    pub(crate) fn end(&mut self, rollback: bool) {
        self.models.end(rollback);
        let Some(journal) = self.journal.take() else {
            return;
        };
        if !rollback {
            return;
        }
        for (model, id, old) in journal.rows.into_iter().rev() {
            self.take_row(&model, id);
            if let Some(old) = old {
                self.put_row(&model, id, old);
            }
        }
        self.sms_warned = journal.sms_warned;
        self.clock = journal.clock;
        self.journal = None;
    }

    fn touch(&mut self, model: &str, id: i64) {
        if let Some(journal) = &mut self.journal
            && journal.touched.insert((model.to_string(), id))
        {
            let old = self.data.get(model).and_then(|t| t.get(&id)).cloned();
            journal.rows.push((model.to_string(), id, old));
        }
    }

    fn indexed(&self, model: &str, field: &str) -> Option<Indexed> {
        let f = self.models.get(model)?.fields.get(field)?;
        if f.ty == Ty::Many2one && f.store && !UNINDEXED_MANY2ONE.contains(&field) {
            return Some(Indexed::Ref);
        }
        STRING_INDEXES
            .contains(&(model, field))
            .then_some(Indexed::Text)
    }

    /// Adds or removes `id` in the index of `field` for `value`.
    fn index(&mut self, model: &str, id: i64, field: &str, value: &Value, add: bool) {
        // Only an id or a text can be indexed: skip the field lookup for anything else.
        if as_id(value).is_none() && !value.is_string() {
            return;
        }
        let (index, key) = match self.indexed(model, field) {
            Some(Indexed::Ref) => match as_id(value) {
                Some(target) => (&mut self.refs, target as u64),
                None => return,
            },
            Some(Indexed::Text) => match value.as_str() {
                Some(text) => (&mut self.texts, text_hash(text)),
                None => return,
            },
            None => return,
        };
        let set = index
            .entry((model.to_string(), field.to_string()))
            .or_default();
        if add {
            set.insert((key, id));
        } else {
            set.remove(&(key, id));
        }
    }

    fn index_row(&mut self, model: &str, id: i64, row: &Row, add: bool) {
        for (fid, v) in row.entries() {
            let name = self.names.name(fid).to_string();
            self.index(model, id, &name, &v, add);
        }
    }

    /// Puts a record's row in place (indexed), replacing any row it had.
    pub(crate) fn put_row(&mut self, model: &str, id: i64, row: Row) {
        self.take_row(model, id);
        self.index_row(model, id, &row, true);
        self.data
            .entry(model.to_string())
            .or_default()
            .insert(id, row);
    }

    /// Removes a record's row (and its index entries).
    pub(crate) fn take_row(&mut self, model: &str, id: i64) -> Option<Row> {
        self.touch(model, id);
        let row = self.data.get_mut(model)?.remove(&id)?;
        self.index_row(model, id, &row, false);
        Some(row)
    }

    pub(crate) fn row(&self, model: &str, id: i64) -> Option<&Row> {
        self.data.get(model)?.get(&id)
    }

    /// The shared base of a record of `model` created now: every stored field's default, the
    /// creator and the stamps. Records created alike share one.
    pub(crate) fn base(&mut self, model: &str, stamp: &str) -> Arc<Base> {
        let mut vals: Vec<(Fid, Value)> = Vec::new();
        let fields: Vec<(String, Value)> = self.models[model]
            .fields
            .values()
            .filter(|f| f.store && !f.ty.x2many())
            .map(|f| {
                (
                    f.name.clone(),
                    f.default.clone().unwrap_or_else(|| f.ty.empty()),
                )
            })
            .collect();
        for (name, v) in fields {
            vals.push((self.names.intern(&name), v));
        }
        for (name, v) in [
            ("create_date", json!(stamp)),
            ("write_date", json!(stamp)),
            ("create_uid", json!(ADMIN_UID)),
            ("write_uid", json!(ADMIN_UID)),
        ] {
            let fid = self.names.intern(name);
            vals.retain(|(f, _)| *f != fid);
            vals.push((fid, v));
        }
        let base = Base::new(vals);
        match self.bases.get(model) {
            Some(last) if **last == base => last.clone(),
            _ => {
                let base = Arc::new(base);
                self.bases.insert(model.to_string(), base.clone());
                base
            }
        }
    }
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

    pub(crate) fn stored(&self, model: &str, id: i64, field: &str) -> Value {
        self.db
            .names
            .get(field)
            .and_then(|fid| self.db.row(model, id)?.get(fid))
            .unwrap_or(Value::Null)
    }

    pub(crate) fn all_ids(&self, model: &str) -> Vec<i64> {
        self.db
            .data
            .get(model)
            .map(|t| t.keys().copied().collect())
            .unwrap_or_default()
    }

    pub(crate) fn set(&mut self, model: &str, id: i64, field: &str, value: Value) {
        if !self.exists(model, id) {
            return;
        }
        self.db.touch(model, id);
        let old = self.stored(model, id, field);
        self.db.index(model, id, field, &old, false);
        self.db.index(model, id, field, &value, true);
        let fid = self.db.names.intern(field);
        if let Some(row) = self.db.data.get_mut(model).and_then(|t| t.get_mut(&id)) {
            row.set(fid, value);
        }
    }

    /// Adds a record row as given (no defaults filled), indexing its values.
    pub(crate) fn insert_record(&mut self, model: &str, id: i64, rec: Vals) {
        let own: Vec<(Fid, Value)> = rec
            .into_iter()
            .map(|(k, v)| (self.db.names.intern(&k), v))
            .collect();
        self.db.put_row(model, id, Row::new(None, own));
    }

    /// Records of `model` whose stored `field` equals `value`, in id order.
    pub(crate) fn where_eq(&self, model: &str, field: &str, value: &Value) -> Vec<i64> {
        if let Some(found) = self.indexed_where_eq(model, field, value) {
            return found;
        }
        let Some(fid) = self.db.names.get(field) else {
            return Vec::new();
        };
        self.db
            .data
            .get(model)
            .map(|t| {
                t.iter()
                    .filter(|(_, r)| r.get(fid).as_ref() == Some(value))
                    .map(|(id, _)| *id)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// [`where_eq`](Self::where_eq) through an index: `None` when `field` has none for
    /// `value` (a many2one by id, an indexed string field by text).
    pub(crate) fn indexed_where_eq(
        &self,
        model: &str,
        field: &str,
        value: &Value,
    ) -> Option<Vec<i64>> {
        match (self.db.indexed(model, field)?, value) {
            (Indexed::Ref, _) => {
                let target = value.as_i64()?;
                if target <= 0 {
                    return Some(Vec::new());
                }
                Some(store::keyed(&self.db.refs, model, field, target as u64))
            }
            (Indexed::Text, Value::String(text)) => {
                let Some(fid) = self.db.names.get(field) else {
                    return Some(Vec::new());
                };
                Some(
                    store::keyed(&self.db.texts, model, field, text_hash(text))
                        .into_iter()
                        .filter(|&id| self.db.row(model, id).is_some_and(|r| r.has_str(fid, text)))
                        .collect(),
                )
            }
            _ => None,
        }
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
