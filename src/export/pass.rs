//! One pass over an export flow: finish what a crash left (files published but records not
//! marked), select the records with the flow's domain that are not exported yet, read them in
//! batched calls, render and validate each document, publish it, mark the records, and keep
//! every step in the ledger. Also the two ways to export chosen records: [`Runner::export_records`]
//! (Odoo's webhook) and [`Runner::replay_record`] (`replay FLOW --record NAME`).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::mark;
use super::publish::{distinct, file_name, publish};
use super::render::{Refusal, Renderer};
use super::select::{self, Fields, Picking, SelectError};
use crate::config::{Direction, ExportFlow, Flow};
use crate::error::Consequence;
use crate::import::pass::{PassSummary, Runner, crash_point, now_ms};
use crate::ledger::{PubState, Publishing, RunTaken};
use crate::odoo::client::OdooClient;
use crate::transport::{AnyTransport, Transport};

/// What became of one record in a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Published at this path (and marked, when the flow marks).
    Published(String),
    /// Its document was refused (template failure or invalid): nothing published, not marked.
    Failed(String),
    /// Not published now (an outage); retried on the next pass.
    Waiting(String),
    /// Dry run: would be published at this path with this document.
    WouldPublish { path: String, document: String },
}

/// One record's result in a pass.
#[derive(Debug, Clone)]
pub struct RecordResult {
    pub flow: String,
    /// The record's name (`WH/OUT/00042`).
    pub name: String,
    pub id: i64,
    pub outcome: RecordOutcome,
}

/// What [`Runner::export_records`] did with one id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdOutcome {
    /// Published at this path.
    Published(String),
    /// The record does not match the flow's domain, or is exported already.
    NotMatching,
    /// Not published, with why (a refused document, an outage, a setup problem).
    Failed(String),
}

