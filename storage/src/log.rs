//! One partition's log: an ordered list of segments, the last one active.
//!
//! Files in a log's directory:
//! - `<base>.log`, `<base>.index`, `<base>.timeindex`: the segments;
//! - `<offset>.snapshot`: producer state as of `offset`, written on roll and close;
//! - `log-start-offset`: moved by retention and `delete_records`;
//! - `leader-epoch-checkpoint`: the first offset of each leader epoch
//!   (`EpochCache`), rewritten when an epoch begins or the log is cut;
//! - `clean-shutdown`: present only between a clean close and the next open;
//! - `cleaner-offset-checkpoint`: where the dirty part of a compacted log
//!   starts, and when its earliest kept tombstone expires;
//! - `<base>.log.cleaned` (and indexes): a cleaning pass's output, and
//!   `cleaner-swap`: the manifest that commits swapping it in (see
//!   `Log::finish_clean`).
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
use crate::cleaner::{CleanOutcome, CleanPlan, Source};
use crate::config::{FlushPolicy, LogConfig};
use crate::epochs::EpochCache;
use crate::error::{BatchError, Result, StorageError};
use crate::io::{read_small, remove_if_exists, sync_dir, write_small, SegmentFile};
use crate::producer::{ProducerState, SeqCheck};
use crate::segment::{self, cleaned_name, hop, locate, Segment, Tail};

const CLEAN_SHUTDOWN: &str = "clean-shutdown";
const LOG_START_OFFSET: &str = "log-start-offset";
const CLEANER_CHECKPOINT: &str = "cleaner-offset-checkpoint";
const CLEAN_SWAP: &str = "cleaner-swap";
const EPOCHS: &str = "leader-epoch-checkpoint";
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
    /// Offsets below this have been compacted (Kafka's cleaner checkpoint).
    first_dirty: i64,
    /// When the earliest tombstone the cleaner kept may be dropped: a pass
    /// is due then even if nothing else is dirty.
    tombstone_deadline: Option<i64>,
    /// A swap failed half way: the files on disk are only consistent again
    /// after a reopen, so no more cleaning until then.
    cleaner_broken: bool,
    epochs: EpochCache,
}

impl Log {
    pub async fn open(dir: &Path, config: LogConfig) -> Result<Log> {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
        // glommio resolves relative paths against no directory at all.
        let dir = &std::fs::canonicalize(dir).map_err(|e| StorageError::io(dir, e))?;
        finish_interrupted_swap(dir).await?;
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
                // A cleaning pass that had not committed: its input is intact.
                (_, Some(segment::CLEANED)) => remove_if_exists(&path).await?,
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
        let (first_dirty, tombstone_deadline) = match read_small(&dir.join(CLEANER_CHECKPOINT)).await? {
            Some(b) => {
                let text = String::from_utf8_lossy(&b);
                let mut it = text.split_whitespace().map(|v| v.parse::<i64>().ok());
                (it.next().flatten().unwrap_or(0), it.next().flatten().filter(|&d| d >= 0))
            }
            None => (0, None),
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
            first_dirty,
            tombstone_deadline,
            cleaner_broken: false,
            epochs: EpochCache::default(),
        };
        log.load_epochs().await?;
        log.load_producer_state(&snapshots).await?;
        remove_if_exists(&dir.join(CLEAN_SHUTDOWN)).await?;
        sync_dir(dir).await?;
        Ok(log)
    }

    /// The saved epoch cache, cut to the log as it is; a log without one
    /// (written before it was kept) starts it from its first batch.
    async fn load_epochs(&mut self) -> Result<()> {
        let saved = read_small(&self.dir.join(EPOCHS)).await?;
        let mut epochs = match saved.as_deref().map(EpochCache::decode) {
            Some(Some(c)) => c,
            Some(None) => {
                tracing::warn!(dir = %self.dir.display(), "leader-epoch-checkpoint not understood; starting it again");
                EpochCache::default()
            }
            None => EpochCache::default(),
        };
        let end = self.log_end_offset();
        epochs.truncate_from(end);
        epochs.truncate_before(self.log_start_offset);
        if epochs.latest().is_none() && end > self.log_start_offset {
            let first = self.segments.iter().find(|s| !s.is_empty()).expect("a non-empty log has a batch");
            let head = first.file().read_at(0, batch::HEADER_LEN).await?;
            if head.len() == batch::HEADER_LEN {
                epochs.assign(BatchHeader::read(&head).leader_epoch, self.log_start_offset);
            }
        }
        let changed = saved.is_none_or(|b| b != epochs.encode());
        self.epochs = epochs;
        if changed {
            self.save_epochs().await?;
        }
        Ok(())
    }

