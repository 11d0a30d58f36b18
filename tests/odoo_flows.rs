//! Whole flows into Odoo: a real sshd, the `edi-bridge` binary and the Odoo stand-in.
//! Idempotent writes, batches, outages that leave files waiting, records isolated, and
//! kill -9 during a batch without duplicates.

mod support;

use std::fs;

use serde_json::json;
use support::stand::*;
use support::standin::{Fault, OdooStandin, StandinOptions};

fn odoo_section(odoo: &OdooStandin, extra: &str) -> String {
    let opts = odoo.options();
    format!(
        "url = \"{}\"\ndatabase = \"{}\"\nlogin = \"{}\"\napi_key = \"{}\"\ntimeout = \"5s\"\n{extra}",
        odoo.url(),
        opts.database,
        opts.login,
        opts.api_key
    )
}

/// A stand with an Odoo stand-in of `version` behind it.
fn stand(version: u32, odoo_extra: &str, flow_options: &str) -> (Stand, OdooStandin) {
    let opts = if version == 19 {
        StandinOptions::v19()
    } else {
        StandinOptions::v18()
    };
    let odoo = OdooStandin::start(opts);
    let stand = Stand::with_odoo(&odoo_section(&odoo, odoo_extra), flow_options);
    (stand, odoo)
}

fn product_by_code(
    odoo: &OdooStandin,
    code: &str,
) -> Vec<serde_json::Map<String, serde_json::Value>> {
    odoo.search_records(
        "product.product",
        json!([["default_code", "=", code], ["active", "in", [true, false]]]),
    )
}

