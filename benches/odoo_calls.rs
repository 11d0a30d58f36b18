//! How many Odoo calls, and how much time, the apply phase of an import pass costs, next to
//! a hand-written per-record script doing the same work.
//!
//! `cargo bench --bench odoo_calls` starts the Odoo 18 stand-in (`tests/support/standin/`)
//! with a per-request latency of `EDI_BENCH_LATENCY_MS` milliseconds (default 50, a remote
//! Odoo behind a proxy), connects an [`OdooClient`] over JSON-RPC as a run would, and measures
//! in one go:
//!
//! 1. a first pass: 400 new products in 20 files of 20, applied together by one [`Applier`]
//!    with `batch_size` 200 (the PRODUCT.md reference case);
//! 2. the same files again: nothing changed, so nothing may be written;
//! 3. the same files with the price of 100 products changed;
//! 4. the per-record script a cron job runs: for each product one `search_read` by
//!    `default_code`, then one `create` or `write` (on a fresh stand-in, so it starts from the
//!    same empty catalogue as pass 1);
//! 5. 5000 new products in 50 files, then the same again, by edi-bridge.
//!
//! Calls are counted by the stand-in (what the server served), per model and method; the
//! login calls of the connection are left out of the passes and shown on their own. Each
//! scenario checks what it left in Odoo, so a number is never that of a pass that did not do
//! its work.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use edi_bridge::config::{Credential, OdooConfig, OdooConnection, OnRecordError, Protocol};
use edi_bridge::mapping::config::{
    Action, FieldMapping, Lookup, Mapping, UpsertMapping, ValueSource, ValueType,
};
use edi_bridge::mapping::path::{FieldPath, QName, RecordPath, Step};
use edi_bridge::odoo::actions::{Applier, BatchDone};
use edi_bridge::odoo::client::{OdooClient, SearchOptions};
use edi_bridge::operation::{ActionKind, LookupRef, Operation};
use serde_json::{Map, Value, json};

// The stand-in is shared with the integration tests; the bench uses part of it.
#[allow(dead_code)]
#[path = "../tests/support/standin/mod.rs"]
mod standin;

use standin::{OdooStandin, StandinOptions};

const NS: &str = "urn:edi-bridge:products:1";
/// Records per Odoo call, as in PRODUCT.md's example configuration.
const BATCH_SIZE: usize = 200;
/// Calls in flight at once, the `max_concurrency` default.
const MAX_CONCURRENCY: usize = 4;

/// One measured scenario: a row of the table.
struct Row {
    name: &'static str,
    files: usize,
    records: usize,
    secs: f64,
    calls: BTreeMap<(String, String), u64>,
    /// The most calls Odoo served at the same time.
    peak: usize,
}

impl Row {
    fn total_calls(&self) -> u64 {
        self.calls.values().sum()
    }

    fn count(&self, method: &str) -> u64 {
        self.calls
            .iter()
            .filter(|((_, m), _)| m == method)
            .map(|(_, n)| n)
            .sum()
    }

    fn kinds(&self) -> String {
        self.calls
            .iter()
            .map(|((model, method), n)| format!("{model}.{method} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
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
        "Odoo 18 stand-in, JSON-RPC, {latency_ms} ms per call, batch_size {BATCH_SIZE}, \
         max_concurrency {}",
        MAX_CONCURRENCY
    );
    let mut rows = Vec::new();

    // 1–3: the reference case, three passes against one Odoo.
    let odoo = standin_with(latency);
    let client = connect(&odoo).await;
    let mapping = products_mapping();
    let files = product_files(400, 20, |_| 0);
    rows.push(pass(&odoo, &client, &mapping, "edi-bridge, first pass", &files).await);
    check_catalogue(&odoo, &files);
    rows.push(pass(&odoo, &client, &mapping, "edi-bridge, same again", &files).await);
    check_catalogue(&odoo, &files);
    // Every fourth product gets a new price: 100 of the 400, five in each file.
    let updated = product_files(400, 20, |n| if n % 4 == 0 { 1 } else { 0 });
    rows.push(
        pass(
            &odoo,
            &client,
            &mapping,
            "edi-bridge, 100 prices changed",
            &updated,
        )
        .await,
    );
    check_catalogue(&odoo, &updated);
    drop(client);
    drop(odoo);

    // 4: what a cron script does with the same 400 products, from the same empty catalogue.
    let odoo = standin_with(latency);
    let client = connect(&odoo).await;
    rows.push(script(&odoo, &client, "per-record script", &files).await);
    check_catalogue(&odoo, &files);
    drop(client);
    drop(odoo);

    // 5: scale.
    let odoo = standin_with(latency);
    let client = connect(&odoo).await;
    let big = product_files(5000, 50, |_| 0);
    rows.push(
        pass(
            &odoo,
            &client,
            &mapping,
            "edi-bridge, 5000 first pass",
            &big,
        )
        .await,
    );
    check_catalogue(&odoo, &big);
    rows.push(
        pass(
            &odoo,
            &client,
            &mapping,
            "edi-bridge, 5000 same again",
            &big,
        )
        .await,
    );
    check_catalogue(&odoo, &big);

    print_table(&rows);
}

fn standin_with(latency: Duration) -> OdooStandin {
    let odoo = OdooStandin::start(StandinOptions::v18());
    odoo.set_latency(latency);
    odoo
}

/// Logs in as a run does (API key, protocol `auto`: JSON-RPC on Odoo 18), then forgets the
/// login calls so the passes count only their own.
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
        max_concurrency: MAX_CONCURRENCY,
    };
    let started = Instant::now();
    let client = OdooClient::connect(&cfg)
        .await
        .expect("connect to the stand-in");
    println!(
        "connect: {:.2} s, {} calls ({})",
        started.elapsed().as_secs_f64(),
        odoo.total_calls(),
        kinds(&odoo.calls())
    );
    odoo.reset_calls();
    client
}

