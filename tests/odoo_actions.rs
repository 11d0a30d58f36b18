//! The Odoo actions against the stand-in, over JSON-RPC (Odoo 18) and JSON-2 (Odoo 19):
//! batched upserts and stock levels, idempotent re-runs, per-record failures, outages — and
//! the number of calls each costs, which is the point of batching.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use edi_bridge::config::{
    Config, Credential, Direction, OdooConfig, OdooConnection, OnRecordError, Protocol,
};
use edi_bridge::error::Consequence;
use edi_bridge::mapping::config::{
    Action, FieldMapping, Lookup, Mapping, SetStockMapping, Snapshot, UpsertMapping, ValueSource,
    ValueType,
};
use edi_bridge::mapping::map_file;
use edi_bridge::odoo::actions::{Applier, BatchDone, FileResult, UpdateMethod};
use edi_bridge::odoo::client::{OdooClient, OdooError, RetryPolicy};
use edi_bridge::operation::{ActionKind, LookupRef, Operation};
use serde_json::{Map, Value, json};
use support::standin::{Fault, OdooStandin, StandinOptions};

// -- set-up --------------------------------------------------------------------------------

/// Odoo 18 over JSON-RPC and Odoo 19 over JSON-2: the two ways edi-bridge talks to Odoo.
const SERVERS: [(u32, Protocol); 2] = [(18, Protocol::JsonRpc), (19, Protocol::Json2)];

fn standin(version: u32) -> OdooStandin {
    OdooStandin::start(if version == 18 {
        StandinOptions::v18()
    } else {
        StandinOptions::v19()
    })
}

async fn connect_with(odoo: &OdooStandin, protocol: Protocol, timeout: Duration) -> OdooClient {
    let opts = odoo.options();
    let cfg = OdooConfig {
        connection: Some(OdooConnection {
            url: odoo.url(),
            database: opts.database,
            login: opts.login,
            credential: Credential::ApiKey(opts.api_key),
            protocol,
        }),
        dry_run: false,
        batch_size: 200,
        timeout,
        max_concurrency: 4,
    };
    let client = OdooClient::connect(&cfg)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
        .with_retry(RetryPolicy {
            attempts: 3,
            first_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        });
    // Count only what the actions cost, not the login.
    odoo.reset_calls();
    client
}

async fn connect(odoo: &OdooStandin, protocol: Protocol) -> OdooClient {
    connect_with(odoo, protocol, Duration::from_secs(10)).await
}

fn constant(field: &str, value: Value) -> FieldMapping {
    FieldMapping {
        field: field.into(),
        source: ValueSource::Constant(value),
        ty: ValueType::String,
        optional: false,
        lookup: None,
    }
}

fn looked_up(field: &str, model: &str, by: &str) -> FieldMapping {
    FieldMapping {
        lookup: Some(Lookup {
            model: model.into(),
            field: by.into(),
        }),
        ..constant(field, json!(""))
    }
}

/// `product.product` by `default_code`. The actions read the model, the key and the names
/// of the mapped fields; the values come with the operations.
fn products_mapping() -> Mapping {
    let mut mapping = upsert_mapping("product.product", &["default_code"]);
    if let Action::Upsert(upsert) = &mut mapping.action {
        for field in ["name", "list_price", "is_storable", "sale_ok"] {
            upsert.fields.push(constant(field, json!("")));
        }
        upsert.fields.push(looked_up("uom_id", "uom.uom", "name"));
    }
    mapping
}

fn upsert_mapping(model: &str, key: &[&str]) -> Mapping {
    Mapping {
        record: None,
        namespaces: BTreeMap::new(),
        model: model.into(),
        action: Action::Upsert(UpsertMapping {
            key: key.iter().map(|k| k.to_string()).collect(),
            fields: key.iter().map(|k| constant(k, json!(""))).collect(),
        }),
    }
}

fn stock_mapping(snapshot: Snapshot) -> Mapping {
    Mapping {
        record: None,
        namespaces: BTreeMap::new(),
        model: "stock.quant".into(),
        action: Action::SetStock(SetStockMapping {
            product: looked_up("product_id", "product.product", "default_code"),
            quantity: constant("inventory_quantity", json!(0)),
            location: looked_up("location_id", "stock.location", "complete_name"),
            lot: None,
            snapshot,
        }),
    }
}

fn object(v: Value) -> Map<String, Value> {
    v.as_object().expect("a JSON object").clone()
}

fn lookup(model: &str, field: &str, value: &str) -> LookupRef {
    LookupRef {
        model: model.into(),
        field: field.into(),
        value: json!(value),
    }
}

/// A product upsert as the canonical mapping makes it: the unit looked up by name.
fn product(record: u64, code: &str, name: &str, price: f64, unit: &str) -> Operation {
    Operation {
        action: ActionKind::Upsert,
        model: "product.product".into(),
        key: object(json!({ "default_code": code })),
        values: object(json!({
            "default_code": code,
            "name": name,
            "list_price": price,
            "uom_id": unit,
            "is_storable": true,
        })),
        lookups: BTreeMap::from([("uom_id".to_string(), lookup("uom.uom", "name", unit))]),
        record,
        line: record * 10,
    }
}

/// `n` products `{prefix}-0001`… priced 10.0, 11.0, …
fn catalogue(prefix: &str, n: u64) -> Vec<Operation> {
    (1..=n)
        .map(|i| {
            product(
                i,
                &format!("{prefix}-{i:04}"),
                &format!("{prefix} item {i}"),
                9.0 + i as f64,
                "Units",
            )
        })
        .collect()
}

/// A stock line as the set_stock mapping makes it.
fn line(record: u64, sku: &str, location: &str, quantity: f64, lot: Option<&str>) -> Operation {
    let mut key = object(json!({ "product_id": sku, "location_id": location }));
    let mut lookups = BTreeMap::from([
        (
            "product_id".to_string(),
            lookup("product.product", "default_code", sku),
        ),
        (
            "location_id".to_string(),
            lookup("stock.location", "complete_name", location),
        ),
    ]);
    if let Some(lot) = lot {
        key.insert("lot_id".into(), json!(lot));
        lookups.insert("lot_id".into(), lookup("stock.lot", "name", lot));
    }
    Operation {
        action: ActionKind::SetStock,
        model: "stock.quant".into(),
        key,
        values: object(json!({ "inventory_quantity": quantity })),
        lookups,
        record,
        line: record + 2,
    }
}

/// One apply call: the results and the batches reported to the ledger.
async fn apply(
    applier: &mut Applier<'_>,
    mapping: &Mapping,
    files: &[&[Operation]],
    policy: OnRecordError,
) -> Result<(Vec<FileResult>, Vec<BatchDone>), OdooError> {
    let mut batches = Vec::new();
    let results = applier
        .apply(mapping, files, policy, &mut |done| batches.push(done))
        .await?;
    Ok((results, batches))
}

