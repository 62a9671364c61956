//! Jepsen-style fault testing of a real controller cluster.
//!
//! Real `pld controller` processes, each in its own network namespace ([`crate::netns`]), take
//! concurrent puts, compare-and-sets, creates, deletes and linearizable reads on a few keys, each
//! sent once to one node, while a nemesis kills and restarts nodes (one, or all at once), freezes
//! and thaws them, partitions the network (halves, an isolated leader, a bridge), and drops packets one way only.
//! Afterwards it heals everything, reads every key back and checks:
//!
//! - the history is linearizable ([`crate::linearizable`]) — which also catches lost
//!   acknowledged writes, stale reads and double-applied compare-and-sets;
//! - every watcher saw every revision exactly once, from the first to the last, all watchers
//!   the same sequence, every acknowledged write at the revision it was acknowledged with,
//!   nothing that no client wrote, and the sequence replays to the final reads;
//! - the run did work: every client had at least [`MIN_DEFINITE_PER_CLIENT`] operations
//!   answered, every fault kind of the scenario was injected, and no read returned a value it
//!   could not parse.
//!
//! A checker that passes everything proves nothing, so [`Scenario::stale_reads`] runs the same
//! workload with reads that skip the leader check, and the run fails unless the checker finds
//! the history not linearizable.
//!
//! The fault schedule and the workload's choices come from one seed, printed at the start and on
//! failure (`PLD_NEMESIS_SEED` replays it; timing still differs from run to run, as in any
//! system test). `PLD_NEMESIS_SECONDS` sets how long faults are injected.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use pld_client::Client;
use pld_proto::v1::{object, Kind, Object};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::linearizable::{self, Input, Op, Output, Value, Verdict};
use crate::netns::{Fabric, Host};
use crate::objects::service;
use crate::process::{Placement, ProcessCluster};
use crate::{wait_until, Setup};

mod faults;
mod membership;
mod watch;
mod worker;

pub use faults::Fault;
use faults::{inject, recover, Schedule};
use membership::{members_agree, Slots};
use watch::{check_watch, spawn_watcher};
use worker::Worker;

/// Operations each client must have had answered (ok, mismatch, not found or a read) in a run,
/// or the run proves too little: a cluster that answered nothing would pass every check. A
/// 30-second run on the 2-core CI machine answers about a thousand per client.
pub const MIN_DEFINITE_PER_CLIENT: usize = 200;

/// What to run.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub nodes: u64,
    /// How long the nemesis injects faults while clients run.
    pub duration: Duration,
    pub clients: usize,
    pub keys: usize,
    pub watchers: usize,
    pub seed: u64,
    /// The fault kinds to inject, each once per round in a shuffled order.
    pub faults: Vec<Fault>,
    /// Reads with `stale = true`: not linearizable by design, so the run must end with the
    /// checker finding the history not linearizable — a check of the checker.
    pub stale_reads: bool,
}

impl Scenario {
    /// A scenario for `nodes` nodes, with the seed and duration from the environment when set.
    ///
    /// # Errors
    /// When `PLD_NEMESIS_SEED` or `PLD_NEMESIS_SECONDS` is not a number.
    pub fn from_env(nodes: u64, default_seconds: u64) -> anyhow::Result<Scenario> {
        let seed = match std::env::var("PLD_NEMESIS_SEED") {
            Ok(s) => s
                .parse()
                .with_context(|| format!("PLD_NEMESIS_SEED={s:?} is not a number"))?,
            Err(_) => rand::random(),
        };
        let seconds = match std::env::var("PLD_NEMESIS_SECONDS") {
            Ok(s) => s
                .parse()
                .with_context(|| format!("PLD_NEMESIS_SECONDS={s:?} is not a number"))?,
            Err(_) => default_seconds,
        };
        Ok(Scenario {
            nodes,
            duration: Duration::from_secs(seconds),
            clients: 6,
            keys: 4,
            watchers: 2,
            seed,
            faults: Fault::for_nodes(nodes),
            stale_reads: false,
        })
    }

    /// The check of the checker: stale reads while one node at a time is cut off from the
    /// others (but not from clients), which then answers from a state the majority has moved
    /// past.
    ///
    /// # Errors
    /// As [`Scenario::from_env`].
    pub fn stale_reads(nodes: u64, default_seconds: u64) -> anyhow::Result<Scenario> {
        Ok(Scenario {
            faults: vec![Fault::IsolateNode, Fault::PartitionHalves],
            stale_reads: true,
            ..Scenario::from_env(nodes, default_seconds)?
        })
    }
}

