//! Raft messages no honest peer sends, sent to running nodes over their raft port as a peer
//! would: each is refused and counted, and no node stops (`controller/src/node/guard.rs`).
//! Without TLS anyone reaching the port can do this; with it, only controller certificates.

use std::time::Duration;

use futures::FutureExt as _;
use pld_proto::v1::raft_transport_client::RaftTransportClient;
use pld_proto::v1::RaftBatch;
use pld_tests::cluster::{fast_tuning, TestCluster};
use pld_tests::objects::{get_service, put_service};
use pld_tests::{scrape, wait_until};
use prost::Message as _;
use protobuf::{Message as _, ProtobufEnum as _};
use raft::eraftpb::{
    ConfChange, ConfChangeType, ConfState, Entry, EntryType, Message, MessageType,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// Sends `messages` to node `to` as one batch from `from`; the batch's answer does not matter.
async fn send(
    cluster: &TestCluster,
    from: u64,
    to: u64,
    messages: Vec<Message>,
) -> anyhow::Result<()> {
    let addr = cluster
        .controller(to)
        .ok_or_else(|| anyhow::anyhow!("node {to} is not running"))?
        .local_addr();
    let mut bytes = Vec::with_capacity(messages.len());
    for m in &messages {
        bytes.push(m.write_to_bytes()?);
    }
    let _ = RaftTransportClient::connect(format!("http://{addr}"))
        .await?
        .send(RaftBatch {
            from,
            to,
            messages: bytes,
            from_address: String::new(),
        })
        .await;
    Ok(())
}

/// Refusals node `id` counted, by reason, and their sum.
async fn refusals(cluster: &TestCluster, id: u64) -> anyhow::Result<(Vec<(String, f64)>, f64)> {
    let addr = cluster
        .controller(id)
        .ok_or_else(|| anyhow::anyhow!("node {id} is not running"))?
        .local_addr();
    let text = scrape(addr).await?;
    let mut by_reason = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("pld_raft_messages_refused_total{reason=\"") {
            let (reason, value) = rest.split_once("\"} ").unwrap_or((rest, "0"));
            by_reason.push((reason.to_string(), value.trim().parse().unwrap_or(0.0)));
        }
    }
    let total = by_reason.iter().map(|(_, v)| v).sum();
    Ok((by_reason, total))
}

