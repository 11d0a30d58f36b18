//! A whole `run --once` pass over one large products file, and the peak memory it takes.
//!
//! `cargo bench --bench pass_memory` drops a canonical products file into a local-folder
//! partner's inbox and runs the release `edi-bridge` binary on it: as a dry run (validate, map,
//! print every operation, touch nothing) over `EDI_BENCH_MB` megabytes (default 1024, the file
//! the `validate_map` benchmark shares under `target/bench-data/`), and into the Odoo stand-in
//! (validate, map, upsert every product in batches of 200) over `EDI_BENCH_STANDIN_MB` (default
//! 1024, the same file). Each run is a child process of its own step, so the peak resident memory the kernel
//! reports for it (`getrusage(RUSAGE_CHILDREN)`) is that pass's alone. `EDI_BENCH_RUNS=dry`
//! runs only the dry run, `EDI_BENCH_RUNS=standin` only the pass into the stand-in. The
//! stand-in keeps every product in its own memory (it is in this process, not in the one
//! measured); its peak is this process's, printed after the pass.
//!
//! `EDI_BENCH_RUNS=standin-memory` measures the stand-in alone: `EDI_BENCH_PRODUCTS` products
//! (default 50,000) created in it directly, and the memory they take.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use nix::sys::resource::{UsageWho, getrusage};

#[path = "common/bench_data.rs"]
mod bench_data;
#[allow(dead_code)]
#[path = "../tests/support/standin/mod.rs"]
mod standin;

use standin::{OdooStandin, StandinOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, config] = args.as_slice()
        && flag == "--pass"
    {
        run_pass(Path::new(config));
        return;
    }
    let runs = std::env::var("EDI_BENCH_RUNS").unwrap_or_default();
    if runs == "standin-memory" {
        standin_memory();
        return;
    }
    let mut scenarios = Vec::new();
    if runs != "standin" {
        scenarios.push(("dry run", bench_data::products_file()));
    }
    if runs != "dry" {
        let mb = bench_data::megabytes("EDI_BENCH_STANDIN_MB", 1024);
        scenarios.push(("stand-in", bench_data::products_file_of(mb)));
    }
    println!(
        "{:<10} {:>9} {:>9} {:>14} {:>12}",
        "pass", "file (MB)", "seconds", "peak RSS (MB)", "exit status"
    );
    for (scenario, file) in scenarios {
        let size_mb = fs::metadata(&file).expect("bench file").len() as f64 / (1024.0 * 1024.0);
        let odoo = (scenario == "stand-in").then(|| {
            let odoo = OdooStandin::start(StandinOptions::v18());
            odoo.seed_demo();
            odoo
        });
        let dir = tempfile::Builder::new()
            .prefix("edi-bridge-pass-memory-")
            .tempdir_in(file.parent().expect("bench-data folder"))
            .expect("work folder");
        let inbox = dir.path().join("partner/in/products");
        fs::create_dir_all(&inbox).expect("inbox");
        // A hard link: the pass moves it into the archive without copying a gigabyte.
        fs::hard_link(&file, inbox.join("products.xml")).expect("link the bench file");
        let config = dir.path().join("edi-bridge.toml");
        fs::write(&config, config_text(odoo.as_ref())).expect("config");
        // A step of its own: the children it waits for are this pass alone.
        let out = Command::new(std::env::current_exe().expect("own path"))
            .args(["--pass"])
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .output()
            .expect("run the pass step");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let Some((secs, rss_kb, code)) = stdout.lines().find_map(|l| {
            let mut parts = l.strip_prefix("pass-result ")?.split_whitespace();
            Some((
                parts.next()?.parse::<f64>().ok()?,
                parts.next()?.parse::<u64>().ok()?,
                parts.next()?.to_string(),
            ))
        }) else {
            panic!("the pass step printed no result: {stdout}");
        };
        println!(
            "{scenario:<10} {size_mb:>9.0} {secs:>9.1} {:>14.1} {code:>12}",
            rss_kb as f64 / 1024.0
        );
        if let Some(odoo) = &odoo {
            let products = odoo.count("product.product");
            // This process holds the stand-in: its own peak is the stand-in's.
            let own = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage");
            println!(
                "           products in the stand-in afterwards: {products}; this process \
                 (the stand-in) peaked at {:.1} MB",
                own.max_rss() as f64 / 1024.0
            );
        }
    }
}

