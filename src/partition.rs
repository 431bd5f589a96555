//! A partition on its owning shard: one task owns the `Log` and takes
//! commands in order. Appends for `acks=all` wait for a flush that runs
//! beside the task (group commit: one fdatasync answers every append that
//! came before it), so reads and further appends are not held up by it.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use sluice_storage::log::now_ms;
use sluice_storage::{AppendInfo, BatchError, CleanOutcome, CleanPlan, FileSlice, Log, ProducerError, StorageError};

use crate::shard;
use crate::topics::{TopicMeta, TopicPartition};

mod replicated;

/// What a produce to one partition came to.
#[derive(Clone, Copy, Debug)]
pub struct ProduceOutcome {
    pub base_offset: i64,
    pub log_append_time: i64,
    pub log_start_offset: i64,
}

pub type PartitionError = (ResponseError, String);

/// Offsets every reader may need without asking the task.
#[derive(Default)]
pub struct Offsets {
    pub log_start: Cell<i64>,
    /// Log end offset.
    pub end: Cell<i64>,
    /// What consumers may read up to (ListOffsets latest, Fetch's high
    /// watermark). With one replica it is the log end; with replication it
    /// will be the end of what a quorum has (docs/replication.md).
    pub high_watermark: Cell<i64>,
    /// Bytes in the log's segments.
    pub size: Cell<u64>,
}

impl Offsets {
    fn update(&self, log: &Log) {
        self.log_start.set(log.log_start_offset());
        self.end.set(log.log_end_offset());
        self.high_watermark.set(log.log_end_offset());
        self.size.set(log.size_bytes());
    }
}

enum Cmd {
    Append {
        batches: Vec<Vec<u8>>,
        acks: i16,
        reply: flume::Sender<Result<ProduceOutcome, PartitionError>>,
    },
    Read {
        offset: i64,
        max_bytes: usize,
        reply: flume::Sender<Result<Option<FileSlice>, PartitionError>>,
    },
    ListOffset {
        timestamp: i64,
        reply: flume::Sender<Result<Option<(i64, i64)>, PartitionError>>,
    },
    /// OffsetForLeaderEpoch: (epoch, end offset) from the epoch cache.
    EpochEnd {
        epoch: i32,
        reply: flume::Sender<(i32, i64)>,
    },
    Flushed {
        upto: i64,
        result: Result<(), String>,
    },
    /// A compaction pass finished its background half.
    Cleaned(Result<Option<CleanOutcome>, StorageError>),
    /// Periodic: `flush.ms`, retention, producer-id expiry.
    Tick,
    /// New topic configs, applied live.
    SetConfig(sluice_storage::LogConfig),
    /// DeleteRecords: move the log start offset.
    DeleteRecords {
        before: i64,
        reply: flume::Sender<Result<i64, PartitionError>>,
    },
    Close {
        delete: bool,
        reply: flume::Sender<()>,
    },
    /// A message for the partition's Raft group (replicated partitions).
    Raft(sluice_consensus::Message),
}

pub struct Partition {
    /// The epoch of this broker's leadership (the Raft term for a
    /// replicated partition, moved by its task).
    pub leader_epoch: Cell<i32>,
    /// Whether this replica leads (always, for one unreplicated).
    pub leading: Cell<bool>,
    tx: flume::Sender<Cmd>,
    pub offsets: Rc<Offsets>,
    /// Fetches waiting for data (long poll), woken by every append.
    waiters: RefCell<Vec<flume::Sender<()>>>,
}

fn storage_error(e: StorageError) -> PartitionError {
    let code = match &e {
        StorageError::Batch(BatchError::TooLarge { .. }) => ResponseError::MessageTooLarge,
        StorageError::Batch(BatchError::Crc { .. }) => ResponseError::CorruptMessage,
        StorageError::Batch(_) => ResponseError::CorruptMessage,
        StorageError::Producer(ProducerError::OutOfOrderSequence { .. }) => ResponseError::OutOfOrderSequenceNumber,
        StorageError::Producer(ProducerError::InvalidEpoch { .. }) => ResponseError::InvalidProducerEpoch,
        StorageError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        StorageError::Corrupt { .. } | StorageError::Io { .. } => ResponseError::KafkaStorageError,
    };
    (code, e.to_string())
}

fn gone() -> PartitionError {
    (ResponseError::NotLeaderOrFollower, "partition is closing".into())
}

