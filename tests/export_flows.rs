//! Export flows end to end: a real sshd (or a local folder), the `edi-bridge` binary and the
//! Odoo stand-in. Ready deliveries become one valid file each in the partner's outbox and are
//! marked; a second pass publishes nothing; clearing the mark asks for the record again; a
//! kill -9 between publishing and marking publishes once and marks once; an SFTP server that
//! dies mid-publish leaves no file under a final name; an invalid document is never published
//! and says why.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::stand::*;
use support::standin::{OdooStandin, StandinOptions};

const PICKING_XSD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/xsd/picking.xsd");

fn odoo_section(odoo: &OdooStandin, extra: &str) -> String {
    odoo.config_keys(Some("5s"), extra)
}

/// The export flow `orders` of partner `acme` (or `partner`), its keys in `keys`.
fn orders_flow(stand: &Stand, partner: &str, keys: &str) -> String {
    let outbox = if partner == "acme" {
        stand
            .sshd
            .data_dir()
            .join("in/orders")
            .display()
            .to_string()
    } else {
        "/in/orders".to_string()
    };
    format!(
        "\n[flows.orders]\npartner = \"{partner}\"\ndirection = \"export\"\noutbox = \"{outbox}\"\n{keys}\n"
    )
}

struct Export {
    stand: Stand,
    odoo: OdooStandin,
    /// A customer company and its delivery address.
    partner: i64,
    products: Vec<i64>,
}

impl Export {
    /// An Odoo stand-in of `opts` with `x_edi_exported` on pickings, two products and a
    /// customer; the export flow `orders` with `keys`.
    fn new(opts: StandinOptions, keys: &str) -> Export {
        Export::with_partner(opts, keys, "acme", "")
    }

    fn with_partner(opts: StandinOptions, keys: &str, partner: &str, sections: &str) -> Export {
        let odoo = OdooStandin::start(opts);
        odoo.add_record(
            "ir.model.fields",
            json!({"name": "x_edi_exported", "model": "stock.picking", "ttype": "boolean",
                   "field_description": "EDI exported"}),
        );
        let products = vec![
            odoo.add_product_with(json!({"default_code": "TR2-P1", "name": "Export Widget",
                                         "barcode": "4006381333931"})),
            odoo.add_product("TR2-P2", "Export Gadget & Co <large>"),
        ];
        let company = odoo.add_partner("TR2 Customer GmbH");
        let partner_id = odoo.add_record(
            "res.partner",
            json!({"name": "TR2 Warehouse Berlin", "parent_id": company, "type": "delivery",
                   "street": "Hauptstrasse 12", "street2": "Hof 3", "zip": "10115",
                   "city": "Berlin", "phone": "+49 30 1234567",
                   "email": "orders@tr2-customer.example"}),
        );
        let stand = Stand::with_odoo(&odoo_section(&odoo, ""), "");
        let flow = orders_flow(&stand, partner, keys);
        // The flow goes after the products flow's own keys (a TOML table may follow them).
        stand.write_config(
            stand.sshd.host_key_fingerprint(),
            &format!("{sections}{flow}"),
        );
        fs::create_dir_all(stand.sshd.data_dir().join("in/orders")).unwrap();
        Export {
            stand,
            odoo,
            partner: partner_id,
            products,
        }
    }

    fn delivery(&self, quantities: &[f64]) -> i64 {
        let lines: Vec<(i64, f64)> = self
            .products
            .iter()
            .copied()
            .zip(quantities.iter().copied())
            .collect();
        self.odoo.add_delivery(self.partner, &lines)
    }

    fn outbox(&self) -> PathBuf {
        self.stand.sshd.data_dir().join("in/orders")
    }

    fn picking(&self, id: i64) -> serde_json::Map<String, Value> {
        self.odoo.record("stock.picking", id).unwrap()
    }

    fn name(&self, id: i64) -> String {
        self.picking(id)["name"].as_str().unwrap().to_string()
    }

