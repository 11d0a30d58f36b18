//! The stand-in's storage: compact rows, the indexes its searches and barcode check use, and the
//! journal that undoes a failed call. Searches through an index must answer exactly as a scan
//! of every record does, and a failed call must leave records and indexes as they were.

mod support;

use std::time::Duration;

use edi_bridge::config::{Credential, OdooConfig, OdooConnection, Protocol};
use edi_bridge::odoo::client::{Args, OdooClient, SearchOptions};
use serde_json::{Value, json};
use support::standin::{OdooStandin, StandinOptions};

async fn connect(odoo: &OdooStandin, protocol: Protocol) -> OdooClient {
    let opts = odoo.options();
    OdooClient::connect(&OdooConfig {
        connection: Some(OdooConnection {
            url: odoo.url(),
            database: opts.database,
            login: opts.login,
            credential: Credential::ApiKey(opts.api_key),
            protocol,
        }),
        dry_run: false,
        batch_size: 200,
        timeout: Duration::from_secs(10),
        max_concurrency: 4,
    })
    .await
    .unwrap_or_else(|e| panic!("connect: {e}"))
}

fn vals(v: Value) -> Args {
    v.as_object().expect("object").clone()
}

fn servers() -> [(StandinOptions, Protocol); 2] {
    [
        (StandinOptions::v18(), Protocol::JsonRpc),
        (StandinOptions::v19(), Protocol::Json2),
    ]
}

async fn ids(client: &OdooClient, domain: Value, archived_too: bool) -> Vec<i64> {
    let context = archived_too.then(|| vals(json!({"active_test": false})));
    client
        .search_read(
            "product.product",
            domain,
            &["id"],
            SearchOptions {
                context,
                ..SearchOptions::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("search_read: {e}"))
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect()
}

#[tokio::test]
async fn indexed_searches_answer_as_a_scan_of_every_record() {
    for (opts, protocol) in servers() {
        let odoo = OdooStandin::start(opts);
        let a =
            odoo.add_product_with(json!({"default_code": "A-1", "name": "Zeta", "barcode": "111"}));
        let b = odoo.add_product_with(json!({"default_code": "B-2", "name": "Alpha"}));
        let old = odoo.add_product_with(
            json!({"default_code": "C-3", "name": "Old", "barcode": "333", "active": false}),
        );
        let nameless = odoo.add_product_with(json!({"name": "No code"}));
        // Written after creation: the index follows the new code, not the old one.
        odoo.write_record("product.product", b, json!({"default_code": "B-22"}));
        let tmpl = odoo.record("product.product", a).unwrap()["product_tmpl_id"].clone();
        let client = connect(&odoo, protocol).await;
        let domains = [
            json!([["default_code", "in", ["A-1", "B-2", "B-22", "C-3", "X"]]]),
            json!([["default_code", "=", "B-2"]]),
            json!([["default_code", "in", []]]),
            json!([["default_code", "in", ["A-1", false]]]),
            json!([["default_code", "=", ""]]),
            json!([["barcode", "in", ["111", "333"]]]),
            json!([["id", "in", [a, old, 9999, 3.0, "x"]]]),
            json!([["id", "=", true]]),
            json!([["product_tmpl_id", "=", tmpl]]),
            json!([["product_tmpl_id", "in", [tmpl, 0]]]),
            json!(["|", ["default_code", "=", "A-1"], ["barcode", "=", "333"]]),
            json!([
                ["default_code", "in", ["A-1", "C-3"]],
                ["name", "ilike", "old"]
            ]),
            json!(["|", ["default_code", "=", "A-1"], ["name", "=", "No code"]]),
        ];
        for domain in domains {
            for archived_too in [false, true] {
                let indexed = ids(&client, domain.clone(), archived_too).await;
                // `!` `!` gives the same domain in a form no index serves: every record is
                // evaluated.
                let mut scanned_domain = vec![json!("!"), json!("!")];
                if domain.as_array().unwrap().len() > 1 && domain[0] != json!("|") {
                    scanned_domain.push(json!("&"));
                }
                scanned_domain.extend(domain.as_array().unwrap().iter().cloned());
                let scanned = ids(&client, Value::Array(scanned_domain), archived_too).await;
                assert_eq!(indexed, scanned, "{domain} (archived too: {archived_too})");
            }
        }
        let all = ids(
            &client,
            json!([["default_code", "in", ["A-1", "B-22", "C-3"]]]),
            true,
        )
        .await;
        assert_eq!(all.len(), 3);
        assert!(all.contains(&a) && all.contains(&b) && all.contains(&old));
        assert!(!all.contains(&nameless));
        assert_eq!(
            ids(&client, json!([["default_code", "=", "B-2"]]), true).await,
            Vec::<i64>::new(),
            "the old code is gone from the index"
        );
    }
}

#[tokio::test]
async fn a_failed_call_leaves_records_and_indexes_as_they_were() {
    for (opts, protocol) in servers() {
        let odoo = OdooStandin::start(opts);
        let lamp =
            odoo.add_product_with(json!({"default_code": "L-1", "name": "Lamp", "barcode": "400"}));
        let before = odoo.count("product.product");
        let templates = odoo.count("product.template");
        let client = connect(&odoo, protocol).await;
        // The second product repeats the lamp's barcode: the whole call is refused.
        let err = client
            .create(
                "product.product",
                vec![
                    vals(json!({"default_code": "N-1", "name": "New", "barcode": "500"})),
                    vals(json!({"default_code": "N-2", "name": "Twin", "barcode": "400"})),
                ],
                None,
            )
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("Barcode(s) already assigned"),
            "{err}"
        );
        assert_eq!(odoo.count("product.product"), before);
        assert_eq!(odoo.count("product.template"), templates);
        assert!(
            ids(
                &client,
                json!([["default_code", "in", ["N-1", "N-2"]]]),
                true
            )
            .await
            .is_empty()
        );
        assert_eq!(
            ids(&client, json!([["barcode", "in", ["400", "500"]]]), true).await,
            vec![lamp]
        );
        // A refused write puts the old values back, in the record and in the index.
        let err = client
            .write(
                "product.product",
                &[lamp],
                vals(json!({"default_code": "L-2", "list_price": "lots"})),
                None,
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("could not convert"), "{err}");
        assert_eq!(
            odoo.record("product.product", lamp).unwrap()["default_code"],
            json!("L-1")
        );
        assert_eq!(
            ids(&client, json!([["default_code", "=", "L-1"]]), true).await,
            vec![lamp]
        );
        // The barcode the refused call would have taken is free.
        let created = client
            .create(
                "product.product",
                vec![vals(
                    json!({"default_code": "N-1", "name": "New", "barcode": "500"}),
                )],
                None,
            )
            .await
            .unwrap();
        assert_eq!(
            ids(&client, json!([["barcode", "=", "500"]]), true).await,
            created
        );
    }
}

