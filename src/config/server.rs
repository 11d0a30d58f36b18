//! `[server]`: the HTTP endpoints.

use std::net::SocketAddr;

use super::ConfigError;
use super::read::{Item, Node};

/// `[server]`: the HTTP endpoints (`/healthz`, `/metrics`, `/status`, `/hooks/<flow>`).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `listen`, default `127.0.0.1:8480`.
    pub listen: SocketAddr,
    /// `token`: the bearer token `/hooks` requires.
    pub token: Option<String>,
}

pub(super) fn parse_server(mut t: Node) -> Result<ServerConfig, ConfigError> {
    let listen = match t.take("listen") {
        None => SocketAddr::from(([127, 0, 0, 1], 8480)),
        Some(item) => {
            let key = item.key.clone();
            let text = item.text()?;
            text.parse().map_err(|_| {
                t.cx.err(
                    &key,
                    format!(
                        "expected an address and port such as \"127.0.0.1:8480\", found {text:?}"
                    ),
                )
            })?
        }
    };
    let token = t.take("token").map(Item::secret).transpose()?;
    t.finish()?;
    Ok(ServerConfig { listen, token })
}
