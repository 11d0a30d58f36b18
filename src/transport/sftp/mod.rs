//! SFTP partners over russh + russh-sftp.
//!
//! One [`SftpTransport`] is one SSH connection with one SFTP channel. What it guarantees:
//!
//! - **Host keys are always verified** before anything is sent: against the pinned fingerprint
//!   (`SHA256:…`, as `ssh-keygen -lf` prints it) or a known_hosts file. An unknown key (without
//!   `accept_new`) or a changed key is refused with a message that names the key the server
//!   presented and what to put in the configuration.
//! - **Nothing waits forever**: the whole connect is bounded by `connect_timeout`, every SFTP
//!   request by `timeout`, and keepalives (3 unanswered close the session) catch a silent peer.
//! - **Fast transfers**: up to 64 reads of 256 KiB or writes of 64 KiB in flight — fewer on a
//!   slow link, so no request waits long enough to time out — a 16 MiB SSH window, AES-GCM
//!   first on processors with AES instructions. `examples/sftp_throughput.rs` compares it
//!   with OpenSSH's `sftp`.
//! - **Listings in one pass**: one raw readdir loop with the attributes of every entry.
//! - **No overwrites when moving**: `hardlink@openssh.com`, else a check and
//!   `posix-rename@openssh.com`, else a plain rename (which OpenSSH refuses onto an existing
//!   file). Uploads go to `.name.part` and are renamed over the target once closed and checked.
//!
//! The parts: `session` opens the SSH connection (handshake, algorithm preferences, keepalive,
//! login); `host_key` decides whether the key the server presents is trusted; `transfer` moves
//! a file's content with many requests in flight, paced to the link. This module holds
//! [`SftpTransport`] itself: opening the SFTP channel, running each request under the
//! operation timeout with its errors mapped, and the [`Transport`] operations.

mod host_key;
mod session;
mod transfer;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use russh::client::Handle;
use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::extensions;
use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet, Status, StatusCode};

use super::{Entry, Fetched, Transport, TransportError, join};
use crate::config::{SftpAuth, SftpPartner};
use host_key::HostKeyCheck;
use session::{handshake_verified, load_key, login};
use transfer::{IN_FLIGHT, MAX_CHUNK, SAFE_CHUNK, WRITE_CHUNK};

pub use host_key::fingerprint;

/// Largest SFTP message we accept from the server (a 256 KiB read reply plus headers).
const SFTP_PACKET: u32 = 512 * 1024;
const POSIX_RENAME: &str = "posix-rename@openssh.com";

/// An open SFTP session to one partner.
pub struct SftpTransport {
    /// `host:port`, for messages.
    server: String,
    ssh: Handle<HostKeyCheck>,
    sftp: Arc<RawSftpSession>,
    op_timeout: Duration,
    read_len: u32,
    write_len: u32,
    hardlink: bool,
    posix_rename: bool,
}

