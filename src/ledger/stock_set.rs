//! Stock levels are absolute: which set_stock file last set each stock key (product, location
//! and lot, as the flow's files name them), so that an older report that arrives late is not
//! applied over a newer one; and the files ops asked to apply anyway (`replay --force-stale`).

use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};

use super::{Ledger, LedgerError};

/// The newer file that set a stock key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockSetBy {
    pub name: String,
    /// Its mtime (unix seconds): when the partner wrote it.
    pub mtime: i64,
}

impl Ledger {
    /// Of `keys`, those a file of `flow` written after (`mtime`, `name`) already set, with
    /// that file. Files are ordered as the partner wrote them: mtime, then name.
    pub fn stock_set_after(
        &self,
        flow: &str,
        keys: &[String],
        mtime: i64,
        name: &str,
    ) -> Result<HashMap<String, StockSetBy>, LedgerError> {
        self.read(|tx| {
            let mut newer = HashMap::new();
            let mut query = tx.prepare(
                "SELECT name, mtime FROM stock_set WHERE flow = ?1 AND stock_key = ?2 \
                 AND (mtime > ?3 OR (mtime = ?3 AND name > ?4))",
            )?;
            for key in keys {
                let by: Option<(String, i64)> = query
                    .query_row(params![flow, key, mtime, name], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()?;
                if let Some((name, mtime)) = by {
                    newer.insert(key.clone(), StockSetBy { name, mtime });
                }
            }
            Ok(newer)
        })
    }

    /// Records that attempt `file_id` (file `name`, written at `mtime`) set `keys`. A key keeps
    /// the newest file that set it: applying an older file on purpose does not make it newer.
    pub fn stock_set(
        &self,
        flow: &str,
        file_id: i64,
        name: &str,
        mtime: i64,
        keys: &[String],
    ) -> Result<(), LedgerError> {
        self.write(|tx| {
            let mut upsert = tx.prepare(
                "INSERT INTO stock_set (flow, stock_key, file_id, name, mtime) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (flow, stock_key) DO UPDATE SET \
                 file_id = excluded.file_id, name = excluded.name, mtime = excluded.mtime \
                 WHERE excluded.mtime > stock_set.mtime \
                 OR (excluded.mtime = stock_set.mtime AND excluded.name >= stock_set.name)",
            )?;
            for key in keys {
                upsert.execute(params![flow, key, file_id, name, mtime])?;
            }
            Ok(())
        })
    }

    /// Ops asked for file `name` of `flow` to be applied even where newer files set the same
    /// stock (`edi-bridge replay FLOW FILE --force-stale`).
    pub fn force_stale(&self, flow: &str, name: &str, now_ms: i64) -> Result<(), LedgerError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO force_stale (flow, name, at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (flow, name) DO UPDATE SET at = excluded.at",
                params![flow, name, now_ms],
            )?;
            Ok(())
        })
    }

    /// Whether file `name` of `flow` is to be applied even where it is stale.
    pub fn is_forced_stale(&self, flow: &str, name: &str) -> Result<bool, LedgerError> {
        self.read(|tx| {
            Ok(tx
                .query_row(
                    "SELECT 1 FROM force_stale WHERE flow = ?1 AND name = ?2",
                    params![flow, name],
                    |_| Ok(()),
                )
                .optional()?
                .is_some())
        })
    }

    /// The forced file was applied: the next file of that name is judged as any other.
    pub fn forced_stale_done(&self, flow: &str, name: &str) -> Result<(), LedgerError> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM force_stale WHERE flow = ?1 AND name = ?2",
                params![flow, name],
            )?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_remembers_the_newest_file_that_set_it() {
        let ledger = Ledger::open_in_memory().unwrap();
        let keys = |k: &[&str]| k.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let attempt = |name: &str, mtime: i64| {
            let lease = std::time::Duration::from_secs(60);
            let rec = ledger.claim("stock", name, 10, mtime, "h:1:1", lease, 0);
            rec.unwrap().expect("claimed").id
        };
        let (a800, a900, a700) = (
            attempt("STOCK_0800.xml", 800),
            attempt("STOCK_0900.xml", 900),
            attempt("STOCK_0700.xml", 700),
        );
        ledger
            .stock_set("stock", a800, "STOCK_0800.xml", 800, &keys(&["a", "b"]))
            .unwrap();
        ledger
            .stock_set("stock", a900, "STOCK_0900.xml", 900, &keys(&["a"]))
            .unwrap();
        // An older file applied on purpose later does not become the newest.
        ledger
            .stock_set("stock", a700, "STOCK_0700.xml", 700, &keys(&["a", "c"]))
            .unwrap();
        let newer = ledger
            .stock_set_after("stock", &keys(&["a", "b", "c", "d"]), 800, "STOCK_0800.xml")
            .unwrap();
        assert_eq!(newer.len(), 1);
        assert_eq!(newer["a"].name, "STOCK_0900.xml");
        // Same mtime: the name decides; the file itself is never newer than itself.
        let same = ledger
            .stock_set_after("stock", &keys(&["a"]), 900, "STOCK_0900.xml")
            .unwrap();
        assert!(same.is_empty());
        let other_flow = ledger
            .stock_set_after("other", &keys(&["a"]), 0, "x")
            .unwrap();
        assert!(other_flow.is_empty());

        assert!(!ledger.is_forced_stale("stock", "STOCK_0700.xml").unwrap());
        ledger.force_stale("stock", "STOCK_0700.xml", 1).unwrap();
        assert!(ledger.is_forced_stale("stock", "STOCK_0700.xml").unwrap());
        ledger.forced_stale_done("stock", "STOCK_0700.xml").unwrap();
        assert!(!ledger.is_forced_stale("stock", "STOCK_0700.xml").unwrap());
    }
}
