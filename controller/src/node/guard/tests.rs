use prost::Message as _;
use protobuf::Message as _;
use raft::eraftpb::{
    ConfChange, ConfChangeType, ConfState, Entry, EntryType, Message, MessageType,
};

use super::{check, check_peer_message, Facts, Refusal};

/// Nodes 1, 2 and 3.
fn members() -> &'static ConfState {
    static CONF: std::sync::OnceLock<ConfState> = std::sync::OnceLock::new();
    CONF.get_or_init(|| ConfState {
        voters: vec![1, 2, 3],
        ..Default::default()
    })
}

/// Node 2, following node 1 in term 5, with 10 entries.
fn facts() -> Facts<'static> {
    Facts {
        id: 2,
        conf: members(),
        term: 5,
        leader_id: 1,
        last_index: 10,
    }
}

fn msg(kind: MessageType, from: u64, term: u64) -> Message {
    let mut m = Message::default();
    m.set_msg_type(kind);
    m.from = from;
    m.to = 2;
    m.term = term;
    m
}

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        ..Default::default()
    }
}

fn append(index: u64, log_term: u64, entries: Vec<Entry>) -> Message {
    let mut m = msg(MessageType::MsgAppend, 1, 5);
    m.index = index;
    m.log_term = log_term;
    m.entries = entries.into();
    m
}

fn snapshot(index: u64, term: u64, cs: ConfState) -> Message {
    let mut m = msg(MessageType::MsgSnapshot, 1, 5);
    let meta = m.mut_snapshot().mut_metadata();
    meta.index = index;
    meta.term = term;
    meta.set_conf_state(cs);
    m
}

fn voters(v: &[u64]) -> ConfState {
    ConfState {
        voters: v.to_vec(),
        ..Default::default()
    }
}

#[test]
fn what_honest_peers_send_passes() {
    let mut heartbeat = msg(MessageType::MsgHeartbeat, 1, 5);
    heartbeat.commit = 10;
    let mut proposal = msg(MessageType::MsgPropose, 3, 0);
    proposal.entries = vec![Entry::default()].into();
    let mut read = msg(MessageType::MsgReadIndex, 3, 0);
    read.entries = vec![Entry::default()].into();
    let mut conf = Entry::default();
    conf.set_entry_type(EntryType::EntryConfChange);
    let mut cc = ConfChange::default();
    cc.set_change_type(ConfChangeType::AddNode);
    cc.node_id = 4;
    conf.data = cc.write_to_bytes().expect("encodes").into();
    let mut with_conf = append(10, 5, vec![entry(11, 5)]);
    with_conf.entries[0] = Entry {
        index: 11,
        term: 5,
        ..conf
    };
    for (what, m) in [
        ("heartbeat up to the log's end", heartbeat),
        (
            "append after a matching entry",
            append(10, 4, vec![entry(11, 4), entry(12, 5)]),
        ),
        ("empty append (a probe)", append(3, 2, vec![])),
        ("append with a command", {
            let mut command = entry(11, 5);
            command.data = pld_core::command::Envelope {
                proposer: 1,
                nonce: 7,
                ..Default::default()
            }
            .encode_to_vec()
            .into();
            append(10, 5, vec![command])
        }),
        ("append with a membership change", with_conf),
        ("forwarded proposal", proposal),
        ("forwarded read", read),
        (
            "vote in a later term",
            msg(MessageType::MsgRequestVote, 3, 6),
        ),
        (
            "pre-vote in this term",
            msg(MessageType::MsgRequestPreVote, 3, 5),
        ),
        ("append from a new term's leader", {
            let mut m = append(10, 5, vec![entry(11, 6)]);
            m.from = 3;
            m.term = 6;
            m
        }),
        (
            "snapshot naming this node",
            snapshot(20, 5, voters(&[1, 2, 3])),
        ),
        ("a stale append (ignored by raft-rs)", {
            let mut m = append(1, 1, vec![entry(2, 1)]);
            m.from = 3;
            m.term = 4;
            m
        }),
        ("an answer", msg(MessageType::MsgAppendResponse, 3, 5)),
    ] {
        assert_eq!(check(&m, &facts()), Ok(()), "{what}");
    }
}

