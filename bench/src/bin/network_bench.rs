//! `pld-network-bench`: how long `pld network` takes to find the overlapping VPCs of a large
//! catalog, by sorting ([`pld_core::network::overlaps`]), against the obvious comparison of
//! every pair measured in the same run. VPC `i` gets `10.(i/256).(i%256).0/24` and every
//! `1/overlap`-th VPC takes its neighbour's block instead, so that share of VPCs overlaps.

use std::time::Instant;

use clap::Parser;
use ipnet::IpNet;
use pld_core::network::{overlaps, VpcNet};

#[derive(Parser)]
struct Args {
    /// VPCs in the catalog.
    #[arg(long, default_value_t = 10_000)]
    vpcs: usize,
    /// Share of VPCs whose block overlaps another's.
    #[arg(long, default_value_t = 0.01)]
    overlap: f64,
    /// Timed runs of the sweep; the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

fn catalog(n: usize, overlap: f64) -> anyhow::Result<Vec<VpcNet>> {
    anyhow::ensure!(
        n <= 65_536,
        "at most 65,536 VPCs fit the generated /24s of 10.0.0.0/8"
    );
    let every = if overlap > 0.0 {
        (1.0 / overlap).round().max(2.0) as usize
    } else {
        usize::MAX
    };
    (0..n)
        .map(|i| {
            let j = if i > 0 && i % every == 0 { i - 1 } else { i };
            let block: IpNet = format!("10.{}.{}.0/24", j / 256, j % 256).parse()?;
            Ok(VpcNet {
                vpc_id: format!("vpc-{i:08x}"),
                account: format!("{:012}", 100_000_000_000u64 + (i as u64 % 50)),
                region: "us-east-1".into(),
                cidrs: vec![block],
                route_tables: 2,
            })
        })
        .collect()
}

/// The peer: every pair compared.
fn all_pairs(vpcs: &[VpcNet]) -> usize {
    let mut found = 0;
    for (i, a) in vpcs.iter().enumerate() {
        for b in &vpcs[i + 1..] {
            if a.cidrs
                .iter()
                .any(|x| b.cidrs.iter().any(|y| x.contains(y) || y.contains(x)))
            {
                found += 1;
            }
        }
    }
    found
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let vpcs = catalog(args.vpcs, args.overlap)?;
    let mut times = Vec::new();
    let mut found = 0;
    for _ in 0..args.runs.max(1) {
        let start = Instant::now();
        found = overlaps(&vpcs).len();
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let start = Instant::now();
    let peer = all_pairs(&vpcs);
    let peer_time = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        peer == found,
        "the sweep found {found} overlapping pairs, all pairs {peer}"
    );
    println!(
        "{} VPCs, {:.1} % overlapping: {found} overlapping pairs",
        args.vpcs,
        args.overlap * 100.0
    );
    println!(
        "sorted sweep (pld network): median {:.1} ms of {} runs (min {:.1}, max {:.1})",
        median * 1e3,
        times.len(),
        times[0] * 1e3,
        times[times.len() - 1] * 1e3
    );
    println!(
        "every pair compared (peer): {:.1} ms, {} comparisons",
        peer_time * 1e3,
        args.vpcs * args.vpcs.saturating_sub(1) / 2
    );
    Ok(())
}
