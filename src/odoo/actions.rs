//! The actions that apply operations in Odoo: `upsert` and `set_stock`, in batches shared by
//! the files of a pass, idempotent, with lookups resolved once per run.
//!
//! One batch (`batch_size` operations, taken in file order across the files of the pass) costs:
//!
//! - `upsert`: one `search_read` per lookup (model, field) for the values not seen yet this
//!   run, one `search_read` for the keys (archived records included), one `create` for the new
//!   records, and for the changed ones one call per set of changed fields — a `write(ids, vals)`
//!   when the records also share the values, else one `load` with a `.id` column. Records that
//!   are already up to date cost nothing, so a second run of the same file writes nothing.
//!   One `fields_get` per model and run tells the field types (many2one columns of `load`)
//!   and float precisions (12.345 sent to a 2-digit field reads back 12.35: unchanged).
//! - `set_stock`: the product and location lookups, one `search_read` of `stock.lot` for new
//!   lots, one `search_read` of the current quants, and one `stock.quant` `create` in inventory
//!   mode with `inventory_quantity_auto_apply` for the quantities that differ (the form that
//!   applies in the same call, transcripts 18/42 and 19/41). A full snapshot then reads the
//!   non-zero quants of its locations once and sets the ones absent from the file to 0.
//!
//! Measured against the stand-in (`tests/odoo_actions.rs`, JSON-RPC and JSON-2 alike): 1000
//! new products in batches of 200 take 5 key `search_read`, 1 lookup `search_read`, 1
//! `fields_get` and 5 `create` (12 calls, against 1000+ for a per-record script); the same
//! file again 7 calls and no write; 300 of them with a new price each take one `load` per
//! batch (2) where writes grouped by values take 300 `write`; the same change on 300 takes
//! one `write` per batch.
//!
//! A batch Odoo refuses as bad data is split in halves until the bad records are alone; the
//! others are applied. An outage or a configuration problem ends the call with `Err` and no
//! per-record report; a timed-out batch is halved and tried once more first.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use serde_json::{Map, Value, json};

use crate::config::OnRecordError;
use crate::error::Consequence;
use crate::mapping::config::{Action, Mapping, Snapshot, UpsertMapping};
use crate::odoo::client::{Args, OdooClient, SearchOptions};
use crate::odoo::error::OdooError;
use crate::operation::{LookupRef, Operation};

/// A record Odoo (or a lookup) refused.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordFailure {
    /// 1-based record number in its file; 0 for a quant a full snapshot set to 0.
    pub record: u64,
    pub line: u64,
    /// The field concerned, when known (e.g. an unknown lookup value).
    pub field: Option<String>,
    pub value: Option<String>,
    /// Odoo's message, or ours for a lookup.
    pub message: String,
    /// Odoo's exception name, e.g. `odoo.exceptions.ValidationError`.
    pub exception: Option<String>,
}

/// What happened to one file's operations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileResult {
    /// Record numbers applied (or found already up to date).
    pub applied: Vec<u64>,
    pub failed: Vec<RecordFailure>,
}

/// One batch finished: for the ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchDone {
    /// Index of the file in the slice given to [`Applier::apply`].
    pub file: usize,
    pub batch_no: u32,
    /// Records of that file in the batch (0 for the quants a full snapshot sets to 0).
    pub records: u64,
    /// `ok`, or e.g. `2 refused`.
    pub outcome: String,
}

/// How records whose values changed are sent to Odoo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpdateMethod {
    /// One `write(ids, vals)` per distinct set of changed values.
    Write,
    /// Records that change the same fields go together: one `write(ids, vals)` when they
    /// change them to the same values, else one `load` with a `.id` column — one call for
    /// any number of records (see the module doc for the measurements).
    #[default]
    WriteOrLoad,
}

/// Applies operations for one run; caches lookups for the run's lifetime.
pub struct Applier<'a> {
    client: &'a OdooClient,
    batch_size: usize,
    updates: UpdateMethod,
    /// (model, field) → value as text → what it resolved to.
    lookups: HashMap<(String, String), HashMap<String, Found>>,
    /// Lots are looked up per product: (model, field, product id, value as text).
    lots: HashMap<(String, String, i64, String), Found>,
    /// set_stock: product id → its `tracking` (`none`, `lot`, `serial`).
    tracking: HashMap<i64, String>,
    /// model → field → type and precision (`None`: Odoo did not describe it).
    fields: HashMap<String, HashMap<String, Option<FieldInfo>>>,
}

