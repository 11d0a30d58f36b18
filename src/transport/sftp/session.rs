//! The SSH session under the SFTP channel: one handshake with the algorithms preferred here
//! (the recorded host-key kind first, AES-GCM first where the processor has AES
//! instructions), a large window and keepalives; the retry that finds the key a pinned
//! fingerprint belongs to; and the login with the partner's key or password. Whether a key is
//! trusted is decided in `host_key`, during the handshake.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use russh::client::{self, AuthResult, Handle};
use russh::keys::known_hosts;
use russh::keys::{Algorithm, EcdsaCurve, HashAlg, PrivateKey, PrivateKeyWithHashAlg};

use super::host_key::{HandshakeError, HostKeyCheck};
use crate::config::{HostKeyPolicy, SftpAuth, SftpPartner};
use crate::transport::TransportError;

/// SSH channel window: large, so a long or slow link is not throttled by flow control.
const WINDOW: u32 = 16 * 1024 * 1024;
/// Largest SSH packet we accept (russh warns above 65535).
const SSH_PACKET: u32 = 65535;
/// Keepalives that may go unanswered before the session is closed.
const KEEPALIVE_MAX: usize = 3;

/// Host-key algorithms to ask for: `first` (the recorded key's kind) ahead of russh's order.
fn preferred_key_algorithms(first: &[Algorithm]) -> Vec<Algorithm> {
    let mut out = Vec::new();
    let mut push = |a: Algorithm| {
        if !out.contains(&a) {
            out.push(a);
        }
    };
    for a in first {
        if is_rsa(a) {
            // The key type is ssh-rsa; the signatures to ask for are SHA-2.
            push(Algorithm::Rsa {
                hash: Some(HashAlg::Sha512),
            });
            push(Algorithm::Rsa {
                hash: Some(HashAlg::Sha256),
            });
        } else {
            push(a.clone());
        }
    }
    for a in russh::Preferred::DEFAULT.key.iter() {
        push(a.clone());
    }
    out
}

fn is_rsa(a: &Algorithm) -> bool {
    matches!(a, Algorithm::Rsa { .. })
}

/// Host-key kinds a server may hold, for finding the one a pinned fingerprint belongs to.
fn key_kinds() -> Vec<Vec<Algorithm>> {
    vec![
        vec![Algorithm::Ed25519],
        vec![Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP256,
        }],
        vec![Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP384,
        }],
        vec![Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP521,
        }],
        vec![
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha512),
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha256),
            },
        ],
    ]
}

/// Ciphers in order: AES-GCM first where the processor has AES instructions (faster for both
/// ends: measured with `examples/sftp_throughput.rs`), else russh's order (ChaCha20 first).
fn preferred_ciphers() -> Vec<russh::cipher::Name> {
    let mut order = russh::Preferred::DEFAULT.cipher.to_vec();
    if aes_in_hardware() {
        order.retain(|c| *c != russh::cipher::AES_256_GCM);
        order.insert(0, russh::cipher::AES_256_GCM);
    }
    order
}

#[cfg(target_arch = "x86_64")]
fn aes_in_hardware() -> bool {
    std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")
}

