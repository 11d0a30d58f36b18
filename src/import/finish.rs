//! Finishing a file: into the archive (under the flow's dated folder template), or into
//! `error/` with its report. A name collision never overwrites: the file gets a `~N` suffix.
//! Each move is announced to the ledger first (with its destination), so a crash between the
//! two steps is repaired on the next pass.

use jiff::ZonedDateTime as Zoned;

use super::pass::{Outcome, Runner, crash_point};
use super::settle;
use crate::config::{Flow, ImportFlow, Partner};
use crate::ledger::{FileRecord, State};
use crate::report::{EarlierAttempt, ErrorReport, Problem, RecordCounts, Stage};
use crate::transport::{self, AnyTransport, Entry, Transport, TransportError};

/// Expands the archive template (`{yyyy}` `{mm}` `{dd}` in the partner's timezone, `{name}`)
/// into the folder and the file name the archived file should get.
pub fn archive_target(template: &str, name: &str, now: &Zoned) -> (String, String) {
    let expanded = template
        .replace("{yyyy}", &format!("{:04}", now.year()))
        .replace("{mm}", &format!("{:02}", now.month()))
        .replace("{dd}", &format!("{:02}", now.day()));
    match expanded.strip_suffix("{name}") {
        Some(dir) => (dir.trim_end_matches('/').to_string(), name.to_string()),
        None => (expanded.trim_end_matches('/').to_string(), name.to_string()),
    }
}

/// `name` with a collision suffix: `products.xml` → `products~2.xml`, `README` → `README~2`.
pub fn with_suffix(name: &str, n: u32) -> String {
    if n <= 1 {
        return name.to_string();
    }
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}~{n}.{ext}"),
        _ => format!("{name}~{n}"),
    }
}

/// The first name in `dir` not taken yet, starting with `name` itself; `reserved` extra names
/// (like the report beside it) must be free too.
pub async fn free_name<T: Transport>(
    t: &mut T,
    dir: &str,
    name: &str,
    companions: &[&str],
) -> Result<String, TransportError> {
    for n in 1..10_000 {
        let candidate = with_suffix(name, n);
        if t.stat(&transport::join(dir, &candidate)).await?.is_some() {
            continue;
        }
        let mut free = true;
        for companion in companions {
            let other = format!("{candidate}{companion}");
            if t.stat(&transport::join(dir, &other)).await?.is_some() {
                free = false;
                break;
            }
        }
        if free {
            return Ok(candidate);
        }
    }
    Err(TransportError::Other {
        path: transport::join(dir, name),
        detail: "no free name left for this file (10 000 collisions)".into(),
    })
}

/// Moves `from` to `to`, never overwriting (`AlreadyExists` when `to` is taken). A move that a
/// crash left half done (the file under both names) is repaired by the pass, which compares
/// contents first: a new file that merely looks like the old one is never removed here.
pub async fn move_file<T: Transport>(
    t: &mut T,
    from: &str,
    to: &str,
) -> Result<(), TransportError> {
    t.rename_noclobber(from, to).await
}

/// Largest processed file copied from the spool when its inbox file was replaced meanwhile.
pub(super) const MAX_KEPT_COPY: u64 = 512 * 1024 * 1024;

impl Runner {
    pub(super) async fn archive(
        &self,
        t: &mut AnyTransport,
        partner: &Partner,
        import: &ImportFlow,
        rec: &FileRecord,
        entry: &Entry,
    ) -> Result<Outcome, TransportError> {
        let from = transport::join(&import.inbox, &entry.name);
        let dest = match (&rec.state, &rec.destination) {
            // A resumed move whose destination is still free; a taken one gets a new name.
            (State::Archiving, Some(dest)) if t.stat(dest).await?.is_none() => dest.clone(),
            _ => {
                let now = jiff::Timestamp::now().to_zoned_datetime(partner.timezone.clone());
                let (dir, name) = archive_target(&import.archive, &entry.name, &now);
                t.mkdir_all(&dir).await?;
                let name = free_name(t, &dir, &name, &[]).await?;
                let dest = transport::join(&dir, &name);
                if let Err(e) = self.ledger().archiving(rec.id, &self.holder, &dest) {
                    return Ok(Outcome::Waiting(e.to_string()));
                }
                crash_point("archiving");
                dest
            }
        };
        if replaced(t, &from, entry).await? {
            return self.keep_replaced(t, rec, &dest, true).await;
        }
        move_file(t, &from, &dest).await?;
        crash_point("moved");
        if let Err(e) = self.ledger().archived(rec.id, &self.holder) {
            tracing::error!("ledger: {e}");
        }
        self.remove_marker(t, import, entry).await;
        Ok(Outcome::Archived(dest))
    }

