//! The Odoo client: one logged-in connection to one Odoo server, speaking JSON-2
//! (`/json/2/<model>/<method>`, Odoo 19+) or JSON-RPC (`/jsonrpc`, Odoo 17–19).
//!
//! Callers name a method's arguments once ([`OdooClient::call`]); the client sends them as
//! JSON-2's flat object or as JSON-RPC `execute_kw` positional/keyword arguments. Every failure
//! is classified where the answer is parsed ([`OdooError`]). Calls are bounded per server
//! (`max_concurrency`), each has the configured `timeout`, and only idempotent reads are
//! retried here — whether a write is retried is the caller's decision.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap};
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

use crate::config::{Credential, OdooConfig, Protocol};
pub use crate::odoo::error::OdooError;
use crate::odoo::error::{LoginInfo, classify, is_unavailable_status};

/// Named arguments or a context: a JSON object.
pub type Args = Map<String, Value>;

/// Methods that only read: safe to send again after an outage.
const IDEMPOTENT: &[&str] = &[
    "search_read",
    "read",
    "fields_get",
    "search_count",
    "search",
    "context_get",
];

/// How a method's named arguments travel over JSON-RPC `execute_kw`: these go positionally,
/// in this order, after the record ids of a record method; every other argument is a keyword.
/// Only the methods edi-bridge calls are listed; an unlisted method sends all its arguments
/// as keywords.
const POSITIONAL: &[(&str, &[&str])] = &[
    ("search_read", &["domain"]),
    ("search", &["domain"]),
    ("search_count", &["domain"]),
    ("create", &["vals_list"]),
    ("write", &["vals"]),
    ("load", &["fields", "data"]),
    ("check_access_rights", &["operation"]),
    ("has_access", &["operation"]),
    ("export_data", &["fields_to_export"]),
];

/// How reads are retried after an outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = no retry).
    pub attempts: u32,
    /// Wait before the second attempt; doubled each time.
    pub first_delay: Duration,
    /// Longest wait between two attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

/// Paging, order and context of a [`OdooClient::search_read`].
#[derive(Debug, Clone, Default)]
pub struct SearchOptions {
    /// At most this many records.
    pub limit: Option<u64>,
    /// Skip this many records first.
    pub offset: Option<u64>,
    /// E.g. `"scheduled_date asc, id asc"`.
    pub order: Option<String>,
    /// E.g. `{"active_test": false}` to find archived records too.
    pub context: Option<Args>,
}

/// The answer of `load(fields, rows)`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadResult {
    /// The record ids, one per row; `None` when any row failed (then nothing was applied).
    pub ids: Option<Vec<i64>>,
    pub messages: Vec<LoadMessage>,
}

/// One message of a `load`: which row, which field, what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadMessage {
    /// `error` or `warning`.
    pub kind: String,
    /// Index of the record (row) the message is about.
    pub record: Option<i64>,
    /// Technical field name, when known.
    pub field: Option<String>,
    pub message: String,
}

enum Wire {
    Json2,
    JsonRpc { uid: i64 },
}

/// A logged-in connection to one Odoo server. Share it (`Arc`) between the flows that use
/// the same server: the concurrency bound is per client.
pub struct OdooClient {
    http: reqwest::Client,
    url: String,
    secret: String,
    login: LoginInfo,
    wire: Wire,
    server_version: Option<String>,
    timeout: Duration,
    permits: Semaphore,
    retry: RetryPolicy,
    counters: Mutex<BTreeMap<String, u64>>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for OdooClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret never reaches logs.
        f.debug_struct("OdooClient")
            .field("url", &self.url)
            .field("database", &self.login.database)
            .field("login", &self.login.login)
            .field("protocol", &self.protocol())
            .field("server_version", &self.server_version)
            .finish_non_exhaustive()
    }
}

