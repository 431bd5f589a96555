//! One segment: a `.log` file of record batches starting at `base_offset`,
//! with its offset and time indexes.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::batch::{self, BatchHeader, BatchPrefix, PREFIX_LEN};
use crate::error::{Result, StorageError};
use crate::index::{OffsetIndex, TimeIndex};
use crate::io::{read_small, remove_if_exists, write_small, SegmentFile};

/// Bytes read at a time when scanning a whole segment.
const SCAN_CHUNK: usize = 1 << 20;
/// Bytes read at a time when hopping from header to header.
const HOP_CHUNK: usize = 8 << 10;

pub fn file_name(dir: &Path, base_offset: i64, ext: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{ext}"))
}

/// Suffix of the files the cleaner writes before they replace a segment.
pub const CLEANED: &str = "cleaned";

/// `<base>.<ext>.cleaned`: where the cleaner builds a segment's replacement.
pub fn cleaned_name(dir: &Path, base_offset: i64, ext: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{ext}.{CLEANED}"))
}

pub struct Segment {
    pub base_offset: i64,
    dir: PathBuf,
    /// `Some(CLEANED)` while the segment is the cleaner's output, not yet
    /// swapped in: every file name then carries that extra extension.
    suffix: Option<&'static str>,
    file: Rc<SegmentFile>,
    size: u64,
    /// One past the last offset stored here (`base_offset` when empty).
    next_offset: i64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    index_interval: u64,
    bytes_since_index: u64,
    /// Largest batch max timestamp and the base offset of that batch.
    max_timestamp: Option<(i64, i64)>,
    /// Max timestamp of the first batch, which `segment.ms` counts from.
    first_timestamp: Option<i64>,
}

/// What recovery found at the end of a segment's valid data.
#[derive(Debug, PartialEq, Eq)]
pub enum Tail {
    Clean,
    /// Bytes from `at` on were a torn write and have been cut off.
    Truncated {
        at: u64,
        dropped: u64,
    },
}

impl Segment {
    pub async fn create(dir: &Path, base_offset: i64, index_interval: u64) -> Result<Segment> {
        let file = SegmentFile::open(&file_name(dir, base_offset, "log"), true).await?;
        file.truncate(0).await?;
        Ok(Segment::empty(dir, base_offset, Rc::new(file), index_interval))
    }

    /// A new, empty segment under the cleaner's `.cleaned` names.
    pub async fn create_cleaned(dir: &Path, base_offset: i64, index_interval: u64) -> Result<Segment> {
        let path = cleaned_name(dir, base_offset, "log");
        let file = SegmentFile::open(&path, true).await?;
        file.truncate(0).await?;
        let mut seg = Segment::empty(dir, base_offset, Rc::new(file), index_interval);
        seg.suffix = Some(CLEANED);
        Ok(seg)
    }

    fn empty(dir: &Path, base_offset: i64, file: Rc<SegmentFile>, index_interval: u64) -> Segment {
        Segment {
            base_offset,
            dir: dir.to_path_buf(),
            suffix: None,
            file,
            size: 0,
            next_offset: base_offset,
            offset_index: OffsetIndex::default(),
            time_index: TimeIndex::default(),
            index_interval,
            bytes_since_index: 0,
            max_timestamp: None,
            first_timestamp: None,
        }
    }

    /// Opens an existing segment. With `recover`, every batch is checked and
    /// a torn tail cut off; otherwise the saved indexes are trusted when they
    /// are consistent, and rebuilt from the batches when not.
    pub async fn open(dir: &Path, base_offset: i64, index_interval: u64, recover: bool) -> Result<(Segment, Tail)> {
        let file = Rc::new(SegmentFile::open(&file_name(dir, base_offset, "log"), false).await?);
        let size = file.size().await?;
        let mut seg = Segment::empty(dir, base_offset, file, index_interval);
        if !recover && seg.load_indexes(size).await? {
            return Ok((seg, Tail::Clean));
        }
        let tail = seg.scan(size, recover).await?;
        Ok((seg, tail))
    }

    async fn load_indexes(&mut self, size: u64) -> Result<bool> {
        let Some(oi) = read_small(&self.path("index")).await? else {
            return Ok(false);
        };
        let Some(ti) = read_small(&self.path("timeindex")).await? else {
            return Ok(false);
        };
        let Some(offset_index) = OffsetIndex::decode(&oi, size) else {
            return Ok(false);
        };
        let max_rel = u32::MAX;
        let Some(time_index) = TimeIndex::decode(&ti, max_rel) else {
            return Ok(false);
        };
        if size == 0 {
            return Ok(true);
        }
        // The last entries bound the unindexed tail: find the end from there.
        let mut last = None;
        let from = offset_index.last_position() as u64;
        let ok = hop(&self.file, from, size, |pos, h| {
            last = Some((pos, *h));
            true
        })
        .await?;
        let (Some((pos, p)), true, Some((ts, rel))) = (last, ok, time_index.last()) else {
            return Ok(false);
        };
        if pos + p.size as u64 != size {
            return Ok(false);
        }
        let first = self.file.read_at(0, batch::HEADER_LEN).await?;
        if first.len() < batch::HEADER_LEN {
            return Ok(false);
        }
        let head = BatchHeader::read(&first);
        self.first_timestamp = (!head.is_control()).then_some(head.max_timestamp);
        self.size = size;
        self.next_offset = p.last_offset() + 1;
        self.max_timestamp = Some((ts, self.base_offset + rel as i64));
        self.offset_index = offset_index;
        self.time_index = time_index;
        self.bytes_since_index = size - from;
        Ok(true)
    }

