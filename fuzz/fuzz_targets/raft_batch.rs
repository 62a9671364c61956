//! Any bytes as a raft batch from a peer: decoded into raft messages or refused whole, never a
//! panic. (What raft-rs does with a well-formed but forged message is another matter: the node
//! treats a raft panic as fatal, see `hostile_clients.rs`.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use pld_controller::api::raft::decode_batch;
use pld_proto::v1::RaftBatch;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = RaftBatch::decode(data) {
        // Addressed to whoever it names, so the messages themselves get decoded.
        let _ = decode_batch(&batch, batch.to);
    }
});
