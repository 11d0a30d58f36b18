//! The actions that apply operations in Odoo: `upsert`, `set_stock` and `confirm_delivery`
//! (see [its module](delivery) for its calls), in batches shared by
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
//!
//! One module per step: `batch` forms the batches and sends them (splitting a refused one,
//! counting what each record became), `upsert` and `stock` apply the two actions, `lookup`
//! resolves the references of operations to ids once per run, and `compare` tells whether a
//! value is already what Odoo stores.

mod batch;
mod compare;
mod delivery;
mod lookup;
mod stock;
mod upsert;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use serde_json::{Map, Value};

use crate::config::OnRecordError;
use crate::mapping::config::{Action, ConfirmDeliveryMapping, Mapping, Snapshot, UpsertMapping};
use crate::odoo::client::OdooClient;
use crate::odoo::error::OdooError;
use crate::operation::Operation;

use batch::{At, Counts, Guard, Outcome, merge, next_batch, tally};
use compare::FieldInfo;
use delivery::DeliveryFields;
use lookup::Found;
use stock::StockSeen;

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
    /// The caches sit in cells so that batches sent side by side share them; no borrow is
    /// held across a call to Odoo.
    lookups: RefCell<HashMap<(String, String), HashMap<String, Found>>>,
    /// Lots are looked up per product: (model, field, product id, value as text).
    lots: RefCell<HashMap<(String, String, i64, String), Found>>,
    /// set_stock: product id → its `tracking` (`none`, `lot`, `serial`).
    tracking: RefCell<HashMap<i64, String>>,
    /// model → field → type and precision (`None`: Odoo did not describe it).
    fields: RefCell<HashMap<String, HashMap<String, Option<FieldInfo>>>>,
    /// set_stock: locations whose descendants are known, and each known location's parent.
    expanded: RefCell<BTreeSet<i64>>,
    parents: RefCell<HashMap<i64, i64>>,
    /// confirm_delivery: the move and picking fields of this Odoo.
    delivery: DeliveryFields,
    /// Batches sent at once (`[odoo] max_concurrency`), where that keeps the outcome the same.
    lanes: usize,
}