/// What a run did, for the report.
#[derive(Debug, Default)]
pub struct Report {
    pub faults: BTreeMap<&'static str, usize>,
    /// (operation, outcome) → count.
    pub ops: BTreeMap<(&'static str, &'static str), usize>,
    /// Client → operations with a definite answer.
    pub definite_per_client: BTreeMap<usize, usize>,
    /// Events each watcher delivered and the check went through, revision 1 to the last.
    pub watch_events: usize,
    /// With stale reads: what the checker found.
    pub caught: Option<String>,
    /// The members at the end, which every node listed.
    pub members: Vec<u64>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "faults injected:")?;
        for (fault, n) in &self.faults {
            writeln!(f, "  {fault:<16} {n}")?;
        }
        writeln!(f, "operations:")?;
        for ((op, outcome), n) in &self.ops {
            writeln!(f, "  {op:<8} {outcome:<10} {n}")?;
        }
        let per_client: Vec<String> = self
            .definite_per_client
            .iter()
            .map(|(c, n)| format!("{c}:{n}"))
            .collect();
        writeln!(
            f,
            "answered per client (at least {MIN_DEFINITE_PER_CLIENT} each): {}",
            per_client.join(" ")
        )?;
        writeln!(f, "members at the end: {:?}", self.members)?;
        write!(f, "watch events checked per watcher: {}", self.watch_events)?;
        if let Some(caught) = &self.caught {
            write!(f, "\nthe checker caught the stale reads: {caught}")?;
        }
        Ok(())
    }
}

impl Report {
    /// Fails a run that did too little to prove anything.
    fn check_did_work(&self, scenario: &Scenario) -> anyhow::Result<()> {
        for client in 0..scenario.clients {
            let answered = self.definite_per_client.get(&client).copied().unwrap_or(0);
            anyhow::ensure!(
                answered >= MIN_DEFINITE_PER_CLIENT,
                "client {client} had only {answered} operations answered (at least \
                 {MIN_DEFINITE_PER_CLIENT} needed)\n{self}"
            );
        }
        for fault in &scenario.faults {
            anyhow::ensure!(
                self.faults.get(fault.name()).is_some_and(|n| *n > 0),
                "fault {} was never injected\n{self}",
                fault.name()
            );
        }
        anyhow::ensure!(self.watch_events > 0, "the watchers saw nothing\n{self}");
        Ok(())
    }
}

/// Runs `scenario` against `binary`; a skip when network namespaces are not available here
/// (see [`Fabric::create`]). Blocks the calling thread: the clients run on a thread of their own
/// inside the clients' namespace.
///
/// # Errors
/// A description of the anomaly (with the seed), or of what could not be set up.
pub fn run(binary: &Path, scenario: Scenario) -> anyhow::Result<Setup<Report>> {
    eprintln!(
        "nemesis: {} nodes, {:?}, seed {} (replay with PLD_NEMESIS_SEED={})",
        scenario.nodes, scenario.duration, scenario.seed, scenario.seed
    );
    anyhow::ensure!(!scenario.faults.is_empty(), "a scenario needs a fault kind");
    let fabric = match Fabric::create(scenario.nodes)? {
        Setup::Ready(fabric) => fabric,
        Setup::Skip(why) => return Ok(Setup::Skip(why)),
    };
    let fabric = Arc::new(fabric);
    let binary = binary.to_path_buf();
    let seed = scenario.seed;
    let worker = {
        let fabric = fabric.clone();
        std::thread::Builder::new()
            .name("nemesis".into())
            .stack_size(64 << 20)
            .spawn(move || -> anyhow::Result<Report> {
                fabric.enter_clients()?;
                // Built after entering: the runtime's threads inherit the namespace.
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()?;
                runtime.block_on(run_inside(&binary, &fabric, scenario))
            })?
    };
    let result = worker
        .join()
        .map_err(|_| anyhow::anyhow!("the nemesis thread panicked"))?;
    drop(fabric);
    result
        .map(Setup::Ready)
        .with_context(|| format!("nemesis run with PLD_NEMESIS_SEED={seed}"))
}

const PORT: u16 = 7400;
/// How long a client waits for one answer before counting the outcome as unknown.
const OP_TIMEOUT: Duration = Duration::from_secs(2);

