//! `pld-store-bench`: the controller's durable log store alone, as a raft node uses it under
//! load: one fsynced append of one log entry after another, compacted every 1,000 entries. It
//! reports the wall time and the CPU time (all of the process's threads, sled's I/O threads
//! included) per append, and how many files of large pages sled wrote, each of which the store
//! must fsync.

use std::time::Instant;

use clap::Parser;
use hdrhistogram::Histogram;
use nix::sys::resource::{getrusage, UsageWho};
use nix::sys::time::TimeVal;
use pld_controller::storage::{LogStore, SledStore};
use raft::eraftpb::{Entry, Snapshot};

#[derive(Parser)]
struct Args {
    /// Appends measured per entry size.
    #[arg(long, default_value_t = 3000)]
    appends: u64,
    /// Entry sizes in bytes: one command (~300), and batches of commands under load.
    #[arg(long, value_delimiter = ',', default_values_t = [300usize, 3_500, 7_000, 14_000])]
    sizes: Vec<usize>,
}

/// CPU seconds this process has used, all threads.
fn cpu_seconds() -> anyhow::Result<f64> {
    let usage = getrusage(UsageWho::RUSAGE_SELF)?;
    let seconds = |t: TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    Ok(seconds(usage.user_time()) + seconds(usage.system_time()))
}

fn compaction(index: u64) -> Snapshot {
    let mut snap = Snapshot {
        data: b"state".to_vec().into(),
        ..Default::default()
    };
    snap.mut_metadata().index = index;
    snap.mut_metadata().term = 1;
    snap.mut_metadata().mut_conf_state().voters = vec![1];
    snap
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!("| entry (B) | appends | wall p50 (µs) | wall mean (µs) | CPU per append (µs) | large-page files synced |");
    println!("|---|---|---|---|---|---|");
    for &size in &args.sizes {
        let dir = tempfile::tempdir_in(std::env::current_dir()?)?;
        let (store, _) = SledStore::open(dir.path(), 1)?;
        let mut wall = Histogram::<u64>::new(3)?;
        let started = Instant::now();
        let cpu_before = cpu_seconds()?;
        for index in 1..=args.appends {
            let entry = Entry {
                index,
                term: 1,
                data: vec![(index % 251) as u8; size].into(),
                ..Default::default()
            };
            let t = Instant::now();
            store.persist(&[entry], None, None, true)?;
            wall.record(t.elapsed().as_micros() as u64)?;
            if index % 1000 == 0 {
                store.compact(&compaction(index - 500))?;
            }
        }
        let cpu = cpu_seconds()? - cpu_before;
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "| {size} | {} | {} | {:.0} | {:.0} | {} |",
            args.appends,
            wall.value_at_quantile(0.5),
            elapsed * 1e6 / args.appends as f64,
            cpu * 1e6 / args.appends as f64,
            store.blobs_synced(),
        );
    }
    Ok(())
}