impl SftpTransport {
    /// Connects, verifies the host key, logs in and opens the SFTP subsystem, all within the
    /// partner's `connect_timeout`.
    pub async fn connect(cfg: &SftpPartner) -> Result<SftpTransport, TransportError> {
        match tokio::time::timeout(cfg.connect_timeout, Self::open(cfg)).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout {
                op: format!("connect to {}:{}", cfg.host, cfg.port),
                secs: whole_secs(cfg.connect_timeout),
            }),
        }
    }

    async fn open(cfg: &SftpPartner) -> Result<SftpTransport, TransportError> {
        let server = format!("{}:{}", cfg.host, cfg.port);
        // A bad key file is a configuration problem: find out before touching the network.
        let key = match &cfg.auth {
            SftpAuth::Key { path, passphrase } => Some(load_key(cfg, path, passphrase.as_deref())?),
            SftpAuth::Password(_) => None,
        };
        let mut ssh = handshake_verified(cfg).await?;
        login(&mut ssh, cfg, key).await?;

        let ssh_error = |e: russh::Error| {
            TransportError::Connection(format!("{server}: opening the SFTP channel: {e}"))
        };
        let channel = ssh.channel_open_session().await.map_err(ssh_error)?;
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(ssh_error)?;
        let sftp_cfg = russh_sftp::client::Config {
            max_packet_len: SFTP_PACKET,
            max_concurrent_reads: IN_FLIGHT,
            max_concurrent_writes: IN_FLIGHT,
            max_write_packet_len: WRITE_CHUNK as u32,
            request_timeout_secs: whole_secs(cfg.op_timeout).max(1),
        };
        let mut raw = RawSftpSession::new_with_config(channel.into_stream(), sftp_cfg);
        let sftp_error =
            |e: SftpError| TransportError::Connection(format!("{server}: starting SFTP: {e}"));
        let version = raw.init().await.map_err(sftp_error)?;
        let has = |name: &str, ver: &str| version.extensions.get(name).is_some_and(|v| v == ver);
        let (mut read_len, mut write_len) = (SAFE_CHUNK, SAFE_CHUNK);
        if has(extensions::LIMITS, "1") {
            let limits = raw.limits().await.map_err(sftp_error)?;
            let clamp = |limit: u64| {
                if limit == 0 {
                    MAX_CHUNK
                } else {
                    limit.min(MAX_CHUNK)
                }
            };
            read_len = clamp(limits.max_read_len);
            write_len = clamp(limits.max_write_len).min(WRITE_CHUNK);
            raw.set_limits(limits.into());
        }
        Ok(SftpTransport {
            server,
            hardlink: has(extensions::HARDLINK, "1"),
            posix_rename: has(POSIX_RENAME, "1"),
            ssh,
            sftp: Arc::new(raw),
            op_timeout: cfg.op_timeout,
            read_len: read_len as u32,
            write_len: write_len as u32,
        })
    }

    /// Runs one SFTP request within the operation timeout; the inner result is the server's.
    async fn timed<T>(
        &self,
        op: &str,
        path: &str,
        request: impl Future<Output = Result<T, SftpError>>,
    ) -> Result<Result<T, SftpError>, TransportError> {
        tokio::time::timeout(self.op_timeout, request)
            .await
            .map_err(|_| self.timeout(op, path))
    }

    /// Opens `path` for reading; the handle.
    async fn open_read(&self, path: &str) -> Result<String, TransportError> {
        Ok(self
            .call(
                "open",
                path,
                self.sftp
                    .open(path, OpenFlags::READ, FileAttributes::empty()),
            )
            .await?
            .handle)
    }

    /// Runs one SFTP request within the operation timeout, errors mapped.
    async fn call<T>(
        &self,
        op: &str,
        path: &str,
        request: impl Future<Output = Result<T, SftpError>>,
    ) -> Result<T, TransportError> {
        self.timed(op, path, request)
            .await?
            .map_err(|e| self.error(op, path, e))
    }

    fn timeout(&self, op: &str, path: &str) -> TransportError {
        TransportError::Timeout {
            op: format!("{op} {path} on {}", self.server),
            secs: whole_secs(self.op_timeout),
        }
    }

    /// What an SFTP failure means for the caller.
    fn error(&self, op: &str, path: &str, e: SftpError) -> TransportError {
        match e {
            SftpError::Status(status) => status_error(&self.server, path, status),
            SftpError::Timeout => self.timeout(op, path),
            SftpError::Limited(detail) => TransportError::Other {
                path: path.to_string(),
                detail,
            },
            _ if self.ssh.is_closed() => {
                TransportError::Connection(format!("connection to {} lost", self.server))
            }
            SftpError::UnexpectedPacket => TransportError::Other {
                path: path.to_string(),
                detail: format!("{op}: unexpected reply from the server"),
            },
            SftpError::IO(detail) | SftpError::UnexpectedBehavior(detail) => {
                TransportError::Connection(format!("{}: SFTP session: {detail}", self.server))
            }
        }
    }

    /// Closes a handle after `error`, best effort; not at all when the session is hung or
    /// gone, so a timeout is not waited for twice.
    async fn close_after(&self, error: &TransportError, path: &str, handle: String) {
        if !is_outage(error) {
            let _ = self.call("close", path, self.sftp.close(handle)).await;
        }
    }

    /// Attributes of `path`, `None` if it does not exist.
    async fn attrs(&self, path: &str) -> Result<Option<FileAttributes>, TransportError> {
        match self.timed("stat", path, self.sftp.stat(path)).await? {
            Ok(attrs) => Ok(Some(attrs.attrs)),
            Err(SftpError::Status(s)) if s.status_code == StatusCode::NoSuchFile => Ok(None),
            Err(e) => Err(self.error("stat", path, e)),
        }
    }

    async fn exists(&self, path: &str) -> Result<bool, TransportError> {
        Ok(self.attrs(path).await?.is_some())
    }

    /// `posix-rename@openssh.com`: replaces `to` if it exists.
    async fn posix_rename(&self, from: &str, to: &str) -> Result<(), TransportError> {
        let reply = self
            .call(
                "rename",
                from,
                self.sftp.extended(POSIX_RENAME, ssh_strings(&[from, to])),
            )
            .await?;
        match reply {
            Packet::Status(s) if s.status_code == StatusCode::Ok => Ok(()),
            Packet::Status(s) => Err(status_error(&self.server, from, s)),
            _ => Err(TransportError::Other {
                path: from.to_string(),
                detail: "unexpected reply to posix-rename".to_string(),
            }),
        }
    }
}

