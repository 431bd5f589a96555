//! One partition's log: an ordered list of segments, the last one active.
//!
//! Files in a log's directory:
//! - `<base>.log`, `<base>.index`, `<base>.timeindex`: the segments;
//! - `<offset>.snapshot`: producer state as of `offset`, written on roll and close;
//! - `log-start-offset`: moved by retention and `delete_records`;
//! - `clean-shutdown`: present only between a clean close and the next open.
//!
//! Invariant: every segment but the active one has been fdatasync'd (a roll
//! seals the old segment first), so after a crash only the active segment
//! can hold a torn tail and only it is re-validated.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use glommio::io::ReadResult;

use crate::batch::{self, BatchHeader};
use crate::config::{FlushPolicy, LogConfig};
use crate::error::{BatchError, Result, StorageError};
use crate::io::{read_small, remove_if_exists, sync_dir, write_small, SegmentFile};
use crate::producer::{ProducerState, SeqCheck};
use crate::segment::{self, hop, locate, Segment, Tail};

const CLEAN_SHUTDOWN: &str = "clean-shutdown";
const LOG_START_OFFSET: &str = "log-start-offset";
/// Producer snapshots kept besides the newest.
const SNAPSHOTS_KEPT: usize = 2;

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The broker's timestamp when the log stamps LogAppendTime.
    pub log_append_time: Option<i64>,
    /// A retried idempotent batch: nothing was written, these are its
    /// original offsets.
    pub duplicate: bool,
}

/// What `open` found and repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    pub clean_shutdown: bool,
    pub truncated_bytes: u64,
    pub replayed_batches: u64,
}

/// A byte range of a segment file holding whole batches, except that the
/// last may be cut by `max_bytes` (as Kafka's own fetch does). Holding it
/// keeps the file open even if retention deletes the segment.
pub struct FileSlice {
    pub file: Rc<SegmentFile>,
    pub position: u64,
    pub len: usize,
    /// From the segment being appended to: recent, so likely in the page cache.
    pub in_active_segment: bool,
}

impl FileSlice {
    /// The bytes, for callers that cannot `sendfile` the range.
    pub async fn read(&self) -> Result<ReadResult> {
        self.file.read_at(self.position, self.len).await
    }

    /// The same range behind a descriptor any thread may use.
    pub fn shared(&self) -> SharedSlice {
        SharedSlice { fd: self.file.shared_fd(), position: self.position, len: self.len }
    }
}

/// A `FileSlice` that can cross to another shard: a duplicate descriptor
/// (kept open while held), a position and a length.
#[derive(Clone, Debug)]
pub struct SharedSlice {
    pub fd: Arc<OwnedFd>,
    pub position: u64,
    pub len: usize,
}

/// The I/O-free half of a read, taken while the log is borrowed; running it
/// needs only the segment files, so appends can go on meanwhile.
pub struct ReadPlan {
    offset: i64,
    max_bytes: usize,
    /// (file, where to start looking, bytes of data in the file, active)
    candidates: Vec<(Rc<SegmentFile>, u64, u64, bool)>,
}

impl ReadPlan {
    /// `None` when there is nothing at or after the offset yet.
    pub async fn run(self) -> Result<Option<FileSlice>> {
        for (file, from, end, in_active_segment) in self.candidates {
            if let Some((position, first)) = locate(&file, from, end, self.offset).await? {
                let len = (end - position).min(self.max_bytes.max(first) as u64) as usize;
                return Ok(Some(FileSlice { file, position, len, in_active_segment }));
            }
        }
        Ok(None)
    }
}

pub struct Log {
    dir: PathBuf,
    config: LogConfig,
    segments: Vec<Segment>,
    log_start_offset: i64,
    durable_offset: i64,
    unflushed_messages: u64,
    last_flush: Instant,
    producers: ProducerState,
    recovery: Recovery,
    /// Stamped into every appended batch's partitionLeaderEpoch (-1: leave).
    leader_epoch: i32,
}

