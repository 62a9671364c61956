//! Raft messages from the network, checked before raft-rs sees them.
//!
//! raft-rs trusts its peers: a message no honest peer sends — a heartbeat committing past this
//! node's log, an empty proposal, a snapshot whose configuration cannot be restored — makes it
//! panic, and a panicking raft thread stops the node. Each rule here refuses one such shape,
//! and names (in its comment) what raft-rs 0.7 would do with it. A refused message is dropped
//! and counted (`pld_raft_messages_refused_total{reason}`); the node serves on.
//!
//! What this cannot do is tell a well-formed forgery from the truth: raft assumes honest peers.
//! That is what TLS is for — with it only certificates naming a controller may send raft
//! messages at all, and each only as the member its certificate names (`api::raft`).

use std::collections::BTreeSet;

use protobuf::Message as _;
use raft::eraftpb::{ConfChange, ConfState, Entry, EntryType, Message, MessageType};

/// What the node knows when a message arrives.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// This node's raft id.
    pub id: u64,
    /// The configuration it has applied: empty on a node that joined and has not heard from
    /// the cluster yet.
    pub conf: &'a ConfState,
    /// Its current term.
    pub term: u64,
    /// The leader it follows in `term`, `raft::INVALID_ID` when none.
    pub leader_id: u64,
    /// The last index in its log.
    pub last_index: u64,
}

/// Why a raft message was dropped. Each is a label of the refusal counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// From no node (id 0) or from this node itself.
    Sender(u64),
    /// From a node that is not a member.
    NotAMember(u64),
    /// A term or index no cluster reaches, where raft-rs's arithmetic would overflow.
    OutOfRange { field: &'static str, value: u64 },
    /// A type raft-rs only makes inside a node (ticks, unreachable reports).
    LocalType(MessageType),
    /// A type of a raft feature pld does not use (leadership transfer).
    UnusedType(MessageType),
    /// A message other than a forwarded proposal or read, without a term.
    WithoutTerm(MessageType),
    /// A forwarded proposal or read request carrying a term.
    ForwardWithTerm(MessageType),
    /// A proposal without entries.
    EmptyProposal,
    /// A read request without exactly one entry (its context).
    ReadIndexShape(usize),
    /// Entries that do not follow the message's index, or terms that go backwards.
    AppendShape(String),
    /// A heartbeat committing past this node's log.
    CommitBeyondLog { commit: u64, last_index: u64 },
    /// A leader's message in a term whose leader is another node.
    NotTheLeader { from: u64, leader: u64, term: u64 },
    /// A conf change entry that is not one.
    ConfChangeEntry(String),
    /// An entry that is not a batch of pld commands.
    CommandEntry(String),
    /// A snapshot whose metadata cannot be restored.
    SnapshotShape(String),
    /// A snapshot whose catalog does not decode.
    SnapshotData(String),
}

impl Refusal {
    /// The `reason` label.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::Sender(_) => "sender",
            Refusal::NotAMember(_) => "not_a_member",
            Refusal::OutOfRange { .. } => "out_of_range",
            Refusal::LocalType(_) => "local_type",
            Refusal::UnusedType(_) => "unused_type",
            Refusal::WithoutTerm(_) => "without_term",
            Refusal::ForwardWithTerm(_) => "forward_with_term",
            Refusal::EmptyProposal => "empty_proposal",
            Refusal::ReadIndexShape(_) => "read_index_shape",
            Refusal::AppendShape(_) => "append_shape",
            Refusal::CommitBeyondLog { .. } => "commit_beyond_log",
            Refusal::NotTheLeader { .. } => "not_the_leader",
            Refusal::ConfChangeEntry(_) => "conf_change_entry",
            Refusal::CommandEntry(_) => "command_entry",
            Refusal::SnapshotShape(_) => "snapshot_shape",
            Refusal::SnapshotData(_) => "snapshot_data",
        }
    }

    /// Every label, so each series exists (at 0) before the first refusal.
    pub const LABELS: [&'static str; 16] = [
        "sender",
        "not_a_member",
        "out_of_range",
        "local_type",
        "unused_type",
        "without_term",
        "forward_with_term",
        "empty_proposal",
        "read_index_shape",
        "append_shape",
        "commit_beyond_log",
        "not_the_leader",
        "conf_change_entry",
        "command_entry",
        "snapshot_shape",
        "snapshot_data",
    ];
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Sender(id) => write!(f, "sent as node {id}, which no peer is"),
            Refusal::NotAMember(id) => write!(f, "from node {id}, which is not a member"),
            Refusal::OutOfRange { field, value } => {
                write!(f, "{field} {value} is past any a cluster reaches")
            }
            Refusal::LocalType(t) => write!(f, "{t:?} is made only inside a node"),
            Refusal::UnusedType(t) => write!(f, "{t:?}: pld never transfers leadership"),
            Refusal::WithoutTerm(t) => write!(f, "{t:?} without a term"),
            Refusal::ForwardWithTerm(t) => write!(f, "a forwarded {t:?} carries a term"),
            Refusal::EmptyProposal => f.write_str("a proposal without entries"),
            Refusal::ReadIndexShape(n) => {
                write!(f, "a read request with {n} entries instead of 1")
            }
            Refusal::AppendShape(why) => write!(f, "entries out of shape: {why}"),
            Refusal::CommitBeyondLog { commit, last_index } => write!(
                f,
                "a heartbeat commits index {commit}, past this node's last {last_index}"
            ),
            Refusal::NotTheLeader { from, leader, term } => write!(
                f,
                "node {from} acts as leader of term {term}, whose leader is node {leader}"
            ),
            Refusal::ConfChangeEntry(why) => write!(f, "a membership entry {why}"),
            Refusal::CommandEntry(why) => write!(f, "an entry {why}"),
            Refusal::SnapshotShape(why) => write!(f, "a snapshot {why}"),
            Refusal::SnapshotData(why) => write!(f, "a snapshot whose catalog {why}"),
        }
    }
}

