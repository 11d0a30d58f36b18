//! Whether the key an SFTP server presents is trusted, decided during the key exchange and
//! before anything is sent: against the partner's pinned fingerprint, or a known_hosts file
//! (learning a new host's key only with `accept_new`, never replacing a changed one). A
//! refusal names the key presented and what to put in the configuration to trust it.

use russh::client;
use russh::keys::known_hosts;
use russh::keys::{Algorithm, HashAlg, PublicKey, PublicKeyOrCertificate};

use crate::config::HostKeyPolicy;

/// The host-key check russh calls during the key exchange, before any login.
pub(super) struct HostKeyCheck {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) policy: HostKeyPolicy,
}

/// Why the SSH handshake stopped.
#[derive(Debug)]
pub(super) enum HandshakeError {
    Ssh(russh::Error),
    /// The presented key is not trusted; `mismatch` holds its algorithm and fingerprint when
    /// it differs from a pinned fingerprint (the server may hold another key that matches).
    HostKey {
        detail: String,
        mismatch: Option<(Algorithm, String)>,
    },
}

impl From<russh::Error> for HandshakeError {
    fn from(e: russh::Error) -> Self {
        HandshakeError::Ssh(e)
    }
}

impl client::Handler for HostKeyCheck {
    type Error = HandshakeError;

    async fn check_server_key(
        &mut self,
        presented: &PublicKeyOrCertificate,
    ) -> Result<bool, HandshakeError> {
        match presented {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                verify_host_key(&self.host, self.port, &self.policy, key).map(|()| true)
            }
            // Certificates are never asked for; refuse one rather than guess at trust.
            PublicKeyOrCertificate::Certificate(_) => Err(HandshakeError::HostKey {
                detail: "the server presented a host certificate, which is not supported: \
                         pin its host key instead"
                    .to_string(),
                mismatch: None,
            }),
        }
    }
}