impl Log {
    pub async fn open(dir: &Path, config: LogConfig) -> Result<Log> {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
        // glommio resolves relative paths against no directory at all.
        let dir = &std::fs::canonicalize(dir).map_err(|e| StorageError::io(dir, e))?;
        let mut bases = Vec::new();
        let mut snapshots = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))? {
            let path = entry.map_err(|e| StorageError::io(dir, e))?.path();
            let (Some(stem), Some(ext)) = (path.file_stem().and_then(|s| s.to_str()), path.extension()) else {
                continue;
            };
            match (stem.parse::<i64>(), ext.to_str()) {
                (Ok(base), Some("log")) => bases.push(base),
                (Ok(off), Some("snapshot")) => snapshots.push(off),
                (_, Some("tmp")) => remove_if_exists(&path).await?,
                _ => {}
            }
        }
        bases.sort_unstable();
        snapshots.sort_unstable();
        let clean = dir.join(CLEAN_SHUTDOWN).exists();
        let saved_start = match read_small(&dir.join(LOG_START_OFFSET)).await? {
            Some(b) => String::from_utf8_lossy(&b).trim().parse::<i64>().ok(),
            None => None,
        };
        let mut recovery = Recovery { clean_shutdown: clean, ..Recovery::default() };
        let mut segments = Vec::with_capacity(bases.len().max(1));
        for (i, &base) in bases.iter().enumerate() {
            let last = i + 1 == bases.len();
            let (seg, tail) = Segment::open(dir, base, config.index_interval_bytes, last && !clean).await?;
            if let Tail::Truncated { dropped, .. } = tail {
                recovery.truncated_bytes += dropped;
            }
            segments.push(seg);
        }
        if segments.is_empty() {
            segments.push(Segment::create(dir, saved_start.unwrap_or(0).max(0), config.index_interval_bytes).await?);
        }
        let first_base = segments[0].base_offset;
        let end = segments.last().unwrap().next_offset();
        let mut log = Log {
            dir: dir.to_path_buf(),
            config,
            segments,
            log_start_offset: saved_start.unwrap_or(first_base).clamp(first_base, end),
            durable_offset: end,
            unflushed_messages: 0,
            last_flush: Instant::now(),
            producers: ProducerState::default(),
            recovery,
            leader_epoch: -1,
        };
        log.load_producer_state(&snapshots).await?;
        remove_if_exists(&dir.join(CLEAN_SHUTDOWN)).await?;
        sync_dir(dir).await?;
        Ok(log)
    }

    /// Newest usable snapshot at or below the end, then the batches after it.
    async fn load_producer_state(&mut self, snapshots: &[i64]) -> Result<()> {
        let end = self.log_end_offset();
        let mut from = self.segments[0].base_offset;
        for &off in snapshots.iter().rev() {
            let path = segment::file_name(&self.dir, off, "snapshot");
            if off > end {
                remove_if_exists(&path).await?;
                continue;
            }
            if let Some(state) = read_small(&path).await?.and_then(|b| ProducerState::decode(&b)) {
                self.producers = state;
                from = off;
                break;
            }
        }
        let mut replayed = 0;
        for seg in self.segments.iter().filter(|s| s.next_offset() > from) {
            let producers = &mut self.producers;
            let ok = hop(seg.file(), seg.position_hint(from), seg.size(), |_, h| {
                if h.base_offset >= from {
                    producers.update(h);
                    replayed += 1;
                }
                true
            })
            .await?;
            if !ok {
                return Err(StorageError::Corrupt {
                    path: seg.path("log"),
                    position: 0,
                    reason: "framing broke while replaying producer state".into(),
                });
            }
        }
        self.recovery.replayed_batches = replayed;
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn config(&self) -> &LogConfig {
        &self.config
    }
    /// Takes effect from the next append, roll or retention pass.
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }
    /// The partition leader epoch written into batches appended from now on.
    pub fn set_leader_epoch(&mut self, epoch: i32) {
        self.leader_epoch = epoch;
    }

    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }
    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }
    /// Every offset below this has been fdatasync'd.
    pub fn durable_offset(&self) -> i64 {
        self.durable_offset
    }
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size()).sum()
    }
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
    pub fn segment_bases(&self) -> Vec<i64> {
        self.segments.iter().map(|s| s.base_offset).collect()
    }
    pub fn producers(&self) -> &ProducerState {
        &self.producers
    }
    pub fn producers_mut(&mut self) -> &mut ProducerState {
        &mut self.producers
    }

    fn active(&self) -> &Segment {
        self.segments.last().unwrap()
    }
    fn active_mut(&mut self) -> &mut Segment {
        self.segments.last_mut().unwrap()
    }

    pub async fn append(&mut self, batch: Vec<u8>) -> Result<AppendInfo> {
        self.append_at(batch, now_ms()).await
    }

    /// Validates one producer batch as received, assigns its offsets (and
    /// LogAppendTime) in place and writes it. The bytes go to the kernel
    /// without another copy.
    pub async fn append_at(&mut self, mut bytes: Vec<u8>, now_ms: i64) -> Result<AppendInfo> {
        if bytes.len() > self.config.max_batch_bytes {
            return Err(BatchError::TooLarge { size: bytes.len(), max: self.config.max_batch_bytes }.into());
        }
        let h = batch::validate(&bytes)?;
        if let SeqCheck::Duplicate { first_offset, last_offset } = self.producers.check(&h)? {
            return Ok(AppendInfo { base_offset: first_offset, last_offset, log_append_time: None, duplicate: true });
        }
        if self.should_roll(&h, bytes.len()) {
            self.roll().await?;
        }
        let base_offset = self.log_end_offset();
        batch::set_base_offset(&mut bytes, base_offset);
        if self.leader_epoch >= 0 {
            batch::set_leader_epoch(&mut bytes, self.leader_epoch);
        }
        let log_append_time = self.config.log_append_time.then(|| {
            batch::set_log_append_time(&mut bytes, now_ms);
            now_ms
        });
        let h = BatchHeader::read(&bytes);
        self.active_mut().append(bytes, &h).await?;
        self.producers.update(&h);
        self.unflushed_messages += h.record_count as u64;
        match self.config.flush {
            FlushPolicy::EveryAppend => self.flush().await?,
            FlushPolicy::Interval { messages: Some(m), .. } if self.unflushed_messages >= m => self.flush().await?,
            FlushPolicy::Interval { .. } => {}
        }
        Ok(AppendInfo { base_offset, last_offset: h.last_offset(), log_append_time, duplicate: false })
    }

    fn should_roll(&self, h: &BatchHeader, len: usize) -> bool {
        let seg = self.active();
        if seg.is_empty() {
            return false;
        }
        let too_big = seg.size() + len as u64 > self.config.segment_bytes;
        let too_old = match (self.config.segment_ms, seg.first_timestamp()) {
            (Some(ms), Some(first)) => {
                let ts = if self.config.log_append_time { now_ms() } else { h.max_timestamp };
                ts.saturating_sub(first) >= ms.as_millis() as i64
            }
            _ => false,
        };
        // Index entries hold offsets relative to the base as u32.
        let offsets_full = self.log_end_offset() + h.last_offset_delta as i64 - seg.base_offset > u32::MAX as i64;
        too_big || too_old || offsets_full || seg.size() + len as u64 > u32::MAX as u64
    }

    /// Whether `flush.ms` has passed with unflushed data.
    pub fn flush_due(&self, now: Instant) -> bool {
        match self.config.flush {
            FlushPolicy::Interval { interval: Some(i), .. } => {
                self.durable_offset < self.log_end_offset() && now.duration_since(self.last_flush) >= i
            }
            _ => false,
        }
    }

    /// Returns once everything appended so far is on stable storage.
    pub async fn flush(&mut self) -> Result<()> {
        if let Some(pending) = self.pending_flush() {
            pending.run().await?;
            self.mark_durable(pending.upto);
        }
        Ok(())
    }

    /// A flush that can run while appends go on (group commit): run it, then
    /// `mark_durable(upto)`.
    pub fn pending_flush(&self) -> Option<PendingFlush> {
        let upto = self.log_end_offset();
        (upto > self.durable_offset).then(|| PendingFlush { file: self.active().file().clone(), upto })
    }

    pub fn mark_durable(&mut self, upto: i64) {
        if upto > self.durable_offset {
            self.durable_offset = upto.min(self.log_end_offset());
            self.unflushed_messages = 0;
            self.last_flush = Instant::now();
        }
    }

    pub fn plan_read(&self, offset: i64, max_bytes: usize) -> Result<ReadPlan> {
        let (start, end) = (self.log_start_offset, self.log_end_offset());
        if offset < start || offset > end {
            return Err(StorageError::OffsetOutOfRange { offset, start, end });
        }
        let i = self.segments.partition_point(|s| s.base_offset <= offset).saturating_sub(1);
        let last = self.segments.len() - 1;
        let candidates = self.segments[i..]
            .iter()
            .take(3)
            .enumerate()
            .map(|(n, s)| {
                let from = if n == 0 { s.position_hint(offset) } else { 0 };
                (s.file().clone(), from, s.size(), i + n == last)
            })
            .collect();
        Ok(ReadPlan { offset, max_bytes, candidates })
    }

    /// The batches from the one holding `offset`, up to `max_bytes` but at
    /// least one batch. `None` at the log end.
    pub async fn read(&self, offset: i64, max_bytes: usize) -> Result<Option<FileSlice>> {
        self.plan_read(offset, max_bytes)?.run().await
    }

    /// ListOffsets by timestamp: the first offset whose record timestamp is
    /// `>= ts`, with that timestamp. Records of compressed batches are not
    /// opened: such a batch answers with its first offset and max timestamp.
    pub async fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>> {
        for seg in &self.segments {
            if seg.next_offset() <= self.log_start_offset || seg.max_timestamp().is_none_or(|(m, _)| m < ts) {
                continue;
            }
            let mut found = None;
            let start = self.log_start_offset;
            hop(seg.file(), seg.timestamp_hint(ts), seg.size(), |pos, h| {
                if h.max_timestamp >= ts && h.last_offset() >= start {
                    found = Some((pos, *h));
                    false
                } else {
                    true
                }
            })
            .await?;
            let Some((pos, h)) = found else { continue };
            let bytes = seg.file().read_at(pos, h.size).await?;
            let hit = batch::record_timestamps(&bytes)
                .and_then(|records| records.into_iter().find(|&(t, o)| t >= ts && o >= start))
                .map(|(t, o)| (o, t));
            return Ok(Some(hit.unwrap_or((h.base_offset.max(start), h.max_timestamp))));
        }
        Ok(None)
    }

    /// ListOffsets MAX_TIMESTAMP (KIP-734): the offset of the record with the
    /// largest timestamp (the first such), with that timestamp.
    pub async fn max_timestamp(&self) -> Result<Option<(i64, i64)>> {
        let mut best: Option<(&Segment, i64, i64)> = None;
        for seg in &self.segments {
            if let Some((ts, off)) = seg.max_timestamp() {
                if seg.next_offset() > self.log_start_offset && best.is_none_or(|(_, t, _)| ts > t) {
                    best = Some((seg, ts, off));
                }
            }
        }
        let Some((seg, ts, batch_base)) = best else {
            return Ok(None);
        };
        let Some((pos, size)) = locate(seg.file(), seg.position_hint(batch_base), seg.size(), batch_base).await? else {
            return Ok(None);
        };
        let bytes = seg.file().read_at(pos, size).await?;
        let h = BatchHeader::read(&bytes);
        let offset = batch::record_timestamps(&bytes)
            .and_then(|r| r.into_iter().find(|&(t, _)| t == ts).map(|(_, o)| o))
            .unwrap_or(h.last_offset());
        Ok(Some((offset.max(self.log_start_offset), ts)))
    }

    /// Seals the active segment and starts a new one at the log end.
    pub async fn roll(&mut self) -> Result<()> {
        if self.active().is_empty() {
            return Ok(());
        }
        let end = self.log_end_offset();
        self.active_mut().seal().await?;
        self.mark_durable(end);
        self.write_snapshot(end).await?;
        let seg = Segment::create(&self.dir, end, self.config.index_interval_bytes).await?;
        self.segments.push(seg);
        sync_dir(&self.dir).await
    }

    async fn write_snapshot(&self, offset: i64) -> Result<()> {
        write_small(&segment::file_name(&self.dir, offset, "snapshot"), self.producers.encode()).await?;
        // Keep the newest few; older ones are never read again.
        let mut snaps: Vec<i64> = std::fs::read_dir(&self.dir)
            .map_err(|e| StorageError::io(&self.dir, e))?
            .filter_map(|e| {
                let p = e.ok()?.path();
                (p.extension()? == "snapshot").then_some(())?;
                p.file_stem()?.to_str()?.parse().ok()
            })
            .collect();
        snaps.sort_unstable();
        let keep = snaps.len().saturating_sub(SNAPSHOTS_KEPT + 1);
        for off in &snaps[..keep] {
            remove_if_exists(&segment::file_name(&self.dir, *off, "snapshot")).await?;
        }
        Ok(())
    }

    /// Deletes whole segments from the head that `retention.ms` (by their
    /// largest timestamp) or `retention.bytes` no longer allow. Returns how
    /// many were deleted. An expired active segment is rolled first.
    pub async fn enforce_retention(&mut self, now_ms: i64) -> Result<usize> {
        let mut deleted = 0;
        loop {
            let total = self.size_bytes();
            let first = &self.segments[0];
            let expired = self
                .config
                .retention_ms
                .is_some_and(|r| first.max_timestamp().is_some_and(|(ts, _)| ts < now_ms - r.as_millis() as i64));
            let oversize = self.config.retention_bytes.is_some_and(|r| total - first.size() >= r);
            if first.is_empty() || !(expired || oversize) {
                break;
            }
            self.delete_first_segment().await?;
            deleted += 1;
        }
        if deleted > 0 {
            self.save_log_start_offset().await?;
        }
        Ok(deleted)
    }

    async fn delete_first_segment(&mut self) -> Result<()> {
        if self.segments.len() == 1 {
            self.roll().await?;
        }
        let seg = self.segments.remove(0);
        seg.delete().await?;
        self.log_start_offset = self.log_start_offset.max(self.segments[0].base_offset);
        Ok(())
    }

    /// DeleteRecords: moves the log start offset to `before` and drops the
    /// segments wholly below it. Returns the new log start offset.
    pub async fn delete_records(&mut self, before: i64) -> Result<i64> {
        let end = self.log_end_offset();
        if before < 0 || before > end {
            return Err(StorageError::OffsetOutOfRange { offset: before, start: self.log_start_offset, end });
        }
        if before <= self.log_start_offset {
            return Ok(self.log_start_offset);
        }
        self.log_start_offset = before;
        while !self.segments[0].is_empty() && self.segments[0].next_offset() <= before {
            self.delete_first_segment().await?;
        }
        self.save_log_start_offset().await?;
        Ok(self.log_start_offset)
    }

    async fn save_log_start_offset(&self) -> Result<()> {
        write_small(&self.dir.join(LOG_START_OFFSET), self.log_start_offset.to_string().into_bytes()).await
    }

    /// Flushes, saves indexes and producer state, and marks the shutdown
    /// clean so the next open trusts them.
    pub async fn close(mut self) -> Result<()> {
        self.flush().await?;
        self.active().write_indexes().await?;
        self.write_snapshot(self.log_end_offset()).await?;
        write_small(&self.dir.join(CLEAN_SHUTDOWN), Vec::new()).await
    }

    /// Deletes the whole log (DeleteTopics).
    pub async fn delete(self) -> Result<()> {
        std::fs::remove_dir_all(&self.dir).map_err(|e| StorageError::io(&self.dir, e))
    }
}

pub struct PendingFlush {
    file: Rc<SegmentFile>,
    pub upto: i64,
}

impl PendingFlush {
    pub async fn run(&self) -> Result<()> {
        self.file.sync().await
    }
}

/// How long since `flush.ms` is due, for callers scheduling a timer.
pub fn flush_interval(config: &LogConfig) -> Option<Duration> {
    match config.flush {
        FlushPolicy::Interval { interval, .. } => interval,
        FlushPolicy::EveryAppend => None,
    }
}