    /// The inbox file was replaced by a new one of the same name while this attempt ran: the
    /// new file stays for the next pass, and the content this attempt processed goes to its
    /// destination from the spool.
    pub(super) async fn keep_replaced(
        &self,
        t: &mut AnyTransport,
        rec: &FileRecord,
        dest: &str,
        archive: bool,
    ) -> Result<Outcome, TransportError> {
        let spool = self.spool_path(rec);
        let kept = match std::fs::metadata(&spool) {
            Ok(meta) if meta.len() <= MAX_KEPT_COPY => std::fs::read(&spool).ok(),
            _ => None,
        };
        let Some(content) = kept else {
            let why = "the inbox file was replaced by a new one while this attempt ran; \
                       the new one waits for the next pass";
            let _ = self.ledger().abandon(rec.id, why);
            tracing::warn!(flow = %rec.flow, "{}: {why} (no copy of the processed content was kept)", rec.name);
            return Ok(Outcome::Waiting(why.into()));
        };
        t.put(dest, &content).await?;
        let done = if archive {
            self.ledger().archived(rec.id, &self.holder)
        } else {
            self.ledger().failed(rec.id, &self.holder)
        };
        if let Err(e) = done {
            tracing::error!("ledger: {e}");
        }
        tracing::warn!(
            flow = %rec.flow,
            "{} was replaced in the inbox while it was processed: the processed content is at {dest}, the new file waits for the next pass",
            rec.name
        );
        Ok(if archive {
            Outcome::Archived(dest.to_string())
        } else {
            Outcome::Failed(dest.to_string())
        })
    }

    pub(super) async fn remove_marker(
        &self,
        t: &mut AnyTransport,
        import: &ImportFlow,
        entry: &Entry,
    ) {
        if let Some(marker) = &import.done_marker {
            let path = transport::join(&import.inbox, &settle::marker_name(marker, &entry.name));
            if let Err(e) = t.remove(&path).await {
                tracing::warn!("removing the done-marker {path}: {e}");
            }
        }
    }

    /// Archives a file — in a dry run, only says where it would go.
    pub(super) async fn to_archive(
        &self,
        t: &mut AnyTransport,
        partner: &Partner,
        import: &ImportFlow,
        rec: &FileRecord,
        entry: &Entry,
    ) -> Result<Outcome, TransportError> {
        if self.config.odoo.dry_run {
            let resumed = rec.tries > 1;
            self.would_archive(t, partner, import, rec, entry, resumed)
                .await
        } else {
            self.archive(t, partner, import, rec, entry).await
        }
    }