impl Transport for SftpTransport {
    async fn list(&mut self, dir: &str) -> Result<Vec<Entry>, TransportError> {
        let handle = self
            .call("open folder", dir, self.sftp.opendir(dir))
            .await?
            .handle;
        let mut entries = Vec::new();
        // One readdir loop: each reply carries a batch of names with their attributes.
        let listed = loop {
            match self
                .timed("list", dir, self.sftp.readdir(handle.as_str()))
                .await
            {
                Ok(Ok(batch)) => entries.extend(
                    batch
                        .files
                        .into_iter()
                        .filter(|f| f.filename != "." && f.filename != "..")
                        .map(|f| entry(f.filename, &f.attrs)),
                ),
                Ok(Err(SftpError::Status(s))) if s.status_code == StatusCode::Eof => break Ok(()),
                Ok(Err(e)) => break Err(self.error("list", dir, e)),
                Err(e) => break Err(e),
            }
        };
        if let Err(e) = listed {
            self.close_after(&e, dir, handle).await;
            return Err(e);
        }
        self.call("close folder", dir, self.sftp.close(handle))
            .await?;
        Ok(entries)
    }

    async fn stat(&mut self, path: &str) -> Result<Option<Entry>, TransportError> {
        Ok(self
            .attrs(path)
            .await?
            .map(|attrs| entry(base_name(path).to_string(), &attrs)))
    }

    async fn fetch(
        &mut self,
        path: &str,
        dest: &Path,
        max_size: u64,
    ) -> Result<Fetched, TransportError> {
        let handle = self.open_read(path).await?;
        let fetched = self.download(path, &handle, dest, max_size).await;
        match &fetched {
            // Nothing was written through this handle, so a failed close loses nothing.
            Ok(_) => {
                let _ = self.call("close", path, self.sftp.close(handle)).await;
            }
            Err(e) => {
                self.close_after(e, path, handle).await;
                let _ = tokio::fs::remove_file(dest).await;
            }
        }
        fetched
    }

    async fn read_tail(&mut self, path: &str, n: u64) -> Result<Vec<u8>, TransportError> {
        let handle = self.open_read(path).await?;
        let tail = async {
            let size = self
                .call("stat", path, self.sftp.fstat(handle.as_str()))
                .await?
                .attrs
                .size
                .unwrap_or(0);
            let mut offset = size.saturating_sub(n);
            let mut out = Vec::with_capacity(n.min(size) as usize);
            while (out.len() as u64) < n {
                let want = (n - out.len() as u64).min(u64::from(self.read_len)) as u32;
                match self
                    .timed("read", path, self.sftp.read(handle.as_str(), offset, want))
                    .await?
                {
                    Ok(data) if data.data.is_empty() => break,
                    Ok(data) => {
                        offset += data.data.len() as u64;
                        out.extend_from_slice(&data.data);
                    }
                    Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => break,
                    Err(e) => return Err(self.error("read", path, e)),
                }
            }
            Ok(out)
        }
        .await;
        match &tail {
            Ok(_) => {
                let _ = self.call("close", path, self.sftp.close(handle)).await;
            }
            Err(e) => self.close_after(e, path, handle).await,
        }
        tail
    }