/// Checks one message from a peer, the catalog a snapshot carries included.
///
/// # Errors
/// The first rule it breaks.
pub fn check_peer_message(m: &Message, facts: &Facts) -> Result<(), Refusal> {
    check(m, facts)?;
    if m.get_msg_type() == MessageType::MsgSnapshot {
        // Installing one that does not decode stops the node (`ready::install_snapshot`); the
        // history limit only bounds what a decoded catalog keeps, so any will do here.
        pld_core::Catalog::decode_snapshot(&m.get_snapshot().data, 1)
            .map_err(|e| Refusal::SnapshotData(format!("does not decode: {e}")))?;
    }
    Ok(())
}

/// Checks one message from a peer, all but the snapshot's catalog.
fn check(m: &Message, facts: &Facts) -> Result<(), Refusal> {
    use MessageType::*;
    let kind = m.get_msg_type();
    if m.from == 0 || m.from == facts.id {
        return Err(Refusal::Sender(m.from));
    }
    let conf = facts.conf;
    if !conf.voters.is_empty() && !conf.voters.contains(&m.from) && !conf.learners.contains(&m.from)
    {
        return Err(Refusal::NotAMember(m.from));
    }
    check_range(m)?;
    match kind {
        // raw_node::step refuses these itself (StepLocalMsg); counted here like the rest.
        MsgHup | MsgBeat | MsgUnreachable | MsgSnapStatus | MsgCheckQuorum => {
            return Err(Refusal::LocalType(kind))
        }
        // pld never transfers leadership, and raft-rs panics forwarding a transfer request
        // that carries a term (raft.rs `send`: "term should not be set when sending
        // MsgTransferLeader"); a timeout makes a follower campaign at once.
        MsgTransferLeader | MsgTimeoutNow => return Err(Refusal::UnusedType(kind)),
        // raft.rs `send`: "term should not be set when sending" a proposal or read request,
        // a panic when a follower forwards one that came with a term.
        MsgPropose | MsgReadIndex if m.term != 0 => return Err(Refusal::ForwardWithTerm(kind)),
        // raft.rs `step_leader`: "stepped empty MsgProp".
        MsgPropose if m.entries.is_empty() => return Err(Refusal::EmptyProposal),
        // raft.rs `step_leader` and read_only.rs index `entries[0]` (the read's context).
        MsgReadIndex if m.entries.len() != 1 => {
            return Err(Refusal::ReadIndexShape(m.entries.len()))
        }
        // Everything else leaves its sender with the sender's term (raft.rs `send`), at least
        // 1. raft-rs takes a message without one for a local message, and on one it panics:
        // answering a vote without a term ("term should be set when sending"), or taking a
        // read's answer at an index past the log as committed (`maybe_commit` finds term 0
        // there).
        MsgPropose | MsgReadIndex => {}
        _ if m.term == 0 => return Err(Refusal::WithoutTerm(kind)),
        _ => {}
    }
    let from_leader = matches!(
        kind,
        MsgAppend | MsgHeartbeat | MsgSnapshot | MsgReadIndexResp
    );
    // One leader per term: once this node knows it, another sender in the same term is no
    // leader (a forged append from it would put entries in the log that the leader never
    // sent).
    if from_leader
        && m.term == facts.term
        && facts.leader_id != raft::INVALID_ID
        && m.from != facts.leader_id
    {
        return Err(Refusal::NotTheLeader {
            from: m.from,
            leader: facts.leader_id,
            term: m.term,
        });
    }
    match kind {
        MsgAppend => check_entries(m)?,
        // raft_log.rs `commit_to`: "to_commit … is out of range [last_index …]". A leader
        // sends min(what this node acknowledged, its commit), never more than this log holds.
        MsgHeartbeat if m.commit > facts.last_index => {
            return Err(Refusal::CommitBeyondLog {
                commit: m.commit,
                last_index: facts.last_index,
            })
        }
        MsgSnapshot => check_snapshot_meta(m, facts.id)?,
        _ => {}
    }
    if matches!(kind, MsgAppend | MsgPropose) {
        for e in &m.entries {
            check_entry(e)?;
        }
    }
    Ok(())
}