    fn marked(&self, id: i64) -> bool {
        self.picking(id)["x_edi_exported"] == json!(true)
    }

    fn notes(&self, id: i64) -> Vec<String> {
        self.odoo
            .search_records(
                "mail.message",
                json!([["model", "=", "stock.picking"], ["res_id", "=", id]]),
            )
            .iter()
            .map(|m| m["body"].as_str().unwrap_or("").to_string())
            .collect()
    }

    fn run(&self) -> std::process::Output {
        self.stand.run(&["run", "--once", "orders"])
    }
}

fn file_name(picking_name: &str) -> String {
    format!("{}.xml", picking_name.replace('/', "_"))
}

fn assert_valid(path: &Path) {
    let problems = edi_bridge::schema::validate_file(Path::new(PICKING_XSD), path).unwrap();
    assert!(problems.is_empty(), "{}: {problems:?}", path.display());
}

fn mtime(path: &Path) -> std::time::SystemTime {
    fs::metadata(path).unwrap().modified().unwrap()
}

#[test]
fn ready_deliveries_become_one_valid_file_each_and_are_marked_once() {
    let x = Export::new(
        StandinOptions::v18(),
        "mark = { field = \"x_edi_exported\" }\nchatter = true",
    );
    let ready: Vec<i64> = (0..3).map(|i| x.delivery(&[5.0 + i as f64, 2.5])).collect();
    // A delivery that is not ready is not exported.
    let waiting = x.delivery(&[1.0, 1.0]);
    x.odoo
        .write_record("stock.picking", waiting, json!({"state": "confirmed"}));

    let out = x.run();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut expected: Vec<String> = ready.iter().map(|&p| file_name(&x.name(p))).collect();
    expected.sort();
    assert_eq!(
        files_in(&x.outbox()),
        expected,
        "one file each, no .part left"
    );
    for &p in &ready {
        let path = x.outbox().join(file_name(&x.name(p)));
        assert_valid(&path);
        let doc = fs::read_to_string(&path).unwrap();
        assert!(
            doc.contains(&format!("<Name>{}</Name>", x.name(p))),
            "{doc}"
        );
        assert!(doc.contains("<ProductCode>TR2-P1</ProductCode>"), "{doc}");
        assert!(doc.contains("<Barcode>4006381333931</Barcode>"), "{doc}");
        assert!(
            doc.contains("Export Gadget &amp; Co &lt;large&gt;"),
            "{doc}"
        );
        assert!(doc.contains("<Quantity>2.5</Quantity>"), "{doc}");
        assert!(
            doc.contains("<Customer>\n    <Name>TR2 Customer GmbH</Name>"),
            "{doc}"
        );
        assert!(doc.contains("<Street2>Hof 3</Street2>"), "{doc}");
        assert!(!doc.contains("<Carrier>"), "no delivery module: {doc}");
        assert!(x.marked(p), "marked");
        let notes = x.notes(p);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains(&file_name(&x.name(p))), "{notes:?}");
    }
    assert!(!x.marked(waiting));
    // Batched: a fixed number of reads, and one write for all marks.
    assert_eq!(
        x.odoo.call_count("stock.picking", "write"),
        1,
        "{:?}",
        x.odoo.calls()
    );
    assert_eq!(
        x.odoo.call_count("stock.move", "read"),
        1,
        "{:?}",
        x.odoo.calls()
    );
    assert_eq!(x.odoo.call_count("product.product", "read"), 1);

    // A second pass publishes nothing.
    let before: Vec<_> = ready
        .iter()
        .map(|&p| mtime(&x.outbox().join(file_name(&x.name(p)))))
        .collect();
    x.odoo.reset_calls();
    std::thread::sleep(Duration::from_millis(20));
    let again = x.run();
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    assert!(!stderr(&again).contains("published"), "{}", stderr(&again));
    assert_eq!(x.odoo.call_count("stock.picking", "write"), 0);
    let after: Vec<_> = ready
        .iter()
        .map(|&p| mtime(&x.outbox().join(file_name(&x.name(p)))))
        .collect();
    assert_eq!(before, after, "no file written again");

    // Clearing the mark in Odoo asks for that picking again.
    x.odoo
        .write_record("stock.picking", ready[1], json!({"x_edi_exported": false}));
    let third = x.run();
    assert_eq!(code(&third), 0, "{}", stderr(&third));
    let third_err = stderr(&third);
    let lines: Vec<&str> = third_err
        .lines()
        .filter(|l| l.contains("published"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", stderr(&third));
    assert!(lines[0].contains(&x.name(ready[1])), "{lines:?}");
    assert!(x.marked(ready[1]));
    assert_eq!(files_in(&x.outbox()).len(), 3);

    // status: three records published (one of them twice), nothing waits or failed.
    let status = x.stand.run(&["status", "--json"]);
    let rows: Value = serde_json::from_slice(&status.stdout).unwrap();
    let orders = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["flow"] == "orders")
        .unwrap();
    assert_eq!(orders["direction"], "export");
    assert_eq!(orders["export"]["published"], 4, "{orders}");
    assert_eq!(orders["export"]["waiting"], 0);
    assert_eq!(orders["export"]["failed"], 0);
}

