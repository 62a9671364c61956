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
//! - every watcher saw every change once, in revision order, all watchers the same sequence,
//!   every acknowledged write at the revision it was acknowledged with, nothing that no client
//!   wrote, and the sequence replays to the final reads.
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
use futures::StreamExt;
use pld_client::Client;
use pld_proto::v1::{
    object, DeleteRequest, Event, EventType, GetRequest, Kind, Object, PutRequest, WatchRequest,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tonic::Code;

use crate::linearizable::{self, Input, Op, Output, Value};
use crate::netns::{Fabric, Host};
use crate::objects::service;
use crate::process::{Placement, ProcessCluster};
use crate::wait_until;

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
    /// Reads with `stale = true`: not linearizable by design, so a run with it should be
    /// caught by the checker — a way to check the checker (`PLD_NEMESIS_STALE_READS=1`).
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
            stale_reads: std::env::var_os("PLD_NEMESIS_STALE_READS").is_some(),
        })
    }
}

/// What a run did, for the report.
#[derive(Debug, Default)]
pub struct Report {
    pub faults: BTreeMap<&'static str, usize>,
    /// (operation, outcome) → count.
    pub ops: BTreeMap<(&'static str, &'static str), usize>,
    pub watch_events: usize,
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
        write!(f, "watch events per watcher: {}", self.watch_events)
    }
}

