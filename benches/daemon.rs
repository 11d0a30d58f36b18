//! The daemon's latencies and idle cost, measured on the `edi-bridge` binary as a process.
//!
//! `cargo bench --bench daemon` starts the Odoo 18 stand-in (no added latency) and a real
//! OpenSSH `sshd`, then:
//!
//! 1. **local drop → archived**: a local-folder partner whose products flow is scheduled
//!    hourly (only the folder watcher can take a file quickly; `settle` is 10 s, so a file
//!    taken sooner was taken on the watcher's close-after-write signal); 30 files of 5
//!    products written one after another, each timed from the write to its archive.
//! 2. **webhook → archived**: an SFTP partner (not watched) whose products flow has no
//!    schedule; per round a file is put in its inbox, left to age past `settle`, then the
//!    recorded Odoo 18 webhook body is POSTed to `/hooks/products?token=…`, timed from the
//!    POST to the file's archive on the server.
//! 3. **webhook → file in the outbox**: an SFTP partner with an `orders` export flow (no
//!    schedule); per round a new ready delivery is added to the stand-in, then the recorded
//!    Odoo 18 webhook body, its `_id` replaced by the new picking's, is POSTed to
//!    `/hooks/orders?token=…`, timed from the POST to the picking's file appearing under its
//!    final name in the partner's outbox on the server (uploads go to a `.part` name first).
//! 4. **idle daemon, 50 flows**: 10 SFTP partners (the same sshd) × 5 flows each polling an
//!    empty inbox every 10 s, for `EDI_BENCH_IDLE_SECS` (default 60) seconds: CPU time and
//!    resident memory of the process (from /proc), SSH logins seen by sshd.
//!
//! Every timing checks the file really reached the archive or the outbox.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[allow(dead_code)]
#[path = "../tests/support/standin/mod.rs"]
mod standin;

#[allow(dead_code)]
#[path = "../tests/support/sshd.rs"]
mod sshd;

use standin::{OdooStandin, StandinOptions};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const TOKEN: &str = "bench-token";
const ODOO_18_WEBHOOK: &str = r#"{"_action": "Send Webhook Notification(#301)", "_id": 20, "_model": "stock.picking", "id": 20, "name": "WH/OUT/00015", "origin": "TR2-WH-001", "partner_id": 44, "state": "assigned"}"#;

const PRODUCTS_MAPPING: &str = r#"
[flows.products.mapping]
record = "/p:Products/p:Product"
namespaces = { p = "urn:edi-bridge:products:1" }
model = "product.product"
action = "upsert"
key = ["default_code"]

[flows.products.mapping.fields]
default_code = "@sku"
name = "p:Name"
list_price = { path = "p:Price", type = "float", optional = true }
"#;

fn products_xml(round: usize) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Products xmlns=\"urn:edi-bridge:products:1\">\n",
    );
    for i in 0..5 {
        xml.push_str(&format!(
            "  <Product sku=\"B-{round}-{i}\"><Name>Bench {round} {i}</Name><Price>{i}.5</Price></Product>\n"
        ));
    }
    xml.push_str("</Products>\n");
    xml
}

fn odoo_section(odoo: &OdooStandin) -> String {
    odoo.config_keys(None, "")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Daemon {
    child: Child,
}

impl Daemon {
    fn start(config: &Path, port: u16) -> Daemon {
        let child = Command::new(env!("CARGO_BIN_EXE_edi-bridge"))
            .arg("--config")
            .arg(config)
            .arg("run")
            .env("EDI_BRIDGE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let d = Daemon { child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while http(port, "GET", "/healthz", b"")
            .map(|c| c != 200)
            .unwrap_or(true)
        {
            assert!(Instant::now() < deadline, "daemon never healthy");
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    fn stop(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "daemon exit {status}");
    }
}

fn http(port: u16, method: &str, path: &str, body: &[u8]) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    raw.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))
}

