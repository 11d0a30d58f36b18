//! The HTTP server: axum on a thread and runtime of its own, a listener that resets the
//! connections a fault is queued for, and the routes — `/jsonrpc`, `/json/2/…` and the version
//! probe on 19, Odoo 18's web redirects for `/json/…`, a 404 page for anything else. Every
//! answer closes its connection, as Odoo's threaded server does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Fault;
use super::json2::json2;
use super::jsonrpc::jsonrpc;
use super::server::Server;
use super::state::Shared;

/// Serves on `listener` from a thread of its own with its own runtime: stopping drops the
/// runtime, which closes the listener and every connection at once.
pub(crate) fn serve(listener: std::net::TcpListener, shared: Arc<Shared>) -> Server {
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("odoo-standin".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("stand-in runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let app = Router::new()
                    .fallback(handle)
                    .layer(DefaultBodyLimit::max(256 * 1024 * 1024))
                    .with_state(shared.clone());
                let listener = FaultyListener {
                    inner: listener,
                    shared,
                };
                tokio::select! {
                    _ = axum::serve(listener, app) => {}
                    _ = stop_rx => {}
                }
            });
            // Dropping the runtime drops every connection task: clients see the outage now.
            drop(rt);
        })
        .expect("spawn the stand-in thread");
    Server {
        stop: stop_tx,
        thread,
    }
}

/// Accepts connections, resetting those a [`Fault::ConnectionReset`] is queued for.
struct FaultyListener {
    inner: tokio::net::TcpListener,
    shared: Arc<Shared>,
}

impl axum::serve::Listener for FaultyListener {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = match self.inner.accept().await {
                Ok(pair) => pair,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            };
            if self
                .shared
                .take_fault(|f| f == Fault::ConnectionReset)
                .is_some()
            {
                tokio::spawn(reset_after_request(stream));
                continue;
            }
            return (stream, addr);
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Reads the request head, then closes with RST (zero linger): the client has sent its call
/// and sees "connection reset by peer" instead of an answer.
async fn reset_after_request(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let _ = stream.set_zero_linger();
    drop(stream);
}

struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.peak.fetch_max(now, Ordering::SeqCst);
        InFlight(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(
    AxState(shared): AxState<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _in_flight = InFlight::enter(&shared);
    let latency = shared.lock().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut response = if let Some(f) =
        shared.take_fault(|f| matches!(f, Fault::Http502 | Fault::Http503))
    {
        let (status, text) = match f {
            Fault::Http502 => (StatusCode::BAD_GATEWAY, "502 Bad Gateway"),
            _ => (
                StatusCode::SERVICE_UNAVAILABLE,
                "503 Service Temporarily Unavailable",
            ),
        };
        html(
            status,
            format!(
                "<html>\r\n<head><title>{text}</title></head>\r\n<body>\r\n<center><h1>{text}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
            ),
        )
    } else {
        route(&shared, &method, &uri, &headers, &body)
    };
    // Odoo's threaded server closes every connection after answering (transcripts 18/01 and
    // 19/timings.json): each call is a new TCP connection, here too.
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

pub(crate) fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

pub(crate) fn json_response(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        value.to_string(),
    )
        .into_response()
}

fn route(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let path = uri.path();
    let version = shared.lock().opts.version;
    if path == "/jsonrpc" && method == Method::POST {
        return jsonrpc(shared, body);
    }
    if version >= 19 && (path == "/web/version" || path == "/json/version") && method == Method::GET
    {
        count(shared, "web", "version");
        return json_response(
            StatusCode::OK,
            &json!({"version_info": [19, 0, 0, "final", 0, ""], "version": "19.0"}),
        );
    }
    if version >= 19 && (path == "/json/2" || path.starts_with("/json/2/")) {
        return json2(shared, method, path, headers, body);
    }
    if version <= 18 && path.starts_with("/json/") {
        return json_web_route_18(uri);
    }
    html(
        StatusCode::NOT_FOUND,
        "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.</p>\n".into(),
    )
}

/// Odoo 18 has no JSON-2; its `/json/<path>` web routes need a session (303 to the login
/// page) and `/json/1/<path>` normalises its query with a 307 (transcripts 18/73–75).
fn json_web_route_18(uri: &Uri) -> Response {
    let path = uri.path();
    let query = uri.query().unwrap_or("");
    let redirect = |status: StatusCode, location: String| {
        let shown = location.replace('&', "&amp;");
        let mut r = html(
            status,
            format!(
                "<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n<p>You should be redirected automatically to the target URL: <a href=\"{shown}\">{shown}</a>. If not, click the link.\n"
            ),
        );
        r.headers_mut().insert(
            header::LOCATION,
            HeaderValue::from_str(&location).expect("ascii location"),
        );
        r
    };
    if path.starts_with("/json/1/") && !query.split('&').any(|p| p.starts_with("offset=")) {
        let sep = if query.is_empty() { "" } else { "&" };
        return redirect(
            StatusCode::TEMPORARY_REDIRECT,
            format!("{path}?{query}{sep}offset=0"),
        );
    }
    let target = format!("{path}?{query}");
    redirect(
        StatusCode::SEE_OTHER,
        format!("/web/login?redirect={}", url_encode(&target)),
    )
}

fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn count(shared: &Shared, model: &str, method: &str) {
    *shared
        .lock()
        .calls
        .entry((model.to_string(), method.to_string()))
        .or_insert(0) += 1;
}
