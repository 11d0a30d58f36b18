//! Applying the operations of a flow's prepared files in Odoo: one Odoo session per run, records
//! of several files sharing batches, every batch recorded in the ledger as it completes. In a
//! dry run the operations are printed as JSON lines instead, and the ledger is left as it was
//! (a file a dry run looked at is never marked applied).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use serde_json::Value;

use super::claim::Prepared;
use super::pass::{Runner, crash_point, now_ms};
use super::spool::OpsReader;
use crate::config::{Flow, ImportFlow};
use crate::error::Consequence;
use crate::mapping::config::{Action, Snapshot};
use crate::odoo::actions::{Applier, ApplyRun, BatchDone, FileResult, RecordFailure};
use crate::odoo::client::OdooClient;
use crate::odoo::error::OdooError;
use crate::operation::Operation;
use crate::report::{Problem, Stage};

/// Problems kept per file for its report; the rest are counted.
const KEPT_PROBLEMS: usize = 1000;

impl Runner {
    /// Applies the operations of every prepared file of a flow, sharing Odoo batches; in a
    /// dry run they are printed instead. Operations are read back from the spool a window at a
    /// time, so memory stays flat however large the files. `Err((why, stop))`: nothing could
    /// be applied — the files wait; `stop` when a human must fix something (credentials,
    /// permissions).
    pub(super) async fn apply(
        &self,
        flow: &Flow,
        import: &ImportFlow,
        prepared: &mut [Prepared],
    ) -> Result<(), (String, bool)> {
        let set_stock = matches!(import.mapping.action, Action::SetStock(_));
        let forced = self.forced_stale(flow, prepared, set_stock);
        let window_size = (self.config.odoo.batch_size * 10).max(1000);
        let mut readers: Vec<Option<OpsReader>> = prepared
            .iter_mut()
            .map(|p| {
                if p.left.is_some() {
                    return None;
                }
                match OpsReader::open(&p.ops) {
                    Ok(reader) => Some(reader),
                    Err(e) => {
                        p.left = Some(format!("reading its operations back: {e}"));
                        None
                    }
                }
            })
            .collect();
        if self.config.odoo.dry_run {
            // Nothing reaches Odoo, so nothing is recorded as applied: `applied` holds the
            // records a run without dry_run would send.
            let mut out = self.out.lock().expect("output lock");
            for (i, p) in prepared.iter_mut().enumerate() {
                let Some(reader) = readers[i].as_mut() else {
                    continue;
                };
                loop {
                    let mut window = match reader.next_window(window_size) {
                        Ok(window) if window.is_empty() => break,
                        Ok(window) => window,
                        Err(e) => {
                            p.left = Some(format!("reading its operations back: {e}"));
                            break;
                        }
                    };
                    if set_stock && !forced[i] {
                        self.drop_stale(flow, p, &mut window);
                    }
                    for op in &window {
                        let _ = writeln!(out, "{}", dry_run_line(&flow.name, &p.entry.name, op));
                        p.applied.add(op.record);
                    }
                }
            }
            let _ = out.flush();
            return Ok(());
        }
        for p in prepared.iter_mut().filter(|p| p.left.is_none()) {
            if let Err(e) = self.ledger().applying(p.rec.id, &self.holder, p.records) {
                p.left = Some(e.to_string());
            }
        }
        if prepared.iter().all(|p| p.left.is_some()) {
            return Ok(());
        }
        let client = self.odoo().await?;
        let ids: Vec<i64> = prepared.iter().map(|p| p.rec.id).collect();
        // A file that left the pass sends nothing more.
        let left: RefCell<BTreeMap<usize, String>> = RefCell::new(
            prepared
                .iter()
                .enumerate()
                .filter_map(|(i, p)| p.left.clone().map(|why| (i, why)))
                .collect(),
        );
        let lease = self.config.ledger.lease;
        // Before a batch is sent, every file whose records it carries must still be this run's:
        // its claim is renewed in the transaction that checks holder and expiry. A file whose
        // claim is lost (another run may be applying it now) leaves at once.
        let mut before_batch = |carried: &[usize]| {
            let mut left = left.borrow_mut();
            let mut leaving = BTreeSet::new();
            for &file in carried {
                if left.contains_key(&file) {
                    leaving.insert(file);
                    continue;
                }
                if let Err(e) = self
                    .ledger()
                    .renew(ids[file], &self.holder, lease, now_ms())
                {
                    left.insert(file, e.to_string());
                    leaving.insert(file);
                }
            }
            leaving
        };
        // A batch the ledger could not record stops its file: nothing more of it is sent,
        // and it is not finished in this pass.
        let mut record_batch = |done: BatchDone| {
            if let Err(e) = self.ledger().batch_done(
                ids[done.file],
                &self.holder,
                done.batch_no,
                done.records,
                &done.outcome,
            ) {
                tracing::error!("ledger: {e}");
                left.borrow_mut().entry(done.file).or_insert(e.to_string());
            }
            crash_point("batch");
        };
        let odoo_error = |e: OdooError| {
            let stop = e.consequence() == Consequence::Stop;
            (format!("Odoo: {e}"), stop)
        };
        // A resumed attempt skips the records an earlier try applied without a refusal — not
        // for a full snapshot, which must see every line of its file to know what is absent.
        let full_snapshot = matches!(
            &import.mapping.action,
            Action::SetStock(s) if s.snapshot == Snapshot::Full
        );
        let skip_through: Vec<Option<u64>> = prepared
            .iter()
            .map(|p| p.rec.applied_through.filter(|_| !full_snapshot))
            .collect();
        let mut applier = Applier::new(client, self.config.odoo.batch_size)
            .with_lanes(self.config.odoo.max_concurrency);
        let mut run = ApplyRun::new(&import.mapping, prepared.len(), import.on_record_error);
        // Windows in file order: the tail of one file and the head of the next share batches.
        let mut current = 0;
        loop {
            let mut window: Vec<Vec<Operation>> = vec![Vec::new(); prepared.len()];
            let mut filled = 0;
            while current < prepared.len() && filled < window_size {
                let stopped =
                    left.borrow().contains_key(&current) || Applier::is_stopped(&run, current);
                let Some(reader) = readers[current].as_mut().filter(|_| !stopped) else {
                    current += 1;
                    continue;
                };
                match reader.next_window(window_size - filled) {
                    Ok(mut ops) => {
                        filled += ops.len();
                        if let Some(through) = skip_through[current] {
                            let p = &mut prepared[current];
                            ops.retain(|op| {
                                let done = op.record <= through;
                                if done {
                                    p.applied.add(op.record);
                                }
                                !done
                            });
                        }
                        window[current].extend(ops);
                        if reader.is_done() {
                            current += 1;
                        }
                    }
                    Err(e) => {
                        left.borrow_mut()
                            .insert(current, format!("reading its operations back: {e}"));
                        current += 1;
                    }
                }
            }
            if filled == 0 {
                break;
            }
            if set_stock {
                for (i, ops) in window.iter_mut().enumerate() {
                    if !ops.is_empty() && !forced[i] {
                        self.drop_stale(flow, &mut prepared[i], ops);
                    }
                }
            }
            let files: Vec<&[Operation]> = window.iter().map(Vec::as_slice).collect();
            let results = applier
                .feed(&mut run, &files, &mut before_batch, &mut record_batch)
                .await
                .map_err(odoo_error)?;
            for (i, result) in results.into_iter().enumerate() {
                if set_stock && !result.applied.is_empty() {
                    self.note_stock_set(flow, &prepared[i], &window[i], &result.applied);
                }
                // Progress for a resumed try: every record so far applied, none refused.
                let progress = match window[i].last() {
                    Some(last) if result.failed.is_empty() && prepared[i].problems.is_empty() => {
                        Some(last.record)
                    }
                    _ => None,
                };
                take_result(&mut prepared[i], result);
                let gone = left.borrow().contains_key(&i);
                if let Some(record) = progress.filter(|_| !gone)
                    && let Err(e) = self.ledger().applied_through(ids[i], &self.holder, record)
                {
                    left.borrow_mut().insert(i, e.to_string());
                }
            }
            crash_point("window");
        }
        let zeroed = applier
            .finish(run, &mut before_batch, &mut record_batch)
            .await
            .map_err(odoo_error)?;
        for (p, result) in prepared.iter_mut().zip(zeroed) {
            take_result(p, result);
        }
        for (file, why) in left.into_inner() {
            prepared[file].left.get_or_insert(why);
        }
        // A file with problems goes from here straight to error/ (its report is written into
        // the ledger first): were it marked applied, a crash now would let the next pass
        // archive it as a success. Left mid-way, it is redone — every action is idempotent.
        for p in prepared
            .iter_mut()
            .filter(|p| p.left.is_none() && p.problems.is_empty())
        {
            let applied = p.applied.count();
            let failed = p.records.saturating_sub(applied);
            if let Err(e) = self
                .ledger()
                .applied(p.rec.id, &self.holder, applied, failed, None)
            {
                // Never finished on a state that did not commit: the next pass redoes it.
                tracing::error!("ledger: {e}");
                p.left = Some(e.to_string());
            }
        }
        for (i, p) in prepared.iter().enumerate() {
            if forced[i]
                && p.left.is_none()
                && let Err(e) = self.ledger().forced_stale_done(&flow.name, &p.entry.name)
            {
                tracing::error!(flow = %flow.name, "{}: ledger: {e}", p.entry.name);
            }
        }
        crash_point("applied");
        Ok(())
    }

