//! In-process controller clusters: election, replication, partitions, snapshots, membership,
//! linearizable reads, watches and bad input — over real gRPC and real sled dirs.

use std::time::Duration;

use futures::StreamExt;
use pld_controller::api::{COMPACT_REVISION_KEY, CURRENT_REVISION_KEY};
use pld_controller::config::RaftTuning;
use pld_proto::v1::{
    object, DeleteRequest, Kind, ListMembersRequest, ListRequest, Object, PutRequest,
    RemoveMemberRequest, Service, WatchRequest,
};
use pld_tests::cluster::{fast_tuning, TestCluster};
use pld_tests::objects::{get_service, put_service, service, service_object};
use pld_tests::wait_until;
use tonic::Code;
use tracing::info;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_elect_one_leader_and_replicate_writes() -> anyhow::Result<()> {
    let cluster = TestCluster::start(3, fast_tuning()).await?;
    info!("a leader is elected");
    let leader = cluster.wait_leader(&[1, 2, 3]).await?;
    info!("a write through a follower is committed and reaches every node");
    let follower = cluster
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .unwrap_or(1);
    let revision = put_service(&cluster.client_of(follower), "web").await?;
    assert_eq!(revision, 1);
    for id in cluster.ids() {
        let client = cluster.client_of(id);
        wait_until(
            Duration::from_secs(5),
            "the write on every node",
            || async { get_service(&client, "web", true).await.ok().flatten() },
        )
        .await?;
    }
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn followers_learn_a_commit_when_writes_stop_without_waiting_for_a_heartbeat(
) -> anyhow::Result<()> {
    // Heartbeats 1.5 s apart. A follower learns a commit index from the next append, and when
    // no write follows, from the append the leader sends for it alone a millisecond later; a
    // follower left to the heartbeat would miss the deadline below in about half the writes.
    let tuning = RaftTuning {
        tick_ms: 50,
        election_ticks: 40,
        heartbeat_ticks: 30,
        ..fast_tuning()
    };
    let cluster = TestCluster::start(3, tuning).await?;
    let leader = cluster.wait_leader(&[1, 2, 3]).await?;
    let writer = cluster.client_of(leader);
    for i in 0..8 {
        let name = format!("quiet-{i}");
        put_service(&writer, &name).await?;
        for id in cluster.ids().into_iter().filter(|id| *id != leader) {
            let follower = cluster.client_of(id);
            wait_until(
                Duration::from_millis(750),
                "the follower to apply a write after the writes stopped",
                || async { get_service(&follower, &name, true).await.ok().flatten() },
            )
            .await?;
        }
    }
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn linearizable_read_on_a_follower_sees_the_latest_acknowledged_write() -> anyhow::Result<()>
{
    let cluster = TestCluster::start(3, fast_tuning()).await?;
    let leader = cluster.wait_leader(&[1, 2, 3]).await?;
    let follower = cluster
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .unwrap_or(1);
    // A slow link to the follower makes a stale read likely, so only ReadIndex can pass.
    cluster.faults().set_delay(Some(Duration::from_millis(30)));
    for i in 0..10 {
        let name = format!("svc-{i}");
        put_service(&cluster.client_of(leader), &name).await?;
        let read = get_service(&cluster.client_of(follower), &name, false).await?;
        assert!(
            read.is_some(),
            "a linearizable read on node {follower} missed {name}"
        );
    }
    cluster.faults().heal();
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_minority_cannot_commit_and_the_majority_keeps_serving() -> anyhow::Result<()> {
    let cluster = TestCluster::start(3, fast_tuning()).await?;
    let old_leader = cluster.wait_leader(&[1, 2, 3]).await?;
    let majority: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|id| *id != old_leader)
        .collect();
    put_service(&cluster.client(), "before").await?;

    info!("isolate the leader: its writes fail, the rest elect a new leader");
    cluster.faults().isolate(old_leader, &majority);
    let minority_write = put_service(&cluster.client_of(old_leader), "minority").await;
    assert!(
        minority_write.is_err(),
        "an isolated leader acknowledged a write"
    );
    assert_eq!(minority_write.unwrap_err().code(), Code::Unavailable);
    let new_leader = cluster.wait_leader(&majority).await?;
    assert_ne!(new_leader, old_leader);
    put_service(&cluster.client_of(majority[0]), "majority").await?;

    info!("heal: the old leader catches up and drops its uncommitted entry");
    cluster.faults().heal();
    let old = cluster.client_of(old_leader);
    wait_until(
        Duration::from_secs(10),
        "the old leader to learn the majority's write",
        || async { get_service(&old, "majority", false).await.ok().flatten() },
    )
    .await?;
    assert!(get_service(&old, "minority", false).await?.is_none());
    assert!(get_service(&old, "before", false).await?.is_some());
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_commit_through_dropped_and_delayed_messages() -> anyhow::Result<()> {
    let cluster = TestCluster::start(3, fast_tuning()).await?;
    cluster.wait_leader(&[1, 2, 3]).await?;
    cluster.faults().set_drop_rate(0.2);
    cluster.faults().set_delay(Some(Duration::from_millis(3)));
    let client = cluster.client();
    for i in 0..30 {
        // The client retries across nodes; unconditional puts are safe to repeat.
        put_service(&client, &format!("svc-{i}")).await?;
    }
    cluster.faults().heal();
    let list = |id: u64| {
        let c = cluster.client_of(id);
        async move {
            c.call(|mut s| async move {
                s.catalog()
                    .list(ListRequest {
                        kind: Kind::Service as i32,
                        stale: true,
                        ..Default::default()
                    })
                    .await
            })
            .await
            .ok()
            .map(|r| r.objects.len())
        }
    };
    for id in cluster.ids() {
        wait_until(
            Duration::from_secs(10),
            "every node to hold all 30",
            || async { (list(id).await? == 30).then_some(()) },
        )
        .await?;
    }
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_behind_a_compaction_catches_up_from_a_snapshot() -> anyhow::Result<()> {
    let mut tuning = fast_tuning();
    tuning.snapshot_every = 20;
    let mut cluster = TestCluster::start(3, tuning).await?;
    let leader = cluster.wait_leader(&[1, 2, 3]).await?;
    let lagging = cluster
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .unwrap_or(1);

    info!("stop a follower and write past two compactions");
    cluster.stop(lagging).await;
    let client = cluster.client_of(leader);
    for i in 0..60 {
        put_service(&client, &format!("svc-{i}")).await?;
    }
    let leader_info = cluster
        .controller(leader)
        .map(|c| c.node().info())
        .unwrap_or_default();
    assert!(
        leader_info.snapshot_index >= 40,
        "leader compacted to {}",
        leader_info.snapshot_index
    );

    info!("restart it: it can only catch up by installing a snapshot");
    cluster.restart(lagging).await?;
    cluster
        .wait_applied(&[lagging], leader_info.applied_index)
        .await?;
    let follower = cluster.client_of(lagging);
    for i in [0, 30, 59] {
        assert!(get_service(&follower, &format!("svc-{i}"), true)
            .await?
            .is_some());
    }

    info!("the snapshot counters say so too");
    let addr = |id| {
        cluster
            .controller(id)
            .map(|c| c.local_addr())
            .expect("running")
    };
    let leader_metrics = pld_tests::scrape(addr(leader)).await?;
    let created = pld_tests::metric(&leader_metrics, "pld_raft_snapshots_created_total");
    assert!(created >= Some(2.0), "{leader_metrics}");
    let follower_metrics = pld_tests::scrape(addr(lagging)).await?;
    let installed = pld_tests::metric(&follower_metrics, "pld_raft_snapshots_installed_total");
    assert!(installed >= Some(1.0), "{follower_metrics}");
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn members_are_added_and_removed_at_runtime() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(3, fast_tuning()).await?;
    let leader = cluster.wait_leader(&[1, 2, 3]).await?;
    put_service(&cluster.client(), "before-join").await?;

    info!("node 4 joins through a follower and receives the catalog");
    let via = cluster
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .unwrap_or(1);
    cluster.join(4, via).await?;
    let four = cluster.client_of(4);
    wait_until(
        Duration::from_secs(10),
        "node 4 to hold the catalog",
        || async { get_service(&four, "before-join", true).await.ok().flatten() },
    )
    .await?;
    let members = cluster
        .client()
        .call(|mut s| async move { s.cluster().list_members(ListMembersRequest {}).await })
        .await?;
    assert_eq!(members.members.len(), 4);

    info!("remove a follower other than 4; writes go on with the remaining three");
    let removed = cluster
        .ids()
        .into_iter()
        .find(|id| *id != leader && *id != 4)
        .unwrap_or(1);
    let members = cluster
        .client_of(leader)
        .call(|mut s| async move {
            s.cluster()
                .remove_member(RemoveMemberRequest { id: removed })
                .await
        })
        .await?;
    assert_eq!(members.members.len(), 3);
    assert!(members.members.iter().all(|m| m.id != removed));
    cluster.stop(removed).await;
    put_service(&cluster.client_of(4), "after-remove").await?;
    assert!(
        get_service(&cluster.client_of(leader), "after-remove", false)
            .await?
            .is_some()
    );
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_watch_delivers_every_change_once_in_order_and_reports_compaction() -> anyhow::Result<()>
{
    let mut tuning = fast_tuning();
    tuning.history_limit = 50;
    let cluster = TestCluster::start(3, tuning).await?;
    let leader = cluster.wait_leader(&[1, 2, 3]).await?;
    let follower = cluster
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .unwrap_or(1);
    let client = cluster.client();

    info!("a watch on a follower from revision 1 sees 30 writes in order");
    let mut watch = Box::pin(cluster.client_of(follower).watch(WatchRequest {
        start_revision: 1,
        ..Default::default()
    }));
    for i in 0..30 {
        put_service(&client, &format!("svc-{}", i % 7)).await?;
    }
    let mut revisions = Vec::new();
    while revisions.len() < 30 {
        let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("watch ended"))??;
        revisions.push(event.revision);
    }
    assert_eq!(revisions, (1..=30).collect::<Vec<u64>>());

    info!("after the window moves on, a watch from revision 1 is refused as compacted");
    let mut last = 0;
    for i in 0..40 {
        last = put_service(&client, &format!("svc-{}", i % 7)).await?;
    }
    // The follower answers from what it has applied, which may trail the acknowledged writes
    // (it learns the last commit index a moment after the leader).
    let follower_node = cluster.controller(follower).expect("running").node();
    wait_until(
        Duration::from_secs(5),
        "the follower to apply the last write",
        || async { (follower_node.catalog().revision() >= last).then_some(()) },
    )
    .await?;
    let mut stubs = cluster.client_of(follower).stubs();
    let err = async {
        let mut stream = stubs
            .watch()
            .watch(WatchRequest {
                start_revision: 1,
                ..Default::default()
            })
            .await?
            .into_inner();
        while stream.message().await?.is_some() {}
        Ok::<(), tonic::Status>(())
    }
    .await
    .expect_err("a compacted watch must fail");
    assert_eq!(err.code(), Code::OutOfRange);
    assert!(err.message().contains("compacted"));
    let oldest: u64 = err
        .metadata()
        .get(COMPACT_REVISION_KEY)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert_eq!(oldest, 21, "70 changes, a window of 50");
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_get_errors_that_name_the_problem() -> anyhow::Result<()> {
    let cluster = TestCluster::start(1, fast_tuning()).await?;
    cluster.wait_leader(&[1]).await?;
    let mut stubs = cluster.client_of(1).stubs();

    info!("an invalid name is refused, naming the field");
    let mut bad = service("Bad_Name");
    bad.ports = vec![443];
    let err = stubs
        .catalog()
        .put(PutRequest {
            object: Some(Object {
                object: Some(object::Object::Service(bad)),
            }),
            expected_mod_revision: None,
        })
        .await
        .expect_err("invalid name");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("service.name"), "{}", err.message());

    info!("an empty object and an unknown kind are refused");
    let err = stubs
        .catalog()
        .put(PutRequest::default())
        .await
        .expect_err("empty object");
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = stubs
        .catalog()
        .delete(DeleteRequest {
            kind: 42,
            key: "x".into(),
            expected_mod_revision: None,
        })
        .await
        .expect_err("unknown kind");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("kind"));

    info!("an unknown object is NOT_FOUND");
    let err = stubs
        .catalog()
        .delete(DeleteRequest {
            kind: Kind::Service as i32,
            key: "ghost".into(),
            expected_mod_revision: None,
        })
        .await
        .expect_err("unknown object");
    assert_eq!(err.code(), Code::NotFound);

    info!("a CAS mismatch is FAILED_PRECONDITION with the current revision");
    put_service(&cluster.client(), "web").await?;
    let err = stubs
        .catalog()
        .put(PutRequest {
            object: Some(service_object("web")),
            expected_mod_revision: Some(0),
        })
        .await
        .expect_err("create-only on an existing object");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        err.metadata()
            .get(CURRENT_REVISION_KEY)
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );

    info!("an oversized request is refused and the node keeps serving");
    let huge = Service {
        description: "x".repeat(2 * 1024 * 1024),
        ..service("huge")
    };
    let err = stubs
        .catalog()
        .put(PutRequest {
            object: Some(Object {
                object: Some(object::Object::Service(huge)),
            }),
            expected_mod_revision: None,
        })
        .await
        .expect_err("oversized");
    assert!(
        matches!(
            err.code(),
            Code::OutOfRange | Code::ResourceExhausted | Code::InvalidArgument
        ),
        "{err:?}"
    );
    assert!(get_service(&cluster.client(), "web", false)
        .await?
        .is_some());
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_leader_expires_agent_leases_that_are_not_renewed() -> anyhow::Result<()> {
    use pld_proto::v1::{Agent, AgentState, GetRequest, KeepAliveRequest};
    let cluster = TestCluster::start(3, fast_tuning()).await?;
    cluster.wait_leader(&[1, 2, 3]).await?;
    let client = cluster.client();
    let agent = |vpc: &str| Object {
        object: Some(object::Object::Agent(Agent {
            vpc_id: vpc.into(),
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
            lease_ttl_seconds: 1,
            ..Default::default()
        })),
    };
    for vpc in ["vpc-0000000a", "vpc-0000000b"] {
        let object = agent(vpc);
        client
            .call(|mut s| {
                let req = PutRequest {
                    object: Some(object.clone()),
                    expected_mod_revision: None,
                };
                async move { s.catalog().put(req).await }
            })
            .await?;
    }
    let state = |vpc: &'static str| {
        let client = client.clone();
        async move {
            let r = client
                .call(|mut s| async move {
                    s.catalog()
                        .get(GetRequest {
                            kind: Kind::Agent as i32,
                            key: vpc.into(),
                            stale: false,
                        })
                        .await
                })
                .await
                .ok()?;
            match r.object?.object? {
                object::Object::Agent(a) => Some(a.state),
                _ => None,
            }
        }
    };
    info!("b keeps renewing its lease, a does not: only a expires");
    wait_until(
        Duration::from_secs(10),
        "the lease of a to expire",
        || async {
            client
                .call(|mut s| async move {
                    s.catalog()
                        .keep_alive(KeepAliveRequest {
                            vpc_id: "vpc-0000000b".into(),
                        })
                        .await
                })
                .await
                .ok()?;
            (state("vpc-0000000a").await == Some(AgentState::Expired as i32)).then_some(())
        },
    )
    .await?;
    assert_eq!(state("vpc-0000000b").await, Some(AgentState::Alive as i32));
    info!("a renewal revives an expired agent");
    client
        .call(|mut s| async move {
            s.catalog()
                .keep_alive(KeepAliveRequest {
                    vpc_id: "vpc-0000000a".into(),
                })
                .await
        })
        .await?;
    assert_eq!(state("vpc-0000000a").await, Some(AgentState::Alive as i32));
    cluster.shutdown().await;
    Ok(())
}

/// Many writes at once share log entries on the leader; each must still get its own revision
/// and its own outcome, exactly as if proposed alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_batched_into_one_entry_keep_their_own_outcomes() -> anyhow::Result<()> {
    let cluster = TestCluster::start(3, fast_tuning()).await?;
    let leader = cluster.wait_leader(&[1, 2, 3]).await?;
    let client = cluster.client_of(leader);
    let create_once = |i: usize| {
        let client = client.clone();
        async move {
            let req = PutRequest {
                object: Some(service_object("contended")),
                expected_mod_revision: Some(0),
            };
            let r = client
                .call(|mut s| {
                    let req = req.clone();
                    async move { s.catalog().put(req).await }
                })
                .await;
            (i, r.map(|r| r.revision))
        }
    };
    let distinct = |i: usize| {
        let client = client.clone();
        async move { (i, put_service(&client, &format!("svc-{i}")).await) }
    };
    let last_index = || {
        cluster
            .controller(leader)
            .map_or(0, |c| c.node().info().last_index)
    };
    let before = last_index();
    let (creates, puts) = tokio::join!(
        futures::future::join_all((0..40).map(create_once)),
        futures::future::join_all((0..40).map(distinct)),
    );
    let entries = last_index() - before;
    assert!(
        entries <= 40,
        "80 concurrent writes took {entries} log entries; the leader must batch them"
    );
    let won: Vec<_> = creates.iter().filter(|(_, r)| r.is_ok()).collect();
    assert_eq!(
        won.len(),
        1,
        "exactly one create-only put wins: {creates:?}"
    );
    for (_, r) in creates.iter().filter(|(_, r)| r.is_err()) {
        let code = r.as_ref().err().map(pld_client::ClientError::code);
        assert_eq!(code, Some(Code::FailedPrecondition), "{r:?}");
    }
    let mut revisions: Vec<u64> = puts
        .into_iter()
        .map(|(i, r)| r.unwrap_or_else(|e| panic!("put {i}: {e}")))
        .collect();
    revisions.extend(won.iter().filter_map(|(_, r)| r.as_ref().ok().copied()));
    revisions.sort_unstable();
    revisions.dedup();
    assert_eq!(
        revisions.len(),
        41,
        "every successful write has its own revision"
    );
    for id in cluster.ids() {
        let c = cluster.client_of(id);
        wait_until(
            Duration::from_secs(5),
            "every write on every node",
            || async {
                get_service(&c, "svc-39", true).await.ok().flatten()?;
                get_service(&c, "contended", true).await.ok().flatten()
            },
        )
        .await?;
    }
    cluster.shutdown().await;
    Ok(())
}