#[cfg(target_arch = "aarch64")]
fn aes_in_hardware() -> bool {
    std::arch::is_aarch64_feature_detected!("aes")
        && std::arch::is_aarch64_feature_detected!("pmull")
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn aes_in_hardware() -> bool {
    false
}

/// One SSH handshake asking for the given host-key algorithms.
async fn handshake(
    cfg: &SftpPartner,
    keys: Vec<Algorithm>,
) -> Result<Handle<HostKeyCheck>, HandshakeError> {
    let config = client::Config {
        // `keepalive = "0s"` turns keepalives off (russh would otherwise send them non-stop).
        keepalive_interval: Some(cfg.keepalive).filter(|k| !k.is_zero()),
        keepalive_max: KEEPALIVE_MAX,
        // A backstop for a peer that sends nothing at all, keepalive replies included.
        inactivity_timeout: Some(cfg.keepalive * (KEEPALIVE_MAX as u32 + 2))
            .filter(|t| !t.is_zero()),
        window_size: WINDOW,
        maximum_packet_size: SSH_PACKET,
        // Request/response traffic: do not let Nagle hold small requests back.
        nodelay: true,
        preferred: russh::Preferred {
            key: Cow::Owned(keys),
            cipher: Cow::Owned(preferred_ciphers()),
            ..russh::Preferred::DEFAULT
        },
        ..client::Config::default()
    };
    let check = HostKeyCheck {
        host: cfg.host.clone(),
        port: cfg.port,
        policy: cfg.host_key.clone(),
    };
    client::connect(Arc::new(config), (cfg.host.as_str(), cfg.port), check).await
}

/// Connects with the host key verified. The server is asked first for the kind of key on
/// record; when a pinned fingerprint does not match the key presented, the server's other
/// kinds of keys are tried, since the pin may be of one of those.
pub(super) async fn handshake_verified(
    cfg: &SftpPartner,
) -> Result<Handle<HostKeyCheck>, TransportError> {
    let server = format!("{}:{}", cfg.host, cfg.port);
    let recorded: Vec<Algorithm> = match &cfg.host_key {
        HostKeyPolicy::KnownHosts { path, .. } => {
            known_hosts::known_host_keys_path(&cfg.host, cfg.port, path)
                .unwrap_or_default()
                .into_iter()
                .map(|(_, key)| key.algorithm())
                .collect()
        }
        HostKeyPolicy::Fingerprint(_) => Vec::new(),
    };
    let first = handshake(cfg, preferred_key_algorithms(&recorded)).await;
    let (mut detail, presented) = match first {
        Ok(ssh) => return Ok(ssh),
        Err(HandshakeError::HostKey {
            detail,
            mismatch: Some((presented, _)),
        }) => (detail, presented),
        Err(e) => return Err(handshake_error(&server, e)),
    };
    let mut others = Vec::new();
    for kind in key_kinds() {
        let already_seen = kind
            .iter()
            .any(|a| *a == presented || (is_rsa(a) && is_rsa(&presented)));
        if already_seen {
            continue;
        }
        // A server without this kind of key ends the attempt during the exchange; another
        // key that does not match either is refused in the same way: only a match counts.
        match handshake(cfg, kind).await {
            Ok(ssh) => return Ok(ssh),
            Err(HandshakeError::HostKey {
                mismatch: Some((algorithm, fingerprint)),
                ..
            }) => others.push(format!("{} {fingerprint}", algorithm.as_str())),
            Err(_) => {}
        }
    }
    if !others.is_empty() {
        detail += &format!(
            ". Its other keys do not match the pin either: {}",
            others.join(", ")
        );
    }
    Err(TransportError::HostKey {
        host: server,
        detail,
    })
}

fn handshake_error(server: &str, e: HandshakeError) -> TransportError {
    match e {
        HandshakeError::HostKey { detail, .. } => TransportError::HostKey {
            host: server.to_string(),
            detail,
        },
        HandshakeError::Ssh(russh::Error::IO(e)) => {
            TransportError::Connection(format!("cannot reach {server}: {e}"))
        }
        HandshakeError::Ssh(russh::Error::Disconnect | russh::Error::HUP) => {
            TransportError::Connection(format!(
                "{server} closed the connection during the SSH handshake"
            ))
        }
        HandshakeError::Ssh(e) => TransportError::Connection(format!("{server}: SSH: {e}")),
    }
}

/// Reads the partner's private key; every failure here is a configuration problem.
pub(super) fn load_key(
    cfg: &SftpPartner,
    path: &PathBuf,
    passphrase: Option<&str>,
) -> Result<PrivateKey, TransportError> {
    let fail = |detail: String| TransportError::Auth {
        host: format!("{}:{}", cfg.host, cfg.port),
        user: cfg.user.clone(),
        detail,
    };
    let file = path.display();
    russh::keys::load_secret_key(path, passphrase).map_err(|e| match e {
        russh::keys::Error::KeyIsEncrypted => fail(format!(
            "key file {file} is protected by a passphrase: set key_passphrase"
        )),
        russh::keys::Error::IO(e) => fail(format!("cannot read key file {file}: {e}")),
        e if passphrase.is_some() => fail(format!(
            "cannot use key file {file} (is key_passphrase right?): {e}"
        )),
        e => fail(format!("cannot use key file {file}: {e}")),
    })
}

/// Logs in with the key or the password; a refusal is a configuration problem.
pub(super) async fn login(
    ssh: &mut Handle<HostKeyCheck>,
    cfg: &SftpPartner,
    key: Option<PrivateKey>,
) -> Result<(), TransportError> {
    let server = format!("{}:{}", cfg.host, cfg.port);
    let lost = |e: russh::Error| TransportError::Connection(format!("{server}: during login: {e}"));
    let (result, what) = match (&cfg.auth, key) {
        (SftpAuth::Key { path, .. }, Some(key)) => {
            let hash = if key.algorithm().is_rsa() {
                // SHA-2 signatures (rsa-sha2-512/256); SHA-1 only if the server offers nothing
                // else. A server that does not say is tried with SHA-256.
                match ssh.best_supported_rsa_hash().await.map_err(lost)? {
                    Some(hash) => hash,
                    None => Some(HashAlg::Sha256),
                }
            } else {
                None
            };
            let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
            (
                ssh.authenticate_publickey(&cfg.user, key).await,
                format!("the key {}", path.display()),
            )
        }
        (SftpAuth::Password(password), _) => (
            ssh.authenticate_password(&cfg.user, password).await,
            "the password".to_string(),
        ),
        (SftpAuth::Key { .. }, None) => unreachable!("the key is loaded before connecting"),
    };
    match result.map_err(lost)? {
        AuthResult::Success => Ok(()),
        AuthResult::Failure {
            remaining_methods,
            partial_success,
        } => {
            let methods: Vec<&str> = remaining_methods.iter().map(<&str>::from).collect();
            let detail = if partial_success {
                format!(
                    "{what} was accepted, but the server also wants: {}",
                    methods.join(", ")
                )
            } else {
                format!(
                    "the server refused {what} (it accepts: {})",
                    methods.join(", ")
                )
            };
            Err(TransportError::Auth {
                host: server,
                user: cfg.user.clone(),
                detail,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_key_kind_is_asked_for_first() {
        let rsa = Algorithm::Rsa { hash: None };
        let order = preferred_key_algorithms(&[rsa]);
        assert_eq!(
            order[0],
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha512)
            }
        );
        assert!(order.contains(&Algorithm::Ed25519));
        let mut dedup = order.clone();
        dedup.dedup();
        assert_eq!(order.len(), dedup.len());
        assert_eq!(preferred_key_algorithms(&[])[0], Algorithm::Ed25519);
    }
}