#[tokio::test]
async fn stored_values_read_back_as_written() {
    let odoo = OdooStandin::start(StandinOptions::v18());
    let id = odoo.add_product_with(json!({
        "default_code": "V-1",
        "name": "Chaise « café » 椅子",
        "list_price": 1.0,
        "weight": -0.5,
        "sequence": -3,
        "description_sale": "",
    }));
    let rec = odoo.record("product.product", id).unwrap();
    assert_eq!(rec["name"], json!("Chaise « café » 椅子"));
    assert_eq!(rec["list_price"], json!(1.0));
    assert_eq!(rec["weight"], json!(-0.5));
    assert_eq!(rec["sequence"], json!(-3));
    assert_eq!(rec["description_sale"], json!(""));
    // Defaults the record never named.
    assert_eq!(rec["active"], json!(true));
    assert_eq!(rec["tracking"], json!("none"));
    assert_eq!(rec["barcode"], json!(false));
    assert_eq!(rec["uom_id"], json!(1));
    odoo.write_record(
        "product.product",
        id,
        json!({"list_price": 7.25, "sequence": 1, "active": false}),
    );
    let rec = odoo.record("product.product", id).unwrap();
    assert_eq!(rec["list_price"], json!(7.25));
    assert_eq!(rec["sequence"], json!(1));
    assert_eq!(rec["active"], json!(false));
    assert_eq!(rec["name"], json!("Chaise « café » 椅子"));
}
