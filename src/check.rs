//! `edi-bridge check`: tests everything a run needs, without moving a file — the config and
//! schemas, each partner (host key, login, inbox readable, archive, error and outbox
//! writable) and Odoo (login, the flows' models and fields, the right to write them; for an
//! export flow its domain's fields, its mark field and a document rendered and validated). One line per check; each
//! problem says what to fix.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::config::{Config, Direction, Flow, ImportFlow, Partner, PartnerTransport};
use crate::import::finish::archive_target;
use crate::mapping::config::{Action, Format};
use crate::odoo::client::OdooClient;
use crate::schema;
use crate::transport::{self, AnyTransport, Transport};

/// One line of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub ok: bool,
    /// What was checked, e.g. `partner acme`.
    pub subject: String,
    /// What was found, or what to fix.
    pub detail: String,
}

impl Check {
    pub(crate) fn ok(subject: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            ok: true,
            subject: subject.into(),
            detail: detail.into(),
        }
    }
    pub(crate) fn fail(subject: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            ok: false,
            subject: subject.into(),
            detail: detail.into(),
        }
    }
}

/// Runs every check of the configuration.
pub async fn run(config: &Config) -> Vec<Check> {
    let mut checks = vec![Check::ok(
        "config",
        format!("{} is valid", config.file.display()),
    )];
    for flow in config.flows.values() {
        if let Direction::Import(import) = &flow.direction
            && let Format::Xml { schema: xsd } = &import.format
        {
            checks.push(match schema::check_schema(xsd) {
                Ok(()) => Check::ok(
                    format!("flow {}", flow.name),
                    format!("schema {} compiles", xsd.display()),
                ),
                Err(e) => Check::fail(
                    format!("flow {}", flow.name),
                    format!("{e}: fix `flows.{}.schema`", flow.name),
                ),
            });
        }
    }
    for flow in config.flows.values() {
        if let Direction::Export(export) = &flow.direction {
            checks.push(crate::export::check::template(config, flow, export));
        }
    }
    for partner in config.partners.values() {
        let outboxes: Vec<(&Flow, &str)> = config
            .flows
            .values()
            .filter(|f| f.partner == partner.name)
            .filter_map(|f| match &f.direction {
                Direction::Export(e) => Some((f, e.outbox.as_str())),
                Direction::Import(_) => None,
            })
            .collect();
        let flows: Vec<(&Flow, &ImportFlow)> = config
            .flows
            .values()
            .filter(|f| f.partner == partner.name)
            .filter_map(|f| match &f.direction {
                Direction::Import(i) => Some((f, i.as_ref())),
                Direction::Export(_) => None,
            })
            .collect();
        check_partner(partner, &flows, &outboxes, &mut checks).await;
    }
    check_odoo(config, &mut checks).await;
    checks
}

