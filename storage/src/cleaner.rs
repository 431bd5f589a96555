//! Log compaction (`cleanup.policy=compact`): keep the latest record of
//! every key, with Apache Kafka's rules.
//!
//! A pass has three halves, so that the owner of the log never waits on it:
//! 1. [`Log::plan_clean`](crate::Log::plan_clean), no I/O: is the log due
//!    (dirty ratio, compaction lags, expired tombstones), and which sealed
//!    segments take part. It captures their files, which never change again.
//! 2. [`CleanPlan::run`], in a task of its own: reads the dirty segments
//!    into an offset map (key → latest offset), then rewrites every segment
//!    up to the end of the map into `<base>.log.cleaned` files (with their
//!    indexes), fdatasync'd. It yields to the executor between batches and
//!    touches nothing the log's owner uses, so appends and reads go on.
//! 3. [`Log::finish_clean`](crate::Log::finish_clean), back on the owner:
//!    checks that the segments are still the ones planned, then swaps the
//!    cleaned files in under a manifest (see `docs/storage.md`).
//!
//! Batch rewriting follows Kafka's cleaner: a batch whose records all stay
//! is copied as is; otherwise its header is kept (base offset, last offset
//! delta, timestamps, producer id/epoch/base sequence, attributes) and only
//! the surviving records' bytes follow, so offsets do not move and the CRC
//! is recomputed. Record offset and timestamp deltas are relative to the
//! unchanged base, so records are copied byte for byte.

use std::cell::Cell;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::Hasher;
use std::path::PathBuf;
use std::rc::Rc;

use crate::batch::{self, BatchHeader, BatchPrefix, HEADER_LEN, PREFIX_LEN};
use crate::config::CompactionConfig;
use crate::error::{Result, StorageError};
use crate::io::{remove_if_exists, SegmentFile};
use crate::segment::{cleaned_name, Segment};

/// Bytes read from a source segment at a time, and written to a cleaned one.
const CHUNK: usize = 1 << 20;

/// Compression codecs for the cleaner, supplied by the broker (the storage
/// crate carries none). Codec ids are Kafka's: 1 gzip, 2 snappy, 3 lz4,
/// 4 zstd. A batch whose codec gives `None` is kept untouched.
pub trait RecordCodec {
    fn decompress(&self, codec: u8, data: &[u8]) -> Option<Vec<u8>>;
    fn compress(&self, codec: u8, data: &[u8]) -> Option<Vec<u8>>;
}

pub(crate) struct Source {
    pub base: i64,
    pub file: Rc<SegmentFile>,
    pub size: u64,
}

/// A pass decided on by `Log::plan_clean`: everything `run` needs, and no
/// reference to the log.
pub struct CleanPlan {
    pub(crate) dir: PathBuf,
    /// Sealed segments from the log's first up to `end`, in order.
    pub(crate) sources: Vec<Source>,
    pub(crate) first_dirty: i64,
    /// The first offset not to clean: a segment base.
    pub(crate) end: i64,
    pub(crate) config: CompactionConfig,
    pub(crate) segment_bytes: u64,
    pub(crate) index_interval: u64,
    pub(crate) now_ms: i64,
    /// Producer id → offset of its last batch.
    pub(crate) producer_last: HashMap<i64, i64>,
    /// Keep every batch, emptied if no record stays (see `keep_every_batch`).
    pub(crate) keep_every_batch: bool,
    pub(crate) abort: Rc<Cell<bool>>,
}

/// A cleaned segment, not yet swapped in, and the segments it replaces
/// (base offset, size when planned).
pub struct CleanedGroup {
    pub(crate) segment: Segment,
    pub(crate) replaces: Vec<(i64, u64)>,
}

