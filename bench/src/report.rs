//! The Markdown report.

use hdrhistogram::Histogram;

use crate::Args;

/// Figures for one system.
#[derive(Default)]
pub struct Results {
    pub name: String,
    pub rss_empty_kb: u64,
    pub rss_full_kb: u64,
    pub sequential: Option<Histogram<u64>>,
    /// CPU time of the three servers together per sequential write.
    pub sequential_cpu: Option<std::time::Duration>,
    /// Reads the leader answers alone (pld `stale`, etcd `serializable`): one RPC, no raft.
    pub reads: Option<Histogram<u64>>,
    pub throughput: Vec<(usize, f64)>,
    pub watch: Option<Histogram<u64>>,
}

fn ms(h: &Option<Histogram<u64>>, q: f64) -> String {
    h.as_ref().map_or("-".into(), |h| {
        format!("{:.2}", h.value_at_quantile(q) as f64 / 1000.0)
    })
}

/// Prints the comparison table.
pub fn print(results: &[Results], fsync: &Histogram<u64>, args: &Args) {
    println!(
        "disk fsync (256 B write + fdatasync): p50 {:.2} ms, p99 {:.2} ms",
        fsync.value_at_quantile(0.5) as f64 / 1000.0,
        fsync.value_at_quantile(0.99) as f64 / 1000.0
    );
    println!();
    let names: Vec<&str> = results.iter().map(|r| r.name.as_str()).collect();
    println!("| metric | {} |", names.join(" | "));
    println!("|---|{}", "---|".repeat(results.len()));
    let row = |label: String, f: &dyn Fn(&Results) -> String| {
        let cells: Vec<String> = results.iter().map(f).collect();
        println!("| {label} | {} |", cells.join(" | "));
    };
    row(
        format!(
            "sequential write p50 (ms, 1 client, {} writes)",
            args.sequential
        ),
        &|r| ms(&r.sequential, 0.5),
    );
    row("sequential write p99 (ms)".into(), &|r| {
        ms(&r.sequential, 0.99)
    });
    row(
        "server CPU per sequential write (ms, three nodes together)".into(),
        &|r| {
            r.sequential_cpu
                .map_or("-".into(), |d| format!("{:.2}", d.as_secs_f64() * 1000.0))
        },
    );
    row(
        "sequential local read p50 (ms; stale / serializable)".into(),
        &|r| ms(&r.reads, 0.5),
    );
    for clients in [16usize, 64] {
        row(format!("throughput, {clients} clients (writes/s)"), &|r| {
            r.throughput
                .iter()
                .find(|(c, _)| *c == clients)
                .map_or("-".into(), |(_, ops)| format!("{ops:.0}"))
        });
    }
    row(
        format!("slowest of {} watchers, p50 (ms)", args.watchers),
        &|r| ms(&r.watch, 0.5),
    );
    row(
        format!("slowest of {} watchers, p99 (ms)", args.watchers),
        &|r| ms(&r.watch, 0.99),
    );
    row("leader RSS, empty (MB)".into(), &|r| {
        format!("{:.1}", r.rss_empty_kb as f64 / 1024.0)
    });
    row(
        format!("leader RSS, {} services (MB)", args.objects),
        &|r| format!("{:.1}", r.rss_full_kb as f64 / 1024.0),
    );
    row("RSS growth (MB)".into(), &|r| {
        format!(
            "{:.1}",
            r.rss_full_kb.saturating_sub(r.rss_empty_kb) as f64 / 1024.0
        )
    });
}