/// One apply phase of an import pass: every file's operations through one [`Applier`].
async fn pass(
    odoo: &OdooStandin,
    client: &OdooClient,
    mapping: &Mapping,
    name: &'static str,
    files: &[Vec<Operation>],
) -> Row {
    odoo.reset_calls();
    odoo.reset_peak_concurrency();
    let slices: Vec<&[Operation]> = files.iter().map(Vec::as_slice).collect();
    let mut batches = 0u64;
    let started = Instant::now();
    // A new applier per pass, as the import pass makes one: its lookup cache starts empty.
    let mut applier = Applier::new(client, BATCH_SIZE).with_lanes(MAX_CONCURRENCY);
    let results = applier
        .apply(
            mapping,
            &slices,
            OnRecordError::Skip,
            &mut |_: BatchDone| batches += 1,
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: apply failed: {e}"));
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(results.len(), files.len(), "{name}: one result per file");
    for (i, (result, ops)) in results.iter().zip(files).enumerate() {
        assert!(
            result.failed.is_empty(),
            "{name}: file {i}: {:?}",
            result.failed.first()
        );
        assert_eq!(result.applied.len(), ops.len(), "{name}: file {i} applied");
    }
    assert!(batches > 0, "{name}: no batch reported");
    row(odoo, name, files, secs)
}

/// The baseline: a cron script with a client library. It resolves the unit once, then per
/// product asks whether it exists and creates or writes it — two calls per record.
async fn script(
    odoo: &OdooStandin,
    client: &OdooClient,
    name: &'static str,
    files: &[Vec<Operation>],
) -> Row {
    odoo.reset_calls();
    odoo.reset_peak_concurrency();
    let started = Instant::now();
    let units = client
        .search_read(
            "uom.uom",
            json!([["name", "=", "Units"]]),
            &["id"],
            SearchOptions {
                limit: Some(1),
                ..SearchOptions::default()
            },
        )
        .await
        .expect("script: find the unit");
    let unit = units[0]["id"].clone();
    for op in files.iter().flatten() {
        let mut vals = op.values.clone();
        vals.insert("uom_id".into(), unit.clone());
        let found = client
            .search_read(
                "product.product",
                json!([["default_code", "=", op.key["default_code"]]]),
                &["id"],
                SearchOptions {
                    limit: Some(1),
                    ..SearchOptions::default()
                },
            )
            .await
            .expect("script: search_read");
        match found.first().and_then(|r| r["id"].as_i64()) {
            Some(id) => client
                .write("product.product", &[id], vals, None)
                .await
                .expect("script: write"),
            None => {
                client
                    .create("product.product", vec![vals], None)
                    .await
                    .expect("script: create");
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    row(odoo, name, files, secs)
}

fn row(odoo: &OdooStandin, name: &'static str, files: &[Vec<Operation>], secs: f64) -> Row {
    let row = Row {
        name,
        files: files.len(),
        records: files.iter().map(Vec::len).sum(),
        secs,
        calls: odoo.calls(),
        peak: odoo.peak_concurrency(),
    };
    println!(
        "{name}: {:.2} s, {} calls ({}), at most {} at once",
        row.secs,
        row.total_calls(),
        row.kinds(),
        row.peak
    );
    row
}

/// Odoo holds exactly the files' products, once each, with their names and prices.
fn check_catalogue(odoo: &OdooStandin, files: &[Vec<Operation>]) {
    let mut in_odoo: BTreeMap<String, Vec<Map<String, Value>>> = BTreeMap::new();
    for p in odoo.records("product.product") {
        if let Some(code) = p.get("default_code").and_then(Value::as_str)
            && code.starts_with("BENCH-")
        {
            in_odoo.entry(code.to_owned()).or_default().push(p);
        }
    }
    let expected: usize = files.iter().map(Vec::len).sum();
    assert_eq!(in_odoo.len(), expected, "products in Odoo");
    for op in files.iter().flatten() {
        let code = op.key["default_code"].as_str().expect("code");
        let found = &in_odoo[code];
        assert_eq!(found.len(), 1, "{code} is in Odoo once");
        assert_eq!(found[0]["name"], op.values["name"], "{code} name");
        assert_eq!(
            found[0]["list_price"], op.values["list_price"],
            "{code} price"
        );
    }
}

/// `total` products split over `files` files; `bump(n)` adds that many euros to product n's
/// price (to change some of them between passes).
fn product_files(total: usize, files: usize, bump: impl Fn(usize) -> u64) -> Vec<Vec<Operation>> {
    let per_file = total / files;
    (0..files)
        .map(|f| {
            (0..per_file)
                .map(|i| {
                    let n = f * per_file + i + 1;
                    product(n, (i + 1) as u64, bump(n))
                })
                .collect()
        })
        .collect()
}

/// What the mapping makes of product `n` (record `record` of its file).
fn product(n: usize, record: u64, bump: u64) -> Operation {
    let code = format!("BENCH-{n:05}");
    let price = (n % 500) as f64 + 0.5 + bump as f64;
    let mut values = Map::new();
    values.insert("default_code".into(), json!(code));
    values.insert(
        "name".into(),
        json!(format!("Bench product {n}, steel & oak")),
    );
    values.insert("list_price".into(), json!(price));
    values.insert("uom_id".into(), json!("Units"));
    let mut key = Map::new();
    key.insert("default_code".into(), json!(code));
    Operation {
        action: ActionKind::Upsert,
        model: "product.product".into(),
        key,
        values,
        lookups: BTreeMap::from([(
            "uom_id".to_owned(),
            LookupRef {
                model: "uom.uom".into(),
                field: "name".into(),
                value: json!("Units"),
            },
        )]),
        record,
        // The record's start line in a canonical products file (7 lines per product).
        line: 3 + (record - 1) * 7,
    }
}

fn qname(local: &str) -> QName {
    QName {
        ns: Some(NS.to_owned()),
        local: local.to_owned(),
    }
}

fn step(local: &str) -> Step {
    Step {
        name: qname(local),
        predicate: None,
    }
}

fn field(name: &str, path: FieldPath, ty: ValueType, lookup: Option<Lookup>) -> FieldMapping {
    FieldMapping {
        field: name.to_owned(),
        source: ValueSource::Path(path),
        ty,
        optional: false,
        lookup,
    }
}

fn child(local: &str) -> FieldPath {
    FieldPath {
        steps: vec![step(local)],
        attr: None,
        text: format!("p:{local}"),
    }
}

/// The mapping the operations come from: canonical products, upsert by `default_code`.
fn products_mapping() -> Mapping {
    let sku = FieldPath {
        steps: vec![],
        attr: Some(QName {
            ns: None,
            local: "sku".into(),
        }),
        text: "@sku".into(),
    };
    let units = Lookup {
        model: "uom.uom".into(),
        field: "name".into(),
    };
    Mapping {
        record: Some(RecordPath {
            steps: vec![step("Products"), step("Product")],
            text: "/p:Products/p:Product".into(),
        }),
        namespaces: BTreeMap::from([("p".to_owned(), NS.to_owned())]),
        model: "product.product".into(),
        action: Action::Upsert(UpsertMapping {
            key: vec!["default_code".into()],
            fields: vec![
                field("default_code", sku, ValueType::String, None),
                field("name", child("Name"), ValueType::String, None),
                field("list_price", child("Price"), ValueType::Float, None),
                field("uom_id", child("Unit"), ValueType::String, Some(units)),
            ],
        }),
    }
}

fn kinds(calls: &BTreeMap<(String, String), u64>) -> String {
    calls
        .iter()
        .map(|((model, method), n)| format!("{model}.{method} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "| scenario | files | records | wall s | records/s | calls | calls/file | search_read \
         | create | write+load | other | in flight |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let total = r.total_calls();
        let (search, create) = (r.count("search_read"), r.count("create"));
        // `load` is how a batch of different updates can go in one call.
        let write = r.count("write") + r.count("load");
        println!(
            "| {} | {} | {} | {:.2} | {:.0} | {} | {:.2} | {} | {} | {} | {} | {} |",
            r.name,
            r.files,
            r.records,
            r.secs,
            r.records as f64 / r.secs,
            total,
            total as f64 / r.files as f64,
            search,
            create,
            write,
            total - search - create - write,
            r.peak,
        );
    }
    println!();
    for r in rows {
        println!("{}: {}", r.name, r.kinds());
    }
}
