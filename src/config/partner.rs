//! `[partners.<name>]`: an SFTP server (with its pinned host key and login) or a local folder.

use std::path::PathBuf;
use std::time::Duration;

use super::ConfigError;
use super::read::{Item, Node};

/// `[partners.<name>]`: a place files are exchanged.
#[derive(Debug, Clone)]
pub struct Partner {
    /// The name in the config (`[A-Za-z0-9_.-]+`).
    pub name: String,
    pub transport: PartnerTransport,
    /// For date parts in archive paths and cron (default UTC).
    pub timezone: jiff::tz::TimeZone,
    /// Sessions open at once to this partner (default 2).
    pub max_sessions: usize,
    /// The local folder the partner's paths are under, when edi-bridge can see them: a
    /// local-folder partner's `root`, or an SFTP partner's `local_root` (edi-bridge runs on
    /// the SFTP host; e.g. the partner's chroot, or "/" without one). The daemon watches the
    /// inboxes there.
    pub local_root: Option<PathBuf>,
}

/// An SFTP server (`host`) or a local folder tree (`root`).
#[derive(Debug, Clone)]
pub enum PartnerTransport {
    Sftp(SftpPartner),
    /// Every flow path is under `root`.
    Local {
        root: PathBuf,
    },
}

/// An SFTP partner's connection settings.
#[derive(Debug, Clone)]
pub struct SftpPartner {
    pub host: String,
    /// `port`, default 22.
    pub port: u16,
    pub user: String,
    pub auth: SftpAuth,
    pub host_key: HostKeyPolicy,
    /// `connect_timeout`, default "15s".
    pub connect_timeout: Duration,
    /// `timeout` of one SFTP operation, default "30s".
    pub op_timeout: Duration,
    /// `keepalive`, default "15s" (3 unanswered keepalives close the session).
    pub keepalive: Duration,
}

/// How edi-bridge logs in to an SFTP partner. Secrets are never printed.
#[derive(Clone)]
pub enum SftpAuth {
    /// `key_file` (ed25519 or RSA, OpenSSH format), optional `key_passphrase`.
    Key {
        path: PathBuf,
        passphrase: Option<String>,
    },
    Password(String),
}

impl std::fmt::Debug for SftpAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SftpAuth::Key { path, .. } => f.debug_struct("Key").field("path", path).finish(),
            SftpAuth::Password(_) => f.write_str("Password(***)"),
        }
    }
}

/// How the server's host key is verified. There is no "accept anything".
#[derive(Debug, Clone)]
pub enum HostKeyPolicy {
    /// `host_key = "SHA256:…"`: the key's OpenSSH fingerprint must equal this (kept without
    /// base64 `=` padding, as OpenSSH prints it).
    Fingerprint(String),
    /// `known_hosts = "path"`; with `accept_new = true` an unknown host is recorded there on
    /// first contact (a changed key is still refused).
    KnownHosts { path: PathBuf, accept_new: bool },
}

/// Keys that only make sense for an SFTP partner.
const SFTP_KEYS: [&str; 13] = [
    "host",
    "port",
    "user",
    "key_file",
    "key_passphrase",
    "password",
    "host_key",
    "known_hosts",
    "accept_new",
    "connect_timeout",
    "timeout",
    "keepalive",
    "local_root",
];

pub(super) fn parse_partner(name: &str, mut t: Node) -> Result<Partner, ConfigError> {
    let timezone = match t.take("timezone") {
        Some(item) => item.timezone()?,
        None => jiff::tz::TimeZone::UTC,
    };
    let max_sessions = t
        .take("max_sessions")
        .map(|i| i.count(1..=64))
        .transpose()?;
    let local_root;
    let transport = match (t.has("host"), t.take("root")) {
        (true, Some(root)) => {
            return Err(root.err(
                "a partner is either an SFTP server (host) or a local folder (root), not both"
                    .to_string(),
            ));
        }
        (false, Some(root)) => {
            let root = root.path()?;
            if let Some(key) = SFTP_KEYS.iter().find(|k| t.has(k)) {
                return Err(t.cx.err(
                    &t.child_key(key),
                    "is an SFTP setting; a local-folder partner (root) takes only root, \
                     timezone and max_sessions",
                ));
            }
            local_root = Some(root.clone());
            PartnerTransport::Local { root }
        }
        (true, None) => {
            local_root = t.take("local_root").map(|i| i.path()).transpose()?;
            PartnerTransport::Sftp(parse_sftp(&mut t)?)
        }
        (false, None) => {
            return Err(t.cx.err(
                &t.key,
                "expected host (an SFTP partner) or root (a local-folder partner)",
            ));
        }
    };
    t.finish()?;
    Ok(Partner {
        name: name.to_string(),
        transport,
        timezone,
        max_sessions: max_sessions.unwrap_or(2),
        local_root,
    })
}

