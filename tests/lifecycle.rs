//! The file lifecycle through a real OpenSSH server, driven by the `edi-bridge` binary:
//! from a partner's inbox into the Odoo stand-in, then to the archive or `error/` with a
//! report — and a dry run, which only says what would happen and touches nothing.

mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::stand::*;
use support::standin::{OdooStandin, StandinOptions};

/// A stand whose files really go to Odoo (the stand-in): a dry run would leave them in place.
fn real_stand(flow_options: &str) -> (Stand, OdooStandin) {
    let odoo = OdooStandin::start(StandinOptions::v18());
    let stand = Stand::with_odoo(&odoo_section(&odoo), flow_options);
    (stand, odoo)
}

/// The products in the Odoo stand-in (archived ones too).
fn products(odoo: &OdooStandin) -> Vec<serde_json::Map<String, serde_json::Value>> {
    odoo.search_records(
        "product.product",
        serde_json::json!([["active", "in", [true, false]]]),
    )
}

/// Odoo calls that write products.
fn product_writes(odoo: &OdooStandin) -> u64 {
    ["create", "write", "load"]
        .iter()
        .map(|m| odoo.call_count("product.product", m))
        .sum()
}

#[test]
fn complete_files_are_applied_and_archived() {
    let (stand, odoo) = real_stand("");
    stand.drop_sample("products-1.xml");
    let out = stand.run(&["run", "--once"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(operations(&out).is_empty(), "sent, not printed");
    assert_eq!(products(&odoo).len(), 5, "one product per record");
    assert!(files_in(&stand.inbox()).is_empty(), "the inbox is empty");
    let archived = files_below(&stand.archive_dir());
    assert_eq!(archived.len(), 1, "{archived:?}");
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::get("Europe/Brussels").unwrap());
    let expected = format!(
        "{:04}/{:02}/{:02}/products-1.xml",
        today.year(),
        today.month(),
        today.day()
    );
    assert_eq!(archived[0], expected);
    assert_eq!(
        fs::read(stand.archive_dir().join(&expected)).unwrap(),
        fs::read(Path::new(REPO).join("samples/products-1.xml")).unwrap(),
        "archived unchanged"
    );
    let status = stand.run(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let products = status
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["flow"] == "products")
        .unwrap();
    assert_eq!(products["archived"], 1);
    assert_eq!(products["failed"], 0);
}

#[test]
fn an_invalid_file_goes_to_error_with_a_report_and_a_replay_is_a_new_attempt() {
    let (stand, odoo) = real_stand("");
    stand.drop_sample("products-broken.xml");
    let out = stand.run(&["run", "--once"]);
    assert_eq!(code(&out), 1, "a file went to error/: {}", stderr(&out));
    assert_eq!(
        product_writes(&odoo),
        0,
        "nothing of an invalid file is applied"
    );
    assert_eq!(
        files_in(&stand.error_dir()),
        [
            "products-broken.xml",
            "products-broken.xml.error.json",
            "products-broken.xml.error.txt"
        ]
    );
    let report =
        fs::read_to_string(stand.error_dir().join("products-broken.xml.error.txt")).unwrap();
    assert!(report.contains("products"), "{report}");
    assert!(report.contains("Attempt:   1"), "{report}");
    assert!(
        report.contains("line 12, column"),
        "the XSD problem with its line and column:\n{report}"
    );
    assert!(
        report.contains(&format!("move it back to {}", stand.inbox().display())),
        "{report}"
    );

    // Ops replay the file with the command; the next pass is attempt 2 of the same content.
    let replay = stand.run(&["replay", "products", "products-broken.xml"]);
    assert_eq!(code(&replay), 0, "{}", stderr(&replay));
    assert_eq!(files_in(&stand.inbox()), ["products-broken.xml"]);
    assert!(
        files_in(&stand.error_dir()).is_empty(),
        "the old report went with the file"
    );
    let again = stand.run(&["run", "--once"]);
    assert_eq!(code(&again), 1);
    let report =
        fs::read_to_string(stand.error_dir().join("products-broken.xml.error.txt")).unwrap();
    assert!(report.contains("Attempt:   2"), "{report}");

    // Moving it back by hand works the same way.
    fs::rename(
        stand.error_dir().join("products-broken.xml"),
        stand.inbox().join("products-broken.xml"),
    )
    .unwrap();
    let third = stand.run(&["run", "--once"]);
    assert_eq!(code(&third), 1);
    let report =
        fs::read_to_string(stand.error_dir().join("products-broken.xml.error.txt")).unwrap();
    assert!(report.contains("Attempt:   3"), "{report}");
}

#[test]
fn a_file_still_being_uploaded_is_not_taken_until_it_is_complete() {
    let (stand, odoo) = real_stand("");
    let source = stand.dir.path().join("big.xml");
    let xml = products_xml(1500, "Slowly uploaded product");
    fs::write(&source, &xml).unwrap();
    let batch = stand.dir.path().join("sftp-batch");
    fs::write(
        &batch,
        format!(
            "put {} {}/big.xml\n",
            source.display(),
            stand.inbox().display()
        ),
    )
    .unwrap();
    // OpenSSH's own client, rate-limited to 200 kbit/s in 4 KB requests, one at a time:
    // about 7 s for ~165 KB, in bursts.
    let mut upload = Command::new("sftp")
        .args(["-l", "200", "-R", "1", "-B", "4096", "-b"])
        .arg(&batch)
        .args(["-i", &stand.sshd.client_key().display().to_string()])
        .args(["-P", &stand.sshd.port().to_string()])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
        ])
        .arg(format!("{}@127.0.0.1", stand.sshd.user()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("OpenSSH sftp client (apt-get install openssh-client)");
    let target = stand.inbox().join("big.xml");
    let started = Instant::now();
    while fs::metadata(&target).map(|m| m.len()).unwrap_or(0) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the upload never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let during = stand.run(&["run", "--once"]);
    assert!(
        upload.try_wait().unwrap().is_none(),
        "the upload must still be running when the pass ends (it went too fast to test): {}",
        stderr(&during)
    );
    assert_eq!(
        code(&during),
        0,
        "an incomplete file is not a failure: {}",
        stderr(&during)
    );
    assert_eq!(
        product_writes(&odoo),
        0,
        "nothing of an incomplete file is applied"
    );
    assert!(target.exists(), "the incomplete file stays in the inbox");
    assert!(
        !stand.error_dir().exists(),
        "an incomplete file never goes to error/"
    );
    assert!(!stand.archive_dir().exists());

    let status = upload.wait().unwrap();
    assert!(status.success(), "sftp upload failed");
    let after = stand.run(&["run", "--once"]);
    assert_eq!(code(&after), 0, "{}", stderr(&after));
    assert_eq!(products(&odoo).len(), 1500);
    let archived = files_below(&stand.archive_dir());
    assert_eq!(archived.len(), 1);
    assert_eq!(
        fs::read_to_string(stand.archive_dir().join(&archived[0])).unwrap(),
        xml
    );
}

#[test]
fn a_wrong_host_key_stops_the_partner_and_touches_nothing() {
    let stand = Stand::new();
    stand.write_config("SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "");
    stand.drop_sample("products-1.xml");
    let before = files_below(&stand.sshd.data_dir());
    let out = stand.run(&["run", "--once"]);
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(err.contains("host key"), "{err}");
    assert!(
        err.contains(stand.sshd.host_key_fingerprint()),
        "the message names the key the server presented: {err}"
    );
    assert!(operations(&out).is_empty());
    assert_eq!(
        files_below(&stand.sshd.data_dir()),
        before,
        "nothing touched on the server"
    );
}

#[test]
fn hostile_files_go_to_error_with_a_report_and_never_crash_the_process() {
    let (stand, odoo) = real_stand("");
    let hostile: &[(&str, &[u8])] = &[
        ("doctype.xml", b"<?xml version=\"1.0\"?>\n<!DOCTYPE Products [<!ELEMENT Products ANY>]>\n<Products xmlns=\"urn:edi-bridge:products:1\"/>\n"),
        ("xxe.xml", b"<?xml version=\"1.0\"?>\n<!DOCTYPE p [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n<Products xmlns=\"urn:edi-bridge:products:1\"><Product sku=\"A\"><Name>&x;</Name></Product></Products>\n"),
        ("xxe-parameter.xml", b"<?xml version=\"1.0\"?>\n<!DOCTYPE p [<!ENTITY % e SYSTEM \"file:///etc/passwd\"> %e;]>\n<Products xmlns=\"urn:edi-bridge:products:1\"/>\n"),
        ("laughs.xml", b"<?xml version=\"1.0\"?>\n<!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\"><!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">]>\n<Products xmlns=\"urn:edi-bridge:products:1\"><Product sku=\"A\"><Name>&d;&d;&d;&d;</Name></Product></Products>\n"),
        ("truncated.xml", b"<?xml version=\"1.0\"?>\n<Products xmlns=\"urn:edi-bridge:products:1\">\n  <Product sku=\"A\"><Name>Cut off"),
        ("empty.xml", b""),
        ("bad-utf8.xml", b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Products xmlns=\"urn:edi-bridge:products:1\"><Product sku=\"A\"><Name>caf\xe9 \xff\xfe</Name></Product></Products>\n"),
    ];
    for (name, content) in hostile {
        fs::write(stand.inbox().join(name), content).unwrap();
    }
    // A UTF-8 BOM and a name with spaces and accents are fine.
    let good = products_xml(2, "Chaise");
    fs::write(
        stand.inbox().join("bom.xml"),
        [b"\xEF\xBB\xBF".as_slice(), good.as_bytes()].concat(),
    )
    .unwrap();
    fs::write(stand.inbox().join("produits d'été 2026.xml"), &good).unwrap();

    let out = stand.run(&["run", "--once"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let failed = files_in(&stand.error_dir());
    for (name, _) in hostile {
        assert!(
            failed.contains(&name.to_string()),
            "{name} in error/: {failed:?}\n{}",
            stderr(&out)
        );
        let report =
            fs::read_to_string(stand.error_dir().join(format!("{name}.error.txt"))).unwrap();
        assert!(report.contains("What failed"), "{report}");
        assert!(
            !report.contains("root:x:0:0"),
            "no file content leaks into a report"
        );
    }
    let doctype = fs::read_to_string(stand.error_dir().join("doctype.xml.error.txt")).unwrap();
    assert!(doctype.contains("DOCTYPE"), "{doctype}");
    let archived = files_below(&stand.archive_dir());
    assert_eq!(archived.len(), 2, "{archived:?}");
    assert!(
        archived
            .iter()
            .any(|a| a.ends_with("produits d'été 2026.xml"))
    );
    assert!(
        files_in(&stand.inbox()).is_empty(),
        "every file in exactly one place"
    );
    let codes: Vec<serde_json::Value> = products(&odoo)
        .iter()
        .map(|p| p["default_code"].clone())
        .collect();
    assert_eq!(
        codes.len(),
        2,
        "only the good files' records (the same two in both): {codes:?}"
    );
}

#[test]
fn names_with_control_characters_are_refused_and_left_alone() {
    let stand = Stand::new();
    let name = "bell\u{7}.xml";
    fs::write(stand.inbox().join(name), products_xml(1, "x")).unwrap();
    let out = stand.run(&["run", "--once"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("refused"), "{}", stderr(&out));
    assert!(stand.inbox().join(name).exists(), "left in the inbox");
    assert!(!stand.error_dir().exists() && !stand.archive_dir().exists());
}

#[test]
fn kill_9_at_any_step_loses_nothing_and_applies_nothing_twice() {
    for point in ["claimed", "fetched", "applied", "archiving", "moved"] {
        let (stand, odoo) = real_stand("");
        stand.drop_sample("products-1.xml");
        stand.run_until_killed(point, &["run", "--once"]);
        let written_before = product_writes(&odoo);

        odoo.reset_calls();
        let rerun = stand.run(&["run", "--once"]);
        assert_eq!(code(&rerun), 0, "{point}: {}", stderr(&rerun));
        if ["applied", "archiving", "moved"].contains(&point) {
            assert_eq!(
                product_writes(&odoo),
                0,
                "{point}: a file whose operations completed is only archived (before: \
                 {written_before} writes): {:?}",
                odoo.calls()
            );
        }
        assert_eq!(
            products(&odoo).len(),
            5,
            "{point}: every product once, none twice"
        );
        assert!(files_in(&stand.inbox()).is_empty(), "{point}: inbox empty");
        let archived = files_below(&stand.archive_dir());
        assert_eq!(
            archived.len(),
            1,
            "{point}: archived exactly once: {archived:?}"
        );
        assert!(
            archived[0].ends_with("/products-1.xml"),
            "{point}: {archived:?}"
        );
        assert!(!stand.error_dir().exists(), "{point}");
        let status = stand.run(&["status", "--json"]);
        let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
        let products = status
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["flow"] == "products")
            .unwrap();
        assert_eq!(products["archived"], 1, "{point}: {products}");
        assert_eq!(products["in_progress"], 0, "{point}: {products}");
    }
}

#[test]
fn kill_9_while_moving_a_file_to_error_leaves_it_there_with_its_report() {
    let (stand, _odoo) = real_stand("");
    stand.drop_sample("products-broken.xml");
    stand.run_until_killed("reported", &["run", "--once"]);
    let rerun = stand.run(&["run", "--once"]);
    assert_eq!(code(&rerun), 1, "{}", stderr(&rerun));
    assert!(files_in(&stand.inbox()).is_empty());
    assert_eq!(
        files_in(&stand.error_dir()),
        [
            "products-broken.xml",
            "products-broken.xml.error.json",
            "products-broken.xml.error.txt"
        ]
    );
}

#[test]
fn two_runs_at_once_take_each_file_once() {
    let (stand, odoo) = real_stand("");
    for i in 0..12 {
        // Keys of their own per file: each record is one product.
        let xml = products_xml(3, &format!("file {i}")).replace("SKU-", &format!("F{i:02}-"));
        fs::write(stand.inbox().join(format!("batch-{i:02}.xml")), xml).unwrap();
    }
    // Let the files settle first so both runs find them complete at once.
    std::thread::sleep(Duration::from_millis(1200));
    let first = stand
        .command(&["run", "--once"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let second = stand
        .command(&["run", "--once"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (first, second) = (
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    );
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    let mut applied: Vec<String> = products(&odoo)
        .iter()
        .map(|p| p["default_code"].to_string())
        .collect();
    applied.sort();
    let total = applied.len();
    applied.dedup();
    assert_eq!(total, applied.len(), "no record applied twice");
    assert_eq!(total, 36, "every record applied once");
    let archived = files_below(&stand.archive_dir());
    assert_eq!(archived.len(), 12, "{archived:?}");
    assert!(
        archived.iter().all(|a| !a.contains('~')),
        "no file archived twice: {archived:?}"
    );
    assert!(files_in(&stand.inbox()).is_empty());
}

#[test]
fn a_name_collision_in_the_archive_gets_a_suffix_and_overwrites_nothing() {
    let (stand, _odoo) = real_stand("");
    fs::write(stand.inbox().join("daily.xml"), products_xml(1, "first")).unwrap();
    assert_eq!(code(&stand.run(&["run", "--once"])), 0);
    fs::write(stand.inbox().join("daily.xml"), products_xml(2, "second")).unwrap();
    let out = stand.run(&["run", "--once"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let archived = files_below(&stand.archive_dir());
    assert_eq!(archived.len(), 2, "{archived:?}");
    assert!(
        archived[0].ends_with("/daily.xml") && archived[1].ends_with("/daily~2.xml"),
        "{archived:?}"
    );
    let first = fs::read_to_string(stand.archive_dir().join(&archived[0])).unwrap();
    assert!(first.contains("first 0"), "the first file is intact");
}

#[test]
fn a_done_marker_decides_when_a_file_is_complete() {
    let (stand, odoo) = real_stand("done_marker = \".done\"");
    stand.drop_sample("products-1.xml");
    let out = stand.run(&["run", "--once"]);
    assert_eq!(code(&out), 0);
    assert_eq!(product_writes(&odoo), 0);
    assert!(
        stderr(&out).contains("products-1.xml.done"),
        "{}",
        stderr(&out)
    );
    assert!(stand.inbox().join("products-1.xml").exists());
    fs::write(stand.inbox().join("products-1.xml.done"), b"").unwrap();
    let out = stand.run(&["run", "--once"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(products(&odoo).len(), 5);
    assert!(
        files_in(&stand.inbox()).is_empty(),
        "the marker is removed with its file"
    );
}

#[test]
fn a_csv_file_in_windows_1252_with_decimal_commas_is_mapped() {
    let stand = Stand::new();
    let prices = stand.sshd.data_dir().join("out/prices");
    fs::create_dir_all(&prices).unwrap();
    // "Café crème" in windows-1252: é = 0xE9, è = 0xE8.
    let csv = b"sku;name;price\r\nCAF-1;Caf\xe9 cr\xe8me;3,50\r\nCAF-2;Th\xe9;2,10\r\n";
    fs::write(prices.join("prices.csv"), csv).unwrap();
    let out = stand.run(&["run", "--once", "prices"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let ops = operations(&out);
    assert_eq!(ops.len(), 2);
    assert_eq!(ops[0]["values"]["name"], "Café crème");
    assert_eq!(ops[0]["values"]["list_price"], 3.5);
    assert_eq!(ops[1]["line"], 3);
}

#[test]
fn a_partner_outage_leaves_files_waiting_in_the_inbox() {
    let (mut stand, _odoo) = real_stand("");
    stand.drop_sample("products-1.xml");
    stand.sshd.stop();
    let out = stand.run(&["run", "--once"]);
    assert_eq!(code(&out), 1, "work was left waiting");
    assert!(stderr(&out).contains("unreachable"), "{}", stderr(&out));
    stand.sshd.restart();
    let out = stand.run(&["run", "--once"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(files_below(&stand.archive_dir()).len(), 1);
}

#[test]
fn validate_prints_the_operations_and_touches_nothing() {
    let stand = Stand::new();
    let good = stand.run(&[
        "validate",
        &format!("{REPO}/samples/products-1.xml"),
        "--flow",
        "products",
    ]);
    assert_eq!(code(&good), 0, "{}", stderr(&good));
    let ops = operations(&good);
    assert_eq!(ops.len(), 5);
    assert_eq!(
        ops[0]["key"]["default_code"],
        ops[0]["values"]["default_code"]
    );
    assert!(ops[0]["lookups"]["uom_id"]["model"] == "uom.uom");
    let bad = stand.run(&[
        "validate",
        &format!("{REPO}/samples/products-broken.xml"),
        "--flow",
        "products",
    ]);
    assert_eq!(code(&bad), 1);
    assert!(stderr(&bad).contains("line 12"), "{}", stderr(&bad));
    assert!(
        !stand.dir.path().join("edi-bridge.db").exists(),
        "validate opens no ledger"
    );
}

#[test]
fn configuration_errors_exit_2_and_name_the_key() {
    let stand = Stand::new();
    let text = fs::read_to_string(&stand.config).unwrap().replace(
        "settle = \"1s\"\nsettle_max",
        "settle = \"soon\"\nsettle_max",
    );
    fs::write(&stand.config, text).unwrap();
    let out = stand.run(&["run", "--once"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("flows.products.settle"),
        "{}",
        stderr(&out)
    );
    let unknown = stand.run(&["run", "--once", "no-such-flow"]);
    assert_eq!(code(&unknown), 2);
}

#[test]
fn explain_says_why_a_file_was_or_was_not_taken() {
    let (stand, _odoo) = real_stand("done_marker = \".done\"");
    stand.drop_sample("products-1.xml");
    let out = stand.run(&["explain", "products", "products-1.xml"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("done-marker"), "{}", stdout(&out));
    fs::write(stand.inbox().join("products-1.xml.done"), b"").unwrap();
    stand.run(&["run", "--once"]);
    let out = stand.run(&["explain", "products", "products-1.xml"]);
    let text = stdout(&out);
    assert!(text.contains("not in the inbox"), "{text}");
    assert!(text.contains("archived"), "{text}");
}

#[test]
fn a_partner_that_fails_does_not_hold_up_the_others() {
    let (stand, odoo) = real_stand("");
    // The SFTP partner presents an unexpected host key; a local-folder partner is fine.
    stand.write_config("SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "");
    let local = stand.dir.path().join("local");
    fs::create_dir_all(local.join("in")).unwrap();
    fs::copy(
        Path::new(REPO).join("samples/products-1.xml"),
        local.join("in/products-1.xml"),
    )
    .unwrap();
    let config = fs::read_to_string(&stand.config).unwrap()
        + &format!(
            r#"
[partners.shop]
root = "{root}"

[flows.shop-products]
partner = "shop"
direction = "import"
inbox = "/in"
settle = "1s"
schema = "{REPO}/xsd/products.xsd"

[flows.shop-products.mapping]
record = "/p:Products/p:Product"
namespaces = {{ p = "urn:edi-bridge:products:1" }}
model = "product.product"
action = "upsert"
key = ["default_code"]

[flows.shop-products.mapping.fields]
default_code = "@sku"
name = "p:Name"
"#,
            root = local.display()
        );
    fs::write(&stand.config, config).unwrap();
    stand.drop_sample("products-2.xml");
    let out = stand.run(&["run", "--once"]);
    assert_eq!(code(&out), 1, "the SFTP partner stopped: {}", stderr(&out));
    assert!(stderr(&out).contains("host key"), "{}", stderr(&out));
    assert_eq!(
        products(&odoo).len(),
        5,
        "the local partner's file went through"
    );
    assert!(files_in(&local.join("in")).is_empty());
    assert_eq!(files_below(&local.join("in/archive")).len(), 1);
    assert!(stand.inbox().join("products-2.xml").exists(), "untouched");
}

#[test]
fn kill_9_after_applying_a_file_with_bad_records_still_sends_it_to_error() {
    let (stand, _odoo) = real_stand("");
    let prices = stand.sshd.data_dir().join("out/prices");
    fs::write(
        prices.join("prices.csv"),
        b"sku;name;price\nA-1;Good;1,50\nA-2;Bad;abc\n",
    )
    .unwrap();
    stand.run_until_killed("applied", &["run", "--once", "prices"]);
    let rerun = stand.run(&["run", "--once", "prices"]);
    assert_eq!(code(&rerun), 1, "{}", stderr(&rerun));
    assert!(
        !prices.join("archive").exists(),
        "not archived as a success"
    );
    let report = fs::read_to_string(prices.join("error/prices.csv.error.txt")).unwrap();
    assert!(report.contains("abc"), "{report}");
    assert!(report.contains("1 of 2 records was applied"), "{report}");
}

#[test]
fn a_replayed_file_of_a_flow_with_done_markers_gets_its_marker() {
    let (stand, _odoo) = real_stand("done_marker = \".done\"");
    stand.drop_sample("products-broken.xml");
    fs::write(stand.inbox().join("products-broken.xml.done"), b"").unwrap();
    assert_eq!(code(&stand.run(&["run", "--once"])), 1);
    assert!(!stand.inbox().join("products-broken.xml.done").exists());
    let replay = stand.run(&["replay", "products", "--all"]);
    assert_eq!(code(&replay), 0, "{}", stderr(&replay));
    assert!(stand.inbox().join("products-broken.xml.done").exists());
    let again = stand.run(&["run", "--once"]);
    assert_eq!(code(&again), 1, "taken again: {}", stderr(&again));
    let report =
        fs::read_to_string(stand.error_dir().join("products-broken.xml.error.txt")).unwrap();
    assert!(report.contains("Attempt:   2"), "{report}");
}

#[test]
fn a_new_file_that_looks_like_the_one_a_crash_interrupted_is_not_mistaken_for_it() {
    let (stand, odoo) = real_stand("");
    stand.drop_sample("products-1.xml");
    let original = stand.inbox().join("products-1.xml");
    let mtime = fs::metadata(&original).unwrap().modified().unwrap();
    stand.run_until_killed("moved", &["run", "--once"]);
    // Same name, same size, same modification time, other content (an uploader keeping times).
    let text = fs::read_to_string(Path::new(REPO).join("samples/products-1.xml")).unwrap();
    let changed = text.replacen("Sit-stand desk", "Sit-stand DESK", 1);
    assert_eq!(changed.len(), text.len());
    fs::write(&original, &changed).unwrap();
    fs::File::options()
        .write(true)
        .open(&original)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let rerun = stand.run(&["run", "--once"]);
    assert_eq!(code(&rerun), 0, "{}", stderr(&rerun));
    let desk = odoo.search_records(
        "product.product",
        serde_json::json!([["default_code", "=", "FURN-DESK-160"]]),
    );
    assert_eq!(
        desk[0]["name"], "Sit-stand DESK 160 x 80 cm, oak",
        "the new file is processed, not deleted"
    );
    let archived = files_below(&stand.archive_dir());
    assert_eq!(archived.len(), 2, "{archived:?}");
    assert!(files_in(&stand.inbox()).is_empty());
}

#[test]
fn a_destination_taken_while_a_crashed_move_waited_gets_a_new_name() {
    let (stand, _odoo) = real_stand("");
    stand.drop_sample("products-1.xml");
    stand.run_until_killed("archiving", &["run", "--once"]);
    // Someone puts another file at the name the interrupted move had chosen.
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::get("Europe/Brussels").unwrap());
    let dir = stand.archive_dir().join(format!(
        "{:04}/{:02}/{:02}",
        today.year(),
        today.month(),
        today.day()
    ));
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("products-1.xml"), "someone else's file").unwrap();
    let rerun = stand.run(&["run", "--once"]);
    assert_eq!(code(&rerun), 0, "{}", stderr(&rerun));
    assert!(files_in(&stand.inbox()).is_empty(), "{}", stderr(&rerun));
    assert_eq!(
        fs::read_to_string(dir.join("products-1.xml")).unwrap(),
        "someone else's file",
        "nothing overwritten"
    );
    assert_eq!(
        fs::read(dir.join("products-1~2.xml")).unwrap(),
        fs::read(Path::new(REPO).join("samples/products-1.xml")).unwrap()
    );
}

/// The `[odoo]` section for the Odoo stand-in.
fn odoo_section(odoo: &OdooStandin) -> String {
    odoo.config_keys(Some("5s"), "")
}

/// A config with one local-folder partner (root `dir/partner`) and the products flow.
fn local_partner_config(dir: &Path, odoo: &str) -> std::path::PathBuf {
    let config = dir.join("edi-bridge.toml");
    fs::write(
        &config,
        format!(
            r#"
[odoo]
{odoo}

[ledger]
path = "edi-bridge.db"
spool = "spool"

[partners.shop]
root = "partner"
timezone = "Europe/Brussels"

[flows.products]
partner = "shop"
direction = "import"
inbox = "/in"
pattern = "*.xml"
archive = "/in/archive/{{yyyy}}/{{mm}}/{{dd}}"
error = "/in/error"
settle = "1s"
schema = "{REPO}/xsd/products.xsd"
{PRODUCTS_MAPPING}"#
        ),
    )
    .unwrap();
    config
}

fn today_folder() -> String {
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::get("Europe/Brussels").unwrap());
    format!(
        "{:04}/{:02}/{:02}",
        today.year(),
        today.month(),
        today.day()
    )
}

fn run_with(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_edi-bridge"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("EDI_BRIDGE_LOG", "warn")
        .output()
        .unwrap()
}

#[test]
fn a_dry_run_touches_nothing_and_says_what_each_file_would_become() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("partner/in");
    fs::create_dir_all(&inbox).unwrap();
    let samples = Path::new(REPO).join("samples");
    for name in ["products-1.xml", "products-broken.xml"] {
        fs::copy(samples.join(name), inbox.join(name)).unwrap();
    }
    let config = local_partner_config(dir.path(), "dry_run = true");
    let before = files_below(&dir.path().join("partner"));
    assert_eq!(before, ["in/products-1.xml", "in/products-broken.xml"]);

    let out = run_with(&config, &["run", "--once"]);
    assert_eq!(code(&out), 1, "a file would go to error/: {}", stderr(&out));
    let ops = operations(&out);
    assert_eq!(ops.len(), 5, "the good file's operations are printed");
    assert!(ops.iter().all(|op| op["file"] == "products-1.xml"));
    assert_eq!(
        files_below(&dir.path().join("partner")),
        before,
        "nothing moved, nothing written on the partner's side"
    );
    for name in ["products-1.xml", "products-broken.xml"] {
        assert_eq!(
            fs::read(inbox.join(name)).unwrap(),
            fs::read(samples.join(name)).unwrap(),
            "{name} is byte-identical"
        );
    }
    let err = stderr(&out);
    let archive_path = format!("/in/archive/{}/products-1.xml", today_folder());
    assert!(
        err.contains(&format!("would be archived → {archive_path}")),
        "{err}"
    );
    assert!(
        err.contains("would go to error → /in/error/products-broken.xml"),
        "{err}"
    );
    assert!(
        err.contains("edi-bridge could not process products-broken.xml"),
        "the report's text: {err}"
    );
    assert!(err.contains("line 12, column"), "{err}");
    assert!(
        err.contains("What was applied in Odoo: nothing (dry run)."),
        "{err}"
    );

    // The same files, the same config without dry_run: processed as if no dry run had been.
    let odoo = OdooStandin::start(StandinOptions::v18());
    local_partner_config(dir.path(), &odoo_section(&odoo));
    let out = run_with(&config, &["run", "--once"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(operations(&out).is_empty(), "nothing printed: sent");
    assert_eq!(
        odoo.search_records(
            "product.product",
            serde_json::json!([["default_code", "=", "FURN-DESK-160"]])
        )
        .len(),
        1,
        "applied in Odoo"
    );
    assert_eq!(
        files_below(&dir.path().join("partner")),
        [
            format!("in/archive/{}/products-1.xml", today_folder()),
            "in/error/products-broken.xml".to_string(),
            "in/error/products-broken.xml.error.json".to_string(),
            "in/error/products-broken.xml.error.txt".to_string(),
        ]
    );
    let report = fs::read_to_string(inbox.join("error/products-broken.xml.error.txt")).unwrap();
    assert!(
        report.lines().any(|l| l == "Attempt:   1"),
        "the dry run was no attempt: {report}"
    );
    assert!(!report.contains("dry run"), "{report}");
    let status = run_with(&config, &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status[0]["archived"], 1, "{status}");
    assert_eq!(status[0]["failed"], 1, "{status}");
    assert_eq!(status[0]["in_progress"], 0, "{status}");
}

#[test]
fn a_dry_run_after_a_crash_leaves_the_finishing_to_the_next_real_run() {
    let (stand, odoo) = real_stand("");
    stand.drop_sample("products-1.xml");
    stand.run_until_killed("applied", &["run", "--once"]);
    let real = fs::read_to_string(&stand.config).unwrap();
    fs::write(
        &stand.config,
        real.replace("[odoo]\n", "[odoo]\ndry_run = true\n"),
    )
    .unwrap();
    let dry = stand.run(&["run", "--once"]);
    assert_eq!(code(&dry), 0, "{}", stderr(&dry));
    assert!(
        stderr(&dry).contains("would be archived → "),
        "{}",
        stderr(&dry)
    );
    assert_eq!(
        files_in(&stand.inbox()),
        ["products-1.xml"],
        "nothing moved"
    );
    assert!(!stand.archive_dir().exists());

    fs::write(&stand.config, real).unwrap();
    odoo.reset_calls();
    let rerun = stand.run(&["run", "--once"]);
    assert_eq!(code(&rerun), 0, "{}", stderr(&rerun));
    assert_eq!(
        product_writes(&odoo),
        0,
        "only archived: {:?}",
        odoo.calls()
    );
    assert!(files_in(&stand.inbox()).is_empty());
    assert_eq!(files_below(&stand.archive_dir()).len(), 1);
}

/// Waits until a run has claimed and downloaded a file of the products flow (its download is
/// in the spool), and returns when it saw it.
fn wait_for_download(stand: &Stand) -> Instant {
    let spool = stand.dir.path().join("spool/products");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if !files_in(&spool).is_empty() {
            return Instant::now();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no run downloaded the file");
}

#[test]
fn a_run_that_outlives_its_lease_leaves_the_file_to_the_run_that_took_it_over() {
    let (stand, odoo) = real_stand("");
    // The first run's claims last 300ms; a second run with the default lease takes over.
    let text = fs::read_to_string(&stand.config).unwrap();
    fs::write(
        &stand.config,
        text.replace("spool = \"spool\"", "spool = \"spool\"\nlease = \"300ms\""),
    )
    .unwrap();
    let second_config = stand.dir.path().join("edi-bridge-second.toml");
    fs::write(&second_config, &text).unwrap();
    stand.drop_sample("products-1.xml");
    // Every Odoo call is slow: the first run's lease runs out long before its first batch.
    odoo.set_latency(Duration::from_millis(1500));
    let first = stand
        .command(&["run", "--once"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_download(&stand);
    std::thread::sleep(Duration::from_millis(350));
    let second = Command::new(env!("CARGO_BIN_EXE_edi-bridge"))
        .arg("--config")
        .arg(&second_config)
        .args(["run", "--once"])
        .env("EDI_BRIDGE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (first, second) = (
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    );
    odoo.set_latency(Duration::ZERO);
    let mut codes: Vec<String> = products(&odoo)
        .iter()
        .map(|p| p["default_code"].to_string())
        .collect();
    codes.sort();
    let total = codes.len();
    codes.dedup();
    assert_eq!(total, codes.len(), "nothing created twice: {codes:?}");
    assert_eq!(total, 5);
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    assert_eq!(
        code(&first),
        1,
        "the first run left the file unfinished: {}",
        stderr(&first)
    );
    assert!(
        stderr(&first).contains("ran out") || stderr(&first).contains("held by"),
        "{}",
        stderr(&first)
    );
    assert_eq!(files_below(&stand.archive_dir()).len(), 1);
    assert!(files_in(&stand.inbox()).is_empty());
}

/// Sets a file's modification time `ago` in the past.
fn age(path: &Path, ago: Duration) {
    let file = fs::File::options().append(true).open(path).unwrap();
    file.set_modified(std::time::SystemTime::now() - ago)
        .unwrap();
}

#[test]
fn a_file_whose_processing_keeps_dying_is_set_aside_and_the_flow_moves_on() {
    let (stand, odoo) = real_stand("");
    stand.drop_sample("products-1.xml");
    age(
        &stand.inbox().join("products-1.xml"),
        Duration::from_secs(600),
    );
    let newer = products_xml(2, "newer").replace("SKU-", "NEW-");
    fs::write(stand.inbox().join("products-2.xml"), newer).unwrap();
    age(
        &stand.inbox().join("products-2.xml"),
        Duration::from_secs(60),
    );
    // The oldest file is taken first and kills the process, three times (max_attempts).
    for _ in 0..3 {
        stand.run_until_killed("fetched", &["run", "--once"]);
        assert!(stand.inbox().join("products-1.xml").exists());
    }
    let out = stand.run(&["run", "--once"]);
    assert_eq!(code(&out), 1, "a file went to error/: {}", stderr(&out));
    assert_eq!(
        files_in(&stand.error_dir()),
        [
            "products-1.xml",
            "products-1.xml.error.json",
            "products-1.xml.error.txt"
        ]
    );
    let report = fs::read_to_string(stand.error_dir().join("products-1.xml.error.txt")).unwrap();
    assert!(report.contains("stopped 3 times"), "{report}");
    assert!(report.contains("max_attempts"), "{report}");
    assert!(
        report.contains("edi-bridge replay products products-1.xml"),
        "{report}"
    );
    // The flow moved on: the newer file was applied and archived.
    let archived = files_below(&stand.archive_dir());
    assert_eq!(archived.len(), 1, "{archived:?}");
    assert!(archived[0].ends_with("/products-2.xml"), "{archived:?}");
    assert_eq!(products(&odoo).len(), 2);
}

#[test]
fn a_file_that_must_wait_holds_back_the_newer_files_of_its_flow() {
    let (stand, odoo) = real_stand("done_marker = \".done\"");
    let older = products_xml(2, "older");
    let newer = products_xml(2, "newer");
    fs::write(stand.inbox().join("a-older.xml"), older).unwrap();
    age(&stand.inbox().join("a-older.xml"), Duration::from_secs(600));
    fs::write(stand.inbox().join("b-newer.xml"), newer).unwrap();
    age(&stand.inbox().join("b-newer.xml"), Duration::from_secs(60));
    fs::write(stand.inbox().join("b-newer.xml.done"), "").unwrap();
    // The older file waits for its marker: the newer one waits behind it.
    let out = stand.run(&["run", "--once"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(products(&odoo).is_empty(), "nothing applied out of order");
    assert!(stand.inbox().join("b-newer.xml").exists());
    assert!(
        stdout(&out).contains("waits for a-older.xml")
            || stderr(&out).contains("waits for a-older.xml"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    // Its marker arrives: both apply, the older first, so the newer values stay.
    fs::write(stand.inbox().join("a-older.xml.done"), "").unwrap();
    let out = stand.run(&["run", "--once"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(files_below(&stand.archive_dir()).len(), 2);
    let names: Vec<String> = products(&odoo)
        .iter()
        .map(|p| p["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("newer")), "{names:?}");
}
