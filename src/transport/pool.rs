//! Sessions to partners, shared by the runs of one process.
//!
//! At most `max_sessions` sessions per partner are open at once: a run that needs one more
//! waits for a free one. In the daemon ([`Sessions::keep`]) an SFTP session is kept open
//! between polls of the same partner — the SSH keepalives hold it up — and checked with one
//! cheap request before it is used again; a dead one is dropped and a new one opened. After a
//! failed connect, the next attempts wait longer and longer (1 s doubling up to a minute), so
//! an unreachable partner is not hammered by every poll. `run --once` keeps nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{AnyTransport, Transport, TransportError};
use crate::config::{Partner, PartnerTransport};

/// The first wait after a failed connect; doubled each time, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// An idle session older than this is closed rather than kept (a partner polled twice a day
/// needs no session in between).
const IDLE_CLOSE: Duration = Duration::from_secs(5 * 60);

/// Told the partner's name for every session that failed.
pub type OnError = Box<dyn Fn(&str) + Send + Sync>;

/// A session checked out of the pool, with its place under the partner's `max_sessions`.
pub struct Session {
    pub transport: AnyTransport,
    _permit: OwnedSemaphorePermit,
}

#[derive(Default)]
struct PartnerSessions {
    idle: Vec<(AnyTransport, Instant)>,
    /// Failed connects in a row, and when the next attempt may be made.
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<String>,
}

/// The sessions of one process, per partner.
pub struct Sessions {
    keep: bool,
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
    partners: Mutex<HashMap<String, PartnerSessions>>,
    /// Called with the partner's name for every session that failed (connect or lost).
    on_error: Option<OnError>,
}

impl Sessions {
    /// Opens a session per checkout and closes it at checkin (`run --once`).
    pub fn per_pass() -> Sessions {
        Sessions {
            keep: false,
            slots: Mutex::default(),
            partners: Mutex::default(),
            on_error: None,
        }
    }

    /// Keeps SFTP sessions open between passes (the daemon); `on_error` counts failures.
    pub fn keep(on_error: OnError) -> Sessions {
        Sessions {
            keep: true,
            slots: Mutex::default(),
            partners: Mutex::default(),
            on_error: Some(on_error),
        }
    }

    fn failed(&self, partner: &str) {
        if let Some(f) = &self.on_error {
            f(partner);
        }
    }

    /// A session to `partner`: an idle one that still answers, or a new one. Waits while
    /// `max_sessions` are in use.
    pub async fn checkout(&self, partner: &Partner) -> Result<Session, TransportError> {
        let slots = {
            let mut slots = self.slots.lock().expect("session slots");
            slots
                .entry(partner.name.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(partner.max_sessions.max(1))))
                .clone()
        };
        let permit = slots.acquire_owned().await.expect("never closed");
        loop {
            let idle = {
                let mut all = self.partners.lock().expect("sessions");
                all.entry(partner.name.clone()).or_default().idle.pop()
            };
            let Some((mut t, since)) = idle else { break };
            if since.elapsed() > IDLE_CLOSE {
                let _ = t.close().await;
                continue;
            }
            // One round trip tells a live session from one the server or the network dropped.
            match t.stat(".").await {
                Ok(_) => {
                    return Ok(Session {
                        transport: t,
                        _permit: permit,
                    });
                }
                Err(e) => {
                    tracing::info!(partner = %partner.name, "a kept session is gone ({e}); opening a new one");
                    self.failed(&partner.name);
                }
            }
        }
        if self.keep {
            let wait = {
                let mut all = self.partners.lock().expect("sessions");
                let p = all.entry(partner.name.clone()).or_default();
                p.retry_at.filter(|at| *at > Instant::now()).map(|at| {
                    (
                        at - Instant::now(),
                        p.last_error.clone().unwrap_or_default(),
                    )
                })
            };
            if let Some((wait, last)) = wait {
                return Err(TransportError::Connection(format!(
                    "{last}; next attempt in {} s",
                    wait.as_secs().max(1)
                )));
            }
        }
        match AnyTransport::connect(partner).await {
            Ok(t) => {
                let mut all = self.partners.lock().expect("sessions");
                let p = all.entry(partner.name.clone()).or_default();
                p.failures = 0;
                p.retry_at = None;
                p.last_error = None;
                Ok(Session {
                    transport: t,
                    _permit: permit,
                })
            }
            Err(e) => {
                if matches!(partner.transport, PartnerTransport::Sftp(_)) {
                    self.failed(&partner.name);
                }
                if self.keep {
                    let mut all = self.partners.lock().expect("sessions");
                    let p = all.entry(partner.name.clone()).or_default();
                    let backoff = FIRST_BACKOFF
                        .saturating_mul(1 << p.failures.min(6))
                        .min(MAX_BACKOFF);
                    p.failures += 1;
                    p.retry_at = Some(Instant::now() + backoff);
                    p.last_error = Some(e.to_string());
                }
                Err(e)
            }
        }
    }

    /// Gives a session back: kept for the next poll (daemon, SFTP), else closed.
    pub async fn checkin(&self, partner: &Partner, session: Session) {
        let Session {
            mut transport,
            _permit,
        } = session;
        if self.keep && matches!(transport, AnyTransport::Sftp(_)) {
            let mut all = self.partners.lock().expect("sessions");
            all.entry(partner.name.clone())
                .or_default()
                .idle
                .push((transport, Instant::now()));
            return;
        }
        if let Err(e) = transport.close().await {
            tracing::debug!("closing the session to {}: {e}", partner.name);
        }
    }

    /// Closes every idle session (shutdown) or those idle too long.
    pub async fn close_idle(&self, all: bool) {
        let mut closing = Vec::new();
        {
            let mut partners = self.partners.lock().expect("sessions");
            for p in partners.values_mut() {
                let (old, keep): (Vec<_>, Vec<_>) = p
                    .idle
                    .drain(..)
                    .partition(|(_, since)| all || since.elapsed() > IDLE_CLOSE);
                p.idle = keep;
                closing.extend(old.into_iter().map(|(t, _)| t));
            }
        }
        for mut t in closing {
            let _ = t.close().await;
        }
    }

    /// Idle sessions kept now, over all partners.
    pub fn idle_count(&self) -> usize {
        self.partners
            .lock()
            .expect("sessions")
            .values()
            .map(|p| p.idle.len())
            .sum()
    }
}