/// One run (a fresh applier: nothing cached) that must succeed.
async fn run(
    client: &OdooClient,
    batch_size: usize,
    mapping: &Mapping,
    files: &[&[Operation]],
) -> (Vec<FileResult>, Vec<BatchDone>) {
    let mut applier = Applier::new(client, batch_size);
    apply(&mut applier, mapping, files, OnRecordError::Skip)
        .await
        .unwrap_or_else(|e| panic!("apply: {e}"))
}

/// Calls the stand-in served since the last reset, as `model.method → count`.
fn calls(odoo: &OdooStandin) -> BTreeMap<String, u64> {
    odoo.calls()
        .into_iter()
        .map(|((model, method), n)| (format!("{model}.{method}"), n))
        .collect()
}

fn count(calls: &BTreeMap<String, u64>, what: &str) -> u64 {
    calls.get(what).copied().unwrap_or(0)
}

/// Calls that change data in Odoo.
fn writes(calls: &BTreeMap<String, u64>) -> u64 {
    calls
        .iter()
        .filter(|(k, _)| k.ends_with(".create") || k.ends_with(".write") || k.ends_with(".load"))
        .map(|(_, n)| n)
        .sum()
}

fn by_code(odoo: &OdooStandin, code: &str) -> Vec<Map<String, Value>> {
    odoo.search_records("product.product", json!([["default_code", "=", code]]))
}

fn one_by_code(odoo: &OdooStandin, code: &str) -> Map<String, Value> {
    let mut found = by_code(odoo, code);
    assert_eq!(found.len(), 1, "exactly one product {code}: {found:?}");
    found.remove(0)
}

fn all_records(n: u64) -> Vec<u64> {
    (1..=n).collect()
}

// -- upsert ----------------------------------------------------------------------------------

#[tokio::test]
async fn canonical_products_are_created_with_one_search_and_one_create_per_batch() {
    let config = Config::load(Path::new("demo/edi-bridge.toml")).expect("the demo config");
    let Direction::Import(flow) = &config.flows["products"].direction else {
        panic!("products is an import flow");
    };
    let mut ops = Vec::new();
    map_file(
        &flow.format,
        &flow.mapping,
        Path::new("samples/products-1.xml"),
        &mut |op| ops.push(op),
    )
    .expect("the sample maps");
    assert_eq!(ops.len(), 5);

    for (version, protocol) in SERVERS {
        let odoo = standin(version);
        let client = connect(&odoo, protocol).await;
        let (results, batches) = run(&client, 200, &flow.mapping, &[&ops]).await;
        assert_eq!(results[0].applied, all_records(5), "{version}");
        assert!(
            results[0].failed.is_empty(),
            "{version}: {:?}",
            results[0].failed
        );
        assert_eq!(
            batches,
            vec![BatchDone {
                file: 0,
                batch_no: 1,
                records: 5,
                outcome: "ok".into()
            }]
        );
        let c = calls(&odoo);
        assert_eq!(
            c,
            BTreeMap::from([
                ("product.product.create".to_string(), 1),
                ("product.product.fields_get".to_string(), 1),
                ("product.product.search_read".to_string(), 1),
                ("uom.uom.search_read".to_string(), 1),
            ]),
            "Odoo {version}"
        );
        let desk = one_by_code(&odoo, "FURN-DESK-160");
        assert_eq!(desk["name"], json!("Sit-stand desk 160 x 80 cm, oak"));
        assert_eq!(desk["list_price"], json!(649.0));
        assert_eq!(desk["barcode"], json!("5412345000013"));
        assert_eq!(desk["uom_id"], json!(1));
        assert_eq!(desk["is_storable"], json!(true));

        // The same file again (a replay, or a crash after Odoo had it all): nothing written.
        odoo.reset_calls();
        let (results, _) = run(&client, 200, &flow.mapping, &[&ops]).await;
        assert_eq!(results[0].applied, all_records(5));
        let c = calls(&odoo);
        assert_eq!(writes(&c), 0, "Odoo {version}: {c:?}");
        assert_eq!(count(&c, "product.product.search_read"), 1);
        assert_eq!(odoo.records("product.product").len(), 5, "no duplicate");
    }
}

/// The numbers in the module doc of `odoo::actions`: 1000 products in batches of 200.
#[tokio::test]
async fn a_thousand_products_cost_a_dozen_calls_and_updates_one_load_per_batch() {
    for (version, protocol) in SERVERS {
        let odoo = standin(version);
        let client = connect(&odoo, protocol).await;
        let ops = catalogue("BULK", 1000);
        let mapping = products_mapping();

        let started = std::time::Instant::now();
        run(&client, 200, &mapping, &[&ops]).await;
        let created = calls(&odoo);
        eprintln!(
            "Odoo {version}: 1000 new products, batch 200: {created:?} in {:?}",
            started.elapsed()
        );
        assert_eq!(count(&created, "product.product.search_read"), 5);
        assert_eq!(count(&created, "product.product.create"), 5);
        assert_eq!(count(&created, "uom.uom.search_read"), 1);
        assert_eq!(count(&created, "product.product.fields_get"), 1);
        assert_eq!(created.values().sum::<u64>(), 12);
        assert_eq!(odoo.records("product.product").len(), 1000);

        odoo.reset_calls();
        run(&client, 200, &mapping, &[&ops]).await;
        let again = calls(&odoo);
        eprintln!("Odoo {version}: the same 1000 again: {again:?}");
        assert_eq!(writes(&again), 0);
        assert_eq!(again.values().sum::<u64>(), 7);

        // 300 products get a new price each: one load per batch, or one write per record.
        let repriced: Vec<Operation> = ops
            .iter()
            .map(|op| {
                let mut op = op.clone();
                if op.record <= 300 {
                    op.values["list_price"] = json!(1000.0 + op.record as f64);
                }
                op
            })
            .collect();
        odoo.reset_calls();
        run(&client, 200, &mapping, &[&repriced]).await;
        let loaded = calls(&odoo);
        eprintln!("Odoo {version}: 300 of 1000 repriced, write or load: {loaded:?}");
        assert_eq!(count(&loaded, "product.product.load"), 2);
        assert_eq!(count(&loaded, "product.product.write"), 0);
        assert_eq!(count(&loaded, "product.product.create"), 0);
        assert_eq!(one_by_code(&odoo, "BULK-0300")["list_price"], json!(1300.0));
        assert_eq!(one_by_code(&odoo, "BULK-0301")["list_price"], json!(310.0));

        let repriced_again: Vec<Operation> = repriced
            .iter()
            .map(|op| {
                let mut op = op.clone();
                if op.record <= 300 {
                    op.values["list_price"] = json!(2000.0 + op.record as f64);
                }
                op
            })
            .collect();
        odoo.reset_calls();
        let mut applier = Applier::new(&client, 200).with_update_method(UpdateMethod::Write);
        apply(
            &mut applier,
            &mapping,
            &[&repriced_again],
            OnRecordError::Skip,
        )
        .await
        .unwrap();
        let written = calls(&odoo);
        eprintln!("Odoo {version}: 300 of 1000 repriced, grouped writes only: {written:?}");
        assert_eq!(count(&written, "product.product.write"), 300);
        assert_eq!(one_by_code(&odoo, "BULK-0001")["list_price"], json!(2001.0));

        // The same change for 300 products: one write per batch whichever the method.
        let archived: Vec<Operation> = repriced_again
            .iter()
            .map(|op| {
                let mut op = op.clone();
                if op.record > 700 {
                    op.values.insert("sale_ok".into(), json!(false));
                }
                op
            })
            .collect();
        odoo.reset_calls();
        run(&client, 200, &mapping, &[&archived]).await;
        let shared = calls(&odoo);
        eprintln!("Odoo {version}: the same change on 300 of 1000: {shared:?}");
        assert_eq!(count(&shared, "product.product.write"), 2);
        assert_eq!(count(&shared, "product.product.fields_get"), 1);
        assert_eq!(count(&shared, "product.product.load"), 0);
        assert_eq!(one_by_code(&odoo, "BULK-0701")["sale_ok"], json!(false));
        assert_eq!(one_by_code(&odoo, "BULK-0700")["sale_ok"], json!(true));
    }
}

