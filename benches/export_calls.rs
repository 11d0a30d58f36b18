//! What an export pass costs: Odoo calls and wall time for 1, 10 and 100 ready deliveries
//! published through a real OpenSSH `sshd` into a partner's outbox.
//!
//! `cargo bench --bench export_calls` starts the Odoo 18 stand-in (`tests/support/standin/`)
//! with a per-request latency of `EDI_BENCH_LATENCY_MS` milliseconds (default 50, a remote
//! Odoo behind a proxy) and an `sshd` on loopback (`tests/support/sshd.rs`), then runs one
//! export pass of the flow `orders` in process, as `run --once orders` does: select, read,
//! render, validate, publish, mark. Each scenario runs on a fresh stand-in with `n` ready
//! deliveries of two lines each, and checks what it left: `n` files in the outbox, `n`
//! pickings marked — so a number is never that of a pass that did not do its work. A second
//! pass over the same deliveries shows what "nothing to do" costs. Calls are counted by the
//! stand-in, per model and method; the login of the connection is included (a run logs in
//! once).

use std::collections::BTreeMap;
use std::fs;
use std::sync::Arc;
use std::time::{Duration, Instant};

use edi_bridge::config::Config;
use edi_bridge::export::pass::RecordOutcome;
use edi_bridge::import::pass::{Listing, Runner};
use edi_bridge::ledger::Ledger;
use serde_json::json;

#[allow(dead_code)]
#[path = "../tests/support/sshd.rs"]
mod sshd;
#[allow(dead_code)]
#[path = "../tests/support/standin/mod.rs"]
mod standin;

use sshd::TestSshd;
use standin::{OdooStandin, StandinOptions};

struct Row {
    name: String,
    pickings: usize,
    published: usize,
    secs: f64,
    calls: BTreeMap<(String, String), u64>,
}

#[tokio::main]
async fn main() {
    let latency_ms: u64 = std::env::var("EDI_BENCH_LATENCY_MS")
        .ok()
        .map(|v| {
            v.parse()
                .expect("EDI_BENCH_LATENCY_MS is a number of milliseconds")
        })
        .unwrap_or(50);
    let latency = Duration::from_millis(latency_ms);
    println!(
        "Odoo 18 stand-in, JSON-RPC, {latency_ms} ms per call; OpenSSH sshd on loopback; \
         2 lines per delivery"
    );
    let sshd = TestSshd::start();
    let mut rows = Vec::new();
    for (n, chatter) in [(1, false), (10, false), (100, false), (100, true)] {
        let (first, again) = scenario(&sshd, latency, n, chatter).await;
        rows.push(first);
        rows.push(again);
    }
    println!();
    println!("| scenario | pickings | published | Odoo calls | wall time | calls by kind |");
    println!("|---|---:|---:|---:|---:|---|");
    for r in &rows {
        let total: u64 = r.calls.values().sum();
        let kinds = r
            .calls
            .iter()
            .map(|((model, method), n)| format!("{model}.{method} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "| {} | {} | {} | {total} | {:.2} s | {kinds} |",
            r.name, r.pickings, r.published, r.secs
        );
    }
}

async fn scenario(sshd: &TestSshd, latency: Duration, n: usize, chatter: bool) -> (Row, Row) {
    let odoo = OdooStandin::start(StandinOptions::v18());
    odoo.add_record(
        "ir.model.fields",
        json!({"name": "x_edi_exported", "model": "stock.picking", "ttype": "boolean",
               "field_description": "EDI exported"}),
    );
    let a = odoo.add_product_with(json!({"default_code": "BENCH-1", "name": "Widget",
                                          "barcode": "4006381333931"}));
    let b = odoo.add_product("BENCH-2", "Gadget");
    let customer = odoo.add_partner("Bench Customer");
    let address = odoo.add_record(
        "res.partner",
        json!({"name": "Bench Warehouse", "parent_id": customer, "street": "Main 1",
               "zip": "1000", "city": "Brussels", "phone": "+32 2 000 00 00"}),
    );
    let pickings: Vec<i64> = (0..n)
        .map(|i| odoo.add_delivery(address, &[(a, 1.0 + i as f64), (b, 2.0)]))
        .collect();
    odoo.set_latency(latency);

    let dir = tempfile::tempdir().unwrap();
    let outbox = sshd.data_dir().join(format!(
        "in/orders-{n}-{}",
        if chatter { "chatter" } else { "plain" }
    ));
    let opts = odoo.options();
    let config = format!(
        r#"
[odoo]
url = "{url}"
database = "{db}"
login = "{login}"
api_key = "{key}"
timeout = "30s"

[ledger]
path = "edi-bridge.db"
spool = "spool"

[partners.acme]
host = "127.0.0.1"
port = {port}
user = "{user}"
key_file = "{client_key}"
host_key = "{host_key}"

[flows.orders]
partner = "acme"
direction = "export"
outbox = "{outbox}"
mark = "x_edi_exported"
chatter = {chatter}
"#,
        url = odoo.url(),
        db = opts.database,
        login = opts.login,
        key = opts.api_key,
        port = sshd.port(),
        user = sshd.user(),
        client_key = sshd.client_key().display(),
        host_key = sshd.host_key_fingerprint(),
        outbox = outbox.display(),
    );
    let path = dir.path().join("edi-bridge.toml");
    fs::write(&path, config).unwrap();
    let config = Arc::new(Config::load(&path).unwrap());
    let label = if chatter { ", chatter notes" } else { "" };

    let mut rows = Vec::new();
    for pass in ["first pass", "same again"] {
        // A run: a fresh process would open the ledger and log in to Odoo.
        let ledger = Ledger::open(&config.ledger.path).unwrap();
        let runner = Runner::new(config.clone(), ledger, Box::new(std::io::sink()));
        odoo.reset_calls();
        let started = Instant::now();
        let summary = runner
            .run_once(&["orders".to_string()], Listing::Once)
            .await;
        let secs = started.elapsed().as_secs_f64();
        assert!(summary.stopped.is_empty(), "{:?}", summary.stopped);
        let published = summary
            .records
            .iter()
            .filter(|r| matches!(r.outcome, RecordOutcome::Published(_)))
            .count();
        rows.push(Row {
            name: format!(
                "{n} picking{}, {pass}{label}",
                if n == 1 { "" } else { "s" }
            ),
            pickings: n,
            published,
            secs,
            calls: odoo.calls(),
        });
    }
    let files = fs::read_dir(&outbox).unwrap().count();
    assert_eq!(files, n, "one file per picking, no .part left");
    for &p in &pickings {
        let rec = odoo.record("stock.picking", p).unwrap();
        assert_eq!(rec["x_edi_exported"], json!(true), "picking {p} marked");
    }
    assert_eq!(rows[0].published, n);
    assert_eq!(rows[1].published, 0);
    let again = rows.pop().unwrap();
    (rows.pop().unwrap(), again)
}
