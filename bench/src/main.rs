//! `pld-bench`: the same workload against a 3-node pld cluster and a 3-node etcd cluster, both
//! started by this program on loopback with data dirs on the same disk, then a Markdown report.
//!
//! Workloads (values are the same encoded `Service`, ~170 bytes, for both systems):
//! - RSS of the leader with an empty catalog and after 10,000 services;
//! - sequential writes from one client: p50/p99 latency;
//! - throughput with 16 and 64 concurrent clients over 8 connections;
//! - 1,000 watchers: per update, the latency of the slowest watcher;
//! - sequential writes across a snapshot and log compaction on every node: the slowest write;
//! - the disk's own fsync latency, the floor a durable write cannot beat.
//!
//! Both clusters run for the whole benchmark. The latency and throughput phases run in rounds,
//! each measuring the systems back to back (the first one alternating), because this machine's
//! speed drifts over minutes by more than the difference between the systems: a comparison
//! within a round sees the same machine, and the report gives each figure's median over the
//! rounds with its range, and the median of the rounds' own ratios.

mod args;
mod etcd;
mod fsync;
mod pld;
mod report;
mod spawn;
mod target;
mod workload;

use std::time::Duration;

use clap::Parser;

use crate::args::Args;
use crate::report::{Results, Round};
use crate::target::Target;

/// How long each idle cluster's CPU use is sampled before the rounds.
const IDLE_SAMPLE: Duration = Duration::from_secs(2);

/// The leader's RSS with an empty catalog, then after `args.objects` services.
async fn fill(target: &Target, args: &Args) -> anyhow::Result<Results> {
    let name = target.name().to_string();
    eprintln!(
        "[{name}] RSS with an empty catalog, then after {} services",
        args.objects
    );
    let rss_empty_kb = target.leader_rss_kb()?;
    target.fill(args.objects, 64).await?;
    Ok(Results {
        name,
        rss_empty_kb,
        rss_full_kb: target.leader_rss_kb()?,
        ..Default::default()
    })
}

/// One round of the latency and throughput phases against one system.
async fn round(target: &Target, args: &Args, n: u64) -> anyhow::Result<Round> {
    let name = target.name();
    let mut r = Round::default();
    eprintln!("[{name}, round {n}] {} sequential writes", args.sequential);
    let cpu_before = target.servers_cpu()?;
    r.sequential = Some(target.sequential(args.sequential).await?);
    r.sequential_cpu = Some((target.servers_cpu()? - cpu_before) / args.sequential.max(1) as u32);
    eprintln!("[{name}, round {n}] {} sequential reads", args.sequential);
    r.reads = Some(target.reads(args.sequential, args.objects).await?);
    for clients in [16usize, 64] {
        eprintln!("[{name}, round {n}] throughput with {clients} clients");
        let ops = target
            .throughput(clients, Duration::from_secs(args.seconds))
            .await?;
        r.throughput.push((clients, ops));
    }
    eprintln!("[{name}, round {n}] {}", r.summary());
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
    let mut targets = Vec::new();
    if args.only.as_deref() != Some("etcd") {
        targets.push(Target::start_pld(&args.pld, &dir.path().join("pld")).await?);
    }
    if args.only.as_deref() != Some("pld") {
        targets.push(
            Target::start_etcd(
                &args.etcd,
                &dir.path().join("etcd"),
                args.etcd_snapshot_count,
            )
            .await?,
        );
    }
    let mut results = Vec::new();
    for target in &targets {
        results.push(fill(target, &args).await?);
    }
    // Each cluster idles while the other is measured; how much that costs is worth seeing.
    for target in &targets {
        let before = target.servers_cpu()?;
        tokio::time::sleep(IDLE_SAMPLE).await;
        eprintln!(
            "[{}] idle: {:.1} % of a core",
            target.name(),
            (target.servers_cpu()? - before).as_secs_f64() / IDLE_SAMPLE.as_secs_f64() * 100.0
        );
    }
    for n in 1..=args.rounds {
        let mut order: Vec<usize> = (0..targets.len()).collect();
        if n % 2 == 0 {
            order.reverse();
        }
        for i in order {
            let r = round(&targets[i], &args, n).await?;
            results[i].rounds.push(r);
        }
    }
    for (target, r) in targets.iter().zip(&mut results) {
        eprintln!(
            "[{}] {} watchers, {} updates",
            r.name, args.watchers, args.updates
        );
        r.watch = target.watch_latency(args.watchers, args.updates).await?;
    }
    for (target, r) in targets.iter().zip(&mut results) {
        eprintln!(
            "[{}] {} sequential writes across a compaction",
            r.name, args.compaction_writes
        );
        r.compaction = Some(target.sequential(args.compaction_writes).await?);
    }
    report::print(&results, &fsync, &args);
    Ok(())
}