#[tokio::test]
async fn an_update_of_two_fields_of_three_records_writes_only_those() {
    for (version, protocol) in SERVERS {
        let odoo = standin(version);
        let client = connect(&odoo, protocol).await;
        let mapping = products_mapping();
        let ops = catalogue("UPD", 10);
        run(&client, 200, &mapping, &[&ops]).await;

        let changed: Vec<Operation> = ops
            .iter()
            .map(|op| {
                let mut op = op.clone();
                if [2, 5, 9].contains(&op.record) {
                    op.values["name"] = json!(format!("Renamed {}", op.record));
                    op.values["list_price"] = json!(100.0 * op.record as f64);
                }
                op
            })
            .collect();
        for method in [UpdateMethod::WriteOrLoad, UpdateMethod::Write] {
            odoo.reset_calls();
            let mut applier = Applier::new(&client, 200).with_update_method(method);
            let (results, _) = apply(&mut applier, &mapping, &[&changed], OnRecordError::Skip)
                .await
                .unwrap();
            assert_eq!(results[0].applied, all_records(10));
            let c = calls(&odoo);
            assert_eq!(
                count(&c, "product.product.create"),
                0,
                "{version} {method:?}"
            );
            match method {
                // The first time: three records, two fields, three different values.
                UpdateMethod::WriteOrLoad => {
                    assert_eq!(count(&c, "product.product.load"), 1, "{c:?}");
                    assert_eq!(count(&c, "product.product.write"), 0, "{c:?}");
                }
                // The second time everything is already so.
                UpdateMethod::Write => assert_eq!(writes(&c), 0, "{c:?}"),
            }
        }
        for record in [2u64, 5, 9] {
            let p = one_by_code(&odoo, &format!("UPD-{record:04}"));
            assert_eq!(p["name"], json!(format!("Renamed {record}")));
            assert_eq!(p["list_price"], json!(100.0 * record as f64));
        }
        let untouched = one_by_code(&odoo, "UPD-0003");
        assert_eq!(untouched["name"], json!("UPD item 3"));
        assert_eq!(untouched["list_price"], json!(12.0));

        // With writes only, the three records cost three writes of two fields each.
        let again: Vec<Operation> = changed
            .iter()
            .map(|op| {
                let mut op = op.clone();
                if [2, 5, 9].contains(&op.record) {
                    op.values["name"] = json!(format!("Again {}", op.record));
                    op.values["list_price"] = json!(7.0 * op.record as f64);
                }
                op
            })
            .collect();
        odoo.reset_calls();
        let mut applier = Applier::new(&client, 200).with_update_method(UpdateMethod::Write);
        apply(&mut applier, &mapping, &[&again], OnRecordError::Skip)
            .await
            .unwrap();
        let c = calls(&odoo);
        assert_eq!(count(&c, "product.product.write"), 3, "{c:?}");
        assert_eq!(writes(&c), 3, "{c:?}");
        assert_eq!(one_by_code(&odoo, "UPD-0009")["name"], json!("Again 9"));
    }
}

#[tokio::test]
async fn records_of_three_files_share_batches_and_results_stay_per_file() {
    for (version, protocol) in SERVERS {
        let odoo = standin(version);
        let client = connect(&odoo, protocol).await;
        let a = catalogue("FA", 5);
        let b = catalogue("FB", 7);
        let c = catalogue("FC", 9);
        let (results, batches) = run(&client, 10, &products_mapping(), &[&a, &b, &c]).await;

        assert_eq!(results[0].applied, all_records(5));
        assert_eq!(results[1].applied, all_records(7));
        assert_eq!(results[2].applied, all_records(9));
        let done = |file, batch_no, records| BatchDone {
            file,
            batch_no,
            records,
            outcome: "ok".into(),
        };
        assert_eq!(
            batches,
            vec![
                done(0, 1, 5),
                done(1, 1, 5),
                done(1, 2, 2),
                done(2, 2, 8),
                done(2, 3, 1)
            ]
        );
        // 21 records, 3 batches: 3 searches and 3 creates, not one per file or per record.
        let calls = calls(&odoo);
        assert_eq!(
            count(&calls, "product.product.search_read"),
            3,
            "Odoo {version}"
        );
        assert_eq!(count(&calls, "product.product.create"), 3);
        assert_eq!(count(&calls, "uom.uom.search_read"), 1);
        assert_eq!(odoo.records("product.product").len(), 21);
    }
}

#[tokio::test]
async fn a_key_repeated_in_a_pass_is_applied_in_file_order() {
    for (version, protocol) in SERVERS {
        let odoo = standin(version);
        let client = connect(&odoo, protocol).await;
        let first = vec![
            product(1, "DUP-1", "first name", 1.0, "Units"),
            product(2, "DUP-2", "other", 2.0, "Units"),
            product(3, "DUP-1", "second name", 3.0, "Units"),
        ];
        let second = vec![product(1, "DUP-1", "third name", 4.0, "Units")];
        let (results, batches) = run(&client, 200, &products_mapping(), &[&first, &second]).await;
        assert_eq!(results[0].applied, vec![1, 2, 3]);
        assert_eq!(results[1].applied, vec![1]);
        // One record of DUP-1 per batch, the last one last.
        assert_eq!(batches.iter().map(|b| b.batch_no).max(), Some(3));
        let dup = one_by_code(&odoo, "DUP-1");
        assert_eq!(dup["name"], json!("third name"), "Odoo {version}");
        assert_eq!(dup["list_price"], json!(4.0));
    }
}

