//! Kafka record-batch v2 ("magic 2") headers: parsing, validation and the
//! in-place patches the log makes before a batch is written.
//!
//! Layout (big-endian), from Kafka's `DefaultRecordBatch`:
//! ```text
//!  0 baseOffset i64 | 8 batchLength i32 | 12 partitionLeaderEpoch i32 | 16 magic i8
//! 17 crc u32        | 21 attributes i16 | 23 lastOffsetDelta i32 | 27 baseTimestamp i64
//! 35 maxTimestamp i64 | 43 producerId i64 | 51 producerEpoch i16 | 53 baseSequence i32
//! 57 recordCount i32 | 61 records...
//! ```
//! The CRC-32C covers everything from `attributes` to the end of the batch.

use crate::error::BatchError;

pub const HEADER_LEN: usize = 61;
/// Bytes before `batchLength`'s span starts: baseOffset and batchLength.
pub const LOG_OVERHEAD: usize = 12;
/// Enough of the header to know where a batch sits and what it holds.
pub const PREFIX_LEN: usize = 27;

const BASE_OFFSET: usize = 0;
const LENGTH: usize = 8;
const LEADER_EPOCH: usize = 12;
const MAGIC: usize = 16;
const CRC: usize = 17;
const ATTRIBUTES: usize = 21;
const LAST_OFFSET_DELTA: usize = 23;
const BASE_TIMESTAMP: usize = 27;
const MAX_TIMESTAMP: usize = 35;
const PRODUCER_ID: usize = 43;
const PRODUCER_EPOCH: usize = 51;
const BASE_SEQUENCE: usize = 53;
const RECORD_COUNT: usize = 57;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_LOG_APPEND: i16 = 0x08;
const TRANSACTIONAL: i16 = 0x10;
const CONTROL: i16 = 0x20;

pub const NO_PRODUCER_ID: i64 = -1;
pub const NO_SEQUENCE: i32 = -1;

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

/// Where a batch sits in a segment, read from its first [`PREFIX_LEN`] bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchPrefix {
    pub base_offset: i64,
    /// Total bytes on disk, `batchLength + 12`.
    pub size: usize,
    pub last_offset_delta: i32,
}

impl BatchPrefix {
    /// `None` when the bytes cannot start a v2 batch (bad length or magic).
    pub fn parse(b: &[u8]) -> Option<BatchPrefix> {
        if b.len() < PREFIX_LEN || b[MAGIC] != 2 {
            return None;
        }
        let length = i32_at(b, LENGTH);
        if length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
            return None;
        }
        let last_offset_delta = i32_at(b, LAST_OFFSET_DELTA);
        if last_offset_delta < 0 {
            return None;
        }
        Some(BatchPrefix {
            base_offset: i64_at(b, BASE_OFFSET),
            size: length as usize + LOG_OVERHEAD,
            last_offset_delta,
        })
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }
}

/// The fields of a full header that the log and producer state use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub size: usize,
    pub leader_epoch: i32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    /// Reads a header without checking it; `b` must hold [`HEADER_LEN`] bytes.
    pub fn read(b: &[u8]) -> BatchHeader {
        BatchHeader {
            base_offset: i64_at(b, BASE_OFFSET),
            size: i32_at(b, LENGTH) as usize + LOG_OVERHEAD,
            leader_epoch: i32_at(b, LEADER_EPOCH),
            attributes: i16_at(b, ATTRIBUTES),
            last_offset_delta: i32_at(b, LAST_OFFSET_DELTA),
            base_timestamp: i64_at(b, BASE_TIMESTAMP),
            max_timestamp: i64_at(b, MAX_TIMESTAMP),
            producer_id: i64_at(b, PRODUCER_ID),
            producer_epoch: i16_at(b, PRODUCER_EPOCH),
            base_sequence: i32_at(b, BASE_SEQUENCE),
            record_count: i32_at(b, RECORD_COUNT),
        }
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }
    pub fn compression(&self) -> u8 {
        (self.attributes & COMPRESSION_MASK) as u8
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_LOG_APPEND != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL != 0
    }
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
    /// The sequence of the last record, wrapping at `i32::MAX` as Kafka does.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence == NO_SEQUENCE {
            return NO_SEQUENCE;
        }
        let last = self.base_sequence as i64 + self.last_offset_delta as i64;
        if last > i32::MAX as i64 {
            (last - i32::MAX as i64 - 1) as i32
        } else {
            last as i32
        }
    }
}