async fn check_partner(
    partner: &Partner,
    flows: &[(&Flow, &ImportFlow)],
    outboxes: &[(&Flow, &str)],
    checks: &mut Vec<Check>,
) {
    let subject = format!("partner {}", partner.name);
    let mut t = match AnyTransport::connect(partner).await {
        Ok(t) => {
            let detail = match &partner.transport {
                PartnerTransport::Sftp(sftp) => format!(
                    "{}@{}:{}: host key verified, logged in",
                    sftp.user, sftp.host, sftp.port
                ),
                PartnerTransport::Local { root } => format!("local folder {}", root.display()),
            };
            checks.push(Check::ok(&subject, detail));
            t
        }
        Err(e) => {
            checks.push(Check::fail(&subject, e.to_string()));
            return;
        }
    };
    for (flow, import) in flows {
        let subject = format!("flow {}", flow.name);
        match t.list(&import.inbox).await {
            Ok(entries) => {
                let files = entries.iter().filter(|e| e.is_file).count();
                checks.push(Check::ok(
                    &subject,
                    format!("inbox {} readable ({files} files)", import.inbox),
                ));
            }
            Err(e) => checks.push(Check::fail(
                &subject,
                format!(
                    "inbox {}: {e}: create it or fix `flows.{}.inbox`",
                    import.inbox, flow.name
                ),
            )),
        }
        let now = jiff::Timestamp::now().to_zoned_datetime(partner.timezone.clone());
        let (archive_dir, _) = archive_target(&import.archive, "probe", &now);
        for (what, dir, key) in [
            ("archive", archive_dir, "archive"),
            ("error", import.error.clone(), "error"),
        ] {
            checks.push(match writable(&mut t, &dir).await {
                Ok(()) => Check::ok(&subject, format!("{what} folder {dir} writable")),
                Err(e) => Check::fail(
                    &subject,
                    format!(
                        "{what} folder {dir}: {e}: fix its permissions or `flows.{}.{key}`",
                        flow.name
                    ),
                ),
            });
        }
    }
    for (flow, outbox) in outboxes {
        checks.push(match writable(&mut t, outbox).await {
            Ok(()) => Check::ok(
                format!("flow {}", flow.name),
                format!("outbox {outbox} writable"),
            ),
            Err(e) => Check::fail(
                format!("flow {}", flow.name),
                format!(
                    "outbox {outbox}: {e}: fix its permissions or `flows.{}.outbox`",
                    flow.name
                ),
            ),
        });
    }
    let _ = t.close().await;
}

/// Creates the folder when missing, then writes and removes a probe file in it.
async fn writable(t: &mut AnyTransport, dir: &str) -> Result<(), String> {
    t.mkdir_all(dir).await.map_err(|e| e.to_string())?;
    let probe = transport::join(dir, ".edi-bridge-check");
    t.put(&probe, b"edi-bridge check\n")
        .await
        .map_err(|e| e.to_string())?;
    t.remove(&probe).await.map_err(|e| e.to_string())
}

/// Every model a flow writes or looks up, with the fields it needs there.
fn models_needed(config: &Config) -> BTreeMap<String, BTreeSet<String>> {
    let mut needed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for flow in config.flows.values() {
        let Direction::Import(import) = &flow.direction else {
            continue;
        };
        let mapping = &import.mapping;
        let fields = match &mapping.action {
            Action::Upsert(upsert) => upsert.fields.iter().collect::<Vec<_>>(),
            Action::SetStock(stock) => {
                let mut f = vec![&stock.product, &stock.quantity, &stock.location];
                f.extend(stock.lot.iter());
                f
            }
            Action::ConfirmDelivery(confirm) => {
                let mut f = vec![&confirm.product];
                f.extend(confirm.lot.iter());
                f
            }
        };
        if let Action::ConfirmDelivery(_) = &mapping.action {
            needed
                .entry("stock.move".into())
                .or_default()
                .extend(["picking_id", "product_id", "product_uom_qty", "state"].map(String::from));
        }
        let model_fields = needed.entry(mapping.model.clone()).or_default();
        if let Action::SetStock(_) = &mapping.action {
            model_fields.extend(
                [
                    "product_id",
                    "location_id",
                    "inventory_quantity",
                    "inventory_quantity_auto_apply",
                    "quantity",
                ]
                .map(String::from),
            );
        }
        if let Action::ConfirmDelivery(confirm) = &mapping.action {
            model_fields.extend(["name", "state", "move_ids"].map(String::from));
            model_fields.insert(confirm.picking.field.clone());
            // Without Odoo's stock_delivery module the tracking number has nowhere to go.
            if let Some(tracking) = &confirm.tracking {
                model_fields.insert(tracking.field.clone());
            }
        }
        for field in &fields {
            if let Action::Upsert(_) = &mapping.action {
                model_fields.insert(field.field.clone());
            }
        }
        for field in fields {
            if let Some(lookup) = &field.lookup {
                needed
                    .entry(lookup.model.clone())
                    .or_default()
                    .insert(lookup.field.clone());
            }
        }
    }
    needed
}