/// The largest term or index an honest message carries: one election or entry at a time, a
/// cluster never gets near it, and raft-rs adds to these without checking (`become_candidate`'s
/// `term + 1` panics on a forged term of `u64::MAX`).
pub const MAX_TERM_OR_INDEX: u64 = 1 << 62;

fn check_range(m: &Message) -> Result<(), Refusal> {
    let meta = m.get_snapshot().get_metadata();
    let fields = [
        ("term", m.term),
        ("log_term", m.log_term),
        ("index", m.index),
        ("commit", m.commit),
        ("commit_term", m.commit_term),
        ("reject_hint", m.reject_hint),
        ("request_snapshot", m.request_snapshot),
        ("snapshot index", meta.index),
        ("snapshot term", meta.term),
    ];
    let entries = m
        .entries
        .iter()
        .flat_map(|e| [("entry index", e.index), ("entry term", e.term)]);
    match fields
        .into_iter()
        .chain(entries)
        .find(|(_, value)| *value > MAX_TERM_OR_INDEX)
    {
        Some((field, value)) => Err(Refusal::OutOfRange { field, value }),
        None => Ok(()),
    }
}

/// An append's entries follow its index one by one, with terms that never go back and never
/// pass the message's. raft_log.rs `maybe_append` panics ("entry … conflict with committed
/// entry") when entries out of sequence clash with what this node committed, and `append`
/// ("after … is out of range") when they start below it.
fn check_entries(m: &Message) -> Result<(), Refusal> {
    let shape = |why: String| Err(Refusal::AppendShape(why));
    // raft_log.rs `term` answers 0 for an index past the log, so an append "after" such an
    // index with term 0 would match, and its commit (`commit_to`) pass the log's end. Only the
    // log's start, index 0, has term 0.
    if m.log_term == 0 && m.index != 0 {
        return shape(format!("the previous entry {} has no term", m.index));
    }
    if m.log_term > m.term {
        return shape(format!(
            "the previous entry's term {} is past the message's {}",
            m.log_term, m.term
        ));
    }
    let mut term = m.log_term;
    for (i, e) in m.entries.iter().enumerate() {
        let want = m.index.checked_add(i as u64 + 1);
        if want != Some(e.index) {
            return shape(format!(
                "entry {i} has index {}, not {} + {}",
                e.index,
                m.index,
                i + 1
            ));
        }
        if e.term < term || e.term > m.term {
            return shape(format!(
                "entry {} has term {}, outside {term}..={}",
                e.index, e.term, m.term
            ));
        }
        term = e.term;
    }
    Ok(())
}

/// An entry must decode as what pld proposes: a batch of commands, or a single-step membership
/// change. Applying a committed one that does not stops the node (`node::apply`), rightly for
/// an honest log (it means a bug or two versions that cannot read each other's entries, and
/// replicas skipping what they cannot read would part ways); so it must not get in.
fn check_entry(e: &Entry) -> Result<(), Refusal> {
    match e.get_entry_type() {
        // A new leader's first entry is empty.
        EntryType::EntryNormal if e.data.is_empty() => Ok(()),
        EntryType::EntryNormal => pld_core::command::Envelope::decode_bytes(&e.data)
            .map(|_| ())
            .map_err(|err| Refusal::CommandEntry(format!("is not a pld command: {err}"))),
        EntryType::EntryConfChangeV2 => Err(Refusal::ConfChangeEntry(
            "is a joint change, which pld never makes".into(),
        )),
        EntryType::EntryConfChange => match ConfChange::parse_from_bytes(&e.data) {
            Ok(cc) if cc.node_id != 0 => Ok(()),
            Ok(_) => Err(Refusal::ConfChangeEntry("names node 0".into())),
            Err(err) => Err(Refusal::ConfChangeEntry(format!("does not decode: {err}"))),
        },
    }
}

/// A snapshot's configuration is one pld makes: voters (this node among the members), no
/// joint state, nobody twice. raft.rs `restore` panics ("unable to restore config", "invalid
/// restore") on a configuration it cannot rebuild exactly.
fn check_snapshot_meta(m: &Message, me: u64) -> Result<(), Refusal> {
    let shape = |why: String| Err(Refusal::SnapshotShape(why));
    let meta = m.get_snapshot().get_metadata();
    if meta.index == 0 || meta.term == 0 || meta.term > m.term {
        return shape(format!(
            "at index {} term {} (message term {})",
            meta.index, meta.term, m.term
        ));
    }
    let cs: &ConfState = meta.get_conf_state();
    if !cs.voters_outgoing.is_empty() || !cs.learners_next.is_empty() || cs.auto_leave {
        return shape("in a joint configuration, which pld never makes".into());
    }
    if cs.voters.is_empty() {
        return shape("without voters".into());
    }
    let mut seen = BTreeSet::new();
    for id in cs.voters.iter().chain(&cs.learners) {
        if *id == 0 || !seen.insert(*id) {
            return shape(format!("listing node {id} twice or as node 0"));
        }
    }
    if !seen.contains(&me) {
        // raft-rs ignores it (and asks again); refused here so it is counted.
        return shape(format!("of a configuration without this node {me}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
