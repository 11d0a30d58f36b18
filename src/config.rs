//! The TOML configuration, parsed and checked once into typed values.
//!
//! Every error names the TOML key (e.g. `flows.acme-products.settle`) and what is expected.
//! `"${NAME}"` in any string reads environment variable NAME; durations are `"500ms"`, `"10s"`,
//! `"15m"`, `"12h"`; relative paths are relative to the config file; unknown keys are rejected.
//! Whole numbers and `true`/`false` may also be written as strings, so they can come from
//! `${NAME}` too.
//! The runtime never looks anything up by string in the raw TOML: it gets these types.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Consequence;
use crate::import::path::{
    FieldPath, RecordPath, column_path, parse_field_path, parse_record_path,
};

/// A configuration problem: the key it is about and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {}{message}", key_label(.key))]
pub struct ConfigError {
    /// The config file.
    pub file: String,
    /// Dotted TOML key, e.g. `flows.acme-products.mapping.fields.list_price`; empty when the
    /// problem is the whole file (unreadable, TOML syntax).
    pub key: String,
    /// What is wrong and what is expected.
    pub message: String,
}

/// The whole, checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file it was read from.
    pub file: PathBuf,
    /// `[odoo]`.
    pub odoo: OdooConfig,
    /// `[ledger]`.
    pub ledger: LedgerConfig,
    /// `[server]`: the HTTP endpoints.
    pub server: ServerConfig,
    /// Local folder for downloads in progress (`[ledger] spool`, default `spool/` beside the
    /// config).
    pub spool: PathBuf,
    /// `[partners.<name>]`, by name.
    pub partners: BTreeMap<String, Partner>,
    /// Flows in name order.
    pub flows: BTreeMap<String, Flow>,
}

/// `[odoo]`: the server written to and how hard it is pushed.
#[derive(Debug, Clone)]
pub struct OdooConfig {
    /// `None` only when `dry_run = true` and no `url` is given.
    pub connection: Option<OdooConnection>,
    /// Print the operations instead of sending them; files still move.
    pub dry_run: bool,
    /// Records per Odoo call (default 200).
    pub batch_size: usize,
    /// Timeout of one Odoo call (`timeout`, default "60s").
    pub timeout: Duration,
    /// Calls in flight at once against this server (`max_concurrency`, default 4).
    pub max_concurrency: usize,
}

/// Where Odoo is and how edi-bridge logs in (`url`, `database`, `login`, `api_key` or
/// `password`, `protocol`).
#[derive(Debug, Clone)]
pub struct OdooConnection {
    /// Base URL without trailing slash, e.g. `https://erp.example.com`.
    pub url: String,
    pub database: String,
    pub login: String,
    pub credential: Credential,
    /// `protocol`, default `auto`.
    pub protocol: Protocol,
}

/// `api_key` (recommended; JSON-2 needs it) or `password`. Never printed.
#[derive(Clone)]
pub enum Credential {
    ApiKey(String),
    Password(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets never reach logs.
        match self {
            Credential::ApiKey(_) => f.write_str("ApiKey(***)"),
            Credential::Password(_) => f.write_str("Password(***)"),
        }
    }
}

impl Credential {
    /// The key or password itself, for the login call.
    pub fn secret(&self) -> &str {
        match self {
            Credential::ApiKey(s) | Credential::Password(s) => s,
        }
    }
}

/// `protocol`: which Odoo API is spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `auto`: JSON-2 where the server has it, JSON-RPC otherwise.
    Auto,
    /// `jsonrpc`: `/jsonrpc` (Odoo 16–19).
    JsonRpc,
    /// `json2`: `/json/2/<model>/<method>` with a bearer API key (Odoo 19+).
    Json2,
}

/// `[ledger]`: where the durable state lives.
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// SQLite file (default `edi-bridge.db` beside the config file).
    pub path: PathBuf,
}

/// `[server]`: the HTTP endpoints (`/healthz`, `/metrics`, `/status`, `/hooks/<flow>`).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `listen`, default `127.0.0.1:8480`.
    pub listen: SocketAddr,
    /// `token`: the bearer token `/hooks` requires.
    pub token: Option<String>,
}

/// `[partners.<name>]`: a place files are exchanged.
#[derive(Debug, Clone)]
pub struct Partner {
    /// The name in the config (`[A-Za-z0-9_.-]+`).
    pub name: String,
    pub transport: PartnerTransport,
    /// For date parts in archive paths and cron (default UTC).
    pub timezone: jiff::tz::TimeZone,
    /// Sessions open at once to this partner (default 2).
    pub max_sessions: usize,
}

/// An SFTP server (`host`) or a local folder tree (`root`).
#[derive(Debug, Clone)]
pub enum PartnerTransport {
    Sftp(SftpPartner),
    /// Every flow path is under `root`.
    Local {
        root: PathBuf,
    },
}

/// An SFTP partner's connection settings.
#[derive(Debug, Clone)]
pub struct SftpPartner {
    pub host: String,
    /// `port`, default 22.
    pub port: u16,
    pub user: String,
    pub auth: SftpAuth,
    pub host_key: HostKeyPolicy,
    /// `connect_timeout`, default "15s".
    pub connect_timeout: Duration,
    /// `timeout` of one SFTP operation, default "30s".
    pub op_timeout: Duration,
    /// `keepalive`, default "15s" (3 unanswered keepalives close the session).
    pub keepalive: Duration,
}

/// How edi-bridge logs in to an SFTP partner. Secrets are never printed.
#[derive(Clone)]
pub enum SftpAuth {
    /// `key_file` (ed25519 or RSA, OpenSSH format), optional `key_passphrase`.
    Key {
        path: PathBuf,
        passphrase: Option<String>,
    },
    Password(String),
}

impl std::fmt::Debug for SftpAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SftpAuth::Key { path, .. } => f.debug_struct("Key").field("path", path).finish(),
            SftpAuth::Password(_) => f.write_str("Password(***)"),
        }
    }
}

/// How the server's host key is verified. There is no "accept anything".
#[derive(Debug, Clone)]
pub enum HostKeyPolicy {
    /// `host_key = "SHA256:…"`: the key's OpenSSH fingerprint must equal this (kept without
    /// base64 `=` padding, as OpenSSH prints it).
    Fingerprint(String),
    /// `known_hosts = "path"`; with `accept_new = true` an unknown host is recorded there on
    /// first contact (a changed key is still refused).
    KnownHosts { path: PathBuf, accept_new: bool },
}

/// `[flows.<name>]`: one business exchange with one partner, in one direction.
#[derive(Debug, Clone)]
pub struct Flow {
    /// The name in the config (`[A-Za-z0-9_.-]+`).
    pub name: String,
    /// Name of a key in [`Config::partners`] (checked to exist).
    pub partner: String,
    /// `every` or `cron`; `None` runs only on demand (`run --once`, hooks).
    pub schedule: Option<Schedule>,
    /// `direction` and the keys that go with it.
    pub direction: Direction,
}

/// When a flow runs by itself.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// `every = "15m"`.
    Every(Duration),
    /// Cron expression text as written (checked later by the daemon).
    Cron(String),
}

/// `direction = "import"` or `"export"`.
#[derive(Debug, Clone)]
pub enum Direction {
    Import(Box<ImportFlow>),
    /// Export flows are parsed so configs written today keep working; the export pipeline
    /// comes later.
    Export(Box<ExportFlow>),
}

/// An import flow: inbox → completeness → validate → map → Odoo → archive or error.
#[derive(Debug, Clone)]
pub struct ImportFlow {
    /// Remote folder (SFTP path, or relative to a local partner's root).
    pub inbox: String,
    /// Glob on the file name (`pattern`, default "*").
    pub pattern: glob::Pattern,
    /// Archive folder template with `{yyyy}` `{mm}` `{dd}` `{name}` (default `<inbox>/archive`;
    /// no trailing slash).
    pub archive: String,
    /// Error folder (default `<inbox>/error`; no trailing slash).
    pub error: String,
    /// Unchanged size and mtime for this long means complete (default 10s).
    pub settle: Duration,
    /// A file that looks truncated waits at most this long, then goes to error (default 1h,
    /// never below `settle`).
    pub settle_max: Duration,
    /// Optional minimum age of the mtime (`min_age`).
    pub min_age: Option<Duration>,
    /// Optional done-marker (`done_marker = ".done"` → `name.xml.done`, or `".ok"` with
    /// `done_marker_replaces_extension = true` → `name.ok`).
    pub done_marker: Option<DoneMarker>,
    /// Largest file taken, in bytes (`max_file_size`, default 2 GiB; a number of bytes or a
    /// string such as "500MB" (powers of 1000) or "2GiB" (powers of 1024)).
    pub max_file_size: u64,
    /// `format`, default XML.
    pub format: Format,
    /// `on_record_error`, default `skip`.
    pub on_record_error: OnRecordError,
    /// `[flows.<name>.mapping]`.
    pub mapping: Mapping,
}

/// A file is complete once its marker file exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoneMarker {
    /// Suffix such as `.done` or `.ok`.
    pub suffix: String,
    /// `name.ok` instead of `name.xml.ok`.
    pub replaces_extension: bool,
}

/// What the flow's files are.
#[derive(Debug, Clone)]
pub enum Format {
    /// `format = "xml"` (default): `schema` is the XSD every file is validated against
    /// (required, relative to the config file, checked to exist).
    Xml { schema: PathBuf },
    /// `format = "csv"`.
    Csv(CsvFormat),
}

/// How a CSV flow's files are read.
#[derive(Debug, Clone)]
pub struct CsvFormat {
    /// `delimiter`, one ASCII character (default ",").
    pub delimiter: u8,
    /// `encoding`, a WHATWG label such as `utf-8` or `windows-1252` (default utf-8).
    pub encoding: &'static encoding_rs::Encoding,
    /// `decimal`, "." (default) or ",".
    pub decimal: char,
    /// `columns`: the expected header, in order, with a type per column.
    pub columns: Vec<CsvColumn>,
}

/// One entry of `columns`: `{ name, type, optional }`.
#[derive(Debug, Clone)]
pub struct CsvColumn {
    /// The header text, as written.
    pub name: String,
    /// `type`, default string; a field mapped from this column takes it unless it says
    /// otherwise.
    pub ty: ValueType,
    /// An empty cell is allowed.
    pub optional: bool,
}

/// `on_record_error`: what a record Odoo refuses does to the rest of its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRecordError {
    /// Good records are applied, bad ones listed in the report; the file goes to `error/`.
    Skip,
    /// Nothing is applied when a record fails.
    FailFile,
}

/// The type a mapped value is converted to (`type = "string" | "float" | "integer" |
/// "boolean" | "date"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    String,
    Float,
    Integer,
    Boolean,
    /// `YYYY-MM-DD`.
    Date,
}

/// `[flows.<name>.mapping]`: which element or row is a record and what it does in Odoo.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// The repeating record element (XML) — for CSV, each row is a record and this is `None`.
    pub record: Option<RecordPath>,
    /// Prefix → namespace URI.
    pub namespaces: BTreeMap<String, String>,
    /// Odoo model written (`model`; for `set_stock` always `stock.quant`).
    pub model: String,
    pub action: Action,
}

// One per flow, built once at start-up: boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Action {
    /// `action = "upsert"`.
    Upsert(UpsertMapping),
    /// `action = "set_stock"`.
    SetStock(SetStockMapping),
}

/// Create or update `model` by `key`.
#[derive(Debug, Clone)]
pub struct UpsertMapping {
    /// Key fields (each must also be a mapped field).
    pub key: Vec<String>,
    /// Odoo field → where its value comes from, in config order.
    pub fields: Vec<FieldMapping>,
}

/// Where one Odoo field's value comes from.
#[derive(Debug, Clone)]
pub struct FieldMapping {
    /// Odoo field name.
    pub field: String,
    /// `path` (or the plain string) or `value`.
    pub source: ValueSource,
    /// `type`, default string (for a constant: the TOML value's type; for a CSV column: the
    /// column's type).
    pub ty: ValueType,
    /// `optional`: a missing or empty value is left out instead of failing the record.
    pub optional: bool,
    /// Many2one: the value is looked up in `model` by `field`.
    pub lookup: Option<Lookup>,
}

/// Read from the record, or a constant.
#[derive(Debug, Clone)]
pub enum ValueSource {
    /// A path relative to the record (XML), or a column (CSV).
    Path(FieldPath),
    /// `{ value = … }`.
    Constant(serde_json::Value),
}

/// `lookup = { model, field }`: the id of the `model` record whose `field` equals the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub model: String,
    pub field: String,
}

/// Set on-hand quantities on `stock.quant`. The field mappings carry the Odoo field they fill:
/// `product_id`, `inventory_quantity`, `location_id`, `lot_id`.
#[derive(Debug, Clone)]
pub struct SetStockMapping {
    /// `product = "path"` or `{ path, by }` (by default `default_code`), looked up in
    /// `product.product`.
    pub product: FieldMapping,
    /// `quantity` path (float).
    pub quantity: FieldMapping,
    /// `location = "WH/Stock"` (complete name) or `{ path, by = "barcode" | "complete_name" }`.
    pub location: FieldMapping,
    /// `lot = { path, optional }`: looked up in `stock.lot` by `name`.
    pub lot: Option<FieldMapping>,
    /// `snapshot`, default `partial`.
    pub snapshot: Snapshot,
}

/// `snapshot`: whether the file lists every product of its locations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Snapshot {
    /// Only the products in the file change.
    Partial,
    /// Products absent from the file are set to 0 in the file's locations.
    Full,
}

/// An export flow's settings, read but not run yet.
#[derive(Debug, Clone)]
pub struct ExportFlow {
    /// `outbox`: the folder files are published in (required).
    pub outbox: String,
    /// `model`, default `stock.picking`.
    pub model: String,
    /// `domain` as JSON, default outgoing pickings in state `assigned`.
    pub domain: serde_json::Value,
    /// `template`, default `builtin:picking`.
    pub template: String,
    /// `schema`, relative to the config file (not checked yet).
    pub schema: Option<PathBuf>,
    /// `filename`, default `{name}.xml`.
    pub filename: String,
    /// `mark = "field"` or `{ field = "x_edi_exported" }`: the Odoo field set once published.
    pub mark: Option<String>,
}

impl ConfigError {
    /// A configuration problem stops the flow (here: the whole program) until a human fixes it.
    pub fn consequence(&self) -> Consequence {
        Consequence::Stop
    }
}

/// How `ConfigError` is shown: `file: key: message`, or `file: message` when the problem is not
/// about one key (the file cannot be read, a TOML syntax error).
fn key_label(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    }
}

/// Looks up an environment variable for `${NAME}`; the process environment in production,
/// a fixed table in tests.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Result<String, std::env::VarError>;

