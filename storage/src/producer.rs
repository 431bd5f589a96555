//! Idempotent-producer state of one partition: per producer id, its epoch
//! and the sequence ranges and offsets of its last five batches, so that a
//! retried batch is recognised and answered with its original offsets.
//!
//! The rules follow Apache Kafka's `ProducerStateManager`: an older epoch is
//! fenced, a new epoch starts at sequence 0, a known epoch continues at the
//! next sequence (wrapping after `i32::MAX`), and a producer the partition
//! has never seen (or has expired) may start anywhere.

use std::collections::{HashMap, VecDeque};

use crate::batch::BatchHeader;
use crate::error::ProducerError;

/// How many batches per producer are remembered (Kafka's limit: a producer
/// keeps at most five requests in flight when idempotent).
pub const BATCHES_KEPT: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<BatchMeta>,
    /// Max timestamp of its last batch, for `producer.id.expiration.ms`.
    pub last_timestamp: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqCheck {
    /// Append the batch.
    Append,
    /// Already in the log: answer with these offsets and append nothing.
    Duplicate { first_offset: i64, last_offset: i64 },
}

#[derive(Default, Clone, Debug, PartialEq, Eq)]
pub struct ProducerState {
    producers: HashMap<i64, ProducerEntry>,
}

fn in_sequence(last: i32, next: i32) -> bool {
    next == last.wrapping_add(1) || (last == i32::MAX && next == 0)
}

impl ProducerState {
    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Decides what to do with an incoming batch, changing nothing.
    pub fn check(&self, h: &BatchHeader) -> Result<SeqCheck, ProducerError> {
        if !h.has_producer_id() || h.base_sequence < 0 {
            return Ok(SeqCheck::Append);
        }
        let Some(e) = self.producers.get(&h.producer_id) else {
            return Ok(SeqCheck::Append);
        };
        if h.producer_epoch < e.epoch {
            return Err(ProducerError::InvalidEpoch {
                producer_id: h.producer_id,
                epoch: h.producer_epoch,
                current: e.epoch,
            });
        }
        let last = e.batches.back().map_or(-1, |b| b.last_seq);
        if h.producer_epoch > e.epoch {
            if h.base_sequence != 0 {
                return Err(ProducerError::OutOfOrderSequence {
                    producer_id: h.producer_id,
                    last: -1,
                    first: h.base_sequence,
                });
            }
            return Ok(SeqCheck::Append);
        }
        let (first_seq, last_seq) = (h.base_sequence, h.last_sequence());
        if let Some(b) = e.batches.iter().find(|b| b.first_seq == first_seq && b.last_seq == last_seq) {
            return Ok(SeqCheck::Duplicate { first_offset: b.first_offset, last_offset: b.last_offset });
        }
        if e.batches.is_empty() || in_sequence(last, first_seq) {
            Ok(SeqCheck::Append)
        } else {
            Err(ProducerError::OutOfOrderSequence { producer_id: h.producer_id, last, first: first_seq })
        }
    }

    /// Records a batch that is now in the log at its final offsets.
    pub fn update(&mut self, h: &BatchHeader) {
        if !h.has_producer_id() {
            return;
        }
        let e = self.producers.entry(h.producer_id).or_insert_with(|| ProducerEntry {
            epoch: h.producer_epoch,
            batches: VecDeque::new(),
            last_timestamp: h.max_timestamp,
        });
        if h.producer_epoch != e.epoch {
            e.epoch = h.producer_epoch;
            e.batches.clear();
        }
        e.last_timestamp = h.max_timestamp;
        if h.base_sequence >= 0 {
            if e.batches.len() == BATCHES_KEPT {
                e.batches.pop_front();
            }
            e.batches.push_back(BatchMeta {
                first_seq: h.base_sequence,
                last_seq: h.last_sequence(),
                first_offset: h.base_offset,
                last_offset: h.last_offset(),
            });
        }
    }

    /// Each producer's last batch offset: the cleaner keeps that batch (if
    /// only as an empty header) so a replay still finds the producer.
    pub fn last_offsets(&self) -> HashMap<i64, i64> {
        self.producers.iter().filter_map(|(&id, e)| Some((id, e.batches.back()?.last_offset))).collect()
    }

    /// Forgets producers whose last batch is older than `before_ms`.
    pub fn expire(&mut self, before_ms: i64) {
        self.producers.retain(|_, e| e.last_timestamp >= before_ms);
    }