    /// Rebuilds the indexes from the batches. With `validate`, CRCs are
    /// checked and a torn tail is truncated; corruption followed by more
    /// valid data is an error either way.
    async fn scan(&mut self, size: u64, validate: bool) -> Result<Tail> {
        let mut pos = 0u64;
        let mut bad: Option<(u64, String)> = None;
        'outer: while pos < size {
            let chunk = self.file.read_at(pos, SCAN_CHUNK.min((size - pos) as usize)).await?;
            let mut at = 0usize;
            while at < chunk.len() {
                let here = pos + at as u64;
                let Some(prefix) = BatchPrefix::parse(&chunk[at..]) else {
                    if at > 0 && chunk.len() - at < PREFIX_LEN && here + (PREFIX_LEN as u64) <= size {
                        break; // header straddles the chunk: read again from here
                    }
                    bad = Some((here, "not a record batch header".into()));
                    break 'outer;
                };
                if here + prefix.size as u64 > size {
                    bad = Some((here, format!("batch of {} bytes runs past the end", prefix.size)));
                    break 'outer;
                }
                let whole;
                let bytes: &[u8] = if at + prefix.size <= chunk.len() {
                    &chunk[at..at + prefix.size]
                } else if prefix.size > SCAN_CHUNK {
                    whole = self.file.read_at(here, prefix.size).await?;
                    &whole
                } else if at > 0 {
                    break; // read the rest of the batch with the next chunk
                } else {
                    bad = Some((here, "short read".into()));
                    break 'outer;
                };
                let header = if validate {
                    match batch::validate_stored(bytes) {
                        Ok(h) => h,
                        Err(e) => {
                            bad = Some((here, e.to_string()));
                            break 'outer;
                        }
                    }
                } else {
                    BatchHeader::read(bytes)
                };
                if header.base_offset < self.next_offset {
                    bad = Some((here, format!("offset {} goes backwards", header.base_offset)));
                    break 'outer;
                }
                self.index_batch(&header);
                at += prefix.size;
            }
            pos += at as u64;
        }
        let Some((at, reason)) = bad else {
            return Ok(Tail::Clean);
        };
        // A torn write only ever damages the end. If a whole valid batch
        // follows the damage, flushed data was hit: report, never truncate.
        if !validate || self.valid_batch_follows(at, size).await? {
            return Err(StorageError::Corrupt { path: self.file.path().to_path_buf(), position: at, reason });
        }
        tracing::warn!(path = %self.file.path().display(), at, reason, "truncating torn tail");
        self.file.truncate(at).await?;
        self.file.sync().await?;
        Ok(Tail::Truncated { at, dropped: size - at })
    }

    async fn valid_batch_follows(&self, at: u64, size: u64) -> Result<bool> {
        let head = self.file.read_at(at, PREFIX_LEN).await?;
        let Some(p) = BatchPrefix::parse(&head) else {
            return Ok(false);
        };
        let next = at + p.size as u64;
        if next + batch::HEADER_LEN as u64 > size {
            return Ok(false);
        }
        let head = self.file.read_at(next, PREFIX_LEN).await?;
        let Some(q) = BatchPrefix::parse(&head) else {
            return Ok(false);
        };
        if next + q.size as u64 > size || q.size > 64 << 20 {
            return Ok(false);
        }
        let b = self.file.read_at(next, q.size).await?;
        Ok(batch::validate_stored(&b).is_ok())
    }

    /// Updates indexes and counters for a batch just placed at `self.size`.
    fn index_batch(&mut self, h: &BatchHeader) {
        let rel = (h.base_offset - self.base_offset) as u32;
        if self.size > 0 && self.bytes_since_index >= self.index_interval {
            self.offset_index.push(rel, self.size as u32);
            if let Some((ts, off)) = self.max_timestamp {
                self.time_index.push(ts, (off - self.base_offset) as u32);
            }
            self.bytes_since_index = 0;
        }
        if self.max_timestamp.is_none_or(|(ts, _)| h.max_timestamp > ts) {
            self.max_timestamp = Some((h.max_timestamp, h.base_offset));
        }
        // segment.ms counts from the first data batch: a control batch (a
        // new leader's LeaderChange) carries no producer's time.
        if !h.is_control() {
            self.first_timestamp.get_or_insert(h.max_timestamp);
        }
        self.size += h.size as u64;
        self.bytes_since_index += h.size as u64;
        self.next_offset = h.last_offset() + 1;
    }

    /// Appends a validated batch whose offsets are already assigned.
    pub async fn append(&mut self, bytes: Vec<u8>, h: &BatchHeader) -> Result<()> {
        if let Err(e) = self.file.write_all_at(bytes, self.size).await {
            // Leave no partial batch behind for the next append to follow.
            let _ = self.file.truncate(self.size).await;
            return Err(e);
        }
        self.index_batch(h);
        Ok(())
    }

    /// Appends several batches at once; `bytes` is their concatenation, in
    /// the order of `headers`. The cleaner writes this way, in large chunks.
    pub async fn append_chunk(&mut self, bytes: Vec<u8>, headers: &[BatchHeader]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.write_all_at(bytes, self.size).await {
            let _ = self.file.truncate(self.size).await;
            return Err(e);
        }
        for h in headers {
            self.index_batch(h);
        }
        Ok(())
    }

    /// Cuts the segment before the batch holding `offset` (the whole batch
    /// goes, as Kafka's truncateTo does), makes the cut durable and rebuilds
    /// the indexes from what is left.
    pub async fn truncate_to(&mut self, offset: i64) -> Result<()> {
        if offset >= self.next_offset {
            return Ok(());
        }
        let at = locate(&self.file, self.position_hint(offset), self.size, offset).await?.map_or(self.size, |(p, _)| p);
        self.file.truncate(at).await?;
        self.file.sync().await?;
        let mut seg = Segment::empty(&self.dir, self.base_offset, self.file.clone(), self.index_interval);
        seg.suffix = self.suffix;
        seg.scan(at, false).await?;
        *self = seg;
        self.write_indexes().await
    }

    /// Makes the segment durable and writes its indexes, with a final time
    /// index entry for its largest timestamp, as Kafka does on roll.
    pub async fn seal(&mut self) -> Result<()> {
        self.file.sync().await?;
        if let Some((ts, off)) = self.max_timestamp {
            self.time_index.push(ts, (off - self.base_offset) as u32);
        }
        self.write_indexes().await
    }

    pub async fn write_indexes(&self) -> Result<()> {
        write_small(&self.path("index"), self.offset_index.encode()).await?;
        write_small(&self.path("timeindex"), self.time_index.encode()).await
    }

    pub async fn delete(&self) -> Result<()> {
        self.file.remove().await?;
        remove_if_exists(&self.path("index")).await?;
        remove_if_exists(&self.path("timeindex")).await
    }

    pub fn path(&self, ext: &str) -> PathBuf {
        match self.suffix {
            Some(_) => cleaned_name(&self.dir, self.base_offset, ext),
            None => file_name(&self.dir, self.base_offset, ext),
        }
    }
    pub fn file(&self) -> &Rc<SegmentFile> {
        &self.file
    }
    pub fn size(&self) -> u64 {
        self.size
    }
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        self.max_timestamp
    }
    pub fn first_timestamp(&self) -> Option<i64> {
        self.first_timestamp
    }

    /// A position at or before the batch holding `offset`.
    pub fn position_hint(&self, offset: i64) -> u64 {
        let rel = (offset - self.base_offset).clamp(0, u32::MAX as i64) as u32;
        self.offset_index.floor(rel) as u64
    }

    /// A position at or before the first batch that may hold a record with
    /// timestamp `>= ts`.
    pub fn timestamp_hint(&self, ts: i64) -> u64 {
        match self.time_index.floor_below(ts) {
            Some((_, rel)) => self.offset_index.floor(rel) as u64,
            None => 0,
        }
    }
}