    async fn save_epochs(&self) -> Result<()> {
        write_small(&self.dir.join(EPOCHS), self.epochs.encode()).await
    }

    /// The first offset of each leader epoch in the log.
    pub fn epochs(&self) -> &EpochCache {
        &self.epochs
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
        self.write_batch(bytes, &h).await?;
        Ok(AppendInfo { base_offset, last_offset: h.last_offset(), log_append_time, duplicate: false })
    }

    /// Appends a batch exactly as the leader wrote it (a follower's copy):
    /// its offsets, leader epoch and timestamps are kept, its producer
    /// state applied without the leader's checks. It must start at the log
    /// end.
    pub async fn append_replica(&mut self, bytes: Vec<u8>) -> Result<AppendInfo> {
        let h = batch::validate_stored(&bytes)?;
        let end = self.log_end_offset();
        if h.base_offset != end {
            return Err(StorageError::OffsetOutOfRange { offset: h.base_offset, start: self.log_start_offset, end });
        }
        if self.should_roll(&h, bytes.len()) {
            self.roll().await?;
        }
        self.write_batch(bytes, &h).await?;
        Ok(AppendInfo {
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
            log_append_time: None,
            duplicate: false,
        })
    }

    /// Writes a batch whose header is final at the log end, then does what
    /// follows every append: producer state, the epoch cache, the flush
    /// policy.
    async fn write_batch(&mut self, bytes: Vec<u8>, h: &BatchHeader) -> Result<()> {
        self.active_mut().append(bytes, h).await?;
        self.producers.update(h);
        if self.epochs.assign(h.leader_epoch, h.base_offset) {
            self.save_epochs().await?;
        }
        self.unflushed_messages += h.record_count as u64;
        match self.config.flush {
            FlushPolicy::EveryAppend => self.flush().await?,
            FlushPolicy::Interval { messages: Some(m), .. } if self.unflushed_messages >= m => self.flush().await?,
            FlushPolicy::Interval { .. } => {}
        }
        Ok(())
    }

    /// Cuts the log before the batch holding `offset` (a follower whose
    /// tail the new leader does not have): later segments are deleted, the
    /// epoch cache and producer state go back to the new end. Returns the
    /// new log end, which is `offset` when it falls on a batch boundary.
    pub async fn truncate_to(&mut self, offset: i64) -> Result<i64> {
        let end = self.log_end_offset();
        if offset >= end {
            return Ok(end);
        }
        if offset < self.log_start_offset {
            return Err(StorageError::OffsetOutOfRange { offset, start: self.log_start_offset, end });
        }
        while self.segments.len() > 1 && self.active().base_offset >= offset {
            let seg = self.segments.pop().expect("more than one segment");
            seg.delete().await?;
        }
        self.active_mut().truncate_to(offset).await?;
        let end = self.log_end_offset();
        self.durable_offset = self.durable_offset.min(end);
        self.first_dirty = self.first_dirty.min(end);
        if self.epochs.truncate_from(end) {
            self.save_epochs().await?;
        }
        self.producers = ProducerState::default();
        let snapshots = self.snapshot_offsets()?;
        self.load_producer_state(&snapshots).await?;
        sync_dir(&self.dir).await?;
        Ok(end)
    }

    fn snapshot_offsets(&self) -> Result<Vec<i64>> {
        let mut snaps: Vec<i64> = std::fs::read_dir(&self.dir)
            .map_err(|e| StorageError::io(&self.dir, e))?
            .filter_map(|e| {
                let p = e.ok()?.path();
                (p.extension()? == "snapshot").then_some(())?;
                p.file_stem()?.to_str()?.parse().ok()
            })
            .collect();
        snaps.sort_unstable();
        Ok(snaps)
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
        // Compaction can leave sealed segments empty: they hold no batch.
        let candidates = self.segments[i..]
            .iter()
            .enumerate()
            .filter(|(n, s)| !s.is_empty() || i + n == last)
            .take(3)
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
        let snaps = self.snapshot_offsets()?;
        let keep = snaps.len().saturating_sub(SNAPSHOTS_KEPT + 1);
        for off in &snaps[..keep] {
            remove_if_exists(&segment::file_name(&self.dir, *off, "snapshot")).await?;
        }
        Ok(())
    }

