//! The loopback data plane of `pld dev`: an available interface endpoint listens on its ENI
//! addresses (loopback addresses here) at the load balancer's ports and forwards each TCP
//! connection to one of the load balancer's targets, so traffic really goes through it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, warn};

use super::State;
use crate::types::TargetType;

/// Where connections to the load balancer `arn` go: its listeners' ports, and the targets a
/// test gave it, or for a network load balancer pld built in front of an ALB, the ALB's.
pub(super) fn forwarding(st: &State, arn: &str) -> (Vec<u16>, Vec<SocketAddr>) {
    let ports: Vec<u16> = st
        .listeners
        .values()
        .filter(|l| l.listener.load_balancer_arn == arn)
        .map(|l| l.listener.port)
        .collect();
    let direct = st
        .lbs
        .get(arn)
        .map(|l| l.targets.clone())
        .unwrap_or_default();
    if !direct.is_empty() {
        return (ports, direct);
    }
    let through_albs = st
        .listeners
        .values()
        .filter(|l| l.listener.load_balancer_arn == arn)
        .filter_map(|l| l.listener.target_group_arn.as_ref())
        .filter_map(|g| st.target_groups.get(g))
        .filter(|g| g.group.target_type == TargetType::Alb)
        .flat_map(|g| g.targets.iter())
        .filter_map(|alb| st.lbs.get(alb))
        .flat_map(|alb| alb.targets.iter().copied())
        .collect();
    (ports, through_albs)
}

/// Forwarding tasks of one endpoint; dropping it stops them.
#[derive(Debug)]
pub(super) struct Forwarders {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Forwarders {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Forwarders {
    /// Listens on every `address:port` and forwards to `targets` round robin. `None` outside a
    /// tokio runtime or without targets.
    pub(super) fn start(
        addresses: &[String],
        ports: &[u16],
        targets: &[SocketAddr],
    ) -> Option<Self> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        if targets.is_empty() {
            return None;
        }
        let targets = Arc::new(targets.to_vec());
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for address in addresses {
            for port in ports {
                let listen = format!("{address}:{port}");
                let std_listener = match std::net::TcpListener::bind(&listen) {
                    Ok(l) => l,
                    Err(e) => {
                        warn!(%listen, error = %e, "simulated endpoint cannot listen");
                        continue;
                    }
                };
                if std_listener.set_nonblocking(true).is_err() {
                    continue;
                }
                let targets = targets.clone();
                let next = next.clone();
                tasks.push(runtime.spawn(async move {
                    let Ok(listener) = TcpListener::from_std(std_listener) else {
                        return;
                    };
                    while let Ok((client, _)) = listener.accept().await {
                        let target = targets[next.fetch_add(1, Ordering::Relaxed) % targets.len()];
                        tokio::spawn(forward(client, target));
                    }
                }));
            }
        }
        Some(Forwarders { tasks })
    }
}

async fn forward(mut client: TcpStream, target: SocketAddr) {
    match TcpStream::connect(target).await {
        Ok(mut upstream) => {
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                debug!(%target, error = %e, "simulated endpoint connection ended");
            }
        }
        Err(e) => debug!(%target, error = %e, "load balancer target unreachable"),
    }
}

/// A small HTTP server on loopback answering every request `200 OK` with `body`: the demo web
/// service behind the simulated ALB of `pld dev`. It reads a request's head, answers, and
/// closes the connection.
///
/// # Errors
/// When no loopback port can be bound.
pub async fn http_server(body: &'static str) -> std::io::Result<SocketAddr> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    Ok(addr)
}

/// A TCP echo server on loopback: the demo target behind simulated load balancers.
///
/// # Errors
/// When no loopback port can be bound.
pub async fn echo_server() -> std::io::Result<SocketAddr> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0 || conn.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(addr)
}
