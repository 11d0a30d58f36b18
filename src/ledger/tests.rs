//! Tests of the ledger as a whole — a file that survives reopening, two processes racing for
//! the same files, a process killed with SIGKILL at any moment — and the helpers the tests of
//! the ledger's parts share.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, params};

use super::schema::RECORD_COLUMNS;
use super::state::clock_ms;
use super::*;

pub(super) const FLOW: &str = "acme-products";
pub(super) const MINUTE: Duration = Duration::from_secs(60);
pub(super) const T0: i64 = 1_800_000_000_000;

pub(super) fn ledger() -> Ledger {
    Ledger::open_in_memory().unwrap()
}

pub(super) fn claim(
    l: &Ledger,
    name: &str,
    size: u64,
    holder: &str,
    now: i64,
) -> Option<FileRecord> {
    l.claim(FLOW, name, size, 1_700_000_000, holder, MINUTE, now)
        .unwrap()
}

/// Takes a claimed attempt all the way to `Failed` (content `sha`).
pub(super) fn fail(l: &Ledger, id: i64, holder: &str, sha: &str, now: i64) -> FileRecord {
    l.fetched(id, holder, sha, now).unwrap();
    l.quarantining(id, holder, "/out/products/error/p.xml", "invalid")
        .unwrap();
    l.failed(id, holder).unwrap()
}

pub(super) fn archive(l: &Ledger, id: i64, holder: &str, sha: &str, now: i64) -> FileRecord {
    l.fetched(id, holder, sha, now).unwrap();
    l.applying(id, holder, 2).unwrap();
    l.batch_done(id, holder, 1, 2, "ok").unwrap();
    l.applied(id, holder, 2, 0, None).unwrap();
    l.archiving(id, holder, "/out/products/archive/p.xml")
        .unwrap();
    l.archived(id, holder).unwrap()
}

#[test]
fn the_state_is_there_after_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edi-bridge.db");
    let id = {
        let l = Ledger::open(&path).unwrap();
        let id = claim(&l, "p.xml", 10, "run-a", T0).unwrap().id;
        l.fetched(id, "run-a", "aa", T0).unwrap();
        l.applying(id, "run-a", 3).unwrap();
        l.batch_done(id, "run-a", 1, 3, "ok").unwrap();
        l.applied(id, "run-a", 3, 0, None).unwrap();
        l.observe(FLOW, "p.xml", 10, 1, T0).unwrap();
        id
    };
    let l = Ledger::open(&path).unwrap();
    let record = l.latest(FLOW, "p.xml").unwrap().unwrap();
    assert_eq!(
        (record.id, record.state, record.sha256.as_deref()),
        (id, State::Applied, Some("aa"))
    );
    assert_eq!(l.batches(id).unwrap().len(), 1);
    assert_eq!(l.observe(FLOW, "p.xml", 10, 1, T0 + 10_000).unwrap(), T0);
    let conn = Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!((mode.as_str(), version), ("wal", MIGRATIONS.len() as i64));
}

#[test]
fn two_processes_racing_for_a_file_never_both_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edi-bridge.db");
    drop(Ledger::open(&path).unwrap());
    let names: Vec<String> = (0..40).map(|i| format!("f{i}.xml")).collect();
    let race = |holder: &'static str| {
        let (path, names) = (path.clone(), names.clone());
        std::thread::spawn(move || {
            // Its own connection, as a second instance on the machine would have.
            let l = Ledger::open(&path).unwrap();
            names
                .iter()
                .filter(|n| claim(&l, n, 1, holder, T0).is_some())
                .count()
        })
    };
    let (a, b) = (race("run-a"), race("run-b"));
    let won = a.join().unwrap() + b.join().unwrap();
    assert_eq!(won, names.len());
    let l = Ledger::open(&path).unwrap();
    for name in &names {
        assert_eq!(
            l.history(FLOW, name).unwrap().len(),
            1,
            "{name} claimed once"
        );
    }
}

// ---- kill -9 -----------------------------------------------------------------------

/// Set in the child process the kill test spawns: the path of the ledger to churn on.
const CHURN_ENV: &str = "EDI_BRIDGE_TEST_CHURN_LEDGER";
const CHURN_FLOW: &str = "churn";

/// Takes files through the ledger as passes would — resuming whatever state it finds,
/// sometimes failing, waiting, or seeing a file change — for `rounds` claims (or forever).
fn churn(l: &Ledger, holder: &str, start: u64, rounds: Option<u64>) {
    let mut i = start;
    while rounds.is_none_or(|r| i < start + r) {
        i += 1;
        let name = format!("f{}.xml", i % 5);
        let size = if i.is_multiple_of(13) { 200 } else { 100 };
        // A lease this short lets the next process take over what this one leaves.
        let lease = Duration::from_millis(1);
        let Some(mut record) = l
            .claim(CHURN_FLOW, &name, size, 1, holder, lease, clock_ms())
            .unwrap()
        else {
            continue;
        };
        let id = record.id;
        let sha = format!("{name}:{size}");
        while !record.state.is_terminal() && record.state != State::Waiting {
            record = match record.state {
                State::Claimed => l.fetched(id, holder, &sha, clock_ms()),
                State::Fetched if i.is_multiple_of(11) => l.waiting(id, holder, "Odoo unreachable"),
                State::Fetched => l.applying(id, holder, 3),
                State::Applying => {
                    for batch in 1..=3 {
                        l.batch_done(id, holder, batch, 1, "ok").unwrap();
                    }
                    if i.is_multiple_of(4) {
                        l.applied(id, holder, 2, 1, Some("1 refused"))
                    } else {
                        l.applied(id, holder, 3, 0, None)
                    }
                }
                State::Applied if record.records_failed == Some(1) => {
                    l.quarantining(id, holder, "/error/f.xml", "1 record refused")
                }
                State::Applied => l.archiving(id, holder, "/archive/f.xml"),
                State::Archiving => l.archived(id, holder),
                State::Quarantining => l.failed(id, holder),
                other => unreachable!("{other} is not resumed"),
            }
            .unwrap();
        }
    }
}

