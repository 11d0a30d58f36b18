//! The [`OdooStandin`] a test holds, as a server: start on a free loopback port, stop and
//! start again on the same port (an outage that keeps the data), latency, injected faults and
//! the counters of the calls it served.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::http::serve;
use super::models::schema::schema;
use super::orm::Db;
use super::seed::seed_base;
use super::state::{FailOnValue, Shared, StandinState};
use super::{Fault, OdooStandin, StandinOptions};

pub(crate) struct Server {
    pub(crate) stop: tokio::sync::oneshot::Sender<()>,
    pub(crate) thread: JoinHandle<()>,
}

impl OdooStandin {
    /// Starts a stand-in on a free loopback port with the base data every Odoo has (company,
    /// admin user, `Units`, warehouse `WH` with `WH/Stock`, delivery and receipt types).
    pub fn start(opts: StandinOptions) -> OdooStandin {
        assert!(
            (17..=19).contains(&opts.version),
            "the stand-in plays Odoo 17, 18 or 19, not {}",
            opts.version
        );
        let mut state = StandinState {
            db: Db::new(schema(opts.version, opts.delivery_module)),
            opts,
            seq: BTreeMap::new(),
            fails: Vec::new(),
            calls: BTreeMap::new(),
            faults: VecDeque::new(),
            latency: Duration::ZERO,
        };
        seed_base(&mut state);
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        });
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port for Odoo");
        let port = listener.local_addr().expect("local address").port();
        let server = serve(listener, shared.clone());
        OdooStandin {
            shared,
            port,
            server: Mutex::new(Some(server)),
        }
    }

    /// `http://127.0.0.1:<port>` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The options it was started with (database, login, API key, …).
    pub fn options(&self) -> StandinOptions {
        self.shared.lock().opts.clone()
    }

    /// Replaces the API key, as when a key expires or is revoked while edi-bridge runs.
    pub fn set_api_key(&self, key: &str) {
        self.shared.lock().opts.api_key = key.into();
    }

    /// Replaces the user's password.
    pub fn set_password(&self, password: &str) {
        self.shared.lock().opts.password = password.into();
    }

    /// Stops listening and cuts every open connection: connections are refused until
    /// [`start_again`](Self::start_again). The data is kept.
    pub fn stop(&self) {
        let server = self.server.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(server) = server {
            let _ = server.stop.send(());
            let _ = server.thread.join();
        }
    }

    /// Listens again on the same port after [`stop`](Self::stop).
    pub fn start_again(&self) {
        let mut slot = self.server.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_some() {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match std::net::TcpListener::bind(("127.0.0.1", self.port)) {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("cannot listen again on port {}: {e}", self.port),
            }
        };
        *slot = Some(serve(listener, self.shared.clone()));
    }

    /// Whether the server is listening.
    pub fn is_running(&self) -> bool {
        self.server
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Every request waits this long before it is handled (timeouts, concurrency tests).
    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().latency = latency;
    }

    /// The next `n` requests the fault applies to fail with it (see [`Fault`] for which
    /// requests each applies to). Faults queue up in order.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        let mut st = self.shared.lock();
        st.faults.extend(std::iter::repeat_n(fault, n));
    }

    /// Faults not yet used.
    pub fn pending_faults(&self) -> usize {
        self.shared.lock().faults.len()
    }

    /// Any create, write or load that leaves `field` = `value` on a `model` record fails with
    /// `odoo.exceptions.ValidationError` and `message` (as an Odoo constraint would).
    pub fn fail_on_value(&self, model: &str, field: &str, value: impl Into<Value>, message: &str) {
        self.shared.lock().fails.push(FailOnValue {
            model: model.into(),
            field: field.into(),
            value: value.into(),
            message: message.into(),
        });
    }

    /// Removes pending faults, `fail_on_value` rules and latency.
    pub fn clear_faults(&self) {
        let mut st = self.shared.lock();
        st.faults.clear();
        st.fails.clear();
        st.latency = Duration::ZERO;
    }

    /// Calls served per (model, method); `common` for the JSON-RPC `common` service (login)
    /// and `web` for version probes. Injected faults that reset the connection are not counted.
    pub fn calls(&self) -> BTreeMap<(String, String), u64> {
        self.shared.lock().calls.clone()
    }

    /// Calls served for one (model, method).
    pub fn call_count(&self, model: &str, method: &str) -> u64 {
        self.shared
            .lock()
            .calls
            .get(&(model.to_string(), method.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// All calls served.
    pub fn total_calls(&self) -> u64 {
        self.shared.lock().calls.values().sum()
    }

    pub fn reset_calls(&self) {
        self.shared.lock().calls.clear();
    }

    /// The most requests that were being handled at the same time.
    pub fn peak_concurrency(&self) -> usize {
        self.shared.peak.load(Ordering::SeqCst)
    }

    pub fn reset_peak_concurrency(&self) {
        self.shared.peak.store(0, Ordering::SeqCst);
    }
}

impl Drop for OdooStandin {
    fn drop(&mut self) {
        self.stop();
    }
}