impl<'a> Applier<'a> {
    /// An applier for one run: `batch_size` operations per batch (at least 1).
    pub fn new(client: &'a OdooClient, batch_size: usize) -> Applier<'a> {
        Applier {
            client,
            batch_size: batch_size.max(1),
            updates: UpdateMethod::default(),
            lookups: RefCell::default(),
            lots: RefCell::default(),
            tracking: RefCell::default(),
            fields: RefCell::default(),
            expanded: RefCell::default(),
            parents: RefCell::default(),
            delivery: DeliveryFields::default(),
            lanes: 1,
        }
    }

    /// Sends up to `lanes` batches at once (`[odoo] max_concurrency`) where that cannot change
    /// the outcome: upserts under `on_record_error = "skip"` whose lookups name other models.
    /// Batches sent together never share a key, so the later record of a key still comes last.
    pub fn with_lanes(mut self, lanes: usize) -> Self {
        self.lanes = lanes.max(1);
        self
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
        let mut all_stay = |_: &[usize]| BTreeSet::new();
        self.apply_guarded(mapping, files, on_record_error, &mut all_stay, progress)
            .await
    }

    /// [`Applier::apply`], with `before` asked before every batch is sent (and before a full
    /// snapshot's zeroing): given the files whose records the batch carries, it answers the
    /// files that must leave (their claim is lost, or their ledger could not record it).
    /// Nothing more of those files is sent, this batch or later; their results are partial.
    pub async fn apply_guarded(
        &mut self,
        mapping: &Mapping,
        files: &[&[Operation]],
        on_record_error: OnRecordError,
        before: &mut dyn FnMut(&[usize]) -> BTreeSet<usize>,
        progress: &mut dyn FnMut(BatchDone),
    ) -> Result<Vec<FileResult>, OdooError> {
        let mut run = ApplyRun::new(mapping, files.len(), on_record_error);
        let mut results = self.feed(&mut run, files, before, progress).await?;
        let zeroed = self.finish(run, before, progress).await?;
        for (r, z) in results.iter_mut().zip(zeroed) {
            r.applied.extend(z.applied);
            r.failed.extend(z.failed);
        }
        for r in &mut results {
            r.applied.sort_unstable();
            r.failed.sort_by_key(|f| f.record);
        }
        Ok(results)
    }

    /// Applies one window of the files of a run: `files` holds, per file of the run, its next
    /// operations in file order (empty for a file with none in this window). Windows follow each
    /// other in file order, so the operations of a large file never need to be in memory at
    /// once; what a run knows across windows (files stopped, a full snapshot's stock) stays in
    /// `run`. Returns what this window applied and refused, per file.
    pub async fn feed(
        &mut self,
        run: &mut ApplyRun<'_>,
        files: &[&[Operation]],
        before: &mut dyn FnMut(&[usize]) -> BTreeSet<usize>,
        progress: &mut dyn FnMut(BatchDone),
    ) -> Result<Vec<FileResult>, OdooError> {
        let mut results = vec![FileResult::default(); files.len()];
        let mut queue: VecDeque<At> = files
            .iter()
            .enumerate()
            .flat_map(|(file, ops)| (0..ops.len()).map(move |op| At { file, op }))
            .collect();
        let lanes = if self.side_by_side(&run.work, run.guard.fail_file) {
            self.lanes
        } else {
            1
        };
        loop {
            // One round: up to `lanes` batches taken together, so that no key is in two of them.
            let mut round = next_batch(&mut queue, files, &run.guard, self.batch_size * lanes);
            if round.is_empty() {
                break;
            }
            let carried: BTreeSet<usize> = round.iter().map(|at| at.file).collect();
            let leaving = before(&carried.into_iter().collect::<Vec<_>>());
            if !leaving.is_empty() {
                run.guard.stopped.extend(leaving);
                round.retain(|at| !run.guard.is_stopped(at.file));
                if round.is_empty() {
                    continue;
                }
            }
            let batches: Vec<&[At]> = round.chunks(self.batch_size).collect();
            if batches.len() > 1
                && let Work::Upsert { model, upsert } = &run.work
            {
                // What the batches share is looked up once, before they go out together.
                let ops = || batches.iter().flat_map(|b| tagged(files, b));
                self.resolve(ops().flat_map(|(_, op)| op.lookups.values()), false)
                    .await?;
                let mut described: BTreeSet<&str> = upsert.key.iter().map(String::as_str).collect();
                described.extend(upsert.fields.iter().map(|f| f.field.as_str()));
                self.describe(model, &described).await?;
            }
            let sent = futures::future::try_join_all(
                batches
                    .iter()
                    .map(|batch| self.run_batch(&run.work, files, batch, &run.guard)),
            )
            .await?;
            for (batch, (out, after)) in batches.iter().zip(sent) {
                run.batch_no += 1;
                run.guard.stopped.extend(after.stopped);
                let mut counts: BTreeMap<usize, Counts> = BTreeMap::new();
                for at in batch.iter() {
                    counts.entry(at.file).or_default().records += 1;
                }
                tally(&out, &mut counts);
                for (file, c) in counts {
                    progress(BatchDone {
                        file,
                        batch_no: run.batch_no,
                        records: c.records,
                        outcome: c.outcome(),
                    });
                }
                run.stock.note(&out);
                merge(out, &mut results);
            }
        }
        Ok(results)
    }

    /// Ends a run after its last window: a full snapshot sets what no file listed to 0. Returns
    /// what that did, per file.
    pub async fn finish(
        &mut self,
        mut run: ApplyRun<'_>,
        before: &mut dyn FnMut(&[usize]) -> BTreeSet<usize>,
        progress: &mut dyn FnMut(BatchDone),
    ) -> Result<Vec<FileResult>, OdooError> {
        let mut results = vec![FileResult::default(); run.files];
        if let Work::Stock {
            snapshot: Snapshot::Full,
        } = run.work
        {
            let going_on: Vec<usize> = (0..run.files)
                .filter(|f| !run.guard.is_stopped(*f))
                .collect();
            if !going_on.is_empty() {
                run.guard.stopped.extend(before(&going_on));
            }
            self.zero_absent(
                &run.stock,
                &mut run.guard,
                &mut results,
                &mut run.batch_no,
                progress,
            )
            .await?;
        }
        Ok(results)
    }

    /// Whether batches of `work` may go out side by side without changing what is applied:
    /// not for set_stock (a location's total depends on the lines of its child locations), not
    /// under `fail_file` (a refused record stops what follows it), and not for an upsert that
    /// looks up its own model (a record may name one an earlier batch creates).
    fn side_by_side(&self, work: &Work<'_>, fail_file: bool) -> bool {
        match work {
            Work::Upsert { model, upsert } => {
                !fail_file
                    && !upsert
                        .fields
                        .iter()
                        .any(|f| f.lookup.as_ref().is_some_and(|l| l.model == *model))
            }
            Work::Stock { .. } | Work::Delivery(_) => false,
        }
    }

    /// Whether a file of the run has stopped (`fail_file` after a refused record, or it had to
    /// leave): nothing more of it is sent, so its next operations need not be read.
    pub fn is_stopped(run: &ApplyRun<'_>, file: usize) -> bool {
        run.guard.is_stopped(file)
    }

    /// One batch of `work`, by the action's own step.
    async fn work(
        &self,
        work: &Work<'_>,
        files: &[&[Operation]],
        batch: &[At],
        g: &mut Guard,
    ) -> Result<Outcome, OdooError> {
        match work {
            Work::Upsert { model, upsert } => self.upsert(model, upsert, files, batch, g).await,
            Work::Stock { .. } => self.set_stock(files, batch, g).await,
            Work::Delivery(confirm) => self.confirm_delivery(confirm, files, batch, g).await,
        }
    }
}

// The vocabulary every step shares: what is done, to which record, and why a record was
// refused before it becomes a `RecordFailure`.

/// One application of several files of a flow, fed a window at a time
/// ([`Applier::feed`], then [`Applier::finish`]): what is known across windows.
pub struct ApplyRun<'m> {
    work: Work<'m>,
    files: usize,
    guard: Guard,
    stock: StockSeen,
    batch_no: u32,
}

