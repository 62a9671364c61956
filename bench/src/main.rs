//! `pld-bench`: the same workload against a 3-node pld cluster and a 3-node etcd cluster, both
//! started by this program on loopback with data dirs on the same disk, then a Markdown report.
//!
//! Workloads (values are the same encoded `Service`, ~170 bytes, for both systems):
//! - RSS of the leader with an empty catalog and after 10,000 services;
//! - sequential writes from one client: p50/p99 latency;
//! - throughput with 16 and 64 concurrent clients over 8 connections;
//! - 1,000 watchers: per update, the latency of the slowest watcher;
//! - the disk's own fsync latency, the floor a durable write cannot beat.

mod etcd;
mod fsync;
mod pld;
mod report;
mod spawn;
mod target;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::report::Results;
use crate::target::Target;

/// Benchmarks pld against etcd on loopback.
#[derive(Parser)]
struct Args {
    /// The pld binary (build with `cargo build --release -p pld-cli`).
    #[arg(long, default_value = "target/release/pld")]
    pld: PathBuf,
    /// The etcd server binary (Debian: etcd-server).
    #[arg(long, default_value = "/usr/bin/etcd")]
    etcd: PathBuf,
    /// Sequential writes measured.
    #[arg(long, default_value_t = 2000)]
    sequential: u64,
    /// Seconds each throughput level runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Watchers in the watch-latency test.
    #[arg(long, default_value_t = 1000)]
    watchers: usize,
    /// Updates in the watch-latency test.
    #[arg(long, default_value_t = 200)]
    updates: usize,
    /// Services written before measuring RSS.
    #[arg(long, default_value_t = 10_000)]
    objects: u64,
    /// Run only this system (pld or etcd).
    #[arg(long)]
    only: Option<String>,
}

async fn run_one(target: &Target, args: &Args) -> anyhow::Result<Results> {
    let mut r = Results {
        name: target.name().to_string(),
        ..Default::default()
    };
    eprintln!(
        "[{}] RSS with an empty catalog, then after {} services",
        r.name, args.objects
    );
    r.rss_empty_kb = target.leader_rss_kb()?;
    target.fill(args.objects, 64).await?;
    r.rss_full_kb = target.leader_rss_kb()?;
    eprintln!("[{}] {} sequential writes", r.name, args.sequential);
    let cpu_before = target.servers_cpu()?;
    r.sequential = target.sequential(args.sequential).await?;
    r.sequential_cpu = Some((target.servers_cpu()? - cpu_before) / args.sequential.max(1) as u32);
    eprintln!("[{}] {} sequential reads", r.name, args.sequential);
    r.reads = Some(target.reads(args.sequential, args.objects).await?);
    for clients in [16usize, 64] {
        eprintln!("[{}] throughput with {clients} clients", r.name);
        let ops = target
            .throughput(clients, Duration::from_secs(args.seconds))
            .await?;
        r.throughput.push((clients, ops));
    }
    eprintln!(
        "[{}] {} watchers, {} updates",
        r.name, args.watchers, args.updates
    );
    r.watch = target.watch_latency(args.watchers, args.updates).await?;
    Ok(r)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // On a signal the benchmark future is dropped, and with it the clusters it started.
    tokio::select! {
        result = bench(args) => result,
        _ = term.recv() => anyhow::bail!("terminated"),
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
    }
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir_in(std::env::current_dir()?)?;
    let fsync = fsync::latency(dir.path(), 200)?;
    let mut results = Vec::new();
    if args.only.as_deref() != Some("etcd") {
        let target = Target::start_pld(&args.pld, &dir.path().join("pld")).await?;
        results.push(run_one(&target, &args).await?);
    }
    if args.only.as_deref() != Some("pld") {
        let target = Target::start_etcd(&args.etcd, &dir.path().join("etcd")).await?;
        results.push(run_one(&target, &args).await?);
    }
    report::print(&results, &fsync, &args);
    Ok(())
}
