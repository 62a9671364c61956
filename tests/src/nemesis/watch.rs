//! The watchers: streams from the first revision, and what each must have seen.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use pld_client::Client;
use pld_proto::v1::{Event, EventType, WatchRequest};

use super::{value_of, History};
use crate::linearizable::Value;

/// A watcher through the client library (which resumes on another node when one fails) of
/// everything, from the first revision: the run writes nothing but its keys, so every revision
/// must arrive.
pub(super) fn spawn_watcher(addresses: &[String]) -> anyhow::Result<Arc<Mutex<Vec<Event>>>> {
    let client = Client::new(addresses)?.with_deadline(Duration::from_secs(120));
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    tokio::spawn(async move {
        let mut stream = Box::pin(client.watch(WatchRequest {
            start_revision: 1,
            kinds: Vec::new(),
            prefix: String::new(),
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

/// Checks what watcher `i` saw up to `end_revision` against the history and the final reads.
/// Returns how many events it checked.
pub(super) fn check_watch(
    i: usize,
    events: &[Event],
    end_revision: u64,
    history: &History,
    final_state: &BTreeMap<String, Option<Value>>,
) -> anyhow::Result<usize> {
    let events: Vec<&Event> = events
        .iter()
        .take_while(|e| e.revision <= end_revision)
        .collect();
    // Every revision exactly once, in order: the n-th event is revision n (nothing in the run
    // skips a revision; only a snapshot restore does).
    for (n, e) in (1u64..).zip(&events) {
        anyhow::ensure!(
            e.revision == n,
            "watcher {i}: event {n} is revision {} (a revision {} or out of order)",
            e.revision,
            if e.revision < n { "repeated" } else { "missed" }
        );
    }
    anyhow::ensure!(
        events.len() as u64 == end_revision,
        "watcher {i}: saw {} of the {end_revision} revisions",
        events.len()
    );
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
    Ok(events.len())
}