#[tokio::test]
async fn an_archived_record_is_found_by_its_key_and_not_created_again() {
    for (version, protocol) in SERVERS {
        let odoo = standin(version);
        let client = connect(&odoo, protocol).await;
        let old = odoo.add_product_with(json!({
            "default_code": "ARCH-1", "name": "Old name", "active": false,
        }));
        let ops = vec![product(1, "ARCH-1", "New name", 5.0, "Units")];
        let (results, _) = run(&client, 200, &products_mapping(), &[&ops]).await;
        assert_eq!(results[0].applied, vec![1]);
        let found = by_code(&odoo, "ARCH-1");
        assert_eq!(found.len(), 1, "Odoo {version}: {found:?}");
        assert_eq!(found[0]["id"], json!(old));
        assert_eq!(found[0]["name"], json!("New name"));
        assert_eq!(count(&calls(&odoo), "product.product.create"), 0);
    }
}

#[tokio::test]
async fn a_composite_key_matches_on_all_its_fields() {
    for (version, protocol) in SERVERS {
        let odoo = standin(version);
        let client = connect(&odoo, protocol).await;
        let contact = |record, name: &str, city: &str, phone: &str| Operation {
            action: ActionKind::Upsert,
            model: "res.partner".into(),
            key: object(json!({"name": name, "city": city})),
            values: object(json!({"name": name, "city": city, "phone": phone})),
            lookups: BTreeMap::new(),
            record,
            line: record,
        };
        let mapping = upsert_mapping("res.partner", &["name", "city"]);
        let before = odoo.records("res.partner").len();
        let ops = vec![
            contact(1, "Depot", "Ghent", "+32 9 000 00 01"),
            contact(2, "Depot", "Liège", "+32 4 000 00 02"),
        ];
        run(&client, 200, &mapping, &[&ops]).await;
        assert_eq!(
            odoo.records("res.partner").len(),
            before + 2,
            "Odoo {version}"
        );

        let ops = vec![
            contact(1, "Depot", "Ghent", "+32 9 000 00 01"),
            contact(2, "Depot", "Liège", "+32 4 999 99 99"),
        ];
        odoo.reset_calls();
        run(&client, 200, &mapping, &[&ops]).await;
        let c = calls(&odoo);
        assert_eq!(count(&c, "res.partner.write"), 1, "{c:?}");
        assert_eq!(count(&c, "res.partner.create"), 0, "{c:?}");
        let liege = odoo.search_records("res.partner", json!([["city", "=", "Liège"]]));
        assert_eq!(liege[0]["phone"], json!("+32 4 999 99 99"));
    }
}

#[tokio::test]
async fn an_unknown_unit_fails_only_that_record() {
    for (version, protocol) in SERVERS {
        let odoo = standin(version);
        let client = connect(&odoo, protocol).await;
        let mut ops = catalogue("UOM", 4);
        ops[2] = product(3, "UOM-0003", "Boxed", 3.0, "Boxes");
        let (results, batches) = run(&client, 200, &products_mapping(), &[&ops]).await;

        assert_eq!(results[0].applied, vec![1, 2, 4]);
        assert_eq!(results[0].failed.len(), 1);
        let failure = &results[0].failed[0];
        assert_eq!(failure.record, 3);
        assert_eq!(failure.line, 30);
        assert_eq!(failure.field.as_deref(), Some("uom_id"));
        assert_eq!(failure.value.as_deref(), Some("Boxes"));
        assert_eq!(failure.message, "uom.uom with name 'Boxes' not found");
        assert_eq!(batches[0].outcome, "1 refused", "Odoo {version}");
        assert!(by_code(&odoo, "UOM-0003").is_empty());
        assert_eq!(odoo.records("product.product").len(), 3);
        // Both units were asked for in one search.
        assert_eq!(count(&calls(&odoo), "uom.uom.search_read"), 1);
    }
}

#[tokio::test]
async fn a_validation_error_on_one_value_isolates_exactly_that_record() {
    for (version, protocol) in SERVERS {
        let odoo = standin(version);
        let client = connect(&odoo, protocol).await;
        let message = "The barcode checksum of BAD-0007 is wrong";
        odoo.fail_on_value("product.product", "default_code", "BAD-0007", message);
        let ops = catalogue("BAD", 20);
        let (results, batches) = run(&client, 200, &products_mapping(), &[&ops]).await;

        let good: Vec<u64> = (1..=20).filter(|&r| r != 7).collect();
        assert_eq!(results[0].applied, good, "Odoo {version}");
        assert_eq!(results[0].failed.len(), 1);
        let failure = &results[0].failed[0];
        assert_eq!(failure.record, 7);
        assert_eq!(failure.message, message);
        assert_eq!(
            failure.exception.as_deref(),
            Some("odoo.exceptions.ValidationError")
        );
        assert_eq!(batches[0].outcome, "1 refused");
        assert_eq!(odoo.records("product.product").len(), 19);
        assert!(by_code(&odoo, "BAD-0007").is_empty());
        // Halving 20 to one record: about 2·log2(20) creates, not 20.
        let creates = count(&calls(&odoo), "product.product.create");
        assert!(creates <= 10, "{creates} creates");

        // The same on an update: Odoo's import names the row, the others go through.
        odoo.fail_on_value("product.product", "list_price", 666.0, "No devilish prices");
        let repriced: Vec<Operation> = ops
            .iter()
            .map(|op| {
                let mut op = op.clone();
                op.values["list_price"] = json!(if op.record == 12 {
                    666.0
                } else {
                    50.0 + op.record as f64
                });
                op
            })
            .collect();
        odoo.reset_calls();
        let (results, _) = run(&client, 200, &products_mapping(), &[&repriced]).await;
        let good: Vec<u64> = (1..=20).filter(|&r| r != 7 && r != 12).collect();
        assert_eq!(results[0].applied, good);
        let failed: Vec<(u64, &str)> = results[0]
            .failed
            .iter()
            .map(|f| (f.record, f.message.as_str()))
            .collect();
        assert_eq!(failed, vec![(7, message), (12, "No devilish prices")]);
        assert_eq!(one_by_code(&odoo, "BAD-0011")["list_price"], json!(61.0));
        assert_eq!(one_by_code(&odoo, "BAD-0012")["list_price"], json!(21.0));
        let c = calls(&odoo);
        assert_eq!(count(&c, "product.product.load"), 2, "{c:?}");
    }
}