    async fn rename_noclobber(&mut self, from: &str, to: &str) -> Result<(), TransportError> {
        let mut target_checked = false;
        if self.hardlink {
            // A hard link is refused when the target exists: no window in which a file there
            // could be replaced.
            match self.timed("link", to, self.sftp.hardlink(from, to)).await? {
                Ok(_) => {
                    if let Err(e) = self.call("remove", from, self.sftp.remove(from)).await {
                        // Undo, so the file keeps exactly one name and the move can be retried.
                        let _ = self.call("remove", to, self.sftp.remove(to)).await;
                        return Err(e);
                    }
                    return Ok(());
                }
                // OpenSSH reports "exists" as a generic failure: look.
                Err(_) if self.exists(to).await? => {
                    return Err(TransportError::AlreadyExists {
                        path: to.to_string(),
                    });
                }
                // No hard links here (another file system, files owned by another user with
                // protected hard links, a folder): fall back to a rename.
                Err(_) => target_checked = true,
            }
        }
        if !target_checked && self.exists(to).await? {
            return Err(TransportError::AlreadyExists {
                path: to.to_string(),
            });
        }
        let renamed = if self.posix_rename {
            self.posix_rename(from, to).await
        } else {
            // SFTP's own rename refuses an existing target (OpenSSH, and the protocol draft).
            self.call("rename", from, self.sftp.rename(from, to))
                .await
                .map(|_| ())
        };
        match renamed {
            Err(TransportError::Other { .. }) if self.exists(to).await? => {
                Err(TransportError::AlreadyExists {
                    path: to.to_string(),
                })
            }
            other => other,
        }
    }

    async fn mkdir_all(&mut self, dir: &str) -> Result<(), TransportError> {
        let dir = dir.trim_end_matches('/');
        // Walk up to the first folder that exists, then create the missing ones downwards.
        let mut missing = Vec::new();
        let mut current = Some(dir);
        while let Some(path) = current.filter(|p| !p.is_empty()) {
            match self.attrs(path).await? {
                Some(attrs) if is_dir(&attrs) => break,
                Some(_) => {
                    return Err(TransportError::Other {
                        path: path.to_string(),
                        detail: "exists and is not a folder".to_string(),
                    });
                }
                None => missing.push(path),
            }
            current = parent(path);
        }
        for path in missing.into_iter().rev() {
            match self
                .timed(
                    "mkdir",
                    path,
                    self.sftp.mkdir(path, FileAttributes::empty()),
                )
                .await?
            {
                Ok(_) => {}
                Err(e) => match self.attrs(path).await? {
                    // Created meanwhile by someone else: fine.
                    Some(attrs) if is_dir(&attrs) => {}
                    _ => return Err(self.error("mkdir", path, e)),
                },
            }
        }
        Ok(())
    }

    async fn put(&mut self, path: &str, data: &[u8]) -> Result<(), TransportError> {
        let (dir, name) = split(path);
        let part = join(dir, &format!(".{name}.part"));
        let handle = self
            .call(
                "create",
                &part,
                self.sftp.open(
                    part.as_str(),
                    OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE,
                    FileAttributes::empty(),
                ),
            )
            .await?
            .handle;
        let written = self.upload(&part, &handle, data).await;
        // Some servers report write errors only at the close: it is always awaited, unless
        // the session is hung or gone.
        let closed = match &written {
            Err(e) if is_outage(e) => Ok(()),
            _ => self
                .call("close", &part, self.sftp.close(handle))
                .await
                .map(|_| ()),
        };
        let published = async {
            written?;
            closed?;
            let size = self.attrs(&part).await?.and_then(|a| a.size);
            if size != Some(data.len() as u64) {
                return Err(TransportError::Other {
                    path: part.clone(),
                    detail: format!(
                        "the server holds {size:?} bytes after writing {}",
                        data.len()
                    ),
                });
            }
            if self.posix_rename {
                self.posix_rename(&part, path).await
            } else {
                // Not atomic, but the best a server without posix-rename allows.
                self.remove(path).await?;
                self.call("rename", &part, self.sftp.rename(part.as_str(), path))
                    .await
                    .map(|_| ())
            }
        }
        .await;
        if published.as_ref().is_err_and(|e| !is_outage(e)) {
            let _ = self
                .call("remove", &part, self.sftp.remove(part.as_str()))
                .await;
        }
        published
    }