async fn check_odoo(config: &Config, checks: &mut Vec<Check>) {
    if config.odoo.connection.is_none() {
        checks.push(Check::ok(
            "odoo",
            "dry run without a server: nothing to check",
        ));
        return;
    }
    let client = match OdooClient::connect(&config.odoo).await {
        Ok(c) => {
            let version = c.server_version().unwrap_or("unknown version").to_string();
            checks.push(Check::ok(
                "odoo",
                format!("logged in ({:?}, Odoo {version})", c.protocol()),
            ));
            c
        }
        Err(e) => {
            checks.push(Check::fail("odoo", e.to_string()));
            return;
        }
    };
    for flow in config.flows.values() {
        if let Direction::Export(export) = &flow.direction {
            crate::export::check::odoo(config, &client, flow, export, checks).await;
        }
    }
    let written: BTreeSet<String> = config
        .flows
        .values()
        .filter_map(|f| match &f.direction {
            Direction::Import(i) => Some(i.mapping.model.clone()),
            Direction::Export(_) => None,
        })
        .collect();
    for (model, fields) in models_needed(config) {
        let subject = format!("odoo {model}");
        let names: Vec<&str> = fields.iter().map(String::as_str).collect();
        match client.fields_get(&model, None, &["type", "readonly"]).await {
            Ok(known) => {
                let missing: Vec<&str> = names
                    .iter()
                    .copied()
                    .filter(|f| !known.contains_key(*f))
                    .collect();
                if missing.is_empty() {
                    checks.push(Check::ok(
                        &subject,
                        format!("model and fields exist ({})", names.join(", ")),
                    ));
                } else {
                    checks.push(Check::fail(
                        &subject,
                        format!(
                            "no field {} on {model}: fix the mapping, or install the Odoo module that adds it{}",
                            missing.join(", "),
                            // A delivery confirmation's tracking number: the one field whose
                            // module is known to be optional.
                            if missing.contains(&"carrier_tracking_ref") {
                                " (carrier_tracking_ref: the Delivery module, stock_delivery)"
                            } else {
                                ""
                            }
                        ),
                    ));
                }
            }
            Err(e) => {
                checks.push(Check::fail(
                    &subject,
                    format!("{e}: is the model's module installed?"),
                ));
                continue;
            }
        }
        if written.contains(&model) {
            checks.push(match may_write(&client, &model).await {
                Ok(true) => Check::ok(&subject, "this user may create and write"),
                Ok(false) => Check::fail(
                    &subject,
                    format!("this user may not write {model}: give the Odoo user the access rights (e.g. Inventory / Administrator)"),
                ),
                Err(e) => Check::fail(&subject, format!("access check failed: {e}")),
            });
        }
    }
}

async fn may_write(client: &OdooClient, model: &str) -> Result<bool, String> {
    let mut args = serde_json::Map::new();
    args.insert("operation".into(), json!("write"));
    let answer = if client.server_major().unwrap_or(18) >= 18 {
        client
            .call(model, "has_access", Some(Vec::new()), args, None)
            .await
    } else {
        args.insert("raise_exception".into(), json!(false));
        client
            .call(model, "check_access_rights", None, args, None)
            .await
    };
    match answer {
        Ok(Value::Bool(b)) => Ok(b),
        Ok(other) => Err(format!("unexpected answer {other}")),
        Err(e) => Err(e.to_string()),
    }
}

/// The table as text: one line per check, problems marked so they stand out.
pub fn render(checks: &[Check]) -> String {
    let width = checks
        .iter()
        .map(|c| c.subject.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        let mark = if c.ok { "OK  " } else { "FAIL" };
        let _ = writeln!(out, "{mark}  {:<width$}  {}", c.subject, c.detail);
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed == 0 {
        let _ = writeln!(out, "all {} checks passed", checks.len());
    } else {
        let _ = writeln!(out, "{failed} of {} checks failed", checks.len());
    }
    out
}