#[tokio::test]
async fn fail_file_stops_a_file_at_its_first_failed_record_and_spares_the_others() {
    for (version, protocol) in SERVERS {
        let odoo = standin(version);
        let client = connect(&odoo, protocol).await;
        odoo.fail_on_value("product.product", "default_code", "STOP-0003", "refused");
        let stopped = catalogue("STOP", 10);
        let other = catalogue("GO", 4);
        let mut applier = Applier::new(&client, 200);
        let (results, batches) = apply(
            &mut applier,
            &products_mapping(),
            &[&stopped, &other],
            OnRecordError::FailFile,
        )
        .await
        .unwrap();

        assert_eq!(results[0].failed.len(), 1);
        assert_eq!(results[0].failed[0].record, 3);
        // What Odoo had before the failure stays (and is listed); nothing after it is sent.
        assert!(
            results[0].applied.iter().all(|&r| r < 3),
            "{:?}",
            results[0].applied
        );
        let created: Vec<String> = odoo
            .search_records(
                "product.product",
                json!([["default_code", "like", "STOP-"]]),
            )
            .iter()
            .map(|p| p["default_code"].as_str().unwrap().to_string())
            .collect();
        let listed: Vec<String> = results[0]
            .applied
            .iter()
            .map(|r| format!("STOP-{r:04}"))
            .collect();
        assert_eq!(created, listed, "Odoo {version}");
        assert_eq!(results[1].applied, all_records(4));
        assert!(results[1].failed.is_empty());
        let first = batches.iter().find(|b| b.file == 0).unwrap();
        assert!(
            first.outcome.starts_with("1 refused, "),
            "{}",
            first.outcome
        );
        assert!(
            first.outcome.ends_with("not sent (fail_file)"),
            "{}",
            first.outcome
        );
    }
}

