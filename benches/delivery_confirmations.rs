//! How many Odoo calls, and how much time, delivery confirmations (`confirm_delivery`) cost,
//! next to a per-picking script doing the same work the way the transcripts do it.
//!
//! `cargo bench --bench delivery_confirmations` starts the Odoo 18 stand-in with a per-request
//! latency of `EDI_BENCH_LATENCY_MS` milliseconds (default 50), makes 100 ready deliveries of
//! two products each (a customer with a phone: the SMS wizard is in play), maps 10 files of 10
//! confirmations with the ready mapping (`examples/delivery-confirmation.toml`; every fifth
//! picking short-shipped, so a backorder is created) and measures:
//!
//! 1. edi-bridge applying the 10 files together with one `Applier` (`batch_size` 200);
//! 2. the same files again (replays: nothing may be written or validated);
//! 3. the first pass with a tracking number on every shipment (Odoo with `stock_delivery`);
//! 4. a per-picking script on a fresh stand-in: find the picking, read its moves, write each
//!    move, validate (`skip_sms`, `skip_backorder`) — the exchanges of the transcripts.
//!
//! Each scenario checks that every picking ended done, so no number is that of a pass that did
//! not do its work.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use edi_bridge::config::{
    Config, Credential, Direction, OdooConfig, OdooConnection, OnRecordError, Protocol,
};
use edi_bridge::mapping::config::Mapping;
use edi_bridge::mapping::map::map_file;
use edi_bridge::odoo::actions::{Applier, BatchDone, FileResult};
use edi_bridge::odoo::client::{OdooClient, SearchOptions};
use edi_bridge::operation::Operation;
use serde_json::{Map, Value, json};

// The stand-in is shared with the integration tests; the bench uses part of it.
#[allow(dead_code)]
#[path = "../tests/support/standin/mod.rs"]
mod standin;

use standin::{OdooStandin, StandinOptions};

const BATCH_SIZE: usize = 200;
const PICKINGS: usize = 100;
const FILES: usize = 10;

