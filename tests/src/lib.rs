//! pld's test harness.
//!
//! - [`wait_until`]: poll a condition with a deadline (tests never sleep to synchronise).
//! - [`cluster::TestCluster`]: N controllers in this process, real gRPC on loopback, real sled
//!   data dirs, and a shared [`pld_controller::Faults`] to drop, delay, cut and isolate links.
//! - [`process::ProcessCluster`]: N real `pld controller` processes, killed with SIGKILL or
//!   stopped with SIGTERM, restarted on the same data dirs and ports.
//! - [`objects`]: catalog objects for tests.
//! - [`region`]: a controller, a simulated region and agents per VPC, in this process.
//! - [`plan`]: ask the controller for a plan and compare it with what the agents then do.
//! - [`systemd`]: a notify socket and signals, to test daemons as systemd runs them.
//! - [`traffic`]: a client that keeps connecting through a name while it changes.
//! - [`netns`]: network namespaces to partition real processes; [`nemesis`] runs a workload
//!   under faults on them and checks it with [`linearizable`].
//! - [`Setup`]: what a test that needs root found, so a harness can report a skip as a skip.
//! - `layering` (tests only): no crate's files import each other in a circle.

pub mod cluster;
#[cfg(test)]
mod layering;
pub mod linearizable;
pub mod nemesis;
pub mod netns;
pub mod objects;
pub mod pki;
pub mod plan;
pub mod process;
pub mod region;
pub mod systemd;
pub mod traffic;

use std::future::Future;
use std::time::Duration;

/// What a test that needs something of the machine (root, namespaces, a tmpfs) found: the thing,
/// or why it cannot have it here. The tests that use it run under libtest-mimic, which reports
/// a skip as `ignored, <why>`, never as passed.
#[derive(Debug)]
pub enum Setup<T> {
    Ready(T),
    Skip(String),
}

impl<T> Setup<T> {
    /// A skip because `why`, or an error when `PLD_REQUIRE_ROOT_TESTS` is set (CI runs as root,
    /// so there a missing capability is a broken machine, not a reason to pass).
    ///
    /// # Errors
    /// When `PLD_REQUIRE_ROOT_TESTS` is set.
    pub fn unavailable(why: String) -> anyhow::Result<Setup<T>> {
        anyhow::ensure!(
            std::env::var_os("PLD_REQUIRE_ROOT_TESTS").is_none(),
            "PLD_REQUIRE_ROOT_TESTS is set but {why}"
        );
        eprintln!("skipping: {why}; run as root");
        Ok(Setup::Skip(why))
    }
}

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

/// Where [`free_port`] looks: below the kernel's ephemeral range (`ip_local_port_range`,
/// 32768–60999 by default). A port from that range that was free a moment ago can be taken by
/// any outbound connection's source port, or another test's bind to port 0, before the process
/// it was meant for binds it; below it, only another test picking the same port can.
const TEST_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A loopback port that was free a moment ago, for processes that must know their peers'
/// addresses before they start.
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> anyhow::Result<u16> {
    use rand::Rng as _;
    for _ in 0..200 {
        let port = rand::thread_rng().gen_range(TEST_PORTS);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    anyhow::bail!("no free loopback port in {TEST_PORTS:?}")
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

/// A plain HTTP/1.1 GET to a loopback daemon (`/metrics`, `/healthz`, `/readyz`), returning the
/// status code and body.
///
/// # Errors
/// When the address is not loopback, the connection fails, or the answer is not HTTP.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    anyhow::ensure!(
        addr.ip().is_loopback(),
        "tests only talk to loopback, not {addr}"
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw)).await??;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("not an HTTP answer: {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no status in {head:?}"))?;
    Ok((status, body.to_string()))
}

/// The value of one series (`name` or `name{label="v",...}`, exactly as rendered) in a
/// Prometheus text exposition.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Scrapes `/metrics` of a loopback daemon.
///
/// # Errors
/// When the scrape fails or does not answer 200.
pub async fn scrape(addr: std::net::SocketAddr) -> anyhow::Result<String> {
    let (status, body) = http_get(addr, "/metrics").await?;
    anyhow::ensure!(status == 200, "/metrics answered {status}: {body}");
    Ok(body)
}

/// The services a loopback gRPC server lists through server reflection (what `grpcurl list`
/// shows).
///
/// # Errors
/// When the server cannot be reached or does not answer reflection.
pub async fn reflected_services(addr: std::net::SocketAddr) -> anyhow::Result<Vec<String>> {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    anyhow::ensure!(
        addr.ip().is_loopback(),
        "tests only talk to loopback, not {addr}"
    );
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = client
        .server_reflection_info(futures::stream::iter([request]))
        .await?
        .into_inner();
    match answers.message().await?.and_then(|r| r.message_response) {
        Some(MessageResponse::ListServicesResponse(list)) => {
            Ok(list.service.into_iter().map(|s| s.name).collect())
        }
        other => anyhow::bail!("unexpected reflection answer: {other:?}"),
    }
}