/// No node of `cluster` has stopped.
fn none_stopped(cluster: &TestCluster) {
    for id in cluster.ids() {
        let controller = cluster.controller(id).expect("running");
        if let Some(why) = controller.failed().now_or_never() {
            panic!("node {id} stopped: {why}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_heartbeat_is_refused_and_counted_and_the_node_serves_on() -> anyhow::Result<()> {
    let cluster = TestCluster::start(3, fast_tuning()).await?;
    let leader = cluster.wait_leader(&[1, 2, 3]).await?;
    let victim = [1, 2, 3].into_iter().find(|&id| id != leader).unwrap();
    let peer = [1, 2, 3]
        .into_iter()
        .find(|&id| id != leader && id != victim)
        .unwrap();
    put_service(&cluster.client(), "before").await?;

    // A "heartbeat" from a peer, in a later term, committing far past the victim's log: raft-rs
    // panics on it (`to_commit … is out of range`), which used to stop the node.
    let mut forged = Message::default();
    forged.set_msg_type(MessageType::MsgHeartbeat);
    forged.from = peer;
    forged.to = victim;
    forged.term = 1_000;
    forged.commit = 1_000_000;
    send(&cluster, peer, victim, vec![forged]).await?;

    wait_until(
        Duration::from_secs(10),
        "the refusal to be counted",
        || async {
            let (by_reason, _) = refusals(&cluster, victim).await.ok()?;
            by_reason
                .iter()
                .any(|(r, v)| r == "commit_beyond_log" && *v == 1.0)
                .then_some(())
        },
    )
    .await?;
    // The victim itself takes a write and answers a linearizable read with it.
    let through_victim = cluster.client_of(victim);
    put_service(&through_victim, "after").await?;
    assert!(get_service(&through_victim, "after", true).await?.is_some());
    assert!(get_service(&through_victim, "before", true)
        .await?
        .is_some());
    none_stopped(&cluster);
    Ok(())
}

/// A term, index or commit for a forged message: mostly near the node's own (where the
/// interesting checks are), sometimes anything.
fn near(rng: &mut StdRng, around: u64) -> u64 {
    match rng.gen_range(0..10) {
        0 => 0,
        1 => u64::MAX - rng.gen_range(0..3),
        2 => rng.gen(),
        3 => rng.gen_range(0..1 << 20),
        _ => around.saturating_add(rng.gen_range(0..5)).saturating_sub(2),
    }
}

fn forged_entry(rng: &mut StdRng, index: u64, term: u64) -> Entry {
    let mut e = Entry {
        index,
        term,
        ..Default::default()
    };
    match rng.gen_range(0..6) {
        0 => {
            e.set_entry_type(EntryType::EntryConfChange);
            if rng.gen_bool(0.5) {
                let mut cc = ConfChange::default();
                cc.set_change_type(
                    *[
                        ConfChangeType::AddNode,
                        ConfChangeType::RemoveNode,
                        ConfChangeType::AddLearnerNode,
                    ]
                    .choose(rng)
                    .expect("non-empty"),
                );
                cc.node_id = rng.gen_range(0..6);
                e.data = cc.write_to_bytes().unwrap_or_default().into();
            } else {
                e.data = (0..rng.gen_range(0..16))
                    .map(|_| rng.gen())
                    .collect::<Vec<u8>>()
                    .into();
            }
        }
        1 => e.set_entry_type(EntryType::EntryConfChangeV2),
        2 | 3 => {
            // A pld command batch with no command in it: gets past the checks, and is applied
            // (as nothing) if it ever commits.
            e.data = pld_core::command::Envelope {
                proposer: rng.gen_range(0..5),
                nonce: rng.gen(),
                ..Default::default()
            }
            .encode_to_vec()
            .into();
        }
        _ => {
            // Not a pld command.
            e.data = (0..rng.gen_range(0..32))
                .map(|_| rng.gen())
                .collect::<Vec<u8>>()
                .into();
        }
    }
    e
}

/// One message of any type, with fields that are sometimes right and often not.
fn forged_message(rng: &mut StdRng, to: u64, term: u64, last_index: u64) -> Message {
    let mut m = Message::default();
    let kind = MessageType::from_i32(rng.gen_range(0..19)).unwrap_or(MessageType::MsgHeartbeat);
    m.set_msg_type(kind);
    m.to = to;
    m.from = *[0, 1, 2, 3, 7].choose(rng).expect("non-empty");
    m.term = near(rng, term);
    m.log_term = near(rng, term);
    m.index = near(rng, last_index);
    m.commit = near(rng, last_index);
    m.commit_term = near(rng, term);
    m.reject = rng.gen_bool(0.3);
    m.reject_hint = near(rng, last_index);
    m.request_snapshot = if rng.gen_bool(0.1) {
        near(rng, last_index)
    } else {
        0
    };
    if rng.gen_bool(0.2) {
        m.context = (0..rng.gen_range(0..8))
            .map(|_| rng.gen())
            .collect::<Vec<u8>>()
            .into();
    }
    let entries = rng.gen_range(0..4);
    let contiguous = rng.gen_bool(0.7);
    for i in 0..entries {
        let index = if contiguous {
            m.index.wrapping_add(i + 1)
        } else {
            near(rng, last_index)
        };
        let entry_term = if rng.gen_bool(0.8) {
            m.term
        } else {
            near(rng, term)
        };
        m.entries.push(forged_entry(rng, index, entry_term));
    }
    if kind == MessageType::MsgSnapshot || rng.gen_bool(0.05) {
        let snap = m.mut_snapshot();
        let meta = snap.mut_metadata();
        meta.index = near(rng, last_index);
        meta.term = near(rng, term);
        let mut cs = ConfState::default();
        for _ in 0..rng.gen_range(0..4) {
            cs.voters.push(rng.gen_range(0..5));
        }
        if rng.gen_bool(0.2) {
            cs.learners.push(rng.gen_range(0..5));
        }
        if rng.gen_bool(0.1) {
            cs.voters_outgoing.push(rng.gen_range(0..5));
        }
        meta.set_conf_state(cs);
        snap.data = (0..rng.gen_range(0..64))
            .map(|_| rng.gen())
            .collect::<Vec<u8>>()
            .into();
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_forged_raft_messages_stop_no_node() -> anyhow::Result<()> {
    let seed: u64 = match std::env::var("PLD_FORGED_RAFT_SEED") {
        Ok(s) => s.parse()?,
        Err(_) => rand::random(),
    };
    let rounds: usize = match std::env::var("PLD_FORGED_RAFT_ROUNDS") {
        Ok(s) => s.parse()?,
        Err(_) => 40,
    };
    println!("forged raft messages: seed {seed} (PLD_FORGED_RAFT_SEED={seed} replays it)");
    let mut rng = StdRng::seed_from_u64(seed);
    let cluster = TestCluster::start(3, fast_tuning()).await?;
    let leader = cluster.wait_leader(&[1, 2, 3]).await?;
    let client = cluster.client_of(leader);
    for i in 0..5 {
        put_service(&client, &format!("before-{i}")).await?;
    }

    let mut sent = 0usize;
    for round in 0..rounds {
        // Aim at each node in turn, around where its log and term are now.
        let to = (round % 3) as u64 + 1;
        let info = cluster.controller(to).expect("running").node().info();
        let batch: Vec<Message> = (0..50)
            .map(|_| forged_message(&mut rng, to, info.term, info.last_index))
            .collect();
        let from = batch.first().map_or(1, |m| m.from);
        // A batch is all from one sender (the transport refuses mixed ones whole).
        let batch = batch
            .into_iter()
            .map(|mut m| {
                m.from = from;
                m
            })
            .collect::<Vec<_>>();
        sent += batch.len();
        send(&cluster, from, to, batch).await?;
        none_stopped(&cluster);
    }

    let mut refused_total = 0.0;
    for id in cluster.ids() {
        let (by_reason, total) = refusals(&cluster, id).await?;
        let shown: Vec<String> = by_reason
            .iter()
            .filter(|(_, v)| *v > 0.0)
            .map(|(r, v)| format!("{r} {v}"))
            .collect();
        println!("node {id} refused {total}: {}", shown.join(", "));
        refused_total += total;
    }
    println!("sent {sent} forged messages, {refused_total} refused");
    assert!(
        refused_total >= sent as f64 / 4.0,
        "only {refused_total} of {sent} forged messages were refused (seed {seed})"
    );

    // Every node still runs its raft loop and answers. (What the cluster then holds is not
    // checked: a well-formed forgery is indistinguishable from the truth, which is why raft
    // needs TLS between members. Without it, as here, a forged append that fits the log can
    // put entries no client wrote on a follower.)
    none_stopped(&cluster);
    for id in cluster.ids() {
        let controller = cluster.controller(id).expect("running");
        let before = controller.node().info().published_at;
        wait_until(Duration::from_secs(10), "the raft loop to turn", || async {
            (controller.node().info().published_at > before).then_some(())
        })
        .await
        .map_err(|e| anyhow::anyhow!("node {id}: {e} (seed {seed})"))?;
        let (status, _) = pld_tests::http_get(controller.local_addr(), "/healthz").await?;
        assert_eq!(status, 200, "node {id} is not live (seed {seed})");
    }
    Ok(())
}