impl OdooClient {
    /// Connects and logs in: picks the protocol (`auto` takes JSON-2 when the server has it
    /// and an API key is configured), checks the credentials once, and fails with a clear
    /// [`OdooError`] (credentials and database problems stop the flow).
    pub async fn connect(cfg: &OdooConfig) -> Result<OdooClient, OdooError> {
        let Some(conn) = cfg.connection.as_ref() else {
            return Err(OdooError::Config {
                message: "no [odoo] url is configured (only a dry run works without one)".into(),
            });
        };
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(15)))
            // A redirect means "not this API" (Odoo 18 redirects /json/2 to its login page).
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| OdooError::Config {
                message: format!("cannot set up the HTTP client: {e}"),
            })?;
        let credential_kind = match conn.credential {
            Credential::ApiKey(_) => "API key",
            Credential::Password(_) => "password",
        };
        let mut client = OdooClient {
            http,
            url: conn.url.trim_end_matches('/').to_string(),
            secret: conn.credential.secret().to_string(),
            login: LoginInfo {
                database: conn.database.clone(),
                login: conn.login.clone(),
                credential_kind,
            },
            wire: Wire::JsonRpc { uid: 0 },
            server_version: None,
            timeout: cfg.timeout,
            permits: Semaphore::new(cfg.max_concurrency.max(1)),
            retry: RetryPolicy::default(),
            counters: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
        };
        let is_key = matches!(conn.credential, Credential::ApiKey(_));
        let use_json2 = match conn.protocol {
            Protocol::JsonRpc => false,
            Protocol::Json2 if !is_key => {
                return Err(OdooError::Config {
                    message: "protocol \"json2\" needs an api_key (JSON-2 does not accept a \
                              password)"
                        .into(),
                });
            }
            Protocol::Json2 => {
                client.server_version = client.probe_json2().await?;
                true
            }
            Protocol::Auto => {
                let version = client.probe_json2().await?;
                let has_json2 = version.is_some();
                client.server_version = version;
                has_json2 && is_key
            }
        };
        if use_json2 {
            client.wire = Wire::Json2;
            // One cheap authenticated call: a refused key or an unknown database shows now,
            // not in the middle of the first file.
            client
                .call("res.users", "context_get", None, Args::new(), None)
                .await?;
        } else {
            client.login_jsonrpc().await?;
        }
        tracing::info!(
            url = %client.url,
            database = %client.login.database,
            protocol = ?client.protocol(),
            version = client.server_version.as_deref().unwrap_or("?"),
            "connected to Odoo"
        );
        Ok(client)
    }

    /// Replaces the retry policy of idempotent reads.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The protocol in use: [`Protocol::Json2`] or [`Protocol::JsonRpc`], never `Auto`.
    pub fn protocol(&self) -> Protocol {
        match self.wire {
            Wire::Json2 => Protocol::Json2,
            Wire::JsonRpc { .. } => Protocol::JsonRpc,
        }
    }

    /// The server's version, e.g. `"18.0"` (when the server said).
    pub fn server_version(&self) -> Option<&str> {
        self.server_version.as_deref()
    }

    /// The server's major version, e.g. 18 (field names differ between versions).
    pub fn server_major(&self) -> Option<u32> {
        let v = self.server_version.as_deref()?;
        // "saas~18.2" and "18.0" alike.
        let digits: String = v
            .trim_start_matches(|c: char| !c.is_ascii_digit())
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        digits.parse().ok()
    }

    /// The user id (JSON-RPC only; JSON-2 identifies the user by the key).
    pub fn uid(&self) -> Option<i64> {
        match self.wire {
            Wire::JsonRpc { uid } => Some(uid),
            Wire::Json2 => None,
        }
    }

    /// Calls sent so far per method (`search_read`, `create`, `authenticate`, …), retries
    /// included: what the server actually had to serve.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.counters.lock().expect("call counters").clone()
    }

    /// Calls `method` on `model` with named arguments (the method's own Python argument
    /// names: `domain`, `fields`, `vals_list`, `vals`, …). `ids` are the records of a record
    /// method. Returns Odoo's value; a method that returns nothing gives `null`.
    pub async fn call(
        &self,
        model: &str,
        method: &str,
        ids: Option<Vec<i64>>,
        args: Map<String, Value>,
        context: Option<Map<String, Value>>,
    ) -> Result<Value, OdooError> {
        let what = format!("{model}.{method}");
        let attempts = if IDEMPOTENT.contains(&method) {
            self.retry.attempts.max(1)
        } else {
            1
        };
        let mut delay = self.retry.first_delay;
        let mut attempt = 1;
        loop {
            let result = match self.wire {
                Wire::Json2 => {
                    let mut body = args.clone();
                    if let Some(ids) = &ids {
                        body.insert("ids".into(), json!(ids));
                    }
                    if let Some(ctx) = &context {
                        body.insert("context".into(), Value::Object(ctx.clone()));
                    }
                    self.post_json2(&what, model, method, Value::Object(body))
                        .await
                }
                Wire::JsonRpc { uid } => {
                    let (positional, keywords) =
                        jsonrpc_arguments(method, ids.as_deref(), &args, context.as_ref());
                    let params = json!({
                        "service": "object",
                        "method": "execute_kw",
                        "args": [
                            self.login.database, uid, self.secret, model, method,
                            positional, keywords
                        ],
                    });
                    self.post_jsonrpc(&what, method, params).await
                }
            };
            match result {
                Err(e)
                    if attempt < attempts
                        && e.consequence() == crate::error::Consequence::Retry =>
                {
                    tracing::warn!(call = %what, attempt, error = %e, "Odoo read failed, retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.retry.max_delay);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// `search_read(domain, fields, …)`: the matching records with the given fields (and `id`).
    pub async fn search_read(
        &self,
        model: &str,
        domain: Value,
        fields: &[&str],
        options: SearchOptions,
    ) -> Result<Vec<Map<String, Value>>, OdooError> {
        let mut args = Args::new();
        args.insert("domain".into(), domain);
        args.insert("fields".into(), json!(fields));
        if let Some(limit) = options.limit {
            args.insert("limit".into(), json!(limit));
        }
        if let Some(offset) = options.offset {
            args.insert("offset".into(), json!(offset));
        }
        if let Some(order) = options.order {
            args.insert("order".into(), json!(order));
        }
        let value = self
            .call(model, "search_read", None, args, options.context)
            .await?;
        records(&format!("{model}.search_read"), value)
    }

    /// `read(ids, fields)`: missing ids are simply absent from the answer.
    pub async fn read(
        &self,
        model: &str,
        ids: &[i64],
        fields: &[&str],
        context: Option<Args>,
    ) -> Result<Vec<Map<String, Value>>, OdooError> {
        let mut args = Args::new();
        args.insert("fields".into(), json!(fields));
        let value = self
            .call(model, "read", Some(ids.to_vec()), args, context)
            .await?;
        records(&format!("{model}.read"), value)
    }

    /// `search_count(domain)`.
    pub async fn search_count(
        &self,
        model: &str,
        domain: Value,
        context: Option<Args>,
    ) -> Result<u64, OdooError> {
        let mut args = Args::new();
        args.insert("domain".into(), domain);
        let value = self
            .call(model, "search_count", None, args, context)
            .await?;
        value
            .as_u64()
            .ok_or_else(|| protocol_error(&format!("{model}.search_count"), &value))
    }

    /// `create(vals_list)`: one id per dict, in order — always a list, whatever the protocol
    /// (JSON-RPC answers a bare id for a single dict).
    pub async fn create(
        &self,
        model: &str,
        vals_list: Vec<Map<String, Value>>,
        context: Option<Args>,
    ) -> Result<Vec<i64>, OdooError> {
        let mut args = Args::new();
        args.insert("vals_list".into(), json!(vals_list));
        let value = self.call(model, "create", None, args, context).await?;
        let what = format!("{model}.create");
        match &value {
            Value::Number(n) => n.as_i64().map(|id| vec![id]),
            Value::Array(items) => items.iter().map(Value::as_i64).collect(),
            _ => None,
        }
        .ok_or_else(|| protocol_error(&what, &value))
    }

    /// `write(ids, vals)`.
    pub async fn write(
        &self,
        model: &str,
        ids: &[i64],
        vals: Map<String, Value>,
        context: Option<Args>,
    ) -> Result<(), OdooError> {
        let mut args = Args::new();
        args.insert("vals".into(), Value::Object(vals));
        self.call(model, "write", Some(ids.to_vec()), args, context)
            .await?;
        Ok(())
    }

    /// `load(fields, rows)`: Odoo's import. All cells are strings; an `id` column holds
    /// external ids (`module.name`), so a second load of the same rows updates.
    pub async fn load(
        &self,
        model: &str,
        fields: &[&str],
        rows: Vec<Vec<String>>,
        context: Option<Args>,
    ) -> Result<LoadResult, OdooError> {
        let mut args = Args::new();
        args.insert("fields".into(), json!(fields));
        args.insert("data".into(), json!(rows));
        let value = self.call(model, "load", None, args, context).await?;
        parse_load(&format!("{model}.load"), value)
    }

    /// `fields_get(allfields, attributes)`: field name → its attributes (`string`, `type`,
    /// `required`, `readonly`, `relation`, …).
    pub async fn fields_get(
        &self,
        model: &str,
        fields: Option<&[&str]>,
        attributes: &[&str],
    ) -> Result<Map<String, Value>, OdooError> {
        let mut args = Args::new();
        if let Some(fields) = fields {
            args.insert("allfields".into(), json!(fields));
        }
        args.insert("attributes".into(), json!(attributes));
        match self.call(model, "fields_get", None, args, None).await? {
            Value::Object(map) => Ok(map),
            other => Err(protocol_error(&format!("{model}.fields_get"), &other)),
        }
    }

    fn count(&self, method: &str) {
        *self
            .counters
            .lock()
            .expect("call counters")
            .entry(method.to_string())
            .or_insert(0) += 1;
    }

    /// Asks whether the server speaks JSON-2: `GET /json/version` answers the version on
    /// Odoo 19+, while Odoo 18 redirects it to the login page and older servers answer 404.
    /// Returns the version when JSON-2 is there.
    async fn probe_json2(&self) -> Result<Option<String>, OdooError> {
        let what = "GET /json/version";
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
        self.count("version");
        let response = self
            .http
            .get(format!("{}/json/version", self.url))
            .send()
            .await
            .map_err(|e| self.transport_error(what, e))?;
        let status = response.status();
        if is_unavailable_status(status.as_u16()) || status.is_server_error() {
            return Err(OdooError::Unavailable {
                call: what.into(),
                status: status.as_u16(),
            });
        }
        if status != StatusCode::OK {
            return Ok(None);
        }
        let body: Value = match response.json().await {
            Ok(v) => v,
            Err(_) => return Ok(None),
        };
        let major = body
            .get("version_info")
            .and_then(|v| v.get(0))
            .and_then(Value::as_u64);
        match (major, body.get("version").and_then(Value::as_str)) {
            (Some(m), Some(version)) if m >= 19 => Ok(Some(version.to_string())),
            _ => Ok(None),
        }
    }

    /// JSON-RPC login: `common.version` for the version, then
    /// `common.authenticate(db, login, secret, {})`, which answers `false` for a bad secret.
    async fn login_jsonrpc(&mut self) -> Result<(), OdooError> {
        let version = self
            .post_jsonrpc(
                "common.version",
                "version",
                json!({"service": "common", "method": "version", "args": []}),
            )
            .await?;
        if let Some(v) = version.get("server_version").and_then(Value::as_str) {
            self.server_version = Some(v.to_string());
        }
        let uid = self
            .post_jsonrpc(
                "common.authenticate",
                "authenticate",
                json!({
                    "service": "common",
                    "method": "authenticate",
                    "args": [self.login.database, self.login.login, self.secret, {}],
                }),
            )
            .await?;
        match uid.as_i64() {
            Some(uid) => {
                self.wire = Wire::JsonRpc { uid };
                Ok(())
            }
            None if uid == Value::Bool(false) => {
                Err(self.login.refused("authenticate answered false"))
            }
            None => Err(protocol_error("common.authenticate", &uid)),
        }
    }

    async fn post_jsonrpc(
        &self,
        what: &str,
        method: &str,
        params: Value,
    ) -> Result<Value, OdooError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "method": "call", "params": params, "id": id});
        let request = self.http.post(format!("{}/jsonrpc", self.url)).json(&body);
        let (status, headers, bytes) = self.send(what, method, request).await?;
        if status != StatusCode::OK {
            return Err(self.unexpected_status(what, status, &headers, &bytes));
        }
        let answer: Value = serde_json::from_slice(&bytes).map_err(|_| OdooError::Protocol {
            call: what.into(),
            detail: format!("not a JSON-RPC answer: {}", snippet(&bytes)),
        })?;
        if let Some(error) = answer.get("error") {
            let data = error.get("data").unwrap_or(&Value::Null);
            let name = data
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            let message = data
                .get("message")
                .and_then(Value::as_str)
                .or_else(|| error.get("message").and_then(Value::as_str))
                .unwrap_or("");
            return Err(classify(what, name, message, None, &self.login));
        }
        // A method that returns None answers without a `result` key.
        Ok(answer.get("result").cloned().unwrap_or(Value::Null))
    }

    async fn post_json2(
        &self,
        what: &str,
        model: &str,
        method: &str,
        body: Value,
    ) -> Result<Value, OdooError> {
        let mut request = self
            .http
            .post(format!("{}/json/2/{model}/{method}", self.url))
            .header(AUTHORIZATION, format!("bearer {}", self.secret))
            .json(&body);
        if !self.login.database.is_empty() {
            request = request.header("X-Odoo-Database", &self.login.database);
        }
        let (status, headers, bytes) = self.send(what, method, request).await?;
        if status == StatusCode::OK {
            return serde_json::from_slice(&bytes).map_err(|_| OdooError::Protocol {
                call: what.into(),
                detail: format!("not a JSON answer: {}", snippet(&bytes)),
            });
        }
        if !is_json(&headers) {
            return Err(self.unexpected_status(what, status, &headers, &bytes));
        }
        let error: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let name = error
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        let message = error.get("message").and_then(Value::as_str).unwrap_or("");
        Err(classify(
            what,
            name,
            message,
            Some(status.as_u16()),
            &self.login,
        ))
    }

    /// Sends one request under the concurrency bound and reads the whole answer.
    async fn send(
        &self,
        what: &str,
        method: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), OdooError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
        self.count(method);
        let started = Instant::now();
        let response = request
            .send()
            .await
            .map_err(|e| self.transport_error(what, e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(what, e))?;
        tracing::debug!(call = %what, status = status.as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "Odoo call");
        Ok((status, headers, bytes.to_vec()))
    }

    fn transport_error(&self, what: &str, e: reqwest::Error) -> OdooError {
        if e.is_timeout() {
            OdooError::Timeout {
                call: what.into(),
                after: self.timeout,
            }
        } else {
            // Connection refused or reset, broken body: all outages. The error text carries
            // the URL but never the credentials (they travel in the body or a header).
            let mut detail = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                detail.push_str(": ");
                detail.push_str(&s.to_string());
                source = s.source();
            }
            OdooError::Unreachable {
                url: self.url.clone(),
                detail,
            }
        }
    }

    /// A status that is not Odoo's API answer (no JSON error body).
    fn unexpected_status(
        &self,
        what: &str,
        status: StatusCode,
        headers: &HeaderMap,
        bytes: &[u8],
    ) -> OdooError {
        let code = status.as_u16();
        if is_unavailable_status(code) || status.is_server_error() {
            return OdooError::Unavailable {
                call: what.into(),
                status: code,
            };
        }
        if code == 401 {
            return self.login.refused("HTTP 401");
        }
        if code == 404 && matches!(self.wire, Wire::Json2) {
            // An unknown X-Odoo-Database leaves the request without a database, and the
            // db-less routing answers a 404 web page.
            return OdooError::Database {
                database: self.login.database.clone(),
                detail: "the server answered 404 with a web page for its JSON-2 API (unknown \
                         database name, or not an Odoo 19+ server)"
                    .into(),
            };
        }
        let location = headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|l| format!(" (redirect to {l})"))
            .unwrap_or_default();
        OdooError::Protocol {
            call: what.into(),
            detail: format!(
                "HTTP {code}{location}: {} — is the url that of an Odoo server?",
                snippet(bytes)
            ),
        }
    }
}

