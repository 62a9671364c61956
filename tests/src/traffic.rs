//! A client that keeps using a service by name while it changes: a fresh TCP connection every
//! 20 ms to the address a DNS server answered, the answer kept for its TTL as a caching
//! resolver keeps it. A move that deletes an endpoint a resolver may still hand out shows up as
//! failed connections.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::region::{dns_a_ttl, echo_through};

/// How often the prober opens a connection.
pub const EVERY: Duration = Duration::from_millis(20);

/// Connections through a name, until stopped.
pub struct Prober {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<Vec<String>>,
}

impl Prober {
    /// Resolves `name` at `dns` (loopback) and echoes a line through `port` of the answer,
    /// every [`EVERY`].
    pub fn start(dns: SocketAddr, name: &str, port: u16) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let name = name.to_string();
        let task = {
            let (stop, ok) = (stop.clone(), ok.clone());
            tokio::spawn(async move {
                let mut failures = Vec::new();
                let mut tick = tokio::time::interval(EVERY);
                let mut cached: Option<(Ipv4Addr, Instant)> = None;
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    match once(dns, &name, port, &mut cached).await {
                        Ok(()) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => failures.push(e.to_string()),
                    }
                }
                failures
            })
        };
        Prober { stop, ok, task }
    }

    /// Connections that worked so far.
    pub fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Stops: (connections that worked, why each other one failed).
    ///
    /// # Errors
    /// When the probing task panicked.
    pub async fn stop(self) -> anyhow::Result<(u64, Vec<String>)> {
        self.stop.store(true, Ordering::Relaxed);
        let failures = self.task.await?;
        Ok((self.ok.load(Ordering::Relaxed), failures))
    }
}

async fn once(
    dns: SocketAddr,
    name: &str,
    port: u16,
    cached: &mut Option<(Ipv4Addr, Instant)>,
) -> anyhow::Result<()> {
    let now = Instant::now();
    let addr = match cached.filter(|(_, until)| *until > now) {
        Some((addr, _)) => addr,
        None => {
            let (_, addrs, ttl) = dns_a_ttl(dns, name).await?;
            let addr = *addrs
                .first()
                .ok_or_else(|| anyhow::anyhow!("{name}: no address in the answer"))?;
            *cached = Some((addr, now + Duration::from_secs(u64::from(ttl))));
            addr
        }
    };
    let back = echo_through(addr, port, "still here")
        .await
        .map_err(|e| anyhow::anyhow!("{addr}:{port}: {e}"))?;
    anyhow::ensure!(back == "still here", "{addr}:{port} echoed {back:?}");
    Ok(())
}