/// What `CleanPlan::run` built; hand it to `Log::finish_clean`.
pub struct CleanOutcome {
    pub(crate) dir: PathBuf,
    pub(crate) groups: Vec<CleanedGroup>,
    /// Everything below this is clean after the swap.
    pub(crate) cleaned_upto: i64,
    /// When the earliest tombstone kept will be due for removal.
    pub(crate) tombstone_deadline: Option<i64>,
    pub stats: CleanStats,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CleanStats {
    pub segments_read: usize,
    pub segments_written: usize,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_read: u64,
    pub records_kept: u64,
    pub tombstones_dropped: u64,
    /// Batches kept whole because their records could not be read (an
    /// unsupported codec, or records that do not parse).
    pub batches_untouched: u64,
    /// Keys in the offset map.
    pub keys: usize,
}

/// 128 bits of a key, as Kafka's map keeps an MD5: a collision would drop
/// a record, so 64 bits are not enough for comfort.
type KeyHash = (u64, u64);

fn key_hash(key: &[u8]) -> KeyHash {
    let mut a = DefaultHasher::new();
    a.write_u8(0);
    a.write(key);
    let mut b = DefaultHasher::new();
    b.write_u8(1);
    b.write(key);
    (a.finish(), b.finish())
}

/// Reads a segment's batches in order, a chunk at a time.
struct BatchReader {
    file: Rc<SegmentFile>,
    size: u64,
    /// File position of `buf[0]`.
    pos: u64,
    buf: Vec<u8>,
    at: usize,
}

impl BatchReader {
    fn new(file: Rc<SegmentFile>, size: u64) -> BatchReader {
        BatchReader { file, size, pos: 0, buf: Vec::new(), at: 0 }
    }

    async fn next(&mut self) -> Result<Option<&[u8]>> {
        for _ in 0..3 {
            let avail = &self.buf[self.at..];
            let prefix = BatchPrefix::parse(avail);
            if let Some(p) = prefix {
                if p.size <= avail.len() {
                    let start = self.at;
                    self.at += p.size;
                    return Ok(Some(&self.buf[start..start + p.size]));
                }
            } else if avail.len() >= PREFIX_LEN {
                return Err(self.corrupt("not a record batch header"));
            }
            let here = self.pos + self.at as u64;
            if here >= self.size {
                return match avail.is_empty() {
                    true => Ok(None),
                    false => Err(self.corrupt("segment ends inside a batch")),
                };
            }
            let want = prefix.map_or(CHUNK, |p| p.size.max(CHUNK)).min((self.size - here) as usize);
            let chunk = self.file.read_at(here, want).await?;
            if chunk.is_empty() {
                return Err(self.corrupt("short read"));
            }
            self.buf = chunk.to_vec();
            self.pos = here;
            self.at = 0;
        }
        Err(self.corrupt("batch larger than the segment"))
    }

    fn corrupt(&self, reason: &str) -> StorageError {
        StorageError::Corrupt {
            path: self.file.path().to_path_buf(),
            position: self.pos + self.at as u64,
            reason: reason.into(),
        }
    }
}

/// The records section of a batch, decompressed; `None` when it cannot be
/// read (no codec for it).
fn records_section<'a>(
    bytes: &'a [u8],
    h: &BatchHeader,
    codec: Option<&dyn RecordCodec>,
) -> Option<std::borrow::Cow<'a, [u8]>> {
    match h.compression() {
        0 => Some(std::borrow::Cow::Borrowed(&bytes[HEADER_LEN..])),
        c => codec?.decompress(c, &bytes[HEADER_LEN..]).map(std::borrow::Cow::Owned),
    }
}

enum Kept {
    Whole,
    Rebuilt(Vec<u8>),
    Dropped,
}

impl CleanPlan {
    /// Keeps every batch, emptied of its records when none stays, instead
    /// of dropping it: for a log whose batches are entries of another log
    /// (a replicated partition's Raft log), which must keep one batch per
    /// entry.
    pub fn keep_every_batch(mut self) -> CleanPlan {
        self.keep_every_batch = true;
        self
    }

    /// Set it to make `run` stop at its next step (the log is closing).
    pub fn abort_handle(&self) -> Rc<Cell<bool>> {
        self.abort.clone()
    }

    /// Offsets `[first_dirty, end)` are dirty; `[start, end)` get cleaned.
    pub fn range(&self) -> (i64, i64) {
        (self.first_dirty, self.end)
    }