fn wait_for(path: &Path, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn percentiles(mut ms: Vec<f64>) -> String {
    ms.sort_by(f64::total_cmp);
    let at = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    format!(
        "p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms (n = {})",
        at(0.5),
        at(0.95),
        ms[ms.len() - 1],
        ms.len()
    )
}

fn local_drop(odoo: &OdooStandin) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("partner");
    for sub in ["in", "archive", "error"] {
        fs::create_dir_all(root.join(sub)).unwrap();
    }
    let port = free_port();
    let config = dir.path().join("edi-bridge.toml");
    fs::write(
        &config,
        format!(
            "[odoo]\n{}\n[partners.local]\nroot = \"{}\"\n\n[flows.products]\npartner = \"local\"\ndirection = \"import\"\nevery = \"1h\"\ninbox = \"/in\"\npattern = \"*.xml\"\narchive = \"/archive\"\nerror = \"/error\"\nsettle = \"10s\"\nschema = \"{REPO}/xsd/products.xsd\"\n{PRODUCTS_MAPPING}\n[server]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n",
            odoo_section(odoo),
            root.display()
        ),
    )
    .unwrap();
    let daemon = Daemon::start(&config, port);
    std::thread::sleep(Duration::from_millis(500));
    let mut ms = Vec::new();
    for round in 0..30 {
        let name = format!("drop-{round}.xml");
        let xml = products_xml(round);
        let start = Instant::now();
        fs::write(root.join("in").join(&name), xml).unwrap();
        wait_for(&root.join("archive").join(&name), 20);
        ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    daemon.stop();
    println!("local drop → archived: {}", percentiles(ms));
}

fn sftp_config(
    odoo: &OdooStandin,
    sshd: &sshd::TestSshd,
    dir: &Path,
    port: u16,
    flows: &str,
) -> PathBuf {
    let config = dir.join("edi-bridge.toml");
    fs::write(
        &config,
        format!(
            "[odoo]\n{}\n[server]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n\n{flows}",
            odoo_section(odoo)
        )
        .replace("{PORT}", &sshd.port().to_string())
        .replace("{USER}", sshd.user())
        .replace("{KEY}", &sshd.client_key().display().to_string())
        .replace("{FP}", sshd.host_key_fingerprint())
        .replace("{DATA}", &sshd.data_dir().display().to_string()),
    )
    .unwrap();
    config
}

const SFTP_PARTNER: &str = "host = \"127.0.0.1\"\nport = {PORT}\nuser = \"{USER}\"\nkey_file = \"{KEY}\"\nhost_key = \"{FP}\"\n";

fn webhook(odoo: &OdooStandin, sshd: &sshd::TestSshd) {
    let dir = tempfile::tempdir().unwrap();
    let data = sshd.data_dir();
    fs::create_dir_all(data.join("hook/in")).unwrap();
    let port = free_port();
    let flows = format!(
        "[partners.acme]\n{SFTP_PARTNER}\n[flows.products]\npartner = \"acme\"\ndirection = \"import\"\ninbox = \"{{DATA}}/hook/in\"\npattern = \"*.xml\"\narchive = \"{{DATA}}/hook/archive\"\nerror = \"{{DATA}}/hook/error\"\nsettle = \"1s\"\nschema = \"{REPO}/xsd/products.xsd\"\n{PRODUCTS_MAPPING}"
    );
    let config = sftp_config(odoo, sshd, dir.path(), port, &flows);
    let daemon = Daemon::start(&config, port);
    let path = format!("/hooks/products?token={TOKEN}");
    let mut ms = Vec::new();
    for round in 0..20 {
        let name = format!("hook-{round}.xml");
        fs::write(data.join("hook/in").join(&name), products_xml(1000 + round)).unwrap();
        // Older than `settle`: a poll takes it at once.
        std::thread::sleep(Duration::from_millis(1100));
        let start = Instant::now();
        assert_eq!(
            http(port, "POST", &path, ODOO_18_WEBHOOK.as_bytes()).unwrap(),
            202
        );
        wait_for(&data.join("hook/archive").join(&name), 20);
        ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    daemon.stop();
    println!(
        "webhook → archived (SFTP poll, 5 records into Odoo): {}",
        percentiles(ms)
    );
}

/// Odoo 18's recorded webhook body, naming picking `id` instead of the recorded 20.
fn odoo_18_webhook_for(id: i64) -> String {
    ODOO_18_WEBHOOK
        .replace("\"_id\": 20", &format!("\"_id\": {id}"))
        .replace("\"id\": 20", &format!("\"id\": {id}"))
}

fn export_webhook(odoo: &OdooStandin, sshd: &sshd::TestSshd) {
    let dir = tempfile::tempdir().unwrap();
    let outbox = sshd.data_dir().join("export/out");
    fs::create_dir_all(&outbox).unwrap();
    let port = free_port();
    // No schedule: only the webhook exports.
    let flows = format!(
        "[partners.acme]\n{SFTP_PARTNER}\n[flows.orders]\npartner = \"acme\"\ndirection = \"export\"\noutbox = \"{{DATA}}/export/out\"\n"
    );
    let config = sftp_config(odoo, sshd, dir.path(), port, &flows);
    let product = odoo.add_product("BENCH-HOOK", "Bench Hooked Widget");
    let customer = odoo.add_partner("Bench Hook Customer");
    let daemon = Daemon::start(&config, port);
    let path = format!("/hooks/orders?token={TOKEN}");
    let mut ms = Vec::new();
    for round in 0..20 {
        let picking = odoo.add_delivery(customer, &[(product, 1.0 + round as f64)]);
        let name = odoo.record("stock.picking", picking).unwrap()["name"]
            .as_str()
            .unwrap()
            .replace('/', "_")
            + ".xml";
        let start = Instant::now();
        assert_eq!(
            http(port, "POST", &path, odoo_18_webhook_for(picking).as_bytes()).unwrap(),
            202
        );
        wait_for(&outbox.join(&name), 20);
        ms.push(start.elapsed().as_secs_f64() * 1000.0);
        let xml = fs::read_to_string(outbox.join(&name)).unwrap();
        assert!(xml.contains("BENCH-HOOK"), "the picking's lines: {xml}");
    }
    daemon.stop();
    let published = fs::read_dir(&outbox)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".xml"))
        .count();
    assert_eq!(published, 20, "one file per hooked picking, nothing else");
    println!(
        "webhook → file in the outbox (SFTP export, 1 picking per hook): {}",
        percentiles(ms)
    );
}

