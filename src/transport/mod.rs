//! One small interface to a partner's files, with two implementations: SFTP ([`sftp`]) and a
//! local folder tree ([`local`]). The pipeline never knows which one it has.
//!
//! Paths are remote paths as strings (`/out/products/a.xml`); for a local partner they are
//! relative to its root (a leading `/` is allowed and means the root).

pub mod local;
pub mod pool;
pub mod sftp;

use std::path::Path;

use crate::config::{Partner, PartnerTransport};
use crate::error::Consequence;

/// One entry of a folder listing, attributes included (no per-file round trips).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub size: u64,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: i64,
    pub is_file: bool,
}

/// A file downloaded to the local spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub size: u64,
    /// Lowercase hex sha256 of the content.
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The server's host key is not the expected one (or unknown without `accept_new`).
    #[error("host key of {host} is not trusted: {detail}")]
    HostKey { host: String, detail: String },
    #[error("login to {host} as {user} failed: {detail}")]
    Auth {
        host: String,
        user: String,
        detail: String,
    },
    #[error("{op} timed out after {secs} s")]
    Timeout { op: String, secs: u64 },
    #[error("connection: {0}")]
    Connection(String),
    #[error("{path}: no such file or folder")]
    NotFound { path: String },
    #[error("{path}: already exists")]
    AlreadyExists { path: String },
    #[error("{path}: permission denied")]
    PermissionDenied { path: String },
    #[error("{path}: file is larger than the limit of {limit} bytes")]
    TooLarge { path: String, limit: u64 },
    #[error("{path}: {detail}")]
    Other { path: String, detail: String },
}

impl TransportError {
    /// Outages are retried; a wrong host key, a failed login or a missing permission stop the
    /// partner; a file too large is rejected.
    pub fn consequence(&self) -> Consequence {
        match self {
            TransportError::HostKey { .. }
            | TransportError::Auth { .. }
            | TransportError::PermissionDenied { .. } => Consequence::Stop,
            TransportError::TooLarge { .. } => Consequence::Reject,
            TransportError::Timeout { .. }
            | TransportError::Connection(_)
            | TransportError::NotFound { .. }
            | TransportError::AlreadyExists { .. }
            | TransportError::Other { .. } => Consequence::Retry,
        }
    }
}

/// What every transport does. Implementations are used from one task at a time.
#[allow(async_fn_in_trait)]
pub trait Transport {
    /// The folder's entries (files and folders, not `.`/`..`), in one listing.
    async fn list(&mut self, dir: &str) -> Result<Vec<Entry>, TransportError>;
    /// Attributes of one path, `None` if it does not exist.
    async fn stat(&mut self, path: &str) -> Result<Option<Entry>, TransportError>;
    /// Streams `path` into the local file `dest` (created/truncated), computing its sha256;
    /// fails with `TooLarge` beyond `max_size` bytes (the partial `dest` is removed).
    async fn fetch(
        &mut self,
        path: &str,
        dest: &Path,
        max_size: u64,
    ) -> Result<Fetched, TransportError>;
    /// The last `n` bytes of a file (for the cheap "is the root element closed" check).
    async fn read_tail(&mut self, path: &str, n: u64) -> Result<Vec<u8>, TransportError>;
    /// Moves `from` to `to` atomically, never overwriting: `AlreadyExists` if `to` exists.
    async fn rename_noclobber(&mut self, from: &str, to: &str) -> Result<(), TransportError>;
    /// Creates `dir` and its missing parents; fine if it exists.
    async fn mkdir_all(&mut self, dir: &str) -> Result<(), TransportError>;
    /// Writes `data` to `path` atomically (a temporary `.name.part` beside it, then a rename
    /// that replaces `path`).
    async fn put(&mut self, path: &str, data: &[u8]) -> Result<(), TransportError>;
    /// Removes a file; fine if it is already gone.
    async fn remove(&mut self, path: &str) -> Result<(), TransportError>;
    /// Ends the session cleanly.
    async fn close(&mut self) -> Result<(), TransportError>;
}

/// The transport of one partner, chosen from its configuration.
pub enum AnyTransport {
    Sftp(sftp::SftpTransport),
    Local(local::LocalTransport),
}

impl AnyTransport {
    /// Opens one session to the partner (for SFTP: connect, verify the host key, log in).
    pub async fn connect(partner: &Partner) -> Result<AnyTransport, TransportError> {
        Ok(match &partner.transport {
            PartnerTransport::Sftp(cfg) => {
                AnyTransport::Sftp(sftp::SftpTransport::connect(cfg).await?)
            }
            PartnerTransport::Local { root } => {
                AnyTransport::Local(local::LocalTransport::new(root.clone()))
            }
        })
    }
}

macro_rules! delegate {
    ($self:ident, $t:ident => $e:expr) => {
        match $self {
            AnyTransport::Sftp($t) => $e,
            AnyTransport::Local($t) => $e,
        }
    };
}

impl Transport for AnyTransport {
    async fn list(&mut self, dir: &str) -> Result<Vec<Entry>, TransportError> {
        delegate!(self, t => t.list(dir).await)
    }
    async fn stat(&mut self, path: &str) -> Result<Option<Entry>, TransportError> {
        delegate!(self, t => t.stat(path).await)
    }
    async fn fetch(
        &mut self,
        path: &str,
        dest: &Path,
        max_size: u64,
    ) -> Result<Fetched, TransportError> {
        delegate!(self, t => t.fetch(path, dest, max_size).await)
    }
    async fn read_tail(&mut self, path: &str, n: u64) -> Result<Vec<u8>, TransportError> {
        delegate!(self, t => t.read_tail(path, n).await)
    }
    async fn rename_noclobber(&mut self, from: &str, to: &str) -> Result<(), TransportError> {
        delegate!(self, t => t.rename_noclobber(from, to).await)
    }
    async fn mkdir_all(&mut self, dir: &str) -> Result<(), TransportError> {
        delegate!(self, t => t.mkdir_all(dir).await)
    }
    async fn put(&mut self, path: &str, data: &[u8]) -> Result<(), TransportError> {
        delegate!(self, t => t.put(path, data).await)
    }
    async fn remove(&mut self, path: &str) -> Result<(), TransportError> {
        delegate!(self, t => t.remove(path).await)
    }
    async fn close(&mut self) -> Result<(), TransportError> {
        delegate!(self, t => t.close().await)
    }
}

/// Joins a folder and a file name with one `/`.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}
