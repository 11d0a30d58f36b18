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
    /// `allow`: the addresses (or networks, `10.0.0.0/8`) that may call `/hooks`; empty: any.
    pub allow: Vec<Network>,
    /// `stop_timeout`: how long a stop waits for the files in hand, default "60s".
    pub stop_timeout: std::time::Duration,
}

/// One entry of `allow`: an address and how many leading bits of it must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    pub addr: std::net::IpAddr,
    pub prefix: u8,
}

impl Network {
    /// Whether `ip` is in this network (an IPv4 address seen as IPv6-mapped matches too).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Network {
    type Err = ();
    fn from_str(text: &str) -> Result<Network, ()> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| ())?)),
            None => (text, None),
        };
        let addr: std::net::IpAddr = addr.trim().parse().map_err(|_| ())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(());
        }
        Ok(Network { addr, prefix })
    }
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
    let mut allow = Vec::new();
    if let Some(item) = t.take("allow") {
        for entry in item.array()? {
            let key = entry.key.clone();
            let text = entry.text()?;
            allow.push(text.parse().map_err(|_| {
                t.cx.err(
                    &key,
                    format!(
                        "expected addresses or networks such as \"127.0.0.1\" or \"10.0.0.0/8\", found {text:?}"
                    ),
                )
            })?);
        }
    }
    let stop_timeout = match t.take("stop_timeout") {
        Some(item) => item.positive_duration()?,
        None => std::time::Duration::from_secs(60),
    };
    t.finish()?;
    Ok(ServerConfig {
        listen,
        token,
        allow,
        stop_timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::Network;

    #[test]
    fn allow_takes_addresses_and_networks() {
        let net: Network = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(
            net.contains("::ffff:10.1.0.9".parse().unwrap()),
            "IPv4-mapped"
        );
        let one: Network = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let v6: Network = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        let any: Network = "0.0.0.0/0".parse().unwrap();
        assert!(any.contains("8.8.8.8".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Network>().is_err());
        assert!("example.com".parse::<Network>().is_err());
    }
}
