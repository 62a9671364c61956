//! Any bytes as a committed log entry, a raft snapshot or a backup: decoded and applied, or
//! refused, never a panic (a panic here would stop every replica that applies the entry).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pld_core::catalog::{check_backup, Catalog, DEFAULT_HISTORY_LIMIT};
use pld_core::Envelope;

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = Envelope::decode_bytes(data) {
        let mut catalog = Catalog::default();
        for command in envelope.command.iter().chain(&envelope.commands) {
            let _ = catalog.apply(command);
        }
    }
    let _ = Catalog::decode_snapshot(data, DEFAULT_HISTORY_LIMIT);
    let _ = check_backup(data);
});
