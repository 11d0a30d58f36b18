//! `upsert`: records searched by their key (archived ones included), the new ones created
//! in one call, and of the existing ones only the values that differ sent — grouped by the
//! fields they change, in one `write` or one `load` per group (see [`UpdateMethod`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};

use super::batch::{At, Guard, Outcome, Sent, load_refusals, send_split};
use super::compare::{FieldInfo, atom, changes, record_id, text, text_exact};
use super::{Applier, Refusal, Tag, UpdateMethod, Vals, tagged};
use crate::error::Consequence;
use crate::mapping::config::UpsertMapping;
use crate::odoo::client::{Args, OdooClient, SearchOptions};
use crate::odoo::error::OdooError;
use crate::operation::LookupRef;
use crate::operation::Operation;

impl<'a> Applier<'a> {
    /// Applies one batch of `upsert` operations of `model`.
    pub(super) async fn upsert(
        &self,
        model: &str,
        upsert: &UpsertMapping,
        files: &[&[Operation]],
        batch: &[At],
        g: &mut Guard,
    ) -> Result<Outcome, OdooError> {
        let client = self.client;
        let key = upsert.key.as_slice();
        let mut out = Outcome::default();
        let ops = g.keep(tagged(files, batch), &mut out);
        self.resolve(ops.iter().flat_map(|(_, op)| op.lookups.values()), false)
            .await?;
        let mut items: Vec<(Tag, Vals)> = Vec::new();
        // Records whose lookup names a record of this model that an earlier record of the
        // batch writes: they wait until that one is in Odoo (a category and its parent in one
        // file, say).
        let mut deferred: Vec<At> = Vec::new();
        for (i, (tag, op)) in ops.iter().enumerate() {
            match self.resolved_values(op) {
                Ok(vals) => items.push((tag.clone(), vals)),
                Err(refusal) => {
                    let waiting = waits_for_earlier(model, op, &ops[..i])
                        .then(|| {
                            batch.iter().find(|at| {
                                at.file == tag.file && files[at.file][at.op].record == tag.record
                            })
                        })
                        .flatten();
                    match waiting {
                        Some(at) => deferred.push(*at),
                        None => g.fail(tag.clone(), refusal, &mut out),
                    }
                }
            }
        }
        // Batches never hold a key twice as written, but two values may look up to the same
        // record (two names of one unit in a key): one record per key in one create.
        let mut firsts = BTreeSet::new();
        let mut unique = Vec::new();
        for (tag, vals) in g.keep(items, &mut out) {
            if firsts.insert(key_atoms(key, &vals)) {
                unique.push((tag, vals));
            } else {
                let refusal = Refusal {
                    message: format!(
                        "{} is also the key of an earlier record of this batch once its \
                         lookups are resolved: the earlier record is applied, not this one",
                        describe_key(key, &vals)
                    ),
                    exception: None,
                    field: key.first().cloned(),
                    value: key.first().and_then(|k| op_value(files, &tag, k)),
                };
                g.fail(tag, refusal, &mut out);
            }
        }
        let items = g.keep(unique, &mut out);
        if items.is_empty() {
            return Ok(out);
        }
        let mut fields: BTreeSet<&str> = key.iter().map(String::as_str).collect();
        for (_, vals) in &items {
            fields.extend(vals.keys().map(String::as_str));
        }
        // Every mapped field at once: one fields_get per run, even if the first records
        // leave optional fields out.
        let mut described = fields.clone();
        described.extend(upsert.fields.iter().map(|f| f.field.as_str()));
        self.describe(model, &described).await?;
        let info = self.fields.borrow().get(model).cloned().unwrap_or_default();

        let found = match search_keys(client, model, key, &items, &fields).await {
            Ok(found) => found,
            Err(e) if e.consequence() == Consequence::Reject => {
                // A read refused as a whole (an unknown field, say) is the same for every
                // record: splitting it would only repeat it.
                g.fail_all(items.into_iter().map(|(tag, _)| tag), &e, &mut out);
                return Ok(out);
            }
            Err(e) => return Err(e),
        };
        let mut by_key: HashMap<Vec<String>, Vec<&Vals>> = HashMap::new();
        for rec in &found {
            by_key.entry(key_atoms(key, rec)).or_default().push(rec);
        }
        let mut creates: Vec<(Tag, Vals)> = Vec::new();
        let mut updates: Vec<Update> = Vec::new();
        for (tag, vals) in items {
            match by_key.get(&key_atoms(key, &vals)).map(Vec::as_slice) {
                None | Some([]) => creates.push((tag, vals)),
                Some([rec]) => {
                    let changed = changes(&vals, rec, &info);
                    match record_id(rec) {
                        _ if changed.is_empty() => out.applied.push(tag),
                        Some(id) => updates.push((tag, (id, changed))),
                        None => {
                            return Err(OdooError::Protocol {
                                call: format!("{model}.search_read"),
                                detail: "a record came back without its id".into(),
                            });
                        }
                    }
                }
                Some(recs) => {
                    let ids: Vec<String> = recs
                        .iter()
                        .filter_map(|r| record_id(r))
                        .map(|id| id.to_string())
                        .collect();
                    let shown = describe_key(key, &vals);
                    g.fail(
                        tag,
                        Refusal {
                            message: format!(
                                "{} {model} records have {shown} (ids {}): the key must match \
                                 one record",
                                recs.len(),
                                ids.join(", ")
                            ),
                            exception: None,
                            field: key.first().cloned(),
                            value: key.first().and_then(|k| vals.get(k)).map(text),
                        },
                        &mut out,
                    );
                }
            }
        }

        // Updates first: a value that moves from an existing record to a new one (an EAN
        // reassigned, say) must leave the old record before the new one is created with it.
        self.send_updates(model, updates, &info, g, &mut out)
            .await?;
        let created = !creates.is_empty();
        send_split(creates, g, &mut out, async |chunk: &[(Tag, Vals)]| {
            let vals_list = chunk.iter().map(|(_, v)| v.clone()).collect();
            client.create(model, vals_list, None).await?;
            Ok(Sent::Applied)
        })
        .await?;
        if created {
            // A value not found before may name a record just created: look again next time.
            self.forget_missing(model);
        }
        if !deferred.is_empty() {
            self.forget_missing(model);
            if deferred.len() < batch.len() {
                let rest = Box::pin(self.upsert(model, upsert, files, &deferred, g)).await?;
                out.extend(rest);
            } else {
                // Nothing of the batch went ahead of them: they wait for each other.
                for (tag, op) in g.keep(tagged(files, &deferred), &mut out) {
                    if let Err(refusal) = self.resolved_values(op) {
                        g.fail(tag, refusal, &mut out);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Sends the changed values of existing records: one call per set of changed fields
    /// (see [`UpdateMethod`]).
    async fn send_updates(
        &self,
        model: &str,
        updates: Vec<Update>,
        info: &HashMap<String, Option<FieldInfo>>,
        g: &mut Guard,
        out: &mut Outcome,
    ) -> Result<(), OdooError> {
        let client = self.client;
        let mut by_fields: BTreeMap<Vec<String>, Vec<Update>> = BTreeMap::new();
        for update in updates {
            let names = update.1.1.keys().cloned().collect();
            by_fields.entry(names).or_default().push(update);
        }
        for (names, members) in by_fields {
            let shared = members.windows(2).all(|w| w[0].1.1 == w[1].1.1);
            let columns = load_columns(&names, info);
            let loadable = members
                .iter()
                .all(|(_, (_, vals))| vals.values().all(is_scalar));
            if self.updates == UpdateMethod::WriteOrLoad
                && !shared
                && loadable
                && let Some(columns) = columns
            {
                let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
                let names = &names;
                send_split(members, g, out, async |chunk: &[Update]| {
                    let rows = chunk
                        .iter()
                        .map(|(_, (id, vals))| {
                            std::iter::once(id.to_string())
                                .chain(names.iter().map(|f| cell(vals.get(f), info.get(f))))
                                .collect()
                        })
                        .collect();
                    let loaded = client.load(model, &columns, rows, None).await?;
                    if loaded.ids.is_some() {
                        return Ok(Sent::Applied);
                    }
                    Ok(load_refusals(&loaded.messages, chunk.len()))
                })
                .await?;
                continue;
            }
            // Same values → one write for all of them.
            // (canonical form, values, records)
            let mut by_vals: Vec<(String, Vals, Vec<Target>)> = Vec::new();
            for (tag, (id, vals)) in members {
                let canon = canonical(&vals);
                match by_vals.iter_mut().find(|(c, _, _)| *c == canon) {
                    Some((_, _, ids)) => ids.push((tag, id)),
                    None => by_vals.push((canon, vals, vec![(tag, id)])),
                }
            }
            for (_, vals, ids) in by_vals {
                let vals = &vals;
                send_split(ids, g, out, async |chunk: &[Target]| {
                    let ids: Vec<i64> = chunk.iter().map(|(_, id)| *id).collect();
                    client.write(model, &ids, vals.clone(), None).await?;
                    Ok(Sent::Applied)
                })
                .await?;
            }
        }
        Ok(())
    }
}

/// An existing record to update: its id and its changed values.
type Update = (Tag, (i64, Vals));

/// A record id to write.
type Target = (Tag, i64);

/// The value of `field` as the record of `tag` has it in its file, for messages.
fn op_value(files: &[&[Operation]], tag: &Tag, field: &str) -> Option<String> {
    files[tag.file]
        .iter()
        .find(|op| op.record == tag.record)
        .and_then(|op| op.values.get(field).or_else(|| op.key.get(field)))
        .map(text)
}

fn key_atoms(key: &[String], vals: &Vals) -> Vec<String> {
    key.iter().map(|k| atom(vals.get(k))).collect()
}

fn describe_key(key: &[String], vals: &Vals) -> String {
    key.iter()
        .map(|k| format!("{k} '{}'", atom(vals.get(k))))
        .collect::<Vec<_>>()
        .join(" and ")
}

/// The same values in a stable text form, whatever the map's order.
fn canonical(vals: &Vals) -> String {
    let sorted: BTreeMap<&String, &Value> = vals.iter().collect();
    serde_json::to_string(&sorted).unwrap_or_default()
}

/// `search_read` of the records whose key is among the items' keys, archived ones included.
async fn search_keys(
    client: &OdooClient,
    model: &str,
    key: &[String],
    items: &[(Tag, Vals)],
    fields: &BTreeSet<&str>,
) -> Result<Vec<Vals>, OdooError> {
    let mut seen = BTreeSet::new();
    let wanted: Vec<&Vals> = items
        .iter()
        .map(|(_, vals)| vals)
        .filter(|vals| seen.insert(key_atoms(key, vals)))
        .collect();
    let domain = key_domain(key, &wanted);
    let mut context = Args::new();
    context.insert("active_test".into(), json!(false));
    let fields: Vec<&str> = fields.iter().copied().collect();
    client
        .search_read(
            model,
            domain,
            &fields,
            SearchOptions {
                context: Some(context),
                ..SearchOptions::default()
            },
        )
        .await
}

/// `[k, 'in', values]` for one key field; for several, an OR of one AND per record.
fn key_domain(key: &[String], wanted: &[&Vals]) -> Value {
    let value = |vals: &Vals, k: &str| vals.get(k).cloned().unwrap_or(Value::Bool(false));
    if let [k] = key {
        let values: Vec<Value> = wanted.iter().map(|v| value(v, k)).collect();
        return json!([[k, "in", values]]);
    }
    let mut domain = Vec::new();
    for _ in 1..wanted.len() {
        domain.push(json!("|"));
    }
    for vals in wanted {
        for _ in 1..key.len() {
            domain.push(json!("&"));
        }
        for k in key {
            domain.push(json!([k, "=", value(vals, k)]));
        }
    }
    Value::Array(domain)
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

/// The `load` columns for changed `fields`: `.id` first, a many2one as `field/.id`. `None`
/// when a field's type is unknown or cannot go through Odoo's import as is (datetimes are
/// read in the user's timezone there, x2many need commands).
fn load_columns(
    fields: &[String],
    info: &HashMap<String, Option<FieldInfo>>,
) -> Option<Vec<String>> {
    let mut columns = vec![".id".to_string()];
    for f in fields {
        let ty = info.get(f)?.as_ref()?.ty.as_str();
        columns.push(match ty {
            "many2one" => format!("{f}/.id"),
            "char" | "text" | "html" | "integer" | "float" | "monetary" | "boolean"
            | "selection" | "date" => f.clone(),
            _ => return None,
        });
    }
    Some(columns)
}

/// One `load` cell: Odoo's import reads text, an empty cell is `false`.
fn cell(v: Option<&Value>, info: Option<&Option<FieldInfo>>) -> String {
    let boolean = info
        .and_then(Option::as_ref)
        .is_some_and(|i| i.ty == "boolean");
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::Bool(b)) if boolean => if *b { "True" } else { "False" }.into(),
        Some(Value::Bool(false)) => String::new(),
        Some(Value::Bool(true)) => "True".into(),
        // Odoo's import refuses "5.0" for an integer field (create and write take 5.0).
        Some(Value::Number(n))
            if info
                .and_then(Option::as_ref)
                .is_some_and(|i| i.ty == "integer")
                && n.as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && f.abs() < 9.0e15) =>
        {
            format!("{}", n.as_f64().unwrap_or_default() as i64)
        }
        Some(other) => text_exact(other),
    }
}

/// Whether `op` looks up a record of `model` by a value that an earlier operation of the
/// batch writes into that very field: the record it names is about to exist.
fn waits_for_earlier(model: &str, op: &Operation, earlier: &[(Tag, &Operation)]) -> bool {
    let written = |r: &LookupRef| {
        earlier.iter().any(|(_, e)| {
            e.values
                .get(&r.field)
                .or_else(|| e.key.get(&r.field))
                .is_some_and(|v| text(v) == text(&r.value))
        })
    };
    op.lookups.values().any(|r| r.model == model && written(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(ty: &str, digits: Option<u32>) -> FieldInfo {
        FieldInfo {
            ty: ty.into(),
            digits,
        }
    }

    #[test]
    fn composite_keys_search_with_one_and_per_record() {
        let key = vec!["a".to_string(), "b".to_string()];
        let r1 = json!({"a": 1, "b": "x"}).as_object().unwrap().clone();
        let r2 = json!({"a": 2, "b": "y"}).as_object().unwrap().clone();
        assert_eq!(
            key_domain(&key, &[&r1, &r2]),
            json!([
                "|",
                "&",
                ["a", "=", 1],
                ["b", "=", "x"],
                "&",
                ["a", "=", 2],
                ["b", "=", "y"]
            ])
        );
        assert_eq!(
            key_domain(&key[..1], &[&r1, &r2]),
            json!([["a", "in", [1, 2]]])
        );
        // A record found with a many2one key matches the id it was searched with.
        let found = json!({"a": [1, "One"], "b": "x"})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(key_atoms(&key, &found), key_atoms(&key, &r1));
    }

    #[test]
    fn load_cells_are_text_as_odoo_imports_it() {
        let flag = Some(Some(info("boolean", None)));
        assert_eq!(cell(Some(&json!(true)), flag.as_ref()), "True");
        assert_eq!(cell(Some(&json!(false)), flag.as_ref()), "False");
        assert_eq!(cell(Some(&json!(false)), None), "");
        assert_eq!(cell(Some(&json!(12.5)), None), "12.5");
        assert_eq!(cell(Some(&json!(7)), None), "7");
        assert_eq!(cell(Some(&json!("Desk")), None), "Desk");
        let whole = Some(Some(info("integer", None)));
        assert_eq!(
            cell(Some(&json!(5.0)), whole.as_ref()),
            "5",
            "Odoo refuses 5.0"
        );
        assert_eq!(cell(Some(&json!(5.0)), None), "5.0");
        let described: HashMap<String, Option<FieldInfo>> = [
            ("uom_id".to_string(), Some(info("many2one", None))),
            ("name".to_string(), Some(info("char", None))),
            ("date_next".to_string(), Some(info("datetime", None))),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            load_columns(&["name".into(), "uom_id".into()], &described),
            Some(vec![".id".into(), "name".into(), "uom_id/.id".into()])
        );
        assert_eq!(load_columns(&["date_next".into()], &described), None);
        assert_eq!(load_columns(&["unknown".into()], &described), None);
    }
}
