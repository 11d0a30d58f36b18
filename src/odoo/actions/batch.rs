//! Batches: forming them in file order with no key twice, sending them (a batch Odoo
//! refuses as bad data is split until the bad records are alone, a timed-out one is halved
//! and tried once more), and keeping count of what each record became — per file, for the
//! results and the ledger, and which files `fail_file` stopped.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::compare::atom;
use super::{Applier, FileResult, RecordFailure, Refusal, Tag, Work};
use crate::error::Consequence;
use crate::odoo::error::OdooError;
use crate::operation::Operation;

/// An operation: which file, which index in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct At {
    pub(super) file: usize,
    pub(super) op: usize,
}

/// The next batch: up to `size` operations in file order, of files not stopped, with no key
/// twice (a repeated key waits for a later batch, so the last record of a key wins).
pub(super) fn next_batch(
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

impl<'a> Applier<'a> {
    /// One batch, halved and tried once more after a timeout. The halves start from the
    /// state before the batch and read Odoo again, so what the timed-out call committed is
    /// found, not created twice. A call Odoo is still working on when the halves read is
    /// not seen yet; there is no way to tell from outside, which is why a timeout gets one
    /// retry and then leaves the files waiting.
    pub(super) async fn run_batch(
        &self,
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
}

/// Whether a timed-out call was a `create` (whose work may still commit in Odoo).
fn timed_out_call_creates(e: &OdooError) -> bool {
    matches!(e, OdooError::Timeout { call, .. } if call.ends_with(".create"))
}

/// How one call of [`send_split`] went when Odoo answered.
pub(super) enum Sent {
    Applied,
    /// Nothing applied; these items (index in the chunk) are at fault (`load` messages).
    Rows(Vec<(usize, Refusal)>),
    /// Nothing applied, and Odoo did not say which item is at fault.
    Whole(Refusal),
}

/// Sends `items` with `send`; a chunk Odoo refuses as bad data is split in halves until the
/// bad items are alone, and those fail. Items of files stopped meanwhile are not sent.
pub(super) async fn send_split<T>(
    items: Vec<(Tag, T)>,
    g: &mut Guard,
    out: &mut Outcome,
    mut send: impl AsyncFnMut(&[(Tag, T)]) -> Result<Sent, OdooError>,
) -> Result<(), OdooError> {
    let total = items.len();
    let (mut applied, mut refused_for_access) = (0, 0);
    let mut access: Option<OdooError> = None;
    let mut stack = vec![items];
    while let Some(chunk) = stack.pop() {
        let mut chunk = g.keep(chunk, out);
        if chunk.is_empty() {
            continue;
        }
        let refusal = match send(&chunk).await {
            Ok(Sent::Applied) => {
                applied += chunk.len();
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
            Err(e) if e.consequence() == Consequence::Reject => {
                let refusal = Refusal::odoo(&e);
                if e.is_access_error() && chunk.len() == 1 {
                    refused_for_access += 1;
                    access.get_or_insert(e);
                }
                refusal
            }
            // Configuration (an unknown field, model or method, missing rights): the same
            // for every record, so the batch is not split down and no record is blamed.
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
    // An AccessError on every record of a batch is the user's rights, not the records.
    if total > 1
        && applied == 0
        && refused_for_access == total
        && let Some(e) = access
    {
        return Err(e.into_setup(
            "every record of the batch was refused: give the Odoo user edi-bridge logs in as \
             the rights it needs",
        ));
    }
    Ok(())
}

/// A refused `load`: the rows its messages name, or the whole chunk when they name none.
pub(super) fn load_refusals(messages: &[crate::odoo::client::LoadMessage], rows: usize) -> Sent {
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

/// What a batch did, record by record.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub(super) applied: Vec<Tag>,
    pub(super) failed: Vec<(Tag, RecordFailure)>,
    /// Not sent: their file was stopped by `fail_file`.
    pub(super) skipped: Vec<Tag>,
    /// set_stock: (file, (product, location)) of every line whose product and location are known.
    pub(super) seen: Vec<(usize, (i64, i64))>,
    /// set_stock: files with a line whose product or location could not be looked up.
    pub(super) unresolved: Vec<usize>,
}

impl Outcome {
    pub(super) fn extend(&mut self, other: Outcome) {
        self.applied.extend(other.applied);
        self.failed.extend(other.failed);
        self.skipped.extend(other.skipped);
        self.seen.extend(other.seen);
        self.unresolved.extend(other.unresolved);
    }
}

/// Adds what a batch did to the results of its files (quants set to 0 are not records).
pub(super) fn merge(out: Outcome, results: &mut [FileResult]) {
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
pub(super) struct Counts {
    pub(super) records: u64,
    refused: u64,
    skipped: u64,
    pub(super) zeroed: u64,
}

impl Counts {
    /// The ledger's outcome of a batch: `ok`, or what was refused and not sent.
    pub(super) fn outcome(&self) -> String {
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

    /// The ledger's outcome of a batch of quants a full snapshot sets to 0.
    pub(super) fn snapshot_outcome(&self) -> String {
        let mut text = format!("snapshot: {} set to 0", self.zeroed);
        if self.refused > 0 || self.skipped > 0 {
            text = format!("{text}, {}", self.outcome());
        }
        text
    }
}

/// Counts the refused and the not sent records of `out`, per file.
pub(super) fn tally(out: &Outcome, counts: &mut BTreeMap<usize, Counts>) {
    for (tag, _) in &out.failed {
        counts.entry(tag.file).or_default().refused += 1;
    }
    for tag in &out.skipped {
        counts.entry(tag.file).or_default().skipped += 1;
    }
}

/// Which files `fail_file` stopped.
#[derive(Debug, Clone)]
pub(super) struct Guard {
    pub(super) fail_file: bool,
    pub(super) stopped: BTreeSet<usize>,
}

impl Guard {
    /// Whether `fail_file` stopped `file`: nothing more of it is sent.
    pub(super) fn is_stopped(&self, file: usize) -> bool {
        self.stopped.contains(&file)
    }

    /// Every one of `tags` refused for the same reason: a read Odoo refused as a whole.
    pub(super) fn fail_all(
        &mut self,
        tags: impl IntoIterator<Item = Tag>,
        e: &OdooError,
        out: &mut Outcome,
    ) {
        let refusal = Refusal::odoo(e);
        for tag in tags {
            self.fail(tag, refusal.clone(), out);
        }
    }

    /// The record of `tag` failed for `r` (and its file stops, under `fail_file`).
    pub(super) fn fail(&mut self, tag: Tag, r: Refusal, out: &mut Outcome) {
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
    pub(super) fn keep<T>(&self, items: Vec<(Tag, T)>, out: &mut Outcome) -> Vec<(Tag, T)> {
        let (keep, stopped): (Vec<_>, Vec<_>) = items
            .into_iter()
            .partition(|(tag, _)| !self.is_stopped(tag.file));
        out.skipped.extend(stopped.into_iter().map(|(tag, _)| tag));
        keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::operation::ActionKind;

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
}