/// A partner upsert by `ref`, its company (`parent_id`) looked up by `ref` too.
fn partner(record: u64, r#ref: &str, name: &str, company: Option<&str>) -> Operation {
    let mut values = object(json!({ "ref": r#ref, "name": name }));
    let mut lookups = BTreeMap::new();
    if let Some(company) = company {
        values.insert("parent_id".into(), json!(company));
        lookups.insert(
            "parent_id".to_string(),
            lookup("res.partner", "ref", company),
        );
    }
    Operation {
        action: ActionKind::Upsert,
        model: "res.partner".into(),
        key: object(json!({ "ref": r#ref })),
        values,
        lookups,
        record,
        line: record + 1,
    }
}

#[tokio::test]
async fn a_lookup_of_a_record_the_same_file_creates_earlier_resolves() {
    for (version, protocol) in SERVERS {
        let mut mapping = upsert_mapping("res.partner", &["ref"]);
        if let Action::Upsert(upsert) = &mut mapping.action {
            upsert.fields.push(constant("name", json!("")));
            upsert
                .fields
                .push(looked_up("parent_id", "res.partner", "ref"));
        }
        let ops = vec![
            partner(1, "C-1", "Acme Corp", None),
            partner(2, "P-1", "Ann Acme", Some("C-1")),
            partner(3, "P-2", "Bob Acme", Some("C-1")),
            partner(4, "P-3", "Carl Nowhere", Some("C-404")),
        ];
        // In one batch, and across batches of one record each.
        for batch_size in [200, 1] {
            let odoo = standin(version);
            let client = connect(&odoo, protocol).await;
            let (results, _) = run(&client, batch_size, &mapping, &[&ops]).await;
            assert_eq!(
                results[0].applied,
                vec![1, 2, 3],
                "Odoo {version}, batches of {batch_size}: {:?}",
                results[0].failed
            );
            assert_eq!(results[0].failed.len(), 1);
            assert!(
                results[0].failed[0].message.contains("'C-404' not found"),
                "{}",
                results[0].failed[0].message
            );
            let company = odoo.search_records("res.partner", json!([["ref", "=", "C-1"]]));
            let company = company[0]["id"].as_i64().unwrap();
            for contact in ["P-1", "P-2"] {
                let rec = odoo.search_records("res.partner", json!([["ref", "=", contact]]));
                let parent = rec[0]["parent_id"]
                    .as_i64()
                    .or_else(|| rec[0]["parent_id"][0].as_i64());
                assert_eq!(parent, Some(company), "{contact}");
            }
        }
    }
}

#[tokio::test]
async fn batches_go_out_side_by_side_up_to_max_concurrency_with_the_same_outcome() {
    for (version, protocol) in SERVERS {
        let odoo = standin(version);
        let client = connect(&odoo, protocol).await;
        odoo.set_latency(Duration::from_millis(20));
        let mut ops = catalogue("SIDE", 1000);
        // The same key again at the end: the later record must still be the one applied.
        ops.push(product(
            1001,
            "SIDE-0001",
            "SIDE item 1, renamed",
            9.0,
            "Units",
        ));
        odoo.reset_peak_concurrency();
        let mut applier = Applier::new(&client, 100).with_lanes(4);
        let (results, batches) = apply(
            &mut applier,
            &products_mapping(),
            &[&ops],
            OnRecordError::Skip,
        )
        .await
        .unwrap();
        assert_eq!(
            results[0].applied,
            all_records(1001),
            "{:?}",
            results[0].failed
        );
        assert!(
            odoo.peak_concurrency() > 1,
            "Odoo {version}: batches went out one at a time"
        );
        let numbers: BTreeSet<u32> = batches.iter().map(|b| b.batch_no).collect();
        assert_eq!(
            numbers.len(),
            batches.len(),
            "every batch has a number of its own"
        );
        let found = odoo.search_records(
            "product.product",
            json!([["default_code", "=like", "SIDE-%"]]),
        );
        assert_eq!(found.len(), 1000, "each product once");
        let first = odoo.search_records(
            "product.product",
            json!([["default_code", "=", "SIDE-0001"]]),
        );
        assert_eq!(first[0]["name"], json!("SIDE item 1, renamed"));
        // The unit was looked up once for all batches, the fields described once.
        assert_eq!(odoo.call_count("uom.uom", "search_read"), 1);
        assert_eq!(odoo.call_count("product.product", "fields_get"), 1);
    }
}

// -- set_stock ------------------------------------------------------------------------------

/// Quants of `product` by location id: (plain quantity, quantity in packages).
fn quants_of(odoo: &OdooStandin, product: i64) -> BTreeMap<i64, (f64, f64)> {
    let mut by_location: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    for q in odoo.search_records("stock.quant", json!([["product_id", "=", product]])) {
        let location = q["location_id"]
            .as_i64()
            .or_else(|| q["location_id"][0].as_i64())
            .unwrap();
        let quantity = q["quantity"].as_f64().unwrap();
        let entry = by_location.entry(location).or_default();
        if q["package_id"].as_i64().is_some() || q["package_id"][0].as_i64().is_some() {
            entry.1 += quantity;
        } else {
            entry.0 += quantity;
        }
    }
    by_location
}

#[tokio::test]
async fn a_location_s_quantity_is_the_total_under_it_child_locations_and_packages_included() {
    for (version, protocol) in SERVERS {
        let odoo = standin(version);
        let client = connect(&odoo, protocol).await;
        let desk = odoo.add_product("FURN-DESK-160", "Desk");
        let stock = odoo.stock_location();
        let shelf = odoo.add_location("WH/Stock/Shelf 9", Some("SHELF-9"));
        odoo.put_stock(desk, shelf, 5.0);
        let pallet = odoo.add_record("stock.quant.package", json!({"name": "PACK-1"}));
        odoo.add_record(
            "stock.quant",
            json!({"product_id": desk, "location_id": stock, "package_id": pallet, "quantity": 2.0}),
        );
        let mapping = stock_mapping(Snapshot::Partial);

        // 12 reported for WH/Stock: 5 on the shelf and 2 in the package are part of it.
        let (results, _) = run(
            &client,
            200,
            &mapping,
            &[&[line(1, "FURN-DESK-160", "WH/Stock", 12.0, None)]],
        )
        .await;
        assert_eq!(
            results[0].applied,
            all_records(1),
            "{:?}",
            results[0].failed
        );
        assert_eq!(odoo.qty_available(desk), 12.0, "Odoo {version}");
        let quants = quants_of(&odoo, desk);
        assert_eq!(quants[&stock], (5.0, 2.0));
        assert_eq!(quants[&shelf], (5.0, 0.0));

        // A line for the child location in the same file counts with its own quantity.
        let (results, _) = run(
            &client,
            200,
            &mapping,
            &[&[
                line(1, "FURN-DESK-160", "WH/Stock", 12.0, None),
                line(2, "FURN-DESK-160", "WH/Stock/Shelf 9", 8.0, None),
            ]],
        )
        .await;
        assert_eq!(
            results[0].applied,
            all_records(2),
            "{:?}",
            results[0].failed
        );
        assert_eq!(odoo.qty_available(desk), 12.0);
        let quants = quants_of(&odoo, desk);
        assert_eq!(quants[&stock], (2.0, 2.0));
        assert_eq!(quants[&shelf], (8.0, 0.0));

        // 3 for WH/Stock while 8 lie on its shelf: only a negative quant could make that true.
        let (results, _) = run(
            &client,
            200,
            &mapping,
            &[&[line(1, "FURN-DESK-160", "WH/Stock", 3.0, None)]],
        )
        .await;
        assert!(results[0].applied.is_empty());
        assert_eq!(results[0].failed.len(), 1);
        let message = &results[0].failed[0].message;
        assert!(message.contains("negative"), "{message}");
        assert!(message.contains("child locations"), "{message}");
        assert_eq!(odoo.qty_available(desk), 12.0, "nothing changed");
    }
}

#[tokio::test]
async fn stock_levels_are_set_in_inventory_mode_in_one_create() {
    for (version, protocol) in SERVERS {
        let odoo = standin(version);
        let client = connect(&odoo, protocol).await;
        let desk = odoo.add_product("FURN-DESK-160", "Desk");
        let chair = odoo.add_product("FURN-CHAIR-ERGO", "Chair");
        let lamp = odoo.add_product("FURN-LAMP-LED", "Lamp");
        let lot = odoo.add_lot("LOT-2026-11-A", chair);
        let shelf = odoo.add_location("WH/Stock/Shelf 2", Some("SHELF-2"));
        odoo.reset_calls();
        let ops = vec![
            line(1, "FURN-DESK-160", "WH/Stock", 24.0, None),
            line(
                2,
                "FURN-CHAIR-ERGO",
                "WH/Stock",
                112.0,
                Some("LOT-2026-11-A"),
            ),
            line(3, "FURN-LAMP-LED", "WH/Stock", 6.0, None),
            line(4, "FURN-LAMP-LED", "WH/Stock/Shelf 2", 4.5, None),
        ];
        let mapping = stock_mapping(Snapshot::Partial);
        let (results, batches) = run(&client, 200, &mapping, &[&ops]).await;
        assert_eq!(
            results[0].applied,
            all_records(4),
            "{:?}",
            results[0].failed
        );
        assert_eq!(batches.len(), 1);

        assert_eq!(odoo.qty_available(desk), 24.0, "Odoo {version}");
        assert_eq!(odoo.qty_available(chair), 112.0);
        // WH/Stock's 6 lamps are all there is under it, Shelf 2's 4.5 included.
        assert_eq!(odoo.qty_available(lamp), 6.0);
        let chair_quants = odoo.search_records("stock.quant", json!([["product_id", "=", chair]]));
        assert_eq!(chair_quants.len(), 1);
        assert_eq!(chair_quants[0]["lot_id"], json!(lot));
        let on_shelf = odoo.search_records("stock.quant", json!([["location_id", "=", shelf]]));
        assert_eq!(on_shelf[0]["quantity"], json!(4.5));
        // Applied at once, through inventory moves: nothing left counted but unapplied.
        assert!(
            odoo.records("stock.quant")
                .iter()
                .all(|q| q["inventory_quantity_set"] != json!(true))
        );
        let c = calls(&odoo);
        assert_eq!(
            c,
            BTreeMap::from([
                ("product.product.search_read".to_string(), 1),
                // The lookup by name, and the locations under those of the batch.
                ("stock.location.search_read".to_string(), 2),
                ("stock.lot.search_read".to_string(), 1),
                ("stock.quant.fields_get".to_string(), 1),
                ("stock.quant.search_read".to_string(), 1),
                ("stock.quant.create".to_string(), 1),
            ])
        );

        // The same report again: no create. One level changed: still one create.
        odoo.reset_calls();
        let (results, _) = run(&client, 200, &mapping, &[&ops]).await;
        assert_eq!(results[0].applied, all_records(4));
        assert_eq!(writes(&calls(&odoo)), 0);
        let mut changed = ops.clone();
        changed[0] = line(1, "FURN-DESK-160", "WH/Stock", 20.0, None);
        odoo.reset_calls();
        run(&client, 200, &mapping, &[&changed]).await;
        assert_eq!(count(&calls(&odoo), "stock.quant.create"), 1);
        assert_eq!(odoo.qty_available(desk), 20.0);
        assert_eq!(odoo.qty_available(lamp), 6.0);
    }
}

#[tokio::test]
async fn locations_are_found_by_warehouse_name_or_code_and_by_name() {
    for (version, protocol) in SERVERS {
        let odoo = standin(version);
        let client = connect(&odoo, protocol).await;
        let desk = odoo.add_product("FURN-DESK-160", "Desk");
        let lamp = odoo.add_product("FURN-LAMP-LED", "Lamp");
        let chair = odoo.add_product("FURN-CHAIR", "Chair");
        let shelf = odoo.add_location("WH/Stock/Shelf 4", None);
        let by = |mut op: Operation, field: &str, value: &str| {
            op.lookups
                .insert("location_id".into(), lookup("stock.location", field, value));
            op
        };
        let ops = vec![
            // The demo warehouse is "YourCompany", code "WH": its stock location is WH/Stock.
            by(
                line(1, "FURN-DESK-160", "-", 7.0, None),
                "warehouse",
                "YourCompany",
            ),
            by(line(2, "FURN-LAMP-LED", "-", 3.0, None), "warehouse", "WH"),
            by(line(3, "FURN-CHAIR", "-", 2.0, None), "name", "Shelf 4"),
            by(
                line(4, "FURN-CHAIR", "-", 1.0, None),
                "warehouse",
                "Texas Warehouse",
            ),
        ];
        let (results, _) = run(&client, 200, &stock_mapping(Snapshot::Partial), &[&ops]).await;
        assert_eq!(
            results[0].applied,
            vec![1, 2, 3],
            "Odoo {version}: {:?}",
            results[0].failed
        );
        assert_eq!(results[0].failed.len(), 1);
        assert!(
            results[0].failed[0]
                .message
                .contains("warehouse 'Texas Warehouse' not found"),
            "{}",
            results[0].failed[0].message
        );
        let stock = odoo.stock_location();
        assert_eq!(quants_of(&odoo, desk)[&stock], (7.0, 0.0));
        assert_eq!(quants_of(&odoo, lamp)[&stock], (3.0, 0.0));
        assert_eq!(quants_of(&odoo, chair)[&shelf], (2.0, 0.0));
    }
}

#[tokio::test]
async fn an_unknown_product_fails_that_line_and_names_it() {
    for (version, protocol) in SERVERS {
        let odoo = standin(version);
        let client = connect(&odoo, protocol).await;
        let desk = odoo.add_product("FURN-DESK-160", "Desk");
        let chair = odoo.add_product("FURN-CHAIR-ERGO", "Chair");
        let ops = vec![
            line(1, "FURN-DESK-160", "WH/Stock", 3.0, None),
            line(2, "NO-SUCH-SKU", "WH/Stock", 5.0, None),
            line(3, "FURN-CHAIR-ERGO", "WH/Nowhere", 1.0, None),
            line(4, "FURN-CHAIR-ERGO", "WH/Stock", 2.0, Some("LOT-X")),
        ];
        let (results, batches) =
            run(&client, 200, &stock_mapping(Snapshot::Partial), &[&ops]).await;
        assert_eq!(results[0].applied, vec![1]);
        let failed: Vec<(u64, Option<&str>, &str)> = results[0]
            .failed
            .iter()
            .map(|f| (f.record, f.field.as_deref(), f.message.as_str()))
            .collect();
        assert_eq!(
            failed,
            vec![
                (
                    2,
                    Some("product_id"),
                    "product.product with default_code 'NO-SUCH-SKU' not found"
                ),
                (
                    3,
                    Some("location_id"),
                    "stock.location with complete_name 'WH/Nowhere' not found"
                ),
                (
                    4,
                    Some("lot_id"),
                    "stock.lot with name 'LOT-X' not found for product 'FURN-CHAIR-ERGO'"
                ),
            ],
            "Odoo {version}"
        );
        assert_eq!(results[0].failed[0].value.as_deref(), Some("NO-SUCH-SKU"));
        assert_eq!(batches[0].outcome, "3 refused");
        assert_eq!(odoo.qty_available(desk), 3.0);
        assert_eq!(odoo.qty_available(chair), 0.0);
    }
}

#[tokio::test]
async fn a_full_snapshot_sets_products_absent_from_the_file_to_zero() {
    for (version, protocol) in SERVERS {
        let odoo = standin(version);
        let client = connect(&odoo, protocol).await;
        let stock = odoo.stock_location();
        let shelf = odoo.add_location("WH/Stock/Shelf 2", None);
        let desk = odoo.add_product("FURN-DESK-160", "Desk");
        let chair = odoo.add_product("FURN-CHAIR-ERGO", "Chair");
        let lamp = odoo.add_product("FURN-LAMP-LED", "Lamp");
        let cab = odoo.add_product("FURN-CAB-3D", "Cabinet");
        odoo.put_stock(desk, stock, 10.0);
        odoo.put_stock(lamp, stock, 7.0);
        // Another location, not in the file: left alone.
        odoo.put_stock(cab, shelf, 3.0);
        odoo.reset_calls();

        let ops = vec![
            line(1, "FURN-DESK-160", "WH/Stock", 12.0, None),
            line(2, "FURN-CHAIR-ERGO", "WH/Stock", 4.0, None),
        ];
        let mapping = stock_mapping(Snapshot::Full);
        let (results, batches) = run(&client, 200, &mapping, &[&ops]).await;
        assert_eq!(results[0].applied, vec![1, 2]);
        assert!(results[0].failed.is_empty(), "{:?}", results[0].failed);
        assert_eq!(odoo.qty_available(desk), 12.0, "Odoo {version}");
        assert_eq!(odoo.qty_available(chair), 4.0);
        assert_eq!(odoo.qty_available(lamp), 0.0);
        assert_eq!(odoo.qty_available(cab), 3.0);
        assert_eq!(
            batches.last().unwrap(),
            &BatchDone {
                file: 0,
                batch_no: 2,
                records: 0,
                outcome: "snapshot: 1 set to 0".into()
            }
        );

        // Again: everything already so.
        odoo.reset_calls();
        let (_, batches) = run(&client, 200, &mapping, &[&ops]).await;
        assert_eq!(writes(&calls(&odoo)), 0);
        assert_eq!(batches.len(), 1);

        // Two snapshots of the same location in one pass: the newer one is the stock.
        let older = vec![
            line(1, "FURN-DESK-160", "WH/Stock", 5.0, None),
            line(2, "FURN-LAMP-LED", "WH/Stock", 3.0, None),
        ];
        let newer = vec![line(1, "FURN-DESK-160", "WH/Stock", 4.0, None)];
        let (results, _) = run(&client, 200, &mapping, &[&older, &newer]).await;
        assert_eq!(results[0].applied, vec![1, 2]);
        assert_eq!(results[1].applied, vec![1]);
        assert_eq!(odoo.qty_available(desk), 4.0);
        assert_eq!(odoo.qty_available(lamp), 0.0);
        assert_eq!(odoo.qty_available(chair), 0.0);
        assert_eq!(odoo.qty_available(cab), 3.0);
    }
}

#[tokio::test]
async fn a_full_snapshot_with_an_unknown_product_sets_nothing_to_zero() {
    for (version, protocol) in SERVERS {
        let odoo = standin(version);
        let client = connect(&odoo, protocol).await;
        let stock = odoo.stock_location();
        let desk = odoo.add_product("FURN-DESK-160", "Desk");
        let lamp = odoo.add_product("FURN-LAMP-LED", "Lamp");
        odoo.put_stock(desk, stock, 10.0);
        odoo.put_stock(lamp, stock, 7.0);
        // The second line names a product Odoo does not know — perhaps the lamp under a
        // new code: the file's snapshot is not known whole, so nothing is zeroed on its word.
        let ops = vec![
            line(1, "FURN-DESK-160", "WH/Stock", 12.0, None),
            line(2, "FURN-LAMP-NEW", "WH/Stock", 7.0, None),
        ];
        let (results, _) = run(&client, 200, &stock_mapping(Snapshot::Full), &[&ops]).await;
        assert_eq!(results[0].applied, vec![1], "Odoo {version}");
        assert_eq!(results[0].failed.len(), 1);
        assert!(
            results[0].failed[0].message.contains("FURN-LAMP-NEW"),
            "{:?}",
            results[0].failed
        );
        assert_eq!(odoo.qty_available(desk), 12.0);
        assert_eq!(odoo.qty_available(lamp), 7.0, "not zeroed");
    }
}

#[tokio::test]
async fn a_line_of_a_lot_tracked_product_without_a_lot_is_refused() {
    for (version, protocol) in SERVERS {
        let odoo = standin(version);
        let client = connect(&odoo, protocol).await;
        let chair = odoo.add_product("FURN-CHAIR-ERGO", "Chair");
        odoo.add_lot("LOT-1", chair);
        let desk = odoo.add_product("FURN-DESK-160", "Desk");
        let ops = vec![
            line(1, "FURN-CHAIR-ERGO", "WH/Stock", 5.0, None),
            line(2, "FURN-DESK-160", "WH/Stock", 3.0, None),
        ];
        let (results, _) = run(&client, 200, &stock_mapping(Snapshot::Partial), &[&ops]).await;
        assert_eq!(results[0].applied, vec![2], "Odoo {version}");
        assert_eq!(results[0].failed.len(), 1);
        assert_eq!(results[0].failed[0].record, 1);
        assert!(
            results[0].failed[0].message.contains("needs a lot"),
            "{:?}",
            results[0].failed
        );
        assert_eq!(odoo.qty_available(desk), 3.0);
        assert_eq!(odoo.qty_available(chair), 0.0);
    }
}

// -- outages --------------------------------------------------------------------------------

#[tokio::test]
async fn an_outage_ends_the_call_with_retry_and_nothing_half_reported() {
    for (version, protocol) in SERVERS {
        for fault in [
            Fault::Http502,
            Fault::ConnectionReset,
            Fault::SerializationFailure,
        ] {
            let odoo = standin(version);
            let client = connect(&odoo, protocol).await;
            // Every attempt of the first read fails.
            odoo.fail_next(3, fault);
            let ops = catalogue("OUT", 5);
            let mut applier = Applier::new(&client, 200);
            let mut batches = Vec::new();
            let e = applier
                .apply(
                    &products_mapping(),
                    &[&ops],
                    OnRecordError::Skip,
                    &mut |d| batches.push(d),
                )
                .await
                .expect_err("an outage");
            assert_eq!(
                e.consequence(),
                Consequence::Retry,
                "Odoo {version} {fault:?}: {e}"
            );
            assert!(batches.is_empty(), "{batches:?}");
            assert!(odoo.records("product.product").is_empty());
            assert_eq!(odoo.pending_faults(), 0);
        }
    }
}

#[tokio::test]
async fn odoo_going_down_mid_pass_leaves_the_rest_for_an_idempotent_rerun() {
    for (version, protocol) in SERVERS {
        let odoo = standin(version);
        let client = connect(&odoo, protocol).await;
        let a = catalogue("MID", 25);
        let mapping = products_mapping();
        let mut applier = Applier::new(&client, 10);
        let mut batches = Vec::new();
        let e = applier
            .apply(&mapping, &[&a], OnRecordError::Skip, &mut |done| {
                batches.push(done);
                // Odoo goes away right after the first batch.
                odoo.stop();
            })
            .await
            .expect_err("Odoo is down");
        assert_eq!(e.consequence(), Consequence::Retry, "{e}");
        assert_eq!(batches.len(), 1, "only the finished batch is reported");
        assert_eq!(odoo.records("product.product").len(), 10);

        odoo.start_again();
        odoo.reset_calls();
        let (results, _) = run(&client, 10, &mapping, &[&a]).await;
        assert_eq!(results[0].applied, all_records(25));
        assert_eq!(odoo.records("product.product").len(), 25, "Odoo {version}");
        // The first batch was found as it was: created once.
        assert_eq!(count(&calls(&odoo), "product.product.create"), 2);
    }
}

#[tokio::test]
async fn a_batch_that_keeps_timing_out_is_halved_once_then_waits() {
    for (version, protocol) in SERVERS {
        let odoo = standin(version);
        let client = connect_with(&odoo, protocol, Duration::from_millis(300)).await;
        odoo.set_latency(Duration::from_millis(600));
        let ops = catalogue("SLOW", 4);
        let mut applier = Applier::new(&client, 200);
        let mut batches = Vec::new();
        let e = applier
            .apply(
                &products_mapping(),
                &[&ops],
                OnRecordError::Skip,
                &mut |d| batches.push(d),
            )
            .await
            .expect_err("Odoo is too slow");
        assert!(e.is_timeout(), "Odoo {version}: {e}");
        assert_eq!(e.consequence(), Consequence::Retry);
        assert!(batches.is_empty());
        // The whole batch's first read (3 attempts), then the first half's (3 attempts).
        // Counted as sent: the stand-in drops a request whose client gave up.
        assert_eq!(
            client.calls().get("search_read"),
            Some(&6),
            "{:?}",
            client.calls()
        );
        assert_eq!(writes(&calls(&odoo)), 0);
        odoo.clear_faults();
    }
}

#[tokio::test]
async fn a_barcode_moving_from_an_existing_product_to_a_new_one_is_applied() {
    for (version, protocol) in SERVERS {
        let odoo = standin(version);
        let client = connect(&odoo, protocol).await;
        odoo.add_product_with(json!({
            "default_code": "EAN-OLD", "name": "Old", "barcode": "5400000000017",
        }));
        let with_barcode = |mut op: Operation, barcode: &str| {
            op.values.insert("barcode".into(), json!(barcode));
            op
        };
        let ops = vec![
            with_barcode(product(1, "EAN-NEW", "New", 2.0, "Units"), "5400000000017"),
            with_barcode(product(2, "EAN-OLD", "Old", 1.0, "Units"), "5400000000024"),
        ];
        let (results, _) = run(&client, 200, &products_mapping(), &[&ops]).await;
        assert!(
            results[0].failed.is_empty(),
            "Odoo {version}: {:?}",
            results[0].failed
        );
        assert_eq!(
            one_by_code(&odoo, "EAN-NEW")["barcode"],
            json!("5400000000017")
        );
        assert_eq!(
            one_by_code(&odoo, "EAN-OLD")["barcode"],
            json!("5400000000024")
        );
    }
}
