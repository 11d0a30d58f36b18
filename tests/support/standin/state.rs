//! What the stand-in keeps between requests: the options it plays, the database, the id
//! sequences, the faults and constraints a test injected, and the calls it served.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::AtomicUsize;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;

use super::orm::Db;
use super::{Fault, StandinOptions};

pub(crate) struct Shared {
    pub(crate) state: Mutex<StandinState>,
    pub(crate) in_flight: AtomicUsize,
    pub(crate) peak: AtomicUsize,
}

pub(crate) struct FailOnValue {
    pub(crate) model: String,
    pub(crate) field: String,
    pub(crate) value: Value,
    pub(crate) message: String,
}

pub(crate) struct StandinState {
    pub(crate) opts: StandinOptions,
    pub(crate) db: Db,
    /// Next id per model. Outside `db` on purpose: like PostgreSQL sequences, ids consumed by
    /// a rolled-back call stay consumed.
    pub(crate) seq: BTreeMap<String, i64>,
    pub(crate) fails: Vec<FailOnValue>,
    pub(crate) calls: BTreeMap<(String, String), u64>,
    pub(crate) faults: VecDeque<Fault>,
    pub(crate) latency: Duration,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, StandinState> {
        // A panic in one handler must not take every later test call down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the next pending fault if `wanted` accepts it.
    pub(crate) fn take_fault(&self, wanted: impl Fn(Fault) -> bool) -> Option<Fault> {
        let mut st = self.lock();
        match st.faults.front() {
            Some(&f) if wanted(f) => st.faults.pop_front(),
            _ => None,
        }
    }
}

pub(crate) fn bump(st: &mut StandinState, model: &str, method: &str) {
    *st.calls
        .entry((model.to_string(), method.to_string()))
        .or_insert(0) += 1;
}

pub(crate) fn take_fault(st: &mut StandinState, wanted: impl Fn(Fault) -> bool) -> Option<Fault> {
    match st.faults.front() {
        Some(&f) if wanted(f) => st.faults.pop_front(),
        _ => None,
    }
}
