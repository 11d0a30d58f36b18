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
use crate::config::{Flow, ImportFlow};
use crate::error::Consequence;
use crate::mapping::config::Action;
use crate::odoo::actions::{Applier, BatchDone, RecordFailure};
use crate::odoo::client::OdooClient;
use crate::operation::Operation;
use crate::report::{Problem, Stage};

impl Runner {
    /// Applies the operations of every prepared file of a flow, sharing Odoo batches; in a
    /// dry run they are printed instead. `Err((why, stop))`: nothing could be applied — the
    /// files wait; `stop` when a human must fix something (credentials, permissions).
    pub(super) async fn apply(
        &self,
        flow: &Flow,
        import: &ImportFlow,
        prepared: &mut [Prepared],
    ) -> Result<(), (String, bool)> {
        let set_stock = matches!(import.mapping.action, Action::SetStock(_));
        if set_stock {
            self.drop_stale(flow, prepared);
        }
        if self.config.odoo.dry_run {
            // Nothing reaches Odoo, so nothing is recorded as applied: `applied` holds the
            // records a run without dry_run would send.
            let mut out = self.out.lock().expect("output lock");
            for p in prepared.iter_mut() {
                for op in &p.operations {
                    let _ = writeln!(out, "{}", dry_run_line(&flow.name, &p.entry.name, op));
                }
                p.applied = p.operations.iter().map(|op| op.record).collect();
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
        // A file that left the pass sends nothing: its operations are not given to Odoo.
        let files: Vec<&[Operation]> = prepared
            .iter()
            .map(|p| match p.left {
                None => p.operations.as_slice(),
                Some(_) => &[],
            })
            .collect();
        let ids: Vec<i64> = prepared.iter().map(|p| p.rec.id).collect();
        let left: RefCell<BTreeMap<usize, String>> = RefCell::new(BTreeMap::new());
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
        let mut applier = Applier::new(client, self.config.odoo.batch_size);
        let results = applier
            .apply_guarded(
                &import.mapping,
                &files,
                import.on_record_error,
                &mut before_batch,
                &mut record_batch,
            )
            .await
            .map_err(|e| {
                let stop = e.consequence() == Consequence::Stop;
                (format!("Odoo: {e}"), stop)
            })?;
        for (file, why) in left.into_inner() {
            prepared[file].left.get_or_insert(why);
        }
        for (p, result) in prepared.iter_mut().zip(results) {
            if p.left.is_some() {
                continue;
            }
            if !result.failed.is_empty() {
                p.stage = Stage::Odoo;
            }
            p.applied = result.applied;
            p.problems
                .extend(result.failed.into_iter().map(odoo_problem));
            p.problems.sort_by_key(|x| x.record);
        }
        // A file with problems goes from here straight to error/ (its report is written into
        // the ledger first): were it marked applied, a crash now would let the next pass
        // archive it as a success. Left mid-way, it is redone — every action is idempotent.
        for p in prepared
            .iter_mut()
            .filter(|p| p.left.is_none() && p.problems.is_empty())
        {
            let failed = p.records.saturating_sub(p.applied.len() as u64);
            if let Err(e) =
                self.ledger()
                    .applied(p.rec.id, &self.holder, p.applied.len() as u64, failed, None)
            {
                // Never finished on a state that did not commit: the next pass redoes it.
                tracing::error!("ledger: {e}");
                p.left = Some(e.to_string());
            }
        }
        if set_stock {
            self.note_stock_set(flow, prepared);
        }
        crash_point("applied");
        Ok(())
    }

    /// Stock levels are absolute: a line whose stock a newer file of the flow already set is
    /// taken out of its file (the other lines still apply) with a problem naming that file, so
    /// a report that arrives late never sets stock back — unless ops asked for it with
    /// `replay --force-stale`.
    fn drop_stale(&self, flow: &Flow, prepared: &mut [Prepared]) {
        for p in prepared.iter_mut().filter(|p| p.left.is_none()) {
            match self.ledger().is_forced_stale(&flow.name, &p.entry.name) {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    p.left = Some(e.to_string());
                    continue;
                }
            }
            let keys: Vec<String> = p.operations.iter().map(stock_key).collect();
            let newer =
                match self
                    .ledger()
                    .stock_set_after(&flow.name, &keys, p.rec.mtime, &p.entry.name)
                {
                    Ok(newer) if newer.is_empty() => continue,
                    Ok(newer) => newer,
                    Err(e) => {
                        p.left = Some(e.to_string());
                        continue;
                    }
                };
            let had_problems = !p.problems.is_empty();
            let mut kept = Vec::with_capacity(p.operations.len());
            for op in std::mem::take(&mut p.operations) {
                let Some(by) = newer.get(&stock_key(&op)) else {
                    kept.push(op);
                    continue;
                };
                let part = |field: &str| op.key.get(field).map(text).unwrap_or_default();
                let lot = match op.key.get("lot_id") {
                    Some(lot) => format!(", lot {}", text(lot)),
                    None => String::new(),
                };
                let written = jiff::Timestamp::from_second(by.mtime)
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                p.problems.push(
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
            }
            p.operations = kept;
            p.problems.sort_by_key(|x| x.record);
            if !had_problems {
                p.stage = Stage::Stale;
            }
        }
    }

    /// Records which stock keys each applied set_stock file set, for judging older files.
    fn note_stock_set(&self, flow: &Flow, prepared: &[Prepared]) {
        for p in prepared.iter().filter(|p| p.left.is_none()) {
            let applied: BTreeSet<u64> = p.applied.iter().copied().collect();
            let keys: Vec<String> = p
                .operations
                .iter()
                .filter(|op| applied.contains(&op.record))
                .map(stock_key)
                .collect();
            let noted = self
                .ledger()
                .stock_set(&flow.name, p.rec.id, &p.entry.name, p.rec.mtime, &keys)
                .and_then(|()| self.ledger().forced_stale_done(&flow.name, &p.entry.name));
            if let Err(e) = noted {
                tracing::error!(flow = %flow.name, "{}: ledger: {e}", p.entry.name);
            }
        }
    }

    /// The Odoo connection of this run, opened once.
    pub(super) async fn odoo(&self) -> Result<&OdooClient, (String, bool)> {
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
