//! `[ledger]`: where the durable state and the download spool live.

use std::path::PathBuf;
use std::time::Duration;

use super::ConfigError;
use super::read::{Item, Node};

/// `[ledger]`: where the durable state lives.
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// SQLite file (default `edi-bridge.db` beside the config file).
    pub path: PathBuf,
    /// How long a claim holds a file before another run may take it over (`lease`, default
    /// 30m). Renewed before every Odoo batch, so it must outlast the slowest batch or download,
    /// not a whole pass.
    pub lease: Duration,
}

pub(super) fn parse_ledger(mut t: Node) -> Result<(LedgerConfig, PathBuf), ConfigError> {
    let path = t.take("path").map(Item::path).transpose()?;
    let spool = t.take("spool").map(Item::path).transpose()?;
    let lease = t.take("lease").map(Item::positive_duration).transpose()?;
    let dir = &t.cx.dir;
    t.finish()?;
    Ok((
        LedgerConfig {
            path: path.unwrap_or_else(|| dir.join("edi-bridge.db")),
            lease: lease.unwrap_or(crate::ledger::DEFAULT_LEASE),
        },
        spool.unwrap_or_else(|| dir.join("spool")),
    ))
}