    /// Deletes whole segments from the head that `retention.ms` (by their
    /// largest timestamp) or `retention.bytes` no longer allow. Returns how
    /// many were deleted. An expired active segment is rolled first.
    /// Only for `cleanup.policy` with `delete`.
    pub async fn enforce_retention(&mut self, now_ms: i64) -> Result<usize> {
        let mut deleted = 0;
        while self.config.cleanup_delete {
            if !self.may_drop(&self.segments[0], self.segments.len() == 1, self.size_bytes(), now_ms) {
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

    /// Whether retention lets the head segment `seg` go, with `total` bytes
    /// in the log from it on.
    fn may_drop(&self, seg: &Segment, active: bool, total: u64, now_ms: i64) -> bool {
        // A sealed segment that compaction emptied holds nothing to keep.
        let expired = (!active && seg.is_empty())
            || self
                .config
                .retention_ms
                .is_some_and(|r| seg.max_timestamp().is_some_and(|(ts, _)| ts < now_ms - r.as_millis() as i64));
        let oversize = self.config.retention_bytes.is_some_and(|r| total - seg.size() >= r);
        !(active && seg.is_empty()) && (expired || oversize)
    }

    /// Where `enforce_retention` would move the log start now if it could
    /// delete only what ends at or before `limit` (a replicated log keeps
    /// what is not committed): the base of the first segment it would keep,
    /// or the log end when it would drop everything. `None`: nothing to drop.
    pub fn retention_start(&self, now_ms: i64, limit: i64) -> Option<i64> {
        if !self.config.cleanup_delete {
            return None;
        }
        let mut total = self.size_bytes();
        let mut start = None;
        for (i, seg) in self.segments.iter().enumerate() {
            let active = i + 1 == self.segments.len();
            let end = if active { self.log_end_offset() } else { self.segments[i + 1].base_offset };
            if !self.may_drop(seg, active, total, now_ms) || end > limit {
                break;
            }
            total -= seg.size();
            start = Some(end);
        }
        start.filter(|s| *s > self.log_start_offset)
    }

    /// Empties the log and starts it again at `offset` (a replica that is
    /// given a snapshot: the records before it were deleted where it came
    /// from). Producer state and the epoch cache start over with it.
    pub async fn reset_to(&mut self, offset: i64) -> Result<()> {
        let offset = offset.max(0);
        // The start first: a crash before the new segment is made reopens
        // the log at it (an empty directory starts at the saved start).
        write_small(&self.dir.join(LOG_START_OFFSET), offset.to_string().into_bytes()).await?;
        for seg in std::mem::take(&mut self.segments) {
            seg.delete().await?;
        }
        sync_dir(&self.dir).await?;
        self.segments.push(Segment::create(&self.dir, offset, self.config.index_interval_bytes).await?);
        self.log_start_offset = offset;
        self.durable_offset = self.log_start_offset;
        self.first_dirty = self.log_start_offset;
        self.producers = ProducerState::default();
        for off in self.snapshot_offsets()? {
            remove_if_exists(&segment::file_name(&self.dir, off, "snapshot")).await?;
        }
        self.epochs = EpochCache::default();
        self.save_epochs().await?;
        self.save_log_start_offset().await?;
        sync_dir(&self.dir).await
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
        loop {
            // Where the first segment's offsets end: compaction can leave a
            // gap between its last batch and the next segment.
            let end_of_first = self.segments.get(1).map_or(self.segments[0].next_offset(), |s| s.base_offset);
            if (self.segments.len() == 1 && self.segments[0].is_empty()) || end_of_first > before {
                break;
            }
            self.delete_first_segment().await?;
        }
        self.save_log_start_offset().await?;
        Ok(self.log_start_offset)
    }

    async fn save_log_start_offset(&mut self) -> Result<()> {
        write_small(&self.dir.join(LOG_START_OFFSET), self.log_start_offset.to_string().into_bytes()).await?;
        if self.epochs.truncate_before(self.log_start_offset) {
            self.save_epochs().await?;
        }
        Ok(())
    }

    /// Where the dirty (not yet compacted) part of the log starts.
    pub fn first_dirty_offset(&self) -> i64 {
        self.first_dirty.clamp(self.segments[0].base_offset, self.active().base_offset)
    }

    /// Whether a compaction pass is due, as Kafka's cleaner decides it, and
    /// if so the pass (no I/O here). Only sealed segments are cleaned; the
    /// cleanable part ends at the active segment or at the first segment
    /// holding records younger than `min.compaction.lag.ms`. A pass is due
    /// when that part's dirty bytes make up at least
    /// `min.cleanable.dirty.ratio` of it, when a dirty record is older than
    /// `max.compaction.lag.ms`, or when a kept tombstone has expired.
    pub fn plan_clean(&self, now_ms: i64) -> Option<CleanPlan> {
        self.plan_clean_below(now_ms, i64::MAX)
    }

    /// `plan_clean` of the segments that end at or before `limit` only: a
    /// replicated log cleans what is committed, never a tail that may yet
    /// be replaced (a record there must not decide which older ones go).
    pub fn plan_clean_below(&self, now_ms: i64, limit: i64) -> Option<CleanPlan> {
        if !self.config.cleanup_compact || self.cleaner_broken || self.segments.len() < 2 {
            return None;
        }
        let c = &self.config.compaction;
        let sealed = &self.segments[..self.segments.len() - 1];
        let first_dirty = self.first_dirty_offset();
        let young = |s: &&Segment| {
            c.min_compaction_lag_ms > 0
                && s.max_timestamp().is_some_and(|(ts, _)| ts > now_ms.saturating_sub(c.min_compaction_lag_ms))
        };
        let end = sealed
            .iter()
            .filter(|s| s.base_offset >= first_dirty)
            .find(young)
            .map_or(self.active().base_offset, |s| s.base_offset);
        let end =
            self.segments.iter().map(|s| s.base_offset).filter(|b| *b <= limit).max().map_or(i64::MIN, |b| b.min(end));
        let part = |s: &&Segment| s.base_offset < end;
        let clean_bytes: u64 =
            sealed.iter().filter(part).filter(|s| s.base_offset < first_dirty).map(|s| s.size()).sum();
        let dirty: Vec<&Segment> = sealed.iter().filter(part).filter(|s| s.base_offset >= first_dirty).collect();
        let dirty_bytes: u64 = dirty.iter().map(|s| s.size()).sum();
        let ratio = dirty_bytes as f64 / (clean_bytes + dirty_bytes).max(1) as f64;
        let overdue = c.max_compaction_lag_ms < i64::MAX
            && dirty
                .iter()
                .filter_map(|s| s.first_timestamp())
                .any(|ts| ts < now_ms.saturating_sub(c.max_compaction_lag_ms));
        let tombstones_due = self.tombstone_deadline.is_some_and(|d| now_ms >= d);
        let due = (dirty_bytes > 0 && (ratio >= c.min_cleanable_ratio || overdue)) || tombstones_due;
        if !due || end <= self.segments[0].base_offset {
            return None;
        }
        Some(CleanPlan {
            dir: self.dir.clone(),
            sources: sealed
                .iter()
                .filter(part)
                .map(|s| Source { base: s.base_offset, file: s.file().clone(), size: s.size() })
                .collect(),
            first_dirty,
            end,
            config: c.clone(),
            segment_bytes: self.config.segment_bytes,
            index_interval: self.config.index_interval_bytes,
            now_ms,
            producer_last: self.producers.last_offsets(),
            keep_every_batch: false,
            abort: Default::default(),
        })
    }

    /// Swaps a finished pass in. Returns false (and deletes its files) if
    /// the segments it read are no longer the log's, e.g. retention removed
    /// some meanwhile.
    ///
    /// Crash safety: the `.cleaned` files are already durable. Writing the
    /// `cleaner-swap` manifest (atomically) commits the swap; then the
    /// replaced segments are deleted and each `.cleaned` file renamed over
    /// its group's first segment; then the manifest goes. `open` rolls an
    /// interrupted swap forward from the manifest, and without one deletes
    /// any `.cleaned` file, so a kill at any point leaves either the old or
    /// the new segments, never a mix.
    pub async fn finish_clean(&mut self, outcome: CleanOutcome) -> Result<bool> {
        self.finish_clean_steps(outcome, usize::MAX).await
    }

    /// `finish_clean` that stops, as if the process were killed, after
    /// `steps` changes to the directory (crash tests only: the log must be
    /// dropped and reopened afterwards).
    #[doc(hidden)]
    pub async fn finish_clean_steps(&mut self, outcome: CleanOutcome, mut steps: usize) -> Result<bool> {
        let last = self.segments.len() - 1;
        let still_here = outcome.groups.iter().flat_map(|g| &g.replaces).all(|&(base, size)| {
            matches!(self.segments.iter().position(|s| s.base_offset == base),
                Some(i) if i < last && self.segments[i].size() == size)
        });
        if !still_here || outcome.groups.is_empty() {
            outcome.discard().await;
            return Ok(false);
        }
        let manifest: String = outcome
            .groups
            .iter()
            .map(|g| {
                let olds: Vec<String> = g.replaces.iter().map(|r| r.0.to_string()).collect();
                format!("{} {}\n", g.segment.base_offset, olds.join(" "))
            })
            .collect();
        let mut step = || {
            steps = steps.saturating_sub(1);
            steps == 0
        };
        write_small(&self.dir.join(CLEAN_SWAP), manifest.into_bytes()).await?;
        self.cleaner_broken = true;
        if step() {
            return Ok(false);
        }
        for g in &outcome.groups {
            let base = g.segment.base_offset;
            for &(old, _) in g.replaces.iter().filter(|r| r.0 != base) {
                if let Some(seg) = self.segments.iter().find(|s| s.base_offset == old) {
                    seg.delete().await?;
                }
                if step() {
                    return Ok(false);
                }
            }
            for ext in ["index", "timeindex", "log"] {
                rename_cleaned(&self.dir, base, ext).await?;
                if step() {
                    return Ok(false);
                }
            }
        }
        sync_dir(&self.dir).await?;
        remove_if_exists(&self.dir.join(CLEAN_SWAP)).await?;
        sync_dir(&self.dir).await?;
        let index_interval = self.config.index_interval_bytes;
        for g in outcome.groups {
            let base = g.segment.base_offset;
            drop(g.segment);
            let at = self.segments.iter().position(|s| s.base_offset == base).unwrap_or(0);
            self.segments.drain(at..at + g.replaces.len());
            let (seg, _) = Segment::open(&self.dir, base, index_interval, false).await?;
            self.segments.insert(at, seg);
        }
        self.cleaner_broken = false;
        self.first_dirty = outcome.cleaned_upto;
        self.tombstone_deadline = outcome.tombstone_deadline;
        let checkpoint = format!("{} {}\n", self.first_dirty, self.tombstone_deadline.unwrap_or(-1));
        write_small(&self.dir.join(CLEANER_CHECKPOINT), checkpoint.into_bytes()).await?;
        Ok(true)
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

/// Renames one of a cleaned segment's files over the segment of the same
/// base. Callers do the indexes first and the log last, so a `.log.cleaned`
/// left means the group's swap is not done.
async fn rename_cleaned(dir: &Path, base: i64, ext: &str) -> Result<()> {
    let from = cleaned_name(dir, base, ext);
    let to = segment::file_name(dir, base, ext);
    if from.exists() {
        glommio::io::rename(&from, &to).await.map_err(|e| StorageError::io(&from, e))?;
    } else if ext != "log" {
        // An index there may describe the old data: let open rebuild it.
        remove_if_exists(&to).await?;
    }
    Ok(())
}

/// Rolls forward a swap whose manifest was written (see
/// `Log::finish_clean`). Run before the segments are listed.
async fn finish_interrupted_swap(dir: &Path) -> Result<()> {
    let path = dir.join(CLEAN_SWAP);
    let Some(bytes) = read_small(&path).await? else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(&bytes);
    let mut groups = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let nums: Option<Vec<i64>> = line.split_whitespace().map(|v| v.parse().ok()).collect();
        match nums {
            Some(n) if n.len() >= 2 => groups.push(n),
            _ => {
                return Err(StorageError::Corrupt { path, position: 0, reason: format!("bad manifest line {line:?}") })
            }
        }
    }
    for g in &groups {
        let base = g[0];
        // Renaming the log is the group's last step: done if it is gone.
        if !cleaned_name(dir, base, "log").exists() {
            continue;
        }
        for &old in g[1..].iter().filter(|&&o| o != base) {
            for ext in ["log", "index", "timeindex"] {
                remove_if_exists(&segment::file_name(dir, old, ext)).await?;
            }
        }
        for ext in ["index", "timeindex", "log"] {
            rename_cleaned(dir, base, ext).await?;
        }
    }
    tracing::warn!(dir = %dir.display(), groups = groups.len(), "finished an interrupted compaction swap");
    sync_dir(dir).await?;
    remove_if_exists(&path).await?;
    sync_dir(dir).await
}
