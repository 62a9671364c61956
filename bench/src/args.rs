//! `pld-bench`'s command line, read by the phases and by the report.

use std::path::PathBuf;

use clap::Parser;

/// Benchmarks pld against etcd on loopback.
#[derive(Parser)]
pub struct Args {
    /// The pld binary (build with `cargo build --release -p pld-cli`).
    #[arg(long, default_value = "target/release/pld")]
    pub pld: PathBuf,
    /// The etcd server binary (Debian: etcd-server).
    #[arg(long, default_value = "/usr/bin/etcd")]
    pub etcd: PathBuf,
    /// Sequential writes measured.
    #[arg(long, default_value_t = 2000)]
    pub sequential: u64,
    /// Seconds each throughput level runs in each round.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Watchers in the watch-latency test.
    #[arg(long, default_value_t = 1000)]
    pub watchers: usize,
    /// Updates in the watch-latency test.
    #[arg(long, default_value_t = 200)]
    pub updates: usize,
    /// Services written before measuring RSS.
    #[arg(long, default_value_t = 10_000)]
    pub objects: u64,
    /// Rounds of the sequential, read and throughput phases.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    pub rounds: u64,
    /// Sequential writes of the compaction phase: more than a snapshot interval (pld's
    /// `snapshot_every`, 10,000, and etcd's `--snapshot-count` as set below), so every node of
    /// each cluster takes a snapshot and compacts its log while the phase is measured.
    #[arg(long, default_value_t = 12_000)]
    pub compaction_writes: u64,
    /// etcd's `--snapshot-count`, applied entries between its snapshots. The default is pld's
    /// `snapshot_every`, so both compact equally often (etcd 3.4's own default is 100,000).
    #[arg(long, default_value_t = 10_000)]
    pub etcd_snapshot_count: u64,
    /// Run only this system (pld or etcd).
    #[arg(long)]
    pub only: Option<String>,
}
