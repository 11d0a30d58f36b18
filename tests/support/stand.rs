//! A partner's SFTP server (real sshd), a config for it and a ledger in temporary folders,
//! and the helpers the whole-flow tests share.

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::sshd::TestSshd;

pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// A partner's SFTP server, a config for it and a ledger, all in temporary folders.
pub struct Stand {
    pub sshd: TestSshd,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    /// The `[odoo]` section of the config.
    odoo: String,
}

pub const PRODUCTS_MAPPING: &str = r#"
[flows.products.mapping]
record = "/p:Products/p:Product"
namespaces = { p = "urn:edi-bridge:products:1" }
model = "product.product"
action = "upsert"
key = ["default_code"]

[flows.products.mapping.fields]
default_code = "@sku"
name = "p:Name"
barcode = { path = "p:Ean", optional = true }
list_price = { path = "p:Price", type = "float", optional = true }
uom_id = { path = "p:Unit", optional = true, lookup = { model = "uom.uom", field = "name" } }
is_storable = { path = "p:Storable", type = "boolean", optional = true }
"#;

impl Stand {
    pub fn new() -> Stand {
        Stand::with_flow_options("")
    }

    /// `options` are extra keys of the products flow (e.g. `done_marker = ".done"`).
    pub fn with_flow_options(options: &str) -> Stand {
        Stand::with_odoo("dry_run = true", options)
    }

    /// `odoo` is the body of the `[odoo]` section; `options` extra keys of the products flow.
    pub fn with_odoo(odoo: &str, options: &str) -> Stand {
        let sshd = TestSshd::start();
        let dir = tempfile::tempdir().unwrap();
        let stand = Stand {
            config: dir.path().join("edi-bridge.toml"),
            sshd,
            dir,
            odoo: odoo.to_string(),
        };
        fs::create_dir_all(stand.inbox()).unwrap();
        fs::create_dir_all(stand.sshd.data_dir().join("out/prices")).unwrap();
        stand.write_config(stand.sshd.host_key_fingerprint(), options);
        stand
    }

    pub fn write_config(&self, host_key: &str, options: &str) {
        let data = self.sshd.data_dir();
        let data = data.display();
        let text = format!(
            r#"
[odoo]
{odoo}

[ledger]
path = "edi-bridge.db"
spool = "spool"

[partners.acme]
host = "127.0.0.1"
port = {port}
user = "{user}"
key_file = "{key}"
host_key = "{host_key}"
timezone = "Europe/Brussels"
connect_timeout = "5s"
timeout = "10s"

[flows.products]
partner = "acme"
direction = "import"
inbox = "{data}/out/products"
pattern = "*.xml"
archive = "{data}/out/products/archive/{{yyyy}}/{{mm}}/{{dd}}"
error = "{data}/out/products/error"
settle = "1s"
settle_max = "1s"
schema = "{repo}/xsd/products.xsd"
{options}
{mapping}
[flows.prices]
partner = "acme"
direction = "import"
inbox = "{data}/out/prices"
pattern = "*.csv"
settle = "1s"
format = "csv"
delimiter = ";"
encoding = "windows-1252"
decimal = ","
columns = [{{ name = "sku" }}, {{ name = "name" }}, {{ name = "price", type = "float" }}]

[flows.prices.mapping]
model = "product.product"
action = "upsert"
key = ["default_code"]

[flows.prices.mapping.fields]
default_code = "sku"
name = "name"
list_price = "price"
"#,
            port = self.sshd.port(),
            user = self.sshd.user(),
            key = self.sshd.client_key().display(),
            repo = REPO,
            mapping = PRODUCTS_MAPPING,
            odoo = self.odoo,
        );
        fs::write(&self.config, text).unwrap();
    }

    pub fn inbox(&self) -> PathBuf {
        self.sshd.data_dir().join("out/products")
    }

    pub fn error_dir(&self) -> PathBuf {
        self.inbox().join("error")
    }

    pub fn archive_dir(&self) -> PathBuf {
        self.inbox().join("archive")
    }

    pub fn drop_sample(&self, sample: &str) {
        fs::copy(
            Path::new(REPO).join("samples").join(sample),
            self.inbox().join(sample),
        )
        .unwrap();
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_edi-bridge"));
        cmd.arg("--config")
            .arg(&self.config)
            .args(args)
            .env("EDI_BRIDGE_LOG", "warn");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs `args` with the crash point `point` armed: the process must die of SIGKILL there.
    pub fn run_until_killed(&self, point: &str, args: &[&str]) -> Output {
        let out = self
            .command(args)
            .env("EDI_BRIDGE_CRASH_AT", point)
            .output()
            .unwrap();
        assert_eq!(
            out.status.signal(),
            Some(9),
            "killed at {point}: {}",
            stderr(&out)
        );
        out
    }
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file below `dir`, relative to it.
pub fn files_below(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    fn walk(base: &Path, dir: &Path, found: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(base, &path, found);
            } else {
                found.push(path.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    walk(dir, dir, &mut found);
    found.sort();
    found
}

pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

pub fn operations(out: &Output) -> Vec<serde_json::Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line: {l}: {e}")))
        .collect()
}

pub fn products_xml(count: usize, name: &str) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Products xmlns=\"urn:edi-bridge:products:1\">\n",
    );
    for i in 0..count {
        xml.push_str(&format!(
            "  <Product sku=\"SKU-{i:06}\">\n    <Name>{name} {i}</Name>\n    <Price>{}.50</Price>\n    <Unit>Units</Unit>\n  </Product>\n",
            i % 500
        ));
    }
    xml.push_str("</Products>\n");
    xml
}