    /// Moves a file to `error/` with its report — in a dry run, only says where it would go
    /// and the report it would get.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn to_error(
        &self,
        t: &mut AnyTransport,
        partner: &Partner,
        flow: &Flow,
        import: &ImportFlow,
        rec: &FileRecord,
        entry: &Entry,
        stage: Stage,
        problems: Vec<Problem>,
        counts: RecordCounts,
    ) -> Result<Outcome, TransportError> {
        if self.config.odoo.dry_run {
            let resumed = rec.tries > 1;
            self.would_quarantine(
                t, partner, flow, import, rec, entry, stage, problems, counts, resumed,
            )
            .await
        } else {
            self.quarantine(
                t, partner, flow, import, rec, entry, stage, problems, counts,
            )
            .await
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn quarantine(
        &self,
        t: &mut AnyTransport,
        partner: &Partner,
        flow: &Flow,
        import: &ImportFlow,
        rec: &FileRecord,
        entry: &Entry,
        stage: Stage,
        problems: Vec<Problem>,
        counts: RecordCounts,
    ) -> Result<Outcome, TransportError> {
        t.mkdir_all(&import.error).await?;
        // A report left without its file (the file was moved back for a replay) is replaced.
        let name = free_name(t, &import.error, &entry.name, &[]).await?;
        let dest = transport::join(&import.error, &name);
        let report = self.error_report(partner, flow, import, rec, entry, stage, problems, counts);
        // The whole report goes into the ledger first: a crash before the move is repaired by
        // writing it again from there.
        let text = report.render_text();
        if let Err(e) = self
            .ledger()
            .quarantining(rec.id, &self.holder, &dest, &text)
        {
            return Ok(Outcome::Waiting(e.to_string()));
        }
        t.put(&format!("{dest}.error.txt"), text.as_bytes()).await?;
        let json = serde_json::to_vec_pretty(&report.to_json()).unwrap_or_default();
        t.put(&format!("{dest}.error.json"), &json).await?;
        crash_point("reported");
        self.finish_quarantine(t, import, rec, entry, &dest, false)
            .await
    }

    /// The report a file sent to `error/` gets (its attempt, the earlier ones, what failed).
    #[allow(clippy::too_many_arguments)]
    fn error_report(
        &self,
        partner: &Partner,
        flow: &Flow,
        import: &ImportFlow,
        rec: &FileRecord,
        entry: &Entry,
        stage: Stage,
        problems: Vec<Problem>,
        counts: RecordCounts,
    ) -> ErrorReport {
        let when = jiff::Timestamp::now().to_zoned_datetime(partner.timezone.clone());
        let mut report = ErrorReport::new(
            &flow.name,
            &entry.name,
            &import.inbox,
            &import.error,
            when,
            stage,
        );
        report.attempt = rec.attempt.max(1);
        report.earlier = self
            .ledger()
            .earlier_attempts(rec.id)
            .unwrap_or_default()
            .into_iter()
            .map(|r| EarlierAttempt {
                when: jiff::Timestamp::from_millisecond(r.updated_at)
                    .unwrap_or_default()
                    .to_zoned_datetime(partner.timezone.clone()),
                outcome: r.state.as_str().to_string(),
            })
            .collect();
        report.size = entry.size;
        report.sha256 = rec.sha256.clone();
        report.counts = counts;
        report.problems = problems;
        report.dry_run = self.config.odoo.dry_run;
        report
    }

    // ---- dry run: the outcome a file would have, with nothing moved ----------------------

    /// Dry run: where the file would be archived (the template's folder, a free name in it,
    /// as `archive` would choose). Only looks: no folder is made, nothing moves.
    pub(super) async fn would_archive(
        &self,
        t: &mut AnyTransport,
        partner: &Partner,
        import: &ImportFlow,
        rec: &FileRecord,
        entry: &Entry,
        resumed: bool,
    ) -> Result<Outcome, TransportError> {
        let dest = match (&rec.state, &rec.destination) {
            (State::Archiving, Some(dest)) if t.stat(dest).await?.is_none() => dest.clone(),
            _ => {
                let now = jiff::Timestamp::now().to_zoned_datetime(partner.timezone.clone());
                let (dir, name) = archive_target(&import.archive, &entry.name, &now);
                let name = free_name(t, &dir, &name, &[]).await?;
                transport::join(&dir, &name)
            }
        };
        self.dry_run_done(
            rec,
            resumed,
            &format!("dry run: would be archived to {dest}"),
        );
        Ok(Outcome::WouldArchive(dest))
    }

    /// Dry run: where in `error/` the file would go and the report it would get (which says
    /// it is a dry run: nothing moved, nothing sent to Odoo). Only looks.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn would_quarantine(
        &self,
        t: &mut AnyTransport,
        partner: &Partner,
        flow: &Flow,
        import: &ImportFlow,
        rec: &FileRecord,
        entry: &Entry,
        stage: Stage,
        problems: Vec<Problem>,
        counts: RecordCounts,
        resumed: bool,
    ) -> Result<Outcome, TransportError> {
        let name = free_name(t, &import.error, &entry.name, &[]).await?;
        let to = transport::join(&import.error, &name);
        let report = self
            .error_report(partner, flow, import, rec, entry, stage, problems, counts)
            .render_text();
        self.dry_run_done(rec, resumed, &format!("dry run: would go to {to}"));
        Ok(Outcome::WouldFail { to, report })
    }

    /// Ends a dry run's look at a file so that nothing of it stops or changes a later run: an
    /// attempt the dry run started is closed as abandoned (not counted as an attempt, not
    /// linked to by later ones); one an earlier run left unfinished is given back as it was.
    pub(super) fn dry_run_done(&self, rec: &FileRecord, resumed: bool, what: &str) {
        let _ = std::fs::remove_file(self.spool_path(rec));
        let done = if resumed {
            self.ledger().release(rec.id, &self.holder)
        } else {
            self.ledger().abandon(rec.id, what).map(|_| ())
        };
        if let Err(e) = done {
            tracing::error!("ledger: {e}");
        }
    }

    /// Moves the file beside its report in `error/` and records it as failed.
    pub(super) async fn finish_quarantine(
        &self,
        t: &mut AnyTransport,
        import: &ImportFlow,
        rec: &FileRecord,
        entry: &Entry,
        dest: &str,
        resumed: bool,
    ) -> Result<Outcome, TransportError> {
        // On a resumed move the report is written again from the ledger (whatever a crash
        // left at that name); a destination another file took meanwhile is given up for a
        // new name.
        let mut dest = dest.to_string();
        if resumed {
            if t.stat(&dest).await?.is_some() {
                let name = free_name(t, &import.error, &entry.name, &[]).await?;
                dest = transport::join(&import.error, &name);
                let text = rec.detail.clone().unwrap_or_default();
                if let Err(e) = self
                    .ledger()
                    .quarantining(rec.id, &self.holder, &dest, &text)
                {
                    return Ok(Outcome::Waiting(e.to_string()));
                }
            }
            let text = rec.detail.clone().unwrap_or_default();
            t.put(&format!("{dest}.error.txt"), text.as_bytes()).await?;
        }
        let dest = dest.as_str();
        let from = transport::join(&import.inbox, &entry.name);
        if replaced(t, &from, entry).await? {
            return self.keep_replaced(t, rec, dest, false).await;
        }
        move_file(t, &from, dest).await?;
        if let Err(e) = self.ledger().failed(rec.id, &self.holder) {
            tracing::error!("ledger: {e}");
        }
        self.remove_marker(t, import, entry).await;
        Ok(Outcome::Failed(dest.to_string()))
    }
}