    /// Does the work; `Ok(None)` if aborted. Leaves no `.cleaned` file
    /// behind when it fails or is aborted.
    pub async fn run(self, codec: Option<&dyn RecordCodec>) -> Result<Option<CleanOutcome>> {
        let mut created = Vec::new();
        let r = self.run_inner(codec, &mut created).await;
        if !matches!(r, Ok(Some(_))) {
            for base in created {
                for ext in ["log", "index", "timeindex"] {
                    let _ = remove_if_exists(&cleaned_name(&self.dir, base, ext)).await;
                }
            }
        }
        r
    }

    async fn run_inner(&self, codec: Option<&dyn RecordCodec>, created: &mut Vec<i64>) -> Result<Option<CleanOutcome>> {
        let mut stats = CleanStats::default();
        let Some((map, map_end)) = self.build_map(codec).await? else {
            return Ok(None);
        };
        stats.keys = map.len();
        let sources: Vec<&Source> = self.sources.iter().take_while(|s| s.base < map_end).collect();
        let mut groups = Vec::new();
        let mut tombstone_deadline = None;
        let mut i = 0;
        while i < sources.len() {
            let first = i;
            let mut size = sources[i].size;
            i += 1;
            while i < sources.len() {
                let next_base = sources.get(i + 1).map_or(map_end, |s| s.base);
                let fits_offsets = next_base - sources[first].base <= u32::MAX as i64;
                if size + sources[i].size > self.segment_bytes || !fits_offsets {
                    break;
                }
                size += sources[i].size;
                i += 1;
            }
            let group = &sources[first..i];
            created.push(group[0].base);
            let mut out = Segment::create_cleaned(&self.dir, group[0].base, self.index_interval).await?;
            for src in group {
                if !self.clean_into(src, &mut out, &map, codec, &mut stats, &mut tombstone_deadline).await? {
                    return Ok(None);
                }
            }
            out.seal().await?;
            stats.segments_written += 1;
            stats.bytes_written += out.size();
            groups.push(CleanedGroup { segment: out, replaces: group.iter().map(|s| (s.base, s.size)).collect() });
        }
        Ok(Some(CleanOutcome { dir: self.dir.clone(), groups, cleaned_upto: map_end, tombstone_deadline, stats }))
    }

    /// Key → latest offset over the dirty segments, and where the map ends:
    /// `end`, or an earlier segment base if the map filled up.
    async fn build_map(&self, codec: Option<&dyn RecordCodec>) -> Result<Option<(HashMap<KeyHash, i64>, i64)>> {
        let mut map: HashMap<KeyHash, i64> = HashMap::new();
        for (n, src) in self.sources.iter().enumerate().filter(|(_, s)| s.base >= self.first_dirty) {
            if n > 0 && self.sources[n - 1].base >= self.first_dirty && map.len() >= self.config.max_map_keys {
                return Ok(Some((map, src.base)));
            }
            let mut reader = BatchReader::new(src.file.clone(), src.size);
            while let Some(bytes) = reader.next().await? {
                let h = BatchHeader::read(bytes);
                if !h.is_control() && h.record_count > 0 {
                    let section = records_section(bytes, &h, codec);
                    let recs = section.as_deref().and_then(|s| batch::parse_records(s, h.record_count).map(|r| (s, r)));
                    if let Some((s, recs)) = recs {
                        for r in recs {
                            if let Some(k) = r.key {
                                map.insert(key_hash(&s[k]), h.base_offset + r.offset_delta);
                            }
                        }
                    }
                }
                if self.abort.get() {
                    return Ok(None);
                }
                glommio::yield_if_needed().await;
            }
        }
        Ok(Some((map, self.end)))
    }

    /// Copies the records of `src` that survive into `out`. False if aborted.
    async fn clean_into(
        &self,
        src: &Source,
        out: &mut Segment,
        map: &HashMap<KeyHash, i64>,
        codec: Option<&dyn RecordCodec>,
        stats: &mut CleanStats,
        tombstone_deadline: &mut Option<i64>,
    ) -> Result<bool> {
        stats.segments_read += 1;
        stats.bytes_read += src.size;
        let mut reader = BatchReader::new(src.file.clone(), src.size);
        let mut pending: Vec<u8> = Vec::new();
        let mut headers: Vec<BatchHeader> = Vec::new();
        while let Some(bytes) = reader.next().await? {
            let h = BatchHeader::read(bytes);
            let kept = self.clean_batch(bytes, &h, map, codec, stats, tombstone_deadline);
            match kept {
                Kept::Whole => {
                    pending.extend_from_slice(bytes);
                    headers.push(h);
                }
                Kept::Rebuilt(b) => {
                    headers.push(BatchHeader::read(&b));
                    pending.extend_from_slice(&b);
                }
                Kept::Dropped => {}
            }
            if pending.len() >= CHUNK {
                out.append_chunk(std::mem::take(&mut pending), &headers).await?;
                headers.clear();
            }
            if self.abort.get() {
                return Ok(false);
            }
            glommio::yield_if_needed().await;
        }
        out.append_chunk(pending, &headers).await?;
        Ok(true)
    }