/// The OpenSSH fingerprint of a key, as `ssh-keygen -lf` prints it: `SHA256:` + base64.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// How a host appears in a known_hosts file.
fn known_hosts_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Decides whether the presented host key is trusted under `policy`.
fn verify_host_key(
    host: &str,
    port: u16,
    policy: &HostKeyPolicy,
    key: &PublicKey,
) -> Result<(), HandshakeError> {
    let presented = fingerprint(key);
    let algorithm = key.algorithm();
    let refuse = |detail: String| HandshakeError::HostKey {
        detail,
        mismatch: None,
    };
    match policy {
        HostKeyPolicy::Fingerprint(pinned) => {
            // ssh-keygen prints no padding; tolerate a pasted one.
            if pinned.trim().trim_end_matches('=') == presented {
                Ok(())
            } else {
                Err(HandshakeError::HostKey {
                    detail: format!(
                        "the server presented the {} key {presented}, not the pinned {}. \
                         If the partner confirms that this is their key, set \
                         host_key = \"{presented}\" for this partner",
                        algorithm.as_str(),
                        pinned.trim()
                    ),
                    mismatch: Some((algorithm, presented)),
                })
            }
        }
        HostKeyPolicy::KnownHosts { path, accept_new } => {
            let name = known_hosts_name(host, port);
            let line = key
                .to_openssh()
                .map(|k| format!("{name} {k}"))
                .unwrap_or_default();
            let file = path.display();
            match known_hosts::check_known_hosts_path(host, port, key, path) {
                Ok(true) => Ok(()),
                Ok(false) => {
                    let recorded =
                        known_hosts::known_host_keys_path(host, port, path).unwrap_or_default();
                    if *accept_new && recorded.is_empty() {
                        known_hosts::learn_known_hosts_path(host, port, key, path)
                            .map_err(|e| refuse(format!("cannot record the key in {file}: {e}")))?;
                        tracing::info!(
                            host = %name,
                            key = %presented,
                            "recorded the new host key in {file}"
                        );
                        return Ok(());
                    }
                    let known = if recorded.is_empty() {
                        format!("{name} is not in {file}")
                    } else {
                        format!(
                            "{file} has keys of another type for {name} ({}), \
                             so this may not be the same server",
                            recorded
                                .iter()
                                .map(|(_, k)| k.algorithm().as_str().to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    };
                    Err(refuse(format!(
                        "the server presented the {} key {presented}, and {known}. If the \
                         partner confirms that this is their key, add the line `{line}` to \
                         {file}, or set host_key = \"{presented}\"{}",
                        algorithm.as_str(),
                        if recorded.is_empty() {
                            ", or set accept_new = true to record it on the next connection"
                        } else {
                            ""
                        }
                    )))
                }
                Err(russh::keys::Error::KeyChanged { line: changed }) => Err(refuse(format!(
                    "the server presented the {} key {presented}, but line {changed} of {file} \
                     holds a different key for {name}. The server's key changed, or someone is \
                     in between: ask the partner. If they confirm the new key, replace line \
                     {changed} with `{line}`, or set host_key = \"{presented}\"",
                    algorithm.as_str()
                ))),
                Err(e) => Err(refuse(format!("cannot read {file}: {e}"))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(line: &str) -> PublicKey {
        PublicKey::from_openssh(line).unwrap()
    }

    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const OTHER_ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA6rWI3G2sz07DnfFlrouTcysQlj2P+jpNSOEWD9OJ3X";

    #[test]
    fn fingerprint_is_openssh_format() {
        let fp = fingerprint(&key(ED25519));
        assert!(fp.starts_with("SHA256:"), "{fp}");
        assert_eq!(
            fp.len(),
            "SHA256:".len() + 43,
            "unpadded base64 of 32 bytes: {fp}"
        );
        assert!(!fp.ends_with('='));
    }

    #[test]
    fn pinned_fingerprint_must_match() {
        let k = key(ED25519);
        let pinned = HostKeyPolicy::Fingerprint(fingerprint(&k));
        assert!(verify_host_key("h", 22, &pinned, &k).is_ok());
        let other = key(OTHER_ED25519);
        match verify_host_key("h", 22, &pinned, &other) {
            Err(HandshakeError::HostKey { detail, mismatch }) => {
                assert!(detail.contains(&fingerprint(&other)), "{detail}");
                assert!(detail.contains("ssh-ed25519"), "{detail}");
                assert_eq!(mismatch, Some((Algorithm::Ed25519, fingerprint(&other))));
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn known_hosts_unknown_changed_and_accept_new() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let k = key(ED25519);
        let strict = HostKeyPolicy::KnownHosts {
            path: path.clone(),
            accept_new: false,
        };
        let Err(HandshakeError::HostKey { detail, .. }) = verify_host_key("h", 2222, &strict, &k)
        else {
            panic!("an unknown host must be refused")
        };
        assert!(detail.contains("accept_new"), "{detail}");
        assert!(detail.contains("[h]:2222 ssh-ed25519 AAAA"), "{detail}");
        assert!(!path.exists(), "nothing recorded without accept_new");

        let learning = HostKeyPolicy::KnownHosts {
            path: path.clone(),
            accept_new: true,
        };
        verify_host_key("h", 2222, &learning, &k).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let line = text
            .lines()
            .position(|l| l.starts_with("[h]:2222 ssh-ed25519 AAAA"))
            .unwrap_or_else(|| panic!("recorded: {text}"))
            + 1;
        verify_host_key("h", 2222, &strict, &k).unwrap();

        // A changed key is refused even with accept_new, and the file is left alone.
        let Err(HandshakeError::HostKey { detail, .. }) =
            verify_host_key("h", 2222, &learning, &key(OTHER_ED25519))
        else {
            panic!("a changed key must be refused")
        };
        assert!(detail.contains(&format!("line {line} ")), "{detail}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }
}