#[test]
fn without_a_mark_field_the_ledger_alone_prevents_publishing_twice_and_replay_publishes_again() {
    let x = Export::new(StandinOptions::v18(), "filename = \"DO_{id}_{name}.xml\"");
    let p = x.delivery(&[3.0, 1.0]);
    let out = x.run();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let file = format!("DO_{p}_{}", file_name(&x.name(p)));
    assert_eq!(files_in(&x.outbox()), vec![file.clone()]);
    assert!(!x.marked(p), "the flow marks nothing");
    let first = mtime(&x.outbox().join(&file));

    std::thread::sleep(Duration::from_millis(20));
    let again = x.run();
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    assert_eq!(mtime(&x.outbox().join(&file)), first, "not published twice");

    let explained = x.stand.run(&["explain", "orders", "--record", &x.name(p)]);
    let text = stdout(&explained);
    assert!(text.contains("published and marked"), "{text}");
    assert!(text.contains("no mark field"), "{text}");

    let replay = x.stand.run(&["replay", "orders", "--record", &x.name(p)]);
    assert_eq!(code(&replay), 0, "{}", stderr(&replay));
    assert!(stdout(&replay).contains("published"), "{}", stdout(&replay));
    assert_ne!(
        mtime(&x.outbox().join(&file)),
        first,
        "published again on purpose"
    );
    assert_eq!(files_in(&x.outbox()), vec![file]);
}

#[test]
fn a_kill_between_publishing_and_marking_publishes_once_and_marks_once() {
    let x = Export::new(StandinOptions::v18(), "mark = \"x_edi_exported\"");
    let p = x.delivery(&[4.0, 2.0]);
    let name = file_name(&x.name(p));
    x.stand
        .run_until_killed("export-published", &["run", "--once", "orders"]);
    assert_eq!(files_in(&x.outbox()), vec![name.clone()], "published");
    assert!(!x.marked(p), "killed before marking");
    let published_at = mtime(&x.outbox().join(&name));

    x.odoo.reset_calls();
    std::thread::sleep(Duration::from_millis(20));
    let out = x.run();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(x.marked(p), "marked by the next run");
    assert_eq!(
        x.odoo.call_count("stock.picking", "write"),
        1,
        "marked once"
    );
    assert_eq!(files_in(&x.outbox()), vec![name.clone()], "one file");
    assert_eq!(
        mtime(&x.outbox().join(&name)),
        published_at,
        "not published again"
    );

    // A kill while the document is being written: the next run publishes it under the same name.
    let q = x.delivery(&[1.0, 1.0]);
    x.stand
        .run_until_killed("export-publishing", &["run", "--once", "orders"]);
    let out = x.run();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(x.marked(q));
    assert_eq!(
        files_in(&x.outbox()).len(),
        2,
        "{:?}",
        files_in(&x.outbox())
    );
}