impl Config {
    /// Reads and checks the config file. Every error names the key.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            key: String::new(),
            message: format!("cannot read the config file: {e}"),
        })?;
        Self::parse(&text, path)
    }

    /// Parses config text; `file` is used for relative paths and messages.
    pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
        Self::parse_with_env(text, file, &|name| std::env::var(name))
    }

    /// [`Config::parse`] with `${NAME}` read through `env` instead of the process environment.
    pub fn parse_with_env(text: &str, file: &Path, env: EnvLookup) -> Result<Config, ConfigError> {
        let cx = Ctx::new(file);
        let mut table: toml::Table = text.parse().map_err(|e| cx.syntax_error(text, &e))?;
        // Substituted before anything is read, on the tree, so an unset variable is reported
        // with the key it appears in and a substituted value is never substituted again.
        for (name, value) in table.iter_mut() {
            expand_env(&cx, env, &join_key("", name), value)?;
        }
        let mut root = Node::new(&cx, String::new(), table);
        let odoo = root.section("odoo")?;
        let ledger = root.section("ledger")?;
        let server = root.section("server")?;
        let partners = root.section("partners")?;
        let flows = root.section("flows")?;
        root.finish()?;

        let odoo = parse_odoo(odoo)?;
        let (ledger, spool) = parse_ledger(ledger)?;
        let server = parse_server(server)?;
        let mut partner_map = BTreeMap::new();
        for (name, item) in partners.entries() {
            check_name(&item, &name, "partner")?;
            let partner = parse_partner(&name, item.table()?)?;
            partner_map.insert(name, partner);
        }
        let mut flow_map = BTreeMap::new();
        for (name, item) in flows.entries() {
            check_name(&item, &name, "flow")?;
            let flow = parse_flow(&name, item.table()?, &partner_map)?;
            flow_map.insert(name, flow);
        }
        Ok(Config {
            file: file.to_path_buf(),
            odoo,
            ledger,
            server,
            spool,
            partners: partner_map,
            flows: flow_map,
        })
    }

    pub fn flow(&self, name: &str) -> Option<&Flow> {
        self.flows.get(name)
    }
}

// ---------------------------------------------------------------------------------------------
// Sections

fn parse_odoo(mut t: Node) -> Result<OdooConfig, ConfigError> {
    let dry_run = t
        .take("dry_run")
        .map(Item::boolean)
        .transpose()?
        .unwrap_or(false);
    let batch_size = t
        .take("batch_size")
        .map(|i| i.count(1..=10_000))
        .transpose()?;
    let timeout = t.take("timeout").map(Item::positive_duration).transpose()?;
    let max_concurrency = t
        .take("max_concurrency")
        .map(|i| i.count(1..=64))
        .transpose()?;
    let connection = match t.take("url") {
        Some(url) => Some(parse_odoo_connection(url, &mut t)?),
        None if dry_run => {
            // Without a server these would silently do nothing: say so instead.
            for key in ["database", "login", "api_key", "password", "protocol"] {
                if let Some(item) = t.take(key) {
                    return Err(item
                        .err("is given without odoo.url; add url or remove this key".to_string()));
                }
            }
            None
        }
        None => {
            return Err(t.missing(
                "url",
                "the Odoo base URL, e.g. url = \"https://erp.example.com\" \
                 (or dry_run = true to run without Odoo)",
            ));
        }
    };
    t.finish()?;
    Ok(OdooConfig {
        connection,
        dry_run,
        batch_size: batch_size.unwrap_or(200),
        timeout: timeout.unwrap_or(Duration::from_secs(60)),
        max_concurrency: max_concurrency.unwrap_or(4),
    })
}

fn parse_odoo_connection(url: Item, t: &mut Node) -> Result<OdooConnection, ConfigError> {
    let url_key = url.key.clone();
    let url = url.text()?;
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    if host.is_none_or(|h| h.trim_matches('/').is_empty()) {
        return Err(t.cx.err(
            &url_key,
            format!("expected an http:// or https:// URL such as \"https://erp.example.com\", found {url:?}"),
        ));
    }
    let url = url.trim_end_matches('/').to_string();
    let database = t
        .require(
            "database",
            "the Odoo database name, e.g. database = \"prod\"",
        )?
        .text()?;
    let login = t
        .require(
            "login",
            "the Odoo user's login, e.g. login = \"edi@example.com\"",
        )?
        .text()?;
    let credential = match (t.take("api_key"), t.take("password")) {
        (Some(_), Some(password)) => {
            return Err(password.err("give either api_key or password, not both".to_string()));
        }
        (Some(key), None) => Credential::ApiKey(key.secret()?),
        (None, Some(password)) => Credential::Password(password.secret()?),
        (None, None) => {
            return Err(t.missing(
                "api_key",
                "api_key = \"${ODOO_API_KEY}\" (recommended) or password = \"${ODOO_PASSWORD}\"",
            ));
        }
    };
    let protocol = match t.take("protocol") {
        None => Protocol::Auto,
        Some(item) => {
            let key = item.key.clone();
            let protocol = item.choice(&[
                ("auto", Protocol::Auto),
                ("jsonrpc", Protocol::JsonRpc),
                ("json2", Protocol::Json2),
            ])?;
            if protocol == Protocol::Json2 && matches!(credential, Credential::Password(_)) {
                return Err(t.cx.err(
                    &key,
                    "json2 authenticates with an API key: use api_key instead of password",
                ));
            }
            protocol
        }
    };
    Ok(OdooConnection {
        url,
        database,
        login,
        credential,
        protocol,
    })
}

fn parse_ledger(mut t: Node) -> Result<(LedgerConfig, PathBuf), ConfigError> {
    let path = t.take("path").map(Item::path).transpose()?;
    let spool = t.take("spool").map(Item::path).transpose()?;
    let dir = &t.cx.dir;
    t.finish()?;
    Ok((
        LedgerConfig {
            path: path.unwrap_or_else(|| dir.join("edi-bridge.db")),
        },
        spool.unwrap_or_else(|| dir.join("spool")),
    ))
}

fn parse_server(mut t: Node) -> Result<ServerConfig, ConfigError> {
    let listen = match t.take("listen") {
        None => SocketAddr::from(([127, 0, 0, 1], 8480)),
        Some(item) => {
            let key = item.key.clone();
            let text = item.text()?;
            text.parse().map_err(|_| {
                t.cx.err(
                    &key,
                    format!(
                        "expected an address and port such as \"127.0.0.1:8480\", found {text:?}"
                    ),
                )
            })?
        }
    };
    let token = t.take("token").map(Item::secret).transpose()?;
    t.finish()?;
    Ok(ServerConfig { listen, token })
}

/// Keys that only make sense for an SFTP partner.
const SFTP_KEYS: [&str; 12] = [
    "host",
    "port",
    "user",
    "key_file",
    "key_passphrase",
    "password",
    "host_key",
    "known_hosts",
    "accept_new",
    "connect_timeout",
    "timeout",
    "keepalive",
];

fn parse_partner(name: &str, mut t: Node) -> Result<Partner, ConfigError> {
    let timezone = match t.take("timezone") {
        Some(item) => item.timezone()?,
        None => jiff::tz::TimeZone::UTC,
    };
    let max_sessions = t
        .take("max_sessions")
        .map(|i| i.count(1..=64))
        .transpose()?;
    let transport = match (t.has("host"), t.take("root")) {
        (true, Some(root)) => {
            return Err(root.err(
                "a partner is either an SFTP server (host) or a local folder (root), not both"
                    .to_string(),
            ));
        }
        (false, Some(root)) => {
            let root = root.path()?;
            if let Some(key) = SFTP_KEYS.iter().find(|k| t.has(k)) {
                return Err(t.cx.err(
                    &t.child_key(key),
                    "is an SFTP setting; a local-folder partner (root) takes only root, \
                     timezone and max_sessions",
                ));
            }
            PartnerTransport::Local { root }
        }
        (true, None) => PartnerTransport::Sftp(parse_sftp(&mut t)?),
        (false, None) => {
            return Err(t.cx.err(
                &t.key,
                "expected host (an SFTP partner) or root (a local-folder partner)",
            ));
        }
    };
    t.finish()?;
    Ok(Partner {
        name: name.to_string(),
        transport,
        timezone,
        max_sessions: max_sessions.unwrap_or(2),
    })
}

fn parse_sftp(t: &mut Node) -> Result<SftpPartner, ConfigError> {
    let host_item = t.require("host", "the SFTP server's host name")?;
    let host_key = host_item.key.clone();
    let host = host_item.text()?;
    // One colon is a port written into the host; IPv6 addresses have several.
    if host.contains(|c: char| c.is_whitespace() || c == '/') || host.matches(':').count() == 1 {
        return Err(t.cx.err(
            &host_key,
            format!("expected a host name or IP address (put the port in port), found {host:?}"),
        ));
    }
    let port = match t.take("port") {
        Some(item) => item.count(1..=65535)? as u16,
        None => 22,
    };
    let user = t
        .require("user", "the SFTP login, e.g. user = \"odoo\"")?
        .text()?;
    let passphrase = t.take("key_passphrase");
    let auth = match (t.take("key_file"), t.take("password")) {
        (Some(_), Some(password)) => {
            return Err(password.err("give either key_file or password, not both".to_string()));
        }
        (Some(key_file), None) => SftpAuth::Key {
            path: key_file.path()?,
            passphrase: passphrase.map(Item::secret).transpose()?,
        },
        (None, Some(password)) => {
            if let Some(passphrase) = passphrase {
                return Err(passphrase.err("is only used with key_file".to_string()));
            }
            SftpAuth::Password(password.secret()?)
        }
        (None, None) => {
            return Err(t.missing(
                "key_file",
                "a private key file (key_file = \"keys/partner_ed25519\", ed25519 or RSA in \
                 OpenSSH format) or password = \"${PARTNER_SFTP_PASSWORD}\"",
            ));
        }
    };
    let accept_new = t.take("accept_new");
    let host_key = match (t.take("host_key"), t.take("known_hosts")) {
        (Some(_), Some(known_hosts)) => {
            return Err(known_hosts.err(
                "give either host_key (a pinned fingerprint) or known_hosts, not both".to_string(),
            ));
        }
        (Some(pin), None) => {
            if let Some(accept_new) = accept_new {
                return Err(accept_new.err(
                    "only works with known_hosts (the first key seen is recorded there); a \
                     pinned host_key has nothing to record"
                        .to_string(),
                ));
            }
            HostKeyPolicy::Fingerprint(pin.fingerprint()?)
        }
        (None, Some(known_hosts)) => HostKeyPolicy::KnownHosts {
            path: known_hosts.path()?,
            accept_new: accept_new.map(Item::boolean).transpose()?.unwrap_or(false),
        },
        (None, None) => {
            return Err(t.missing(
                "host_key",
                &format!(
                    "host keys are always verified: pin the server's key with \
                     host_key = \"SHA256:…\" (get it with `ssh-keyscan -p {port} {host} > \
                     key.pub && ssh-keygen -lf key.pub`), or name a known_hosts file \
                     (known_hosts = \"keys/known_hosts\", with accept_new = true to record the \
                     key on first contact)"
                ),
            ));
        }
    };
    let connect_timeout = t
        .take("connect_timeout")
        .map(Item::positive_duration)
        .transpose()?;
    let op_timeout = t.take("timeout").map(Item::positive_duration).transpose()?;
    let keepalive = t
        .take("keepalive")
        .map(Item::positive_duration)
        .transpose()?;
    Ok(SftpPartner {
        host,
        port,
        user,
        auth,
        host_key,
        connect_timeout: connect_timeout.unwrap_or(Duration::from_secs(15)),
        op_timeout: op_timeout.unwrap_or(Duration::from_secs(30)),
        keepalive: keepalive.unwrap_or(Duration::from_secs(15)),
    })
}

