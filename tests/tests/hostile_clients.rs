//! Clients that misbehave must not take a node away from the others: a flood of watch streams
//! nobody reads, and garbage on the gRPC port. (Forged raft messages: `forged_raft.rs`.)

use std::time::Duration;

use pld_proto::v1::watch_client::WatchClient;
use pld_proto::v1::WatchRequest;
use pld_tests::cluster::{fast_tuning, TestCluster};
use pld_tests::objects::{get_service, put_service};
use tokio::io::AsyncWriteExt;
use tonic::transport::Endpoint;

/// Watch streams opened and never read, spread over connections (a connection carries at most
/// a few hundred concurrent HTTP/2 streams).
const CONNECTIONS: usize = 8;
const STREAMS_PER_CONNECTION: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_watch_streams_and_garbage_leave_the_node_serving_others() -> anyhow::Result<()> {
    let cluster = TestCluster::start(1, fast_tuning()).await?;
    cluster.wait_leader(&[1]).await?;
    let addr = cluster.controller(1).expect("node 1").local_addr();
    let client = cluster.client();

    // 800 watchers that never read: each server-side stream fills its buffer and HTTP/2 window,
    // then waits — on its own, not on the node.
    let mut held = Vec::new();
    for _ in 0..CONNECTIONS {
        let channel = Endpoint::from_shared(format!("http://{addr}"))?
            .connect()
            .await?;
        for _ in 0..STREAMS_PER_CONNECTION {
            let stream = WatchClient::new(channel.clone())
                .watch(WatchRequest {
                    start_revision: 0,
                    kinds: Vec::new(),
                    prefix: String::new(),
                })
                .await?
                .into_inner();
            held.push(stream);
        }
    }

    // Garbage where gRPC is expected: random bytes, a truncated HTTP/2 preface, plain HTTP.
    for junk in [
        &b"\x00\xff\x13\x37 not a protocol at all \x00\x00\x00\x00"[..],
        &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\xff\xff\xff\xff"[..],
        &b"GET /pld.v1.Catalog/Put HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\nabc"[..],
    ] {
        let mut socket = tokio::net::TcpStream::connect(addr).await?;
        socket.write_all(junk).await?;
        drop(socket);
    }

    // Writes make events for every watcher; well-behaved clients still get answers.
    for i in 0..300 {
        let name = format!("svc-{i}");
        tokio::time::timeout(Duration::from_secs(5), put_service(&client, &name))
            .await
            .map_err(|_| anyhow::anyhow!("write {i} stalled behind the unread watchers"))??;
    }
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        get_service(&client, "svc-299", false),
    )
    .await??;
    assert!(read.is_some(), "a linearizable read sees the last write");

    // A new watcher that does read gets the latest change.
    let mut fresh = Box::pin(client.watch(WatchRequest {
        start_revision: 300,
        kinds: Vec::new(),
        prefix: String::new(),
    }));
    let event = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_stream::StreamExt::next(&mut fresh),
    )
    .await?
    .expect("an event")?;
    assert_eq!(event.revision, 300);
    drop(held);
    cluster.shutdown().await;
    Ok(())
}
