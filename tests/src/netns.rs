//! A private network made of Linux network namespaces, for fault tests that need real packets
//! to stop flowing between real processes.
//!
//! Each node gets a namespace of its own (`10.99.0.<n>`), the test's clients one more
//! (`10.99.0.200`), and a hub namespace bridges them all. Nothing is added to the host's own
//! namespace, so the addresses cannot clash with anything on the machine. Cutting a link installs
//! blackhole routes on both ends: packets vanish in flight as in a real partition (no refused
//! connection, no reset), and established connections stall until their own timeouts notice.
//!
//! Needs root (`ip netns`); [`Fabric::create`] says so and returns [`Setup::Skip`] elsewhere,
//! and fails instead when `PLD_REQUIRE_ROOT_TESTS` is set (CI runs as root).

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context;

use crate::Setup;

/// Where a packet comes from or goes to: node `n` (1-based) or the test's clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Host {
    Node(u64),
    Clients,
}

/// The namespaces of one test, deleted when dropped.
pub struct Fabric {
    tag: String,
    nodes: u64,
}

static NEXT_FABRIC: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running `ip` (iproute2)")?;
    anyhow::ensure!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

impl Fabric {
    /// Creates the hub, `nodes` node namespaces and the clients' namespace; a skip (saying why)
    /// when this process may not create namespaces.
    ///
    /// # Errors
    /// When `ip` fails part-way (what was made is removed), or namespaces cannot be made while
    /// `PLD_REQUIRE_ROOT_TESTS` is set.
    pub fn create(nodes: u64) -> anyhow::Result<Setup<Fabric>> {
        anyhow::ensure!((1..200).contains(&nodes), "1 to 199 nodes");
        let tag = format!(
            "pld{}x{}",
            std::process::id(),
            NEXT_FABRIC.fetch_add(1, Ordering::Relaxed)
        );
        let fabric = Fabric { tag, nodes };
        if let Err(e) = ip(&["netns", "add", &fabric.hub()]) {
            return Setup::unavailable(format!("network namespaces cannot be made here ({e})"));
        }
        fabric.wire()?;
        Ok(Setup::Ready(fabric))
    }

    fn wire(&self) -> anyhow::Result<()> {
        let hub = self.hub();
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        let mut hosts: Vec<Host> = (1..=self.nodes).map(Host::Node).collect();
        hosts.push(Host::Clients);
        for host in hosts {
            let ns = self.namespace(host);
            let port = match host {
                Host::Node(n) => format!("n{n}"),
                Host::Clients => "clients".into(),
            };
            ip(&["netns", "add", &ns])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&[
                "-n", &hub, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ])?;
            ip(&["-n", &hub, "link", "set", &port, "master", "br0", "up"])?;
            let address = format!("{}/24", self.address(host));
            ip(&["-n", &ns, "addr", "add", &address, "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        }
        Ok(())
    }

    fn hub(&self) -> String {
        format!("{}-hub", self.tag)
    }

    /// The namespace's name (under /var/run/netns).
    pub fn namespace(&self, host: Host) -> String {
        match host {
            Host::Node(n) => format!("{}-n{n}", self.tag),
            Host::Clients => format!("{}-c", self.tag),
        }
    }

    /// The host's address.
    pub fn address(&self, host: Host) -> Ipv4Addr {
        match host {
            Host::Node(n) => Ipv4Addr::new(10, 99, 0, n as u8),
            Host::Clients => Ipv4Addr::new(10, 99, 0, 200),
        }
    }

    /// The command prefix that runs a program inside `host`'s namespace.
    pub fn exec_prefix(&self, host: Host) -> Vec<String> {
        vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            self.namespace(host),
        ]
    }

    /// Moves the calling thread into the clients' namespace: sockets it (and threads it
    /// spawns afterwards) opens from then on are the clients'.
    ///
    /// # Errors
    /// When the namespace cannot be entered.
    pub fn enter_clients(&self) -> anyhow::Result<()> {
        let path = format!("/var/run/netns/{}", self.namespace(Host::Clients));
        let file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)
            .with_context(|| format!("entering {path}"))?;
        Ok(())
    }

    /// Stops packets between `a` and `b`, both ways.
    ///
    /// # Errors
    /// When a route cannot be added.
    pub fn cut(&self, a: Host, b: Host) -> anyhow::Result<()> {
        self.drop_one_way(a, b)?;
        self.drop_one_way(b, a)
    }

    /// Cuts every link between the two sides.
    ///
    /// # Errors
    /// As [`Fabric::cut`].
    pub fn partition(&self, side: &[Host], other: &[Host]) -> anyhow::Result<()> {
        for a in side {
            for b in other {
                self.cut(*a, *b)?;
            }
        }
        Ok(())
    }

    /// Stops packets from `from` to `to` only; the other way still flows.
    ///
    /// # Errors
    /// When the route cannot be added.
    pub fn drop_one_way(&self, from: Host, to: Host) -> anyhow::Result<()> {
        let dest = format!("{}/32", self.address(to));
        ip(&[
            "-n",
            &self.namespace(from),
            "route",
            "replace",
            "blackhole",
            &dest,
        ])
    }

    /// Removes every cut.
    ///
    /// # Errors
    /// When `ip` fails.
    pub fn heal(&self) -> anyhow::Result<()> {
        let mut hosts: Vec<Host> = (1..=self.nodes).map(Host::Node).collect();
        hosts.push(Host::Clients);
        for host in hosts {
            let ns = self.namespace(host);
            ip(&["-n", &ns, "route", "flush", "type", "blackhole"])?;
        }
        Ok(())
    }
}

impl Drop for Fabric {
    fn drop(&mut self) {
        let mut names: Vec<String> = (1..=self.nodes)
            .map(|n| self.namespace(Host::Node(n)))
            .collect();
        names.push(self.namespace(Host::Clients));
        names.push(self.hub());
        for ns in names {
            let _ = ip(&["netns", "del", &ns]);
        }
    }
}
