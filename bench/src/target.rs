//! A system under test and the workloads, written once for both systems.

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::mpsc;

use crate::spawn::{cpu_time, rss_kb, Procs};
use crate::workload::CONNECTIONS;

/// Connections to the leader of a running cluster.
#[derive(Clone)]
pub enum Conns {
    Pld(crate::pld::Pld),
    Etcd(crate::etcd::Etcd),
}

/// A running 3-node cluster.
pub struct Target {
    name: &'static str,
    procs: Procs,
    leader_pid: u32,
    conns: Conns,
}

impl Target {
    pub async fn start_pld(binary: &Path, dir: &Path) -> anyhow::Result<Self> {
        let (procs, leader_pid, pld) = crate::pld::start(binary, dir).await?;
        Ok(Target {
            name: "pld",
            procs,
            leader_pid,
            conns: Conns::Pld(pld),
        })
    }

    pub async fn start_etcd(
        binary: &Path,
        dir: &Path,
        snapshot_count: u64,
    ) -> anyhow::Result<Self> {
        let (procs, leader_pid, etcd) = crate::etcd::start(binary, dir, snapshot_count).await?;
        Ok(Target {
            name: "etcd 3.4",
            procs,
            leader_pid,
            conns: Conns::Etcd(etcd),
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn leader_rss_kb(&self) -> anyhow::Result<u64> {
        rss_kb(self.leader_pid)
    }

    /// CPU time the three servers have used so far, together.
    pub fn servers_cpu(&self) -> anyhow::Result<Duration> {
        self.procs.children.iter().map(|c| cpu_time(c.id())).sum()
    }

    /// Writes `svc-0 .. svc-{n-1}` with `clients` concurrent clients.
    pub async fn fill(&self, n: u64, clients: usize) -> anyhow::Result<()> {
        let next = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for c in 0..clients {
            let conns = self.conns.clone();
            let next = next.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return Ok::<(), anyhow::Error>(());
                    }
                    put(&conns, c % CONNECTIONS, &format!("svc-{i}")).await?;
                }
            }));
        }
        for t in tasks {
            t.await??;
        }
        Ok(())
    }

    /// `n` writes one after another; latency in microseconds.
    pub async fn sequential(&self, n: u64) -> anyhow::Result<Histogram<u64>> {
        let mut h = Histogram::<u64>::new(3)?;
        for i in 0..n {
            let start = Instant::now();
            put(&self.conns, 0, &format!("svc-{}", i % 1000)).await?;
            h.record(start.elapsed().as_micros() as u64)?;
        }
        Ok(h)
    }

    /// `n` reads one after another of keys `fill` wrote (`below` of them), each answered by
    /// the leader from its own state: the cost of one call through the client, the network and
    /// the server's RPC stack, without consensus. Latency in microseconds.
    pub async fn reads(&self, n: u64, below: u64) -> anyhow::Result<Histogram<u64>> {
        let mut h = Histogram::<u64>::new(3)?;
        for i in 0..n {
            let start = Instant::now();
            get(&self.conns, 0, &format!("svc-{}", i % below.max(1))).await?;
            h.record(start.elapsed().as_micros() as u64)?;
        }
        Ok(h)
    }

    /// Writes per second with `clients` closed-loop clients for `duration`.
    pub async fn throughput(&self, clients: usize, duration: Duration) -> anyhow::Result<f64> {
        let done = Arc::new(AtomicU64::new(0));
        let end = Instant::now() + duration;
        let mut tasks = Vec::new();
        for c in 0..clients {
            let conns = self.conns.clone();
            let done = done.clone();
            tasks.push(tokio::spawn(async move {
                let mut i = c as u64;
                while Instant::now() < end {
                    put(&conns, c % CONNECTIONS, &format!("svc-{}", i % 10_000)).await?;
                    done.fetch_add(1, Ordering::Relaxed);
                    i += clients as u64;
                }
                Ok::<(), anyhow::Error>(())
            }));
        }
        let start = Instant::now();
        for t in tasks {
            t.await??;
        }
        Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
    }

    /// Opens `watchers` watch streams, then makes `updates` writes one at a time; for each,
    /// records how long until the slowest watcher received it (microseconds).
    pub async fn watch_latency(
        &self,
        watchers: usize,
        updates: usize,
    ) -> anyhow::Result<Option<Histogram<u64>>> {
        let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Instant)>();
        let ready = Arc::new(AtomicUsize::new(0));
        match &self.conns {
            Conns::Pld(p) => p.spawn_watchers(watchers, tx, ready.clone()).await?,
            Conns::Etcd(e) => e.spawn_watchers(watchers, tx, ready.clone()).await?,
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while ready.load(Ordering::Relaxed) < watchers {
            anyhow::ensure!(Instant::now() < deadline, "watchers not established in 60s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut h = Histogram::<u64>::new(3)?;
        for u in 0..updates {
            let start = Instant::now();
            put(&self.conns, 0, &format!("w-{u}")).await?;
            let mut got = 0;
            let mut slowest = start;
            while got < watchers {
                let (update, at) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("watchers ended"))?;
                anyhow::ensure!(
                    update == u,
                    "watcher saw update {update} while waiting for {u}"
                );
                got += 1;
                slowest = slowest.max(at);
            }
            h.record(slowest.duration_since(start).as_micros() as u64)?;
        }
        Ok(Some(h))
    }
}

async fn get(conns: &Conns, conn: usize, key: &str) -> anyhow::Result<()> {
    match conns {
        Conns::Pld(p) => p.get(conn, key).await,
        Conns::Etcd(e) => e.get(conn, key).await,
    }
}

async fn put(conns: &Conns, conn: usize, key: &str) -> anyhow::Result<()> {
    match conns {
        Conns::Pld(p) => p.put(conn, key).await,
        Conns::Etcd(e) => e.put(conn, key).await,
    }
}
