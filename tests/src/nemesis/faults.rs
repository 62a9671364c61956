//! The faults the nemesis injects and how each is undone.

use anyhow::Context;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

use super::membership::{replace_member, Slots};
use crate::netns::Fabric;
use crate::process::ProcessCluster;

/// The faults the nemesis injects, one at a time, each undone before the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL one node (the leader half the time); restarted on its data dir when undone.
    Kill,
    /// SIGKILL every node at once: only what reached a disk survives.
    KillAll,
    /// SIGSTOP one node: it holds its connections and answers nothing.
    Pause,
    /// A random minority cut off from the majority.
    PartitionHalves,
    /// One node (the leader half the time) cut off from the other nodes (not from clients).
    IsolateNode,
    /// Five nodes or more: two sides that only one node in the middle can reach.
    Bridge,
    /// One node hears the others but cannot answer them.
    OneWay,
    /// One member (the leader half the time) removed and a fresh node joined in its place.
    ReplaceMember,
}

impl Fault {
    const ALL: [Fault; 8] = [
        Fault::Kill,
        Fault::KillAll,
        Fault::Pause,
        Fault::PartitionHalves,
        Fault::IsolateNode,
        Fault::Bridge,
        Fault::OneWay,
        Fault::ReplaceMember,
    ];

    /// Every kind a cluster of `nodes` can meet (a bridge needs five).
    pub fn for_nodes(nodes: u64) -> Vec<Fault> {
        Fault::ALL
            .into_iter()
            .filter(|f| *f != Fault::Bridge || nodes >= 5)
            .collect()
    }

    /// The name the report counts it under.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::KillAll => "kill-all",
            Fault::Pause => "pause",
            Fault::PartitionHalves => "partition-halves",
            Fault::IsolateNode => "isolate-node",
            Fault::Bridge => "bridge",
            Fault::OneWay => "one-way",
            Fault::ReplaceMember => "replace-member",
        }
    }
}

/// Every fault kind once per round, in a shuffled order, so even a short run meets them all.
pub(super) struct Schedule {
    kinds: Vec<Fault>,
    round: Vec<Fault>,
    rounds_started: usize,
}

impl Schedule {
    /// A schedule of `kinds`, which must not be empty.
    pub fn new(kinds: Vec<Fault>) -> Schedule {
        Schedule {
            kinds,
            round: Vec::new(),
            rounds_started: 0,
        }
    }

    pub fn next(&mut self, rng: &mut StdRng) -> Fault {
        if self.round.is_empty() {
            self.round = self.kinds.clone();
            self.round.shuffle(rng);
            self.rounds_started += 1;
        }
        self.round.pop().unwrap_or(Fault::Kill)
    }

    /// Whether every kind has been handed out at least once.
    pub fn met_every_kind(&self) -> bool {
        self.rounds_started > 1 || (self.rounds_started == 1 && self.round.is_empty())
    }
}

/// Injects `fault`.
pub(super) async fn inject(
    cluster: &mut ProcessCluster,
    fabric: &Fabric,
    slots: &mut Slots,
    rng: &mut StdRng,
    fault: Fault,
) -> anyhow::Result<()> {
    let ids = cluster.ids();
    let n = ids.len();
    let leader = current_leader(cluster).await;
    let victim = match leader {
        Some(l) if rng.gen_bool(0.5) => l,
        _ => *ids.choose(rng).context("no nodes")?,
    };
    let nodes = |v: &[u64]| v.iter().map(|&id| slots.host(id)).collect::<Vec<_>>();
    let others: Vec<u64> = ids.iter().copied().filter(|&id| id != victim).collect();
    match fault {
        Fault::Kill => cluster.kill(victim),
        Fault::KillAll => {
            for id in &ids {
                cluster.kill(*id);
            }
        }
        Fault::Pause => cluster.pause(victim),
        Fault::PartitionHalves => {
            let mut shuffled = ids.clone();
            shuffled.shuffle(rng);
            let (minority, majority) = shuffled.split_at(n / 2);
            fabric.partition(&nodes(minority), &nodes(majority))?;
        }
        Fault::IsolateNode => fabric.partition(&nodes(&[victim]), &nodes(&others))?,
        Fault::Bridge => {
            let mut shuffled = ids.clone();
            shuffled.shuffle(rng);
            let half = (n - 1) / 2;
            fabric.partition(&nodes(&shuffled[1..=half]), &nodes(&shuffled[half + 1..]))?;
        }
        Fault::OneWay => {
            for other in &others {
                fabric.drop_one_way(slots.host(victim), slots.host(*other))?;
            }
        }
        Fault::ReplaceMember => {
            let newcomer = replace_member(cluster, fabric, slots, victim).await?;
            eprintln!("nemesis: member {victim} removed, {newcomer} joining in its place");
        }
    }
    Ok(())
}

/// Undoes every fault: heals the network, thaws frozen nodes and restarts killed ones on their
/// data dirs.
pub(super) fn recover(cluster: &mut ProcessCluster, fabric: &Fabric) -> anyhow::Result<()> {
    fabric.heal()?;
    for id in cluster.ids() {
        if cluster.running(id) {
            cluster.resume(id);
        } else {
            cluster.spawn(id)?;
        }
    }
    Ok(())
}

async fn current_leader(cluster: &ProcessCluster) -> Option<u64> {
    for id in cluster.ids() {
        if let Some(s) = cluster.node_status(id).await {
            if s.leader_id != 0 {
                return Some(s.leader_id);
            }
        }
    }
    None
}