fn main() {
    let latency = Duration::from_millis(
        std::env::var("EDI_BENCH_LATENCY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(50),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(latency));
}

async fn run(latency: Duration) {
    let config =
        Config::load(Path::new("examples/delivery-confirmation.toml")).expect("the ready mapping");
    let Direction::Import(flow) = &config.flows["shipped"].direction else {
        panic!("shipped is an import flow");
    };
    println!(
        "{PICKINGS} confirmations in {FILES} files, latency {} ms per call",
        latency.as_millis()
    );

    let odoo = seeded(latency, false);
    let names = pickings(&odoo);
    let files = confirmation_files(&flow.format, &flow.mapping, &names, false);
    let client = connect(&odoo).await;
    let mut rows = Vec::new();
    for name in ["edi-bridge, first pass", "edi-bridge, same again"] {
        odoo.reset_calls();
        let (results, secs) = apply_all(&client, &flow.mapping, &files, name).await;
        for r in &results {
            assert!(r.failed.is_empty(), "{name}: {:?}", r.failed.first());
            assert_eq!(r.applied.len(), PICKINGS / FILES, "{name}");
        }
        all_done(&odoo, name);
        rows.push((name, secs, odoo.calls()));
    }
    assert_eq!(
        odoo.call_count("stock.picking", "button_validate"),
        0,
        "a replay validates nothing"
    );

    // With a tracking number per picking (Odoo with stock_delivery): one more write each.
    let odoo = seeded(latency, true);
    let names = pickings(&odoo);
    let tracked = confirmation_files(&flow.format, &flow.mapping, &names, true);
    let client = connect(&odoo).await;
    let (results, secs) =
        apply_all(&client, &flow.mapping, &tracked, "with tracking numbers").await;
    assert!(results.iter().all(|r| r.failed.is_empty()));
    all_done(&odoo, "with tracking numbers");
    let records = odoo.records("stock.picking");
    assert!(
        records
            .iter()
            .filter(|p| p["backorder_id"] == json!(false))
            .all(|p| p["carrier_tracking_ref"]
                .as_str()
                .is_some_and(|t| t.starts_with("1Z"))),
        "every picking has its tracking number"
    );
    rows.push(("edi-bridge, with tracking numbers", secs, odoo.calls()));

    // The per-picking script, on a fresh stand-in with the same data.
    let odoo = seeded(latency, false);
    let names = pickings(&odoo);
    let client = connect(&odoo).await;
    let started = Instant::now();
    for (i, name) in names.iter().enumerate() {
        let found = client
            .search_read(
                "stock.picking",
                json!([["name", "=", name]]),
                &["state"],
                SearchOptions::default(),
            )
            .await
            .expect("script: picking");
        let id = found[0]["id"].as_i64().expect("picking id");
        let moves = client
            .search_read(
                "stock.move",
                json!([["picking_id", "=", id]]),
                &["product_uom_qty"],
                SearchOptions::default(),
            )
            .await
            .expect("script: moves");
        for (j, m) in moves.iter().enumerate() {
            let demand = m["product_uom_qty"].as_f64().unwrap_or(0.0);
            let shipped = if j == 0 && short(i) {
                demand - 1.0
            } else {
                demand
            };
            let mut vals = Map::new();
            vals.insert("quantity".into(), json!(shipped));
            vals.insert("picked".into(), json!(true));
            client
                .write("stock.move", &[m["id"].as_i64().unwrap()], vals, None)
                .await
                .expect("script: write move");
        }
        let mut ctx = Map::new();
        ctx.insert("skip_sms".into(), json!(true));
        ctx.insert("skip_backorder".into(), json!(true));
        client
            .call(
                "stock.picking",
                "button_validate",
                Some(vec![id]),
                Map::new(),
                Some(ctx),
            )
            .await
            .expect("script: validate");
    }
    let secs = started.elapsed().as_secs_f64();
    all_done(&odoo, "script");
    rows.push(("per-picking script", secs, odoo.calls()));

    println!("| scenario | pickings | wall s | calls | calls/picking | calls by kind |");
    println!("|---|---:|---:|---:|---:|---|");
    for (name, secs, calls) in rows {
        let total: u64 = calls.values().sum();
        println!(
            "| {name} | {PICKINGS} | {secs:.2} | {total} | {:.2} | {} |",
            total as f64 / PICKINGS as f64,
            kinds(&calls)
        );
    }
}

/// Every fifth picking is short-shipped by one unit of its first product.
/// Applies every file's operations as a pass does (4 lanes, records skipped on error): the
/// results and the seconds it took.
async fn apply_all(
    client: &OdooClient,
    mapping: &Mapping,
    files: &[Vec<Operation>],
    what: &str,
) -> (Vec<FileResult>, f64) {
    let slices: Vec<&[Operation]> = files.iter().map(Vec::as_slice).collect();
    let started = Instant::now();
    let mut applier = Applier::new(client, BATCH_SIZE).with_lanes(4);
    let results = applier
        .apply(
            mapping,
            &slices,
            OnRecordError::Skip,
            &mut |_: BatchDone| {},
        )
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    (results, started.elapsed().as_secs_f64())
}

fn short(i: usize) -> bool {
    i % 5 == 4
}

fn seeded(latency: Duration, delivery_module: bool) -> OdooStandin {
    let mut opts = StandinOptions::v18();
    opts.delivery_module = delivery_module;
    let odoo = OdooStandin::start(opts);
    odoo.set_latency(Duration::ZERO);
    let partner = odoo.add_record(
        "res.partner",
        json!({"name": "Bench Customer", "is_company": true, "phone": "+32 2 555 01 01"}),
    );
    let stock = odoo.stock_location();
    let products: Vec<i64> = (0..10)
        .map(|i| {
            let p = odoo.add_product(&format!("BENCH-{i:02}"), &format!("Bench product {i}"));
            odoo.put_stock(p, stock, 10_000.0);
            p
        })
        .collect();
    for i in 0..PICKINGS {
        odoo.add_delivery(
            partner,
            &[(products[i % 10], 5.0), (products[(i + 3) % 10], 3.0)],
        );
    }
    odoo.reset_calls();
    odoo.set_latency(latency);
    odoo
}

/// The pickings' names, in order of creation (read in process: no call, no latency).
fn pickings(odoo: &OdooStandin) -> Vec<String> {
    let mut all = odoo.records("stock.picking");
    all.sort_by_key(|p| p["id"].as_i64());
    odoo.reset_calls();
    all.iter()
        .map(|p| p["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn confirmation_files(
    format: &edi_bridge::mapping::config::Format,
    mapping: &edi_bridge::mapping::config::Mapping,
    names: &[String],
    tracking: bool,
) -> Vec<Vec<Operation>> {
    let dir = tempfile::tempdir().expect("temp dir");
    names
        .chunks(PICKINGS / FILES)
        .enumerate()
        .map(|(f, chunk)| {
            let mut xml = String::from(
                "<Confirmations xmlns=\"urn:edi-bridge:delivery-confirmation:1\">\n",
            );
            for (k, name) in chunk.iter().enumerate() {
                let i = f * (PICKINGS / FILES) + k;
                let first = 5.0 - if short(i) { 1.0 } else { 0.0 };
                let tracking = if tracking {
                    format!("<Tracking>1Z{i:016}</Tracking>")
                } else {
                    String::new()
                };
                xml.push_str(&format!(
                    "<Shipment><Order>{name}</Order>{tracking}<Line><Sku>BENCH-{:02}</Sku><Shipped>{first}</Shipped></Line>\
                     <Line><Sku>BENCH-{:02}</Sku><Shipped>3</Shipped></Line></Shipment>\n",
                    i % 10,
                    (i + 3) % 10
                ));
            }
            xml.push_str("</Confirmations>\n");
            let path = dir.path().join(format!("SHIPPED_{f}.xml"));
            let mut file = std::fs::File::create(&path).expect("file");
            file.write_all(xml.as_bytes()).expect("write");
            let mut ops = Vec::new();
            map_file(format, mapping, &path, &mut |op| ops.push(op)).expect("maps");
            assert_eq!(ops.len(), PICKINGS / FILES);
            ops
        })
        .collect()
}

async fn connect(odoo: &OdooStandin) -> OdooClient {
    let opts = odoo.options();
    let cfg = OdooConfig {
        connection: Some(OdooConnection {
            url: odoo.url(),
            database: opts.database,
            login: opts.login,
            credential: Credential::ApiKey(opts.api_key),
            protocol: Protocol::Auto,
        }),
        dry_run: false,
        batch_size: BATCH_SIZE,
        timeout: Duration::from_secs(60),
        max_concurrency: 4,
    };
    let client = OdooClient::connect(&cfg).await.expect("connect");
    odoo.reset_calls();
    client
}

/// Every original picking is done; the short ones have a backorder.
fn all_done(odoo: &OdooStandin, name: &str) {
    // Read in process: no call, no latency.
    let latency_free = odoo.records("stock.picking");
    let originals: Vec<&Map<String, Value>> = latency_free
        .iter()
        .filter(|p| p["backorder_id"] == json!(false) || p["backorder_id"].is_null())
        .collect();
    assert_eq!(originals.len(), PICKINGS, "{name}");
    assert!(
        originals.iter().all(|p| p["state"] == "done"),
        "{name}: every picking done"
    );
    assert_eq!(
        latency_free.len() - PICKINGS,
        PICKINGS / 5,
        "{name}: one backorder per short picking"
    );
}

fn kinds(calls: &BTreeMap<(String, String), u64>) -> String {
    calls
        .iter()
        .map(|((model, method), n)| format!("{model}.{method} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