    /// set_stock: per file, whether ops asked to apply it even where it is stale
    /// (`replay --force-stale`). A ledger that cannot tell keeps the file for the next pass.
    fn forced_stale(&self, flow: &Flow, prepared: &mut [Prepared], set_stock: bool) -> Vec<bool> {
        prepared
            .iter_mut()
            .map(|p| {
                if !set_stock || p.left.is_some() {
                    return false;
                }
                match self.ledger().is_forced_stale(&flow.name, &p.entry.name) {
                    Ok(forced) => forced,
                    Err(e) => {
                        p.left = Some(e.to_string());
                        false
                    }
                }
            })
            .collect()
    }

    /// Stock levels are absolute: a line whose stock a newer file of the flow already set is
    /// taken out of its file's window (the other lines still apply) with a problem naming that
    /// file, so a report that arrives late never sets stock back — unless ops asked for it
    /// with `replay --force-stale`.
    fn drop_stale(&self, flow: &Flow, p: &mut Prepared, window: &mut Vec<Operation>) {
        let keys: Vec<String> = window.iter().map(stock_key).collect();
        let newer =
            match self
                .ledger()
                .stock_set_after(&flow.name, &keys, p.rec.mtime, &p.entry.name)
            {
                Ok(newer) if newer.is_empty() => return,
                Ok(newer) => newer,
                Err(e) => {
                    p.left = Some(e.to_string());
                    window.clear();
                    return;
                }
            };
        let had_problems = !p.problems.is_empty();
        window.retain(|op| {
            let Some(by) = newer.get(&stock_key(op)) else {
                return true;
            };
            let part = |field: &str| op.key.get(field).map(text).unwrap_or_default();
            let lot = match op.key.get("lot_id") {
                Some(lot) => format!(", lot {}", text(lot)),
                None => String::new(),
            };
            let written = jiff::Timestamp::from_second(by.mtime)
                .map(|t| t.to_string())
                .unwrap_or_default();
            add_problem(
                p,
                Problem::new(format!(
                    "the stock of {} in {}{lot} was already set by {}, written later \
                     ({written}): this older level is not applied",
                    part("product_id"),
                    part("location_id"),
                    by.name
                ))
                .record(op.record)
                .at(op.line, None)
                .field("product_id")
                .value(part("product_id")),
            );
            false
        });
        if !had_problems {
            p.stage = Stage::Stale;
        }
    }

