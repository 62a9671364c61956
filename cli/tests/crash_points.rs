//! Real `pld controller` processes crashing (SIGABRT from an armed crash point, see
//! `pld_controller::crash_points`) at every point of the write path: log persist, apply,
//! snapshot create, store and install, log compaction, membership change. After restarting, every node holds the same
//! catalog — same revision, same objects at the same mod revisions, so nothing was applied twice
//! or skipped — and every acknowledged write is in it. And a node whose fsync fails stops
//! acknowledging, says why and exits; restarted on a working disk, it has every acknowledged write.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use pld_client::Client;
use pld_controller::crash_points::ENV;
use pld_proto::v1::{Kind, ListRequest, RemoveMemberRequest};
use pld_tests::objects::put_service;
use pld_tests::process::ProcessCluster;
use pld_tests::wait_until;

fn pld() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pld"))
}

/// Snapshots every 25 applied entries, so the snapshot points are met often.
const TUNING: &str = "[raft]\nsnapshot_every = 25";
const SIGABRT: i32 = 6;

fn cluster_with_tuning() -> anyhow::Result<ProcessCluster> {
    let mut cluster = ProcessCluster::unstarted(pld(), 3)?;
    for id in cluster.ids() {
        cluster.set_config(id, TUNING)?;
    }
    Ok(cluster)
}

/// Restarts, without the crash point, every node that crashed at it; fails on any other exit.
/// Returns which did.
fn restart_crashed(cluster: &mut ProcessCluster, point: &str) -> anyhow::Result<Vec<u64>> {
    let mut crashed = Vec::new();
    for id in cluster.ids() {
        if let Some(status) = cluster.exited(id) {
            anyhow::ensure!(
                status.signal() == Some(SIGABRT),
                "node {id} exited with {status} instead of crashing at {point}:\n{}",
                cluster.log(id)
            );
            crashed.push(id);
            cluster.set_env(id, ENV, None);
            cluster.spawn(id)?;
        }
    }
    Ok(crashed)
}

/// Every node's catalog as `(revision, key → mod revision)`, read locally.
async fn catalog_of(cluster: &ProcessCluster, id: u64) -> Option<(u64, BTreeMap<String, u64>)> {
    let list = cluster
        .client_of(id)
        .with_deadline(Duration::from_millis(500))
        .list(ListRequest {
            kind: Kind::Service as i32,
            stale: true,
            ..Default::default()
        })
        .await
        .ok()?;
    let objects = list
        .objects
        .iter()
        .filter_map(|o| match &o.object {
            Some(pld_proto::v1::object::Object::Service(s)) => Some((
                s.name.clone(),
                s.meta.as_ref().map_or(0, |m| m.mod_revision),
            )),
            _ => None,
        })
        .collect();
    Some((list.revision, objects))
}

/// Waits until every node holds the same catalog, and checks the acknowledged keys are in it.
async fn converged(
    cluster: &ProcessCluster,
    acknowledged: &[String],
) -> anyhow::Result<BTreeMap<String, u64>> {
    let objects = wait_until(
        Duration::from_secs(60),
        "every node to hold the same catalog",
        || async {
            let mut first = None;
            for id in cluster.ids() {
                let catalog = catalog_of(cluster, id).await?;
                match &first {
                    None => first = Some(catalog),
                    Some(f) if *f == catalog => {}
                    Some(_) => return None,
                }
            }
            first
        },
    )
    .await?
    .1;
    for key in acknowledged {
        anyhow::ensure!(
            objects.contains_key(key),
            "acknowledged {key} is missing after the crashes"
        );
    }
    Ok(objects)
}

