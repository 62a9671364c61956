//! Any bytes as a raft batch from a peer: decoded into raft messages or refused whole, never a
//! panic. (The decoded messages then meet `node::guard` before raft-rs sees them; that path is
//! fuzzed against running nodes by `tests/tests/forged_raft.rs`.)
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
