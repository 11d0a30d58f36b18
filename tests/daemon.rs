//! `edi-bridge run` as a service, started as a process against a real OpenSSH server, local
//! folders and the Odoo stand-in: schedules fire, a local drop is picked up at once, the HTTP
//! endpoints answer, the webhook's codes, SIGTERM mid-file, no overlapping runs, no secret in
//! the logs, and `check`'s own line for each broken part.

mod support;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::stand::*;
use support::standin::{OdooStandin, StandinOptions};

/// The request Odoo 18 sent (odoo-transcripts 18/179), byte for byte.
const ODOO_18_WEBHOOK: &str = r#"{"_action": "Send Webhook Notification(#301)", "_id": 20, "_model": "stock.picking", "id": 20, "name": "WH/OUT/00015", "origin": "TR2-WH-001", "partner_id": 44, "state": "assigned"}"#;

const TOKEN: &str = "hook-token-Zq8x2";

fn odoo_section(odoo: &OdooStandin) -> String {
    odoo.config_keys(Some("10s"), "")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn server_section(port: u16, extra: &str) -> String {
    format!(
        "\n[server]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\nstop_timeout = \"30s\"\n{extra}\n"
    )
}

fn append(config: &Path, text: &str) {
    let mut f = fs::OpenOptions::new().append(true).open(config).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// A daemon process; killed if the test ends without stopping it.
struct Running {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
}

impl Running {
    fn start(config: &Path, port: u16, log_filter: &str, extra_args: &[&str]) -> Running {
        let log = config.with_extension(format!("{port}.log"));
        let err = fs::File::create(&log).unwrap();
        let out = err.try_clone().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_edi-bridge"))
            .arg("--config")
            .arg(config)
            .args(extra_args)
            .arg("run")
            .env("EDI_BRIDGE_LOG", log_filter)
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap();
        let mut d = Running {
            child: Some(child),
            port,
            log,
        };
        d.wait_healthy();
        d
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("the daemon exited ({status}): {}", self.log_text());
            }
            if let Ok((200, _)) = try_http(self.port, "GET", "/healthz", &[], b"") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "never healthy: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn get(&self, path: &str) -> (u16, String) {
        http(self.port, "GET", path, &[], b"")
    }

    fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
        http(self.port, "POST", path, headers, body)
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn sigterm(&self) {
        let pid = nix::unistd::Pid::from_raw(self.child.as_ref().unwrap().id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    }

    /// SIGTERM; the exit code and the whole log.
    fn stop(&mut self) -> (Option<i32>, String) {
        self.sigterm();
        self.wait_exit()
    }

    /// Waits for the exit after a SIGTERM; the exit code and the whole log.
    fn wait_exit(&mut self) -> (Option<i32>, String) {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("no exit 60 s after SIGTERM: {}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (status.code(), self.log_text())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn try_http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    // A body the server refuses early may not be read whole: that is fine.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    try_http(port, method, path, headers, body).unwrap()
}

/// Waits until `cond` holds (polling), at most `secs`.
fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "not within {secs} s: {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    start.elapsed()
}

fn flow_status<'a>(all: &'a serde_json::Value, flow: &str) -> &'a serde_json::Value {
    all.as_array()
        .unwrap()
        .iter()
        .find(|f| f["flow"] == flow)
        .unwrap()
}

/// A metric's value (the first sample whose line starts with `prefix`).
fn metric(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// A local-folder partner with the products flow (scheduled hourly: only the watcher can take a
/// drop quickly).
fn local_config(dir: &Path, odoo: &OdooStandin, port: u16) -> PathBuf {
    let config = dir.join("edi-bridge.toml");
    for sub in ["partner/in", "partner/archive", "partner/error"] {
        fs::create_dir_all(dir.join(sub)).unwrap();
    }
    fs::write(
        &config,
        format!(
            r#"
[odoo]
{odoo}
[ledger]
path = "edi-bridge.db"

[partners.local]
root = "{root}"
timezone = "Europe/Brussels"

[flows.products]
partner = "local"
direction = "import"
every = "1h"
inbox = "/in"
pattern = "*.xml"
archive = "/archive"
error = "/error"
settle = "10s"
schema = "{repo}/xsd/products.xsd"
{mapping}
{server}"#,
            odoo = odoo_section(odoo),
            root = dir.join("partner").display(),
            repo = REPO,
            mapping = PRODUCTS_MAPPING,
            server = server_section(port, ""),
        ),
    )
    .unwrap();
    config
}

#[test]
fn a_local_drop_is_archived_at_once_and_shows_in_metrics_and_status() {
    let odoo = OdooStandin::start(StandinOptions::v18());
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = local_config(dir.path(), &odoo, port);
    let mut daemon = Running::start(&config, port, "info", &[]);
    // The first scheduled poll (at start) has run: the inbox was empty.
    wait_for(10, "the first poll", || {
        let (_, body) = daemon.get("/status");
        let all: serde_json::Value = serde_json::from_str(&body).unwrap();
        flow_status(&all, "products")["last_run"]["result"] == "ok"
    });

    // Written in place and closed: taken at once, although `settle` is 10 s.
    let sample = fs::read(Path::new(REPO).join("samples/products-1.xml")).unwrap();
    let archived = dir.path().join("partner/archive/products-1.xml");
    let dropped = Instant::now();
    fs::write(dir.path().join("partner/in/products-1.xml"), &sample).unwrap();
    let took = wait_for(8, "the drop archived", || archived.exists());
    eprintln!("local drop → archived in {} ms", took.as_millis());
    assert!(dropped.elapsed() < Duration::from_secs(8));
    assert_eq!(fs::read(&archived).unwrap(), sample);

    // The run that took it has ended (counted once its files are).
    let mut text = String::new();
    wait_for(5, "the second run counted", || {
        let (code, body) = daemon.get("/metrics");
        assert_eq!(code, 200);
        text = body;
        metric(
            &text,
            r#"edi_bridge_runs_total{flow="products",outcome="ok"}"#,
        ) == Some(2.0)
    });
    assert_eq!(
        metric(
            &text,
            r#"edi_bridge_files_total{flow="products",outcome="archived"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            r#"edi_bridge_records_total{flow="products",outcome="applied"}"#
        ),
        Some(5.0),
        "{text}"
    );
    assert!(
        metric(
            &text,
            r#"edi_bridge_last_success_timestamp_seconds{flow="products"}"#
        )
        .is_some_and(|t| t > 1.7e9),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            r#"edi_bridge_oldest_waiting_seconds{flow="products"}"#
        ),
        Some(0.0),
        "nothing waits: {text}"
    );
    assert!(
        text.contains(r#"edi_bridge_odoo_call_seconds_count{method="load"}"#)
            || text.contains(r#"edi_bridge_odoo_call_seconds_count{method="create"}"#),
        "{text}"
    );
    assert!(
        metric(&text, "edi_bridge_ledger_rows ").is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, r#"edi_bridge_runs_skipped_total{flow="products"}"#),
        Some(0.0),
        "{text}"
    );

    // `/status` is `status --json`, read by another process while the daemon runs.
    let (code, body) = daemon.get("/status");
    assert_eq!(code, 200);
    let over_http: serde_json::Value = serde_json::from_str(&body).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_edi-bridge"))
        .arg("--config")
        .arg(&config)
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert_eq!(code_of(&out), 0, "{}", stderr(&out));
    let from_cli: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(over_http, from_cli);
    let products = flow_status(&over_http, "products");
    assert_eq!(products["archived"], 1);
    assert_eq!(products["last_run"]["result"], "ok");
    assert_eq!(products["schedule"], "every 1h");
    assert!(products["next_run"].is_string(), "{products}");

    // A broken file: `status` names it with the first line of its report.
    fs::copy(
        Path::new(REPO).join("samples/products-broken.xml"),
        dir.path().join("partner/in/products-broken.xml"),
    )
    .unwrap();
    wait_for(8, "the broken file in error/", || {
        dir.path()
            .join("partner/error/products-broken.xml.error.txt")
            .exists()
    });
    let out = Command::new(env!("CARGO_BIN_EXE_edi-bridge"))
        .arg("--config")
        .arg(&config)
        .arg("status")
        .output()
        .unwrap();
    let table = stdout(&out);
    assert!(
        table
            .lines()
            .any(|l| l.contains("failed products-broken.xml: ")),
        "{table}"
    );
    let (code, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("edi-bridge stopped"), "{log}");
    // Human logs: the file's span names its flow, partner and file.
    assert!(
        log.lines().any(|l| l.contains("flow=products")
            && l.contains("partner=local")
            && l.contains("file=products-1.xml")
            && l.contains("archived")),
        "{log}"
    );
}

fn code_of(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// The SFTP stand with the daemon's extra keys: `products_keys` go to the products flow,
/// `prices_keys` to the prices flow, `server` is appended.
fn sftp_stand(odoo: &OdooStandin, products_keys: &str, prices_keys: &str, server: &str) -> Stand {
    let stand = Stand::with_odoo(&odoo_section(odoo), products_keys);
    let text = fs::read_to_string(&stand.config).unwrap().replace(
        "[flows.prices]\npartner = \"acme\"\n",
        &format!("[flows.prices]\npartner = \"acme\"\n{prices_keys}\n"),
    );
    fs::write(&stand.config, text).unwrap();
    append(&stand.config, server);
    stand
}

const PRICES_CSV: &str = "sku;name;price\nSKU-1;Widget;1,50\nSKU-2;Gadget;2,25\n";

#[test]
fn schedules_fire_every_interval_and_every_cron_second() {
    let odoo = OdooStandin::start(StandinOptions::v18());
    let port = free_port();
    let stand = sftp_stand(
        &odoo,
        "every = \"1s\"",
        "cron = \"* * * * * *\"",
        &server_section(port, ""),
    );
    let mut daemon = Running::start(&stand.config, port, "info", &[]);
    let runs = |flow: &str| {
        let (_, text) = daemon.get("/metrics");
        metric(
            &text,
            &format!(r#"edi_bridge_runs_total{{flow="{flow}",outcome="ok"}}"#),
        )
        .unwrap_or(0.0)
    };
    wait_for(15, "three runs of each flow", || {
        runs("products") >= 3.0 && runs("prices") >= 3.0
    });
    // Files dropped on the partner's server are taken by the next poll.
    let prices_inbox = stand.sshd.data_dir().join("out/prices");
    fs::write(prices_inbox.join("p.csv"), PRICES_CSV).unwrap();
    stand.drop_sample("products-2.xml");
    wait_for(20, "both files taken", || {
        files_in(&prices_inbox).is_empty() && files_in(&stand.inbox()).is_empty()
    });
    let (_, body) = daemon.get("/status");
    let all: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(flow_status(&all, "prices")["schedule"], "cron * * * * * *");
    assert_eq!(flow_status(&all, "prices")["archived"], 1, "{all}");
    assert_eq!(flow_status(&all, "products")["archived"], 1, "{all}");
    // One session kept between the polls of the partner, not one handshake per poll.
    let (code, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
    let sessions = stand
        .sshd
        .log()
        .lines()
        .filter(|l| l.contains("Accepted publickey"))
        .count();
    assert!(
        (1..=4).contains(&sessions),
        "{sessions} logins for dozens of polls:\n{}",
        stand.sshd.log()
    );
}

#[test]
fn the_webhook_polls_an_import_flow_and_answers_each_mistake_with_its_code() {
    let odoo = OdooStandin::start(StandinOptions::v18());
    let port = free_port();
    let stand = sftp_stand(&odoo, "", "", &server_section(port, ""));
    let data = stand.sshd.data_dir();
    fs::create_dir_all(data.join("in/orders")).unwrap();
    append(
        &stand.config,
        &format!(
            "\n[flows.orders]\npartner = \"acme\"\ndirection = \"export\"\noutbox = \"{}/in/orders\"\nmodel = \"stock.picking\"\n",
            data.display()
        ),
    );
    let mut daemon = Running::start(&stand.config, port, "info", &[]);
    stand.drop_sample("products-1.xml");
    // No schedule: only the hook makes the flow poll.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(files_in(&stand.inbox()), ["products-1.xml"]);

    let json = [("Content-Type", "application/json")];
    let path = format!("/hooks/products?token={TOKEN}");
    let posted = Instant::now();
    let (code, body) = daemon.post(&path, &json, ODOO_18_WEBHOOK.as_bytes());
    assert_eq!(code, 202, "{body}");
    let took = wait_for(10, "the hooked poll archived the file", || {
        files_in(&stand.inbox()).is_empty()
    });
    eprintln!("webhook → file archived in {} ms", took.as_millis());
    assert!(posted.elapsed() < Duration::from_secs(10));
    assert_eq!(files_below(&stand.archive_dir()).len(), 1);

    // A bearer header works as well as the query.
    let bearer = format!("Bearer {TOKEN}");
    let with_bearer = [
        ("Content-Type", "application/json"),
        ("Authorization", bearer.as_str()),
    ];
    let (code, _) = daemon.post("/hooks/products", &with_bearer, ODOO_18_WEBHOOK.as_bytes());
    assert_eq!(code, 202);
    // An export flow takes the recorded body of its model.
    let (code, body) = daemon.post("/hooks/orders", &with_bearer, ODOO_18_WEBHOOK.as_bytes());
    assert_eq!(code, 202, "{body}");

    // 401: no token, a wrong one (query or header).
    let (code, _) = daemon.post("/hooks/products", &json, ODOO_18_WEBHOOK.as_bytes());
    assert_eq!(code, 401);
    let (code, _) = daemon.post(
        "/hooks/products?token=hook-token-Zq8x3",
        &json,
        ODOO_18_WEBHOOK.as_bytes(),
    );
    assert_eq!(code, 401);
    let wrong = [("Authorization", "Bearer nope")];
    let (code, _) = daemon.post("/hooks/products", &wrong, ODOO_18_WEBHOOK.as_bytes());
    assert_eq!(code, 401);
    // An unknown flow: 404 (only with the right token: flows are not revealed otherwise).
    let (code, _) = daemon.post(
        &format!("/hooks/nope?token={TOKEN}"),
        &json,
        ODOO_18_WEBHOOK.as_bytes(),
    );
    assert_eq!(code, 404);
    let (code, _) = daemon.post("/hooks/nope?token=x", &json, ODOO_18_WEBHOOK.as_bytes());
    assert_eq!(code, 401);
    // 400: not Odoo's body, or another model than the export flow's.
    for bad in [
        r#"{"_model": "stock.picking", "id": 20}"#,
        r#"{"_id": 20}"#,
        r#"[20]"#,
        "{not json",
    ] {
        let (code, body) = daemon.post(&path, &json, bad.as_bytes());
        assert_eq!(code, 400, "{bad}: {body}");
    }
    let (code, body) = daemon.post(
        &format!("/hooks/orders?token={TOKEN}"),
        &json,
        br#"{"_id": 3, "_model": "sale.order"}"#,
    );
    assert_eq!(code, 400);
    assert!(body.contains("stock.picking"), "{body}");
    // 413: over 1 MiB.
    let big = format!(
        r#"{{"_id": 20, "_model": "stock.picking", "pad": "{}"}}"#,
        "x".repeat(1024 * 1024)
    );
    let (code, _) = daemon.post(&path, &json, big.as_bytes());
    assert_eq!(code, 413);

    let (code, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("/hooks/products"), "hooks are logged: {log}");
    assert!(!log.contains(TOKEN), "the token is never logged: {log}");
}

/// Odoo 18's recorded webhook body, naming picking `id` instead of the recorded 20.
fn odoo_18_webhook_for(id: i64) -> String {
    ODOO_18_WEBHOOK
        .replace("\"_id\": 20", &format!("\"_id\": {id}"))
        .replace("\"id\": 20", &format!("\"id\": {id}"))
}

#[test]
fn the_recorded_odoo_webhook_exports_its_picking_at_once_and_rereads_one_not_committed_yet() {
    let odoo = OdooStandin::start(StandinOptions::v18());
    let port = free_port();
    let stand = sftp_stand(&odoo, "", "", &server_section(port, ""));
    let outbox = stand.sshd.data_dir().join("in/orders");
    fs::create_dir_all(&outbox).unwrap();
    // No schedule: only the webhook exports.
    append(
        &stand.config,
        &format!(
            "\n[flows.orders]\npartner = \"acme\"\ndirection = \"export\"\noutbox = \"{}\"\n",
            outbox.display()
        ),
    );
    let product = odoo.add_product("HOOK-1", "Hooked Widget");
    let customer = odoo.add_partner("Hook Customer");
    let first = odoo.add_delivery(customer, &[(product, 3.0)]);
    let second = odoo.add_delivery(customer, &[(product, 2.0)]);
    let name = |id: i64| {
        odoo.record("stock.picking", id).unwrap()["name"]
            .as_str()
            .unwrap()
            .replace('/', "_")
            + ".xml"
    };
    let mut daemon = Running::start(&stand.config, port, "info", &[]);
    let json = [("Content-Type", "application/json")];
    let path = format!("/hooks/orders?token={TOKEN}");

    // A ready picking: its file is in the outbox within a second of the POST; only its own.
    let posted = Instant::now();
    let (code, body) = daemon.post(&path, &json, odoo_18_webhook_for(first).as_bytes());
    assert_eq!(code, 202, "{body}");
    let took = wait_for(5, "the hooked picking published", || {
        files_in(&outbox) == [name(first)]
    });
    eprintln!("webhook → file in the outbox in {} ms", took.as_millis());
    assert!(
        posted.elapsed() < Duration::from_secs(1),
        "published {} ms after the POST",
        posted.elapsed().as_millis()
    );

    // Odoo 17/18 post before their transaction commits: the picking is not ready when the
    // hook arrives, and is a moment later. It is read again and published.
    odoo.write_record(
        "stock.picking",
        second,
        serde_json::json!({"state": "confirmed"}),
    );
    let (code, _) = daemon.post(&path, &json, odoo_18_webhook_for(second).as_bytes());
    assert_eq!(code, 202);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(files_in(&outbox), [name(first)], "not ready: not published");
    odoo.write_record(
        "stock.picking",
        second,
        serde_json::json!({"state": "assigned"}),
    );
    // Waits for the final name: an upload in progress shows as a `.part` file meanwhile.
    wait_for(5, "the re-read picking published", || {
        files_in(&outbox).contains(&name(second))
    });
    assert_eq!(files_in(&outbox).len(), 2, "{:?}", files_in(&outbox));

    // The same hook again: exported already, nothing published twice.
    let (code, _) = daemon.post(&path, &json, odoo_18_webhook_for(first).as_bytes());
    assert_eq!(code, 202);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(files_in(&outbox).len(), 2);
    let (_, metrics) = daemon.get("/metrics");
    assert_eq!(
        metric(
            &metrics,
            r#"edi_bridge_records_total{flow="orders",outcome="published"}"#
        ),
        Some(2.0),
        "{metrics}"
    );
    let (code, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(!files_in(&outbox).iter().any(|f| f.ends_with(".part")));
}

#[test]
fn an_address_not_allowed_gets_403() {
    let odoo = OdooStandin::start(StandinOptions::v18());
    let port = free_port();
    let stand = sftp_stand(
        &odoo,
        "",
        "",
        &server_section(port, "allow = [\"10.1.0.0/16\"]"),
    );
    let daemon = Running::start(&stand.config, port, "warn", &[]);
    let (code, _) = daemon.post(
        &format!("/hooks/products?token={TOKEN}"),
        &[],
        ODOO_18_WEBHOOK.as_bytes(),
    );
    assert_eq!(code, 403);
    assert_eq!(daemon.get("/healthz").0, 200, "other endpoints stay open");
}

#[test]
fn sigterm_mid_file_finishes_the_file_and_exits_0() {
    let odoo = OdooStandin::start(StandinOptions::v18());
    let port = free_port();
    let stand = sftp_stand(&odoo, "every = \"1s\"", "", &server_section(port, ""));
    let mut daemon = Running::start(&stand.config, port, "info", &[]);
    // Every Odoo call takes a while: the file is in hand for seconds.
    odoo.set_latency(Duration::from_millis(700));
    stand.drop_sample("products-1.xml");
    wait_for(20, "the file claimed", || {
        let (_, body) = daemon.get("/status");
        let all: serde_json::Value = serde_json::from_str(&body).unwrap();
        flow_status(&all, "products")["in_progress"] == 1
    });
    daemon.sigterm();
    // Another file arrives while stopping: it is not taken.
    stand.drop_sample("products-2.xml");
    // While the file in hand is finished, the daemon says it is stopping.
    let mut said = None;
    wait_for(5, "/healthz says the daemon is stopping", || {
        said = try_http(daemon.port, "GET", "/healthz", &[], b"").ok();
        said.as_ref().is_some_and(|(code, _)| *code != 200)
    });
    let (code, body) = said.unwrap();
    assert_eq!((code, body.trim()), (503, "stopping"));
    let (code, log) = daemon.wait_exit();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("SIGTERM: stopping"), "{log}");
    // Finished: archived whole, not left half-moved.
    let archived = files_below(&stand.archive_dir());
    assert_eq!(archived.len(), 1, "{archived:?}\n{log}");
    assert!(archived[0].ends_with("products-1.xml"));
    assert_eq!(files_in(&stand.inbox()), ["products-2.xml"]);
    let out = stand.run(&["status", "--json"]);
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let products = flow_status(&all, "products");
    assert_eq!(products["archived"], 1, "{products}");
    assert_eq!(products["in_progress"], 0, "{products}");
}

/// (timestamp, process, message) of the JSON log lines about runs of `flow`.
fn run_events(log: &str, who: usize, flow: &str) -> Vec<(String, usize, String)> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["flow"] == flow)
        .filter_map(|v| {
            let message = v["fields"]["message"].as_str()?.to_string();
            (message == "run starts" || message == "run done")
                .then(|| (v["timestamp"].as_str().unwrap().to_string(), who, message))
        })
        .collect()
}

#[test]
fn a_flow_slower_than_its_interval_never_runs_twice_at_once() {
    let odoo = OdooStandin::start(StandinOptions::v18());
    let port = free_port();
    let stand = sftp_stand(&odoo, "every = \"1s\"", "", &server_section(port, ""));
    // A second instance on the same ledger: the ledger's flow lock keeps them apart too.
    let port2 = free_port();
    let second = stand.config.with_file_name("second.toml");
    fs::write(
        &second,
        fs::read_to_string(&stand.config)
            .unwrap()
            .replace(&format!("127.0.0.1:{port}"), &format!("127.0.0.1:{port2}")),
    )
    .unwrap();
    odoo.set_latency(Duration::from_millis(400));
    let filter = "info,edi_bridge::daemon=debug";
    let json = ["--log-format", "json"];
    let mut one = Running::start(&stand.config, port, filter, &json);
    let mut two = Running::start(&second, port2, filter, &json);
    for n in 0..3 {
        fs::write(
            stand.inbox().join(format!("batch-{n}.xml")),
            products_xml(12, &format!("Batch {n}")),
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(1500));
    }
    wait_for(60, "every file taken", || {
        files_in(&stand.inbox()).is_empty()
    });
    // A few idle polls more, by whichever instance gets the flow.
    std::thread::sleep(Duration::from_secs(3));
    let skipped = |d: &Running| {
        let (_, body) = d.get("/status");
        let all: serde_json::Value = serde_json::from_str(&body).unwrap();
        flow_status(&all, "products")["runs_skipped"]
            .as_u64()
            .unwrap()
    };
    assert!(skipped(&one) > 0, "a slow run made the schedule skip");
    let (code1, log1) = one.stop();
    let (code2, log2) = two.stop();
    assert_eq!((code1, code2), (Some(0), Some(0)), "{log1}\n{log2}");
    let mut events = run_events(&log1, 1, "products");
    events.extend(run_events(&log2, 2, "products"));
    events.sort();
    assert!(events.len() >= 6, "{events:?}");
    // Starts and ends alternate, over both processes: never two runs at once.
    for pair in events.chunks(2) {
        assert_eq!(pair[0].2, "run starts", "{events:#?}");
        if pair.len() == 2 {
            assert_eq!(pair[1].2, "run done", "{events:#?}");
            assert_eq!(pair[0].1, pair[1].1, "{events:#?}");
        }
    }
    assert_eq!(files_below(&stand.archive_dir()).len(), 3);
}

#[test]
fn no_secret_is_ever_logged_even_at_debug() {
    let odoo = OdooStandin::start(StandinOptions::v18());
    let port = free_port();
    let stand = Stand::with_odoo(&odoo_section(&odoo), "every = \"1s\"");
    let user = stand.sshd.password_user().to_string();
    let home = format!("/home/{user}");
    append(
        &stand.config,
        &format!(
            r#"
[partners.pw]
host = "127.0.0.1"
port = {port}
user = "{user}"
password = "${{PW_SFTP_PASSWORD}}"
host_key = "{fp}"

[flows.pw-prices]
partner = "pw"
direction = "import"
every = "1s"
inbox = "{home}"
pattern = "*.csv"
settle = "1s"
format = "csv"
delimiter = ";"
encoding = "windows-1252"
decimal = ","
columns = [{{ name = "sku" }}, {{ name = "name" }}, {{ name = "price", type = "float" }}]

[flows.pw-prices.mapping]
model = "product.product"
action = "upsert"
key = ["default_code"]

[flows.pw-prices.mapping.fields]
default_code = "sku"
name = "name"
list_price = "price"
{server}"#,
            port = stand.sshd.port(),
            fp = stand.sshd.host_key_fingerprint(),
            server = server_section(port, ""),
        ),
    );
    let password = support::sshd::PASSWORD;
    let api_key = odoo.options().api_key;
    let log = stand.config.with_extension("log");
    let child = Command::new(env!("CARGO_BIN_EXE_edi-bridge"))
        .arg("--config")
        .arg(&stand.config)
        .arg("run")
        .env("EDI_BRIDGE_LOG", "debug")
        .env("PW_SFTP_PASSWORD", password)
        .stdout(Stdio::from(fs::File::create(&log).unwrap()))
        .stderr(Stdio::from(
            fs::File::create(log.with_extension("err")).unwrap(),
        ))
        .spawn()
        .unwrap();
    let mut daemon = Running {
        child: Some(child),
        port,
        log: log.with_extension("err"),
    };
    daemon.wait_healthy();
    stand.drop_sample("products-1.xml");
    wait_for(20, "the product file taken", || {
        files_in(&stand.inbox()).is_empty()
    });
    // The password partner logged in and polled its inbox.
    wait_for(20, "the password partner polled", || {
        let (_, body) = daemon.get("/status");
        let all: serde_json::Value = serde_json::from_str(&body).unwrap();
        flow_status(&all, "pw-prices")["last_run"]["result"] == "ok"
    });
    let json = [("Content-Type", "application/json")];
    let _ = daemon.post(
        &format!("/hooks/products?token={TOKEN}"),
        &json,
        ODOO_18_WEBHOOK.as_bytes(),
    );
    let bearer = format!("Bearer {TOKEN}");
    let _ = daemon.post(
        "/hooks/products",
        &[("Authorization", bearer.as_str())],
        b"",
    );
    let _ = daemon.post("/hooks/products?token=wrong", &json, b"{}");
    let (code, err) = daemon.stop();
    assert_eq!(code, Some(0), "{err}");
    let out = fs::read_to_string(&log).unwrap();
    let all = format!("{out}{err}");
    assert!(all.lines().count() > 50, "a debug log: {all}");
    assert!(all.contains("DEBUG"), "{all}");
    for (what, secret) in [
        ("API key", api_key.as_str()),
        ("SFTP password", password),
        ("hook token", TOKEN),
    ] {
        assert!(!all.contains(secret), "the {what} is in the log");
    }
}

#[test]
fn check_fails_on_each_broken_part_with_its_own_line() {
    let odoo = OdooStandin::start(StandinOptions::v18());
    let stand = Stand::with_odoo(&odoo_section(&odoo), "");
    let out = stand.run(&["check"]);
    assert_eq!(code_of(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let original = fs::read_to_string(&stand.config).unwrap();
    let fails = |out: &std::process::Output| -> Vec<String> {
        stdout(out)
            .lines()
            .filter(|l| l.starts_with("FAIL"))
            .map(str::to_string)
            .collect()
    };

    // A wrong host key.
    stand.write_config("SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "");
    let out = stand.run(&["check"]);
    assert_eq!(code_of(&out), 1);
    let lines = fails(&out);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("partner acme") && l.contains("host key")),
        "{lines:?}"
    );
    fs::write(&stand.config, &original).unwrap();

    // A wrong Odoo key.
    fs::write(
        &stand.config,
        original.replace(&odoo.options().api_key, "not-the-key"),
    )
    .unwrap();
    let out = stand.run(&["check"]);
    assert_eq!(code_of(&out), 1);
    let lines = fails(&out);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("odoo") && l.to_lowercase().contains("key")),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains("host key")), "{lines:?}");
    fs::write(&stand.config, &original).unwrap();

    // A missing folder.
    fs::remove_dir_all(stand.sshd.data_dir().join("out/prices")).unwrap();
    let out = stand.run(&["check"]);
    assert_eq!(code_of(&out), 1);
    let lines = fails(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("flow prices") && lines[0].contains("out/prices"),
        "{lines:?}"
    );
}

#[test]
fn on_the_sftp_host_a_partners_inbox_is_watched_through_local_root() {
    let odoo = OdooStandin::start(StandinOptions::v18());
    let port = free_port();
    // No schedule: only the watcher can take the file; the partner's paths are local paths.
    let stand = sftp_stand(&odoo, "", "", &server_section(port, ""));
    let text = fs::read_to_string(&stand.config)
        .unwrap()
        .replace("[partners.acme]\n", "[partners.acme]\nlocal_root = \"/\"\n");
    fs::write(&stand.config, text).unwrap();
    let mut daemon = Running::start(&stand.config, port, "info", &[]);
    let sample = fs::read(Path::new(REPO).join("samples/products-1.xml")).unwrap();
    // Uploaded under a temporary name, then renamed into place, as SFTP clients do.
    fs::write(stand.inbox().join(".products-1.xml.part"), &sample).unwrap();
    fs::rename(
        stand.inbox().join(".products-1.xml.part"),
        stand.inbox().join("products-1.xml"),
    )
    .unwrap();
    let took = wait_for(10, "the renamed file archived", || {
        files_in(&stand.inbox()).is_empty()
    });
    eprintln!(
        "rename into the inbox → archived over SFTP in {} ms",
        took.as_millis()
    );
    assert_eq!(files_below(&stand.archive_dir()).len(), 1);
    let (code, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn a_kept_session_lost_with_its_server_is_reopened() {
    let odoo = OdooStandin::start(StandinOptions::v18());
    let port = free_port();
    let mut stand = sftp_stand(&odoo, "every = \"1s\"", "", &server_section(port, ""));
    let mut daemon = Running::start(&stand.config, port, "info", &[]);
    wait_for(10, "a first poll", || {
        let (_, body) = daemon.get("/status");
        let all: serde_json::Value = serde_json::from_str(&body).unwrap();
        flow_status(&all, "products")["last_run"]["result"] == "ok"
    });
    // The server restarts: the kept session is dead.
    stand.sshd.restart();
    stand.drop_sample("products-1.xml");
    wait_for(30, "the file taken over a new session", || {
        files_in(&stand.inbox()).is_empty()
    });
    let (_, text) = daemon.get("/metrics");
    assert!(
        metric(&text, r#"edi_bridge_sftp_errors_total{partner="acme"}"#).is_some_and(|n| n >= 1.0),
        "the lost session is counted: {text}"
    );
    let (code, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
}