#[test]
fn an_sftp_server_stopped_mid_publish_leaves_no_file_under_a_final_name() {
    let mut x = Export::new(StandinOptions::v18(), "mark = \"x_edi_exported\"");
    let p = x.delivery(&[1.0, 1.0]);
    // A note of 8 MB makes the upload last long enough to stop the server during it.
    let note = "<p>".to_string() + &"Fragile, keep upright. ".repeat(360_000) + "</p>";
    x.odoo
        .write_record("stock.picking", p, json!({"note": note}));
    let name = file_name(&x.name(p));
    let outbox = x.outbox();
    let child = x
        .stand
        .command(&["run", "--once", "orders"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let part = outbox.join(format!(".{name}.part"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !part.exists() && !outbox.join(&name).exists() {
        assert!(Instant::now() < deadline, "no upload started");
        std::thread::sleep(Duration::from_millis(1));
    }
    x.stand.sshd.stop();
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(!outbox.join(&name).exists(), "nothing under the final name");
    assert!(stderr(&out).contains("waiting"), "{}", stderr(&out));
    assert!(!x.marked(p));

    x.stand.sshd.restart();
    let out = x.run();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        files_in(&outbox),
        vec![name.clone()],
        "published, no .part left"
    );
    assert_valid(&outbox.join(&name));
    assert!(x.marked(p));
}

#[test]
fn a_template_producing_an_invalid_document_publishes_nothing_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("orders.xml.j2");
    // OdooId is required by the schema: this template leaves it out.
    fs::write(
        &template,
        "<?xml version=\"1.0\"?>\n<DeliveryOrder xmlns=\"urn:edi-bridge:picking:1\"><Header><Name>{{ picking.name }}</Name><GeneratedAt>{{ generated_at }}</GeneratedAt></Header><Lines>{% for l in picking.lines %}<Line number=\"{{ l.number }}\"><ProductName>{{ l.product.name }}</ProductName><Quantity>{{ l.quantity }}</Quantity><Unit>{{ l.unit }}</Unit></Line>{% endfor %}</Lines></DeliveryOrder>\n",
    )
    .unwrap();
    let keys = format!(
        "template = \"{}\"\nschema = \"{PICKING_XSD}\"\nmark = \"x_edi_exported\"\nnote_on_failure = true",
        template.display()
    );
    let x = Export::new(StandinOptions::v18(), &keys);
    let p = x.delivery(&[1.0, 1.0]);
    let out = x.run();
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(files_in(&x.outbox()).is_empty(), "nothing published");
    assert!(!x.marked(p), "not marked");
    let err = stderr(&out);
    assert!(err.contains("refused") && err.contains("OdooId"), "{err}");
    let notes = x.notes(p);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("OdooId"), "{notes:?}");

    let status = stdout(&x.stand.run(&["status"]));
    assert!(
        status.contains("refused") && status.contains("OdooId"),
        "{status}"
    );
    // A second pass fails the same way and does not note it again.
    let again = x.run();
    assert_eq!(code(&again), 1);
    assert_eq!(x.notes(p).len(), 1);
    let explained = stdout(&x.stand.run(&["explain", "orders", "--record", &x.name(p)]));
    assert!(
        explained.contains("refused") && explained.contains("OdooId"),
        "{explained}"
    );
}

#[test]
fn a_local_folder_partner_gets_its_files_the_same_way() {
    let root = tempfile::tempdir().unwrap();
    let section = format!("\n[partners.local]\nroot = \"{}\"\n", root.path().display());
    let x = Export::with_partner(
        StandinOptions::v18(),
        "mark = \"x_edi_exported\"",
        "local",
        &section,
    );
    let p = x.delivery(&[2.0, 2.0]);
    let out = x.run();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let outbox = root.path().join("in/orders");
    assert_eq!(files_in(&outbox), vec![file_name(&x.name(p))]);
    assert_valid(&outbox.join(file_name(&x.name(p))));
    assert!(x.marked(p));
}

#[test]
fn a_dry_run_prints_the_document_and_touches_nothing() {
    let x = Export::new(StandinOptions::v18(), "mark = \"x_edi_exported\"");
    let p = x.delivery(&[2.0, 1.0]);
    let config = fs::read_to_string(&x.stand.config).unwrap();
    fs::write(
        &x.stand.config,
        config.replacen("[odoo]\n", "[odoo]\ndry_run = true\n", 1),
    )
    .unwrap();
    let out = x.run();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let doc = stdout(&out);
    assert!(doc.contains("would be published as"), "{doc}");
    assert!(
        doc.contains(&format!("<Name>{}</Name>", x.name(p))),
        "{doc}"
    );
    assert!(files_in(&x.outbox()).is_empty());
    assert!(!x.marked(p));
    assert_eq!(x.odoo.call_count("stock.picking", "write"), 0);
}

fn version_run(opts: StandinOptions) {
    let delivery = opts.delivery_module;
    let x = Export::new(opts, "mark = \"x_edi_exported\"");
    let p = x.delivery(&[5.0, 3.0]);
    if delivery {
        let carrier = x
            .odoo
            .add_record("delivery.carrier", json!({"name": "DHL Express"}));
        x.odoo.write_record(
            "stock.picking",
            p,
            json!({"carrier_id": carrier, "carrier_tracking_ref": "JD0123"}),
        );
    }
    let out = x.run();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let path = x.outbox().join(file_name(&x.name(p)));
    assert_valid(&path);
    let doc = fs::read_to_string(&path).unwrap();
    assert_eq!(
        doc.contains("<Carrier>DHL Express</Carrier>"),
        delivery,
        "{doc}"
    );
    assert_eq!(
        doc.contains("<TrackingRef>JD0123</TrackingRef>"),
        delivery,
        "{doc}"
    );
    assert!(doc.contains("<Quantity>5.0</Quantity>"), "{doc}");
    assert!(doc.contains("<Reserved>5.0</Reserved>"), "{doc}");
    assert!(x.marked(p));
}

#[test]
fn odoo_17_pickings_export() {
    version_run(StandinOptions::v17());
}

#[test]
fn odoo_18_pickings_with_the_delivery_module_carry_the_carrier() {
    version_run(StandinOptions {
        delivery_module: true,
        ..StandinOptions::v18()
    });
}

#[test]
fn odoo_19_pickings_export_over_json_2() {
    version_run(StandinOptions {
        delivery_module: true,
        ..StandinOptions::v19()
    });
}

#[test]
fn check_covers_export_flows() {
    let x = Export::new(StandinOptions::v18(), "mark = \"x_edi_exported\"");
    x.delivery(&[1.0, 1.0]);
    let out = x.stand.run(&["check"]);
    let text = stdout(&out);
    assert!(
        text.contains("outbox") && text.contains("writable"),
        "{text}"
    );
    assert!(text.contains("mark field x_edi_exported exists"), "{text}");
    assert!(text.contains("domain fields exist"), "{text}");
    assert!(text.contains("renders a valid document"), "{text}");
    assert!(
        text.contains("template renders a sample delivery valid"),
        "{text}"
    );

    let broken = Export::new(StandinOptions::v18(), "mark = \"x_not_there\"");
    let out = broken.stand.run(&["check"]);
    assert_eq!(code(&out), 1);
    assert!(
        stdout(&out).contains("no field x_not_there"),
        "{}",
        stdout(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_entry_exports_exactly_the_records_that_match() {
    use edi_bridge::export::pass::IdOutcome;
    let x = Export::new(StandinOptions::v18(), "mark = \"x_edi_exported\"");
    let ready = x.delivery(&[1.0, 1.0]);
    let other = x.delivery(&[2.0, 2.0]);
    let draft = x.delivery(&[1.0, 1.0]);
    x.odoo
        .write_record("stock.picking", draft, json!({"state": "confirmed"}));
    let config = Arc::new(edi_bridge::config::Config::load(&x.stand.config).unwrap());
    let ledger = edi_bridge::ledger::Ledger::open(&config.ledger.path).unwrap();
    let runner = edi_bridge::import::pass::Runner::new(config, ledger, Box::new(std::io::sink()));
    let outcomes = runner
        .export_records("orders", &[ready, draft])
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 2);
    assert!(
        matches!(&outcomes[0], (id, IdOutcome::Published(path)) if *id == ready && path.ends_with(&file_name(&x.name(ready)))),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[1], (draft, IdOutcome::NotMatching));
    assert!(x.marked(ready));
    assert!(!x.marked(other), "only the records asked for");
    assert_eq!(files_in(&x.outbox()), vec![file_name(&x.name(ready))]);
    // Exported already: not matching any more.
    let again = runner.export_records("orders", &[ready]).await.unwrap();
    assert_eq!(again, vec![(ready, IdOutcome::NotMatching)]);
    assert!(runner.export_records("products", &[ready]).await.is_err());
}

#[test]
fn a_flow_another_run_is_exporting_is_skipped_until_it_is_done() {
    let x = Export::new(StandinOptions::v18(), "mark = \"x_edi_exported\"");
    let p = x.delivery(&[1.0, 1.0]);
    let ledger_path = x.stand.dir.path().join("edi-bridge.db");
    let ledger = edi_bridge::ledger::Ledger::open(&ledger_path).unwrap();
    let now = jiff::Timestamp::now().as_millisecond();
    // A run on another host, alive as far as this one can tell.
    let other = "warehouse-2:4242:1";
    assert_eq!(
        ledger
            .take_flow_run("orders", other, Duration::from_secs(600), now)
            .unwrap(),
        edi_bridge::ledger::RunTaken::Taken
    );
    let out = x.run();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("another run (warehouse-2:4242:1)"),
        "{}",
        stderr(&out)
    );
    assert!(files_in(&x.outbox()).is_empty());
    assert!(!x.marked(p));

    ledger.release_flow_run("orders", other).unwrap();
    let out = x.run();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(files_in(&x.outbox()), vec![file_name(&x.name(p))]);
    assert!(x.marked(p));
}

#[test]
fn two_records_whose_names_make_the_same_file_name_never_overwrite_each_other() {
    let x = Export::new(StandinOptions::v18(), "mark = \"x_edi_exported\"");
    let a = x.delivery(&[1.0, 1.0]);
    let b = x.delivery(&[2.0, 2.0]);
    x.odoo
        .write_record("stock.picking", a, json!({"name": "SHOP/OUT/7"}));
    x.odoo
        .write_record("stock.picking", b, json!({"name": "SHOP_OUT_7"}));
    let out = x.run();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut expected = vec!["SHOP_OUT_7.xml".to_string(), format!("SHOP_OUT_7-{b}.xml")];
    expected.sort();
    assert_eq!(files_in(&x.outbox()), expected);
    let second = fs::read_to_string(x.outbox().join(format!("SHOP_OUT_7-{b}.xml"))).unwrap();
    assert!(second.contains("<Name>SHOP_OUT_7</Name>"), "{second}");
    // Published again (its mark cleared), each keeps its own file.
    x.odoo
        .write_record("stock.picking", a, json!({"x_edi_exported": false}));
    assert_eq!(code(&x.run()), 0);
    assert_eq!(files_in(&x.outbox()), expected);
    let first = fs::read_to_string(x.outbox().join("SHOP_OUT_7.xml")).unwrap();
    assert!(first.contains("<Name>SHOP/OUT/7</Name>"), "{first}");
}
