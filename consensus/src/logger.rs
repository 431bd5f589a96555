//! raft-rs logs through slog; Sluice logs through `tracing`.

use std::fmt::Write as _;

use slog::{Drain, Key, OwnedKVList, Record, Serializer, KV};

struct ToTracing;

struct Fields(String);

impl Serializer for Fields {
    fn emit_arguments(&mut self, key: Key, val: &std::fmt::Arguments) -> slog::Result {
        let _ = write!(self.0, " {key}={val}");
        Ok(())
    }
}

impl Drain for ToTracing {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<(), slog::Never> {
        let mut f = Fields(String::new());
        let _ = record.kv().serialize(record, &mut f);
        let _ = values.serialize(record, &mut f);
        let msg = record.msg();
        match record.level() {
            slog::Level::Critical | slog::Level::Error => tracing::error!(target: "raft", "{msg}{}", f.0),
            slog::Level::Warning => tracing::warn!(target: "raft", "{msg}{}", f.0),
            // raft-rs narrates every vote and term at info; the owner logs
            // the changes that matter (a new leader) in its own words.
            slog::Level::Info => tracing::debug!(target: "raft", "{msg}{}", f.0),
            slog::Level::Debug => tracing::debug!(target: "raft", "{msg}{}", f.0),
            slog::Level::Trace => tracing::trace!(target: "raft", "{msg}{}", f.0),
        }
        Ok(())
    }
}

pub fn logger(group: &str) -> slog::Logger {
    slog::Logger::root(ToTracing.fuse(), slog::o!("group" => group.to_string()))
}