    async fn remove(&mut self, path: &str) -> Result<(), TransportError> {
        match self.timed("remove", path, self.sftp.remove(path)).await? {
            Ok(_) => Ok(()),
            Err(SftpError::Status(s)) if s.status_code == StatusCode::NoSuchFile => Ok(()),
            Err(e) => Err(self.error("remove", path, e)),
        }
    }

    async fn close(&mut self) -> Result<(), TransportError> {
        let _ = self.sftp.close_session();
        let bye = self
            .ssh
            .disconnect(russh::Disconnect::ByApplication, "", "en");
        // The session ends either way; a peer that does not answer does not matter here.
        let _ = tokio::time::timeout(self.op_timeout, bye).await;
        Ok(())
    }
}

/// A hung or lost session: nothing more is sent on it.
fn is_outage(error: &TransportError) -> bool {
    matches!(
        error,
        TransportError::Timeout { .. } | TransportError::Connection(_)
    )
}

/// The transport error for an SFTP status reply.
fn status_error(server: &str, path: &str, status: Status) -> TransportError {
    let path = path.to_string();
    match status.status_code {
        StatusCode::NoSuchFile => TransportError::NotFound { path },
        StatusCode::PermissionDenied => TransportError::PermissionDenied { path },
        StatusCode::NoConnection | StatusCode::ConnectionLost => {
            TransportError::Connection(format!("connection to {server} lost"))
        }
        code => TransportError::Other {
            path,
            detail: if status.error_message.is_empty() {
                code.to_string()
            } else {
                format!("{code}: {}", status.error_message)
            },
        },
    }
}

/// An entry from SFTP attributes; only regular files count as files.
fn entry(name: String, attrs: &FileAttributes) -> Entry {
    Entry {
        name,
        size: attrs.size.unwrap_or(0),
        mtime: i64::from(attrs.mtime.unwrap_or(0)),
        is_file: attrs.permissions.is_some_and(|p| p & 0o170000 == 0o100000),
    }
}

fn is_dir(attrs: &FileAttributes) -> bool {
    attrs.permissions.is_some_and(|p| p & 0o170000 == 0o040000)
}

/// Request data of the `@openssh.com` extensions: SSH strings one after the other.
fn ssh_strings(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// Folder and name of a path (`/a/b.xml` → `/a`, `b.xml`; `b.xml` → ``, `b.xml`).
fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

fn base_name(path: &str) -> &str {
    split(path.trim_end_matches('/')).1
}

/// The folder containing `path`, `None` at the top.
fn parent(path: &str) -> Option<&str> {
    match split(path) {
        ("/", _) | ("", _) => None,
        (dir, _) => Some(dir),
    }
}

/// Whole seconds, rounded up, for messages and second-granular timeouts.
fn whole_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_folder_and_name() {
        assert_eq!(split("/a/b.xml"), ("/a", "b.xml"));
        assert_eq!(split("/b.xml"), ("/", "b.xml"));
        assert_eq!(split("b.xml"), ("", "b.xml"));
        assert_eq!(parent("/a/b/c"), Some("/a/b"));
        assert_eq!(parent("/a"), None);
        assert_eq!(parent("a"), None);
        assert_eq!(base_name("/a/b/"), "b");
        assert_eq!(
            ssh_strings(&["ab", ""]),
            vec![0, 0, 0, 2, b'a', b'b', 0, 0, 0, 0]
        );
        assert_eq!(whole_secs(Duration::from_millis(1500)), 2);
        assert_eq!(whole_secs(Duration::from_secs(3)), 3);
    }

    #[test]
    fn status_codes_map_to_consequences() {
        let status = |code| Status {
            id: 1,
            status_code: code,
            error_message: "msg".to_string(),
            language_tag: String::new(),
        };
        assert!(matches!(
            status_error("s", "/p", status(StatusCode::NoSuchFile)),
            TransportError::NotFound { .. }
        ));
        assert!(matches!(
            status_error("s", "/p", status(StatusCode::PermissionDenied)),
            TransportError::PermissionDenied { .. }
        ));
        assert!(matches!(
            status_error("s", "/p", status(StatusCode::ConnectionLost)),
            TransportError::Connection(_)
        ));
        assert!(matches!(
            status_error("s", "/p", status(StatusCode::Failure)),
            TransportError::Other { .. }
        ));
    }
}