impl Partition {
    pub async fn open(tp: TopicPartition, meta: &TopicMeta) -> Result<Rc<Partition>, String> {
        let shard = shard::current();
        if shard.config.quorum.is_some() && meta.partitions[tp.partition as usize].replicas.len() > 1 {
            return replicated::open(tp, meta).await;
        }
        let config = shard.config.log_config(&meta.configs);
        let dir = tp.dir(&shard.config.data_dir);
        let mut log = Log::open(&dir, config).await.map_err(|e| format!("{}: {e}", dir.display()))?;
        let leader_epoch = meta.partitions[tp.partition as usize].leader_epoch;
        log.set_leader_epoch(leader_epoch);
        let r = log.recovery();
        if r.truncated_bytes > 0 || (!r.clean_shutdown && log.log_end_offset() > 0) {
            tracing::info!(partition = %dir.display(), clean = r.clean_shutdown, truncated = r.truncated_bytes, "recovered");
        }
        let offsets = Rc::new(Offsets::default());
        offsets.update(&log);
        let (tx, rx) = flume::unbounded();
        let p = Rc::new(Partition {
            leader_epoch: Cell::new(leader_epoch),
            leading: Cell::new(true),
            tx: tx.clone(),
            offsets,
            waiters: RefCell::new(Vec::new()),
        });
        let tick = flush_tick(&log)
            .unwrap_or(Duration::MAX)
            .min(shard.config.retention_check_interval)
            .min(shard.config.cleaner_backoff);
        glommio::spawn_local(ticker(tx.clone(), tick)).detach();
        let weak = Rc::downgrade(&p);
        glommio::spawn_local(run(log, rx, tx, weak)).detach();
        Ok(p)
    }

    /// The leader epoch, while this replica leads and has committed all
    /// of its log (a new leader has its first entry of the term committed):
    /// reading up to the end then gives everything the partition holds.
    pub fn settled_leader(&self) -> Option<i32> {
        let o = &self.offsets;
        (self.leading.get() && o.high_watermark.get() >= o.end.get()).then(|| self.leader_epoch.get())
    }

    /// Kafka's check of the leader epoch a client names (`-1`: none): a
    /// replica that does not lead says so first, so that the client is
    /// pointed at the leader; an older epoch than this broker's metadata
    /// gives is fenced, a newer one is not known here yet. The metadata's
    /// epoch, as in Kafka, not the Raft term: a new leader's term reaches
    /// the metadata once it reports it, and a client told to refresh must
    /// find there the epoch it is then asked for.
    pub fn check_leader_epoch(&self, tp: &TopicPartition, current: i32) -> Result<(), ResponseError> {
        if current < 0 {
            return Ok(());
        }
        if !self.leading.get() {
            return Err(ResponseError::NotLeaderOrFollower);
        }
        let table = shard::current().topics();
        let published = table
            .get(&tp.topic)
            .and_then(|m| m.partitions.get(usize::try_from(tp.partition).ok()?))
            .map_or(self.leader_epoch.get(), |p| p.leader_epoch);
        match current.cmp(&published) {
            std::cmp::Ordering::Less => Err(ResponseError::FencedLeaderEpoch),
            std::cmp::Ordering::Greater => Err(ResponseError::UnknownLeaderEpoch),
            std::cmp::Ordering::Equal => Ok(()),
        }
    }

    pub async fn append(&self, batches: Vec<Vec<u8>>, acks: i16) -> Result<ProduceOutcome, PartitionError> {
        let (reply, rx) = flume::bounded(1);
        self.tx.send(Cmd::Append { batches, acks, reply }).map_err(|_| gone())?;
        rx.recv_async().await.map_err(|_| gone())?
    }

    pub async fn read(&self, offset: i64, max_bytes: usize) -> Result<Option<FileSlice>, PartitionError> {
        let (reply, rx) = flume::bounded(1);
        self.tx.send(Cmd::Read { offset, max_bytes, reply }).map_err(|_| gone())?;
        rx.recv_async().await.map_err(|_| gone())?
    }

    /// ListOffsets: -1 latest, -2 earliest, -3 max timestamp, else by time.
    /// Returns (offset, timestamp), or `None` when no record qualifies.
    pub async fn list_offset(&self, timestamp: i64) -> Result<Option<(i64, i64)>, PartitionError> {
        match timestamp {
            -1 => return Ok(Some((self.offsets.high_watermark.get(), -1))),
            -2 => return Ok(Some((self.offsets.log_start.get(), -1))),
            _ => {}
        }
        let (reply, rx) = flume::bounded(1);
        self.tx.send(Cmd::ListOffset { timestamp, reply }).map_err(|_| gone())?;
        rx.recv_async().await.map_err(|_| gone())?
    }

