//! pld's test harness.
//!
//! - [`wait_until`]: poll a condition with a deadline (tests never sleep to synchronise).
//! - [`cluster::TestCluster`]: N controllers in this process, real gRPC on loopback, real sled
//!   data dirs, and a shared [`pld_controller::Faults`] to drop, delay, cut and isolate links.
//! - [`process::ProcessCluster`]: N real `pld controller` processes, killed with SIGKILL or
//!   stopped with SIGTERM, restarted on the same data dirs and ports.
//! - [`objects`]: catalog objects for tests.
//! - [`region`]: a controller, a simulated region and agents per VPC, in this process.

pub mod cluster;
pub mod objects;
pub mod process;
pub mod region;

use std::future::Future;
use std::time::Duration;

/// Polls `check` every 20 ms until it returns `Some`, or fails after `deadline` naming `what`.
///
/// # Errors
/// When the deadline passes first.
pub async fn wait_until<T, F, Fut>(
    deadline: Duration,
    what: &str,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= end {
            anyhow::bail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sets up tracing for a test once (`PLD_LOG` filter, default warn).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PLD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// A loopback port that was free a moment ago, for processes that must know their peers'
/// addresses before they start.
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The first of `n` consecutive loopback ports that were all free a moment ago (for programs
/// that take a base port and use the ones after it).
///
/// # Errors
/// When no such run is found.
pub fn free_port_run(n: u16) -> anyhow::Result<u16> {
    for _ in 0..50 {
        let base = free_port()?;
        if base.checked_add(n).is_none() {
            continue;
        }
        let held: Result<Vec<_>, _> = (base..base + n)
            .map(|p| std::net::TcpListener::bind(("127.0.0.1", p)))
            .collect();
        let udp: Result<Vec<_>, _> = (base..base + n)
            .map(|p| std::net::UdpSocket::bind(("127.0.0.1", p)))
            .collect();
        if held.is_ok() && udp.is_ok() {
            return Ok(base);
        }
    }
    anyhow::bail!("no run of {n} free loopback ports")
}
