//! The two wire protocols: JSON-RPC (`/jsonrpc`, Odoo 17–19) and JSON-2 (`/json/2/<model>/<method>`,
//! Odoo 19+): how a call is framed, sent and turned back into a value or an error.

use std::sync::atomic::Ordering;
use std::time::Instant;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap};
use serde_json::{Value, json};

use super::answers::protocol_error;
use super::{Args, OdooClient, Wire};
use crate::odoo::error::{OdooError, classify, is_unavailable_status};

/// How a method's named arguments travel over JSON-RPC `execute_kw`: these go positionally,
/// in this order, after the record ids of a record method; every other argument is a keyword.
/// Only the methods edi-bridge calls are listed; an unlisted method sends all its arguments
/// as keywords.
pub(super) const POSITIONAL: &[(&str, &[&str])] = &[
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

impl OdooClient {
    /// Asks whether the server speaks JSON-2: `GET /json/version` answers the version on
    /// Odoo 19+, while Odoo 18 redirects it to the login page and older servers answer 404.
    /// Returns the version when JSON-2 is there.
    pub(super) async fn probe_json2(&self) -> Result<Option<String>, OdooError> {
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
    pub(super) async fn login_jsonrpc(&mut self) -> Result<(), OdooError> {
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

    pub(super) async fn post_jsonrpc(
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

    pub(super) async fn post_json2(
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
    pub(super) async fn send(
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

    pub(super) fn transport_error(&self, what: &str, e: reqwest::Error) -> OdooError {
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
    pub(super) fn unexpected_status(
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
pub(super) fn jsonrpc_arguments(
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

pub(super) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"))
}

/// The start of a body, for messages.
pub(super) fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}