/// The stand-in's own memory per product: `EDI_BENCH_PRODUCTS` products (default 50,000) like
/// the bench file's, created in this process through the rules an RPC `create` follows, and the
/// growth of this process's resident memory.
fn standin_memory() {
    let n: u64 = std::env::var("EDI_BENCH_PRODUCTS")
        .ok()
        .map(|v| v.parse().expect("EDI_BENCH_PRODUCTS is a number"))
        .unwrap_or(50_000);
    let odoo = OdooStandin::start(StandinOptions::v18());
    odoo.seed_demo();
    let before = rss_kb();
    let started = Instant::now();
    for i in 1..=n {
        odoo.add_record(
            "product.product",
            serde_json::json!({
                "default_code": format!("SKU-{i:010}"),
                "name": format!("Product {i}, steel & oak, size {}", i % 7 + 1),
                "barcode": format!("{:013}", 5_400_000_000_000u64 + i),
                "list_price": (i % 1000) as f64 + (i % 100) as f64 / 100.0,
                "uom_id": 1,
            }),
        );
    }
    let secs = started.elapsed().as_secs_f64();
    let grown = rss_kb().saturating_sub(before);
    println!(
        "stand-in: {n} products in {secs:.1} s, resident memory +{:.1} MB, {:.0} bytes per product",
        grown as f64 / 1024.0,
        grown as f64 * 1024.0 / n as f64
    );
}

/// This process's resident memory now (`VmRSS`), in kB.
fn rss_kb() -> u64 {
    fs::read_to_string("/proc/self/status")
        .expect("/proc/self/status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Runs `edi-bridge run --once` and prints its time, peak RSS (kB) and exit status.
fn run_pass(config: &Path) {
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_edi-bridge"))
        .arg("--config")
        .arg(config)
        .args(["run", "--once"])
        .env("EDI_BRIDGE_LOG", "warn")
        .stdout(Stdio::null())
        .status()
        .expect("run edi-bridge");
    let secs = started.elapsed().as_secs_f64();
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    // Linux reports ru_maxrss in kilobytes.
    println!(
        "pass-result {secs} {} {}",
        usage.max_rss(),
        status
            .code()
            .map_or("signal".to_string(), |c| c.to_string())
    );
}

fn config_text(odoo: Option<&OdooStandin>) -> String {
    let repo = env!("CARGO_MANIFEST_DIR");
    let odoo_section = match odoo {
        None => "dry_run = true\n".to_string(),
        Some(odoo) => {
            let opts = odoo.options();
            format!(
                "url = \"{}\"\ndatabase = \"{}\"\nlogin = \"{}\"\napi_key = \"{}\"\n\
                 timeout = \"120s\"\n",
                odoo.url(),
                opts.database,
                opts.login,
                opts.api_key
            )
        }
    };
    format!(
        r#"[odoo]
{odoo_section}batch_size = 200

[partners.local]
root = "partner"

[flows.products]
partner = "local"
direction = "import"
inbox = "/in/products"
settle = "1s"
max_file_size = "4GiB"
schema = "{repo}/xsd/products.xsd"

[flows.products.mapping]
record = "/p:Products/p:Product"
namespaces = {{ p = "{ns}" }}
model = "product.product"
action = "upsert"
key = ["default_code"]

[flows.products.mapping.fields]
default_code = "@sku"
name = "p:Name"
barcode = {{ path = "p:Ean", optional = true }}
list_price = {{ path = "p:Price", type = "float", optional = true }}
uom_id = {{ path = "p:Unit", optional = true, lookup = {{ model = "uom.uom", field = "name" }} }}
"#,
        ns = bench_data::NS
    )
}
