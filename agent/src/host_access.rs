//! Who may use the host API: connections from client networks outside `host_api.allowed_networks`
//! are closed before a byte is read, and on-demand bindings are limited to
//! `host_api.on_demand_services`. The host API creates bindings, which cost money (an interface
//! endpoint per AZ, by the hour), so a VPC-wide listener must say whose it is.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use ::metrics::Counter;
use futures::{Stream, StreamExt};
use ipnet::IpNet;
use tokio::net::TcpStream;
use tracing::debug;

/// The client networks a host API listener serves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientNetworks(Vec<IpNet>);

impl ClientNetworks {
    /// `networks` empty: every client (a listener on loopback, which only local processes reach).
    pub fn new(networks: Vec<IpNet>) -> Self {
        ClientNetworks(networks)
    }

    /// Whether a client at `ip` may connect. An IPv4 client reaching an IPv6 socket arrives as
    /// an IPv4-mapped address, and is judged by its IPv4 address.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.is_empty() || self.0.iter().any(|net| net.contains(&ip))
    }
}

/// `incoming` without the connections `networks` does not allow, each counted in `refused` and
/// closed at once (dropped).
pub fn admit<S>(
    incoming: S,
    networks: ClientNetworks,
    refused: Counter,
) -> impl Stream<Item = std::io::Result<TcpStream>>
where
    S: Stream<Item = std::io::Result<TcpStream>>,
{
    let networks = Arc::new(networks);
    incoming.filter(move |conn| {
        let allowed = match conn {
            Ok(stream) => match stream.peer_addr() {
                Ok(peer) if networks.allows(peer.ip()) => true,
                Ok(peer) => {
                    debug!(%peer, "host API connection from outside host_api.allowed_networks closed");
                    refused.increment(1);
                    false
                }
                // Gone before we looked: nothing to serve.
                Err(_) => false,
            },
            // Accept errors are the server's to see and retry.
            Err(_) => true,
        };
        std::future::ready(allowed)
    })
}

/// The services hosts may bind to on demand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum OnDemand {
    /// Any service in the catalog (and the built-in AWS services).
    #[default]
    Any,
    /// Only these.
    Only(BTreeSet<String>),
}

impl OnDemand {
    /// From `host_api.on_demand_services`: left out, any.
    pub fn new(services: Option<&[String]>) -> Self {
        match services {
            None => OnDemand::Any,
            Some(list) => OnDemand::Only(list.iter().cloned().collect()),
        }
    }

    /// Whether a host may create a binding to `service`.
    pub fn allows(&self, service: &str) -> bool {
        match self {
            OnDemand::Any => true,
            OnDemand::Only(list) => list.contains(service),
        }
    }

    /// The services listed, for messages.
    pub fn listed(&self) -> String {
        match self {
            OnDemand::Any => "any".into(),
            OnDemand::Only(list) if list.is_empty() => "none".into(),
            OnDemand::Only(list) => list.iter().cloned().collect::<Vec<_>>().join(", "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> ClientNetworks {
        ClientNetworks::new(list.iter().map(|n| n.parse().expect("a CIDR")).collect())
    }

    #[test]
    fn only_listed_networks_get_in() {
        let vpc = nets(&["10.0.0.0/16", "127.0.0.1/32"]);
        for (ip, allowed) in [
            ("10.0.3.7", true),
            ("10.1.0.1", false),
            ("127.0.0.1", true),
            ("127.0.0.2", false),
            ("::ffff:10.0.9.9", true),
            ("::ffff:192.168.0.1", false),
            ("fd00::1", false),
        ] {
            let ip: IpAddr = ip.parse().expect("an address");
            assert_eq!(vpc.allows(ip), allowed, "{ip}");
        }
        assert!(nets(&[]).allows("203.0.113.9".parse().expect("an address")));
        assert!(nets(&["fd00::/8"]).allows("fd00::1".parse().expect("an address")));
    }

    #[test]
    fn on_demand_bindings_are_limited_to_the_list() {
        assert!(OnDemand::new(None).allows("anything"));
        let only = OnDemand::new(Some(&["billing".to_string(), "s3".to_string()]));
        assert!(only.allows("billing") && only.allows("s3"));
        assert!(!only.allows("ledger"));
        assert_eq!(only.listed(), "billing, s3");
        assert!(!OnDemand::new(Some(&[])).allows("billing"));
    }
}