pub(super) fn parse_sftp(t: &mut Node) -> Result<SftpPartner, ConfigError> {
    let host_item = t.require("host", "the SFTP server's host name")?;
    let host_key = host_item.key.clone();
    let host = host_item.text()?;
    // One colon is a port written into the host; IPv6 addresses have several.
    if host.contains(|c: char| c.is_whitespace() || c == '/') || host.matches(':').count() == 1 {
        return Err(t.cx.err(
            &host_key,
            format!("expected a host name or IP address (put the port in port), found {host:?}"),
        ));
    }
    let port = match t.take("port") {
        Some(item) => item.count(1..=65535)? as u16,
        None => 22,
    };
    let user = t
        .require("user", "the SFTP login, e.g. user = \"odoo\"")?
        .text()?;
    let passphrase = t.take("key_passphrase");
    let auth = match (t.take("key_file"), t.take("password")) {
        (Some(_), Some(password)) => {
            return Err(password.err("give either key_file or password, not both".to_string()));
        }
        (Some(key_file), None) => SftpAuth::Key {
            path: key_file.path()?,
            passphrase: passphrase.map(Item::secret).transpose()?,
        },
        (None, Some(password)) => {
            if let Some(passphrase) = passphrase {
                return Err(passphrase.err("is only used with key_file".to_string()));
            }
            SftpAuth::Password(password.secret()?)
        }
        (None, None) => {
            return Err(t.missing(
                "key_file",
                "a private key file (key_file = \"keys/partner_ed25519\", ed25519 or RSA in \
                 OpenSSH format) or password = \"${PARTNER_SFTP_PASSWORD}\"",
            ));
        }
    };
    let accept_new = t.take("accept_new");
    let host_key = match (t.take("host_key"), t.take("known_hosts")) {
        (Some(_), Some(known_hosts)) => {
            return Err(known_hosts.err(
                "give either host_key (a pinned fingerprint) or known_hosts, not both".to_string(),
            ));
        }
        (Some(pin), None) => {
            if let Some(accept_new) = accept_new {
                return Err(accept_new.err(
                    "only works with known_hosts (the first key seen is recorded there); a \
                     pinned host_key has nothing to record"
                        .to_string(),
                ));
            }
            HostKeyPolicy::Fingerprint(pin.fingerprint()?)
        }
        (None, Some(known_hosts)) => HostKeyPolicy::KnownHosts {
            path: known_hosts.path()?,
            accept_new: accept_new.map(Item::boolean).transpose()?.unwrap_or(false),
        },
        (None, None) => {
            return Err(t.missing(
                "host_key",
                &format!(
                    "host keys are always verified: pin the server's key with \
                     host_key = \"SHA256:…\" (get it with `ssh-keyscan -p {port} {host} > \
                     key.pub && ssh-keygen -lf key.pub`), or name a known_hosts file \
                     (known_hosts = \"keys/known_hosts\", with accept_new = true to record the \
                     key on first contact)"
                ),
            ));
        }
    };
    let connect_timeout = t
        .take("connect_timeout")
        .map(Item::positive_duration)
        .transpose()?;
    let op_timeout = t.take("timeout").map(Item::positive_duration).transpose()?;
    let keepalive = t
        .take("keepalive")
        .map(Item::positive_duration)
        .transpose()?;
    Ok(SftpPartner {
        host,
        port,
        user,
        auth,
        host_key,
        connect_timeout: connect_timeout.unwrap_or(Duration::from_secs(15)),
        op_timeout: op_timeout.unwrap_or(Duration::from_secs(30)),
        keepalive: keepalive.unwrap_or(Duration::from_secs(15)),
    })
}

impl Item<'_> {
    fn timezone(self) -> Result<jiff::tz::TimeZone, ConfigError> {
        let key = self.key.clone();
        let cx = self.cx;
        let name = self.text()?;
        jiff::tz::TimeZone::get(&name).map_err(|e| {
            cx.err(
                &key,
                format!("unknown time zone {name:?} ({e}); expected an IANA name such as \"Europe/Brussels\" or \"UTC\""),
            )
        })
    }

    /// `host_key`: an OpenSSH SHA256 fingerprint as `ssh-keygen -lf` prints it.
    fn fingerprint(self) -> Result<String, ConfigError> {
        let expected = "a fingerprint such as \"SHA256:Xl0i…\" (the second field of \
                        `ssh-keygen -lf key.pub`)";
        match self.value.as_str() {
            Some(s)
                if s.len() > "SHA256:".len()
                    && s.starts_with("SHA256:")
                    && !s.contains(char::is_whitespace) =>
            {
                // OpenSSH prints fingerprints without base64 padding; compare like it.
                Ok(s.trim_end_matches('=').to_string())
            }
            _ => Err(self.expected(expected)),
        }
    }
}
