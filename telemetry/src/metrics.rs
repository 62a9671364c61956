//! One Prometheus registry per daemon. Code keeps the [`Counter`], [`Gauge`] and [`Histogram`]
//! handles it registers (cheap atomics) and the registry renders them on scrape.
//!
//! The registry is deliberately not installed as the `metrics` crate's global recorder: `pld dev`
//! runs a controller and several agents in one process, and so do the in-process tests; each must
//! report its own figures.

use std::sync::Arc;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

/// Histogram buckets for durations, in seconds: 100 µs to 60 s.
const DURATION_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

/// Buckets for durations made of AWS transitions and DNS TTLs (a binding's move waits out its
/// record's TTL, up to an hour): 1 s to 1 h. For histograms named `*_move_duration_seconds`.
const LONG_DURATION_BUCKETS: &[f64] = &[
    1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// A daemon's metrics registry. Clones share it.
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn metadata() -> Metadata<'static> {
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()))
}

fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
    let labels: Vec<Label> = labels
        .iter()
        .map(|(k, v)| Label::new(*k, (*v).to_string()))
        .collect();
    Key::from_parts(name, labels)
}

impl Metrics {
    /// An empty registry; histograms get duration buckets (every histogram pld keeps is a
    /// duration in seconds).
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets(DURATION_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Suffix("_move_duration_seconds".into()),
                    LONG_DURATION_BUCKETS,
                )
            })
            .map(PrometheusBuilder::build_recorder)
            // Setting buckets fails only for an empty list, and ours are non-empty constants.
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        Metrics {
            recorder: Arc::new(recorder),
            handle,
        }
    }

    /// A counter named `name` with `labels`, described by `help` (the first description wins).
    pub fn counter(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
    ) -> Counter {
        self.recorder
            .describe_counter(KeyName::from_const_str(name), None, help.into());
        self.recorder
            .register_counter(&key(name, labels), &metadata())
    }

    /// A gauge named `name` with `labels`.
    pub fn gauge(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
    ) -> Gauge {
        self.recorder
            .describe_gauge(KeyName::from_const_str(name), None, help.into());
        self.recorder
            .register_gauge(&key(name, labels), &metadata())
    }

    /// A histogram of durations in seconds named `name` with `labels`.
    pub fn histogram(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
    ) -> Histogram {
        self.recorder.describe_histogram(
            KeyName::from_const_str(name),
            Some(Unit::Seconds),
            help.into(),
        );
        self.recorder
            .register_histogram(&key(name, labels), &metadata())
    }

    /// The registry in Prometheus' text format.
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_are_separate_and_render_what_was_recorded() {
        let a = Metrics::new();
        let b = Metrics::new();
        a.counter(
            "pld_test_calls_total",
            "Calls.",
            &[("action", "CreateVpcEndpoint")],
        )
        .increment(3);
        a.gauge("pld_test_depth", "Depth.", &[]).set(7.0);
        a.histogram("pld_test_seconds", "Time.", &[]).record(0.002);
        let text = a.render();
        assert!(
            text.contains("# HELP pld_test_calls_total Calls."),
            "{text}"
        );
        assert!(
            text.contains("pld_test_calls_total{action=\"CreateVpcEndpoint\"} 3"),
            "{text}"
        );
        assert!(text.contains("pld_test_depth 7"), "{text}");
        assert!(
            text.contains("pld_test_seconds_bucket{le=\"0.0025\"} 1"),
            "{text}"
        );
        assert!(
            !b.render().contains("pld_test"),
            "registries leak into each other"
        );
    }

    #[test]
    fn handles_to_the_same_series_add_up() {
        let m = Metrics::new();
        m.counter("pld_test_total", "T.", &[("k", "v")])
            .increment(1);
        m.counter("pld_test_total", "T.", &[("k", "v")])
            .increment(1);
        assert!(m.render().contains("pld_test_total{k=\"v\"} 2"));
    }
}
