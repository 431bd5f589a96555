//! `sluice-storage`: one partition's log, kept durably on disk as Kafka
//! record-batch v2 segments and served back by offset.
//!
//! Layers, bottom up: [`io`] (how bytes reach the disk: glommio/io_uring),
//! [`segment`] and [`index`] (one `.log` file and its sparse indexes),
//! [`log`] (offsets, roll, retention, recovery, flushing), with [`batch`]
//! (the v2 header format) and [`producer`] (idempotent-producer state)
//! beside them. Nothing here knows of Kafka requests or sockets.
//!
//! A [`Log`] belongs to one glommio executor: it is `!Send` and lock-free.

pub mod batch;
pub mod cleaner;
pub mod config;
pub mod epochs;
pub mod error;
pub mod index;
pub mod io;
pub mod log;
pub mod producer;
pub mod segment;

pub use cleaner::{CleanOutcome, CleanPlan, CleanStats, RecordCodec};
pub use config::{CompactionConfig, FlushPolicy, LogConfig};
pub use epochs::EpochCache;
pub use error::{BatchError, ProducerError, Result, StorageError};
pub use log::{AppendInfo, FileSlice, Log, PendingFlush, ReadPlan, Recovery, SharedSlice};
