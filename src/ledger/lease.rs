//! Who holds a file, and for how long: the default lease, the names of lease holders, and the
//! liveness rule that tells a run killed on this host from one still working. The transitions
//! that take, renew and release a lease are in `state`; this is the vocabulary they share with
//! the import pass.

use std::time::Duration;

/// How long a claim holds a file before another run may take it over (`[ledger] lease`).
/// Every Odoo batch renews the claims of the files it carries, so the lease only has to be
/// longer than the slowest single step (a batch, a download), not than the whole pass.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30 * 60);

/// The name of this host, as lease holders carry it.
pub fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// A lease holder is `host:pid:start-ms`, so a run can tell the leases of dead runs on its own
/// host (after `kill -9`) from those of runs still working.
pub fn holder_name() -> String {
    format!(
        "{}:{}:{}",
        host_name(),
        std::process::id(),
        jiff::Timestamp::now().as_millisecond()
    )
}

/// Whether `holder` names a process of this host that no longer runs.
pub fn holder_is_dead(holder: &str) -> bool {
    let mut parts = holder.rsplitn(3, ':');
    let (Some(_start), Some(pid), Some(host)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    if host != host_name() || pid.parse::<u32>().is_err() {
        return false;
    }
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => !String::from_utf8_lossy(&cmdline).contains("edi-bridge"),
        Err(_) => true,
    }
}

/// Whether a lease that ends at `lease_until` still holds at `now_ms`.
pub fn is_live(lease_until: Option<i64>, now_ms: i64) -> bool {
    lease_until.is_some_and(|t| t > now_ms)
}
