//! `[odoo]`: the Odoo server written to, how edi-bridge logs in, and how hard it is pushed.

use std::time::Duration;

use super::ConfigError;
use super::read::{Item, Node};

/// `[odoo]`: the server written to and how hard it is pushed.
#[derive(Debug, Clone)]
pub struct OdooConfig {
    /// `None` only when `dry_run = true` and no `url` is given.
    pub connection: Option<OdooConnection>,
    /// Print the operations instead of sending them; files still move.
    pub dry_run: bool,
    /// Records per Odoo call (default 200).
    pub batch_size: usize,
    /// Timeout of one Odoo call (`timeout`, default "60s"). A busy database answers
    /// `SerializationFailure` only after Odoo's own five retries, 15–18 s later (recorded on
    /// 18 and 19): the default leaves room for that answer, which is transient.
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
    /// `jsonrpc`: `/jsonrpc` (Odoo 17–19).
    JsonRpc,
    /// `json2`: `/json/2/<model>/<method>` with a bearer API key (Odoo 19+).
    Json2,
}

pub(super) fn parse_odoo(mut t: Node) -> Result<OdooConfig, ConfigError> {
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

pub(super) fn parse_odoo_connection(
    url: Item,
    t: &mut Node,
) -> Result<OdooConnection, ConfigError> {
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
