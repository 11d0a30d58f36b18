//! The HTTP endpoints (axum, on `[server] listen`).
//!
//! - `GET /healthz`: 200 `ok` while the scheduler runs; 503 with the reason when it is stuck
//!   or stopping.
//! - `GET /metrics`: Prometheus text (OpenMetrics).
//! - `GET /status`: the JSON of `status --json`.
//! - `POST /hooks/<flow>`: the body Odoo's "Send Webhook Notification" sends
//!   (`{"_action": …, "_id": …, "_model": …, <fields>}`); the token as `?token=` (Odoo can only
//!   be given a URL) or `Authorization: Bearer`. 202: an export flow exports that record now,
//!   an import flow polls now. 401 without or with a wrong token (compared in constant time),
//!   403 from an address not in `[server] allow`, 404 unknown flow, 400 a body that is not an
//!   Odoo record of the flow's model, 413 a body over 1 MiB.
//!
//! Requests are logged with their path only: the query, where the token travels, never is.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{Daemon, hooks, now_ms, status};
use crate::config::Direction;

/// Largest webhook body accepted.
pub const MAX_BODY: usize = 1024 * 1024;

/// Serves the endpoints on `listener` until the task is aborted.
pub async fn serve(daemon: Arc<Daemon>, listener: tokio::net::TcpListener) {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/status", get(status_json))
        .route("/hooks/{flow}", post(hook))
        .with_state(daemon);
    if let Err(e) = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    {
        tracing::error!("HTTP server: {e}");
    }
}

async fn healthz(State(d): State<Arc<Daemon>>) -> Response {
    match d.unhealthy() {
        None => (StatusCode::OK, "ok\n").into_response(),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}

async fn metrics(State(d): State<Arc<Daemon>>) -> Response {
    let text = {
        let d = d.clone();
        tokio::task::spawn_blocking(move || d.metrics.render(&d.config, d.ledger(), now_ms()))
            .await
            .unwrap_or_default()
    };
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn status_json(State(d): State<Arc<Daemon>>) -> Response {
    let d2 = d.clone();
    let rows =
        tokio::task::spawn_blocking(move || status::flows(&d2.config, d2.ledger(), now_ms())).await;
    match rows {
        Ok(Ok(rows)) => axum::Json(rows).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn error(code: StatusCode, message: &str) -> Response {
    (code, axum::Json(json!({ "error": message }))).into_response()
}

/// The token the caller gave: `?token=` or `Authorization: Bearer`.
fn given_token(query: Option<&str>, headers: &HeaderMap) -> Option<String> {
    if let Some(q) = query {
        for pair in q.split('&') {
            if let Some(v) = pair.strip_prefix("token=") {
                return Some(percent_decode(v));
            }
        }
    }
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Equal in constant time (for the same length; the length itself is not secret).
fn same_token(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn hook(
    State(d): State<Arc<Daemon>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(flow_name): Path<String>,
    request: Request,
) -> Response {
    let started = std::time::Instant::now();
    let response = hook_inner(&d, peer, &flow_name, request).await;
    // The path only: the token may be in the query.
    tracing::info!(
        peer = %peer.ip(),
        path = %format!("/hooks/{flow_name}"),
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "webhook"
    );
    response
}

async fn hook_inner(
    d: &Arc<Daemon>,
    peer: SocketAddr,
    flow_name: &str,
    request: Request,
) -> Response {
    let server = &d.config.server;
    if !server.allow.is_empty() && !server.allow.iter().any(|n| n.contains(peer.ip())) {
        return error(StatusCode::FORBIDDEN, "this address may not call hooks");
    }
    let Some(expected) = server.token.as_deref() else {
        return error(
            StatusCode::UNAUTHORIZED,
            "hooks are off: no [server] token is configured",
        );
    };
    let (parts, body) = request.into_parts();
    match given_token(parts.uri.query(), &parts.headers) {
        None => {
            return error(
                StatusCode::UNAUTHORIZED,
                "a token is needed: ?token=… or Authorization: Bearer …",
            );
        }
        Some(token) if !same_token(&token, expected) => {
            return error(StatusCode::UNAUTHORIZED, "wrong token");
        }
        Some(_) => {}
    }
    let Some(flow) = d.config.flow(flow_name) else {
        return error(StatusCode::NOT_FOUND, &format!("no flow named {flow_name}"));
    };
    if let Some(len) = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > MAX_BODY as u64
    {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "the body is over 1 MiB");
    }
    let bytes = match axum::body::to_bytes(Body::new(body), MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "the body is over 1 MiB"),
    };
    if d.is_stopping() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "stopping");
    }
    let record = if bytes.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match odoo_record(&bytes) {
            Ok(r) => Some(r),
            Err(why) => return error(StatusCode::BAD_REQUEST, &why),
        }
    };
    match &flow.direction {
        Direction::Export(export) => {
            let Some((id, model)) = record else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "expected Odoo's webhook body: a JSON object with _id and _model",
                );
            };
            if model != export.model {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "_model is {model:?}; flow {flow_name} exports {:?}",
                        export.model
                    ),
                );
            }
            d.request_export(flow_name, id);
            (
                StatusCode::ACCEPTED,
                axum::Json(json!({ "flow": flow_name, "id": id, "action": "export" })),
            )
                .into_response()
        }
        Direction::Import(_) => {
            hooks::poll_now(d, flow_name);
            let id = record.map(|(id, _)| id);
            (
                StatusCode::ACCEPTED,
                axum::Json(json!({ "flow": flow_name, "id": id, "action": "poll" })),
            )
                .into_response()
        }
    }
}

/// `_id` and `_model` of Odoo's webhook body.
fn odoo_record(bytes: &[u8]) -> Result<(i64, String), String> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("the body is not JSON: {e}"))?;
    let Value::Object(map) = value else {
        return Err("expected a JSON object with _id and _model".into());
    };
    let id = map
        .get("_id")
        .and_then(Value::as_i64)
        .filter(|id| *id > 0)
        .ok_or("the body has no _id (a record id)")?;
    let model = map
        .get("_model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .ok_or("the body has no _model")?;
    Ok((id, model.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_from_the_query_or_a_bearer_header() {
        let mut h = HeaderMap::new();
        assert_eq!(
            given_token(Some("a=1&token=s%2Bc+r"), &h).as_deref(),
            Some("s+c r")
        );
        assert_eq!(given_token(None, &h), None);
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(given_token(None, &h).as_deref(), Some("abc"));
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "abcd"));
    }

    #[test]
    fn odoos_recorded_body_is_read() {
        let body = br#"{"_action": "Send Webhook Notification(#301)", "_id": 20, "_model": "stock.picking", "id": 20, "name": "WH/OUT/00015", "origin": "TR2-WH-001", "partner_id": 44, "state": "assigned"}"#;
        assert_eq!(
            odoo_record(body).unwrap(),
            (20, "stock.picking".to_string())
        );
        assert!(odoo_record(br#"{"_model": "stock.picking"}"#).is_err());
        assert!(odoo_record(br#"{"_id": 3}"#).is_err());
        assert!(odoo_record(b"[1]").is_err());
        assert!(odoo_record(b"{").is_err());
    }
}