/// The invariants every ledger file must keep, whatever moment a process died at.
fn assert_consistent(path: &Path) {
    let conn = Connection::open(path).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let l = Ledger::open(path).unwrap();
    let rows = l
        .query(
            &format!("SELECT {RECORD_COLUMNS} FROM files ORDER BY id"),
            params![],
        )
        .expect("every row reads back with a known state");
    assert!(!rows.is_empty());
    for r in &rows {
        let later = rows.iter().filter(|o| o.name == r.name && o.id > r.id);
        if !r.state.is_terminal() {
            assert_eq!(
                later.count(),
                0,
                "only the latest attempt at {} is unfinished: {r:?}",
                r.name
            );
        } else {
            assert_eq!(r.lease_until, None, "{r:?}");
        }
        if !matches!(r.state, State::Claimed | State::Abandoned | State::Waiting) {
            assert!(r.sha256.is_some() && r.attempt >= 1, "{r:?}");
        }
        if matches!(r.state, State::Applied | State::Archiving | State::Archived) {
            assert!(r.records_applied.is_some(), "{r:?}");
        }
        if matches!(
            r.state,
            State::Archiving | State::Archived | State::Quarantining | State::Failed
        ) {
            assert!(r.destination.is_some(), "{r:?}");
        }
        if let Some(previous) = r.previous_id {
            let p = rows.iter().find(|o| o.id == previous).unwrap();
            assert!(p.id < r.id && p.sha256 == r.sha256, "{r:?} links to {p:?}");
            assert!(matches!(p.state, State::Archived | State::Failed), "{p:?}");
        }
        assert!(l.batches(r.id).unwrap().len() <= 3);
    }
    let stray: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM files WHERE waiting_from IS NOT NULL AND state <> 'waiting'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stray, 0);
}

/// Also the body of the child process the kill test spawns (then it never ends by itself).
#[test]
fn churn_keeps_the_ledger_consistent() {
    if let Ok(path) = std::env::var(CHURN_ENV) {
        let l = Ledger::open(Path::new(&path)).unwrap();
        let pid = std::process::id();
        churn(&l, &format!("pid-{pid}"), u64::from(pid % 1000), None);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edi-bridge.db");
    let l = Ledger::open(&path).unwrap();
    churn(&l, "run", 0, Some(300));
    assert_consistent(&path);
    let counts = l.counts(CHURN_FLOW).unwrap();
    assert!(counts.archived > 0 && counts.failed > 0 && counts.waiting + counts.archived > 0);
    let replays: i64 = l
        .conn()
        .query_row(
            "SELECT COUNT(*) FROM files WHERE attempt > 1 AND previous_id IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        replays > 0,
        "the same content came back and was numbered as a new attempt"
    );
}

/// The churning child; killed when dropped, so a failing test leaves no process behind.
struct Victim(std::process::Child);

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn kill_9_at_any_moment_leaves_the_ledger_consistent() {
    use std::os::unix::process::ExitStatusExt;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edi-bridge.db");
    drop(Ledger::open(&path).unwrap());
    let rows = || -> i64 {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "busy_timeout", 5000).unwrap();
        conn.query_row(
            "SELECT COUNT(*) + COALESCE(SUM(tries), 0) FROM files",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    for round in 0..4u64 {
        let before = rows();
        let mut child = Victim(
            std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "ledger::tests::churn_keeps_the_ledger_consistent",
                    "--nocapture",
                ])
                .env(CHURN_ENV, &path)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        );
        // Let it get well into its work, then kill it at a different moment each round.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while rows() < before + 40 {
            if let Some(status) = child.0.try_wait().unwrap() {
                let mut err = String::new();
                std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut err).unwrap();
                panic!("the churning child ended by itself ({status}): {err}");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the churning child made no progress"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(3 * round));
        child.0.kill().unwrap(); // SIGKILL
        let status = child.0.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(9),
            "the child was killed, not finished"
        );
        assert_consistent(&path);
    }
    // The next run takes over what the dead ones left and finishes every file.
    let l = Ledger::open(&path).unwrap();
    std::thread::sleep(Duration::from_millis(2)); // every lease the children took has run out
    churn(&l, "after", 0, Some(25));
    assert_consistent(&path);
    for r in l.unfinished(CHURN_FLOW, clock_ms()).unwrap() {
        assert_eq!(
            r.state,
            State::Waiting,
            "left unfinished only on purpose: {r:?}"
        );
    }
}