#[test]
fn each_shape_raft_rs_would_panic_on_is_refused() {
    let mut beyond = msg(MessageType::MsgHeartbeat, 1, 5);
    beyond.commit = 11;
    let mut beyond_new_term = msg(MessageType::MsgHeartbeat, 3, 9);
    beyond_new_term.commit = 1_000;
    let mut garbage_conf = entry(11, 5);
    garbage_conf.set_entry_type(EntryType::EntryConfChange);
    garbage_conf.data = vec![0xff, 0xff, 0xff].into();
    let mut joint = entry(11, 5);
    joint.set_entry_type(EntryType::EntryConfChangeV2);
    let mut proposal_with_term = msg(MessageType::MsgPropose, 3, 5);
    proposal_with_term.entries = vec![Entry::default()].into();
    let mut bad_conf_proposal = msg(MessageType::MsgPropose, 3, 0);
    bad_conf_proposal.entries = vec![garbage_conf.clone()].into();
    let joint_cs = ConfState {
        voters: vec![1, 2],
        voters_outgoing: vec![1, 2, 3],
        ..Default::default()
    };
    let both = ConfState {
        voters: vec![1, 2],
        learners: vec![2],
        ..Default::default()
    };
    for (what, m, label) in [
        (
            "from node 0",
            msg(MessageType::MsgHeartbeat, 0, 5),
            "sender",
        ),
        ("from itself", msg(MessageType::MsgAppend, 2, 5), "sender"),
        (
            "from a stranger",
            msg(MessageType::MsgHeartbeat, 7, 6),
            "not_a_member",
        ),
        (
            "a term raft-rs would overflow",
            msg(MessageType::MsgHeartbeat, 1, u64::MAX),
            "out_of_range",
        ),
        (
            "an entry term past any",
            append(10, 5, vec![entry(11, 1 << 63)]),
            "out_of_range",
        ),
        (
            "a hint past any",
            {
                let mut m = msg(MessageType::MsgAppendResponse, 3, 5);
                m.reject_hint = u64::MAX;
                m
            },
            "out_of_range",
        ),
        ("a tick", msg(MessageType::MsgHup, 1, 0), "local_type"),
        (
            "a quorum check",
            msg(MessageType::MsgCheckQuorum, 1, 5),
            "local_type",
        ),
        (
            "vote without term",
            msg(MessageType::MsgRequestVote, 3, 0),
            "without_term",
        ),
        (
            "pre-vote answer without term",
            msg(MessageType::MsgRequestPreVoteResponse, 3, 0),
            "without_term",
        ),
        (
            "proposal with a term",
            proposal_with_term,
            "forward_with_term",
        ),
        (
            "empty proposal",
            msg(MessageType::MsgPropose, 3, 0),
            "empty_proposal",
        ),
        (
            "read without context",
            msg(MessageType::MsgReadIndex, 3, 0),
            "read_index_shape",
        ),
        ("heartbeat past the log", beyond, "commit_beyond_log"),
        (
            "a new term's heartbeat past the log",
            beyond_new_term,
            "commit_beyond_log",
        ),
        (
            "another leader in this term",
            {
                let mut m = append(10, 5, vec![]);
                m.from = 3;
                m
            },
            "not_the_leader",
        ),
        (
            "entries that skip",
            append(10, 5, vec![entry(12, 5)]),
            "append_shape",
        ),
        (
            "entries from index 1",
            append(10, 5, vec![entry(1, 5)]),
            "append_shape",
        ),
        (
            "entries at index 0",
            append(10, 5, vec![entry(0, 5)]),
            "append_shape",
        ),
        (
            "an append past the log naming no term",
            append(12, 0, vec![]),
            "append_shape",
        ),
        (
            "a read's answer without a term",
            {
                let mut m = msg(MessageType::MsgReadIndexResp, 1, 0);
                m.index = 11;
                m.entries = vec![Entry::default()].into();
                m
            },
            "without_term",
        ),
        (
            "a heartbeat without a term",
            msg(MessageType::MsgHeartbeat, 1, 0),
            "without_term",
        ),
        (
            "an entry that is not a command",
            {
                let mut garbage = entry(11, 5);
                garbage.data = vec![0x0a, 0xff].into();
                append(10, 5, vec![garbage])
            },
            "command_entry",
        ),
        (
            "a leadership transfer",
            msg(MessageType::MsgTransferLeader, 3, 5),
            "unused_type",
        ),
        (
            "a timeout from the leader",
            msg(MessageType::MsgTimeoutNow, 1, 5),
            "unused_type",
        ),
        (
            "terms going back",
            append(10, 5, vec![entry(11, 5), entry(12, 4)]),
            "append_shape",
        ),
        (
            "a term past the message's",
            append(10, 5, vec![entry(11, 6)]),
            "append_shape",
        ),
        (
            "a previous term past the message's",
            append(10, 6, vec![]),
            "append_shape",
        ),
        (
            "an undecodable membership entry",
            append(10, 5, vec![garbage_conf]),
            "conf_change_entry",
        ),
        (
            "a joint change",
            append(10, 5, vec![joint]),
            "conf_change_entry",
        ),
        (
            "a proposed undecodable membership entry",
            bad_conf_proposal,
            "conf_change_entry",
        ),
        (
            "snapshot at index 0",
            snapshot(0, 5, voters(&[1, 2])),
            "snapshot_shape",
        ),
        (
            "snapshot from a later term",
            snapshot(9, 6, voters(&[1, 2])),
            "snapshot_shape",
        ),
        (
            "snapshot without voters",
            snapshot(9, 5, voters(&[])),
            "snapshot_shape",
        ),
        ("joint snapshot", snapshot(9, 5, joint_cs), "snapshot_shape"),
        ("voter and learner", snapshot(9, 5, both), "snapshot_shape"),
        ("node 0", snapshot(9, 5, voters(&[0, 2])), "snapshot_shape"),
        (
            "a voter twice",
            snapshot(9, 5, voters(&[2, 2])),
            "snapshot_shape",
        ),
        (
            "without this node",
            snapshot(9, 5, voters(&[1, 3])),
            "snapshot_shape",
        ),
    ] {
        let refused = check(&m, &facts()).expect_err(what);
        assert_eq!(refused.label(), label, "{what}: {refused}");
        assert!(Refusal::LABELS.contains(&refused.label()));
    }
}

