//! Reads: an agent sees every service, the bindings its VPC consumes or whose service it
//! provides, and its own agent record, whether it gets, lists or watches; operators see
//! everything.

use std::time::Duration;

use futures::StreamExt;
use pld_core::catalog::binding_key;
use pld_proto::v1::{Approval, EventType, Kind, ListRequest, WatchRequest};

use super::fixture::*;

const VPC_C: &str = "vpc-cccccccc";
const ACCOUNT_C: &str = "333333333333";

/// The keys of `kind` that `client` lists.
async fn listed(client: &pld_client::Client, kind: Kind) -> anyhow::Result<Vec<String>> {
    let r = client
        .list(ListRequest {
            kind: kind as i32,
            ..Default::default()
        })
        .await?;
    let mut keys: Vec<String> = r
        .objects
        .iter()
        .filter_map(|o| pld_core::catalog::object_key(o).ok().map(|(_, k)| k))
        .collect();
    keys.sort();
    Ok(keys)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_reads_only_what_its_vpc_provides_or_consumes() -> anyhow::Result<()> {
    let f = Fixture::start().await?;
    let admin = f.cluster.client();
    let agent = |who: &str, account: &str, vpc: &str| {
        f.client(who, &[&format!("spiffe://pld/agent/{account}/{vpc}")])
    };
    let (a, b, c) = (
        agent("agent-a", ACCOUNT_A, VPC_A)?,
        agent("agent-b", ACCOUNT_B, VPC_B)?,
        agent("agent-c", ACCOUNT_C, VPC_C)?,
    );
    let operator = f.client("operator", &["spiffe://pld/operator/ci"])?;
    // C watches from the start, before anything exists; its stream must carry only its share.
    let start = admin
        .list(ListRequest {
            kind: Kind::Service as i32,
            ..Default::default()
        })
        .await?
        .revision
        + 1;
    let mut c_events = Box::pin(c.watch(WatchRequest {
        start_revision: start,
        ..Default::default()
    }));

    for (vpc, account) in [(VPC_A, ACCOUNT_A), (VPC_B, ACCOUNT_B), (VPC_C, ACCOUNT_C)] {
        admin.put(agent_record(vpc, account), None).await?;
    }
    // A provides alpha, B provides beta; B and C consume alpha, C consumes beta.
    admin.put(service("alpha", VPC_A, &["*"]), None).await?;
    admin.put(service("beta", VPC_B, &["*"]), None).await?;
    for (svc, vpc) in [("alpha", VPC_B), ("alpha", VPC_C), ("beta", VPC_C)] {
        admin
            .put(binding(svc, vpc, Approval::Unspecified), None)
            .await?;
    }
    // The last change: C's own binding goes, so its watch must see that delete.
    admin
        .delete(Kind::Binding, &binding_key("beta", VPC_C), None)
        .await?;

    // Services: everyone sees all.
    for client in [&a, &b, &c, &operator] {
        assert_eq!(listed(client, Kind::Service).await?, ["alpha", "beta"]);
    }
    // Bindings: the provider sees those to its service, a consumer its own.
    let ab = binding_key("alpha", VPC_B);
    let ac = binding_key("alpha", VPC_C);
    assert_eq!(listed(&a, Kind::Binding).await?, [ab.as_str(), ac.as_str()]);
    assert_eq!(listed(&b, Kind::Binding).await?, [ab.as_str()]);
    assert_eq!(listed(&c, Kind::Binding).await?, [ac.as_str()]);
    assert_eq!(listed(&operator, Kind::Binding).await?, [ab.clone(), ac]);
    // Agent records: its own.
    assert_eq!(listed(&b, Kind::Agent).await?, [VPC_B]);
    assert_eq!(listed(&operator, Kind::Agent).await?.len(), 3);

    // Get: refused for another VPC's object, whether or not it exists, so the answer tells
    // nothing; its own, and a binding to its service, are read.
    denied(
        c.get(Kind::Binding, &ab).await,
        &[
            "spiffe://pld/agent/333333333333/vpc-cccccccc may not read binding",
            "alpha/vpc-bbbbbbbb",
        ],
    );
    denied(
        c.get(Kind::Binding, &binding_key("alpha", "vpc-dddddddd"))
            .await,
        &["may not read binding"],
    );
    denied(c.get(Kind::Agent, VPC_A).await, &["may not read agent"]);
    assert!(a.get(Kind::Binding, &ab).await?.is_some(), "its provider");
    assert!(b.get(Kind::Binding, &ab).await?.is_some(), "its consumer");
    assert!(c.get(Kind::Agent, VPC_C).await?.is_some());
    assert!(operator.get(Kind::Agent, VPC_A).await?.is_some());

    // Watch: C's stream holds its agent record, both services, its bindings and their
    // delete, and nothing of A's or B's records or of B's binding.
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !seen.iter().any(|(typ, key): &(i32, String)| {
        *typ == EventType::Delete as i32 && *key == binding_key("beta", VPC_C)
    }) {
        let event = tokio::time::timeout_at(deadline, c_events.next())
            .await
            .map_err(|_| anyhow::anyhow!("C's watch stalled; it saw {seen:?}"))?
            .ok_or_else(|| anyhow::anyhow!("C's watch ended; it saw {seen:?}"))??;
        seen.push((event.r#type, event.key));
    }
    let keys: Vec<&str> = seen.iter().map(|(_, k)| k.as_str()).collect();
    let beta_c = binding_key("beta", VPC_C);
    let alpha_c = binding_key("alpha", VPC_C);
    assert_eq!(
        keys,
        [VPC_C, "alpha", "beta", &alpha_c, &beta_c, &beta_c],
        "C's watch"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trust_domain_is_the_configured_one() -> anyhow::Result<()> {
    let f = Fixture::start_in(Some("prod.example.org")).await?;
    let admin = f.cluster.client();
    admin.put(service("alpha", VPC_A, &["*"]), None).await?;
    // An identity of the configured domain is read; the same role under the default `pld`
    // names nobody here.
    let operator = f.client("operator", &[&format!("spiffe://{}/operator/ci", f.domain)])?;
    assert!(operator.get(Kind::Service, "alpha").await?.is_some());
    let stranger = f.client("pld-operator", &["spiffe://pld/operator/ci"])?;
    denied(
        stranger.get(Kind::Service, "alpha").await,
        &["names no pld identity in trust domain prod.example.org"],
    );
    Ok(())
}
