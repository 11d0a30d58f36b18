//! The actions that apply operations in Odoo: `upsert` and `set_stock`, in batches shared by
//! the files of a pass, idempotent, with lookups resolved once per run.

use crate::config::{Mapping, OnRecordError};
use crate::odoo::client::OdooClient;
use crate::odoo::error::OdooError;
use crate::operation::Operation;

/// A record Odoo (or a lookup) refused.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordFailure {
    /// 1-based record number in its file.
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
    /// Records of that file in the batch.
    pub records: u64,
    /// `ok`, or e.g. `2 refused`.
    pub outcome: String,
}

/// Applies operations for one run; caches lookups for the run's lifetime.
pub struct Applier<'a> {
    client: &'a OdooClient,
    batch_size: usize,
}

impl<'a> Applier<'a> {
    pub fn new(client: &'a OdooClient, batch_size: usize) -> Applier<'a> {
        Applier { client, batch_size }
    }

    /// Applies the operations of several files of one flow (same mapping), sharing batches.
    /// Returns one result per file, in order. An `Err` is a failure of the whole call sequence
    /// (outage, bad credentials): its `consequence()` says whether the files wait or the flow
    /// stops; nothing is reported per record then.
    pub async fn apply(
        &mut self,
        mapping: &Mapping,
        files: &[&[Operation]],
        on_record_error: OnRecordError,
        progress: &mut dyn FnMut(BatchDone),
    ) -> Result<Vec<FileResult>, OdooError> {
        let _ = (self.client, self.batch_size, mapping, files, on_record_error, progress);
        todo!("odoo::actions::apply")
    }
}