    /// The largest epoch at most `epoch` in the log and where its records
    /// end (Kafka's OffsetForLeaderEpoch answer; `(-1, -1)` when unknown).
    pub async fn end_offset_for_epoch(&self, epoch: i32) -> Result<(i32, i64), PartitionError> {
        let (reply, rx) = flume::bounded(1);
        self.tx.send(Cmd::EpochEnd { epoch, reply }).map_err(|_| gone())?;
        rx.recv_async().await.map_err(|_| gone())
    }

    /// Resolves when the next append lands (or the sender is dropped).
    pub fn subscribe(&self, waker: flume::Sender<()>) {
        self.waiters.borrow_mut().push(waker);
    }

    fn wake_waiters(&self) {
        for w in self.waiters.borrow_mut().drain(..) {
            let _ = w.try_send(());
        }
    }

    pub fn set_config(&self, config: sluice_storage::LogConfig) {
        let _ = self.tx.send(Cmd::SetConfig(config));
    }

    /// Returns the new log start offset. `before == -1` means the high watermark.
    pub async fn delete_records(&self, before: i64) -> Result<i64, PartitionError> {
        let (reply, rx) = flume::bounded(1);
        self.tx.send(Cmd::DeleteRecords { before, reply }).map_err(|_| gone())?;
        rx.recv_async().await.map_err(|_| gone())?
    }

    /// Hands a message from another replica to the partition's Raft group.
    pub fn raft_message(&self, msg: sluice_consensus::Message) {
        let _ = self.tx.send(Cmd::Raft(msg));
    }

    pub async fn close(&self, delete: bool) {
        let (reply, rx) = flume::bounded(1);
        if self.tx.send(Cmd::Close { delete, reply }).is_ok() {
            let _ = rx.recv_async().await;
        }
    }
}

struct Waiting {
    upto: i64,
    outcome: ProduceOutcome,
    reply: flume::Sender<Result<ProduceOutcome, PartitionError>>,
}

