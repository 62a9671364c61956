//! Routes raft-rs's slog records into `tracing`, so one filter (`PLD_LOG`) governs all logs.

use std::fmt::Write as _;

use slog::{Drain, Key, OwnedKVList, Record, Serializer, KV};

/// A slog drain that emits each record as a tracing event under target `raft`.
pub struct TracingDrain;

struct Fields(String);

impl Serializer for Fields {
    fn emit_arguments(&mut self, key: Key, val: &std::fmt::Arguments<'_>) -> slog::Result {
        let _ = write!(self.0, " {key}={val}");
        Ok(())
    }
}

impl Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), slog::Never> {
        let mut fields = Fields(String::new());
        let _ = record.kv().serialize(record, &mut fields);
        let _ = values.serialize(record, &mut fields);
        let msg = record.msg();
        match record.level() {
            slog::Level::Critical | slog::Level::Error => {
                tracing::error!(target: "raft", "{msg}{}", fields.0)
            }
            slog::Level::Warning => tracing::warn!(target: "raft", "{msg}{}", fields.0),
            slog::Level::Info => tracing::info!(target: "raft", "{msg}{}", fields.0),
            slog::Level::Debug => tracing::debug!(target: "raft", "{msg}{}", fields.0),
            slog::Level::Trace => tracing::trace!(target: "raft", "{msg}{}", fields.0),
        }
        Ok(())
    }
}

/// A slog logger for raft-rs that writes through tracing.
pub fn logger() -> slog::Logger {
    slog::Logger::root(TracingDrain.fuse(), slog::o!())
}