/// Length of the whole batches at the start of `b` and the offset after
/// the last of them (`None` if not even one batch is whole).
pub fn whole_batches(b: &[u8]) -> (usize, Option<i64>) {
    let (mut at, mut next) = (0, None);
    while let Some(p) = BatchPrefix::parse(&b[at..]) {
        if at + p.size > b.len() {
            break;
        }
        at += p.size;
        next = Some(p.last_offset() + 1);
    }
    (at, next)
}

pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES..])
}

pub fn stored_crc(batch: &[u8]) -> u32 {
    u32::from_be_bytes(batch[CRC..CRC + 4].try_into().unwrap())
}

/// Full check of one batch that must be exactly `b`: framing, magic, CRC and
/// record count (one record per offset). Used on produce.
pub fn validate(b: &[u8]) -> Result<BatchHeader, BatchError> {
    let h = validate_stored(b)?;
    if h.record_count <= 0 || h.last_offset_delta != h.record_count - 1 {
        return Err(BatchError::RecordCount { count: h.record_count, last_offset_delta: h.last_offset_delta });
    }
    Ok(h)
}

/// `validate` for a batch as a log may hold it: compaction leaves batches
/// with fewer records than offsets, or none (Kafka's cleaner does too).
/// Used when recovering a segment's tail and on a replica's appends, which
/// carry the leader's stored batches.
pub fn validate_stored(b: &[u8]) -> Result<BatchHeader, BatchError> {
    if b.len() < HEADER_LEN {
        return Err(BatchError::TooShort(b.len()));
    }
    if b[MAGIC] != 2 {
        return Err(BatchError::Magic(b[MAGIC] as i8));
    }
    let h = BatchHeader::read(b);
    if i32_at(b, LENGTH) < (HEADER_LEN - LOG_OVERHEAD) as i32 || h.size != b.len() {
        return Err(BatchError::Length { declared: i32_at(b, LENGTH) as i64 + LOG_OVERHEAD as i64, actual: b.len() });
    }
    let crc = compute_crc(b);
    if crc != stored_crc(b) {
        return Err(BatchError::Crc { stored: stored_crc(b), computed: crc });
    }
    if h.record_count < 0 || h.last_offset_delta < 0 || h.record_count > h.last_offset_delta.saturating_add(1) {
        return Err(BatchError::RecordCount { count: h.record_count, last_offset_delta: h.last_offset_delta });
    }
    Ok(h)
}

