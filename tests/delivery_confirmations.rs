//! Delivery confirmations (`action = "confirm_delivery"`) end to end: a warehouse's files come
//! through a real sshd into the `edi-bridge` binary, which ships and validates the pickings
//! of the Odoo stand-in (17, 18 and 19 shapes). Odoo enforces none of our rules, so each is
//! proven here: replays change nothing, over-delivery, unknown products, cancelled pickings
//! and pickings done with other quantities fail their record with a clear message.

mod support;

use std::fs;
use std::path::PathBuf;

use serde_json::{Map, Value, json};
use support::stand::*;
use support::standin::{OdooStandin, StandinOptions};

/// One `<Shipment>`: picking name, tracking number, lines (sku, shipped, lot).
type Shipment<'a> = (
    &'a str,
    Option<&'a str>,
    &'a [(&'a str, f64, Option<&'a str>)],
);

/// A confirmation file in the canonical format.
fn confirmation(shipments: &[Shipment]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <Confirmations xmlns=\"urn:edi-bridge:delivery-confirmation:1\">\n",
    );
    for (order, tracking, lines) in shipments {
        xml.push_str(&format!("  <Shipment>\n    <Order>{order}</Order>\n"));
        if let Some(t) = tracking {
            xml.push_str(&format!("    <Tracking>{t}</Tracking>\n"));
        }
        for (sku, shipped, lot) in lines.iter() {
            xml.push_str(&format!(
                "    <Line><Sku>{sku}</Sku><Shipped>{shipped}</Shipped>{}</Line>\n",
                lot.map(|l| format!("<Lot>{l}</Lot>")).unwrap_or_default()
            ));
        }
        xml.push_str("  </Shipment>\n");
    }
    xml.push_str("</Confirmations>\n");
    xml
}

struct Shipped {
    stand: Stand,
    odoo: OdooStandin,
    chair: i64,
    lamp: i64,
    partner: i64,
}

impl Shipped {
    /// An Odoo of `version` (with or without `stock_delivery`) and a `shipped` flow with the
    /// ready mapping of `examples/delivery-confirmation.toml`, its settings replaced by
    /// `replace` (pairs of text).
    fn start(version: u32, delivery_module: bool, dry_run: bool, replace: &[(&str, &str)]) -> Self {
        let mut opts = match version {
            17 => StandinOptions::v17(),
            19 => StandinOptions::v19(),
            _ => StandinOptions::v18(),
        };
        opts.delivery_module = delivery_module;
        let odoo = OdooStandin::start(opts);
        let o = odoo.options();
        let section = format!(
            "url = \"{}\"\ndatabase = \"{}\"\nlogin = \"{}\"\napi_key = \"{}\"\ntimeout = \"5s\"\ndry_run = {dry_run}\n",
            odoo.url(),
            o.database,
            o.login,
            o.api_key
        );
        let stand = Stand::with_odoo(&section, "");
        let data = stand.sshd.data_dir();
        let inbox = data.join("out/shipped");
        fs::create_dir_all(&inbox).unwrap();
        let ready =
            fs::read_to_string(format!("{REPO}/examples/delivery-confirmation.toml")).unwrap();
        let mut mapping = ready[ready.find("[flows.shipped.mapping]").unwrap()..].to_string();
        for (from, to) in replace {
            assert!(mapping.contains(from), "the ready mapping has {from}");
            mapping = mapping.replace(from, to);
        }
        let flow = format!(
            r#"
[flows.shipped]
partner = "acme"
direction = "import"
inbox = "{inbox}"
pattern = "SHIPPED_*.xml"
archive = "{inbox}/archive"
error = "{inbox}/error"
settle = "1s"
settle_max = "1s"
schema = "{REPO}/xsd/delivery-confirmation.xsd"

{mapping}"#,
            inbox = inbox.display()
        );
        let config = fs::read_to_string(&stand.config).unwrap() + &flow;
        fs::write(&stand.config, config).unwrap();

        let chair = odoo.add_product("FURN_7777", "Office Chair");
        let lamp = odoo.add_product("FURN_8888", "Office Lamp");
        // A customer with a phone: Odoo's first validation would answer an SMS wizard.
        let partner = odoo.add_record(
            "res.partner",
            json!({"name": "Wood Corner", "is_company": true, "phone": "(623)-853-7197"}),
        );
        let stock = odoo.stock_location();
        odoo.put_stock(chair, stock, 100.0);
        odoo.put_stock(lamp, stock, 100.0);
        Shipped {
            stand,
            odoo,
            chair,
            lamp,
            partner,
        }
    }

