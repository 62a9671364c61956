//! Who may use an agent's host API: only hosts of `host_api.allowed_networks`, only on-demand
//! bindings to `host_api.on_demand_services`, and with `[host_api.tls]` only hosts with a
//! certificate (`agent/src/host_access.rs`).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use pld_agent::config::AcceptanceConfig;
use pld_proto::v1::host_query_client::HostQueryClient;
use pld_proto::v1::{Approval, ResolveRequest};
use pld_tests::metric;
use pld_tests::pki::TestPki;
use pld_tests::region::{resolve, Env, CONSUMER};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

/// GET `path` from `addr` over a connection made from `source`: (status, body), or an error
/// when the connection is closed without an answer.
async fn http_get_from(
    source: IpAddr,
    addr: SocketAddr,
    path: &str,
) -> anyhow::Result<(u16, String)> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    let mut stream = socket.connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    // A refused connection may already be closed: the write or the read says so.
    let mut answer = String::new();
    let exchanged = async {
        stream.write_all(request.as_bytes()).await?;
        stream.read_to_string(&mut answer).await
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), exchanged).await?;
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no answer from {addr} to a client at {source}"))?;
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_api_serves_only_the_client_networks_it_lists() -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let mut cfg = env.agent_config(CONSUMER, &env.consumer_vpc, Vec::new());
    // The listener is on 127.0.0.1; clients from 127.0.0.2 are "the VPC", 127.0.0.1 is not.
    cfg.host_api.allowed_networks = vec!["127.0.0.2/32".parse()?];
    let (agent, _) = env.start_agent(cfg, None).await?;
    let addr = agent.host_api_addr();
    let listed: IpAddr = "127.0.0.2".parse()?;
    let unlisted: IpAddr = "127.0.0.1".parse()?;

    let (status, _) = http_get_from(listed, addr, "/healthz").await?;
    assert_eq!(status, 200, "a listed client is served");
    let refused = http_get_from(unlisted, addr, "/healthz").await;
    assert!(refused.is_err(), "an unlisted client got {refused:?}");
    let grpc = resolve(&agent, "demo", Duration::ZERO).await;
    assert!(grpc.is_err(), "an unlisted client resolved: {grpc:?}");

    let (_, metrics) = http_get_from(listed, addr, "/metrics").await?;
    let refused = metric(
        &metrics,
        "pld_agent_host_api_refused_total{reason=\"network\"}",
    );
    assert!(refused.is_some_and(|n| n >= 2.0), "{metrics}");
    agent.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_bind_on_demand_only_to_the_services_listed() -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let principal = format!("arn:aws:iam::{CONSUMER}:root");
    let (provider, _) = env
        .start_agent(
            env.agent_config(
                pld_tests::region::PROVIDER,
                &env.provider_vpc,
                vec![env.demo_service(AcceptanceConfig::Auto, &[&principal])],
            ),
            None,
        )
        .await?;
    let mut cfg = env.agent_config(CONSUMER, &env.consumer_vpc, Vec::new());
    cfg.host_api.on_demand_services = Some(vec!["s3".into()]);
    let (consumer, _) = env.start_agent(cfg, None).await?;

    let refused = resolve(&consumer, "demo", Duration::ZERO)
        .await
        .expect_err("demo is not listed");
    let status = refused
        .downcast_ref::<tonic::Status>()
        .expect("a gRPC status");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status
            .message()
            .contains("host_api.on_demand_services lists (s3)")
            && status.message().contains("pld connect demo --vpc"),
        "{status:?}"
    );
    assert!(
        env.binding_status("demo").await.is_none(),
        "a refused host created a binding"
    );
    // A listed built-in service is created on demand.
    let s3 = resolve(&consumer, "s3", Duration::ZERO).await?;
    assert_eq!(s3.service, "s3");

    // An operator's binding answers whatever the list says.
    env.put_binding("demo", Approval::Unspecified).await?;
    let answer = resolve(&consumer, "demo", Duration::from_secs(30)).await?;
    assert_eq!(answer.phase, "ready", "{answer:?}");

    let metrics = pld_tests::scrape(consumer.host_api_addr()).await?;
    assert_eq!(
        metric(
            &metrics,
            "pld_agent_host_api_refused_total{reason=\"on_demand\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    consumer.shutdown().await;
    provider.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_api_with_tls_answers_only_hosts_with_a_certificate() -> anyhow::Result<()> {
    let env = Env::instant().await?;
    let pki = TestPki::new("hosts")?;
    let mut cfg = env.agent_config(CONSUMER, &env.consumer_vpc, Vec::new());
    cfg.host_api.tls = Some(pki.issue("agent-host-api", &[])?);
    let (agent, _) = env.start_agent(cfg, None).await?;

    // The agent's record says so, for `pld resolve`.
    let record = env
        .client()
        .get(pld_proto::v1::Kind::Agent, &env.consumer_vpc.id)
        .await?;
    let published = match record.and_then(|o| o.object) {
        Some(pld_proto::v1::object::Object::Agent(a)) => a.host_api_tls,
        other => anyhow::bail!("no agent record: {other:?}"),
    };
    assert!(published, "the record does not say the host API takes TLS");

    let plaintext = resolve(&agent, "s3", Duration::ZERO).await;
    assert!(plaintext.is_err(), "a plaintext host was answered");

    let without_cert = pki.endpoint(agent.host_api_addr(), None)?.connect().await;
    if let Ok(channel) = without_cert {
        let answer = HostQueryClient::new(channel)
            .resolve(ResolveRequest {
                service: "s3".into(),
                wait_seconds: 0,
            })
            .await;
        assert!(answer.is_err(), "a host without a certificate was answered");
    }

    let host = pki.issue("host", &[])?;
    let channel = pki
        .endpoint(agent.host_api_addr(), Some(&host))?
        .connect()
        .await?;
    let answer = HostQueryClient::new(channel)
        .resolve(ResolveRequest {
            service: "s3".into(),
            wait_seconds: 0,
        })
        .await?
        .into_inner();
    assert_eq!(answer.service, "s3");
    agent.shutdown().await;
    Ok(())
}