/// Sets the base offset (outside the CRC's span, so no recompute needed).
pub fn set_base_offset(b: &mut [u8], base_offset: i64) {
    b[BASE_OFFSET..BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Marks the batch a control batch (attributes bit 5), as Kafka's
/// transaction markers and KRaft's LeaderChange records are; recomputes
/// the CRC.
pub fn set_control(b: &mut [u8]) {
    let attrs = i16_at(b, ATTRIBUTES) | CONTROL;
    b[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attrs.to_be_bytes());
    let crc = compute_crc(b);
    b[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Sets the partition leader epoch (outside the CRC's span).
pub fn set_leader_epoch(b: &mut [u8], epoch: i32) {
    b[LEADER_EPOCH..LEADER_EPOCH + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// Marks the batch LogAppendTime with `now` as its max timestamp, as Kafka's
/// broker does for topics with `message.timestamp.type=LogAppendTime`, and
/// recomputes the CRC that these fields are under.
pub fn set_log_append_time(b: &mut [u8], now_ms: i64) {
    let attrs = i16_at(b, ATTRIBUTES) | TIMESTAMP_TYPE_LOG_APPEND;
    b[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attrs.to_be_bytes());
    b[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = compute_crc(b);
    b[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

fn read_varint(b: &[u8], pos: &mut usize) -> Option<i64> {
    let mut raw: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        raw |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Some(((raw >> 1) as i64) ^ -((raw & 1) as i64));
        }
    }
    None
}

/// Timestamp and offset of every record of an uncompressed batch, in order.
/// `None` for compressed batches (their records are opaque to the log) or
/// records that do not parse.
pub fn record_timestamps(b: &[u8]) -> Option<Vec<(i64, i64)>> {
    let h = BatchHeader::read(b);
    if h.compression() != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(h.record_count.clamp(0, 4096) as usize);
    let mut pos = HEADER_LEN;
    for _ in 0..h.record_count {
        let len = read_varint(b, &mut pos)?;
        let start = pos;
        if len < 0 || start + len as usize > b.len() {
            return None;
        }
        pos += 1; // attributes
        let ts_delta = read_varint(b, &mut pos)?;
        let offset_delta = read_varint(b, &mut pos)?;
        let ts = if h.is_log_append_time() { h.max_timestamp } else { h.base_timestamp.wrapping_add(ts_delta) };
        out.push((ts, h.base_offset + offset_delta));
        pos = start + len as usize;
    }
    Some(out)
}

/// Where one record sits in a batch's (uncompressed) records section and
/// what the cleaner needs of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordRef {
    /// The record's bytes, its length varint included, in the section.
    pub span: std::ops::Range<usize>,
    pub offset_delta: i64,
    pub timestamp_delta: i64,
    /// `None` for a record without a key.
    pub key: Option<std::ops::Range<usize>>,
    /// `None` for a null value: a tombstone.
    pub value: Option<std::ops::Range<usize>>,
}

impl RecordRef {
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }
}

/// Splits an uncompressed records section holding `count` records.
/// `None` if the bytes do not hold exactly that many well-formed records.
pub fn parse_records(section: &[u8], count: i32) -> Option<Vec<RecordRef>> {
    let mut out = Vec::with_capacity(count.clamp(0, 4096) as usize);
    let mut pos = 0usize;
    for _ in 0..count {
        let start = pos;
        let len = read_varint(section, &mut pos)?;
        let body = pos;
        let end = body.checked_add(usize::try_from(len).ok()?)?;
        if end > section.len() {
            return None;
        }
        let rec = &section[..end];
        pos += 1; // attributes
        let timestamp_delta = read_varint(rec, &mut pos)?;
        let offset_delta = read_varint(rec, &mut pos)?;
        let key_len = read_varint(rec, &mut pos)?;
        let key = match key_len {
            -1 => None,
            n if n >= 0 && pos + n as usize <= end => {
                pos += n as usize;
                Some(pos - n as usize..pos)
            }
            _ => return None,
        };
        let value_len = read_varint(rec, &mut pos)?;
        let value = match value_len {
            -1 => None,
            n if n >= 0 && pos + n as usize <= end => Some(pos..pos + n as usize),
            _ => return None,
        };
        out.push(RecordRef { span: start..end, offset_delta, timestamp_delta, key, value });
        pos = end;
    }
    (pos == section.len()).then_some(out)
}

/// A copy of the batch `original` with `section` as its records section
/// holding `count` records; every other header field is kept (base offset,
/// last offset delta, timestamps, producer fields, attributes) and the CRC
/// recomputed. `count` may be 0: an empty batch that only keeps its header.
pub fn rebuild(original: &[u8], section: &[u8], count: i32) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER_LEN + section.len());
    b.extend_from_slice(&original[..HEADER_LEN]);
    b.extend_from_slice(section);
    let len = (b.len() - LOG_OVERHEAD) as i32;
    b[LENGTH..LENGTH + 4].copy_from_slice(&len.to_be_bytes());
    b[RECORD_COUNT..RECORD_COUNT + 4].copy_from_slice(&count.to_be_bytes());
    let crc = compute_crc(&b);
    b[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Builds an uncompressed v2 batch. The log never needs this; tests,
/// benchmarks and the broker's own internal topics do.
pub struct BatchBuilder {
    buf: Vec<u8>,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
}

fn put_varint(buf: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.push((z as u8) | 0x80);
        z >>= 7;
    }
    buf.push(z as u8);
}

impl BatchBuilder {
    pub fn new(base_timestamp: i64) -> BatchBuilder {
        BatchBuilder { buf: vec![0; HEADER_LEN], count: 0, base_timestamp, max_timestamp: base_timestamp }
    }

    pub fn push(&mut self, timestamp: i64, key: Option<&[u8]>, value: Option<&[u8]>) {
        let mut body = Vec::with_capacity(16 + value.map_or(0, |v| v.len()));
        body.push(0); // attributes
        put_varint(&mut body, timestamp - self.base_timestamp);
        put_varint(&mut body, self.count as i64);
        for field in [key, value] {
            match field {
                Some(f) => {
                    put_varint(&mut body, f.len() as i64);
                    body.extend_from_slice(f);
                }
                None => put_varint(&mut body, -1),
            }
        }
        put_varint(&mut body, 0); // headers
        put_varint(&mut self.buf, body.len() as i64);
        self.buf.extend_from_slice(&body);
        self.count += 1;
        self.max_timestamp = self.max_timestamp.max(timestamp);
    }

    /// Producer fields for idempotent batches.
    pub fn build_with_producer(mut self, producer_id: i64, epoch: i16, base_sequence: i32) -> Vec<u8> {
        let b = &mut self.buf;
        let len = (b.len() - LOG_OVERHEAD) as i32;
        b[LENGTH..LENGTH + 4].copy_from_slice(&len.to_be_bytes());
        b[LEADER_EPOCH..LEADER_EPOCH + 4].copy_from_slice(&(-1i32).to_be_bytes());
        b[MAGIC] = 2;
        b[LAST_OFFSET_DELTA..LAST_OFFSET_DELTA + 4].copy_from_slice(&(self.count - 1).to_be_bytes());
        b[BASE_TIMESTAMP..BASE_TIMESTAMP + 8].copy_from_slice(&self.base_timestamp.to_be_bytes());
        b[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&self.max_timestamp.to_be_bytes());
        b[PRODUCER_ID..PRODUCER_ID + 8].copy_from_slice(&producer_id.to_be_bytes());
        b[PRODUCER_EPOCH..PRODUCER_EPOCH + 2].copy_from_slice(&epoch.to_be_bytes());
        b[BASE_SEQUENCE..BASE_SEQUENCE + 4].copy_from_slice(&base_sequence.to_be_bytes());
        b[RECORD_COUNT..RECORD_COUNT + 4].copy_from_slice(&self.count.to_be_bytes());
        let crc = compute_crc(b);
        b[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
        self.buf
    }

    pub fn build(self) -> Vec<u8> {
        self.build_with_producer(NO_PRODUCER_ID, -1, NO_SEQUENCE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_batch_validates_and_reports_records() {
        let mut b = BatchBuilder::new(1000);
        b.push(1000, Some(b"k"), Some(b"v1"));
        b.push(990, None, Some(b"v2"));
        b.push(1500, Some(b"k"), None);
        let mut bytes = b.build();
        let h = validate(&bytes).unwrap();
        assert_eq!(h.record_count, 3);
        assert_eq!(h.max_timestamp, 1500);
        set_base_offset(&mut bytes, 40);
        validate(&bytes).unwrap();
        assert_eq!(record_timestamps(&bytes).unwrap(), vec![(1000, 40), (990, 41), (1500, 42)]);
        set_log_append_time(&mut bytes, 7);
        let h = validate(&bytes).unwrap();
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 7);
    }

    #[test]
    fn corrupt_batches_are_refused() {
        let mut b = BatchBuilder::new(0);
        b.push(0, None, Some(b"hello"));
        let good = b.build();
        let mut bad = good.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(matches!(validate(&bad), Err(BatchError::Crc { .. })));
        assert!(matches!(validate(&good[..good.len() - 1]), Err(BatchError::Length { .. })));
        let mut bad = good.clone();
        bad[MAGIC] = 1;
        assert!(matches!(validate(&bad), Err(BatchError::Magic(1))));
        assert!(matches!(validate(&good[..20]), Err(BatchError::TooShort(20))));
        let mut bad = good.clone();
        bad[RECORD_COUNT..RECORD_COUNT + 4].copy_from_slice(&2i32.to_be_bytes());
        let crc = compute_crc(&bad);
        bad[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(validate(&bad), Err(BatchError::RecordCount { .. })));
        assert!(matches!(validate_stored(&bad), Err(BatchError::RecordCount { .. })), "more records than offsets");
        // What compaction leaves (records gone, offsets kept) is a stored batch, not a producer's.
        let mut emptied = good.clone();
        emptied[RECORD_COUNT..RECORD_COUNT + 4].copy_from_slice(&0i32.to_be_bytes());
        emptied[LAST_OFFSET_DELTA..LAST_OFFSET_DELTA + 4].copy_from_slice(&2i32.to_be_bytes());
        let crc = compute_crc(&emptied);
        emptied[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(validate(&emptied).is_err());
        assert_eq!(validate_stored(&emptied).unwrap().last_offset_delta, 2);
    }

    #[test]
    fn records_parse_and_rebuild() {
        let mut b = BatchBuilder::new(100);
        b.push(100, Some(b"a"), Some(b"v1"));
        b.push(105, None, Some(b"v2"));
        b.push(107, Some(b"bb"), None);
        let mut bytes = b.build_with_producer(9, 1, 40);
        set_base_offset(&mut bytes, 1000);
        let h = BatchHeader::read(&bytes);
        let section = &bytes[HEADER_LEN..];
        let recs = parse_records(section, h.record_count).unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(&section[recs[0].key.clone().unwrap()], b"a");
        assert_eq!((recs[1].key.clone(), recs[1].offset_delta, recs[1].timestamp_delta), (None, 1, 5));
        assert!(recs[2].is_tombstone() && !recs[0].is_tombstone());
        assert_eq!(&section[recs[1].value.clone().unwrap()], b"v2");
        assert_eq!(parse_records(section, 4), None);
        assert_eq!(parse_records(&section[..section.len() - 1], 3), None);
        // Keep the last record only: offsets and header fields stay.
        let kept = rebuild(&bytes, &section[recs[2].span.clone()], 1);
        let k = BatchHeader::read(&kept);
        assert_eq!((k.base_offset, k.last_offset(), k.record_count, k.base_sequence), (1000, 1002, 1, 40));
        assert_eq!(compute_crc(&kept), stored_crc(&kept));
        assert_eq!(record_timestamps(&kept).unwrap(), vec![(107, 1002)]);
        let empty = rebuild(&bytes, &[], 0);
        assert_eq!(BatchHeader::read(&empty).record_count, 0);
        assert_eq!(empty.len(), HEADER_LEN);
    }

    #[test]
    fn sequences_wrap() {
        let mut b = BatchBuilder::new(0);
        b.push(0, None, None);
        b.push(0, None, None);
        let h = BatchHeader::read(&b.build_with_producer(1, 0, i32::MAX));
        assert_eq!(h.last_sequence(), 0);
    }
}