/// Splits named arguments into `execute_kw` positional and keyword arguments.
fn jsonrpc_arguments(
    method: &str,
    ids: Option<&[i64]>,
    args: &Args,
    context: Option<&Args>,
) -> (Vec<Value>, Args) {
    let mut keywords = args.clone();
    let mut positional = Vec::new();
    if let Some(ids) = ids {
        positional.push(json!(ids));
    }
    let names = POSITIONAL
        .iter()
        .find(|(m, _)| *m == method)
        .map(|(_, names)| *names)
        .unwrap_or(&[]);
    // Positional arguments must be contiguous: stop at the first one not given.
    for name in names {
        match keywords.remove(*name) {
            Some(value) => positional.push(value),
            None => break,
        }
    }
    if let Some(ctx) = context {
        keywords.insert("context".into(), Value::Object(ctx.clone()));
    }
    (positional, keywords)
}

fn records(what: &str, value: Value) -> Result<Vec<Map<String, Value>>, OdooError> {
    match value {
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Object(map) => Ok(map),
                other => Err(protocol_error(what, &other)),
            })
            .collect(),
        other => Err(protocol_error(what, &other)),
    }
}

fn parse_load(what: &str, value: Value) -> Result<LoadResult, OdooError> {
    let ids = match value.get("ids") {
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(Value::as_i64)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| protocol_error(what, &value))?,
        ),
        Some(Value::Bool(false)) => None,
        _ => return Err(protocol_error(what, &value)),
    };
    let messages = value
        .get("messages")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|m| LoadMessage {
                    kind: m
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("error")
                        .to_string(),
                    record: m.get("record").and_then(Value::as_i64),
                    field: m.get("field").and_then(Value::as_str).map(str::to_string),
                    message: m
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(LoadResult { ids, messages })
}