/// utime + stime of `pid`, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn status_kb(pid: u32, key: &str) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn idle(odoo: &OdooStandin, sshd: &sshd::TestSshd) {
    let dir = tempfile::tempdir().unwrap();
    let data = sshd.data_dir();
    let mut flows = String::new();
    for p in 0..10 {
        flows.push_str(&format!("[partners.p{p}]\n{SFTP_PARTNER}\n"));
        for f in 0..5 {
            fs::create_dir_all(data.join(format!("idle/p{p}/f{f}"))).unwrap();
            flows.push_str(&format!(
                "[flows.p{p}-f{f}]\npartner = \"p{p}\"\ndirection = \"import\"\nevery = \"10s\"\ninbox = \"{{DATA}}/idle/p{p}/f{f}\"\npattern = \"*.csv\"\nformat = \"csv\"\ncolumns = [{{ name = \"sku\" }}]\n[flows.p{p}-f{f}.mapping]\nmodel = \"product.product\"\naction = \"upsert\"\nkey = [\"default_code\"]\n[flows.p{p}-f{f}.mapping.fields]\ndefault_code = \"sku\"\n\n"
            ));
        }
    }
    let port = free_port();
    let config = sftp_config(odoo, sshd, dir.path(), port, &flows);
    let logins_before = sshd.log().matches("Accepted publickey").count();
    let daemon = Daemon::start(&config, port);
    let pid = daemon.child.id();
    // Past start-up (first polls, sessions opened).
    std::thread::sleep(Duration::from_secs(5));
    let secs: u64 = std::env::var("EDI_BENCH_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let cpu0 = cpu_secs(pid);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let cpu = cpu_secs(pid) - cpu0;
    let wall = t0.elapsed().as_secs_f64();
    let rss = status_kb(pid, "VmRSS:");
    let hwm = status_kb(pid, "VmHWM:");
    daemon.stop();
    let logins = sshd.log().matches("Accepted publickey").count() - logins_before;
    println!(
        "idle, 50 flows polling every 10 s over 10 SFTP partners, {wall:.0} s: CPU {:.2} s ({:.2} % of one core), RSS {} MiB (peak {} MiB), SSH logins {logins}",
        cpu,
        cpu / wall * 100.0,
        rss / 1024,
        hwm / 1024
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let odoo = OdooStandin::start(StandinOptions::v18());
    local_drop(&odoo);
    let sshd = sshd::TestSshd::start();
    webhook(&odoo, &sshd);
    export_webhook(&odoo, &sshd);
    idle(&odoo, &sshd);
}