    fn inbox(&self) -> PathBuf {
        self.stand.sshd.data_dir().join("out/shipped")
    }

    /// A ready delivery of `lines` (product, demand); returns its id and name.
    fn delivery(&self, lines: &[(i64, f64)]) -> (i64, String) {
        let id = self.odoo.add_delivery(self.partner, lines);
        (id, self.picking(id)["name"].as_str().unwrap().to_string())
    }

    fn picking(&self, id: i64) -> Map<String, Value> {
        self.odoo.record("stock.picking", id).expect("the picking")
    }

    /// (product, demand, quantity, picked, state) of the picking's moves.
    fn moves(&self, picking: i64) -> Vec<(i64, f64, f64, bool, String)> {
        let mut moves: Vec<_> = self
            .odoo
            .search_records("stock.move", json!([["picking_id", "=", picking]]))
            .into_iter()
            .map(|m| {
                (
                    many2one(&m["product_id"]),
                    m["product_uom_qty"].as_f64().unwrap(),
                    m["quantity"].as_f64().unwrap(),
                    m["picked"] == json!(true),
                    m["state"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        moves.sort_by_key(|m| m.0);
        moves
    }

    fn backorders(&self, picking: i64) -> Vec<Map<String, Value>> {
        self.odoo
            .search_records("stock.picking", json!([["backorder_id", "=", picking]]))
    }

    /// Drops a confirmation file and runs one pass of the flow.
    fn ship(&self, file: &str, shipments: &[Shipment]) -> std::process::Output {
        fs::write(self.inbox().join(file), confirmation(shipments)).unwrap();
        self.stand.run(&["run", "--once", "shipped"])
    }

    fn report(&self, file: &str) -> String {
        fs::read_to_string(self.inbox().join("error").join(format!("{file}.error.txt")))
            .unwrap_or_else(|e| panic!("no error report for {file}: {e}"))
    }

    fn validations(&self) -> u64 {
        self.odoo.call_count("stock.picking", "button_validate")
    }
}

fn many2one(v: &Value) -> i64 {
    match v {
        Value::Array(a) => a[0].as_i64().unwrap(),
        other => other.as_i64().unwrap_or(0),
    }
}

/// Full and partial confirmations (backorder created), the replay of both, and then every
/// refusal of our own in one file next to a good record — on one Odoo version.
fn confirmations_close_pickings(version: u32) {
    let s = Shipped::start(version, true, false, &[]);
    let (full, full_name) = s.delivery(&[(s.chair, 5.0), (s.lamp, 3.0)]);
    let (partial, partial_name) = s.delivery(&[(s.chair, 5.0), (s.lamp, 3.0)]);
    let first: [Shipment; 2] = [
        (
            &full_name,
            Some("1Z999AA10123456784"),
            &[("FURN_7777", 5.0, None), ("FURN_8888", 3.0, None)],
        ),
        (
            &partial_name,
            Some("JJD000390007812345"),
            &[("FURN_7777", 2.0, None), ("FURN_8888", 3.0, None)],
        ),
    ];
    let out = s.ship("SHIPPED_1.xml", &first);
    assert_eq!(code(&out), 0, "Odoo {version}: {}", stderr(&out));
    assert_eq!(files_in(&s.inbox().join("archive")), vec!["SHIPPED_1.xml"]);

    let p = s.picking(full);
    assert_eq!(
        p["state"], "done",
        "Odoo {version}: the SMS wizard was skipped"
    );
    assert_eq!(p["carrier_tracking_ref"], "1Z999AA10123456784");
    assert_eq!(
        s.moves(full),
        vec![
            (s.chair, 5.0, 5.0, true, "done".into()),
            (s.lamp, 3.0, 3.0, true, "done".into())
        ]
    );
    assert!(s.backorders(full).is_empty());
    // Partial: what was not shipped waits in a backorder that points back at the picking.
    assert_eq!(s.picking(partial)["state"], "done");
    assert_eq!(
        s.picking(partial)["carrier_tracking_ref"],
        "JJD000390007812345"
    );
    assert_eq!(s.picking(partial)["backorder_id"], json!(false));
    let backorders = s.backorders(partial);
    assert_eq!(backorders.len(), 1, "Odoo {version}: one backorder");
    let bo = backorders[0]["id"].as_i64().unwrap();
    assert_eq!(s.moves(bo).len(), 1);
    assert_eq!((s.moves(bo)[0].0, s.moves(bo)[0].1), (s.chair, 3.0));
    // Batched: the two pickings cost one read of each kind and one validation for both.
    for ((model, method), expected) in [
        (("stock.picking", "search_read"), 2), // the pickings, then their backorders
        (("stock.move", "search_read"), 1),
        (("product.product", "search_read"), 1),
        (("stock.move", "fields_get"), 1),
        (("stock.picking", "fields_get"), 1), // carrier_tracking_ref, for the tracking number
        // Moves that ship the same quantity share a write (5, 3 and 2 here); the tracking
        // numbers go in one load.
        (("stock.move", "write"), 3),
        (("stock.picking", "load"), 1),
        (("stock.picking", "write"), 0),
        (("stock.picking", "button_validate"), 1),
        (("stock.picking", "read"), 1), // the states after validation
    ] {
        assert_eq!(
            s.odoo.call_count(model, method),
            expected,
            "Odoo {version}: {model}.{method}: {:?}",
            s.odoo.calls()
        );
    }

    // The same confirmations again: success, and nothing is written or validated twice.
    s.odoo.reset_calls();
    let again = s.ship("SHIPPED_2.xml", &first);
    assert_eq!(code(&again), 0, "Odoo {version}: {}", stderr(&again));
    assert_eq!(s.validations(), 0, "{:?}", s.odoo.calls());
    assert_eq!(s.odoo.call_count("stock.picking", "write"), 0);
    assert_eq!(s.odoo.call_count("stock.move", "write"), 0);
    assert_eq!(s.backorders(partial).len(), 1, "no second backorder");

    // Every refusal of ours, each failing only its own record.
    let (over, over_name) = s.delivery(&[(s.chair, 4.0)]);
    let (only_chair, only_chair_name) = s.delivery(&[(s.chair, 2.0)]);
    let (cancelled, cancelled_name) = s.delivery(&[(s.chair, 1.0)]);
    s.odoo.cancel_delivery(cancelled);
    let (good, good_name) = s.delivery(&[(s.lamp, 2.0)]);
    s.odoo.reset_calls();
    let out = s.ship(
        "SHIPPED_3.xml",
        &[
            (&over_name, None, &[("FURN_7777", 6.0, None)]),
            (&only_chair_name, None, &[("FURN_8888", 1.0, None)]),
            (
                &only_chair_name.replace("OUT", "IN"),
                None,
                &[("FURN_7777", 1.0, None)],
            ),
            (&cancelled_name, None, &[("FURN_7777", 1.0, None)]),
            (
                &full_name,
                None,
                &[("FURN_7777", 4.0, None), ("FURN_8888", 3.0, None)],
            ),
            (&good_name, None, &[("FURN_8888", 2.0, None)]),
            (
                &good_name.replace("OUT", "OUT/X"),
                None,
                &[("NO-SUCH-SKU", 1.0, None)],
            ),
        ],
    );
    assert_eq!(code(&out), 1, "Odoo {version}: the file goes to error/");
    let report = s.report("SHIPPED_3.xml");
    for expected in [
        format!("product 'FURN_7777': 6 shipped, but picking {over_name} asks for 4"),
        "allow_over_delivery = true".to_string(),
        format!("product 'FURN_8888' is not in picking {only_chair_name}"),
        format!(
            "no picking with name '{}' in Odoo",
            only_chair_name.replace("OUT", "IN")
        ),
        format!("picking {cancelled_name} is cancelled in Odoo"),
        format!("picking {full_name} was already validated with other quantities"),
        "5 shipped, this file says 4".to_string(),
        "product.product with default_code 'NO-SUCH-SKU' not found".to_string(),
    ] {
        assert!(
            report.contains(&expected),
            "Odoo {version}: report lacks {expected:?}:\n{report}"
        );
    }
    // The good record was applied; the refused pickings are as they were.
    assert_eq!(s.picking(good)["state"], "done");
    assert_eq!(s.picking(over)["state"], "assigned");
    assert_eq!(
        s.moves(over),
        vec![(s.chair, 4.0, 4.0, false, "assigned".into())]
    );
    assert_eq!(s.picking(only_chair)["state"], "assigned");
    assert_eq!(s.picking(cancelled)["state"], "cancel");
    assert_eq!(s.moves(full)[0].2, 5.0, "the done picking is untouched");
    assert_eq!(
        s.validations(),
        1,
        "only the good picking: {:?}",
        s.odoo.calls()
    );
}

#[test]
fn confirmations_close_pickings_on_odoo_17() {
    confirmations_close_pickings(17);
}

#[test]
fn confirmations_close_pickings_on_odoo_18() {
    confirmations_close_pickings(18);
}

#[test]
fn confirmations_close_pickings_on_odoo_19_over_json_2() {
    confirmations_close_pickings(19);
}

#[test]
fn without_backorder_the_rest_is_dropped_and_over_delivery_can_be_allowed() {
    for version in [17, 19] {
        let s = Shipped::start(
            version,
            false,
            false,
            &[
                ("backorder = \"create\"", "backorder = \"none\""),
                ("allow_over_delivery = false", "allow_over_delivery = true"),
            ],
        );
        let (partial, partial_name) = s.delivery(&[(s.chair, 5.0), (s.lamp, 3.0)]);
        let (over, over_name) = s.delivery(&[(s.chair, 5.0)]);
        let out = s.ship(
            "SHIPPED_1.xml",
            &[
                (&partial_name, None, &[("FURN_7777", 2.0, None)]),
                (&over_name, None, &[("FURN_7777", 7.0, None)]),
            ],
        );
        assert_eq!(code(&out), 0, "Odoo {version}: {}", stderr(&out));
        assert_eq!(s.picking(partial)["state"], "done");
        assert!(
            s.backorders(partial).is_empty(),
            "Odoo {version}: no backorder"
        );
        let moves = s.moves(partial);
        // The short move is done with 2 while its demand stays 5 (18/151); the lamp shipped
        // nothing and is dropped.
        assert_eq!(moves[0], (s.chair, 5.0, 2.0, true, "done".into()));
        assert_eq!(moves[1].4, "cancel", "Odoo {version}: {moves:?}");
        assert_eq!(s.picking(over)["state"], "done");
        assert_eq!(
            s.moves(over),
            vec![(s.chair, 5.0, 7.0, true, "done".into())]
        );

        // A replay of the over-delivery is recognised as such.
        s.odoo.reset_calls();
        let again = s.ship(
            "SHIPPED_2.xml",
            &[(&over_name, None, &[("FURN_7777", 7.0, None)])],
        );
        assert_eq!(code(&again), 0, "{}", stderr(&again));
        assert_eq!(s.validations(), 0);
    }
}

#[test]
fn lots_are_shipped_as_move_lines_and_an_unknown_lot_fails_its_record() {
    let s = Shipped::start(18, false, false, &[]);
    let lot_a = s.odoo.add_lot("LOT-A", s.lamp);
    let lot_b = s.odoo.add_lot("LOT-B", s.lamp);
    let stock = s.odoo.stock_location();
    s.odoo.add_record(
        "stock.quant",
        json!({"product_id": s.lamp, "location_id": stock, "lot_id": lot_a, "quantity": 10.0}),
    );
    let (picking, name) = s.delivery(&[(s.lamp, 3.0), (s.chair, 1.0)]);
    let (other, other_name) = s.delivery(&[(s.lamp, 1.0)]);
    let (third, third_name) = s.delivery(&[(s.lamp, 1.0)]);
    let out = s.ship(
        "SHIPPED_1.xml",
        &[
            (
                &name,
                None,
                &[
                    ("FURN_8888", 2.0, Some("LOT-A")),
                    ("FURN_8888", 1.0, Some("LOT-B")),
                    ("FURN_7777", 1.0, None),
                ],
            ),
            (&other_name, None, &[("FURN_8888", 1.0, Some("LOT-NONE"))]),
            (&third_name, None, &[("FURN_8888", 1.0, None)]),
        ],
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let report = s.report("SHIPPED_1.xml");
    assert!(
        report.contains("lot 'LOT-NONE' of product 'FURN_8888' not found"),
        "{report}"
    );
    assert!(
        report.contains("product 'FURN_8888' is tracked by lot or serial number"),
        "{report}"
    );
    assert_eq!(s.picking(third)["state"], "assigned");
    assert_eq!(s.picking(picking)["state"], "done");
    assert_eq!(s.picking(other)["state"], "assigned");
    let lamp_move = s
        .odoo
        .search_records(
            "stock.move",
            json!([["picking_id", "=", picking], ["product_id", "=", s.lamp]]),
        )
        .remove(0);
    let mut lines: Vec<(i64, f64)> = s
        .odoo
        .search_records(
            "stock.move.line",
            json!([["move_id", "=", lamp_move["id"]]]),
        )
        .iter()
        .map(|l| (many2one(&l["lot_id"]), l["quantity"].as_f64().unwrap()))
        .collect();
    lines.sort_by_key(|l| l.0);
    assert_eq!(lines, vec![(lot_a, 2.0), (lot_b, 1.0)]);
    assert_eq!(lamp_move["quantity"], json!(3.0));
    // The lots left the stock location.
    let lot_a_quant = s.odoo.search_records(
        "stock.quant",
        json!([["lot_id", "=", lot_a], ["location_id", "=", stock]]),
    );
    assert_eq!(lot_a_quant[0]["quantity"], json!(8.0));
}

#[test]
fn a_tracking_number_without_stock_delivery_stops_the_flow_and_the_file_waits() {
    let s = Shipped::start(18, false, false, &[]);
    let (plain, plain_name) = s.delivery(&[(s.chair, 1.0)]);
    let (tracked, tracked_name) = s.delivery(&[(s.chair, 1.0)]);
    // No tracking number: stock_delivery is not needed.
    let out = s.ship(
        "SHIPPED_1.xml",
        &[(&plain_name, None, &[("FURN_7777", 1.0, None)])],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(s.picking(plain)["state"], "done");

    s.odoo.reset_calls();
    let out = s.ship(
        "SHIPPED_2.xml",
        &[(&tracked_name, Some("1Z1"), &[("FURN_7777", 1.0, None)])],
    );
    assert_ne!(code(&out), 0);
    let said = stderr(&out) + &stdout(&out);
    assert!(
        said.contains("carrier_tracking_ref") && said.contains("stock_delivery"),
        "{said}"
    );
    // A configuration problem: the file waits in the inbox, nothing went to error/.
    assert!(s.inbox().join("SHIPPED_2.xml").exists());
    assert!(files_in(&s.inbox().join("error")).is_empty());
    assert_eq!(s.picking(tracked)["state"], "assigned");
    assert_eq!(s.odoo.call_count("stock.picking", "write"), 0);
    // `check` names the missing field before any file arrives.
    let check = s.stand.run(&["check"]);
    assert_eq!(code(&check), 1);
    let table = stdout(&check) + &stderr(&check);
    assert!(
        table.contains("no field carrier_tracking_ref on stock.picking")
            && table.contains("stock_delivery"),
        "{table}"
    );
}

#[test]
fn a_dry_run_touches_nothing_and_prints_the_operations() {
    let s = Shipped::start(19, true, true, &[]);
    let (picking, name) = s.delivery(&[(s.chair, 5.0)]);
    let out = s.ship(
        "SHIPPED_1.xml",
        &[(&name, Some("T1"), &[("FURN_7777", 5.0, None)])],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let printed = stdout(&out);
    assert!(
        printed.contains("\"confirm_delivery\"") && printed.contains(&name),
        "{printed}"
    );
    assert_eq!(s.picking(picking)["state"], "assigned");
    assert_eq!(s.validations(), 0);
    assert_eq!(s.odoo.call_count("stock.picking", "write"), 0);
    assert!(s.inbox().join("SHIPPED_1.xml").exists(), "nothing moves");
}

#[test]
fn the_ready_mapping_and_the_ubl_despatch_advice_mapping_validate_their_samples() {
    let bin = env!("CARGO_BIN_EXE_edi-bridge");
    let out = std::process::Command::new(bin)
        .args([
            "--config",
            "examples/delivery-confirmation.toml",
            "validate",
        ])
        .args(["samples/SHIPPED_20261129_1630.xml", "--flow", "shipped"])
        .current_dir(REPO)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let ops = operations(&out);
    assert_eq!(ops.len(), 2);
    assert_eq!(ops[0]["action"], "confirm_delivery");
    assert_eq!(ops[0]["key"], json!({"name": "WH/OUT/00001"}));
    assert_eq!(
        ops[0]["values"]["carrier_tracking_ref"],
        "1Z999AA10123456784"
    );
    assert_eq!(
        ops[1]["values"]["lines"],
        json!([
            {"product_id": "FURN_8888", "quantity": 2.0, "lot_id": "LOT-2026-11-A"},
            {"product_id": "FURN_8888", "quantity": 1.0, "lot_id": "LOT-2026-11-B"}
        ])
    );

    let ubl = support::shared::shared_dir("corpus/ubl-2.1");
    let out = std::process::Command::new(bin)
        .args(["--config", "examples/ubl-despatch-advice.toml", "validate"])
        .arg(ubl.join("xml/UBL-DespatchAdvice-2.0-Example.xml"))
        .args(["--flow", "ubl-despatch"])
        .env("UBL_XSD_DIR", ubl.join("xsd"))
        .current_dir(REPO)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let ops = operations(&out);
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0]["key"], json!({"origin": "AEG012345"}));
    assert_eq!(
        ops[0]["values"]["lines"],
        json!([{"product_id": "17589683", "quantity": 90.0, "lot_id": "546378239"}])
    );

    // A negative quantity fails the canonical schema, naming the element.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("SHIPPED_bad.xml");
    fs::write(
        &bad,
        confirmation(&[("WH/OUT/00001", None, &[("FURN_7777", -1.0, None)])]),
    )
    .unwrap();
    let out = std::process::Command::new(bin)
        .args([
            "--config",
            "examples/delivery-confirmation.toml",
            "validate",
        ])
        .arg(&bad)
        .args(["--flow", "shipped"])
        .current_dir(REPO)
        .output()
        .unwrap();
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("Shipped") || stdout(&out).contains("Shipped"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_write_odoo_refuses_fails_only_the_picking_at_fault() {
    let s = Shipped::start(18, false, false, &[]);
    let cursed = s.odoo.add_product("FURN_6666", "Cursed Stool");
    s.odoo.put_stock(cursed, s.odoo.stock_location(), 100.0);
    s.odoo.fail_on_value(
        "stock.move",
        "product_id",
        cursed,
        "The stool may not leave the warehouse.",
    );
    let (good, good_name) = s.delivery(&[(s.chair, 2.0)]);
    let (bad, bad_name) = s.delivery(&[(cursed, 2.0)]);
    // Both moves ship 2: one shared write, refused as a whole, then one per picking.
    let out = s.ship(
        "SHIPPED_1.xml",
        &[
            (&good_name, None, &[("FURN_7777", 2.0, None)]),
            (&bad_name, None, &[("FURN_6666", 2.0, None)]),
        ],
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let report = s.report("SHIPPED_1.xml");
    assert!(
        report.contains(&format!(
            "writing the shipped quantities on picking {bad_name}"
        )) && report.contains("The stool may not leave the warehouse."),
        "{report}"
    );
    assert!(!report.contains(&good_name), "{report}");
    assert_eq!(s.picking(good)["state"], "done");
    assert_eq!(s.picking(bad)["state"], "assigned");
    assert_eq!(s.odoo.call_count("stock.move", "write"), 1);
    assert_eq!(s.odoo.call_count("stock.picking", "write"), 2);
}

#[test]
fn a_refused_tracking_number_fails_only_its_picking() {
    let s = Shipped::start(19, true, false, &[]);
    s.odoo.fail_on_value(
        "stock.picking",
        "carrier_tracking_ref",
        "NOT-A-NUMBER",
        "Tracking numbers of this carrier start with 1Z.",
    );
    let (good, good_name) = s.delivery(&[(s.chair, 1.0)]);
    let (bad, bad_name) = s.delivery(&[(s.chair, 1.0)]);
    let out = s.ship(
        "SHIPPED_1.xml",
        &[
            (&good_name, Some("1Z0001"), &[("FURN_7777", 1.0, None)]),
            (&bad_name, Some("NOT-A-NUMBER"), &[("FURN_7777", 1.0, None)]),
        ],
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let report = s.report("SHIPPED_1.xml");
    assert!(
        report.contains(&format!("on picking {bad_name}"))
            && report.contains("Tracking numbers of this carrier start with 1Z."),
        "{report}"
    );
    // The load of both numbers was refused as a whole; each was then written on its own.
    assert_eq!(s.odoo.call_count("stock.picking", "load"), 1);
    assert_eq!(s.odoo.call_count("stock.picking", "write"), 2);
    assert_eq!(s.picking(good)["state"], "done");
    assert_eq!(s.picking(good)["carrier_tracking_ref"], "1Z0001");
    assert_eq!(s.picking(bad)["state"], "assigned");
    assert_eq!(s.picking(bad)["carrier_tracking_ref"], json!(false));
}