async fn run_inside(binary: &Path, fabric: &Fabric, scenario: Scenario) -> anyhow::Result<Report> {
    let started = Instant::now();
    let placements = (1..=scenario.nodes)
        .map(|id| Placement {
            id,
            address: format!("{}:{PORT}", fabric.address(Host::Node(id))),
            prefix: fabric.exec_prefix(Host::Node(id)),
        })
        .collect();
    let mut cluster = ProcessCluster::start_placed(binary, placements)?;
    let outcome = exercise(&mut cluster, fabric, &scenario, started).await;
    if outcome.is_err() {
        for id in cluster.ids() {
            let log = cluster.log(id);
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            eprintln!("--- node {id}, last lines ---");
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
    outcome
}

/// A client's or the checker's shared record.
#[derive(Default)]
struct History {
    ops: Vec<Op>,
    /// Acknowledged changes: (key, value or None for a delete, revision).
    acknowledged: Vec<(String, Option<Value>, u64)>,
    /// Every value any client tried to write, with its key.
    attempted: HashMap<Value, String>,
    /// What no correct cluster answers and the linearizability check cannot see (a read whose
    /// value does not parse).
    anomalies: Vec<String>,
}

async fn exercise(
    cluster: &mut ProcessCluster,
    fabric: &Fabric,
    scenario: &Scenario,
    started: Instant,
) -> anyhow::Result<Report> {
    let mut report = Report::default();
    cluster.wait_leader(Duration::from_secs(30)).await?;
    let addresses: Vec<String> = cluster
        .ids()
        .iter()
        .map(|&id| cluster.address(id))
        .collect();
    let keys: Vec<String> = (0..scenario.keys).map(|k| format!("nem-{k}")).collect();

    let watchers: Vec<_> = (0..scenario.watchers)
        .map(|_| spawn_watcher(&addresses))
        .collect::<anyhow::Result<_>>()?;

    let history = Arc::new(Mutex::new(History::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for c in 0..scenario.clients {
        let nodes: Vec<Client> = addresses
            .iter()
            .map(|a| Client::new(std::slice::from_ref(a)))
            .collect::<Result<_, _>>()?;
        let worker = Worker {
            id: c,
            nodes,
            keys: keys.clone(),
            rng: StdRng::seed_from_u64(scenario.seed ^ (c as u64 + 1).wrapping_mul(0x9E37_79B9)),
            started,
            next_value: (c as u64 + 1) << 32,
            seen: HashMap::new(),
            history: history.clone(),
            stale_reads: scenario.stale_reads,
        };
        let stop = stop.clone();
        workers.push(tokio::spawn(worker.run(stop)));
    }

    let mut rng = StdRng::seed_from_u64(scenario.seed);
    let mut schedule = Schedule::new(scenario.faults.clone());
    let mut slots = Slots::new(scenario.nodes);
    let end = Instant::now() + scenario.duration;
    // The whole duration, and at least one full round, so every kind is met even when the
    // seeded pauses run long.
    while Instant::now() < end || !schedule.met_every_kind() {
        let fault = schedule.next(&mut rng);
        inject(cluster, fabric, &mut slots, &mut rng, fault).await?;
        eprintln!(
            "nemesis: {:>6.1}s {}",
            started.elapsed().as_secs_f64(),
            fault.name()
        );
        *report.faults.entry(fault.name()).or_default() += 1;
        // Not a wait for a condition: how long the fault lasts, and the calm after it, are part
        // of the seeded schedule.
        tokio::time::sleep(Duration::from_millis(rng.gen_range(500..3000))).await;
        recover(cluster, fabric)?;
        tokio::time::sleep(Duration::from_millis(rng.gen_range(500..1500))).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await?;
    }
    eprintln!("nemesis: faults over, healing and reading back");

    // Everything healed and running: read every key back, and write a sentinel whose revision
    // tells when the watchers have caught up.
    recover(cluster, fabric)?;
    cluster.wait_leader(Duration::from_secs(30)).await?;
    // Every replacement completed: the nodes agree on the members the nemesis made.
    members_agree(cluster, &slots).await?;
    report.members = slots.members();
    let client = Client::new(&addresses)?.with_deadline(Duration::from_secs(30));
    let mut final_state = BTreeMap::new();
    for key in &keys {
        let call = nanos(started);
        let value = client
            .get(Kind::Service, key)
            .await
            .with_context(|| format!("final read of {key}"))?
            .map(|o| value_of(&o))
            .transpose()?;
        history.lock().unwrap().ops.push(Op {
            client: usize::MAX,
            key: key.clone(),
            input: Input::Read,
            output: Output::Read(value),
            call,
            ret: Some(nanos(started)),
        });
        final_state.insert(key.clone(), value);
    }
    let mut sentinel = service("nem-end");
    sentinel.description = "end".into();
    let end_revision = client
        .put(
            Object {
                object: Some(object::Object::Service(sentinel)),
            },
            None,
        )
        .await
        .context("the sentinel write")?
        .revision;

    eprintln!(
        "nemesis: checking {} operations",
        history.lock().unwrap().ops.len()
    );
    let history = std::mem::take(&mut *history.lock().unwrap());
    anyhow::ensure!(
        history.anomalies.is_empty(),
        "{} anomalies, first: {}",
        history.anomalies.len(),
        history.anomalies.join("\n")
    );
    for op in &history.ops {
        *report
            .ops
            .entry((op_name(op.input), outcome_name(op.output)))
            .or_default() += 1;
        if op.output != Output::Unknown && op.client != usize::MAX {
            *report.definite_per_client.entry(op.client).or_default() += 1;
        }
    }
    if let Some(path) = std::env::var_os("PLD_NEMESIS_HISTORY") {
        let lines: Vec<String> = history
            .ops
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<_, _>>()?;
        std::fs::write(&path, lines.join("\n"))
            .with_context(|| format!("writing the history to {}", Path::new(&path).display()))?;
    }
    let checking = Instant::now();
    match (linearizable::check(&history.ops), scenario.stale_reads) {
        (Ok(()), false) => eprintln!(
            "nemesis: linearizable (checked in {:?})",
            checking.elapsed()
        ),
        (Err(v @ Verdict::NotLinearizable { .. }), true) => {
            let first = v.to_string();
            let first = first.lines().next().unwrap_or_default().to_string();
            eprintln!("nemesis: the checker caught the stale reads: {first}");
            report.caught = Some(first);
        }
        (Ok(()), true) => anyhow::bail!(
            "the checker found {} operations with stale reads linearizable: it would miss a \
             real violation",
            history.ops.len()
        ),
        (Err(v), _) => anyhow::bail!("{v}"),
    }

    let mut sequences = Vec::new();
    for (i, events) in watchers.iter().enumerate() {
        wait_until(
            Duration::from_secs(60),
            &format!("watcher {i} to reach the sentinel at revision {end_revision}"),
            || async {
                let events = events.lock().unwrap();
                events
                    .last()
                    .is_some_and(|e| e.revision >= end_revision)
                    .then_some(())
            },
        )
        .await?;
        let events = events.lock().unwrap().clone();
        report.watch_events = check_watch(i, &events, end_revision, &history, &final_state)?;
        sequences.push(events);
    }
    for (i, s) in sequences.iter().enumerate().skip(1) {
        anyhow::ensure!(
            s == &sequences[0],
            "watcher {i} saw a different sequence from watcher 0 ({} vs {} events)",
            s.len(),
            sequences[0].len()
        );
    }
    report.check_did_work(scenario)?;
    Ok(report)
}

fn nanos(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn value_of(object: &Object) -> anyhow::Result<Value> {
    let Some(object::Object::Service(s)) = &object.object else {
        anyhow::bail!("not a service: {object:?}");
    };
    s.description
        .strip_prefix('v')
        .and_then(|v| v.parse().ok())
        .with_context(|| {
            format!(
                "service {} holds no test value: {:?}",
                s.name, s.description
            )
        })
}

fn mod_revision(object: &Object) -> u64 {
    match &object.object {
        Some(object::Object::Service(s)) => s.meta.as_ref().map_or(0, |m| m.mod_revision),
        _ => 0,
    }
}

fn op_name(input: Input) -> &'static str {
    match input {
        Input::Read => "read",
        Input::Write(_) => "put",
        Input::Cas { .. } => "cas",
        Input::Create(_) => "create",
        Input::Delete => "delete",
    }
}

fn outcome_name(output: Output) -> &'static str {
    match output {
        Output::Read(_) | Output::Ok => "ok",
        Output::Mismatch => "mismatch",
        Output::NotFound => "not-found",
        Output::Unknown => "unknown",
    }
}