    /// Snapshot layout: u32 count, then per producer i64 id, i16 epoch, i64
    /// last timestamp, u8 n, n × (i32, i32, i64, i64); then CRC-32C of it all.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.producers.len() * 64);
        out.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        let mut ids: Vec<_> = self.producers.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let e = &self.producers[&id];
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&e.epoch.to_be_bytes());
            out.extend_from_slice(&e.last_timestamp.to_be_bytes());
            out.push(e.batches.len() as u8);
            for b in &e.batches {
                out.extend_from_slice(&b.first_seq.to_be_bytes());
                out.extend_from_slice(&b.last_seq.to_be_bytes());
                out.extend_from_slice(&b.first_offset.to_be_bytes());
                out.extend_from_slice(&b.last_offset.to_be_bytes());
            }
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// `None` for a truncated or corrupt snapshot (the log then replays).
    pub fn decode(b: &[u8]) -> Option<ProducerState> {
        let (body, crc) = b.split_at_checked(b.len().checked_sub(4)?)?;
        if crc32c::crc32c(body) != u32::from_be_bytes(crc.try_into().ok()?) {
            return None;
        }
        let mut r = Reader(body);
        let count = r.u32()?;
        let mut state = ProducerState::default();
        for _ in 0..count {
            let id = r.i64()?;
            let epoch = r.i16()?;
            let last_timestamp = r.i64()?;
            let n = r.u8()? as usize;
            if n > BATCHES_KEPT {
                return None;
            }
            let mut batches = VecDeque::with_capacity(n);
            for _ in 0..n {
                batches.push_back(BatchMeta {
                    first_seq: r.i32()?,
                    last_seq: r.i32()?,
                    first_offset: r.i64()?,
                    last_offset: r.i64()?,
                });
            }
            state.producers.insert(id, ProducerEntry { epoch, batches, last_timestamp });
        }
        r.0.is_empty().then_some(state)
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_at_checked(N)?;
        self.0 = rest;
        head.try_into().ok()
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    fn i16(&mut self) -> Option<i16> {
        self.take().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{BatchBuilder, BatchHeader};

    fn header(pid: i64, epoch: i16, seq: i32, records: usize, base_offset: i64) -> BatchHeader {
        let mut b = BatchBuilder::new(0);
        for _ in 0..records {
            b.push(0, None, Some(b"x"));
        }
        let mut h = BatchHeader::read(&b.build_with_producer(pid, epoch, seq));
        h.base_offset = base_offset;
        h
    }

    #[test]
    fn duplicates_gaps_and_fencing() {
        let mut s = ProducerState::default();
        let h = header(7, 0, 0, 3, 100);
        assert_eq!(s.check(&h), Ok(SeqCheck::Append));
        s.update(&h);
        let h2 = header(7, 0, 3, 2, 103);
        assert_eq!(s.check(&h2), Ok(SeqCheck::Append));
        s.update(&h2);
        assert_eq!(s.check(&header(7, 0, 0, 3, -1)), Ok(SeqCheck::Duplicate { first_offset: 100, last_offset: 102 }));
        assert!(matches!(s.check(&header(7, 0, 9, 1, -1)), Err(ProducerError::OutOfOrderSequence { .. })));
        assert!(matches!(s.check(&header(7, -1, 5, 1, -1)), Err(ProducerError::InvalidEpoch { .. })));
        assert!(matches!(s.check(&header(7, 1, 5, 1, -1)), Err(ProducerError::OutOfOrderSequence { .. })));
        assert_eq!(s.check(&header(7, 1, 0, 1, -1)), Ok(SeqCheck::Append));
        assert_eq!(s.check(&header(8, 0, 42, 1, -1)), Ok(SeqCheck::Append));
        let decoded = ProducerState::decode(&s.encode()).unwrap();
        assert_eq!(decoded, s);
        let mut bad = s.encode();
        bad[5] ^= 1;
        assert_eq!(ProducerState::decode(&bad), None);
    }

    #[test]
    fn only_five_batches_are_remembered() {
        let mut s = ProducerState::default();
        for i in 0..7 {
            s.update(&header(1, 0, i, 1, i as i64));
        }
        assert_eq!(s.get(1).unwrap().batches.len(), BATCHES_KEPT);
        assert!(s.check(&header(1, 0, 1, 1, -1)).is_err());
        assert!(matches!(s.check(&header(1, 0, 6, 1, -1)), Ok(SeqCheck::Duplicate { .. })));
    }
}
