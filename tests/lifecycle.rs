//! The file lifecycle through a real OpenSSH server, driven by the `edi-bridge` binary:
//! from a partner's inbox to the archive or `error/` with a report, in a dry run.

mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::stand::*;

#[test]
fn complete_files_are_archived_and_their_operations_printed() {
    let stand = Stand::new();
    stand.drop_sample("products-1.xml");
    let out = stand.run(&["run", "--once"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let ops = operations(&out);
    assert_eq!(ops.len(), 5, "one operation per product");
    assert!(
        ops.iter()
            .all(|op| op["action"] == "upsert" && op["model"] == "product.product")
    );
    assert_eq!(ops[0]["file"], "products-1.xml");
    assert_eq!(ops[0]["record"], 1);
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
    let stand = Stand::new();
    stand.drop_sample("products-broken.xml");
    let out = stand.run(&["run", "--once"]);
    assert_eq!(code(&out), 1, "a file went to error/: {}", stderr(&out));
    assert!(
        operations(&out).is_empty(),
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
    let stand = Stand::new();
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
    assert!(
        operations(&during).is_empty(),
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
    assert_eq!(operations(&after).len(), 1500);
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
    let stand = Stand::new();
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
    assert_eq!(operations(&out).len(), 4, "only the good files' records");
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
        let stand = Stand::new();
        stand.drop_sample("products-1.xml");
        let crashed = stand.run_until_killed(point, &["run", "--once"]);
        let printed_before = operations(&crashed).len();

        let rerun = stand.run(&["run", "--once"]);
        assert_eq!(code(&rerun), 0, "{point}: {}", stderr(&rerun));
        let printed_after = operations(&rerun).len();
        let expected_after = if ["applied", "archiving", "moved"].contains(&point) {
            0
        } else {
            5
        };
        assert_eq!(
            printed_after, expected_after,
            "{point}: a file whose operations completed is only archived (before: {printed_before})"
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
    let stand = Stand::new();
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
    let stand = Stand::new();
    for i in 0..12 {
        fs::write(
            stand.inbox().join(format!("batch-{i:02}.xml")),
            products_xml(3, &format!("file {i}")),
        )
        .unwrap();
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
    let mut printed: Vec<String> = operations(&first)
        .into_iter()
        .chain(operations(&second))
        .map(|op| format!("{}#{}", op["file"], op["record"]))
        .collect();
    printed.sort();
    let total = printed.len();
    printed.dedup();
    assert_eq!(total, printed.len(), "no record applied twice");
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
    let stand = Stand::new();
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
    let stand = Stand::with_flow_options("done_marker = \".done\"");
    stand.drop_sample("products-1.xml");
    let out = stand.run(&["run", "--once"]);
    assert_eq!(code(&out), 0);
    assert!(operations(&out).is_empty());
    assert!(
        stderr(&out).contains("products-1.xml.done"),
        "{}",
        stderr(&out)
    );
    assert!(stand.inbox().join("products-1.xml").exists());
    fs::write(stand.inbox().join("products-1.xml.done"), b"").unwrap();
    let out = stand.run(&["run", "--once"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(operations(&out).len(), 5);
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
    let mut stand = Stand::new();
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
    let stand = Stand::with_flow_options("done_marker = \".done\"");
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
    let stand = Stand::new();
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
        operations(&out).len(),
        5,
        "the local partner's file went through"
    );
    assert!(files_in(&local.join("in")).is_empty());
    assert_eq!(files_below(&local.join("in/archive")).len(), 1);
    assert!(stand.inbox().join("products-2.xml").exists(), "untouched");
}

#[test]
fn kill_9_after_applying_a_file_with_bad_records_still_sends_it_to_error() {
    let stand = Stand::new();
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
    let stand = Stand::with_flow_options("done_marker = \".done\"");
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
    let stand = Stand::new();
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
    let ops = operations(&rerun);
    assert_eq!(ops.len(), 5, "the new file is processed, not deleted");
    assert_eq!(ops[0]["values"]["name"], "Sit-stand DESK 160 x 80 cm, oak");
    let archived = files_below(&stand.archive_dir());
    assert_eq!(archived.len(), 2, "{archived:?}");
    assert!(files_in(&stand.inbox()).is_empty());
}

#[test]
fn a_destination_taken_while_a_crashed_move_waited_gets_a_new_name() {
    let stand = Stand::new();
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