impl<'m> ApplyRun<'m> {
    /// A run over `files` files with `mapping` (one flow, one mapping).
    pub fn new(mapping: &'m Mapping, files: usize, on_record_error: OnRecordError) -> Self {
        let work = match &mapping.action {
            Action::Upsert(upsert) => Work::Upsert {
                model: &mapping.model,
                upsert,
            },
            Action::SetStock(stock) => Work::Stock {
                snapshot: stock.snapshot,
            },
            Action::ConfirmDelivery(confirm) => Work::Delivery(confirm),
        };
        ApplyRun {
            work,
            files,
            guard: Guard {
                fail_file: on_record_error == OnRecordError::FailFile,
                stopped: BTreeSet::new(),
            },
            stock: StockSeen::new(files),
            batch_no: 0,
        }
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
    Delivery(&'m ConfirmDeliveryMapping),
}

/// A record's values, as sent to Odoo or read from it.
type Vals = Map<String, Value>;

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
    /// The tag of operation `op` of file `file`.
    fn of(file: usize, op: &Operation) -> Tag {
        Tag {
            file,
            record: op.record,
            line: op.line,
            quant: None,
            zero: None,
        }
    }

    /// The tag of a quant a full snapshot of file `file` sets to 0; `what` names it.
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

/// The operations of `batch`, each with the tag it reports under.
fn tagged<'o>(files: &[&'o [Operation]], batch: &[At]) -> Vec<(Tag, &'o Operation)> {
    batch
        .iter()
        .map(|at| {
            let op = &files[at.file][at.op];
            (Tag::of(at.file, op), op)
        })
        .collect()
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
    /// Odoo's refusal, with its message and exception name.
    fn odoo(e: &OdooError) -> Refusal {
        Refusal {
            message: e.message().map_or_else(|| e.to_string(), str::to_string),
            exception: e.exception_name().map(str::to_string),
            field: None,
            value: None,
        }
    }

    /// A refusal of edi-bridge's own, about `field`.
    fn ours(message: String, field: &str) -> Refusal {
        Refusal {
            message,
            exception: None,
            field: Some(field.to_string()),
            value: None,
        }
    }
}