    /// Records the stock keys a window of a set_stock file set, for judging older files.
    fn note_stock_set(&self, flow: &Flow, p: &Prepared, window: &[Operation], applied: &[u64]) {
        let applied: BTreeSet<u64> = applied.iter().copied().collect();
        let keys: Vec<String> = window
            .iter()
            .filter(|op| applied.contains(&op.record))
            .map(stock_key)
            .collect();
        if let Err(e) =
            self.ledger()
                .stock_set(&flow.name, p.rec.id, &p.entry.name, p.rec.mtime, &keys)
        {
            tracing::error!(flow = %flow.name, "{}: ledger: {e}", p.entry.name);
        }
    }

    /// The Odoo connection of this run, opened once.
    pub(crate) async fn odoo(&self) -> Result<&OdooClient, (String, bool)> {
        self.odoo
            .get_or_try_init(|| async {
                OdooClient::connect(&self.config.odoo).await.map_err(|e| {
                    let stop = e.consequence() == Consequence::Stop;
                    (format!("Odoo: {e}"), stop)
                })
            })
            .await
    }
}

/// A set_stock line's stock key: product, location and lot as the flow's files name them.
fn stock_key(op: &Operation) -> String {
    serde_json::to_string(&op.key).unwrap_or_default()
}

/// A key value as text, without JSON quotes.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One dry-run line: the operation with the flow and file it came from.
pub(super) fn dry_run_line(flow: &str, file: &str, op: &Operation) -> String {
    let mut value = serde_json::to_value(op).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("flow".into(), Value::String(flow.into()));
        map.insert("file".into(), Value::String(file.into()));
    }
    value.to_string()
}

pub(super) fn odoo_problem(f: RecordFailure) -> Problem {
    let mut problem = Problem::new(f.message).record(f.record).at(f.line, None);
    if let Some(field) = f.field {
        problem = problem.field(field);
    }
    if let Some(value) = f.value {
        problem = problem.value(value);
    }
    if let Some(exception) = f.exception {
        problem = problem.exception(exception);
    }
    problem
}

/// What one window (or a full snapshot's zeroing) did to a file: its applied records and its
/// refused ones.
fn take_result(p: &mut Prepared, result: FileResult) {
    for record in result.applied {
        p.applied.add(record);
    }
    if !result.failed.is_empty() {
        p.stage = Stage::Odoo;
    }
    for f in result.failed {
        add_problem(p, odoo_problem(f));
    }
    p.problems
        .sort_by_key(|x| (x.not_listed.is_some(), x.record));
}

/// Keeps the first [`KEPT_PROBLEMS`] problems of a file for its report and counts the rest.
fn add_problem(p: &mut Prepared, problem: Problem) {
    if let Some(more) = p.problems.iter_mut().find(|x| x.not_listed.is_some()) {
        *more = Problem::not_listed(more.not_listed.unwrap_or(0) + 1);
        return;
    }
    if p.problems.len() < KEPT_PROBLEMS {
        p.problems.push(problem);
    } else {
        p.problems.push(Problem::not_listed(1));
    }
}