    fn clean_batch(
        &self,
        bytes: &[u8],
        h: &BatchHeader,
        map: &HashMap<KeyHash, i64>,
        codec: Option<&dyn RecordCodec>,
        stats: &mut CleanStats,
        tombstone_deadline: &mut Option<i64>,
    ) -> Kept {
        // Transaction markers: there are no transactions to finish here.
        if h.is_control() {
            return Kept::Whole;
        }
        let last_of_producer = h.has_producer_id() && self.producer_last.get(&h.producer_id) == Some(&h.last_offset());
        if h.record_count == 0 {
            // An empty batch only ever stays for producer state.
            return if last_of_producer || self.keep_every_batch { Kept::Whole } else { Kept::Dropped };
        }
        let Some(section) = records_section(bytes, h, codec) else {
            stats.batches_untouched += 1;
            return Kept::Whole;
        };
        let Some(recs) = batch::parse_records(&section, h.record_count) else {
            stats.batches_untouched += 1;
            return Kept::Whole;
        };
        stats.records_read += recs.len() as u64;
        let mut kept = Vec::with_capacity(recs.len());
        for r in &recs {
            // Kafka's cleaner drops records without a key: a compacted
            // topic cannot say which value they belong to.
            let Some(k) = &r.key else { continue };
            let offset = h.base_offset + r.offset_delta;
            if map.get(&key_hash(&section[k.clone()])).is_some_and(|&latest| latest > offset) {
                continue;
            }
            if r.is_tombstone() {
                let ts = if h.is_log_append_time() {
                    h.max_timestamp
                } else {
                    h.base_timestamp.wrapping_add(r.timestamp_delta)
                };
                let deadline = ts.saturating_add(self.config.delete_retention_ms.max(0));
                if self.now_ms >= deadline {
                    stats.tombstones_dropped += 1;
                    continue;
                }
                *tombstone_deadline = Some(tombstone_deadline.map_or(deadline, |d: i64| d.min(deadline)));
            }
            kept.push(r.span.clone());
        }
        stats.records_kept += kept.len() as u64;
        if kept.len() == recs.len() {
            return Kept::Whole;
        }
        if kept.is_empty() {
            // Kafka keeps the producer's last batch, emptied, so that its
            // id, epoch and last sequence survive a rebuild of producer
            // state from the log.
            let keep = last_of_producer || self.keep_every_batch;
            return if keep { Kept::Rebuilt(batch::rebuild(bytes, &[], 0)) } else { Kept::Dropped };
        }
        let mut new_section = Vec::with_capacity(kept.iter().map(|s| s.len()).sum());
        for span in &kept {
            new_section.extend_from_slice(&section[span.clone()]);
        }
        let new_section = match h.compression() {
            0 => new_section,
            c => match codec.and_then(|codec| codec.compress(c, &new_section)) {
                Some(z) => z,
                None => {
                    stats.batches_untouched += 1;
                    stats.records_kept += (recs.len() - kept.len()) as u64;
                    return Kept::Whole;
                }
            },
        };
        Kept::Rebuilt(batch::rebuild(bytes, &new_section, kept.len() as i32))
    }
}

impl CleanOutcome {
    /// Throws the cleaned files away (the log changed under the pass).
    pub async fn discard(self) {
        for g in self.groups {
            for ext in ["log", "index", "timeindex"] {
                let _ = remove_if_exists(&cleaned_name(&self.dir, g.segment.base_offset, ext)).await;
            }
        }
    }
}
