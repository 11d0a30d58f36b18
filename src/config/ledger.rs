//! `[ledger]`: where the durable state and the download spool live.

use std::path::PathBuf;

use super::ConfigError;
use super::read::{Item, Node};

/// `[ledger]`: where the durable state lives.
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// SQLite file (default `edi-bridge.db` beside the config file).
    pub path: PathBuf,
}

pub(super) fn parse_ledger(mut t: Node) -> Result<(LedgerConfig, PathBuf), ConfigError> {
    let path = t.take("path").map(Item::path).transpose()?;
    let spool = t.take("spool").map(Item::path).transpose()?;
    let dir = &t.cx.dir;
    t.finish()?;
    Ok((
        LedgerConfig {
            path: path.unwrap_or_else(|| dir.join("edi-bridge.db")),
        },
        spool.unwrap_or_else(|| dir.join("spool")),
    ))
}