/// Arms `point` on every node at a different count, writes through the crashes (restarting
/// whoever crashes), checks that every armed node crashed at its point, and that the nodes
/// converge on a catalog holding every acknowledged write.
async fn crash_everywhere(point: &str, counts: [u64; 3], writes: usize) -> anyhow::Result<()> {
    let mut cluster = cluster_with_tuning()?;
    let armed: BTreeSet<u64> = cluster.ids().into_iter().collect();
    for (id, count) in cluster.ids().into_iter().zip(counts) {
        cluster.set_env(id, ENV, Some(&format!("{point}:{count}")));
        cluster.spawn(id)?;
    }
    let client: Client = cluster.client().with_deadline(Duration::from_secs(30));
    let mut acknowledged = Vec::new();
    let mut crashed = BTreeSet::new();
    for i in 0..writes {
        let key = format!("c-{i}");
        match put_service(&client, &key).await {
            Ok(_) => acknowledged.push(key),
            // The outcome of a write the crash interrupted is unknown; the catalog decides.
            Err(e) => eprintln!("{key}: {e}"),
        }
        crashed.extend(restart_crashed(&mut cluster, point)?);
    }
    // The last armed count may be reached just after the last write (a snapshot, an apply).
    let mut unexpected = None;
    let waited = wait_until(
        Duration::from_secs(30),
        &format!("every armed node to crash at {point}"),
        || {
            match restart_crashed(&mut cluster, point) {
                Ok(ids) => crashed.extend(ids),
                Err(e) => unexpected = Some(e),
            }
            let done = unexpected.is_some() || crashed == armed;
            async move { done.then_some(()) }
        },
    )
    .await;
    if let Some(e) = unexpected {
        return Err(e);
    }
    waited.with_context(|| {
        format!(
            "armed nodes {armed:?}, crashed at {point} {crashed:?} in {writes} writes: the \
             crash point was not exercised everywhere"
        )
    })?;
    eprintln!(
        "{point}: nodes {crashed:?} crashed ({} crashes), {} of {writes} writes acknowledged",
        crashed.len(),
        acknowledged.len()
    );
    converged(&cluster, &acknowledged).await?;
    // And the cluster still takes writes.
    put_service(&client, "after").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_before_persisting_a_ready() -> anyhow::Result<()> {
    crash_everywhere("persist-before", [40, 70, 100], 150).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_with_the_batch_written_but_not_fsynced() -> anyhow::Result<()> {
    crash_everywhere("store-batch-applied", [40, 70, 100], 150).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_persisting_before_sending() -> anyhow::Result<()> {
    crash_everywhere("persist-after", [40, 70, 100], 150).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_while_applying_committed_entries() -> anyhow::Result<()> {
    crash_everywhere("apply-entry", [30, 60, 90], 150).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_while_taking_a_snapshot() -> anyhow::Result<()> {
    crash_everywhere("snapshot-create", [1, 2, 3], 150).await
}

/// The compactor stored the snapshot and stopped before moving the log's start past it and
/// removing the entries it covers: opening must skip and remove them, and read the commit
/// index as at least the snapshot's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_with_the_snapshot_stored_and_the_log_not_yet_compacted() -> anyhow::Result<()> {
    crash_everywhere("snapshot-stored", [1, 2, 3], 150).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_right_after_compacting_the_log() -> anyhow::Result<()> {
    crash_everywhere("snapshot-compacted", [1, 2, 3], 150).await
}

/// A follower that fell behind the leader's compaction gets a snapshot, and crashes at `point`
/// while installing it; restarted, it installs it again and catches up.
async fn crash_installing_a_snapshot(point: &str) -> anyhow::Result<()> {
    let mut cluster = cluster_with_tuning()?;
    for id in cluster.ids() {
        cluster.spawn(id)?;
    }
    let client = cluster.client().with_deadline(Duration::from_secs(30));
    let leader = cluster.wait_leader(Duration::from_secs(20)).await?;
    let behind = cluster.ids().into_iter().find(|&id| id != leader).unwrap();
    let mut acknowledged = Vec::new();
    for i in 0..10 {
        put_service(&client, &format!("before-{i}")).await?;
        acknowledged.push(format!("before-{i}"));
    }
    cluster.kill(behind);
    // Well past two snapshots: the entries it misses are compacted away.
    for i in 0..80 {
        put_service(&client, &format!("while-down-{i}")).await?;
        acknowledged.push(format!("while-down-{i}"));
    }
    cluster.set_env(behind, ENV, Some(point));
    cluster.spawn(behind)?;
    let status = wait_until(
        Duration::from_secs(30),
        &format!("node {behind} to crash at {point}"),
        || {
            let status = cluster.exited(behind);
            async move { status }
        },
    )
    .await?;
    anyhow::ensure!(
        status.signal() == Some(SIGABRT),
        "node {behind} exited with {status}, not at {point}:\n{}",
        cluster.log(behind)
    );
    cluster.set_env(behind, ENV, None);
    cluster.spawn(behind)?;
    converged(&cluster, &acknowledged).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_before_storing_a_leaders_snapshot() -> anyhow::Result<()> {
    crash_installing_a_snapshot("snapshot-install-before").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_storing_a_leaders_snapshot() -> anyhow::Result<()> {
    crash_installing_a_snapshot("snapshot-install-after").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_applying_a_membership_change() -> anyhow::Result<()> {
    let mut cluster = cluster_with_tuning()?;
    for id in cluster.ids() {
        cluster.set_env(id, ENV, Some("conf-change-persisted"));
        cluster.spawn(id)?;
    }
    let client = cluster.client().with_deadline(Duration::from_secs(30));
    cluster.wait_leader(Duration::from_secs(20)).await?;
    let mut acknowledged = Vec::new();
    for i in 0..10 {
        put_service(&client, &format!("before-{i}")).await?;
        acknowledged.push(format!("before-{i}"));
    }
    // Every node crashes applying the removal; whether the caller hears back is a race.
    let removal = client
        .call_mutation(|mut s| async move {
            s.cluster()
                .remove_member(RemoveMemberRequest { id: 3 })
                .await
        })
        .await;
    eprintln!("remove member 3: {:?}", removal.as_ref().map(|_| ()));
    // Nodes 1 and 2 both apply the committed removal, so both must crash (3 may too).
    let mut crashed = BTreeSet::new();
    let mut unexpected = None;
    wait_until(
        Duration::from_secs(30),
        "nodes 1 and 2 to crash applying the removal",
        || {
            match restart_crashed(&mut cluster, "conf-change-persisted") {
                Ok(ids) => crashed.extend(ids),
                Err(e) => unexpected = Some(e),
            }
            let done = unexpected.is_some() || (crashed.contains(&1) && crashed.contains(&2));
            async move { done.then_some(()) }
        },
    )
    .await?;
    if let Some(e) = unexpected {
        return Err(e);
    }
    // The removal is committed (it was persisted by a majority before anyone crashed): the
    // survivors agree on members {1, 2} and take writes.
    let members = wait_until(
        Duration::from_secs(30),
        "nodes 1 and 2 to agree that 3 was removed",
        || async {
            let mut ids = Vec::new();
            for id in [1, 2] {
                let r = cluster
                    .client_of(id)
                    .with_deadline(Duration::from_millis(500))
                    .call(|mut s| async move {
                        s.cluster()
                            .list_members(pld_proto::v1::ListMembersRequest {})
                            .await
                    })
                    .await
                    .ok()?;
                let mut m: Vec<u64> = r.members.iter().map(|m| m.id).collect();
                m.sort_unstable();
                ids.push(m);
            }
            (ids[0] == ids[1] && ids[0] == vec![1, 2]).then_some(ids[0].clone())
        },
    )
    .await?;
    assert_eq!(members, vec![1, 2]);
    let survivors = Client::new(&[cluster.address(1), cluster.address(2)])?
        .with_deadline(Duration::from_secs(30));
    put_service(&survivors, "after-removal").await?;
    acknowledged.push("after-removal".into());
    for key in &acknowledged {
        anyhow::ensure!(
            pld_tests::objects::get_service(&survivors, key, false)
                .await?
                .is_some(),
            "acknowledged {key} is missing"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_fsync_stops_the_node_and_loses_nothing() -> anyhow::Result<()> {
    let mut cluster = ProcessCluster::unstarted(pld(), 1)?;
    // The 40th fsync (and every one after) fails with EIO.
    cluster.set_env(1, ENV, Some("store-flush-error:40"));
    cluster.spawn(1)?;
    let client = cluster.client().with_deadline(Duration::from_secs(5));
    cluster.wait_leader(Duration::from_secs(20)).await?;
    let mut acknowledged = Vec::new();
    let mut refused = None;
    for i in 0..200 {
        let key = format!("f-{i}");
        match put_service(&client, &key).await {
            Ok(_) => acknowledged.push(key),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let refused = refused.context("every write was acknowledged though the disk failed")?;
    eprintln!(
        "{} writes acknowledged, then: {refused}",
        acknowledged.len()
    );
    let status = wait_until(Duration::from_secs(20), "the node to exit", || {
        let status = cluster.exited(1);
        async move { status }
    })
    .await?;
    assert_eq!(status.code(), Some(1), "{}", cluster.log(1));
    let log = cluster.log(1);
    assert!(
        log.contains("fsync failed") && log.contains("fix the disk, then start the node again"),
        "the node says what failed and what to do:\n{log}"
    );

    cluster.set_env(1, ENV, None);
    cluster.spawn(1)?;
    cluster.wait_leader(Duration::from_secs(20)).await?;
    let (_, objects) = wait_until(
        Duration::from_secs(20),
        "the restarted node to answer",
        || catalog_of(&cluster, 1),
    )
    .await?;
    for key in &acknowledged {
        anyhow::ensure!(objects.contains_key(key), "acknowledged {key} was lost");
    }
    // At most the write that was refused may have reached the log before the failed fsync.
    anyhow::ensure!(
        objects.len() <= acknowledged.len() + 1,
        "{} objects for {} acknowledged writes",
        objects.len(),
        acknowledged.len()
    );
    put_service(&client, "after").await?;
    Ok(())
}