/// Which records a pass looks at.
enum Scope<'a> {
    /// Every record the domain selects.
    All,
    /// Only these ids, if the domain selects them (a webhook).
    Ids(&'a [i64]),
    /// This record, by name, whatever the domain and the ledger say (a replay on purpose).
    Replay(&'a str),
}

/// Why a flow cannot run now (an outage, or something a human must fix), said in full.
struct Stopped(String);

impl Runner {
    /// Runs every export flow among `flows` (one pass each) into `summary`.
    pub(crate) async fn export_pass(&self, flows: &[&Flow], summary: &mut PassSummary) {
        // Partners are independent: their flows run side by side, one session each.
        let mut by_partner: BTreeMap<&str, Vec<&Flow>> = BTreeMap::new();
        for flow in flows {
            by_partner.entry(&flow.partner).or_default().push(flow);
        }
        let passes = by_partner.into_values().map(|flows| async move {
            let mut part = PassSummary::default();
            for flow in flows {
                self.export_flow(flow, Scope::All, &mut part).await;
            }
            part
        });
        for part in futures::future::join_all(passes).await {
            summary.records.extend(part.records);
            summary.stopped.extend(part.stopped);
            summary.not_ready.extend(part.not_ready);
        }
    }

    /// Exports exactly these records of `flow` now, if they still match the flow's domain
    /// and are not exported yet (Odoo's webhook). Per id: published, not matching, failed.
    pub async fn export_records(
        &self,
        flow: &str,
        ids: &[i64],
    ) -> Result<Vec<(i64, IdOutcome)>, String> {
        let flow = self.export_flow_named(flow)?;
        let mut summary = PassSummary::default();
        self.export_flow(flow, Scope::Ids(ids), &mut summary).await;
        let held = summary.not_ready.first().map(|(_, _, why)| why);
        if let Some(why) = summary.stopped.first().map(|(_, why)| why).or(held) {
            return Ok(ids
                .iter()
                .map(|&id| (id, IdOutcome::Failed(why.clone())))
                .collect());
        }
        Ok(ids
            .iter()
            .map(|&id| {
                let outcome = match summary.records.iter().find(|r| r.id == id) {
                    None => IdOutcome::NotMatching,
                    Some(r) => match &r.outcome {
                        RecordOutcome::Published(path) => IdOutcome::Published(path.clone()),
                        RecordOutcome::WouldPublish { path, .. } => {
                            IdOutcome::Published(path.clone())
                        }
                        RecordOutcome::Failed(why) | RecordOutcome::Waiting(why) => {
                            IdOutcome::Failed(why.clone())
                        }
                    },
                };
                (id, outcome)
            })
            .collect())
    }

    /// The export flow named `name`, or why there is none.
    fn export_flow_named(&self, name: &str) -> Result<&Flow, String> {
        let flow = self
            .config
            .flow(name)
            .ok_or_else(|| format!("no flow named {name}"))?;
        if !matches!(flow.direction, Direction::Export(_)) {
            return Err(format!("flow {} is not an export flow", flow.name));
        }
        Ok(flow)
    }

    /// Publishes the record named `name` of `flow` again on purpose (`replay FLOW --record
    /// NAME`), whatever its mark and the ledger say, and marks it again.
    pub async fn replay_record(&self, flow: &str, name: &str) -> Result<RecordResult, String> {
        let flow = self.export_flow_named(flow)?;
        let mut summary = PassSummary::default();
        self.export_flow(flow, Scope::Replay(name), &mut summary)
            .await;
        if let Some((_, why)) = summary.stopped.first() {
            return Err(why.clone());
        }
        summary.records.pop().ok_or_else(|| {
            format!(
                "flow {}: no {} named {name} in Odoo",
                flow.name,
                model_of(flow)
            )
        })
    }

    async fn export_flow(&self, flow: &Flow, scope: Scope<'_>, summary: &mut PassSummary) {
        let Direction::Export(export) = &flow.direction else {
            return;
        };
        let lock = self
            .export_runs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(flow.name.clone())
            .or_default()
            .clone();
        let _running = lock.lock().await;
        // And not in another process either (a dry run writes nothing, so it needs no turn):
        // the flow's run lock in the ledger, which the daemon's run of the flow already holds.
        let dry_run = self.config.odoo.dry_run;
        let mut release = false;
        if !dry_run {
            match self.ledger().take_flow_run(
                &flow.name,
                &self.holder,
                self.config.ledger.lease,
                now_ms(),
            ) {
                Ok(RunTaken::Taken) => release = true,
                Ok(RunTaken::Mine) => {}
                Ok(RunTaken::Held(other)) => {
                    let why = format!("another run ({other}) is exporting this flow now");
                    tracing::info!(flow = %flow.name, "{why}");
                    summary
                        .not_ready
                        .push((flow.name.clone(), String::new(), why));
                    return;
                }
                Err(e) => {
                    summary.stopped.push((flow.name.clone(), e.to_string()));
                    return;
                }
            }
        }
        if let Err(Stopped(why)) = self.export_flow_inner(flow, export, scope, summary).await {
            tracing::error!(flow = %flow.name, "{why}");
            summary.stopped.push((flow.name.clone(), why));
        }
        if release && let Err(e) = self.ledger().release_flow_run(&flow.name, &self.holder) {
            tracing::error!(flow = %flow.name, "ledger: {e}");
        }
    }

    async fn export_flow_inner(
        &self,
        flow: &Flow,
        export: &ExportFlow,
        scope: Scope<'_>,
        summary: &mut PassSummary,
    ) -> Result<(), Stopped> {
        let dry_run = self.config.odoo.dry_run;
        let renderer = Renderer::build(&flow.name, export, &self.config.spool).map_err(Stopped)?;
        if self.config.odoo.connection.is_none() {
            // A dry run without a server: the document of a sample delivery shows what would
            // be published (in a pass; chosen records cannot be read without one).
            if !matches!(scope, Scope::All) {
                return Err(Stopped(
                    "no Odoo server is configured (dry run without `url`): records cannot be read"
                        .into(),
                ));
            }
            let picking = select::sample_picking();
            let outcome = self.render_dry(
                flow,
                export,
                &renderer,
                &picking,
                " (a sample delivery: no Odoo server is configured)",
            );
            summary.records.push(RecordResult {
                flow: flow.name.clone(),
                name: picking.name.clone(),
                id: picking.id,
                outcome,
            });
            return Ok(());
        }
        let client = self.odoo().await.map_err(|(why, _)| Stopped(why))?;
        let fields = select::resolve_fields(client, export)
            .await
            .map_err(|e| odoo_stop(&flow.name, e))?;
        if !dry_run {
            self.repair_marks(client, flow, export, &fields).await;
        }
        let raw = match scope {
            Scope::Replay(name) => {
                let domain = json!([["name", "=", name]]);
                select::search(client, export, &fields, domain).await
            }
            Scope::All => {
                let domain = select::selection_domain(export, &fields, None);
                select::search(client, export, &fields, domain).await
            }
            Scope::Ids(ids) => {
                let domain = select::selection_domain(export, &fields, Some(ids));
                select::search(client, export, &fields, domain).await
            }
        }
        .map_err(|e| odoo_stop(&flow.name, e))?;
        let replay = matches!(scope, Scope::Replay(_));
        // The ledger decides what the mark cannot: without a mark field a published record
        // is never taken again; with one, a record whose mark was cleared is.
        let mut files: HashMap<i64, String> = HashMap::new();
        let mut chosen: Vec<Map<String, Value>> = Vec::new();
        for record in raw {
            let id = record.get("id").and_then(Value::as_i64).unwrap_or(0);
            let latest = self
                .ledger()
                .latest_publication(&flow.name, id)
                .map_err(|e| Stopped(e.to_string()))?;
            match latest.map(|p| (p.state, p.file_name)) {
                Some((PubState::Published, _)) if !replay => continue,
                Some((PubState::Done, _)) if !replay && fields.mark.is_none() => continue,
                Some((PubState::Publishing, file)) => {
                    files.insert(id, file);
                }
                _ => {}
            }
            chosen.push(record);
        }
        if chosen.is_empty() {
            return Ok(());
        }
        let pickings = select::read_pickings(client, &fields, &chosen)
            .await
            .map_err(|e| odoo_stop(&flow.name, e))?;
        let partner = &self.config.partners[&flow.partner];
        let now = jiff::Timestamp::now();
        let zoned = now.to_zoned_datetime(partner.timezone.clone());
        let generated_at = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();

        if dry_run {
            for picking in &pickings {
                let outcome = self.render_dry(flow, export, &renderer, picking, "");
                summary.records.push(RecordResult {
                    flow: flow.name.clone(),
                    name: picking.name.clone(),
                    id: picking.id,
                    outcome,
                });
            }
            return Ok(());
        }

        let mut transport: Option<AnyTransport> = None;
        let mut published: Vec<(i64, String, String)> = Vec::new();
        let mut outage: Option<String> = None;
        for picking in &pickings {
            let result = |outcome| RecordResult {
                flow: flow.name.clone(),
                name: picking.name.clone(),
                id: picking.id,
                outcome,
            };
            // A retry keeps the name its first try chose, so it overwrites its own file.
            let name = match files.get(&picking.id) {
                Some(name) => name.clone(),
                None => {
                    let name = file_name(&export.filename, picking, &zoned);
                    match self.ledger().file_name_taken(&flow.name, &name, picking.id) {
                        Ok(Some(_)) => distinct(&name, picking.id),
                        Ok(None) => name,
                        Err(e) => return Err(Stopped(e.to_string())),
                    }
                }
            };
            let document = match renderer.render(&flow.name, picking, &name, &generated_at) {
                Ok(document) => document,
                Err(refusal) => {
                    let why = refusal.to_string();
                    self.refused(client, flow, export, picking, &name, &refusal)
                        .await;
                    summary.records.push(result(RecordOutcome::Failed(why)));
                    continue;
                }
            };
            if let Some(why) = &outage {
                summary
                    .records
                    .push(result(RecordOutcome::Waiting(why.clone())));
                continue;
            }
            let sha256 = hex::encode(Sha256::digest(&document));
            let entry = Publishing {
                flow: &flow.name,
                record_id: picking.id,
                record_name: &picking.name,
                file_name: &name,
                sha256: &sha256,
                size: document.len() as u64,
                replay,
            };
            let pub_id = self
                .ledger()
                .publishing(&entry, now_ms())
                .map_err(|e| Stopped(e.to_string()))?;
            crash_point("export-publishing");
            let sent = async {
                if transport.is_none() {
                    let mut t = AnyTransport::connect(partner).await?;
                    t.mkdir_all(&export.outbox).await?;
                    transport = Some(t);
                }
                let t = transport.as_mut().expect("connected");
                publish(t, &export.outbox, &name, &document).await
            }
            .await;
            match sent {
                Ok(path) => {
                    self.ledger()
                        .published(pub_id, now_ms())
                        .map_err(|e| Stopped(e.to_string()))?;
                    tracing::info!(flow = %flow.name, "{} published as {path}", picking.name);
                    published.push((picking.id, picking.name.clone(), path));
                }
                Err(e) => {
                    let why = format!("publishing {name}: {e}");
                    let _ = self.ledger().publication_waits(pub_id, &why, now_ms());
                    tracing::warn!(flow = %flow.name, "{} waits: {why}", picking.name);
                    if e.consequence() == Consequence::Stop {
                        summary.stopped.push((flow.name.clone(), why.clone()));
                    }
                    // The session is gone or the outbox refuses: the rest waits too.
                    outage = Some(why.clone());
                    summary.records.push(result(RecordOutcome::Waiting(why)));
                }
            }
        }
        if let Some(mut t) = transport {
            let _ = t.close().await;
        }
        crash_point("export-published");
        let marked = self
            .finish_published(client, flow, export, &fields, &published)
            .await;
        for (id, name, path) in published {
            let outcome = match marked.get(&id) {
                None => RecordOutcome::Published(path),
                Some(why) => RecordOutcome::Waiting(format!(
                    "published as {path}, but not marked in Odoo yet (the next pass marks it): {why}"
                )),
            };
            summary.records.push(RecordResult {
                flow: flow.name.clone(),
                name,
                id,
                outcome,
            });
        }
        Ok(())
    }

    /// Marks the records whose files are published, ends their publications in the ledger
    /// and posts the chatter notes. Returns the ids that could not be marked, with why.
    async fn finish_published(
        &self,
        client: &OdooClient,
        flow: &Flow,
        export: &ExportFlow,
        fields: &Fields,
        published: &[(i64, String, String)],
    ) -> HashMap<i64, String> {
        let mut failed = HashMap::new();
        if published.is_empty() {
            return failed;
        }
        let ids: Vec<i64> = published.iter().map(|(id, _, _)| *id).collect();
        if let Some((field, kind)) = &fields.mark {
            for (id, e) in mark::mark(client, &export.model, field, kind, &ids).await {
                tracing::warn!(flow = %flow.name, "record {id} published but not marked: {e}");
                failed.insert(id, e.to_string());
            }
        }
        let mut notes = Vec::new();
        for (id, _, path) in published {
            if failed.contains_key(id) {
                continue;
            }
            let done = self
                .ledger()
                .latest_publication(&flow.name, *id)
                .ok()
                .flatten()
                .filter(|p| p.state == PubState::Published)
                .map(|p| self.ledger().publication_done(p.id, now_ms()));
            if let Some(Err(e)) = done {
                tracing::error!(flow = %flow.name, "ledger: {e}");
            }
            if export.chatter {
                notes.push(async move {
                    let body = format!("EDI: published as {path} (flow {})", flow.name);
                    if let Err(e) = mark::note(client, &export.model, *id, &body).await {
                        tracing::warn!(flow = %flow.name, "record {id}: the chatter note failed: {e}");
                    }
                });
            }
        }
        // One note per call (message_post takes one record); side by side up to the
        // client's max_concurrency.
        futures::future::join_all(notes).await;
        failed
    }

    /// Files published before a crash (or an Odoo outage) whose records are not marked yet:
    /// marked now, nothing published again.
    async fn repair_marks(
        &self,
        client: &OdooClient,
        flow: &Flow,
        export: &ExportFlow,
        fields: &Fields,
    ) {
        let pending = match self.ledger().unmarked_publications(&flow.name) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(flow = %flow.name, "ledger: {e}");
                return;
            }
        };
        if pending.is_empty() {
            return;
        }
        let published: Vec<(i64, String, String)> = pending
            .iter()
            .map(|p| {
                let path = crate::transport::join(&export.outbox, &p.file_name);
                tracing::info!(flow = %flow.name, "{} was published as {path} before the last run stopped: marking it", p.record_name);
                (p.record_id, p.record_name.clone(), path)
            })
            .collect();
        self.finish_published(client, flow, export, fields, &published)
            .await;
    }

    /// A record whose document was refused: the ledger says why, and so does the chatter
    /// when the flow asks (once per reason, not every pass).
    async fn refused(
        &self,
        client: &OdooClient,
        flow: &Flow,
        export: &ExportFlow,
        picking: &Picking,
        file: &str,
        refusal: &Refusal,
    ) {
        let why = refusal.to_string();
        tracing::warn!(flow = %flow.name, "{} not published: {why}", picking.name);
        let said_before = self
            .ledger()
            .publication_failed(&flow.name, picking.id, &picking.name, file, &why, now_ms())
            .unwrap_or_else(|e| {
                tracing::error!(flow = %flow.name, "ledger: {e}");
                false
            });
        if export.note_on_failure && !said_before {
            let body = format!(
                "EDI: not exported to {} by flow {}: {why}",
                export.outbox, flow.name
            );
            if let Err(e) = mark::note(client, &export.model, picking.id, &body).await {
                tracing::warn!(flow = %flow.name, "{}: the failure note failed: {e}", picking.name);
            }
        }
    }

    /// Dry run: the document is rendered, validated and printed; nothing else happens.
    fn render_dry(
        &self,
        flow: &Flow,
        export: &ExportFlow,
        renderer: &Renderer,
        picking: &Picking,
        note: &str,
    ) -> RecordOutcome {
        let partner = &self.config.partners[&flow.partner];
        let now = jiff::Timestamp::now();
        let name = file_name(
            &export.filename,
            picking,
            &now.to_zoned_datetime(partner.timezone.clone()),
        );
        let path = crate::transport::join(&export.outbox, &name);
        let generated_at = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        match renderer.render(&flow.name, picking, &name, &generated_at) {
            Ok(document) => {
                let document = String::from_utf8_lossy(&document).into_owned();
                if let Ok(mut out) = self.out.lock() {
                    let _ = writeln!(
                        out,
                        "<!-- dry run: flow {}, {}{note} would be published as {path} -->\n{}",
                        flow.name,
                        picking.name,
                        document.trim_end()
                    );
                }
                RecordOutcome::WouldPublish { path, document }
            }
            Err(refusal) => RecordOutcome::Failed(refusal.to_string()),
        }
    }
}

fn odoo_stop(flow: &str, e: SelectError) -> Stopped {
    match e {
        SelectError::Setup(why) => Stopped(format!("{why} (flow {flow})")),
        SelectError::Odoo(e) => match e.consequence() {
            Consequence::Retry => Stopped(format!("Odoo is unreachable, records wait: {e}")),
            _ => Stopped(format!("Odoo: {e}")),
        },
    }
}

fn model_of(flow: &Flow) -> &str {
    match &flow.direction {
        Direction::Export(e) => &e.model,
        Direction::Import(_) => "record",
    }
}