/// The task that owns a partition's log.
async fn run(mut log: Log, rx: flume::Receiver<Cmd>, me: flume::Sender<Cmd>, partition: std::rc::Weak<Partition>) {
    let mut waiting: VecDeque<Waiting> = VecDeque::new();
    let mut flushing = false;
    let retention_every = shard::current().config.retention_check_interval;
    let mut next_retention = Instant::now() + retention_every;
    let (cleaner_enabled, clean_every) = {
        let c = &shard::current().config;
        (c.cleaner_enable, c.cleaner_backoff)
    };
    let mut next_clean = Instant::now() + clean_every;
    // Set while a compaction pass runs: the abort switch for it.
    let mut cleaning: Option<Rc<Cell<bool>>> = None;
    while let Ok(cmd) = rx.recv_async().await {
        if let Cmd::Tick = cmd {
            if !flushing && log.flush_due(Instant::now()) {
                flushing = start_flush(&log, &me);
            }
            if cleaner_enabled && cleaning.is_none() && Instant::now() >= next_clean {
                next_clean = Instant::now() + clean_every;
                cleaning = start_cleaning(|| log.plan_clean(now_ms()), &me);
            }
            if Instant::now() >= next_retention {
                next_retention = Instant::now() + retention_every;
                match log.enforce_retention(now_ms()).await {
                    Ok(n) if n > 0 => {
                        tracing::info!(dir = %log.dir().display(), segments = n, "retention deleted segments")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(%e, "retention failed"),
                }
                let expiry = shard::current().config.producer_id_expiration_ms;
                log.producers_mut().expire(now_ms().saturating_sub(expiry));
                if let Some(p) = partition.upgrade() {
                    p.offsets.update(&log);
                }
            }
            continue;
        }
        match cmd {
            Cmd::Tick => {}
            Cmd::SetConfig(config) => log.set_config(config),
            Cmd::DeleteRecords { before, reply } => {
                let before = if before == -1 { log.log_end_offset() } else { before };
                let r = log.delete_records(before).await.map_err(storage_error);
                if let Some(p) = partition.upgrade() {
                    p.offsets.update(&log);
                }
                let _ = reply.send(r);
            }
            Cmd::Append { batches, acks, reply } => {
                let result = append_all(&mut log, batches).await;
                if let Some(p) = partition.upgrade() {
                    p.offsets.update(&log);
                    p.wake_waiters();
                }
                match result {
                    Ok((outcome, upto)) if acks == -1 && log.durable_offset() < upto => {
                        waiting.push_back(Waiting { upto, outcome, reply });
                        if !flushing {
                            flushing = start_flush(&log, &me);
                        }
                    }
                    other => {
                        let _ = reply.send(other.map(|(o, _)| o));
                    }
                }
            }
            Cmd::Flushed { upto, result } => {
                flushing = false;
                match result {
                    Ok(()) => log.mark_durable(upto),
                    Err(e) => {
                        tracing::error!(dir = %log.dir().display(), %e, "flush failed");
                        while waiting.front().is_some_and(|w| w.upto <= upto) {
                            let w = waiting.pop_front().unwrap();
                            let _ = w.reply.send(Err((ResponseError::KafkaStorageError, e.clone())));
                        }
                    }
                }
                while waiting.front().is_some_and(|w| w.upto <= log.durable_offset()) {
                    let w = waiting.pop_front().unwrap();
                    let _ = w.reply.send(Ok(w.outcome));
                }
                if !waiting.is_empty() {
                    flushing = start_flush(&log, &me);
                }
            }
            Cmd::Cleaned(result) => {
                cleaning = None;
                let dir = log.dir().to_path_buf();
                match result {
                    Ok(Some(outcome)) => {
                        let stats = outcome.stats.clone();
                        log_swap(&dir, &stats, log.finish_clean(outcome).await);
                        if let Some(p) = partition.upgrade() {
                            p.offsets.update(&log);
                        }
                    }
                    Ok(None) => {}
                    Err(e) => tracing::error!(dir = %dir.display(), %e, "compaction failed"),
                }
            }
            Cmd::Read { offset, max_bytes, reply } => {
                // Plan here, do the I/O in a task of its own: the log moves on.
                match log.plan_read(offset, max_bytes) {
                    Ok(plan) => {
                        glommio::spawn_local(async move {
                            let _ = reply.send(plan.run().await.map_err(storage_error));
                        })
                        .detach();
                    }
                    Err(e) => {
                        let _ = reply.send(Err(storage_error(e)));
                    }
                }
            }
            Cmd::ListOffset { timestamp, reply } => {
                let r =
                    if timestamp == -3 { log.max_timestamp().await } else { log.offset_for_timestamp(timestamp).await };
                let _ = reply.send(r.map_err(storage_error));
            }
            Cmd::EpochEnd { epoch, reply } => {
                let _ = reply.send(log.epochs().end_offset_for(epoch, log.log_end_offset()));
            }
            Cmd::Raft(_) => {}
            Cmd::Close { delete, reply } => {
                if let Some(abort) = cleaning.take() {
                    abort.set(true);
                }
                // Answer what waits on a flush, then leave nothing unflushed.
                let flushed = log.flush().await;
                for w in waiting.drain(..) {
                    let _ = w.reply.send(match &flushed {
                        Ok(()) => Ok(w.outcome),
                        Err(e) => Err((ResponseError::KafkaStorageError, e.to_string())),
                    });
                }
                let dir = log.dir().to_path_buf();
                let r = if delete { log.delete().await } else { log.close().await };
                if let Err(e) = r {
                    tracing::error!(dir = %dir.display(), %e, "closing log failed");
                }
                let _ = reply.send(());
                return;
            }
        }
    }
}

/// Sends `Tick` every `every` until the partition's task is gone.
async fn ticker(tx: flume::Sender<Cmd>, every: Duration) {
    loop {
        glommio::timer::sleep(every).await;
        if tx.send(Cmd::Tick).is_err() {
            return;
        }
    }
}

fn flush_tick(log: &Log) -> Option<Duration> {
    sluice_storage::log::flush_interval(log.config()).map(|d| d.max(Duration::from_millis(1)))
}

thread_local! {
    /// One compaction pass at a time per shard: it bounds the offset map's
    /// memory (as Kafka's one cleaner thread does) and the shard's disk
    /// bandwidth spent on cleaning.
    static SHARD_CLEANING: Cell<bool> = const { Cell::new(false) };
    /// Cleaning runs in a task queue with a small share of the shard, so
    /// appends and fetches go first when both have work.
    static CLEANER_QUEUE: OnceCell<glommio::TaskQueueHandle> = const { OnceCell::new() };
}

/// Starts a compaction pass if one is due (`plan` is asked only when no
/// other pass runs on the shard); returns its abort switch.
fn start_cleaning(plan: impl FnOnce() -> Option<CleanPlan>, me: &flume::Sender<Cmd>) -> Option<Rc<Cell<bool>>> {
    if SHARD_CLEANING.get() {
        return None;
    }
    let plan = plan()?;
    let abort = plan.abort_handle();
    let queue = CLEANER_QUEUE.with(|q| {
        *q.get_or_init(|| {
            glommio::executor().create_task_queue(
                glommio::Shares::Static(100),
                glommio::Latency::NotImportant,
                "log-cleaner",
            )
        })
    });
    let me = me.clone();
    SHARD_CLEANING.set(true);
    let task = glommio::spawn_local_into(
        async move {
            let result = plan.run(Some(&crate::codec::KafkaCodecs)).await;
            SHARD_CLEANING.set(false);
            let _ = me.send(Cmd::Cleaned(result));
        },
        queue,
    );
    match task {
        Ok(t) => {
            t.detach();
            Some(abort)
        }
        Err(e) => {
            SHARD_CLEANING.set(false);
            tracing::error!(%e, "cannot start the log cleaner");
            None
        }
    }
}

/// What became of a finished compaction pass, in the log.
fn log_swap(dir: &std::path::Path, stats: &sluice_storage::CleanStats, swapped: Result<bool, impl std::fmt::Display>) {
    match swapped {
        Ok(true) => tracing::info!(
            dir = %dir.display(),
            bytes_before = stats.bytes_read,
            bytes_after = stats.bytes_written,
            records_kept = stats.records_kept,
            records_read = stats.records_read,
            tombstones_dropped = stats.tombstones_dropped,
            "compacted"
        ),
        Ok(false) => tracing::debug!(dir = %dir.display(), "compaction result outdated, dropped"),
        Err(e) => tracing::error!(dir = %dir.display(), %e, "swapping in compacted segments failed"),
    }
}

fn start_flush(log: &Log, me: &flume::Sender<Cmd>) -> bool {
    let Some(pending) = log.pending_flush() else { return false };
    let me = me.clone();
    glommio::spawn_local(async move {
        let result = pending.run().await.map_err(|e| e.to_string());
        let _ = me.send(Cmd::Flushed { upto: pending.upto, result });
    })
    .detach();
    true
}

/// Appends the batches of one produce; returns the outcome and the offset
/// after the last batch. A batch refused leaves the ones before it in place,
/// as on Kafka, but the produce fails as a whole.
async fn append_all(log: &mut Log, batches: Vec<Vec<u8>>) -> Result<(ProduceOutcome, i64), PartitionError> {
    let mut first: Option<AppendInfo> = None;
    let mut upto = log.log_end_offset();
    for b in batches {
        let info = log.append(b).await.map_err(storage_error)?;
        upto = upto.max(info.last_offset + 1);
        first.get_or_insert(info);
    }
    let info = first.ok_or((ResponseError::CorruptMessage, "no record batch in the produce".into()))?;
    Ok((
        ProduceOutcome {
            base_offset: info.base_offset,
            log_append_time: info.log_append_time.unwrap_or(-1),
            log_start_offset: log.log_start_offset(),
        },
        upto,
    ))
}

/// Opens the partitions of `topics` that this shard owns.
pub async fn open_owned(topics: &[Arc<TopicMeta>]) -> Result<(), String> {
    let shard = shard::current();
    for t in topics {
        for (i, p) in t.partitions.iter().enumerate() {
            if p.shard != Some(shard.id) {
                continue;
            }
            let tp = TopicPartition::new(&t.name, i as i32);
            if shard.partitions.borrow().contains_key(&tp) {
                continue;
            }
            let part = Partition::open(tp.clone(), t).await?;
            shard.partitions.borrow_mut().insert(tp, part);
        }
    }
    Ok(())
}

/// Closes and deletes the partitions of `topics` that this shard owns.
pub async fn delete_owned(topics: &[Arc<TopicMeta>]) {
    let shard = shard::current();
    for t in topics {
        for i in 0..t.partitions.len() {
            let tp = TopicPartition::new(&t.name, i as i32);
            let removed = shard.partitions.borrow_mut().remove(&tp);
            if let Some(p) = removed {
                p.close(true).await;
            }
        }
    }
}

/// Closes and deletes one partition's replica on this shard.
pub async fn delete_one(tp: &TopicPartition) {
    let removed = shard::current().partitions.borrow_mut().remove(tp);
    if let Some(p) = removed {
        p.close(true).await;
    }
}

/// Closes every partition of this shard (clean shutdown).
pub async fn close_all() {
    let shard = shard::current();
    let parts: Vec<_> = shard.partitions.borrow_mut().drain().map(|(_, p)| p).collect();
    for p in parts {
        p.close(false).await;
    }
}
