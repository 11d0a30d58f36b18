//! Repairing what a crash left: a move announced in the ledger whose file already reached its
//! destination is recorded as done (a leftover copy in the inbox is removed only when its content
//! is the one processed); an attempt whose file vanished is abandoned.

use super::pass::{Runner, now_ms};
use crate::config::{Flow, ImportFlow};
use crate::ledger::{FileRecord, State};
use crate::transport::{self, AnyTransport, Entry, Transport, TransportError};

impl Runner {
    /// Repairs what a crash left: a move announced in the ledger whose file already left the
    /// inbox is recorded as done; an attempt whose file vanished is abandoned.
    pub(super) async fn repair(
        &self,
        t: &mut AnyTransport,
        flow: &Flow,
        import: &ImportFlow,
    ) -> Result<(), String> {
        let unfinished = self
            .ledger()
            .unfinished(&flow.name, now_ms())
            .map_err(|e| e.to_string())?;
        for rec in unfinished {
            let inbox_path = transport::join(&import.inbox, &rec.name);
            let err = |e: TransportError| e.to_string();
            let in_inbox = t.stat(&inbox_path).await.map_err(err)?;
            let at_destination = match (rec.state, &rec.destination) {
                (State::Archiving | State::Quarantining, Some(dest)) => {
                    t.stat(dest).await.map_err(err)?.is_some()
                }
                _ => false,
            };
            // A file still in the inbox is the listing's to take, unless its move had
            // already placed it at its destination: then the inbox holds either a leftover
            // name of the same file (removed here) or a new file (left for the listing).
            let leftover = match (&in_inbox, at_destination) {
                (Some(_), false) => continue,
                (Some(now), true) => {
                    // Another file may have taken the recorded destination before the move
                    // happened: then the move is still to do, at a new name.
                    let dest = rec.destination.clone().unwrap_or_default();
                    if !self.same_content(t, &dest, &rec, import).await? {
                        continue;
                    }
                    now.size == rec.size && self.same_content(t, &inbox_path, &rec, import).await?
                }
                (None, _) => false,
            };
            let ledger = self.ledger();
            let Some(rec) = ledger
                .claim(
                    &flow.name,
                    &rec.name,
                    rec.size,
                    rec.mtime,
                    &self.holder,
                    self.config.ledger.lease,
                    now_ms(),
                )
                .map_err(|e| e.to_string())?
            else {
                continue;
            };
            let (result, moved) = match (rec.state, at_destination) {
                (State::Archiving, true) => (ledger.archived(rec.id, &self.holder), true),
                (State::Quarantining, true) => (ledger.failed(rec.id, &self.holder), true),
                _ => (
                    ledger.abandon(
                        rec.id,
                        "the file left the inbox before this attempt finished",
                    ),
                    false,
                ),
            };
            result.map_err(|e| e.to_string())?;
            let _ = std::fs::remove_file(self.spool_path(&rec));
            if leftover {
                t.remove(&inbox_path).await.map_err(|e| e.to_string())?;
            }
            if moved && (in_inbox.is_none() || leftover) {
                let entry = Entry {
                    name: rec.name.clone(),
                    size: rec.size,
                    mtime: rec.mtime,
                    is_file: true,
                };
                self.remove_marker(t, import, &entry).await;
            }
        }
        Ok(())
    }

    /// Whether the inbox file at `path` has the content attempt `rec` processed (its sha256).
    pub(super) async fn same_content(
        &self,
        t: &mut AnyTransport,
        path: &str,
        rec: &FileRecord,
        import: &ImportFlow,
    ) -> Result<bool, String> {
        let Some(expected) = &rec.sha256 else {
            return Ok(false);
        };
        let copy = self.spool_path(rec).with_extension("check");
        if let Some(dir) = copy.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        let fetched = t.fetch(path, &copy, import.max_file_size).await;
        let _ = std::fs::remove_file(&copy);
        match fetched {
            Ok(f) => Ok(&f.sha256 == expected),
            Err(TransportError::TooLarge { .. }) => Ok(false),
            Err(e) => Err(e.to_string()),
        }
    }
}
