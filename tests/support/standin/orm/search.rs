//! Searching: a domain evaluated on every record (archived ones left out unless asked for), or
//! only on those an index names when a leaf `=` / `in` on an indexed field or `id` bounds it;
//! leaves through relations, `child_of` / `parent_of`, and the order PostgreSQL would give.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::super::errors::Fail;
use super::domain::{Leaf, Tok, compare, parse_domain};
use super::fields::Ty;
use super::{Env, as_id, id_list, truthy};

impl Env<'_> {
    pub(crate) fn search(
        &self,
        model: &str,
        domain: &Value,
        order: Option<&str>,
        offset: usize,
        limit: Option<usize>,
    ) -> Result<Vec<i64>, Fail> {
        let m = self.model(model)?;
        let tokens = parse_domain(domain)?;
        for t in &tokens {
            if let Tok::Leaf(leaf) = t {
                self.check_leaf(model, leaf)?;
            }
        }
        let mentions_active = tokens.iter().any(
            |t| matches!(t, Tok::Leaf(l) if l.path.first().map(String::as_str) == Some("active")),
        );
        let active_test = m.fields.contains_key("active")
            && !mentions_active
            && self.ctx.get("active_test") != Some(&json!(false));
        let mut ids: Vec<i64> = Vec::new();
        let scanned = if tokens.is_empty() {
            None
        } else {
            self.candidates(model, &tokens, &mut 0)
        };
        let scanned: Vec<i64> = match scanned {
            Some(set) => set
                .into_iter()
                .filter(|&id| self.exists(model, id))
                .collect(),
            None => self.all_ids(model),
        };
        for id in scanned {
            if active_test && !truthy(&self.raw(model, id, "active")) {
                continue;
            }
            if tokens.is_empty() || {
                let mut pos = 0;
                self.eval(model, id, &tokens, &mut pos)
            } {
                ids.push(id);
            }
        }
        let order = order
            .filter(|o| !o.trim().is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| m.order.clone());
        self.sort(model, &mut ids, &order)?;
        let ids = ids.into_iter().skip(offset);
        Ok(match limit {
            Some(l) => ids.take(l).collect(),
            None => ids.collect(),
        })
    }

    /// The records an index says can match the domain at `pos` (a superset of those that
    /// do), or `None` when it would take a scan: a leaf `=` / `in` on `id`, on an indexed
    /// many2one by id, or on an indexed string field by non-empty text; `&` keeps the smaller
    /// side, `|` joins both.
    fn candidates(&self, model: &str, tokens: &[Tok], pos: &mut usize) -> Option<BTreeSet<i64>> {
        let t = &tokens[*pos];
        *pos += 1;
        match t {
            Tok::And => {
                let a = self.candidates(model, tokens, pos);
                let b = self.candidates(model, tokens, pos);
                match (a, b) {
                    (Some(a), Some(b)) => Some(if a.len() <= b.len() { a } else { b }),
                    (a, b) => a.or(b),
                }
            }
            Tok::Or => {
                let a = self.candidates(model, tokens, pos);
                let b = self.candidates(model, tokens, pos);
                let mut a = a?;
                a.extend(b?);
                Some(a)
            }
            Tok::Not => {
                self.candidates(model, tokens, pos);
                None
            }
            Tok::Leaf(leaf) => self.leaf_candidates(model, leaf),
        }
    }

    fn leaf_candidates(&self, model: &str, leaf: &Leaf) -> Option<BTreeSet<i64>> {
        let [name] = leaf.path.as_slice() else {
            return None;
        };
        if leaf.constant.is_some() {
            return None;
        }
        let values: Vec<&Value> = match leaf.op.as_str() {
            "=" => vec![&leaf.value],
            "in" => leaf.value.as_array()?.iter().collect(),
            _ => return None,
        };
        let mut out = BTreeSet::new();
        if name == "id" {
            for v in values {
                match v {
                    // `true` equals every id.
                    Value::Bool(true) => return None,
                    Value::Number(n) => {
                        let x = n.as_f64()?;
                        if x.fract() == 0.0 && x >= 1.0 && x <= i64::MAX as f64 {
                            out.insert(x as i64);
                        }
                    }
                    // Nothing else equals an id.
                    _ => {}
                }
            }
            return Some(out);
        }
        let f = self.field(model, name)?;
        if !f.store || f.inherited {
            return None;
        }
        for v in values {
            let hits = match v {
                Value::Number(n) if f.ty == Ty::Many2one => {
                    let x = n.as_f64()?;
                    if x.fract() != 0.0 || x < 1.0 {
                        return None;
                    }
                    self.indexed_where_eq(model, name, &json!(x as i64))?
                }
                Value::String(s) if !s.is_empty() && f.ty != Ty::Many2one => {
                    self.indexed_where_eq(model, name, v)?
                }
                _ => return None,
            };
            out.extend(hits);
        }
        Some(out)
    }

    fn check_leaf(&self, model: &str, leaf: &Leaf) -> Result<(), Fail> {
        let Some(first) = leaf.path.first() else {
            return Ok(());
        };
        if leaf.constant.is_some() || first == "id" {
            return Ok(());
        }
        if self.field(model, first).is_none() {
            // "in leaf" on 17 and 18 (18/122), "in condition" on 19 (19/129).
            let part = if self.v() >= 19 { "condition" } else { "leaf" };
            return Err(Fail::value(format!(
                "Invalid field {model}.{first} in {part} {}",
                leaf.repr
            )));
        }
        const OPS: &[&str] = &[
            "=",
            "!=",
            "<>",
            "<",
            ">",
            "<=",
            ">=",
            "=?",
            "in",
            "not in",
            "like",
            "not like",
            "ilike",
            "not ilike",
            "=like",
            "=ilike",
            "child_of",
            "parent_of",
            "any",
            "not any",
        ];
        if !OPS.contains(&leaf.op.as_str()) {
            return Err(Fail::value(format!("Invalid leaf {}", leaf.repr)));
        }
        Ok(())
    }

    fn eval(&self, model: &str, id: i64, tokens: &[Tok], pos: &mut usize) -> bool {
        let t = &tokens[*pos];
        *pos += 1;
        match t {
            Tok::And => {
                let a = self.eval(model, id, tokens, pos);
                let b = self.eval(model, id, tokens, pos);
                a && b
            }
            Tok::Or => {
                let a = self.eval(model, id, tokens, pos);
                let b = self.eval(model, id, tokens, pos);
                a || b
            }
            Tok::Not => !self.eval(model, id, tokens, pos),
            Tok::Leaf(leaf) => match leaf.constant {
                Some(c) => c,
                None => self.leaf_match(model, id, &leaf.path, &leaf.op, &leaf.value),
            },
        }
    }

    fn leaf_match(&self, model: &str, id: i64, path: &[String], op: &str, value: &Value) -> bool {
        let name = &path[0];
        let negative = matches!(op, "!=" | "<>" | "not in" | "not like" | "not ilike");
        if name == "id" {
            if op == "child_of" || op == "parent_of" {
                return self.hierarchy(model, value, op).contains(&id);
            }
            return compare(&json!(id), op, value);
        }
        let Some(f) = self.field(model, name).cloned() else {
            return false;
        };
        let raw = self.raw(model, id, name);
        if path.len() > 1 || matches!(op, "any" | "not any") {
            let rel = f.relation.clone().unwrap_or_default();
            let related = id_list(&raw)
                .into_iter()
                .chain(as_id(&raw).filter(|_| f.ty == Ty::Many2one));
            let related: BTreeSet<i64> = related.collect();
            if matches!(op, "any" | "not any") {
                let tokens = parse_domain(value).unwrap_or_default();
                let any = related.iter().any(|&r| {
                    tokens.is_empty() || {
                        let mut pos = 0;
                        self.eval(&rel, r, &tokens, &mut pos)
                    }
                });
                return if op == "any" { any } else { !any };
            }
            if related.is_empty() {
                return negative;
            }
            return related
                .iter()
                .any(|&r| self.leaf_match(&rel, r, &path[1..], op, value));
        }
        match f.ty {
            Ty::Many2one => {
                let rel = f.relation.clone().unwrap_or_default();
                if op == "child_of" || op == "parent_of" {
                    return as_id(&raw)
                        .is_some_and(|r| self.hierarchy(&rel, value, op).contains(&r));
                }
                let by_name = match value {
                    Value::String(_) => true,
                    Value::Array(a) => a.iter().any(Value::is_string),
                    _ => false,
                };
                if by_name {
                    let shown = match as_id(&raw) {
                        Some(r) => json!(self.display_name(&rel, r)),
                        None => json!(false),
                    };
                    compare(&shown, op, value)
                } else {
                    let id_value = as_id(&raw).map(|r| json!(r)).unwrap_or(json!(false));
                    compare(&id_value, op, value)
                }
            }
            Ty::One2many | Ty::Many2many => {
                let ids = id_list(&raw);
                let wanted: Vec<i64> = match value {
                    Value::Bool(false) | Value::Null => {
                        return match op {
                            "=" => ids.is_empty(),
                            _ => !ids.is_empty(),
                        };
                    }
                    v => id_list(v),
                };
                let hit = ids.iter().any(|i| wanted.contains(i));
                if negative { !hit } else { hit }
            }
            _ => compare(&raw, op, value),
        }
    }

    /// `child_of` / `parent_of`: the given ids and their descendants (or ancestors).
    fn hierarchy(&self, model: &str, value: &Value, op: &str) -> BTreeSet<i64> {
        let parent_field = if model == "stock.location" {
            "location_id"
        } else {
            "parent_id"
        };
        let mut set: BTreeSet<i64> = id_list(value).into_iter().collect();
        loop {
            let before = set.len();
            for id in self.all_ids(model) {
                let parent = as_id(&self.stored(model, id, parent_field));
                match (op, parent) {
                    ("child_of", Some(p)) if set.contains(&p) => {
                        set.insert(id);
                    }
                    ("parent_of", Some(p)) if set.contains(&id) => {
                        set.insert(p);
                    }
                    _ => {}
                }
            }
            if set.len() == before {
                return set;
            }
        }
    }

    fn sort(&self, model: &str, ids: &mut [i64], order: &str) -> Result<(), Fail> {
        let mut keys: Vec<(String, bool)> = Vec::new();
        for part in order.split(',') {
            let mut words = part.split_whitespace();
            let Some(field) = words.next() else { continue };
            let desc = words.next().is_some_and(|d| d.eq_ignore_ascii_case("desc"));
            if field != "id" && self.field(model, field).is_none() {
                return Err(Fail::value(format!(
                    "Invalid field '{field}' on model '{model}'"
                )));
            }
            keys.push((field.to_string(), desc));
        }
        let sort_key = |id: i64, field: &str| -> SortKey {
            let v = self.raw(model, id, field);
            match self.field(model, field) {
                Some(f) if f.ty == Ty::Many2one => match as_id(&v) {
                    Some(r) => SortKey::Text(
                        self.display_name(f.relation.as_deref().unwrap_or_default(), r),
                    ),
                    None => SortKey::Null,
                },
                Some(f) if f.ty == Ty::Boolean => SortKey::Num(if truthy(&v) { 1.0 } else { 0.0 }),
                _ => match v {
                    Value::Number(n) => SortKey::Num(n.as_f64().unwrap_or(0.0)),
                    Value::String(s) => SortKey::Text(s),
                    Value::Bool(true) => SortKey::Num(1.0),
                    _ => SortKey::Null,
                },
            }
        };
        ids.sort_by(|&a, &b| {
            for (field, desc) in &keys {
                let (ka, kb) = (sort_key(a, field), sort_key(b, field));
                // PostgreSQL: NULLS LAST ascending, NULLS FIRST descending.
                let ord = ka.cmp_nulls_last(&kb);
                let ord = if *desc { ord.reverse() } else { ord };
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
            }
            a.cmp(&b)
        });
        Ok(())
    }
}

enum SortKey {
    Null,
    Num(f64),
    Text(String),
}

impl SortKey {
    fn cmp_nulls_last(&self, other: &SortKey) -> std::cmp::Ordering {
        use std::cmp::Ordering::*;
        match (self, other) {
            (SortKey::Null, SortKey::Null) => Equal,
            (SortKey::Null, _) => Greater,
            (_, SortKey::Null) => Less,
            (SortKey::Num(a), SortKey::Num(b)) => a.partial_cmp(b).unwrap_or(Equal),
            (SortKey::Text(a), SortKey::Text(b)) => a.cmp(b),
            (SortKey::Num(_), SortKey::Text(_)) => Less,
            (SortKey::Text(_), SortKey::Num(_)) => Greater,
        }
    }
}