/// Runs `scenario` against `binary`; `Ok(None)` when network namespaces are not available here
/// (see [`Fabric::create`]). Blocks the calling thread: the clients run on a thread of their own
/// inside the clients' namespace.
///
/// # Errors
/// A description of the anomaly (with the seed), or of what could not be set up.
pub fn run(binary: &Path, scenario: Scenario) -> anyhow::Result<Option<Report>> {
    eprintln!(
        "nemesis: {} nodes, {:?}, seed {} (replay with PLD_NEMESIS_SEED={})",
        scenario.nodes, scenario.duration, scenario.seed, scenario.seed
    );
    let Some(fabric) = Fabric::create(scenario.nodes)? else {
        return Ok(None);
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
        .map(Some)
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
    let mut schedule = Schedule {
        round: Vec::new(),
        nodes: addresses.len(),
    };
    let end = Instant::now() + scenario.duration;
    while Instant::now() < end {
        let fault = schedule.next(&mut rng);
        inject(cluster, fabric, &mut rng, fault).await?;
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
    for op in &history.ops {
        *report
            .ops
            .entry((op_name(op.input), outcome_name(op.output)))
            .or_default() += 1;
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
    linearizable::check(&history.ops).map_err(|v| anyhow::anyhow!("{v}"))?;
    eprintln!(
        "nemesis: linearizable (checked in {:?})",
        checking.elapsed()
    );

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
        check_watch(i, &events, &history, &final_state)?;
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
    report.watch_events = sequences.first().map_or(0, Vec::len);
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

/// A watcher through the client library (which resumes on another node when one fails), from
/// the first revision, of the test's keys.
fn spawn_watcher(addresses: &[String]) -> anyhow::Result<Arc<Mutex<Vec<Event>>>> {
    let client = Client::new(addresses)?.with_deadline(Duration::from_secs(120));
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    tokio::spawn(async move {
        let mut stream = Box::pin(client.watch(WatchRequest {
            start_revision: 1,
            kinds: vec![Kind::Service as i32],
            prefix: "nem-".into(),
        }));
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => sink.lock().unwrap().push(event),
                Err(e) => {
                    eprintln!("watcher ended: {e}");
                    return;
                }
            }
        }
    });
    Ok(events)
}

fn check_watch(
    i: usize,
    events: &[Event],
    history: &History,
    final_state: &BTreeMap<String, Option<Value>>,
) -> anyhow::Result<()> {
    for pair in events.windows(2) {
        anyhow::ensure!(
            pair[0].revision < pair[1].revision,
            "watcher {i}: revision {} came after {} (a duplicate or out of order)",
            pair[1].revision,
            pair[0].revision
        );
    }
    let mut by_revision = HashMap::new();
    let mut state: BTreeMap<String, Option<Value>> = BTreeMap::new();
    let mut seen_values = HashMap::new();
    for e in events.iter().filter(|e| e.key != "nem-end") {
        let value = match EventType::try_from(e.r#type) {
            Ok(EventType::Put) => {
                let v = value_of(e.object.as_ref().context("put event without object")?)?;
                anyhow::ensure!(
                    history.attempted.get(&v) == Some(&e.key),
                    "watcher {i}: revision {} put {v} on {}, which no client wrote there",
                    e.revision,
                    e.key
                );
                if let Some(r) = seen_values.insert(v, e.revision) {
                    anyhow::bail!(
                        "watcher {i}: value {v} was put twice, at revisions {r} and {}",
                        e.revision
                    );
                }
                Some(v)
            }
            Ok(EventType::Delete) => None,
            _ => anyhow::bail!("watcher {i}: event of unknown type {}", e.r#type),
        };
        by_revision.insert(e.revision, (e.key.clone(), value));
        state.insert(e.key.clone(), value);
    }
    for (key, value, revision) in &history.acknowledged {
        anyhow::ensure!(
            by_revision.get(revision) == Some(&(key.clone(), *value)),
            "watcher {i}: the acknowledged {} of {key} at revision {revision} is missing or \
             different in the watch (saw {:?})",
            value.map_or("delete".to_string(), |v| format!("put of {v}")),
            by_revision.get(revision)
        );
    }
    for (key, value) in final_state {
        let replayed = state.get(key).copied().flatten();
        anyhow::ensure!(
            replayed == *value,
            "watcher {i}: replaying the watch gives {key} = {replayed:?}, a read gives {value:?}"
        );
    }
    Ok(())
}

struct Worker {
    id: usize,
    nodes: Vec<Client>,
    keys: Vec<String>,
    rng: StdRng,
    started: Instant,
    next_value: Value,
    /// The last value and mod revision this client read per key, for its compare-and-sets.
    seen: HashMap<String, (Value, u64)>,
    history: Arc<Mutex<History>>,
    stale_reads: bool,
}

/// How one request ended, as the checker needs it.
enum Answer {
    Output(Output),
    /// Certainly not executed (refused before it was proposed): left out of the history.
    NotExecuted,
}

impl Worker {
    async fn run(mut self, stop: Arc<AtomicBool>) {
        while !stop.load(Ordering::Relaxed) {
            self.one().await;
        }
    }

    fn value(&mut self) -> Value {
        self.next_value += 1;
        self.next_value
    }

    async fn one(&mut self) {
        let key = self.keys.choose(&mut self.rng).cloned().unwrap_or_default();
        let node = self.rng.gen_range(0..self.nodes.len());
        let mut stubs = self.nodes[node].stubs();
        let roll = self.rng.gen_range(0..100);
        let input = match roll {
            0..40 => Input::Read,
            40..60 => Input::Write(self.value()),
            60..80 => match self.seen.get(&key) {
                Some(&(expect, _)) => {
                    let new = self.value();
                    Input::Cas { expect, new }
                }
                None => Input::Read,
            },
            80..90 => Input::Create(self.value()),
            _ => Input::Delete,
        };
        let call = nanos(self.started);
        let answer = match input {
            Input::Read => {
                let req = GetRequest {
                    kind: Kind::Service as i32,
                    key: key.clone(),
                    stale: self.stale_reads,
                };
                match tokio::time::timeout(OP_TIMEOUT, stubs.catalog().get(req)).await {
                    Ok(Ok(r)) => {
                        let object = r.into_inner().object;
                        match object.as_ref().map(|o| (value_of(o), mod_revision(o))) {
                            Some((Ok(v), rev)) => {
                                self.seen.insert(key.clone(), (v, rev));
                                Answer::Output(Output::Read(Some(v)))
                            }
                            Some((Err(_), _)) => Answer::NotExecuted,
                            None => Answer::Output(Output::Read(None)),
                        }
                    }
                    Ok(Err(s)) if s.code() == Code::NotFound => {
                        self.seen.remove(&key);
                        Answer::Output(Output::Read(None))
                    }
                    // A failed read changed nothing.
                    _ => Answer::NotExecuted,
                }
            }
            Input::Write(v) | Input::Cas { new: v, .. } | Input::Create(v) => {
                self.history
                    .lock()
                    .unwrap()
                    .attempted
                    .insert(v, key.clone());
                let expected_mod_revision = match input {
                    Input::Cas { expect, .. } => self.seen.get(&key).map(|&(e, rev)| {
                        debug_assert_eq!(e, expect);
                        rev
                    }),
                    Input::Create(_) => Some(0),
                    _ => None,
                };
                let mut s = service(&key);
                s.description = format!("v{v}");
                let req = PutRequest {
                    object: Some(Object {
                        object: Some(object::Object::Service(s)),
                    }),
                    expected_mod_revision,
                };
                match tokio::time::timeout(OP_TIMEOUT, stubs.catalog().put(req)).await {
                    Ok(Ok(r)) => {
                        let revision = r.into_inner().revision;
                        self.history.lock().unwrap().acknowledged.push((
                            key.clone(),
                            Some(v),
                            revision,
                        ));
                        Answer::Output(Output::Ok)
                    }
                    Ok(Err(s)) if s.code() == Code::FailedPrecondition => {
                        Answer::Output(Output::Mismatch)
                    }
                    Ok(Err(s)) => classify(&s),
                    Err(_) => Answer::Output(Output::Unknown),
                }
            }
            Input::Delete => {
                let req = DeleteRequest {
                    kind: Kind::Service as i32,
                    key: key.clone(),
                    expected_mod_revision: None,
                };
                match tokio::time::timeout(OP_TIMEOUT, stubs.catalog().delete(req)).await {
                    Ok(Ok(r)) => {
                        let revision = r.into_inner().revision;
                        self.history.lock().unwrap().acknowledged.push((
                            key.clone(),
                            None,
                            revision,
                        ));
                        Answer::Output(Output::Ok)
                    }
                    Ok(Err(s)) if s.code() == Code::NotFound => Answer::Output(Output::NotFound),
                    Ok(Err(s)) => classify(&s),
                    Err(_) => Answer::Output(Output::Unknown),
                }
            }
        };
        // A node that fails fast (refusing connections, no leader) is not hammered.
        if matches!(
            answer,
            Answer::NotExecuted | Answer::Output(Output::Unknown)
        ) {
            tokio::time::sleep(Duration::from_millis(self.rng.gen_range(10..50))).await;
        }
        if let Answer::Output(output) = answer {
            let ret = (output != Output::Unknown).then(|| nanos(self.started));
            self.history.lock().unwrap().ops.push(Op {
                client: self.id,
                key,
                input,
                output,
                call,
                ret,
            });
        }
    }
}

/// Which failures of a write are certain not to have changed anything (the client library's
/// own judgement, which the checker thereby tests). Anything else may have been committed.
fn classify(status: &tonic::Status) -> Answer {
    if pld_client::not_executed(status) {
        Answer::NotExecuted
    } else {
        Answer::Output(Output::Unknown)
    }
}

/// The faults the nemesis injects, one at a time, each undone before the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
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
}

impl Fault {
    const ALL: [Fault; 7] = [
        Fault::Kill,
        Fault::KillAll,
        Fault::Pause,
        Fault::PartitionHalves,
        Fault::IsolateNode,
        Fault::Bridge,
        Fault::OneWay,
    ];

    fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::KillAll => "kill-all",
            Fault::Pause => "pause",
            Fault::PartitionHalves => "partition-halves",
            Fault::IsolateNode => "isolate-node",
            Fault::Bridge => "bridge",
            Fault::OneWay => "one-way",
        }
    }
}

/// Every fault kind once per round, in a shuffled order, so even a short run meets them all.
struct Schedule {
    round: Vec<Fault>,
    nodes: usize,
}

impl Schedule {
    fn next(&mut self, rng: &mut StdRng) -> Fault {
        if self.round.is_empty() {
            self.round = Fault::ALL
                .into_iter()
                .filter(|f| *f != Fault::Bridge || self.nodes >= 5)
                .collect();
            self.round.shuffle(rng);
        }
        self.round.pop().unwrap_or(Fault::Kill)
    }
}

/// Injects `fault`.
async fn inject(
    cluster: &mut ProcessCluster,
    fabric: &Fabric,
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
    let nodes = |v: &[u64]| v.iter().map(|&id| Host::Node(id)).collect::<Vec<_>>();
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
                fabric.drop_one_way(Host::Node(victim), Host::Node(*other))?;
            }
        }
    }
    Ok(())
}

/// Undoes every fault: heals the network, thaws frozen nodes and restarts killed ones on their
/// data dirs.
fn recover(cluster: &mut ProcessCluster, fabric: &Fabric) -> anyhow::Result<()> {
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