/// Calls `f` with each batch header from `from` to `end` until it returns
/// false. Returns false if the framing breaks before `end`.
pub async fn hop(
    file: &SegmentFile,
    mut pos: u64,
    end: u64,
    mut f: impl FnMut(u64, &BatchHeader) -> bool,
) -> Result<bool> {
    while pos < end {
        let chunk = file.read_at(pos, HOP_CHUNK.min((end - pos) as usize)).await?;
        let mut at = 0usize;
        while at + batch::HEADER_LEN <= chunk.len() {
            let Some(p) = BatchPrefix::parse(&chunk[at..]) else {
                return Ok(false);
            };
            if pos + (at + p.size) as u64 > end {
                return Ok(false);
            }
            if !f(pos + at as u64, &BatchHeader::read(&chunk[at..])) {
                return Ok(true);
            }
            at += p.size;
        }
        if at == 0 {
            return Ok(false); // less than a header left before `end`
        }
        pos += at as u64;
    }
    Ok(true)
}

/// Finds the batch holding `offset` (or the first one after it) at or after
/// `from`: its position and size.
pub async fn locate(file: &SegmentFile, from: u64, end: u64, offset: i64) -> Result<Option<(u64, usize)>> {
    let mut found = None;
    hop(file, from, end, |pos, h| {
        if h.last_offset() >= offset {
            found = Some((pos, h.size));
            false
        } else {
            true
        }
    })
    .await?;
    Ok(found)
}