fn products_run(version: u32) {
    let (stand, odoo) = stand(version, "", "");
    stand.drop_sample("products-1.xml");
    let out = stand.run(&["run", "--once", "products"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let desk = product_by_code(&odoo, "FURN-DESK-160");
    assert_eq!(desk.len(), 1);
    assert_eq!(desk[0]["name"], "Sit-stand desk 160 x 80 cm, oak");
    assert_eq!(desk[0]["list_price"], 649.0);
    assert_eq!(
        odoo.call_count("product.product", "create"),
        1,
        "one create for the batch: {:?}",
        odoo.calls()
    );
    assert_eq!(files_below(&stand.archive_dir()).len(), 1);

    // The same content again (a replay): nothing is written.
    odoo.reset_calls();
    stand.drop_sample("products-1.xml");
    let again = stand.run(&["run", "--once", "products"]);
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    assert_eq!(
        odoo.call_count("product.product", "create"),
        0,
        "{:?}",
        odoo.calls()
    );
    assert_eq!(
        odoo.call_count("product.product", "write"),
        0,
        "{:?}",
        odoo.calls()
    );
    assert_eq!(
        product_by_code(&odoo, "FURN-DESK-160").len(),
        1,
        "no duplicate"
    );
}

#[test]
fn products_are_upserted_once_and_a_second_pass_writes_nothing_over_json_rpc() {
    products_run(18);
}

#[test]
fn products_are_upserted_once_and_a_second_pass_writes_nothing_over_json_2() {
    products_run(19);
}

#[test]
fn an_update_writes_only_what_changed() {
    let (stand, odoo) = stand(18, "", "");
    stand.drop_sample("products-1.xml");
    assert_eq!(code(&stand.run(&["run", "--once", "products"])), 0);
    odoo.reset_calls();
    stand.drop_sample("products-2.xml");
    let out = stand.run(&["run", "--once", "products"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // products-2.xml: a new price and cost for the desk, and a new monitor arm.
    assert_eq!(
        odoo.call_count("product.product", "create"),
        1,
        "{:?}",
        odoo.calls()
    );
    let writes =
        odoo.call_count("product.product", "write") + odoo.call_count("product.product", "load");
    assert_eq!(
        writes,
        1,
        "one call for the changed record: {:?}",
        odoo.calls()
    );
    let desk = product_by_code(&odoo, "FURN-DESK-160");
    assert_eq!(desk.len(), 1);
    assert_eq!(desk[0]["list_price"], 679.0);
    assert_eq!(product_by_code(&odoo, "FURN-ARM-DUAL").len(), 1);
    // The chair was not in the file and is untouched.
    assert_eq!(
        product_by_code(&odoo, "FURN-CHAIR-ERGO")[0]["list_price"],
        329.9
    );
}

#[test]
fn stock_levels_are_set_in_inventory_mode() {
    let (stand, odoo) = stand(18, "", "");
    stand.drop_sample("products-1.xml");
    assert_eq!(code(&stand.run(&["run", "--once", "products"])), 0);
    let stock_inbox = stand.sshd.data_dir().join("out/stock");
    fs::create_dir_all(&stock_inbox).unwrap();
    fs::copy(
        format!("{REPO}/samples/STOCK_20261127_0800.xml"),
        stock_inbox.join("STOCK_20261127_0800.xml"),
    )
    .unwrap();
    let config = fs::read_to_string(&stand.config).unwrap()
        + &format!(
            r#"
[flows.stock]
partner = "acme"
direction = "import"
inbox = "{inbox}"
pattern = "STOCK_*.xml"
settle = "1s"
schema = "{REPO}/xsd/stock.xsd"

[flows.stock.mapping]
record = "/StockReport/Line"
action = "set_stock"
product = {{ path = "Sku", by = "default_code" }}
quantity = "OnHand"
location = "WH/Stock"
lot = {{ path = "Lot", optional = true }}
"#,
            inbox = stock_inbox.display()
        );
    fs::write(&stand.config, config).unwrap();
    // The lot of the sample must exist for its product.
    let chair = product_by_code(&odoo, "FURN-CHAIR-ERGO")[0]["id"]
        .as_i64()
        .unwrap();
    odoo.add_lot("LOT-2026-11-A", chair);
    let out = stand.run(&["run", "--once", "stock"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let desk = product_by_code(&odoo, "FURN-DESK-160")[0]["id"]
        .as_i64()
        .unwrap();
    assert_eq!(odoo.qty_available(desk), 24.0);
    assert_eq!(odoo.qty_available(chair), 112.0);
    let creates = odoo.call_count("stock.quant", "create");
    assert!(
        (1..=2).contains(&creates),
        "quants in one batch: {:?}",
        odoo.calls()
    );
}

#[test]
fn an_odoo_outage_leaves_files_in_the_inbox_and_the_next_pass_applies_them() {
    let (stand, odoo) = stand(18, "", "");
    stand.drop_sample("products-1.xml");
    odoo.stop();
    let out = stand.run(&["run", "--once", "products"]);
    assert_eq!(code(&out), 1, "work left waiting: {}", stderr(&out));
    assert!(
        stand.inbox().join("products-1.xml").exists(),
        "the file waits in the inbox"
    );
    assert!(!stand.error_dir().exists(), "an outage never uses error/");

    odoo.start_again();
    odoo.fail_next(20, Fault::Http502);
    let out = stand.run(&["run", "--once", "products"]);
    assert_eq!(code(&out), 1, "502s: work left waiting: {}", stderr(&out));
    assert!(stand.inbox().join("products-1.xml").exists());
    assert!(!stand.error_dir().exists());

    odoo.clear_faults();
    let out = stand.run(&["run", "--once", "products"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(product_by_code(&odoo, "FURN-LAMP-LED").len(), 1);
    assert_eq!(files_below(&stand.archive_dir()).len(), 1);
}

#[test]
fn a_validation_error_on_one_record_isolates_that_record() {
    let (stand, odoo) = stand(18, "", "");
    odoo.fail_on_value(
        "product.product",
        "default_code",
        "FURN-CAB-3D",
        "The pedestal is blocked by a test.",
    );
    stand.drop_sample("products-1.xml");
    let out = stand.run(&["run", "--once", "products"]);
    assert_eq!(code(&out), 1, "the file went to error/: {}", stderr(&out));
    for code in [
        "FURN-DESK-160",
        "FURN-CHAIR-ERGO",
        "FURN-LAMP-LED",
        "SRV-ASSEMBLY",
    ] {
        assert_eq!(product_by_code(&odoo, code).len(), 1, "{code} applied");
    }
    assert!(product_by_code(&odoo, "FURN-CAB-3D").is_empty());
    let report = fs::read_to_string(stand.error_dir().join("products-1.xml.error.txt")).unwrap();
    assert!(report.contains("record 3"), "{report}");
    assert!(report.contains("ValidationError"), "{report}");
    assert!(report.contains("blocked by a test"), "{report}");
    assert!(report.contains("4 of 5 records were applied"), "{report}");
}

#[test]
fn kill_9_during_a_batch_then_a_rerun_creates_no_duplicates() {
    let (stand, odoo) = stand(18, "batch_size = 2", "");
    stand.drop_sample("products-1.xml");
    stand.run_until_killed("batch", &["run", "--once", "products"]);
    let created_before = odoo.records("product.product").len();
    let out = stand.run(&["run", "--once", "products"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    for code in [
        "FURN-DESK-160",
        "FURN-CHAIR-ERGO",
        "FURN-CAB-3D",
        "FURN-LAMP-LED",
        "SRV-ASSEMBLY",
    ] {
        assert_eq!(
            product_by_code(&odoo, code).len(),
            1,
            "{code} exactly once (before rerun: {created_before} products)"
        );
    }
    assert_eq!(files_below(&stand.archive_dir()).len(), 1);
}

#[test]
fn refused_credentials_stop_the_flow_and_say_api_keys_expire() {
    let odoo = OdooStandin::start(StandinOptions::v18());
    let section = odoo_section(&odoo, "").replace(&odoo.options().api_key, "wrong-key");
    let stand = Stand::with_odoo(&section, "");
    stand.drop_sample("products-1.xml");
    let out = stand.run(&["run", "--once", "products"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("90 days"), "{}", stderr(&out));
    assert!(
        stand.inbox().join("products-1.xml").exists(),
        "files stay in the inbox"
    );
    assert!(!stand.error_dir().exists());
}

#[test]
fn check_reports_every_part_and_exits_0_only_when_all_is_well() {
    let (stand, _odoo) = stand(19, "", "");
    let out = stand.run(&["check"]);
    let table = stdout(&out);
    assert_eq!(code(&out), 0, "{table}{}", stderr(&out));
    assert!(table.contains("partner acme"), "{table}");
    assert!(table.contains("host key verified"), "{table}");
    assert!(table.contains("odoo product.product"), "{table}");
    assert!(table.contains("uom.uom"), "{table}");

    // A mapped field Odoo does not know fails, naming it.
    let text = fs::read_to_string(&stand.config)
        .unwrap()
        .replace("list_price = \"price\"", "x_price = \"price\"");
    fs::write(&stand.config, text).unwrap();
    let out = stand.run(&["check"]);
    assert_eq!(code(&out), 1);
    let table = stdout(&out);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("FAIL") && l.contains("x_price")),
        "{table}"
    );
}