/// Whether the inbox file is no longer the one listed (same name, other size or mtime). A file
/// already gone is not "replaced": the move that follows tells what happened.
pub(super) async fn replaced(
    t: &mut AnyTransport,
    path: &str,
    entry: &Entry,
) -> Result<bool, TransportError> {
    Ok(match t.stat(path).await? {
        Some(now) => now.size != entry.size || now.mtime != entry.mtime,
        None => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_template_uses_the_partner_date() {
        let now: Zoned = "2026-03-05T23:30:00+01:00[Europe/Brussels]"
            .parse()
            .unwrap();
        assert_eq!(
            archive_target("/out/archive/{yyyy}/{mm}/{dd}", "a b.xml", &now),
            ("/out/archive/2026/03/05".to_string(), "a b.xml".to_string())
        );
        assert_eq!(
            archive_target("archive/{yyyy}-{mm}/{name}", "x.xml", &now),
            ("archive/2026-03".to_string(), "x.xml".to_string())
        );
    }

    #[test]
    fn collisions_get_a_suffix() {
        assert_eq!(with_suffix("products.xml", 1), "products.xml");
        assert_eq!(with_suffix("products.xml", 2), "products~2.xml");
        assert_eq!(with_suffix("README", 3), "README~3");
        assert_eq!(with_suffix(".env", 2), ".env~2");
    }
}
