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
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

mod answers;
mod wire;

use crate::config::{Credential, OdooConfig, Protocol};
use crate::odoo::error::LoginInfo;
pub use crate::odoo::error::OdooError;
use answers::{parse_load, protocol_error, records};
use wire::jsonrpc_arguments;

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
            let started = std::time::Instant::now();
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
            crate::daemon::metrics::odoo_call(method, started.elapsed().as_secs_f64());
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
