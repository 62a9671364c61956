//! A client of the workload: one request at a time to one node, each recorded for the checker.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pld_client::Client;
use pld_proto::v1::{object, DeleteRequest, GetRequest, Kind, Object, PutRequest};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use tonic::Code;

use super::{mod_revision, nanos, value_of, History, OP_TIMEOUT};
use crate::linearizable::{Input, Op, Output, Value};
use crate::objects::service;

pub(super) struct Worker {
    pub id: usize,
    pub nodes: Vec<Client>,
    pub keys: Vec<String>,
    pub rng: StdRng,
    pub started: Instant,
    pub next_value: Value,
    /// The last value and mod revision this client read per key, for its compare-and-sets.
    pub seen: HashMap<String, (Value, u64)>,
    pub history: Arc<Mutex<History>>,
    pub stale_reads: bool,
}

/// How one request ended, as the checker needs it.
enum Answer {
    Output(Output),
    /// Certainly not executed (refused before it was proposed): left out of the history.
    NotExecuted,
}

impl Worker {
    pub async fn run(mut self, stop: Arc<AtomicBool>) {
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
                            // A correct node returns what a client wrote; anything else is an
                            // anomaly the register model cannot express.
                            Some((Err(e), _)) => {
                                self.history
                                    .lock()
                                    .unwrap()
                                    .anomalies
                                    .push(format!("client {}: read of {key}: {e:#}", self.id));
                                Answer::NotExecuted
                            }
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