#[test]
fn a_heartbeat_is_held_to_the_log_before_raft_rs_sees_it() {
    // The message that stopped a node before (RELIABILITY.md §5): a later term, committing past
    // the log. raft-rs would step down to follow node 3 and then panic in commit_to.
    let mut forged = msg(MessageType::MsgHeartbeat, 3, 50);
    forged.commit = 10_000;
    assert_eq!(
        check(&forged, &facts()),
        Err(Refusal::CommitBeyondLog {
            commit: 10_000,
            last_index: 10
        })
    );
    assert!(check(&forged, &facts())
        .unwrap_err()
        .to_string()
        .contains("past this node's last 10"));
}

#[test]
fn a_snapshot_whose_catalog_does_not_decode_is_refused() {
    let mut m = snapshot(20, 5, voters(&[1, 2, 3]));
    m.mut_snapshot().data = vec![0xde, 0xad].into();
    assert_eq!(check(&m, &facts()), Ok(()), "the metadata is fine");
    let refused = check_peer_message(&m, &facts()).expect_err("garbage catalog");
    assert_eq!(refused.label(), "snapshot_data", "{refused}");
    m.mut_snapshot().data = pld_core::Catalog::default().encode_snapshot().into();
    assert_eq!(check_peer_message(&m, &facts()), Ok(()));
}

#[test]
fn a_node_that_knows_no_members_yet_hears_anyone() {
    // A node started to join has an empty configuration until the leader's snapshot arrives.
    let empty = ConfState::default();
    let joining = Facts {
        id: 4,
        conf: &empty,
        term: 0,
        leader_id: raft::INVALID_ID,
        last_index: 0,
    };
    let mut snap = snapshot(20, 5, voters(&[1, 2, 3, 4]));
    snap.to = 4;
    assert_eq!(check(&snap, &joining), Ok(()));
    // A learner of the configuration is a member too.
    let with_learner = ConfState {
        voters: vec![1, 2, 3],
        learners: vec![4],
        ..Default::default()
    };
    let f = Facts {
        conf: &with_learner,
        ..facts()
    };
    assert_eq!(
        check(&msg(MessageType::MsgAppendResponse, 4, 5), &f),
        Ok(())
    );
}
