//! The TOML configuration, parsed and checked once into typed values.
//!
//! Every error names the TOML key (e.g. `flows.acme-products.settle`) and what is expected.
//! `"${NAME}"` in any string reads environment variable NAME; durations are `"500ms"`, `"10s"`,
//! `"15m"`, `"12h"`; relative paths are relative to the config file; unknown keys are rejected.
//! Whole numbers and `true`/`false` may also be written as strings, so they can come from
//! `${NAME}` too.
//! The runtime never looks anything up by string in the raw TOML: it gets these types.

mod export;
mod flow;
mod import;
mod ledger;
mod mapping;
mod odoo;
mod partner;
mod read;
mod server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use export::{ExportFlow, FILENAME_PLACEHOLDERS, Template};
pub use flow::{Direction, Flow, Schedule};
pub use import::{DoneMarker, ImportFlow, OnRecordError};
pub use ledger::LedgerConfig;
pub use odoo::{Credential, OdooConfig, OdooConnection, Protocol};
pub use partner::{HostKeyPolicy, Partner, PartnerTransport, SftpAuth, SftpPartner};
pub use server::ServerConfig;

use crate::error::Consequence;
use flow::parse_flow;
use ledger::parse_ledger;
use odoo::parse_odoo;
use partner::parse_partner;
use read::{Ctx, Item, Node, expand_env, join_key};
use server::parse_server;

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

#[cfg(test)]
mod tests;
