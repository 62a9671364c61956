//! The Markdown report.

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::args::Args;

/// Figures for one system.
#[derive(Default)]
pub struct Results {
    pub name: String,
    pub rss_empty_kb: u64,
    pub rss_full_kb: u64,
    /// The latency and throughput phases, one entry per round.
    pub rounds: Vec<Round>,
    pub watch: Option<Histogram<u64>>,
    /// Sequential writes across a snapshot and log compaction on every node.
    pub compaction: Option<Histogram<u64>>,
}

/// One round of the latency and throughput phases.
#[derive(Default)]
pub struct Round {
    pub sequential: Option<Histogram<u64>>,
    /// CPU time of the three servers together per sequential write.
    pub sequential_cpu: Option<Duration>,
    /// Reads the leader answers alone (pld `stale`, etcd `serializable`): one RPC, no raft.
    pub reads: Option<Histogram<u64>>,
    pub throughput: Vec<(usize, f64)>,
}

impl Round {
    /// One line for the progress output: the sequential p50 and each throughput level.
    pub fn summary(&self) -> String {
        let p50 = ms(&self.sequential, 0.5).map_or("-".into(), |v| format!("{v:.2}"));
        let mut parts = vec![format!("sequential p50 {p50} ms")];
        parts.extend(
            self.throughput
                .iter()
                .map(|(clients, ops)| format!("{clients} clients {ops:.0}/s")),
        );
        parts.join(", ")
    }
}

/// A figure read from one round.
type Figure = dyn Fn(&Round) -> Option<f64>;

fn ms(h: &Option<Histogram<u64>>, q: f64) -> Option<f64> {
    h.as_ref().map(|h| h.value_at_quantile(q) as f64 / 1000.0)
}

fn throughput(r: &Round, clients: usize) -> Option<f64> {
    r.throughput
        .iter()
        .find(|(c, _)| *c == clients)
        .map(|(_, ops)| *ops)
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// "median (min–max)" over the rounds, or the one value of a single round.
fn over_rounds(rounds: &[Round], figure: &Figure, decimals: usize) -> String {
    let values: Vec<f64> = rounds.iter().filter_map(figure).collect();
    let single = values.len() == 1;
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let Some(mid) = median(values) else {
        return "-".into();
    };
    if single {
        return format!("{mid:.decimals$}");
    }
    format!("{mid:.decimals$} ({min:.decimals$}–{max:.decimals$})")
}

/// The median over rounds of `a`'s figure divided by `b`'s from the same round.
fn ratio_of_rounds(a: &Results, b: &Results, figure: &Figure) -> Option<f64> {
    let ratios = a
        .rounds
        .iter()
        .zip(&b.rounds)
        .filter_map(|(x, y)| Some(figure(x)? / figure(y)?))
        .collect();
    median(ratios)
}

/// Prints the comparison table.
pub fn print(results: &[Results], fsync: &Histogram<u64>, args: &Args) {
    println!(
        "disk fsync (256 B write + fdatasync): p50 {:.2} ms, p99 {:.2} ms",
        fsync.value_at_quantile(0.5) as f64 / 1000.0,
        fsync.value_at_quantile(0.99) as f64 / 1000.0
    );
    println!();
    if args.rounds > 1 {
        println!(
            "Latency and throughput: median of {} rounds (lowest–highest in brackets).",
            args.rounds
        );
        println!();
    }
    let names: Vec<&str> = results.iter().map(|r| r.name.as_str()).collect();
    println!("| metric | {} |", names.join(" | "));
    println!("|---|{}", "---|".repeat(results.len()));
    let row = |label: String, f: &dyn Fn(&Results) -> String| {
        let cells: Vec<String> = results.iter().map(f).collect();
        println!("| {label} | {} |", cells.join(" | "));
    };
    let per_round = |label: String, figure: &Figure, decimals: usize| {
        row(label, &|r| over_rounds(&r.rounds, figure, decimals));
    };
    per_round(
        format!(
            "sequential write p50 (ms, 1 client, {} writes)",
            args.sequential
        ),
        &|r| ms(&r.sequential, 0.5),
        2,
    );
    per_round(
        "sequential write p99 (ms)".into(),
        &|r| ms(&r.sequential, 0.99),
        2,
    );
    per_round(
        "server CPU per sequential write (ms, three nodes together)".into(),
        &|r| r.sequential_cpu.map(|d| d.as_secs_f64() * 1000.0),
        2,
    );
    per_round(
        "sequential local read p50 (ms; stale / serializable)".into(),
        &|r| ms(&r.reads, 0.5),
        2,
    );
    for clients in [16usize, 64] {
        per_round(
            format!("throughput, {clients} clients (writes/s)"),
            &move |r| throughput(r, clients),
            0,
        );
    }
    row(
        format!("slowest of {} watchers, p50 (ms)", args.watchers),
        &|r| ms(&r.watch, 0.5).map_or("-".into(), |v| format!("{v:.2}")),
    );
    row(
        format!("slowest of {} watchers, p99 (ms)", args.watchers),
        &|r| ms(&r.watch, 0.99).map_or("-".into(), |v| format!("{v:.2}")),
    );
    row(
        format!(
            "max write latency across a compaction (ms, {} sequential writes)",
            args.compaction_writes
        ),
        &|r| ms(&r.compaction, 1.0).map_or("-".into(), |v| format!("{v:.2}")),
    );
    row("  p99.9 of those writes (ms)".into(), &|r| {
        ms(&r.compaction, 0.999).map_or("-".into(), |v| format!("{v:.2}"))
    });
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
    if let [a, b] = results {
        println!();
        println!(
            "{} / {}, each round's pair measured back to back (median of the rounds' ratios):",
            a.name, b.name
        );
        let ratio = |label: &str, figure: &Figure| {
            if let Some(x) = ratio_of_rounds(a, b, figure) {
                println!("- {label}: {x:.2} ×");
            }
        };
        ratio("sequential write p50", &|r| ms(&r.sequential, 0.5));
        ratio("throughput, 64 clients", &|r| throughput(r, 64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(p50_ms: u64, ops64: f64) -> Round {
        let mut h = Histogram::<u64>::new(3).unwrap();
        h.record(p50_ms * 1000).unwrap();
        Round {
            sequential: Some(h),
            throughput: vec![(64, ops64)],
            ..Default::default()
        }
    }

    #[test]
    fn median_of_odd_even_and_no_values() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }

    #[test]
    fn a_figure_over_rounds_is_its_median_and_range() {
        let rounds = vec![round(3, 0.0), round(1, 0.0), round(2, 0.0)];
        let p50: &Figure = &|r| ms(&r.sequential, 0.5);
        assert_eq!(over_rounds(&rounds, p50, 2), "2.00 (1.00–3.00)");
        assert_eq!(over_rounds(&rounds[..1], p50, 1), "3.0");
        assert_eq!(over_rounds(&[], p50, 2), "-");
    }

    #[test]
    fn ratios_pair_the_rounds_before_taking_the_median() {
        // The machine was 4 × slower in round 2: each system's median alone gives 300 / 200 =
        // 1.5 ×; paired round by round the ratios are 2, 2 and 1, and their median 2.
        let a = Results {
            rounds: vec![round(0, 400.0), round(0, 100.0), round(0, 300.0)],
            ..Default::default()
        };
        let b = Results {
            rounds: vec![round(0, 200.0), round(0, 50.0), round(0, 300.0)],
            ..Default::default()
        };
        let ops: &Figure = &|r| throughput(r, 64);
        assert_eq!(ratio_of_rounds(&a, &b, ops), Some(2.0));
    }
}