impl<'a> Applier<'a> {
    /// An applier for one run: `batch_size` operations per batch (at least 1).
    pub fn new(client: &'a OdooClient, batch_size: usize) -> Applier<'a> {
        Applier {
            client,
            batch_size: batch_size.max(1),
            updates: UpdateMethod::default(),
            lookups: HashMap::new(),
            lots: HashMap::new(),
            tracking: HashMap::new(),
            fields: HashMap::new(),
        }
    }

    /// Chooses how changed records are sent (the default needs the fewest calls).
    pub fn with_update_method(mut self, updates: UpdateMethod) -> Self {
        self.updates = updates;
        self
    }

    /// Applies the operations of several files of one flow (same mapping), sharing batches.
    /// Returns one result per file, in order. An `Err` is a failure of the whole call sequence
    /// (outage, bad credentials): its `consequence()` says whether the files wait or the flow
    /// stops; nothing is reported per record then (batches finished before it were reported
    /// through `progress`, and a new run finds what they applied).
    ///
    /// Batches keep file order: a record whose key is already in the batch being filled waits
    /// for the next one, so the later record of a key is applied last.
    ///
    /// `on_record_error = "fail_file"`: from the first failed record of a file on, nothing
    /// more of that file is sent. Odoo commits each call on its own, so records of that file
    /// applied by earlier calls stay applied; the result lists them. Replaying the fixed file
    /// re-applies everything idempotently.
    pub async fn apply(
        &mut self,
        mapping: &Mapping,
        files: &[&[Operation]],
        on_record_error: OnRecordError,
        progress: &mut dyn FnMut(BatchDone),
    ) -> Result<Vec<FileResult>, OdooError> {
        let work = match &mapping.action {
            Action::Upsert(upsert) => Work::Upsert {
                model: &mapping.model,
                upsert,
            },
            Action::SetStock(stock) => Work::Stock {
                snapshot: stock.snapshot,
            },
        };
        let mut results = vec![FileResult::default(); files.len()];
        let mut guard = Guard {
            fail_file: on_record_error == OnRecordError::FailFile,
            stopped: BTreeSet::new(),
        };
        let mut stock = StockSeen::new(files.len());
        let mut queue: VecDeque<At> = files
            .iter()
            .enumerate()
            .flat_map(|(file, ops)| (0..ops.len()).map(move |op| At { file, op }))
            .collect();
        let mut batch_no = 0u32;
        loop {
            let batch = next_batch(&mut queue, files, &guard, self.batch_size);
            if batch.is_empty() {
                break;
            }
            batch_no += 1;
            let (out, after) = self.run_batch(&work, files, &batch, &guard).await?;
            guard = after;
            let mut counts: BTreeMap<usize, Counts> = BTreeMap::new();
            for at in &batch {
                counts.entry(at.file).or_default().records += 1;
            }
            tally(&out, &mut counts);
            for (file, c) in counts {
                progress(BatchDone {
                    file,
                    batch_no,
                    records: c.records,
                    outcome: c.outcome(),
                });
            }
            stock.note(&out);
            merge(out, &mut results);
        }
        if let Work::Stock {
            snapshot: Snapshot::Full,
        } = work
        {
            self.zero_absent(&stock, &mut guard, &mut results, &mut batch_no, progress)
                .await?;
        }
        for r in &mut results {
            r.applied.sort_unstable();
            r.failed.sort_by_key(|f| f.record);
        }
        Ok(results)
    }

    /// One batch, halved and tried once more after a timeout. The halves start from the
    /// state before the batch and read Odoo again, so what the timed-out call committed is
    /// found, not created twice. A call Odoo is still working on when the halves read is
    /// not seen yet; there is no way to tell from outside, which is why a timeout gets one
    /// retry and then leaves the files waiting.
    async fn run_batch(
        &mut self,
        work: &Work<'_>,
        files: &[&[Operation]],
        batch: &[At],
        guard: &Guard,
    ) -> Result<(Outcome, Guard), OdooError> {
        let mut g = guard.clone();
        match self.work(work, files, batch, &mut g).await {
            Ok(out) => Ok((out, g)),
            // A `create` that timed out may still be running in Odoo and commit later: sent
            // again now (even halved) it could create the records twice. The files wait; the
            // next pass's search finds whatever that call committed.
            Err(e @ OdooError::Timeout { .. }) if timed_out_call_creates(&e) => Err(e),
            Err(e) if e.is_timeout() => {
                tracing::warn!(records = batch.len(), error = %e, "Odoo batch timed out, halving it");
                let mut g = guard.clone();
                let mut out = Outcome::default();
                let (left, right) = batch.split_at(batch.len().div_ceil(2));
                for half in [left, right] {
                    if !half.is_empty() {
                        out.extend(self.work(work, files, half, &mut g).await?);
                    }
                }
                Ok((out, g))
            }
            Err(e) => Err(e),
        }
    }

    async fn work(
        &mut self,
        work: &Work<'_>,
        files: &[&[Operation]],
        batch: &[At],
        g: &mut Guard,
    ) -> Result<Outcome, OdooError> {
        match work {
            Work::Upsert { model, upsert } => self.upsert(model, upsert, files, batch, g).await,
            Work::Stock { .. } => self.set_stock(files, batch, g).await,
        }
    }

    // -- upsert ------------------------------------------------------------------------------

    async fn upsert(
        &mut self,
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
        for (tag, op) in ops {
            match self.resolved_values(op) {
                Ok(vals) => items.push((tag, vals)),
                Err(refusal) => g.fail(tag, refusal, &mut out),
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
        let info = self.fields.get(model).cloned().unwrap_or_default();

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
        send_split(creates, g, &mut out, async |chunk: &[(Tag, Vals)]| {
            let vals_list = chunk.iter().map(|(_, v)| v.clone()).collect();
            client.create(model, vals_list, None).await?;
            Ok(Sent::Applied)
        })
        .await?;
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

    /// The operation's values with looked-up fields replaced by ids.
    fn resolved_values(&self, op: &Operation) -> Result<Vals, Refusal> {
        let mut vals = op.values.clone();
        for (field, r) in &op.lookups {
            let id = self.looked_up(field, r)?;
            vals.insert(field.clone(), json!(id));
        }
        // Keys are among the values; a key that is not (a hand-written operation) still counts.
        for (k, v) in &op.key {
            if !vals.contains_key(k) {
                vals.insert(k.clone(), v.clone());
            }
        }
        Ok(vals)
    }

    fn looked_up(&self, field: &str, r: &LookupRef) -> Result<i64, Refusal> {
        let found = self
            .lookups
            .get(&(r.model.clone(), r.field.clone()))
            .and_then(|m| m.get(&text(&r.value)));
        resolved(found, field, r, "")
    }

    /// Looks up every value of `refs` not seen yet this run: one `search_read` per
    /// (model, field).
    /// `with_tracking` (set_stock): products are read with their `tracking` too.
    async fn resolve<'r>(
        &mut self,
        refs: impl IntoIterator<Item = &'r LookupRef>,
        with_tracking: bool,
    ) -> Result<(), OdooError> {
        let mut pending: BTreeMap<(String, String), BTreeMap<String, Value>> = BTreeMap::new();
        for r in refs {
            let key = (r.model.clone(), r.field.clone());
            let t = text(&r.value);
            if self.lookups.get(&key).is_some_and(|m| m.contains_key(&t)) {
                continue;
            }
            pending.entry(key).or_default().insert(t, r.value.clone());
        }
        for ((model, field), values) in pending {
            let domain = json!([[field, "in", values.values().collect::<Vec<_>>()]]);
            // Products come with their tracking: set_stock refuses lines without a lot for
            // tracked products, at no extra call.
            let products = with_tracking && model == "product.product";
            let fields: Vec<&str> = if products {
                vec![field.as_str(), "tracking"]
            } else {
                vec![field.as_str()]
            };
            let answer = self
                .client
                .search_read(&model, domain, &fields, SearchOptions::default())
                .await;
            let cache = self.lookups.entry((model, field.clone())).or_default();
            match answer {
                Ok(records) => {
                    let mut ids: HashMap<String, Vec<i64>> = HashMap::new();
                    for rec in &records {
                        if let (true, Some(id), Some(tracking)) = (
                            products,
                            record_id(rec),
                            rec.get("tracking").and_then(Value::as_str),
                        ) {
                            self.tracking.insert(id, tracking.to_string());
                        }
                        if let (Some(id), Some(v)) = (record_id(rec), rec.get(&field)) {
                            ids.entry(text(v)).or_default().push(id);
                        }
                    }
                    for t in values.into_keys() {
                        let found = Found::from_ids(ids.remove(&t).unwrap_or_default());
                        cache.insert(t, found);
                    }
                }
                Err(e) if e.consequence() == Consequence::Reject => {
                    for t in values.into_keys() {
                        cache.insert(t, Found::Refused(Refusal::odoo(&e)));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Learns the type and precision of `fields` of `model`, once per run.
    async fn describe(&mut self, model: &str, fields: &BTreeSet<&str>) -> Result<(), OdooError> {
        let known = self.fields.entry(model.to_string()).or_default();
        let missing: Vec<&str> = fields
            .iter()
            .copied()
            .filter(|f| !known.contains_key(*f))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        match self
            .client
            .fields_get(model, Some(&missing), &["type", "digits", "relation"])
            .await
        {
            Ok(answer) => {
                for f in missing {
                    known.insert(f.to_string(), answer.get(f).map(FieldInfo::parse));
                }
            }
            // Then the reads say what is wrong, record by record; values are compared
            // without types meanwhile.
            Err(e) if e.consequence() == Consequence::Reject => {
                for f in missing {
                    known.insert(f.to_string(), None);
                }
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    // -- set_stock ---------------------------------------------------------------------------

    async fn set_stock(
        &mut self,
        files: &[&[Operation]],
        batch: &[At],
        g: &mut Guard,
    ) -> Result<Outcome, OdooError> {
        let client = self.client;
        let mut out = Outcome::default();
        let ops = g.keep(tagged(files, batch), &mut out);
        // Products and locations first: a lot is looked up for its product.
        self.resolve(
            ops.iter()
                .flat_map(|(_, op)| op.lookups.iter())
                .filter(|(field, _)| *field != "lot_id")
                .map(|(_, r)| r),
            true,
        )
        .await?;
        let mut targets = Vec::new();
        for (tag, op) in ops {
            let target = ["product_id", "location_id"].map(|field| match op.lookups.get(field) {
                Some(r) => self.looked_up(field, r),
                None => match op.key.get(field).and_then(Value::as_i64) {
                    Some(id) => Ok(id),
                    None => Err(Refusal::ours(
                        format!("no {field} to set the stock of"),
                        field,
                    )),
                },
            });
            match target {
                [Ok(product), Ok(location)] => targets.push((tag, op, product, location)),
                [Err(r), _] | [_, Err(r)] => {
                    out.unresolved.push(tag.file);
                    g.fail(tag, r, &mut out);
                }
            }
        }
        self.resolve_lots(&targets).await?;
        self.resolve_tracking(&targets).await?;

        let mut items: Vec<(Tag, (QuantKey, f64))> = Vec::new();
        for (mut tag, op, product, location) in targets {
            let lot = match op.lookups.get("lot_id") {
                // Odoo answers a quant of a tracked product without a lot with a wizard and
                // applies nothing, while the create itself succeeds: refuse the line here.
                None if matches!(
                    self.tracking.get(&product).map(String::as_str),
                    Some("lot" | "serial")
                ) =>
                {
                    let name = op.key.get("product_id").map(text).unwrap_or_default();
                    let refusal = Refusal::ours(
                        format!(
                            "product '{name}' is tracked by lot or serial number: the line needs a lot"
                        ),
                        "lot_id",
                    );
                    out.seen.push((tag.file, (product, location)));
                    g.fail(tag, refusal, &mut out);
                    continue;
                }
                None => None,
                Some(r) => {
                    let cached =
                        self.lots
                            .get(&(r.model.clone(), r.field.clone(), product, text(&r.value)));
                    let of_product = match op.key.get("product_id") {
                        Some(p) => format!(" for product '{}'", text(p)),
                        None => String::new(),
                    };
                    match resolved(cached, "lot_id", r, &of_product) {
                        Ok(id) => Some(id),
                        Err(refusal) => {
                            // The product is in the file even though this line failed.
                            out.seen.push((tag.file, (product, location)));
                            g.fail(tag, refusal, &mut out);
                            continue;
                        }
                    }
                }
            };
            out.seen.push((tag.file, (product, location)));
            let Some(quantity) = op.values.get("inventory_quantity").and_then(number) else {
                let shown = op.values.get("inventory_quantity").map(text);
                g.fail(
                    tag,
                    Refusal {
                        message: format!(
                            "the quantity {} is not a number",
                            shown.as_deref().unwrap_or("(none)")
                        ),
                        exception: None,
                        field: Some("inventory_quantity".into()),
                        value: shown,
                    },
                    &mut out,
                );
                continue;
            };
            let key = QuantKey {
                product,
                location,
                lot,
            };
            tag.quant = Some((product, location));
            items.push((tag, (key, quantity)));
        }
        let items = g.keep(items, &mut out);
        if items.is_empty() {
            return Ok(out);
        }
        self.describe("stock.quant", &BTreeSet::from(["quantity"]))
            .await?;
        let digits = self.digits("stock.quant", "quantity");

        let products: BTreeSet<i64> = items.iter().map(|(_, (k, _))| k.product).collect();
        let locations: BTreeSet<i64> = items.iter().map(|(_, (k, _))| k.location).collect();
        let domain = json!([
            ["product_id", "in", products],
            ["location_id", "in", locations]
        ]);
        let quants = match client
            .search_read(
                "stock.quant",
                domain,
                QUANT_FIELDS,
                SearchOptions::default(),
            )
            .await
        {
            Ok(quants) => quants,
            Err(e) if e.consequence() == Consequence::Reject => {
                g.fail_all(items.into_iter().map(|(tag, _)| tag), &e, &mut out);
                return Ok(out);
            }
            Err(e) => return Err(e),
        };
        // Quants in packages or of other owners are not what a plain count sets.
        let mut on_hand: HashMap<QuantKey, f64> = HashMap::new();
        for q in &quants {
            if is_set(q.get("package_id")) || is_set(q.get("owner_id")) {
                continue;
            }
            if let Some(key) = quant_key(q) {
                *on_hand.entry(key).or_default() +=
                    q.get("quantity").and_then(number).unwrap_or(0.0);
            }
        }
        let mut creates: Vec<(Tag, Vals)> = Vec::new();
        for (tag, (key, quantity)) in items {
            let now = on_hand.get(&key).copied().unwrap_or(0.0);
            if same_float(quantity, now, digits) {
                out.applied.push(tag);
            } else {
                creates.push((tag, quant_vals(key, quantity, None, None)));
            }
        }
        send_split(creates, g, &mut out, async |chunk: &[(Tag, Vals)]| {
            let vals_list = chunk.iter().map(|(_, v)| v.clone()).collect();
            client
                .create("stock.quant", vals_list, Some(inventory_mode()))
                .await?;
            Ok(Sent::Applied)
        })
        .await?;
        Ok(out)
    }

    /// Reads the `tracking` of the products of lines without a lot, once per run.
    async fn resolve_tracking(
        &mut self,
        targets: &[(Tag, &Operation, i64, i64)],
    ) -> Result<(), OdooError> {
        let wanted: BTreeSet<i64> = targets
            .iter()
            .filter(|(_, op, product, _)| {
                !op.lookups.contains_key("lot_id") && !self.tracking.contains_key(product)
            })
            .map(|(_, _, product, _)| *product)
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let mut context = serde_json::Map::new();
        context.insert("active_test".into(), Value::Bool(false));
        let rows = self
            .client
            .search_read(
                "product.product",
                json!([["id", "in", wanted.iter().collect::<Vec<_>>()]]),
                &["tracking"],
                SearchOptions {
                    context: Some(context),
                    ..SearchOptions::default()
                },
            )
            .await?;
        for row in rows {
            if let (Some(id), Some(tracking)) = (
                row.get("id").and_then(Value::as_i64),
                row.get("tracking").and_then(Value::as_str),
            ) {
                self.tracking.insert(id, tracking.to_string());
            }
        }
        // Products Odoo did not describe count as untracked.
        for id in wanted {
            self.tracking.entry(id).or_insert_with(|| "none".into());
        }
        Ok(())
    }

    /// Looks up the lots of `targets` not seen yet this run, for their products: one
    /// `search_read` per (model, field).
    async fn resolve_lots(
        &mut self,
        targets: &[(Tag, &Operation, i64, i64)],
    ) -> Result<(), OdooError> {
        type Wanted = (
            BTreeSet<i64>,
            BTreeMap<String, Value>,
            BTreeSet<(i64, String)>,
        );
        let mut pending: BTreeMap<(String, String), Wanted> = BTreeMap::new();
        for (_, op, product, _) in targets {
            let Some(r) = op.lookups.get("lot_id") else {
                continue;
            };
            let t = text(&r.value);
            let key = (r.model.clone(), r.field.clone(), *product, t.clone());
            if self.lots.contains_key(&key) {
                continue;
            }
            let entry = pending
                .entry((r.model.clone(), r.field.clone()))
                .or_default();
            entry.0.insert(*product);
            entry.1.insert(t.clone(), r.value.clone());
            entry.2.insert((*product, t));
        }
        for ((model, field), (products, values, wanted)) in pending {
            let domain = json!([
                [field, "in", values.values().collect::<Vec<_>>()],
                ["product_id", "in", products]
            ]);
            let answer = self
                .client
                .search_read(
                    &model,
                    domain,
                    &[field.as_str(), "product_id"],
                    SearchOptions::default(),
                )
                .await;
            let mut ids: HashMap<(i64, String), Vec<i64>> = HashMap::new();
            let refused = match answer {
                Ok(records) => {
                    for rec in &records {
                        let product = rec.get("product_id").and_then(many2one_id);
                        if let (Some(id), Some(product), Some(v)) =
                            (record_id(rec), product, rec.get(&field))
                        {
                            ids.entry((product, text(v))).or_default().push(id);
                        }
                    }
                    None
                }
                Err(e) if e.consequence() == Consequence::Reject => Some(Refusal::odoo(&e)),
                Err(e) => return Err(e),
            };
            for (product, t) in wanted {
                let found = match &refused {
                    Some(r) => Found::Refused(r.clone()),
                    None => Found::from_ids(ids.remove(&(product, t.clone())).unwrap_or_default()),
                };
                self.lots
                    .insert((model.clone(), field.clone(), product, t), found);
            }
        }
        Ok(())
    }

    /// `snapshot = "full"`: in each location of the pass, the quants with a quantity that no
    /// file lists are set to 0. A location belongs to the last file that lists it (the
    /// state it reports is the newest); a quant is absent when that file has no line for its
    /// product in that location, whatever the lot. Quants in packages or of other owners are
    /// set to 0 too. A file stopped by `fail_file` zeroes nothing, and what it applied is kept;
    /// nor does a file with a line whose product or location could not be looked up.
    async fn zero_absent(
        &mut self,
        seen: &StockSeen,
        guard: &mut Guard,
        results: &mut [FileResult],
        batch_no: &mut u32,
        progress: &mut dyn FnMut(BatchDone),
    ) -> Result<(), OdooError> {
        let client = self.client;
        let mut owner: BTreeMap<i64, usize> = BTreeMap::new();
        for (file, locations) in seen.locations.iter().enumerate() {
            if !guard.is_stopped(file) {
                for &l in locations {
                    owner.insert(l, file);
                }
            }
        }
        if owner.is_empty() {
            return Ok(());
        }
        let domain = json!([
            ["location_id", "in", owner.keys().collect::<Vec<_>>()],
            ["quantity", "!=", 0]
        ]);
        let quants = match client
            .search_read(
                "stock.quant",
                domain,
                QUANT_FIELDS,
                SearchOptions::default(),
            )
            .await
        {
            Ok(quants) => quants,
            Err(e) if e.consequence() == Consequence::Reject => {
                let files: BTreeSet<usize> = owner.values().copied().collect();
                let mut out = Outcome::default();
                for file in files {
                    let tag = Tag::zero(file, "reading the stock of the snapshot's locations");
                    guard.fail(tag, Refusal::odoo(&e), &mut out);
                }
                merge(out, results);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let mut zeroes: Vec<(Tag, Vals)> = Vec::new();
        for q in &quants {
            let Some(key) = quant_key(q) else { continue };
            let Some(&file) = owner.get(&key.location) else {
                continue;
            };
            // A file with a line that could not be looked up (an unknown or ambiguous product)
            // may list the very product found here: nothing is set to 0 on its word.
            if seen.incomplete[file] {
                continue;
            }
            let pair = (key.product, key.location);
            // Listed by the owning file, or set by a later file that fail_file stopped.
            if seen.present[file].contains(&pair)
                || (file + 1..seen.present.len()).any(|f| seen.applied[f].contains(&pair))
            {
                continue;
            }
            let what = format!(
                "setting {} in {} to 0 (absent from this full snapshot)",
                q.get("product_id").map(display).unwrap_or_default(),
                q.get("location_id").map(display).unwrap_or_default()
            );
            let package = q.get("package_id").and_then(many2one_id);
            let owner_id = q.get("owner_id").and_then(many2one_id);
            zeroes.push((
                Tag::zero(file, &what),
                quant_vals(key, 0.0, package, owner_id),
            ));
        }
        zeroes.sort_by_key(|(tag, _)| tag.file);
        let mut rest = zeroes.into_iter().peekable();
        while rest.peek().is_some() {
            let chunk: Vec<(Tag, Vals)> = rest.by_ref().take(self.batch_size).collect();
            *batch_no += 1;
            let mut out = Outcome::default();
            let mut g = guard.clone();
            let send = async |chunk: Vec<(Tag, Vals)>, g: &mut Guard, out: &mut Outcome| {
                send_split(chunk, g, out, async |part: &[(Tag, Vals)]| {
                    let vals_list = part.iter().map(|(_, v)| v.clone()).collect();
                    client
                        .create("stock.quant", vals_list, Some(inventory_mode()))
                        .await?;
                    Ok(Sent::Applied)
                })
                .await
            };
            match send(chunk.clone(), &mut g, &mut out).await {
                Ok(()) => {}
                // Absolute quantities: sending the halves again is safe.
                Err(e) if e.is_timeout() => {
                    out = Outcome::default();
                    g = guard.clone();
                    let mut left = chunk;
                    let right = left.split_off(left.len().div_ceil(2));
                    for half in [left, right] {
                        if !half.is_empty() {
                            send(half, &mut g, &mut out).await?;
                        }
                    }
                }
                Err(e) => return Err(e),
            }
            *guard = g;
            let mut counts: BTreeMap<usize, Counts> = BTreeMap::new();
            tally(&out, &mut counts);
            for tag in &out.applied {
                counts.entry(tag.file).or_default().zeroed += 1;
            }
            for (file, c) in counts {
                progress(BatchDone {
                    file,
                    batch_no: *batch_no,
                    records: 0,
                    outcome: c.snapshot_outcome(),
                });
            }
            merge(out, results);
        }
        Ok(())
    }

    fn digits(&self, model: &str, field: &str) -> Option<u32> {
        self.fields
            .get(model)
            .and_then(|m| m.get(field))
            .and_then(|i| i.as_ref())
            .and_then(|i| i.digits)
    }
}

/// What a call of [`Applier::apply`] does with each operation.
enum Work<'m> {
    Upsert {
        model: &'m str,
        upsert: &'m UpsertMapping,
    },
    Stock {
        snapshot: Snapshot,
    },
}

/// An operation: which file, which index in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct At {
    file: usize,
    op: usize,
}

type Vals = Map<String, Value>;

/// An existing record to update: its id and its changed values.
type Update = (Tag, (i64, Vals));

/// A record id to write.
type Target = (Tag, i64);

/// A quant as edi-bridge sets it: product, location, lot (no package, no owner).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct QuantKey {
    product: i64,
    location: i64,
    lot: Option<i64>,
}

/// Who a piece of work is for: the record it reports on.
#[derive(Debug, Clone)]
struct Tag {
    file: usize,
    record: u64,
    line: u64,
    /// set_stock: the (product, location) the record set.
    quant: Option<(i64, i64)>,
    /// A quant a full snapshot sets to 0 (no record): what is done, for messages.
    zero: Option<String>,
}

impl Tag {
    fn of(file: usize, op: &Operation) -> Tag {
        Tag {
            file,
            record: op.record,
            line: op.line,
            quant: None,
            zero: None,
        }
    }

    fn zero(file: usize, what: &str) -> Tag {
        Tag {
            file,
            record: 0,
            line: 0,
            quant: None,
            zero: Some(what.to_string()),
        }
    }
}

fn tagged<'o>(files: &[&'o [Operation]], batch: &[At]) -> Vec<(Tag, &'o Operation)> {
    batch
        .iter()
        .map(|at| {
            let op = &files[at.file][at.op];
            (Tag::of(at.file, op), op)
        })
        .collect()
}

/// The value of `field` as the record of `tag` has it in its file, for messages.
fn op_value(files: &[&[Operation]], tag: &Tag, field: &str) -> Option<String> {
    files[tag.file]
        .iter()
        .find(|op| op.record == tag.record)
        .and_then(|op| op.values.get(field).or_else(|| op.key.get(field)))
        .map(text)
}

/// Why a record was not applied, before it is tied to its record.
#[derive(Debug, Clone, PartialEq)]
struct Refusal {
    message: String,
    exception: Option<String>,
    field: Option<String>,
    value: Option<String>,
}

impl Refusal {
    fn odoo(e: &OdooError) -> Refusal {
        Refusal {
            message: e.message().map_or_else(|| e.to_string(), str::to_string),
            exception: e.exception_name().map(str::to_string),
            field: None,
            value: None,
        }
    }

    fn ours(message: String, field: &str) -> Refusal {
        Refusal {
            message,
            exception: None,
            field: Some(field.to_string()),
            value: None,
        }
    }
}

/// What a looked-up value resolved to.
#[derive(Debug, Clone)]
enum Found {
    One(i64),
    Missing,
    Many(Vec<i64>),
    /// Odoo refused the lookup itself (e.g. an unknown field).
    Refused(Refusal),
}

impl Found {
    fn from_ids(mut ids: Vec<i64>) -> Found {
        ids.sort_unstable();
        ids.dedup();
        match ids.as_slice() {
            [] => Found::Missing,
            [id] => Found::One(*id),
            _ => Found::Many(ids),
        }
    }
}

/// The id of a looked-up value, or why there is none. `suffix` follows the value in the
/// message (e.g. ` for product 'A-100'`).
fn resolved(
    found: Option<&Found>,
    field: &str,
    r: &LookupRef,
    suffix: &str,
) -> Result<i64, Refusal> {
    let value = text(&r.value);
    let refusal = |message: String| Refusal {
        message,
        exception: None,
        field: Some(field.to_string()),
        value: Some(value.clone()),
    };
    match found {
        Some(Found::One(id)) => Ok(*id),
        Some(Found::Missing) | None => Err(refusal(format!(
            "{} with {} '{value}' not found{suffix}",
            r.model, r.field
        ))),
        Some(Found::Many(ids)) => Err(refusal(format!(
            "{} with {} '{value}' is not unique{suffix}: {} records match (ids {})",
            r.model,
            r.field,
            ids.len(),
            ids.iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        Some(Found::Refused(odoo)) => Err(Refusal {
            message: format!(
                "looking up {} by {} '{value}': {}",
                r.model, r.field, odoo.message
            ),
            exception: odoo.exception.clone(),
            field: Some(field.to_string()),
            value: Some(value.clone()),
        }),
    }
}

/// What a batch did, record by record.
#[derive(Debug, Default)]
struct Outcome {
    applied: Vec<Tag>,
    failed: Vec<(Tag, RecordFailure)>,
    /// Not sent: their file was stopped by `fail_file`.
    skipped: Vec<Tag>,
    /// set_stock: (file, (product, location)) of every line whose product and location are known.
    seen: Vec<(usize, (i64, i64))>,
    /// set_stock: files with a line whose product or location could not be looked up.
    unresolved: Vec<usize>,
}

impl Outcome {
    fn extend(&mut self, other: Outcome) {
        self.applied.extend(other.applied);
        self.failed.extend(other.failed);
        self.skipped.extend(other.skipped);
        self.seen.extend(other.seen);
        self.unresolved.extend(other.unresolved);
    }
}

fn merge(out: Outcome, results: &mut [FileResult]) {
    for tag in out.applied {
        if tag.record > 0 {
            results[tag.file].applied.push(tag.record);
        }
    }
    for (tag, failure) in out.failed {
        results[tag.file].failed.push(failure);
    }
}

/// Per file and batch, for the ledger.
#[derive(Debug, Default)]
struct Counts {
    records: u64,
    refused: u64,
    skipped: u64,
    zeroed: u64,
}

impl Counts {
    fn outcome(&self) -> String {
        let mut parts = Vec::new();
        if self.refused > 0 {
            parts.push(format!("{} refused", self.refused));
        }
        if self.skipped > 0 {
            parts.push(format!("{} not sent (fail_file)", self.skipped));
        }
        if parts.is_empty() {
            "ok".into()
        } else {
            parts.join(", ")
        }
    }

    fn snapshot_outcome(&self) -> String {
        let mut text = format!("snapshot: {} set to 0", self.zeroed);
        if self.refused > 0 || self.skipped > 0 {
            text = format!("{text}, {}", self.outcome());
        }
        text
    }
}

fn tally(out: &Outcome, counts: &mut BTreeMap<usize, Counts>) {
    for (tag, _) in &out.failed {
        counts.entry(tag.file).or_default().refused += 1;
    }
    for tag in &out.skipped {
        counts.entry(tag.file).or_default().skipped += 1;
    }
}

/// Which files `fail_file` stopped.
#[derive(Debug, Clone)]
struct Guard {
    fail_file: bool,
    stopped: BTreeSet<usize>,
}

impl Guard {
    fn is_stopped(&self, file: usize) -> bool {
        self.stopped.contains(&file)
    }

    /// Every one of `tags` refused for the same reason: a read Odoo refused as a whole.
    fn fail_all(&mut self, tags: impl IntoIterator<Item = Tag>, e: &OdooError, out: &mut Outcome) {
        let refusal = Refusal::odoo(e);
        for tag in tags {
            self.fail(tag, refusal.clone(), out);
        }
    }

    fn fail(&mut self, tag: Tag, r: Refusal, out: &mut Outcome) {
        let message = match &tag.zero {
            Some(what) => format!("{what}: {}", r.message),
            None => r.message,
        };
        if self.fail_file {
            self.stopped.insert(tag.file);
        }
        let failure = RecordFailure {
            record: tag.record,
            line: tag.line,
            field: r.field,
            value: r.value,
            message,
            exception: r.exception,
        };
        out.failed.push((tag, failure));
    }

    /// The items whose file still goes on; the others are counted as not sent.
    fn keep<T>(&self, items: Vec<(Tag, T)>, out: &mut Outcome) -> Vec<(Tag, T)> {
        let (keep, stopped): (Vec<_>, Vec<_>) = items
            .into_iter()
            .partition(|(tag, _)| !self.is_stopped(tag.file));
        out.skipped.extend(stopped.into_iter().map(|(tag, _)| tag));
        keep
    }
}

/// set_stock across the batches of one call: what each file listed and applied.
struct StockSeen {
    /// Per file: (product, location) of its lines.
    present: Vec<BTreeSet<(i64, i64)>>,
    /// Per file: the locations of its lines.
    locations: Vec<BTreeSet<i64>>,
    /// Per file: (product, location) it applied.
    applied: Vec<BTreeSet<(i64, i64)>>,
    /// Per file: a line could not be looked up, so the file's snapshot is not known whole.
    incomplete: Vec<bool>,
}

impl StockSeen {
    fn new(files: usize) -> StockSeen {
        StockSeen {
            present: vec![BTreeSet::new(); files],
            locations: vec![BTreeSet::new(); files],
            applied: vec![BTreeSet::new(); files],
            incomplete: vec![false; files],
        }
    }

    fn note(&mut self, out: &Outcome) {
        for &(file, (product, location)) in &out.seen {
            self.present[file].insert((product, location));
            self.locations[file].insert(location);
        }
        for &file in &out.unresolved {
            self.incomplete[file] = true;
        }
        for tag in &out.applied {
            if let Some(pair) = tag.quant {
                self.applied[tag.file].insert(pair);
            }
        }
    }
}

/// The next batch: up to `size` operations in file order, of files not stopped, with no key
/// twice (a repeated key waits for a later batch, so the last record of a key wins).
fn next_batch(
    queue: &mut VecDeque<At>,
    files: &[&[Operation]],
    guard: &Guard,
    size: usize,
) -> Vec<At> {
    let mut batch = Vec::new();
    let mut keys = BTreeSet::new();
    let mut waiting = Vec::new();
    // A file repeating one key thousands of times must not make every batch rescan it all.
    let mut budget = size.saturating_mul(8).max(64);
    while batch.len() < size && budget > 0 {
        let Some(at) = queue.pop_front() else { break };
        if guard.is_stopped(at.file) {
            continue;
        }
        budget -= 1;
        let op = &files[at.file][at.op];
        // As compared in Odoo: "12" and 12 are one key.
        let key: BTreeMap<&String, String> =
            op.key.iter().map(|(k, v)| (k, atom(Some(v)))).collect();
        if keys.insert(format!("{key:?}")) {
            batch.push(at);
        } else {
            waiting.push(at);
        }
    }
    for at in waiting.into_iter().rev() {
        queue.push_front(at);
    }
    batch
}

/// How one call of [`send_split`] went when Odoo answered.
enum Sent {
    Applied,
    /// Nothing applied; these items (index in the chunk) are at fault (`load` messages).
    Rows(Vec<(usize, Refusal)>),
    /// Nothing applied, and Odoo did not say which item is at fault.
    Whole(Refusal),
}

/// Sends `items` with `send`; a chunk Odoo refuses as bad data is split in halves until the
/// bad items are alone, and those fail. Items of files stopped meanwhile are not sent.
async fn send_split<T>(
    items: Vec<(Tag, T)>,
    g: &mut Guard,
    out: &mut Outcome,
    mut send: impl AsyncFnMut(&[(Tag, T)]) -> Result<Sent, OdooError>,
) -> Result<(), OdooError> {
    let mut stack = vec![items];
    while let Some(chunk) = stack.pop() {
        let mut chunk = g.keep(chunk, out);
        if chunk.is_empty() {
            continue;
        }
        let refusal = match send(&chunk).await {
            Ok(Sent::Applied) => {
                out.applied.extend(chunk.into_iter().map(|(tag, _)| tag));
                continue;
            }
            Ok(Sent::Rows(rows)) => {
                let mut bad: BTreeMap<usize, Refusal> = BTreeMap::new();
                for (i, r) in rows {
                    bad.entry(i).or_insert(r);
                }
                let mut rest = Vec::new();
                for (i, item) in chunk.into_iter().enumerate() {
                    match bad.remove(&i) {
                        Some(r) => g.fail(item.0, r, out),
                        None => rest.push(item),
                    }
                }
                if !rest.is_empty() {
                    stack.push(rest);
                }
                continue;
            }
            Ok(Sent::Whole(r)) => r,
            Err(e) if e.consequence() == Consequence::Reject => Refusal::odoo(&e),
            Err(e) => return Err(e),
        };
        if chunk.len() == 1 {
            let (tag, _) = chunk.pop().expect("one item");
            g.fail(tag, refusal, out);
        } else {
            let right = chunk.split_off(chunk.len() / 2);
            stack.push(right);
            stack.push(chunk);
        }
    }
    Ok(())
}

/// A refused `load`: the rows its messages name, or the whole chunk when they name none.
fn load_refusals(messages: &[crate::odoo::client::LoadMessage], rows: usize) -> Sent {
    let errors: Vec<_> = messages.iter().filter(|m| m.kind == "error").collect();
    let named: Vec<(usize, Refusal)> = errors
        .iter()
        .filter_map(|m| {
            let i = usize::try_from(m.record?).ok().filter(|&i| i < rows)?;
            Some((
                i,
                Refusal {
                    message: m.message.clone(),
                    exception: None,
                    field: m.field.clone().filter(|f| f != ".id"),
                    value: None,
                },
            ))
        })
        .collect();
    if !named.is_empty() {
        return Sent::Rows(named);
    }
    let message = errors
        .iter()
        .map(|m| m.message.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    Sent::Whole(Refusal {
        message: if message.is_empty() {
            "Odoo's import refused the records without saying why".into()
        } else {
            message
        },
        exception: None,
        field: None,
        value: None,
    })
}

// -- reading Odoo's answers ----------------------------------------------------------------

/// A field as `fields_get` describes it.
#[derive(Debug, Clone, PartialEq)]
struct FieldInfo {
    ty: String,
    /// Decimal places Odoo rounds a float to when it stores it.
    digits: Option<u32>,
}

impl FieldInfo {
    fn parse(v: &Value) -> FieldInfo {
        FieldInfo {
            ty: v
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            digits: v
                .get("digits")
                .and_then(Value::as_array)
                .and_then(|d| d.get(1))
                .and_then(Value::as_u64)
                .and_then(|d| u32::try_from(d).ok()),
        }
    }

    fn numeric(&self) -> bool {
        matches!(self.ty.as_str(), "float" | "integer" | "monetary")
    }
}

fn record_id(rec: &Vals) -> Option<i64> {
    rec.get("id").and_then(Value::as_i64)
}

/// A many2one as read (`[id, name]`) or as written (an id).
fn many2one_id(v: &Value) -> Option<i64> {
    match v {
        Value::Array(a) => a.first().and_then(Value::as_i64),
        other => other.as_i64(),
    }
}

/// A many2one's name as read, for messages.
fn display(v: &Value) -> String {
    match v {
        Value::Array(a) => a.get(1).map(text).unwrap_or_default(),
        other => text(other),
    }
}

fn is_set(v: Option<&Value>) -> bool {
    !matches!(v, None | Some(Value::Null) | Some(Value::Bool(false)))
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A value as text: what a lookup matches and what messages show.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 1e15 => (f as i64).to_string(),
            _ => n.to_string(),
        },
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// One key field's value as compared: many2one by id, empty as "".
fn atom(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => String::new(),
        Some(Value::Array(a)) => a.first().map(text).unwrap_or_default(),
        Some(other) => text(other),
    }
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

/// The values of `vals` that differ from the record as Odoo has it.
fn changes(vals: &Vals, current: &Vals, info: &HashMap<String, Option<FieldInfo>>) -> Vals {
    vals.iter()
        .filter(|(field, desired)| match current.get(*field) {
            Some(now) => !same(desired, now, info.get(*field).and_then(Option::as_ref)),
            None => true,
        })
        .map(|(field, desired)| (field.clone(), desired.clone()))
        .collect()
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Whether the `desired` value is what Odoo already has (`current`, as read): a many2one
/// reads `[id, name]`, empty values read `false`, floats come back rounded to their field's
/// digits, and a numeric field reads 0 where `false` was written.
fn same(desired: &Value, current: &Value, info: Option<&FieldInfo>) -> bool {
    let numeric = info.is_some_and(FieldInfo::numeric);
    let many2one = info.is_none_or(|i| i.ty == "many2one");
    let current = match current {
        Value::Array(a) if many2one && a.len() == 2 && a[0].is_i64() && a[1].is_string() => &a[0],
        other => other,
    };
    if numeric {
        let as_number = |v: &Value| if is_empty(v) { Some(0.0) } else { number(v) };
        if let (Some(a), Some(b)) = (as_number(desired), as_number(current)) {
            return same_float(a, b, info.and_then(|i| i.digits));
        }
    }
    if is_empty(desired) || is_empty(current) {
        return is_empty(desired) && is_empty(current);
    }
    match (desired, current) {
        (Value::Number(_), Value::Number(_)) => match (number(desired), number(current)) {
            (Some(a), Some(b)) => same_float(a, b, info.and_then(|i| i.digits)),
            _ => false,
        },
        (Value::Array(a), Value::Array(b)) => {
            let ids = |list: &[Value]| {
                let mut ids: Vec<String> = list.iter().map(text).collect();
                ids.sort();
                ids
            };
            ids(a) == ids(b)
        }
        (Value::String(_), Value::String(_)) | (Value::Bool(_), Value::Bool(_)) => {
            desired == current
        }
        // A number mapped into a text field, a text into a number field: as Odoo shows them.
        (Value::Number(_) | Value::String(_), Value::Number(_) | Value::String(_)) => {
            match (number(desired), number(current)) {
                (Some(a), Some(b)) => same_float(a, b, info.and_then(|i| i.digits)),
                _ => text(desired) == text(current),
            }
        }
        _ => desired == current,
    }
}

/// Equal once each side is rounded half-up to `digits` decimals, as Odoo stores them (its
/// `float_compare`), or equal up to float noise when the precision is unknown.
fn same_float(a: f64, b: f64, digits: Option<u32>) -> bool {
    match digits {
        Some(d) => {
            let scale = 10f64.powi(d.min(15) as i32);
            // Odoo's `float_round` nudges by an epsilon so that 2.675 rounds to 2.68.
            let round = |x: f64| {
                let scaled = x * scale;
                (scaled + scaled.signum() * f64::EPSILON * scaled.abs().max(1.0) * 16.0).round()
            };
            round(a) == round(b)
        }
        None => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
    }
}

/// Whether a timed-out call was a `create` (whose work may still commit in Odoo).
fn timed_out_call_creates(e: &OdooError) -> bool {
    matches!(e, OdooError::Timeout { call, .. } if call.ends_with(".create"))
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

/// Like [`text`] but keeps every digit of a float.
fn text_exact(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        other => text(other),
    }
}

const QUANT_FIELDS: &[&str] = &[
    "product_id",
    "location_id",
    "lot_id",
    "package_id",
    "owner_id",
    "quantity",
];

fn quant_key(q: &Vals) -> Option<QuantKey> {
    Some(QuantKey {
        product: q.get("product_id").and_then(many2one_id)?,
        location: q.get("location_id").and_then(many2one_id)?,
        lot: q.get("lot_id").and_then(many2one_id),
    })
}

/// `stock.quant` `create` values that set the on-hand quantity in the same call (with
/// [`inventory_mode`]): Odoo reuses the quant of that product, location and lot.
fn quant_vals(key: QuantKey, quantity: f64, package: Option<i64>, owner: Option<i64>) -> Vals {
    let mut vals = Vals::new();
    vals.insert("product_id".into(), json!(key.product));
    vals.insert("location_id".into(), json!(key.location));
    if let Some(lot) = key.lot {
        vals.insert("lot_id".into(), json!(lot));
    }
    if let Some(package) = package {
        vals.insert("package_id".into(), json!(package));
    }
    if let Some(owner) = owner {
        vals.insert("owner_id".into(), json!(owner));
    }
    vals.insert("inventory_quantity_auto_apply".into(), json!(quantity));
    vals
}

fn inventory_mode() -> Args {
    let mut context = Args::new();
    context.insert("inventory_mode".into(), json!(true));
    context
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_compare_as_odoo_rounds_them() {
        assert!(same_float(2.675, 2.68, Some(2)), "2.675 is stored as 2.68");
        assert!(same_float(1.005, 1.01, Some(2)));
        assert!(!same_float(2.674, 2.68, Some(2)));
        assert!(same_float(12.0, 12.000_000_000_01, None));
        assert!(!same_float(12.0, 12.01, None));
    }
    use crate::operation::ActionKind;

    fn info(ty: &str, digits: Option<u32>) -> FieldInfo {
        FieldInfo {
            ty: ty.into(),
            digits,
        }
    }

    #[test]
    fn values_compare_as_odoo_reads_them() {
        let m2o = info("many2one", None);
        assert!(same(&json!(3), &json!([3, "Units"]), Some(&m2o)));
        assert!(!same(&json!(4), &json!([3, "Units"]), Some(&m2o)));
        // Without a description a [id, name] pair still reads as a many2one.
        assert!(same(&json!(3), &json!([3, "Units"]), None));
        let price = info("float", Some(2));
        assert!(same(&json!(12.345), &json!(12.35), Some(&price)));
        assert!(!same(&json!(12.36), &json!(12.35), Some(&price)));
        assert!(same(&json!(3), &json!(3.0), Some(&price)));
        assert!(same(&json!(false), &json!(0.0), Some(&price)));
        assert!(same(&json!(0.1 + 0.2), &json!(0.3), None));
        assert!(!same(&json!(0.31), &json!(0.3), None));
        let text_field = info("char", None);
        assert!(same(&json!(""), &json!(false), Some(&text_field)));
        assert!(same(&json!(null), &json!(false), Some(&text_field)));
        assert!(!same(&json!("x"), &json!(false), Some(&text_field)));
        assert!(same(&json!("123"), &json!("123"), Some(&text_field)));
        assert!(same(&json!(123), &json!("123"), Some(&text_field)));
        let flag = info("boolean", None);
        assert!(same(&json!(false), &json!(false), Some(&flag)));
        assert!(!same(&json!(true), &json!(false), Some(&flag)));
    }

    #[test]
    fn only_changed_fields_are_sent() {
        let described: HashMap<String, Option<FieldInfo>> = [
            ("uom_id".to_string(), Some(info("many2one", None))),
            ("list_price".to_string(), Some(info("float", Some(2)))),
        ]
        .into_iter()
        .collect();
        let desired = json!({"default_code": "A", "name": "New", "uom_id": 1, "list_price": 5.001});
        let current = json!({"id": 9, "default_code": "A", "name": "Old", "uom_id": [1, "Units"], "list_price": 5.0});
        let changed = changes(
            desired.as_object().unwrap(),
            current.as_object().unwrap(),
            &described,
        );
        assert_eq!(Value::Object(changed), json!({"name": "New"}));
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

    fn op(key: &str, record: u64) -> Operation {
        Operation {
            action: ActionKind::Upsert,
            model: "product.product".into(),
            key: json!({"default_code": key}).as_object().unwrap().clone(),
            values: json!({"default_code": key}).as_object().unwrap().clone(),
            lookups: BTreeMap::new(),
            record,
            line: record,
        }
    }

    #[test]
    fn a_repeated_key_waits_for_the_next_batch_in_file_order() {
        let a = [op("A", 1), op("B", 2), op("A", 3), op("C", 4)];
        let b = [op("A", 1), op("D", 2)];
        let files: Vec<&[Operation]> = vec![&a, &b];
        let mut queue: VecDeque<At> = files
            .iter()
            .enumerate()
            .flat_map(|(file, ops)| (0..ops.len()).map(move |op| At { file, op }))
            .collect();
        let guard = Guard {
            fail_file: false,
            stopped: BTreeSet::new(),
        };
        let first = next_batch(&mut queue, &files, &guard, 10);
        let at = |file, op| At { file, op };
        assert_eq!(first, vec![at(0, 0), at(0, 1), at(0, 3), at(1, 1)]);
        let second = next_batch(&mut queue, &files, &guard, 10);
        assert_eq!(second, vec![at(0, 2)]);
        let third = next_batch(&mut queue, &files, &guard, 10);
        assert_eq!(third, vec![at(1, 0)]);
        assert!(next_batch(&mut queue, &files, &guard, 10).is_empty());

        // A key written as text or as a number is the same key in Odoo.
        let mut numeric = op("12", 2);
        numeric.key["default_code"] = json!(12);
        let c = [op("12", 1), numeric];
        let files: Vec<&[Operation]> = vec![&c];
        let mut queue: VecDeque<At> = [at(0, 0), at(0, 1)].into_iter().collect();
        assert_eq!(next_batch(&mut queue, &files, &guard, 10), vec![at(0, 0)]);
        assert_eq!(next_batch(&mut queue, &files, &guard, 10), vec![at(0, 1)]);
    }

    #[test]
    fn stopped_files_are_left_out_of_batches() {
        let a = [op("A", 1), op("B", 2)];
        let b = [op("C", 1)];
        let files: Vec<&[Operation]> = vec![&a, &b];
        let mut queue: VecDeque<At> = [
            At { file: 0, op: 0 },
            At { file: 0, op: 1 },
            At { file: 1, op: 0 },
        ]
        .into_iter()
        .collect();
        let guard = Guard {
            fail_file: true,
            stopped: BTreeSet::from([0]),
        };
        assert_eq!(
            next_batch(&mut queue, &files, &guard, 10),
            vec![At { file: 1, op: 0 }]
        );
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

    #[test]
    fn a_load_refusal_names_its_rows_or_the_whole_chunk() {
        use crate::odoo::client::LoadMessage;
        let message = |record, text: &str| LoadMessage {
            kind: "error".into(),
            record,
            field: Some("list_price".into()),
            message: text.into(),
        };
        match load_refusals(&[message(Some(1), "bad price")], 3) {
            Sent::Rows(rows) => {
                assert_eq!(rows.len(), 1);
                assert_eq!(rows[0].0, 1);
                assert_eq!(rows[0].1.message, "bad price");
                assert_eq!(rows[0].1.field.as_deref(), Some("list_price"));
            }
            _ => panic!("the row should be named"),
        }
        match load_refusals(&[message(None, "no row")], 3) {
            Sent::Whole(r) => assert_eq!(r.message, "no row"),
            _ => panic!("no row named: the whole chunk is refused"),
        }
    }

    #[test]
    fn lookup_messages_name_the_model_field_and_value() {
        let r = LookupRef {
            model: "uom.uom".into(),
            field: "name".into(),
            value: json!("Boxes"),
        };
        let e = resolved(Some(&Found::Missing), "uom_id", &r, "").unwrap_err();
        assert_eq!(e.message, "uom.uom with name 'Boxes' not found");
        assert_eq!(e.field.as_deref(), Some("uom_id"));
        assert_eq!(e.value.as_deref(), Some("Boxes"));
        let e = resolved(Some(&Found::Many(vec![3, 7])), "uom_id", &r, "").unwrap_err();
        assert_eq!(
            e.message,
            "uom.uom with name 'Boxes' is not unique: 2 records match (ids 3, 7)"
        );
        assert_eq!(resolved(Some(&Found::One(4)), "uom_id", &r, "").unwrap(), 4);
    }
}