fn parse_flow(
    name: &str,
    mut t: Node,
    partners: &BTreeMap<String, Partner>,
) -> Result<Flow, ConfigError> {
    let partner_item = t.require("partner", "the name of a partner defined under [partners]")?;
    let partner_key = partner_item.key.clone();
    let partner = partner_item.text()?;
    if !partners.contains_key(&partner) {
        let known: Vec<&str> = partners.keys().map(String::as_str).collect();
        return Err(t.cx.err(
            &partner_key,
            format!(
                "no partner named {partner:?}; defined partners: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        ));
    }
    let schedule = match (t.take("every"), t.take("cron")) {
        (Some(_), Some(cron)) => {
            return Err(cron.err("give either every or cron, not both".to_string()));
        }
        (Some(every), None) => Some(Schedule::Every(every.positive_duration()?)),
        (None, Some(cron)) => Some(Schedule::Cron(cron.text()?)),
        (None, None) => None,
    };
    #[derive(Clone, Copy)]
    enum Dir {
        Import,
        Export,
    }
    let dir = t
        .require("direction", "\"import\" or \"export\"")?
        .choice(&[("import", Dir::Import), ("export", Dir::Export)])?;
    let direction = match dir {
        Dir::Import => Direction::Import(Box::new(parse_import(&mut t)?)),
        Dir::Export => Direction::Export(Box::new(parse_export(&mut t)?)),
    };
    t.finish()?;
    Ok(Flow {
        name: name.to_string(),
        partner,
        schedule,
        direction,
    })
}

/// Keys of a CSV flow, refused on an XML flow.
const CSV_KEYS: [&str; 4] = ["delimiter", "encoding", "decimal", "columns"];

fn parse_import(t: &mut Node) -> Result<ImportFlow, ConfigError> {
    let inbox = t
        .require(
            "inbox",
            "the folder the partner drops files into, e.g. inbox = \"/out/products\"",
        )?
        .text()?;
    let inbox = match inbox.trim_end_matches('/') {
        "" => "/".to_string(),
        trimmed => trimmed.to_string(),
    };
    let pattern = match t.take("pattern") {
        Some(item) => item.glob()?,
        None => glob::Pattern::new("*").expect("`*` is a valid glob"),
    };
    let archive = match t.take("archive") {
        Some(item) => item.archive_template()?,
        None => under(&inbox, "archive"),
    };
    let error = match t.take("error") {
        Some(item) => item.text()?.trim_end_matches('/').to_string(),
        None => under(&inbox, "error"),
    };
    let settle = t.take("settle").map(Item::duration).transpose()?;
    let settle = settle.unwrap_or(Duration::from_secs(10));
    let settle_max = match t.take("settle_max") {
        None => Duration::from_secs(3600).max(settle),
        Some(item) => {
            let key = item.key.clone();
            let settle_max = item.positive_duration()?;
            if settle_max < settle {
                return Err(t.cx.err(
                    &key,
                    format!(
                        "must be at least settle ({})",
                        humantime::format_duration(settle)
                    ),
                ));
            }
            settle_max
        }
    };
    let min_age = t.take("min_age").map(Item::duration).transpose()?;
    let done_marker = match (
        t.take("done_marker"),
        t.take("done_marker_replaces_extension"),
    ) {
        (None, Some(replaces)) => {
            return Err(replaces.err("is only used with done_marker".to_string()));
        }
        (None, None) => None,
        (Some(marker), replaces) => Some(DoneMarker {
            suffix: marker.done_suffix()?,
            replaces_extension: replaces.map(Item::boolean).transpose()?.unwrap_or(false),
        }),
    };
    let max_file_size = t.take("max_file_size").map(Item::size).transpose()?;
    #[derive(Clone, Copy)]
    enum Kind {
        Xml,
        Csv,
    }
    let kind = match t.take("format") {
        Some(item) => item.choice(&[("xml", Kind::Xml), ("csv", Kind::Csv)])?,
        None => Kind::Xml,
    };
    let on_record_error = match t.take("on_record_error") {
        Some(item) => item.choice(&[
            ("skip", OnRecordError::Skip),
            ("fail_file", OnRecordError::FailFile),
        ])?,
        None => OnRecordError::Skip,
    };
    let format = match kind {
        Kind::Xml => {
            if let Some(key) = CSV_KEYS.iter().find(|k| t.has(k)) {
                return Err(t.cx.err(
                    &t.child_key(key),
                    "is a CSV setting, but this flow reads XML (set format = \"csv\" for a CSV flow)",
                ));
            }
            let schema = t.require(
                "schema",
                "the XSD that every file of this XML flow is validated against, e.g. \
                 schema = \"xsd/products.xsd\"",
            )?;
            Format::Xml {
                schema: schema.existing_file()?,
            }
        }
        Kind::Csv => {
            if let Some(schema) = t.take("schema") {
                return Err(schema.err(
                    "a CSV flow has no XSD; its columns (columns = [{ name = \"sku\" }, …]) \
                     describe the file"
                        .to_string(),
                ));
            }
            Format::Csv(parse_csv(t)?)
        }
    };
    let mapping = t
        .require("mapping", "a [flows.<name>.mapping] table")?
        .table()?;
    let mapping = parse_mapping(mapping, &format)?;
    Ok(ImportFlow {
        inbox,
        pattern,
        archive,
        error,
        settle,
        settle_max,
        min_age,
        done_marker,
        max_file_size: max_file_size.unwrap_or(2 << 30),
        format,
        on_record_error,
        mapping,
    })
}

/// `folder/name`, without doubling the slash under `/`.
fn under(folder: &str, name: &str) -> String {
    format!("{}/{name}", folder.trim_end_matches('/'))
}

fn parse_csv(t: &mut Node) -> Result<CsvFormat, ConfigError> {
    let delimiter = match t.take("delimiter") {
        None => b',',
        Some(item) => {
            let key = item.key.clone();
            let text = item.string()?;
            match text.as_bytes() {
                [b] if b.is_ascii() && !matches!(b, b'"' | b'\n' | b'\r') => *b,
                _ => {
                    return Err(t.cx.err(
                        &key,
                        format!(
                            "expected one ASCII character such as \",\", \";\" or \"\\t\", \
                             found {text:?}"
                        ),
                    ));
                }
            }
        }
    };
    let encoding = match t.take("encoding") {
        None => encoding_rs::UTF_8,
        Some(item) => {
            let key = item.key.clone();
            let label = item.text()?;
            encoding_rs::Encoding::for_label_no_replacement(label.as_bytes()).ok_or_else(|| {
                t.cx.err(
                    &key,
                    format!(
                        "unknown encoding {label:?}; expected a label such as \"utf-8\", \
                         \"windows-1252\" or \"iso-8859-15\""
                    ),
                )
            })?
        }
    };
    let decimal = match t.take("decimal") {
        None => '.',
        Some(item) => item.choice(&[(".", '.'), (",", ',')])?,
    };
    let columns_item = t.require(
        "columns",
        "the file's header, in order, e.g. columns = [{ name = \"sku\" }, \
         { name = \"qty\", type = \"float\" }]",
    )?;
    let columns_key = columns_item.key.clone();
    let mut columns: Vec<CsvColumn> = Vec::new();
    for item in columns_item.array()? {
        let mut c = item.table()?;
        let name_item = c.require("name", "the column's header text")?;
        let name_key = name_item.key.clone();
        let name = name_item.text()?;
        if columns.iter().any(|other| other.name == name) {
            return Err(t
                .cx
                .err(&name_key, format!("column {name:?} is declared twice")));
        }
        let ty = c.take("type").map(Item::value_type).transpose()?;
        let optional = c.take("optional").map(Item::boolean).transpose()?;
        c.finish()?;
        columns.push(CsvColumn {
            name,
            ty: ty.unwrap_or(ValueType::String),
            optional: optional.unwrap_or(false),
        });
    }
    if columns.is_empty() {
        return Err(t.cx.err(&columns_key, "declare at least one column"));
    }
    Ok(CsvFormat {
        delimiter,
        encoding,
        decimal,
        columns,
    })
}

/// Where a mapping's paths point: XML elements through namespaces, or CSV columns.
#[derive(Clone, Copy)]
enum Source<'a> {
    Xml(&'a BTreeMap<String, String>),
    Csv(&'a [CsvColumn]),
}

impl Source<'_> {
    /// The path `text` at `key`, and for CSV the column it names (its type and optionality
    /// are the mapped field's defaults).
    fn path(
        &self,
        cx: &Ctx,
        key: &str,
        text: &str,
    ) -> Result<(FieldPath, Option<CsvColumn>), ConfigError> {
        match self {
            Source::Xml(namespaces) => {
                let path = parse_field_path(text, namespaces)
                    .map_err(|e| cx.err(key, format!("invalid path {text:?}: {e}")))?;
                Ok((path, None))
            }
            Source::Csv(columns) => match columns.iter().find(|c| c.name == text) {
                Some(column) => Ok((column_path(text), Some(column.clone()))),
                None => Err(cx.err(
                    key,
                    format!(
                        "{text:?} is not a declared column; a CSV flow's paths are column \
                         names: {}",
                        columns
                            .iter()
                            .map(|c| format!("{:?}", c.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )),
            },
        }
    }
}

/// Keys of a `set_stock` mapping, refused on `upsert`.
const SET_STOCK_KEYS: [&str; 5] = ["product", "quantity", "location", "lot", "snapshot"];

fn parse_mapping(mut m: Node, format: &Format) -> Result<Mapping, ConfigError> {
    let namespaces_item = m.take("namespaces");
    let record_item = m.take("record");
    let (namespaces, record) = match format {
        Format::Xml { .. } => {
            let namespaces = match namespaces_item {
                Some(item) => parse_namespaces(item.table()?)?,
                None => BTreeMap::new(),
            };
            let record = match record_item {
                Some(item) => item,
                None => {
                    return Err(m.missing(
                        "record",
                        "the absolute path of the repeating record element, e.g. \
                         record = \"/p:Products/p:Product\"",
                    ));
                }
            };
            let key = record.key.clone();
            let text = record.text()?;
            let record = parse_record_path(&text, &namespaces)
                .map_err(|e| m.cx.err(&key, format!("invalid path {text:?}: {e}")))?;
            (namespaces, Some(record))
        }
        Format::Csv(_) => {
            if let Some(item) = record_item.or(namespaces_item) {
                return Err(item.err(
                    "is for XML flows; in a CSV flow every row is a record and paths are \
                     column names"
                        .to_string(),
                ));
            }
            (BTreeMap::new(), None)
        }
    };
    let source = match format {
        Format::Xml { .. } => Source::Xml(&namespaces),
        Format::Csv(csv) => Source::Csv(&csv.columns),
    };
    #[derive(Clone, Copy)]
    enum Kind {
        Upsert,
        SetStock,
    }
    let action_item = m.require("action", "\"upsert\" or \"set_stock\"")?;
    if action_item.value.as_str() == Some("confirm_delivery") {
        return Err(action_item.err(
            "confirm_delivery is not supported yet; supported actions are \"upsert\" and \
             \"set_stock\""
                .to_string(),
        ));
    }
    let kind = action_item.choice(&[("upsert", Kind::Upsert), ("set_stock", Kind::SetStock)])?;
    let (model, action) = match kind {
        Kind::Upsert => {
            if let Some(key) = SET_STOCK_KEYS.iter().find(|k| m.has(k)) {
                return Err(m.cx.err(
                    &m.child_key(key),
                    "is a set_stock setting; an upsert maps Odoo fields under \
                     [flows.<name>.mapping.fields]",
                ));
            }
            let model = m
                .require(
                    "model",
                    "the Odoo model written, e.g. model = \"product.product\"",
                )?
                .model_name()?;
            let upsert = parse_upsert(&mut m, source)?;
            (model, Action::Upsert(upsert))
        }
        Kind::SetStock => {
            if let Some(key) = ["fields", "key"].iter().find(|k| m.has(k)) {
                return Err(m.cx.err(
                    &m.child_key(key),
                    "is an upsert setting; set_stock takes product, quantity, location, lot \
                     and snapshot",
                ));
            }
            if let Some(item) = m.take("model") {
                let key = item.key.clone();
                let model = item.text()?;
                if model != "stock.quant" {
                    return Err(m.cx.err(
                        &key,
                        format!(
                            "set_stock always writes \"stock.quant\", found {model:?} \
                             (remove model or use action = \"upsert\")"
                        ),
                    ));
                }
            }
            let set_stock = parse_set_stock(&mut m, source)?;
            ("stock.quant".to_string(), Action::SetStock(set_stock))
        }
    };
    m.finish()?;
    Ok(Mapping {
        record,
        namespaces,
        model,
        action,
    })
}

fn parse_namespaces(t: Node) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut namespaces = BTreeMap::new();
    for (prefix, item) in t.entries() {
        let valid = prefix
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
            && prefix
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '.' | '_'));
        if !valid {
            return Err(item.err(format!(
                "{prefix:?} is not a usable prefix; expected a name such as p or cbc"
            )));
        }
        namespaces.insert(prefix, item.text()?);
    }
    Ok(namespaces)
}

fn parse_upsert(m: &mut Node, source: Source) -> Result<UpsertMapping, ConfigError> {
    let fields_item = m.require(
        "fields",
        "a [flows.<name>.mapping.fields] table: Odoo field = path",
    )?;
    let fields_key = fields_item.key.clone();
    let mut fields: Vec<FieldMapping> = Vec::new();
    for (field, item) in fields_item.table()?.entries() {
        if !is_identifier(&field) {
            return Err(item.err(format!(
                "{field:?} is not an Odoo field name (letters, digits and _)"
            )));
        }
        fields.push(parse_field(field, item, source)?);
    }
    if fields.is_empty() {
        return Err(m.cx.err(&fields_key, "map at least one field"));
    }
    let key_item = m.require(
        "key",
        "the fields that identify a record, e.g. key = [\"default_code\"]",
    )?;
    let key_key = key_item.key.clone();
    let mut key: Vec<String> = Vec::new();
    for item in key_item.array()? {
        let name = item.text()?;
        match fields.iter().find(|f| f.field == name) {
            None => {
                return Err(m.cx.err(
                    &key_key,
                    format!(
                        "key field {name:?} is not mapped; map it under \
                         [flows.<name>.mapping.fields]"
                    ),
                ));
            }
            Some(f) if f.optional => {
                return Err(m.cx.err(
                    &key_key,
                    format!(
                        "key field {name:?} is mapped as optional; a key must always have a value"
                    ),
                ));
            }
            Some(_) => {}
        }
        if key.contains(&name) {
            return Err(m.cx.err(&key_key, format!("{name:?} is listed twice")));
        }
        key.push(name);
    }
    if key.is_empty() {
        return Err(m.cx.err(
            &key_key,
            "list at least one field, e.g. key = [\"default_code\"]",
        ));
    }
    Ok(UpsertMapping { key, fields })
}

/// One entry of `fields`: `"path"`, `{ path, type, optional, lookup }` or `{ value, … }`.
fn parse_field(field: String, item: Item, source: Source) -> Result<FieldMapping, ConfigError> {
    let cx = item.cx;
    if item.value.is_str() {
        let key = item.key.clone();
        let text = item.text()?;
        let (path, column) = source.path(cx, &key, &text)?;
        return Ok(FieldMapping {
            field,
            source: ValueSource::Path(path),
            ty: column.as_ref().map_or(ValueType::String, |c| c.ty),
            optional: column.is_some_and(|c| c.optional),
            lookup: None,
        });
    }
    let mut t = item.table_or(
        "a path string (\"p:Name\") or a table such as { path = \"p:Price\", type = \"float\" } \
         or { value = true }",
    )?;
    let ty = t.take("type").map(Item::value_type).transpose()?;
    let lookup = t.take("lookup").map(Item::lookup).transpose()?;
    let optional = t.take("optional");
    let (value_source, ty, optional) = match (t.take("path"), t.take("value")) {
        (Some(_), Some(value)) => {
            return Err(value.err(
                "give either path (read from the file) or value (a constant), not both".to_string(),
            ));
        }
        (Some(path), None) => {
            let key = path.key.clone();
            let text = path.text()?;
            let (path, column) = source.path(cx, &key, &text)?;
            let optional = optional.map(Item::boolean).transpose()?;
            (
                ValueSource::Path(path),
                ty.or(column.as_ref().map(|c| c.ty))
                    .unwrap_or(ValueType::String),
                optional.unwrap_or(column.is_some_and(|c| c.optional)),
            )
        }
        (None, Some(value)) => {
            if let Some(optional) = optional {
                return Err(
                    optional.err("is for paths; a constant value is always present".to_string())
                );
            }
            let inferred = match value.value {
                toml::Value::Boolean(_) => ValueType::Boolean,
                toml::Value::Integer(_) => ValueType::Integer,
                toml::Value::Float(_) => ValueType::Float,
                toml::Value::Datetime(_) => ValueType::Date,
                _ => ValueType::String,
            };
            (
                ValueSource::Constant(value.json()?),
                ty.unwrap_or(inferred),
                false,
            )
        }
        (None, None) => {
            return Err(t.missing(
                "path",
                "path = \"…\" (read from the file) or value = … (a constant)",
            ));
        }
    };
    t.finish()?;
    Ok(FieldMapping {
        field,
        source: value_source,
        ty,
        optional,
        lookup,
    })
}

fn parse_set_stock(m: &mut Node, source: Source) -> Result<SetStockMapping, ConfigError> {
    let cx = m.cx;
    let path_mapping = |field: &str, key: &str, text: &str, ty, optional, lookup| {
        let (path, _) = source.path(cx, key, text)?;
        Ok::<_, ConfigError>(FieldMapping {
            field: field.to_string(),
            source: ValueSource::Path(path),
            ty,
            optional,
            lookup,
        })
    };
    let lookup = |model: &str, field: String| {
        Some(Lookup {
            model: model.to_string(),
            field,
        })
    };

    let product = m.require(
        "product",
        "the product's path, e.g. product = { path = \"Sku\", by = \"default_code\" }",
    )?;
    let (key, text, by) = if product.value.is_str() {
        (product.key.clone(), product.text()?, None)
    } else {
        let mut t = product.table_or("a path string or { path = \"…\", by = \"default_code\" }")?;
        let path = t.require("path", "the product's path")?;
        let by = t.take("by").map(|i| i.identifier()).transpose()?;
        t.finish()?;
        (path.key.clone(), path.text()?, by)
    };
    let by = by.unwrap_or_else(|| "default_code".to_string());
    let product = path_mapping(
        "product_id",
        &key,
        &text,
        ValueType::String,
        false,
        lookup("product.product", by),
    )?;

    let quantity = m.require(
        "quantity",
        "the on-hand quantity's path, e.g. quantity = \"OnHand\"",
    )?;
    let (key, text) = if quantity.value.is_str() {
        (quantity.key.clone(), quantity.text()?)
    } else {
        let mut t = quantity.table_or("a path string or { path = \"…\" }")?;
        let path = t.require("path", "the quantity's path")?;
        t.finish()?;
        (path.key.clone(), path.text()?)
    };
    let quantity = path_mapping(
        "inventory_quantity",
        &key,
        &text,
        ValueType::Float,
        false,
        None,
    )?;

    let location = m.require(
        "location",
        "a fixed location such as location = \"WH/Stock\", or { path = \"…\", by = \"barcode\" }",
    )?;
    let location = if location.value.is_str() {
        FieldMapping {
            field: "location_id".to_string(),
            source: ValueSource::Constant(serde_json::Value::String(location.text()?)),
            ty: ValueType::String,
            optional: false,
            lookup: lookup("stock.location", "complete_name".to_string()),
        }
    } else {
        let mut t = location.table_or(
            "a complete location name such as \"WH/Stock\", or { path = \"…\", by = \"barcode\" }",
        )?;
        let path = t.require("path", "the location's path")?;
        let by = match t.take("by") {
            Some(item) => {
                item.choice(&[("barcode", "barcode"), ("complete_name", "complete_name")])?
            }
            None => "complete_name",
        };
        t.finish()?;
        let key = path.key.clone();
        let text = path.text()?;
        path_mapping(
            "location_id",
            &key,
            &text,
            ValueType::String,
            false,
            lookup("stock.location", by.to_string()),
        )?
    };

    let lot = match m.take("lot") {
        None => None,
        Some(lot) => {
            let (key, text, optional) = if lot.value.is_str() {
                (lot.key.clone(), lot.text()?, false)
            } else {
                let mut t = lot.table_or("a path string or { path = \"…\", optional = true }")?;
                let path = t.require("path", "the lot's path")?;
                let optional = t.take("optional").map(Item::boolean).transpose()?;
                t.finish()?;
                (path.key.clone(), path.text()?, optional.unwrap_or(false))
            };
            Some(path_mapping(
                "lot_id",
                &key,
                &text,
                ValueType::String,
                optional,
                lookup("stock.lot", "name".to_string()),
            )?)
        }
    };

    let snapshot = match m.take("snapshot") {
        Some(item) => item.choice(&[("partial", Snapshot::Partial), ("full", Snapshot::Full)])?,
        None => Snapshot::Partial,
    };
    Ok(SetStockMapping {
        product,
        quantity,
        location,
        lot,
        snapshot,
    })
}

/// Export flows are read so today's configs keep working; the export pipeline comes later.
fn parse_export(t: &mut Node) -> Result<ExportFlow, ConfigError> {
    let outbox = t
        .require(
            "outbox",
            "the folder files are published in, e.g. outbox = \"/in/orders\"",
        )?
        .text()?;
    let model = t.take("model").map(Item::model_name).transpose()?;
    let domain = t.take("domain").map(Item::json).transpose()?;
    let template = t.take("template").map(Item::text).transpose()?;
    let schema = t.take("schema").map(Item::path).transpose()?;
    let filename = t.take("filename").map(Item::text).transpose()?;
    let mark = match t.take("mark") {
        None => None,
        Some(item) if item.value.is_str() => Some(item.text()?),
        Some(item) => {
            let mut mark = item.table_or("a field name or { field = \"x_edi_exported\" }")?;
            let field = mark
                .require("field", "the Odoo field set once published")?
                .identifier()?;
            mark.finish()?;
            Some(field)
        }
    };
    Ok(ExportFlow {
        outbox,
        model: model.unwrap_or_else(|| "stock.picking".to_string()),
        domain: domain.unwrap_or_else(|| {
            serde_json::json!([
                ["picking_type_code", "=", "outgoing"],
                ["state", "=", "assigned"]
            ])
        }),
        template: template.unwrap_or_else(|| "builtin:picking".to_string()),
        schema,
        filename: filename.unwrap_or_else(|| "{name}.xml".to_string()),
        mark,
    })
}

fn check_name(item: &Item, name: &str, what: &str) -> Result<(), ConfigError> {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        Ok(())
    } else {
        Err(item.err(format!(
            "{name:?} is not a usable {what} name; use letters, digits, `_`, `.` and `-`"
        )))
    }
}

fn is_identifier(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

// ---------------------------------------------------------------------------------------------
// Reading the TOML tree with the key of every value at hand

/// What every error needs: the file, and the folder relative paths start from.
struct Ctx {
    file: String,
    dir: PathBuf,
}

impl Ctx {
    fn new(file: &Path) -> Ctx {
        let dir = match file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Ctx {
            file: file.display().to_string(),
            // Absolute, so the paths stay right whatever the working directory becomes.
            dir: std::path::absolute(&dir).unwrap_or(dir),
        }
    }

    fn err(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn syntax_error(&self, text: &str, e: &toml::de::Error) -> ConfigError {
        let message = match e.span() {
            Some(span) => {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
                format!(
                    "TOML syntax error at line {line}, column {column}: {}",
                    e.message().trim_end()
                )
            }
            None => format!("TOML syntax error: {}", e.message().trim_end()),
        };
        self.err("", message)
    }
}

/// `parent.name`, quoting `name` the TOML way when it is not a bare key.
fn join_key(parent: &str, name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let name = if bare {
        name.to_string()
    } else {
        format!("{name:?}")
    };
    if parent.is_empty() {
        name
    } else {
        format!("{parent}.{name}")
    }
}

fn expand_env(
    cx: &Ctx,
    env: EnvLookup,
    key: &str,
    value: &mut toml::Value,
) -> Result<(), ConfigError> {
    match value {
        toml::Value::String(s) if s.contains("${") => {
            *s = expand_str(s, env).map_err(|message| cx.err(key, message))?;
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_env(cx, env, &format!("{key}[{i}]"), item)?;
            }
        }
        toml::Value::Table(table) => {
            for (name, item) in table.iter_mut() {
                expand_env(cx, env, &join_key(key, name), item)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Replaces every `${NAME}` in `s`.
fn expand_str(s: &str, env: EnvLookup) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or("`${` without a closing `}`; expected ${NAME}")?;
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "`${{{name}}}` is not an environment variable reference; expected ${{NAME}} \
                 with letters, digits and _"
            ));
        }
        match env(name) {
            Ok(value) => out.push_str(&value),
            Err(std::env::VarError::NotPresent) => {
                return Err(format!("environment variable {name} is not set"));
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(format!("environment variable {name} is not valid UTF-8"));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Every key the configuration knows, anywhere: a key missing from a table is only blamed on a
/// neighbouring typo that is none of these.
#[rustfmt::skip]
const KEYS: &[&str] = &[
    "accept_new", "action", "api_key", "archive", "batch_size", "by", "columns",
    "connect_timeout", "cron", "database", "decimal", "delimiter", "direction", "domain",
    "done_marker", "done_marker_replaces_extension", "dry_run", "encoding", "error", "every",
    "field", "fields", "filename", "flows", "format", "host", "host_key", "inbox", "keepalive",
    "key", "key_file", "key_passphrase", "known_hosts", "ledger", "listen", "location", "login",
    "lookup", "lot", "mapping", "mark", "max_concurrency", "max_file_size", "max_sessions",
    "min_age", "model", "name", "namespaces", "odoo", "on_record_error", "optional", "outbox",
    "partner", "partners", "password", "path", "pattern", "port", "product", "protocol",
    "quantity", "record", "root", "schema", "server", "settle", "settle_max", "snapshot",
    "spool", "template", "timeout", "timezone", "token", "type", "url", "user", "value",
];

/// A TOML table being read: keys are taken one by one, and whatever is left at the end is an
/// unknown key.
struct Node<'c> {
    cx: &'c Ctx,
    key: String,
    table: toml::Table,
    /// Keys this table accepts, as asked for, for the unknown-key message.
    accepted: Vec<&'static str>,
}

impl<'c> Node<'c> {
    fn new(cx: &'c Ctx, key: String, table: toml::Table) -> Node<'c> {
        Node {
            cx,
            key,
            table,
            accepted: Vec::new(),
        }
    }

    fn child_key(&self, name: &str) -> String {
        join_key(&self.key, name)
    }

    fn has(&self, name: &str) -> bool {
        self.table.contains_key(name)
    }

    fn take(&mut self, name: &'static str) -> Option<Item<'c>> {
        if !self.accepted.contains(&name) {
            self.accepted.push(name);
        }
        self.table.remove(name).map(|value| Item {
            cx: self.cx,
            key: self.child_key(name),
            value,
        })
    }

    fn require(&mut self, name: &'static str, expected: &str) -> Result<Item<'c>, ConfigError> {
        match self.take(name) {
            Some(item) => Ok(item),
            None => Err(self.missing(name, expected)),
        }
    }

    fn missing(&self, name: &str, expected: &str) -> ConfigError {
        // A misspelt key is the likelier story than a forgotten one: name the typo.
        if let Some(typo) = self
            .table
            .keys()
            .find(|k| !KEYS.contains(&k.as_str()) && edit_distance(k, name) <= 2)
        {
            return self.cx.err(
                &self.child_key(typo),
                format!("unknown key (did you mean {name}?)"),
            );
        }
        self.cx.err(
            &self.child_key(name),
            format!("missing; expected {expected}"),
        )
    }

    /// A sub-table such as `[odoo]`; absent means empty.
    fn section(&mut self, name: &'static str) -> Result<Node<'c>, ConfigError> {
        match self.take(name) {
            Some(item) => item.table(),
            None => Ok(Node::new(self.cx, self.child_key(name), toml::Table::new())),
        }
    }

    /// Every entry, for tables whose keys are names (partners, flows, fields, namespaces).
    fn entries(self) -> Vec<(String, Item<'c>)> {
        let cx = self.cx;
        let key = self.key;
        self.table
            .into_iter()
            .map(|(name, value)| {
                let item = Item {
                    cx,
                    key: join_key(&key, &name),
                    value,
                };
                (name, item)
            })
            .collect()
    }

    /// Refuses whatever key was not taken.
    fn finish(self) -> Result<(), ConfigError> {
        let Some(unknown) = self.table.keys().next() else {
            return Ok(());
        };
        let suggestion = self
            .accepted
            .iter()
            .filter(|k| edit_distance(unknown, k) <= 2)
            .min_by_key(|k| edit_distance(unknown, k))
            .map(|k| format!(" (did you mean {k}?)"))
            .unwrap_or_default();
        Err(self.cx.err(
            &self.child_key(unknown),
            format!(
                "unknown key{suggestion}; accepted here: {}",
                self.accepted.join(", ")
            ),
        ))
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// One value and its dotted key.
struct Item<'c> {
    cx: &'c Ctx,
    key: String,
    value: toml::Value,
}

impl<'c> Item<'c> {
    fn err(&self, message: String) -> ConfigError {
        self.cx.err(&self.key, message)
    }

    fn expected(&self, what: &str) -> ConfigError {
        let found = match &self.value {
            toml::Value::String(s) => format!("{s:?}"),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Datetime(d) => d.to_string(),
            toml::Value::Array(_) => "an array".to_string(),
            toml::Value::Table(_) => "a table".to_string(),
        };
        self.err(format!("expected {what}, found {found}"))
    }

    fn string(self) -> Result<String, ConfigError> {
        match self.value {
            toml::Value::String(s) => Ok(s),
            _ => Err(self.expected("a string")),
        }
    }

    /// A non-blank string.
    fn text(self) -> Result<String, ConfigError> {
        if self.value.as_str().is_some_and(|s| s.trim().is_empty()) {
            return Err(self.err("is empty".to_string()));
        }
        self.string()
    }

    /// A password, key or token: never echoed in messages.
    fn secret(self) -> Result<String, ConfigError> {
        match self.value {
            toml::Value::String(s) if !s.is_empty() => Ok(s),
            toml::Value::String(_) => Err(self.err(
                "is empty (if it comes from ${NAME}, that variable is set but empty)".to_string(),
            )),
            _ => Err(self.err("expected a string".to_string())),
        }
    }

    fn table(self) -> Result<Node<'c>, ConfigError> {
        self.table_or("a table")
    }

    fn table_or(self, expected: &str) -> Result<Node<'c>, ConfigError> {
        match self.value {
            toml::Value::Table(table) => Ok(Node::new(self.cx, self.key, table)),
            _ => Err(self.expected(expected)),
        }
    }

    fn array(self) -> Result<Vec<Item<'c>>, ConfigError> {
        match self.value {
            toml::Value::Array(values) => Ok(values
                .into_iter()
                .enumerate()
                .map(|(i, value)| Item {
                    cx: self.cx,
                    key: format!("{}[{i}]", self.key),
                    value,
                })
                .collect()),
            _ => Err(self.expected("an array")),
        }
    }

    /// `true`/`false`; also as a string, so it can come from `${NAME}`.
    fn boolean(self) -> Result<bool, ConfigError> {
        match &self.value {
            toml::Value::Boolean(b) => Ok(*b),
            toml::Value::String(s) if s == "true" => Ok(true),
            toml::Value::String(s) if s == "false" => Ok(false),
            _ => Err(self.expected("true or false")),
        }
    }

    /// A whole number in `range`; also as a string, so it can come from `${NAME}`.
    fn count(self, range: std::ops::RangeInclusive<usize>) -> Result<usize, ConfigError> {
        let n = match &self.value {
            toml::Value::Integer(i) => usize::try_from(*i).ok(),
            toml::Value::String(s) => s.trim().parse::<usize>().ok(),
            _ => None,
        };
        match n {
            Some(n) if range.contains(&n) => Ok(n),
            _ => Err(self.expected(&format!(
                "a whole number from {} to {}",
                range.start(),
                range.end()
            ))),
        }
    }

    fn duration(self) -> Result<Duration, ConfigError> {
        let expected = "a duration such as \"500ms\", \"10s\", \"15m\" or \"12h\"";
        match &self.value {
            toml::Value::String(s) => {
                humantime::parse_duration(s.trim()).map_err(|_| self.expected(expected))
            }
            _ => Err(self.expected(expected)),
        }
    }

    fn positive_duration(self) -> Result<Duration, ConfigError> {
        let key = self.key.clone();
        let cx = self.cx;
        let duration = self.duration()?;
        if duration.is_zero() {
            return Err(cx.err(&key, "must be longer than zero"));
        }
        Ok(duration)
    }

    /// A path relative to the config file's folder.
    fn path(self) -> Result<PathBuf, ConfigError> {
        let dir = &self.cx.dir;
        Ok(dir.join(self.text()?))
    }

    fn existing_file(self) -> Result<PathBuf, ConfigError> {
        let key = self.key.clone();
        let cx = self.cx;
        let path = self.path()?;
        if !path.is_file() {
            return Err(cx.err(
                &key,
                format!(
                    "file {} not found (relative paths are relative to the config file's folder)",
                    path.display()
                ),
            ));
        }
        Ok(path)
    }

    fn choice<T: Copy>(self, options: &[(&str, T)]) -> Result<T, ConfigError> {
        if let Some(s) = self.value.as_str()
            && let Some((_, value)) = options.iter().find(|(name, _)| *name == s)
        {
            return Ok(*value);
        }
        let names: Vec<String> = options
            .iter()
            .map(|(name, _)| format!("{name:?}"))
            .collect();
        let expected = match names.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        Err(self.expected(&expected))
    }

    fn value_type(self) -> Result<ValueType, ConfigError> {
        self.choice(&[
            ("string", ValueType::String),
            ("float", ValueType::Float),
            ("integer", ValueType::Integer),
            ("boolean", ValueType::Boolean),
            ("date", ValueType::Date),
        ])
    }

    fn identifier(self) -> Result<String, ConfigError> {
        if self.value.as_str().is_some_and(is_identifier) {
            return self.string();
        }
        Err(self.expected("an Odoo field name (letters, digits and _)"))
    }

    fn model_name(self) -> Result<String, ConfigError> {
        let valid = self.value.as_str().is_some_and(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        });
        if valid {
            return self.string();
        }
        Err(self.expected("an Odoo model name such as \"product.product\""))
    }

    fn lookup(self) -> Result<Lookup, ConfigError> {
        let mut t = self.table_or("a table such as { model = \"uom.uom\", field = \"name\" }")?;
        let model = t
            .require("model", "the model looked in, e.g. model = \"uom.uom\"")?
            .model_name()?;
        let field = t
            .require("field", "the field matched, e.g. field = \"name\"")?
            .identifier()?;
        t.finish()?;
        Ok(Lookup { model, field })
    }

    fn timezone(self) -> Result<jiff::tz::TimeZone, ConfigError> {
        let key = self.key.clone();
        let cx = self.cx;
        let name = self.text()?;
        jiff::tz::TimeZone::get(&name).map_err(|e| {
            cx.err(
                &key,
                format!("unknown time zone {name:?} ({e}); expected an IANA name such as \"Europe/Brussels\" or \"UTC\""),
            )
        })
    }

    /// `host_key`: an OpenSSH SHA256 fingerprint as `ssh-keygen -lf` prints it.
    fn fingerprint(self) -> Result<String, ConfigError> {
        let expected = "a fingerprint such as \"SHA256:Xl0i…\" (the second field of \
                        `ssh-keygen -lf key.pub`)";
        match self.value.as_str() {
            Some(s)
                if s.len() > "SHA256:".len()
                    && s.starts_with("SHA256:")
                    && !s.contains(char::is_whitespace) =>
            {
                // OpenSSH prints fingerprints without base64 padding; compare like it.
                Ok(s.trim_end_matches('=').to_string())
            }
            _ => Err(self.expected(expected)),
        }
    }

    fn glob(self) -> Result<glob::Pattern, ConfigError> {
        let key = self.key.clone();
        let cx = self.cx;
        let text = self.text()?;
        glob::Pattern::new(&text).map_err(|e| {
            cx.err(
                &key,
                format!(
                    "invalid glob {text:?}: {} (at character {})",
                    e.msg,
                    e.pos + 1
                ),
            )
        })
    }

    /// `archive`: a folder with `{yyyy}` `{mm}` `{dd}` `{name}` placeholders.
    fn archive_template(self) -> Result<String, ConfigError> {
        let key = self.key.clone();
        let cx = self.cx;
        let text = self.text()?;
        let bad = |what: String| {
            cx.err(
                &key,
                format!("{what}; the placeholders are {{yyyy}}, {{mm}}, {{dd}} and {{name}}"),
            )
        };
        let mut rest = text.as_str();
        while let Some(i) = rest.find(['{', '}']) {
            if rest[i..].starts_with('}') {
                return Err(bad("`}` without `{`".to_string()));
            }
            let after = &rest[i + 1..];
            let end = after
                .find('}')
                .ok_or_else(|| bad("`{` without `}`".to_string()))?;
            let name = &after[..end];
            if !matches!(name, "yyyy" | "mm" | "dd" | "name") {
                return Err(bad(format!("unknown placeholder {{{name}}}")));
            }
            rest = &after[end + 1..];
        }
        Ok(text.trim_end_matches('/').to_string())
    }

    /// `done_marker`: a suffix such as `.done`.
    fn done_suffix(self) -> Result<String, ConfigError> {
        let valid = self.value.as_str().is_some_and(|s| {
            s.len() > 1
                && s.starts_with('.')
                && !s.contains(['/', '\\'])
                && !s.contains(char::is_control)
        });
        if valid {
            return self.string();
        }
        Err(self.expected("a file name suffix such as \".done\" or \".ok\""))
    }

    /// Bytes, as a number or a string with a unit: "500MB", "2GB" (powers of 1000),
    /// "2GiB" (powers of 1024).
    fn size(self) -> Result<u64, ConfigError> {
        let bytes = match &self.value {
            toml::Value::Integer(i) => u64::try_from(*i).ok(),
            toml::Value::String(s) => parse_size(s),
            _ => None,
        };
        match bytes {
            Some(n) if n > 0 => Ok(n),
            _ => {
                Err(self.expected("a size such as 1048576 (bytes), \"500MB\", \"2GB\" or \"2GiB\""))
            }
        }
    }

    /// Any TOML value as JSON (constants, export domains). Dates become their text.
    fn json(self) -> Result<serde_json::Value, ConfigError> {
        let key = self.key.clone();
        to_json(self.value).map_err(|message| self.cx.err(&key, message))
    }
}

fn to_json(value: toml::Value) -> Result<serde_json::Value, String> {
    use serde_json::Value as J;
    Ok(match value {
        toml::Value::String(s) => J::String(s),
        toml::Value::Integer(i) => J::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f)
            .map(J::Number)
            .ok_or_else(|| format!("{f} cannot be sent to Odoo; expected a finite number"))?,
        toml::Value::Boolean(b) => J::Bool(b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(items) => {
            J::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?)
        }
        toml::Value::Table(table) => J::Object(
            table
                .into_iter()
                .map(|(k, v)| Ok((k, to_json(v)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let number: u64 = text[..digits].parse().ok()?;
    let factor: u64 = match text[digits..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "mb" => 1000_u64.pow(2),
        "gb" => 1000_u64.pow(3),
        "tb" => 1000_u64.pow(4),
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return None,
    };
    number.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::env::VarError;

    /// The configuration example of the user-facing contract (PRODUCT.md), verbatim.
    const CONTRACT: &str = include_str!("../tests/fixtures/config/contract.toml");

    fn env(name: &str) -> Result<String, VarError> {
        match name {
            "ODOO_API_KEY" => Ok("odoo-key".to_string()),
            "EDI_BRIDGE_TOKEN" => Ok("hook-token".to_string()),
            "ACME_SFTP_PASSWORD" => Ok("sftp-secret".to_string()),
            "EMPTY" => Ok(String::new()),
            "HOST" => Ok("sftp.example".to_string()),
            "PORT" => Ok("2222".to_string()),
            _ => Err(VarError::NotPresent),
        }
    }

    /// A config folder with the schema files the examples name.
    fn folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("xsd")).unwrap();
        for name in ["products.xsd", "stock.xsd", "picking.xsd"] {
            std::fs::write(dir.path().join("xsd").join(name), "<xs:schema/>").unwrap();
        }
        dir
    }

    fn parse_in(dir: &Path, text: &str) -> Result<Config, ConfigError> {
        Config::parse_with_env(text, &dir.join("edi-bridge.toml"), &env)
    }

    fn parse(text: &str) -> Config {
        let dir = folder();
        parse_in(dir.path(), text).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The config must be refused, at `key`, with a message containing `says`.
    #[track_caller]
    fn refused(text: &str, key: &str, says: &str) -> ConfigError {
        let dir = folder();
        let err = match parse_in(dir.path(), text) {
            Ok(_) => panic!("accepted, expected an error at {key} saying {says:?}"),
            Err(e) => e,
        };
        assert_eq!(err.key, key, "{err}");
        assert!(
            err.message.contains(says),
            "{err}\nexpected it to say {says:?}"
        );
        assert!(err.file.ends_with("edi-bridge.toml"), "{err}");
        err
    }

    const ODOO: &str = r#"
[odoo]
url = "https://erp.example.com"
database = "prod"
login = "edi@example.com"
api_key = "${ODOO_API_KEY}"
"#;

    const ACME: &str = r#"
[partners.acme]
host = "sftp.acme.example"
user = "odoo"
key_file = "keys/acme_ed25519"
host_key = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"
"#;

    const DEMO: &str = "\n[partners.demo]\nroot = \"demo\"\n";

    /// An XML upsert flow `p` on the local partner; `flow` and `mapping` add keys to the
    /// flow and mapping tables, `fields` to the fields table.
    fn xml_flow(flow: &str, mapping: &str, fields: &str) -> String {
        format!(
            r#"{ODOO}{ACME}{DEMO}
[flows.p]
partner = "demo"
direction = "import"
inbox = "/in/products/"
{flow}
[flows.p.mapping]
record = "/p:Products/p:Product"
namespaces = {{ p = "urn:p" }}
{mapping}
[flows.p.mapping.fields]
default_code = "@sku"
{fields}
"#
        )
    }

    /// `xml_flow` with the usual schema, model, action and key.
    fn upsert(flow: &str, mapping: &str, fields: &str) -> String {
        xml_flow(
            &format!("schema = \"xsd/products.xsd\"\n{flow}"),
            &format!(
                "model = \"product.product\"\naction = \"upsert\"\nkey = [\"default_code\"]\n{mapping}"
            ),
            fields,
        )
    }

    /// A CSV upsert flow `c` with columns sku, qty (float), note (optional).
    fn csv_flow(flow: &str, mapping: &str, fields: &str) -> String {
        format!(
            r#"{ODOO}{DEMO}
[flows.c]
partner = "demo"
direction = "import"
inbox = "/in"
format = "csv"
columns = [{{ name = "sku" }}, {{ name = "qty", type = "float" }}, {{ name = "note", optional = true }}]
{flow}
[flows.c.mapping]
model = "product.product"
action = "upsert"
key = ["default_code"]
{mapping}
[flows.c.mapping.fields]
default_code = "sku"
{fields}
"#
        )
    }

    /// A set_stock flow `s` on the local partner with the given mapping keys.
    fn set_stock(mapping: &str) -> String {
        format!(
            r#"{ODOO}{DEMO}
[flows.s]
partner = "demo"
direction = "import"
inbox = "/in"
schema = "xsd/stock.xsd"
[flows.s.mapping]
record = "/StockReport/Line"
action = "set_stock"
{mapping}
"#
        )
    }

    const STOCK: &str = "product = \"Sku\"\nquantity = \"OnHand\"\nlocation = \"WH/Stock\"\n";

    fn import(config: &Config, flow: &str) -> ImportFlow {
        match &config.flows[flow].direction {
            Direction::Import(import) => (**import).clone(),
            Direction::Export(_) => panic!("{flow} is an export flow"),
        }
    }

    fn upsert_of(flow: &ImportFlow) -> &UpsertMapping {
        match &flow.mapping.action {
            Action::Upsert(upsert) => upsert,
            Action::SetStock(_) => panic!("not an upsert"),
        }
    }

    fn set_stock_of(flow: &ImportFlow) -> &SetStockMapping {
        match &flow.mapping.action {
            Action::SetStock(set_stock) => set_stock,
            Action::Upsert(_) => panic!("not a set_stock"),
        }
    }

    fn field<'a>(flow: &'a ImportFlow, name: &str) -> &'a FieldMapping {
        upsert_of(flow)
            .fields
            .iter()
            .find(|f| f.field == name)
            .unwrap_or_else(|| panic!("no field {name}"))
    }

    fn path_text(mapping: &FieldMapping) -> &str {
        match &mapping.source {
            ValueSource::Path(path) => &path.text,
            ValueSource::Constant(value) => panic!("constant {value}"),
        }
    }

    fn lookup(model: &str, field: &str) -> Option<Lookup> {
        Some(Lookup {
            model: model.to_string(),
            field: field.to_string(),
        })
    }

    #[test]
    fn the_contract_example_parses() {
        let dir = folder();
        let config = parse_in(dir.path(), CONTRACT).unwrap_or_else(|e| panic!("{e}"));
        let base = std::path::absolute(dir.path()).unwrap();

        let odoo = config.odoo.connection.as_ref().unwrap();
        assert_eq!(odoo.url, "https://erp.example.com");
        assert_eq!(
            (odoo.database.as_str(), odoo.login.as_str()),
            ("prod", "edi@example.com")
        );
        assert!(matches!(&odoo.credential, Credential::ApiKey(k) if k == "odoo-key"));
        assert_eq!(odoo.protocol, Protocol::Auto);
        assert!(!config.odoo.dry_run);
        assert_eq!(config.odoo.batch_size, 200);
        assert_eq!(config.ledger.path, base.join("edi-bridge.db"));
        assert_eq!(config.spool, base.join("spool"));
        assert_eq!(config.server.listen, "127.0.0.1:8480".parse().unwrap());
        assert_eq!(config.server.token.as_deref(), Some("hook-token"));

        let acme = &config.partners["acme"];
        assert_eq!(acme.timezone.iana_name(), Some("Europe/Brussels"));
        assert_eq!(acme.max_sessions, 2);
        let PartnerTransport::Sftp(sftp) = &acme.transport else {
            panic!("acme is SFTP")
        };
        assert_eq!(
            (sftp.host.as_str(), sftp.port, sftp.user.as_str()),
            ("sftp.acme.example", 22, "odoo")
        );
        assert!(
            matches!(&sftp.auth, SftpAuth::Key { path, passphrase: None } if *path == base.join("keys/acme_ed25519"))
        );
        assert!(matches!(&sftp.host_key, HostKeyPolicy::Fingerprint(f) if f == "SHA256:Xl0i…"));
        let demo = &config.partners["demo"];
        assert!(
            matches!(&demo.transport, PartnerTransport::Local { root } if *root == base.join("demo/partner"))
        );

        let products = import(&config, "acme-products");
        assert_eq!(config.flows["acme-products"].partner, "acme");
        assert!(matches!(
            config.flows["acme-products"].schedule,
            Some(Schedule::Every(d)) if d == Duration::from_secs(12 * 3600)
        ));
        assert_eq!(products.inbox, "/out/products");
        assert!(products.pattern.matches("catalogue.xml") && !products.pattern.matches("a.csv"));
        assert_eq!(products.archive, "/out/products/archive/{yyyy}/{mm}/{dd}");
        assert_eq!(products.error, "/out/products/error");
        assert_eq!(products.settle, Duration::from_secs(10));
        assert!(
            matches!(&products.format, Format::Xml { schema } if *schema == base.join("xsd/products.xsd"))
        );
        assert_eq!(products.on_record_error, OnRecordError::Skip);
        assert_eq!(products.mapping.model, "product.product");
        assert_eq!(
            products.mapping.record.as_ref().unwrap().text,
            "/p:Products/p:Product"
        );
        let upsert = upsert_of(&products);
        assert_eq!(upsert.key, ["default_code"]);
        let names: Vec<&str> = upsert.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            names,
            ["default_code", "name", "barcode", "list_price", "uom_id"],
            "config order"
        );
        assert_eq!(path_text(field(&products, "name")), "p:Name");
        assert!(field(&products, "barcode").optional);
        assert!(!field(&products, "name").optional);
        assert_eq!(field(&products, "list_price").ty, ValueType::Float);
        assert_eq!(field(&products, "uom_id").lookup, lookup("uom.uom", "name"));

        let stock = import(&config, "acme-stock");
        assert_eq!(stock.mapping.model, "stock.quant");
        let set = set_stock_of(&stock);
        assert_eq!(path_text(&set.product), "Sku");
        assert_eq!(
            set.product.lookup,
            lookup("product.product", "default_code")
        );
        assert_eq!(set.quantity.ty, ValueType::Float);
        assert_eq!(path_text(&set.quantity), "OnHand");
        assert!(
            matches!(&set.location.source, ValueSource::Constant(serde_json::Value::String(s)) if s == "WH/Stock")
        );
        assert_eq!(
            set.location.lookup,
            lookup("stock.location", "complete_name")
        );
        let lot = set.lot.as_ref().unwrap();
        assert!(lot.optional);
        assert_eq!(lot.lookup, lookup("stock.lot", "name"));
        assert_eq!(set.snapshot, Snapshot::Partial);

        let Direction::Export(orders) = &config.flows["acme-orders"].direction else {
            panic!("acme-orders is an export flow")
        };
        assert_eq!(orders.outbox, "/in/orders");
        assert_eq!(orders.model, "stock.picking");
        assert_eq!(
            orders.domain,
            serde_json::json!([
                ["picking_type_code", "=", "outgoing"],
                ["state", "=", "assigned"]
            ])
        );
        assert_eq!(orders.template, "builtin:picking");
        assert_eq!(orders.schema, Some(base.join("xsd/picking.xsd")));
        assert_eq!(orders.filename, "{name}.xml");
        assert_eq!(orders.mark.as_deref(), Some("x_edi_exported"));
        assert_eq!(config.flow("acme-orders").unwrap().name, "acme-orders");
    }

    #[test]
    fn load_reads_the_file_and_the_process_environment() {
        let dir = folder();
        let file = dir.path().join("edi.toml");
        // PATH is set wherever tests run; the value must arrive unchanged.
        let path = std::env::var("PATH").unwrap();
        std::fs::write(
            &file,
            "[odoo]\ndry_run = true\n[server]\ntoken = \"[${PATH}]\"\n",
        )
        .unwrap();
        let config = Config::load(&file).unwrap();
        assert_eq!(config.server.token, Some(format!("[{path}]")));
        assert_eq!(config.file, file);
        assert!(config.odoo.connection.is_none());

        let err = Config::load(&dir.path().join("missing.toml")).unwrap_err();
        assert!(err.message.contains("cannot read"), "{err}");
        assert_eq!(err.key, "");
        assert_eq!(err.consequence(), Consequence::Stop);
    }

    #[test]
    fn environment_variables_are_substituted_in_any_string() {
        let config = parse(&format!(
            "{ODOO}[server]\ntoken = \"${{HOST}}:${{PORT}}/${{ODOO_API_KEY}}\"\n\
             [partners.x]\nhost = \"${{HOST}}\"\nport = \"${{PORT}}\"\nuser = \"u\"\n\
             password = \"${{ACME_SFTP_PASSWORD}}\"\nknown_hosts = \"kh\"\n"
        ));
        assert_eq!(
            config.server.token.as_deref(),
            Some("sftp.example:2222/odoo-key")
        );
        let PartnerTransport::Sftp(sftp) = &config.partners["x"].transport else {
            panic!("SFTP")
        };
        assert_eq!((sftp.host.as_str(), sftp.port), ("sftp.example", 2222));
        assert!(matches!(&sftp.auth, SftpAuth::Password(p) if p == "sftp-secret"));
        // Secrets stay out of debug output.
        assert!(!format!("{sftp:?}{:?}", config.odoo).contains("secret"));
        assert!(!format!("{:?}", config.odoo).contains("odoo-key"));
    }

    #[test]
    fn an_unset_environment_variable_names_the_key() {
        refused(
            &ODOO.replace("${ODOO_API_KEY}", "${NOT_SET_ANYWHERE}"),
            "odoo.api_key",
            "environment variable NOT_SET_ANYWHERE is not set",
        );
        // Deep inside an inline table of a mapping.
        refused(
            &upsert(
                "",
                "",
                "uom_id = { path = \"p:Unit\", lookup = { model = \"${NOPE}\", field = \"name\" } }",
            ),
            "flows.p.mapping.fields.uom_id.lookup.model",
            "NOPE is not set",
        );
        refused(
            &format!("{ODOO}[server]\ntoken = \"${{OPEN\"\n"),
            "server.token",
            "closing",
        );
        refused(
            &format!("{ODOO}[server]\ntoken = \"${{}}\"\n"),
            "server.token",
            "${NAME}",
        );
        refused(
            &ODOO.replace("${ODOO_API_KEY}", "${EMPTY}"),
            "odoo.api_key",
            "empty",
        );
    }

    #[test]
    fn a_toml_syntax_error_gives_line_and_column() {
        let err = refused("[odoo]\ndry_run = true\nurl = \n", "", "line 3, column 7");
        assert!(err.message.starts_with("TOML syntax error"), "{err}");
        assert!(
            err.to_string()
                .ends_with(&format!("edi-bridge.toml: {}", err.message)),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_refused_everywhere_with_their_full_key() {
        let err = refused(
            &upsert("", "", "").replace("[flows.p.mapping.fields]", "[flows.p.mapping.feilds]"),
            "flows.p.mapping.feilds",
            "did you mean fields?",
        );
        assert_eq!(
            err.to_string(),
            format!("{}: flows.p.mapping.feilds: {}", err.file, err.message)
        );
        refused(
            &format!("{ODOO}[spool]\npath = \"x\"\n"),
            "spool",
            "unknown key",
        );
        refused(
            &format!("{ODOO}urll = \"x\"\n"),
            "odoo.urll",
            "did you mean url?",
        );
        refused(
            &format!("{ODOO}{ACME}colour = \"red\"\n"),
            "partners.acme.colour",
            "unknown key",
        );
        refused(
            &upsert("inboxx = \"/a\"", "", ""),
            "flows.p.inboxx",
            "did you mean inbox?",
        );
        refused(
            &upsert("", "", "x = { path = \"a\", typ = \"float\" }"),
            "flows.p.mapping.fields.x.typ",
            "did you mean type?",
        );
        refused(
            &upsert(
                "",
                "",
                "x = { path = \"a\", lookup = { model = \"m\", feld = \"n\" } }",
            ),
            "flows.p.mapping.fields.x.lookup.feld",
            "unknown key",
        );
        refused(
            &csv_flow("", "", "").replace("{ name = \"sku\" }", "{ name = \"sku\", kind = \"x\" }"),
            "flows.c.columns[0].kind",
            "unknown key",
        );
        refused(
            &format!("{ODOO}[ledger]\nspol = \"x\"\n"),
            "ledger.spol",
            "did you mean spool?",
        );
        refused(
            &format!("{ODOO}[server]\nlistn = \"x\"\n"),
            "server.listn",
            "did you mean listen?",
        );
        refused(
            &set_stock(&format!("{STOCK}lot = {{ path = \"Lot\", by = \"name\" }}")),
            "flows.s.mapping.lot.by",
            "unknown key",
        );
        // An import key on an export flow.
        refused(
            &format!(
                "{ODOO}{DEMO}[flows.e]\npartner = \"demo\"\ndirection = \"export\"\noutbox = \"/o\"\ninbox = \"/i\"\n"
            ),
            "flows.e.inbox",
            "unknown key",
        );
        // Names that are not bare TOML keys are quoted, so the key stays unambiguous.
        refused(
            &format!("{ODOO}[partners.\"a.b\"]\nroot = \"x\"\nport = 22\n"),
            "partners.\"a.b\".port",
            "SFTP setting",
        );
    }

    #[test]
    fn defaults_apply_when_keys_are_absent() {
        let dir = folder();
        let config = parse_in(dir.path(), &upsert("", "", "")).unwrap();
        let base = std::path::absolute(dir.path()).unwrap();
        assert_eq!(config.odoo.batch_size, 200);
        assert_eq!(config.odoo.timeout, Duration::from_secs(60));
        assert_eq!(config.odoo.max_concurrency, 4);
        assert_eq!(config.ledger.path, base.join("edi-bridge.db"));
        assert_eq!(config.spool, base.join("spool"));
        assert_eq!(
            config.server.listen,
            SocketAddr::from(([127, 0, 0, 1], 8480))
        );
        assert_eq!(config.server.token, None);

        let acme = &config.partners["acme"];
        assert_eq!(acme.timezone, jiff::tz::TimeZone::UTC);
        assert_eq!(acme.max_sessions, 2);
        let PartnerTransport::Sftp(sftp) = &acme.transport else {
            panic!("SFTP")
        };
        assert_eq!(sftp.port, 22);
        assert_eq!(sftp.connect_timeout, Duration::from_secs(15));
        assert_eq!(sftp.op_timeout, Duration::from_secs(30));
        assert_eq!(sftp.keepalive, Duration::from_secs(15));

        let flow = import(&config, "p");
        assert!(config.flows["p"].schedule.is_none());
        assert_eq!(flow.inbox, "/in/products", "trailing slash dropped");
        assert!(flow.pattern.matches("anything.at.all"));
        assert_eq!(flow.archive, "/in/products/archive");
        assert_eq!(flow.error, "/in/products/error");
        assert_eq!(flow.settle, Duration::from_secs(10));
        assert_eq!(flow.settle_max, Duration::from_secs(3600));
        assert_eq!(flow.min_age, None);
        assert_eq!(flow.done_marker, None);
        assert_eq!(flow.max_file_size, 2 * 1024 * 1024 * 1024);
        assert_eq!(flow.on_record_error, OnRecordError::Skip);
        let code = field(&flow, "default_code");
        assert_eq!(
            (code.ty, code.optional, code.lookup.clone()),
            (ValueType::String, false, None)
        );

        // An inbox at the root does not give `//archive`.
        let root = import(
            &parse(&upsert("", "", "").replace("/in/products/", "/")),
            "p",
        );
        assert_eq!(
            (root.inbox.as_str(), root.archive.as_str()),
            ("/", "/archive")
        );
    }

    #[test]
    fn given_values_replace_the_defaults() {
        let dir = folder();
        let text = upsert(
            "pattern = \"*.XML\"\narchive = \"done/{yyyy}-{mm}-{dd}/{name}\"\nerror = \"bad/\"\n\
             settle = \"500ms\"\nsettle_max = \"2h\"\nmin_age = \"15m\"\ndone_marker = \".ok\"\n\
             done_marker_replaces_extension = true\nmax_file_size = \"500MB\"\non_record_error = \"fail_file\"\n\
             every = \"15m\"",
            "",
            "",
        )
        .replace("[odoo]\n", "[odoo]\nbatch_size = 50\ntimeout = \"2m\"\nmax_concurrency = 8\nprotocol = \"json2\"\n")
        .replace("[partners.demo]\nroot = \"demo\"", "[partners.demo]\nroot = \"/srv/demo\"\ntimezone = \"America/New_York\"\nmax_sessions = 5")
        + "[ledger]\npath = \"state/ledger.db\"\nspool = \"/var/spool/edi\"\n[server]\nlisten = \"0.0.0.0:9000\"\n";
        let config = parse_in(dir.path(), &text).unwrap_or_else(|e| panic!("{e}"));
        let base = std::path::absolute(dir.path()).unwrap();
        assert_eq!(config.odoo.batch_size, 50);
        assert_eq!(config.odoo.timeout, Duration::from_secs(120));
        assert_eq!(config.odoo.max_concurrency, 8);
        assert_eq!(
            config.odoo.connection.as_ref().unwrap().protocol,
            Protocol::Json2
        );
        assert_eq!(config.ledger.path, base.join("state/ledger.db"));
        assert_eq!(
            config.spool,
            PathBuf::from("/var/spool/edi"),
            "absolute paths stay"
        );
        assert_eq!(config.server.listen, "0.0.0.0:9000".parse().unwrap());
        let demo = &config.partners["demo"];
        assert!(
            matches!(&demo.transport, PartnerTransport::Local { root } if root == Path::new("/srv/demo"))
        );
        assert_eq!(demo.timezone.iana_name(), Some("America/New_York"));
        assert_eq!(demo.max_sessions, 5);
        assert!(
            matches!(config.flows["p"].schedule, Some(Schedule::Every(d)) if d == Duration::from_secs(900))
        );
        let flow = import(&config, "p");
        assert!(flow.pattern.matches("a.XML") && !flow.pattern.matches("a.xml"));
        assert_eq!(flow.archive, "done/{yyyy}-{mm}-{dd}/{name}");
        assert_eq!(flow.error, "bad");
        assert_eq!(flow.settle, Duration::from_millis(500));
        assert_eq!(flow.settle_max, Duration::from_secs(7200));
        assert_eq!(flow.min_age, Some(Duration::from_secs(900)));
        assert_eq!(
            flow.done_marker,
            Some(DoneMarker {
                suffix: ".ok".to_string(),
                replaces_extension: true
            })
        );
        assert_eq!(flow.max_file_size, 500_000_000);
        assert_eq!(flow.on_record_error, OnRecordError::FailFile);
    }

    #[test]
    fn durations_are_checked() {
        refused(
            &upsert("settle = \"10\"", "", ""),
            "flows.p.settle",
            "\"500ms\", \"10s\", \"15m\" or \"12h\"",
        );
        refused(&upsert("settle = 10", "", ""), "flows.p.settle", "found 10");
        refused(
            &upsert("settle_max = \"5s\"", "", ""),
            "flows.p.settle_max",
            "at least settle",
        );
        refused(
            &upsert("min_age = \"soon\"", "", ""),
            "flows.p.min_age",
            "duration",
        );
        refused(
            &upsert("every = \"0s\"", "", ""),
            "flows.p.every",
            "longer than zero",
        );
        refused(
            &format!("{ODOO}timeout = \"1 fortnight\"\n"),
            "odoo.timeout",
            "duration",
        );
        refused(
            &format!("{ODOO}{ACME}keepalive = \"0ms\"\n"),
            "partners.acme.keepalive",
            "longer than zero",
        );
        refused(
            &format!("{ODOO}{ACME}connect_timeout = true\n"),
            "partners.acme.connect_timeout",
            "duration",
        );
        refused(
            &format!("{ODOO}{ACME}timeout = \"x\"\n"),
            "partners.acme.timeout",
            "duration",
        );
    }

    #[test]
    fn max_file_size_takes_bytes_or_a_unit() {
        let size = |v: &str| {
            import(
                &parse(&upsert(&format!("max_file_size = {v}"), "", "")),
                "p",
            )
            .max_file_size
        };
        assert_eq!(size("1048576"), 1_048_576);
        assert_eq!(size("\"2GB\""), 2_000_000_000);
        assert_eq!(size("\"2GiB\""), 2 << 30);
        assert_eq!(size("\"64 KiB\""), 65_536);
        assert_eq!(size("\"100\""), 100);
        for bad in ["\"2XB\"", "0", "-5", "\"GB\"", "1.5"] {
            refused(
                &upsert(&format!("max_file_size = {bad}"), "", ""),
                "flows.p.max_file_size",
                "a size such as",
            );
        }
    }

    #[test]
    fn odoo_connection_rules() {
        refused(
            &ODOO.replace("url = \"https://erp.example.com\"\n", ""),
            "odoo.url",
            "dry_run = true",
        );
        refused(
            &ODOO.replace("https://erp.example.com", "erp.example.com"),
            "odoo.url",
            "http:// or https://",
        );
        refused(
            &ODOO.replace("database = \"prod\"\n", ""),
            "odoo.database",
            "missing",
        );
        refused(
            &ODOO.replace("login = \"edi@example.com\"\n", ""),
            "odoo.login",
            "missing",
        );
        refused(
            &ODOO.replace("api_key = \"${ODOO_API_KEY}\"\n", ""),
            "odoo.api_key",
            "api_key",
        );
        refused(
            &format!("{ODOO}password = \"pw\"\n"),
            "odoo.password",
            "either api_key or password",
        );
        refused(
            &format!("{ODOO}protocol = \"xmlrpc\"\n"),
            "odoo.protocol",
            "\"auto\", \"jsonrpc\" or \"json2\"",
        );
        refused(
            &ODOO.replace(
                "api_key = \"${ODOO_API_KEY}\"",
                "password = \"pw\"\nprotocol = \"json2\"",
            ),
            "odoo.protocol",
            "API key",
        );
        refused(
            &format!("{ODOO}batch_size = 0\n"),
            "odoo.batch_size",
            "from 1 to 10000",
        );
        refused(
            &format!("{ODOO}batch_size = 10001\n"),
            "odoo.batch_size",
            "from 1 to 10000",
        );
        refused(
            &format!("{ODOO}max_concurrency = \"many\"\n"),
            "odoo.max_concurrency",
            "whole number",
        );
        refused(
            &format!("{ODOO}dry_run = \"yes\"\n"),
            "odoo.dry_run",
            "true or false",
        );
        refused(
            "[odoo]\ndry_run = true\ndatabase = \"prod\"\n",
            "odoo.database",
            "without odoo.url",
        );

        let config = parse(&ODOO.replace("https://erp.example.com", "http://localhost:8069//"));
        let connection = config.odoo.connection.unwrap();
        assert_eq!(connection.url, "http://localhost:8069");
        assert_eq!(connection.credential.secret(), "odoo-key");
        let config = parse(&ODOO.replace(
            "api_key = \"${ODOO_API_KEY}\"",
            "password = \"pw\"\nprotocol = \"jsonrpc\"\ndry_run = true",
        ));
        assert!(config.odoo.dry_run);
        let connection = config.odoo.connection.unwrap();
        assert!(matches!(connection.credential, Credential::Password(ref p) if p == "pw"));
        assert_eq!(connection.protocol, Protocol::JsonRpc);
        assert!(
            parse("[odoo]\ndry_run = \"true\"\n")
                .odoo
                .connection
                .is_none()
        );
    }

    #[test]
    fn server_rules() {
        refused(
            &format!("{ODOO}[server]\nlisten = \"localhost\"\n"),
            "server.listen",
            "127.0.0.1:8480",
        );
        refused(
            &format!("{ODOO}[server]\ntoken = \"\"\n"),
            "server.token",
            "empty",
        );
        refused(&format!("server = 5\n{ODOO}"), "server", "expected a table");
    }

    #[test]
    fn sftp_partner_rules() {
        let acme = |from: &str, to: &str| format!("{ODOO}{}", ACME.replace(from, to));
        refused(
            &format!("{ODOO}[partners.\"ac me\"]\nroot = \"x\"\n"),
            "partners.\"ac me\"",
            "not a usable partner name",
        );
        refused(
            &format!("{ODOO}{ACME}root = \"x\"\n"),
            "partners.acme.root",
            "not both",
        );
        refused(
            &format!("{ODOO}[partners.x]\ntimezone = \"UTC\"\n"),
            "partners.x",
            "host",
        );
        refused(
            &acme("user = \"odoo\"\n", ""),
            "partners.acme.user",
            "missing",
        );
        refused(
            &format!("{ODOO}{ACME}password = \"pw\"\n"),
            "partners.acme.password",
            "either key_file or password",
        );
        refused(
            &acme("key_file = \"keys/acme_ed25519\"\n", ""),
            "partners.acme.key_file",
            "password",
        );
        refused(
            &acme(
                "key_file = \"keys/acme_ed25519\"",
                "password = \"pw\"\nkey_passphrase = \"x\"",
            ),
            "partners.acme.key_passphrase",
            "only used with key_file",
        );
        refused(
            &format!("{ODOO}{ACME}known_hosts = \"kh\"\n"),
            "partners.acme.known_hosts",
            "not both",
        );
        refused(
            &format!("{ODOO}{ACME}accept_new = true\n"),
            "partners.acme.accept_new",
            "only works with known_hosts",
        );
        refused(
            &acme(
                "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
                "MD5:16:27:ac",
            ),
            "partners.acme.host_key",
            "SHA256:",
        );
        refused(
            &acme(
                "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
                "256 SHA256:47DE host (ED25519)",
            ),
            "partners.acme.host_key",
            "ssh-keygen -lf",
        );
        let err = refused(
            &acme(
                "host_key = \"SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\"\n",
                "port = 2222\n",
            ),
            "partners.acme.host_key",
            "host keys are always verified",
        );
        assert!(
            err.message
                .contains("ssh-keyscan -p 2222 sftp.acme.example"),
            "{err}"
        );
        assert!(
            err.message.contains("ssh-keygen -lf") && err.message.contains("known_hosts"),
            "{err}"
        );
        refused(
            &acme("sftp.acme.example", "sftp.acme.example:22"),
            "partners.acme.host",
            "host name",
        );
        refused(
            &format!("{ODOO}{ACME}port = 0\n"),
            "partners.acme.port",
            "from 1 to 65535",
        );
        refused(
            &format!("{ODOO}{ACME}port = 70000\n"),
            "partners.acme.port",
            "from 1 to 65535",
        );
        refused(
            &format!("{ODOO}{ACME}max_sessions = 0\n"),
            "partners.acme.max_sessions",
            "whole number",
        );
        refused(
            &format!("{ODOO}{ACME}timezone = \"Mars/Olympus\"\n"),
            "partners.acme.timezone",
            "unknown time zone",
        );
        refused(
            &format!("{ODOO}{DEMO}user = \"u\"\n"),
            "partners.demo.user",
            "SFTP setting",
        );

        let dir = folder();
        let config = parse_in(
            dir.path(),
            &acme(
                "host_key = \"SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\"",
                "known_hosts = \"keys/known_hosts\"\naccept_new = true\nkey_passphrase = \"${ACME_SFTP_PASSWORD}\"",
            ),
        )
        .unwrap();
        let PartnerTransport::Sftp(sftp) = &config.partners["acme"].transport else {
            panic!("SFTP")
        };
        let base = std::path::absolute(dir.path()).unwrap();
        assert!(
            matches!(&sftp.host_key, HostKeyPolicy::KnownHosts { path, accept_new: true } if *path == base.join("keys/known_hosts"))
        );
        assert!(
            matches!(&sftp.auth, SftpAuth::Key { passphrase: Some(p), .. } if p == "sftp-secret")
        );
        let padded = parse(&acme("hSuFU\"", "hSuFU=\""));
        let PartnerTransport::Sftp(sftp) = &padded.partners["acme"].transport else {
            panic!("SFTP")
        };
        assert!(
            matches!(&sftp.host_key, HostKeyPolicy::Fingerprint(f) if f == "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU")
        );
    }

    #[test]
    fn flow_rules() {
        let err = refused(
            &upsert("", "", "").replace("partner = \"demo\"", "partner = \"acne\""),
            "flows.p.partner",
            "no partner named \"acne\"",
        );
        assert!(err.message.contains("acme, demo"), "{err}");
        refused(
            &upsert("", "", "")
                .replace("[flows.p]", "[flows.\"p q\"]")
                .replace("[flows.p.", "[flows.\"p q\"."),
            "flows.\"p q\"",
            "not a usable flow name",
        );
        refused(
            &upsert("", "", "").replace("direction = \"import\"", "direction = \"in\""),
            "flows.p.direction",
            "\"import\" or \"export\"",
        );
        refused(
            &upsert("", "", "").replace("direction = \"import\"\n", ""),
            "flows.p.direction",
            "missing",
        );
        refused(
            &upsert("", "", "").replace("inbox = \"/in/products/\"\n", ""),
            "flows.p.inbox",
            "missing",
        );
        refused(
            &upsert("every = \"1h\"\ncron = \"0 6 * * *\"", "", ""),
            "flows.p.cron",
            "either every or cron",
        );
        let cron = parse(&upsert("cron = \"0 6,18 * * *\"", "", ""));
        assert!(
            matches!(&cron.flows["p"].schedule, Some(Schedule::Cron(c)) if c == "0 6,18 * * *")
        );
        refused(
            &upsert("pattern = \"[abc\"", "", ""),
            "flows.p.pattern",
            "invalid glob",
        );
        refused(
            &upsert("archive = \"a/{yyyy}/{hh}\"", "", ""),
            "flows.p.archive",
            "unknown placeholder {hh}",
        );
        refused(
            &upsert("archive = \"a/{yyyy\"", "", ""),
            "flows.p.archive",
            "{yyyy}, {mm}, {dd} and {name}",
        );
        refused(
            &upsert("archive = \"a/yyyy}\"", "", ""),
            "flows.p.archive",
            "`}` without `{`",
        );
        refused(
            &upsert("done_marker = \"done\"", "", ""),
            "flows.p.done_marker",
            "\".done\"",
        );
        refused(
            &upsert("done_marker = \"./x\"", "", ""),
            "flows.p.done_marker",
            "suffix",
        );
        refused(
            &upsert("done_marker_replaces_extension = true", "", ""),
            "flows.p.done_marker_replaces_extension",
            "only used with done_marker",
        );
        let marker = import(&parse(&upsert("done_marker = \".done\"", "", "")), "p").done_marker;
        assert_eq!(
            marker,
            Some(DoneMarker {
                suffix: ".done".to_string(),
                replaces_extension: false
            })
        );
        refused(
            &upsert("format = \"json\"", "", ""),
            "flows.p.format",
            "\"xml\" or \"csv\"",
        );
        refused(
            &upsert("on_record_error = \"ignore\"", "", ""),
            "flows.p.on_record_error",
            "\"skip\" or \"fail_file\"",
        );
        refused(
            &upsert("", "", "").replace("schema = \"xsd/products.xsd\"\n", ""),
            "flows.p.schema",
            "XSD",
        );
        refused(
            &upsert("", "", "").replace("xsd/products.xsd", "xsd/nope.xsd"),
            "flows.p.schema",
            "not found",
        );
        refused(
            &upsert("delimiter = \";\"", "", ""),
            "flows.p.delimiter",
            "CSV setting",
        );
        refused(
            &upsert("columns = []", "", ""),
            "flows.p.columns",
            "CSV setting",
        );
        refused(
            &xml_flow(
                "schema = \"xsd/products.xsd\"",
                "model = \"m\"\naction = \"upsert\"\nkey = [\"default_code\"]",
                "",
            )
            .replace("[flows.p.mapping]\n", "[flows.p.mappings]\n")
            .replace("[flows.p.mapping.fields]", "[flows.p.mappings.fields]"),
            "flows.p.mappings",
            "did you mean mapping?",
        );
        let whole = upsert("", "", "");
        refused(
            &whole[..whole.find("[flows.p.mapping]").unwrap()],
            "flows.p.mapping",
            "missing",
        );
    }

    #[test]
    fn export_flows_are_read_leniently() {
        let config = parse(&format!(
            "{ODOO}{DEMO}[flows.e]\npartner = \"demo\"\ndirection = \"export\"\noutbox = \"/out\"\nmark = \"x_done\"\n"
        ));
        let Direction::Export(export) = &config.flows["e"].direction else {
            panic!("export")
        };
        assert_eq!(export.mark.as_deref(), Some("x_done"));
        assert_eq!(export.schema, None);
        assert_eq!(export.template, "builtin:picking");
        assert_eq!(export.filename, "{name}.xml");
        refused(
            &format!("{ODOO}{DEMO}[flows.e]\npartner = \"demo\"\ndirection = \"export\"\n"),
            "flows.e.outbox",
            "missing",
        );
    }

    #[test]
    fn csv_flows() {
        let config = parse(&csv_flow(
            "delimiter = \"\\t\"\nencoding = \"windows-1252\"\ndecimal = \",\"",
            "",
            "qty_available = \"qty\"\ndescription = \"note\"\nweight = { path = \"qty\", type = \"string\" }",
        ));
        let flow = import(&config, "c");
        let Format::Csv(csv) = &flow.format else {
            panic!("csv")
        };
        assert_eq!(
            (csv.delimiter, csv.decimal, csv.encoding),
            (b'\t', ',', encoding_rs::WINDOWS_1252)
        );
        let names: Vec<(&str, ValueType, bool)> = csv
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.ty, c.optional))
            .collect();
        assert_eq!(
            names,
            [
                ("sku", ValueType::String, false),
                ("qty", ValueType::Float, false),
                ("note", ValueType::String, true)
            ]
        );
        assert!(flow.mapping.record.is_none());
        // A field takes its column's type and optionality unless it says otherwise.
        assert_eq!(field(&flow, "qty_available").ty, ValueType::Float);
        assert!(field(&flow, "description").optional);
        assert_eq!(field(&flow, "weight").ty, ValueType::String);
        let ValueSource::Path(path) = &field(&flow, "qty_available").source else {
            panic!("path")
        };
        assert_eq!(*path, crate::import::path::column_path("qty"));

        let defaults = import(&parse(&csv_flow("", "", "")), "c");
        let Format::Csv(csv) = &defaults.format else {
            panic!("csv")
        };
        assert_eq!(
            (csv.delimiter, csv.decimal, csv.encoding),
            (b',', '.', encoding_rs::UTF_8)
        );

        let err = refused(
            &csv_flow("", "", "name = \"Name\""),
            "flows.c.mapping.fields.name",
            "not a declared column",
        );
        assert!(err.message.contains("\"sku\", \"qty\", \"note\""), "{err}");
        refused(
            &csv_flow("", "", "name = { path = \"@sku\" }"),
            "flows.c.mapping.fields.name.path",
            "not a declared column",
        );
        refused(
            &csv_flow("delimiter = \";;\"", "", ""),
            "flows.c.delimiter",
            "one ASCII character",
        );
        refused(
            &csv_flow("delimiter = \"§\"", "", ""),
            "flows.c.delimiter",
            "one ASCII character",
        );
        refused(
            &csv_flow("encoding = \"klingon\"", "", ""),
            "flows.c.encoding",
            "unknown encoding",
        );
        refused(
            &csv_flow("decimal = \"·\"", "", ""),
            "flows.c.decimal",
            "\".\" or \",\"",
        );
        refused(
            &csv_flow("schema = \"xsd/products.xsd\"", "", ""),
            "flows.c.schema",
            "no XSD",
        );
        refused(
            &csv_flow("", "record = \"/a/b\"", ""),
            "flows.c.mapping.record",
            "XML flows",
        );
        refused(
            &csv_flow("", "namespaces = { p = \"urn:p\" }", ""),
            "flows.c.mapping.namespaces",
            "XML flows",
        );
        refused(
            &csv_flow("", "", "").replace("columns = [", "# columns = ["),
            "flows.c.columns",
            "missing",
        );
        refused(
            &csv_flow("", "", "")
                .replace("columns = [{ name = \"sku\" }, ", "columns = [")
                .replace("]\n\n", ", {name=\"x\"}]\n"),
            "flows.c.mapping.fields.default_code",
            "not a declared column",
        );
        refused(
            &csv_flow("", "", "")
                .replace("{ name = \"note\", optional = true }", "{ name = \"sku\" }"),
            "flows.c.columns[2].name",
            "declared twice",
        );
        refused(
            &csv_flow("", "", "").replace("type = \"float\"", "type = \"decimal\""),
            "flows.c.columns[1].type",
            "\"string\", \"float\", \"integer\", \"boolean\" or \"date\"",
        );
    }

    #[test]
    fn upsert_mapping_rules() {
        refused(
            &upsert("", "", "").replace("record = \"/p:Products/p:Product\"\n", ""),
            "flows.p.mapping.record",
            "absolute path",
        );
        refused(
            &upsert("", "", "").replace("/p:Products/p:Product", "//p:Product"),
            "flows.p.mapping.record",
            "`//`",
        );
        refused(
            &upsert("", "", "").replace("/p:Products/p:Product", "/q:Products"),
            "flows.p.mapping.record",
            "unknown namespace prefix `q`",
        );
        refused(
            &upsert("", "", "name = \"q:Name\""),
            "flows.p.mapping.fields.name",
            "unknown namespace prefix `q`",
        );
        refused(
            &upsert("", "", "name = { path = \"p:Name/text()\" }"),
            "flows.p.mapping.fields.name.path",
            "functions",
        );
        refused(
            &upsert("", "", "name = \"\""),
            "flows.p.mapping.fields.name",
            "empty",
        );
        refused(
            &upsert("", "", "name = 5"),
            "flows.p.mapping.fields.name",
            "a path string",
        );
        refused(
            &upsert("", "", "").replace(
                "namespaces = { p = \"urn:p\" }",
                "namespaces = { \"1p\" = \"urn:p\" }",
            ),
            "flows.p.mapping.namespaces.1p",
            "usable prefix",
        );
        refused(
            &upsert("", "", "").replace("action = \"upsert\"", "action = \"confirm_delivery\""),
            "flows.p.mapping.action",
            "not supported yet",
        );
        refused(
            &upsert("", "", "").replace("action = \"upsert\"", "action = \"delete\""),
            "flows.p.mapping.action",
            "\"upsert\" or \"set_stock\"",
        );
        refused(
            &upsert("", "", "").replace("model = \"product.product\"\n", ""),
            "flows.p.mapping.model",
            "missing",
        );
        refused(
            &upsert("", "", "").replace("key = [\"default_code\"]\n", ""),
            "flows.p.mapping.key",
            "missing",
        );
        refused(
            &upsert("", "", "").replace("key = [\"default_code\"]", "key = []"),
            "flows.p.mapping.key",
            "at least one",
        );
        refused(
            &upsert("", "", "").replace("key = [\"default_code\"]", "key = \"default_code\""),
            "flows.p.mapping.key",
            "expected an array",
        );
        refused(
            &upsert("", "", "").replace("key = [\"default_code\"]", "key = [\"barcode\"]"),
            "flows.p.mapping.key",
            "\"barcode\" is not mapped",
        );
        refused(
            &upsert("", "", "").replace(
                "default_code = \"@sku\"",
                "default_code = { path = \"@sku\", optional = true }",
            ),
            "flows.p.mapping.key",
            "optional",
        );
        refused(
            &upsert("", "", "").replace("[flows.p.mapping.fields]\ndefault_code = \"@sku\"\n", ""),
            "flows.p.mapping.fields",
            "missing",
        );
        refused(
            &upsert("", "product = \"Sku\"", ""),
            "flows.p.mapping.product",
            "set_stock setting",
        );
        refused(
            &upsert("", "", "\"x y\" = \"a\""),
            "flows.p.mapping.fields.\"x y\"",
            "not an Odoo field name",
        );
        refused(
            &upsert(
                "",
                "",
                "list_price = { path = \"p:Price\", type = \"money\" }",
            ),
            "flows.p.mapping.fields.list_price.type",
            "\"float\"",
        );
        refused(
            &upsert("", "", "list_price = { path = \"p:Price\", value = 1 }"),
            "flows.p.mapping.fields.list_price.value",
            "not both",
        );
        refused(
            &upsert("", "", "list_price = { type = \"float\" }"),
            "flows.p.mapping.fields.list_price.path",
            "value = ",
        );
        refused(
            &upsert("", "", "sale_ok = { value = true, optional = true }"),
            "flows.p.mapping.fields.sale_ok.optional",
            "always present",
        );
        refused(
            &upsert(
                "",
                "",
                "uom_id = { path = \"p:Unit\", lookup = { model = \"uom.uom\" } }",
            ),
            "flows.p.mapping.fields.uom_id.lookup.field",
            "missing",
        );
        refused(
            &upsert(
                "",
                "",
                "uom_id = { path = \"p:Unit\", lookup = \"uom.uom\" }",
            ),
            "flows.p.mapping.fields.uom_id.lookup",
            "model = ",
        );
        refused(
            &upsert("", "", "uom_id = { path = \"p:Unit\", optional = 1 }"),
            "flows.p.mapping.fields.uom_id.optional",
            "true or false",
        );
        refused(
            &upsert("", "", "x = { value = nan }"),
            "flows.p.mapping.fields.x.value",
            "finite",
        );
    }

    #[test]
    fn constants_become_json_values() {
        let flow = import(
            &parse(&upsert(
                "",
                "",
                "is_storable = { value = true }\nsequence = { value = 10 }\nweight = { value = 0.5 }\n\
                 type = { value = \"consu\" }\ntags = { value = [1, \"two\"] }\n\
                 meta = { value = { a = { b = false } } }\nsince = { value = 2024-01-31 }\n\
                 categ_id = { value = \"All/Saleable\", lookup = { model = \"product.category\", field = \"complete_name\" } }\n\
                 code = { value = 7, type = \"string\" }",
            )),
            "p",
        );
        let constant = |name: &str| match &field(&flow, name).source {
            ValueSource::Constant(value) => (value.clone(), field(&flow, name).ty),
            ValueSource::Path(path) => panic!("path {}", path.text),
        };
        use serde_json::json;
        assert_eq!(constant("is_storable"), (json!(true), ValueType::Boolean));
        assert_eq!(constant("sequence"), (json!(10), ValueType::Integer));
        assert_eq!(constant("weight"), (json!(0.5), ValueType::Float));
        assert_eq!(constant("type"), (json!("consu"), ValueType::String));
        assert_eq!(constant("tags").0, json!([1, "two"]));
        assert_eq!(constant("meta").0, json!({"a": {"b": false}}));
        assert_eq!(constant("since"), (json!("2024-01-31"), ValueType::Date));
        assert_eq!(constant("code"), (json!(7), ValueType::String));
        assert_eq!(
            field(&flow, "categ_id").lookup,
            lookup("product.category", "complete_name")
        );
    }

    #[test]
    fn field_paths_are_resolved_through_the_mapping_namespaces() {
        let flow = import(
            &parse(&upsert(
                "",
                "",
                "barcode = \"p:Id[@scheme='gtin']/@value\"\nname = \"p:Name\"",
            )),
            "p",
        );
        let ValueSource::Path(path) = &field(&flow, "barcode").source else {
            panic!("path")
        };
        assert_eq!(path.steps[0].name.ns.as_deref(), Some("urn:p"));
        assert_eq!(path.steps[0].predicate.as_ref().unwrap().value, "gtin");
        assert_eq!(path.attr.as_ref().unwrap().local, "value");
        assert_eq!(path.text, "p:Id[@scheme='gtin']/@value");
        let record = flow.mapping.record.as_ref().unwrap();
        assert!(
            record
                .steps
                .iter()
                .all(|s| s.name.ns.as_deref() == Some("urn:p"))
        );
        assert_eq!(flow.mapping.namespaces["p"], "urn:p");
    }

    #[test]
    fn set_stock_mapping_rules() {
        let flow = import(
            &parse(&set_stock(
                "model = \"stock.quant\"\nproduct = { path = \"Ean\", by = \"barcode\" }\nquantity = { path = \"Qty\" }\n\
                 location = { path = \"Loc\", by = \"barcode\" }\nlot = \"Lot\"\nsnapshot = \"full\"",
            )),
            "s",
        );
        let set = set_stock_of(&flow);
        assert_eq!(set.product.field, "product_id");
        assert_eq!(set.product.lookup, lookup("product.product", "barcode"));
        assert_eq!(path_text(&set.quantity), "Qty");
        assert_eq!(set.quantity.field, "inventory_quantity");
        assert_eq!(path_text(&set.location), "Loc");
        assert_eq!(set.location.field, "location_id");
        assert_eq!(set.location.lookup, lookup("stock.location", "barcode"));
        let lot = set.lot.as_ref().unwrap();
        assert_eq!((lot.field.as_str(), lot.optional), ("lot_id", false));
        assert_eq!(set.snapshot, Snapshot::Full);

        let plain = import(&parse(&set_stock(STOCK)), "s");
        let set = set_stock_of(&plain);
        assert_eq!(
            set.product.lookup,
            lookup("product.product", "default_code")
        );
        assert!(set.lot.is_none());
        assert_eq!(set.snapshot, Snapshot::Partial);
        let by_path = import(
            &parse(&set_stock(
                &STOCK.replace("\"WH/Stock\"", "{ path = \"Loc\" }"),
            )),
            "s",
        );
        assert_eq!(
            set_stock_of(&by_path).location.lookup,
            lookup("stock.location", "complete_name")
        );

        refused(
            &set_stock(&format!("{STOCK}model = \"stock.move\"")),
            "flows.s.mapping.model",
            "stock.quant",
        );
        refused(
            &set_stock(&format!("{STOCK}key = [\"product_id\"]")),
            "flows.s.mapping.key",
            "upsert setting",
        );
        refused(
            &set_stock(&format!("{STOCK}[flows.s.mapping.fields]\na = \"b\"")),
            "flows.s.mapping.fields",
            "upsert setting",
        );
        refused(
            &set_stock(&STOCK.replace("product = \"Sku\"\n", "")),
            "flows.s.mapping.product",
            "missing",
        );
        refused(
            &set_stock(&STOCK.replace("quantity = \"OnHand\"\n", "")),
            "flows.s.mapping.quantity",
            "missing",
        );
        refused(
            &set_stock(&STOCK.replace("location = \"WH/Stock\"\n", "")),
            "flows.s.mapping.location",
            "missing",
        );
        refused(
            &set_stock(&STOCK.replace("\"Sku\"", "{ path = \"Sku\", by = \"bad name\" }")),
            "flows.s.mapping.product.by",
            "field name",
        );
        refused(
            &set_stock(&STOCK.replace("\"Sku\"", "{ by = \"barcode\" }")),
            "flows.s.mapping.product.path",
            "missing",
        );
        refused(
            &set_stock(&STOCK.replace("\"OnHand\"", "{ path = \"OnHand\", type = \"integer\" }")),
            "flows.s.mapping.quantity.type",
            "unknown key",
        );
        refused(
            &set_stock(&STOCK.replace("\"WH/Stock\"", "{ path = \"Loc\", by = \"name\" }")),
            "flows.s.mapping.location.by",
            "\"barcode\" or \"complete_name\"",
        );
        refused(
            &set_stock(&STOCK.replace("\"OnHand\"", "\"../OnHand\"")),
            "flows.s.mapping.quantity",
            "`..`",
        );
        refused(
            &set_stock(&format!("{STOCK}snapshot = \"all\"")),
            "flows.s.mapping.snapshot",
            "\"partial\" or \"full\"",
        );
        refused(
            &set_stock(&format!("{STOCK}lot = {{ optional = true }}")),
            "flows.s.mapping.lot.path",
            "missing",
        );
    }
}
