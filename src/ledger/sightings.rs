//! Completeness across polls: what the listings showed of each inbox file, and since when its
//! size and mtime have stayed the same. A file is taken only once it has settled; these rows
//! are the memory that lets one listing per poll decide that. They never touch an attempt.

use std::collections::HashSet;

use rusqlite::{OptionalExtension, params};

use super::schema::int;
use super::{Ledger, LedgerError};

/// What the last listings showed of one inbox file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    pub size: u64,
    pub mtime: i64,
    /// Since when (unix ms) size and mtime have stayed as they are.
    pub unchanged_since_ms: i64,
    /// When (unix ms) a listing last showed the file.
    pub last_seen_ms: i64,
}

impl Ledger {
    /// Records a listing of (flow, name) with this size and mtime; returns since when (unix ms)
    /// it has been seen unchanged.
    pub fn observe(
        &self,
        flow: &str,
        name: &str,
        size: u64,
        mtime: i64,
        now_ms: i64,
    ) -> Result<i64, LedgerError> {
        self.write(|tx| {
            let seen: Option<(i64, i64, i64)> = tx
                .query_row(
                    "SELECT size, mtime, unchanged_since_ms FROM sightings \
                     WHERE flow = ?1 AND name = ?2",
                    params![flow, name],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let since = match seen {
                Some((s, m, since)) if s == int(size) && m == mtime => since,
                _ => now_ms,
            };
            tx.execute(
                "INSERT INTO sightings (flow, name, size, mtime, unchanged_since_ms, last_seen_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (flow, name) DO UPDATE SET size = excluded.size, \
                 mtime = excluded.mtime, unchanged_since_ms = excluded.unchanged_since_ms, \
                 last_seen_ms = excluded.last_seen_ms",
                params![flow, name, int(size), mtime, since, now_ms],
            )?;
            Ok(since)
        })
    }

    /// Drops the sightings of `flow`'s files that the latest listing no longer shows, so a file
    /// that comes back later settles afresh.
    pub fn forget_sightings_except(
        &self,
        flow: &str,
        present: &[String],
    ) -> Result<(), LedgerError> {
        let present: HashSet<&str> = present.iter().map(String::as_str).collect();
        self.write(|tx| {
            let known: Vec<String> = tx
                .prepare("SELECT name FROM sightings WHERE flow = ?1")?
                .query_map([flow], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut delete = tx.prepare("DELETE FROM sightings WHERE flow = ?1 AND name = ?2")?;
            for name in known.iter().filter(|n| !present.contains(n.as_str())) {
                delete.execute(params![flow, name])?;
            }
            Ok(())
        })
    }

    /// What the listings have shown of (flow, name), if it is in the inbox.
    pub fn sighting(&self, flow: &str, name: &str) -> Result<Option<Sighting>, LedgerError> {
        self.read(|tx| {
            Ok(tx
                .query_row(
                    "SELECT size, mtime, unchanged_since_ms, last_seen_ms FROM sightings \
                     WHERE flow = ?1 AND name = ?2",
                    params![flow, name],
                    |r| {
                        Ok(Sighting {
                            size: r.get::<_, i64>(0)? as u64,
                            mtime: r.get(1)?,
                            unchanged_since_ms: r.get(2)?,
                            last_seen_ms: r.get(3)?,
                        })
                    },
                )
                .optional()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::ledger::Sighting;
    use crate::ledger::tests::{FLOW, T0, ledger};

    #[test]
    fn a_file_is_unchanged_since_its_size_and_mtime_last_changed() {
        let l = ledger();
        assert_eq!(l.observe(FLOW, "p.xml", 10, 100, T0).unwrap(), T0);
        assert_eq!(l.observe(FLOW, "p.xml", 10, 100, T0 + 5000).unwrap(), T0);
        assert_eq!(
            l.observe(FLOW, "p.xml", 20, 100, T0 + 6000).unwrap(),
            T0 + 6000
        );
        assert_eq!(
            l.observe(FLOW, "p.xml", 20, 101, T0 + 7000).unwrap(),
            T0 + 7000
        );
        assert_eq!(
            l.observe(FLOW, "p.xml", 20, 101, T0 + 9000).unwrap(),
            T0 + 7000
        );
        assert_eq!(
            l.observe(FLOW, "q.xml", 5, 100, T0 + 9000).unwrap(),
            T0 + 9000
        );
        assert_eq!(
            l.observe("other", "p.xml", 5, 100, T0 + 9000).unwrap(),
            T0 + 9000
        );
        let seen = l.sighting(FLOW, "p.xml").unwrap().unwrap();
        assert_eq!(
            seen,
            Sighting {
                size: 20,
                mtime: 101,
                unchanged_since_ms: T0 + 7000,
                last_seen_ms: T0 + 9000
            }
        );
        // p.xml left the inbox; when it comes back it settles afresh.
        l.forget_sightings_except(FLOW, &["q.xml".to_string()])
            .unwrap();
        assert_eq!(l.sighting(FLOW, "p.xml").unwrap(), None);
        assert!(l.sighting(FLOW, "q.xml").unwrap().is_some());
        assert!(
            l.sighting("other", "p.xml").unwrap().is_some(),
            "other flows are left alone"
        );
        assert_eq!(
            l.observe(FLOW, "p.xml", 20, 101, T0 + 10_000).unwrap(),
            T0 + 10_000
        );
    }
}