fn protocol_error(what: &str, value: &Value) -> OdooError {
    let text = value.to_string();
    OdooError::Protocol {
        call: what.into(),
        detail: format!("unexpected value: {}", snippet(text.as_bytes())),
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"))
}

/// The start of a body, for messages.
fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(pairs: Value) -> Args {
        pairs.as_object().unwrap().clone()
    }

    #[test]
    fn jsonrpc_arguments_follow_the_method_signatures() {
        let (p, k) = jsonrpc_arguments(
            "search_read",
            None,
            &named(json!({"domain": [["a", "=", 1]], "fields": ["a"], "limit": 5})),
            Some(&named(json!({"active_test": false}))),
        );
        assert_eq!(p, vec![json!([["a", "=", 1]])]);
        assert_eq!(
            Value::Object(k),
            json!({"fields": ["a"], "limit": 5, "context": {"active_test": false}})
        );

        let (p, k) = jsonrpc_arguments(
            "write",
            Some(&[36]),
            &named(json!({"vals": {"x": 1}})),
            None,
        );
        assert_eq!(p, vec![json!([36]), json!({"x": 1})]);
        assert!(k.is_empty());

        let (p, _) = jsonrpc_arguments(
            "load",
            None,
            &named(json!({"data": [["1"]], "fields": ["id"]})),
            None,
        );
        assert_eq!(p, vec![json!(["id"]), json!([["1"]])]);

        let (p, k) = jsonrpc_arguments(
            "read",
            Some(&[1, 2]),
            &named(json!({"fields": ["name"]})),
            None,
        );
        assert_eq!(p, vec![json!([1, 2])]);
        assert_eq!(Value::Object(k), json!({"fields": ["name"]}));

        let (p, k) = jsonrpc_arguments("action_apply_inventory", Some(&[35]), &Args::new(), None);
        assert_eq!(p, vec![json!([35])]);
        assert!(k.is_empty());
    }

    #[test]
    fn load_answers_are_parsed_with_and_without_ids() {
        let ok = parse_load("t", json!({"ids": [41, 42], "messages": [], "nextrow": 0})).unwrap();
        assert_eq!(ok.ids, Some(vec![41, 42]));
        let bad = parse_load(
            "t",
            json!({"ids": false, "messages": [{"rows": {"from": 1, "to": 1}, "type": "error",
                "record": 1, "field": "list_price", "message": "'abc' does not seem to be a number"}],
                "nextrow": 0}),
        )
        .unwrap();
        assert_eq!(bad.ids, None);
        assert_eq!(bad.messages[0].record, Some(1));
        assert_eq!(bad.messages[0].field.as_deref(), Some("list_price"));
    }
}
