//! Sparse indexes of one segment, in Kafka's on-disk entry layouts:
//! `.index` holds (relative offset u32, position u32) and `.timeindex`
//! (timestamp i64, relative offset u32), big-endian.
//!
//! Both live in memory while the segment is open and are written whole when
//! the segment is sealed or the log closes; a missing or inconsistent file is
//! rebuilt from the segment's batches.

/// Offset index: an entry names the base offset of a batch and its position.
#[derive(Default, Clone, Debug, PartialEq, Eq)]
pub struct OffsetIndex {
    entries: Vec<(u32, u32)>,
}

impl OffsetIndex {
    pub fn push(&mut self, relative_offset: u32, position: u32) {
        debug_assert!(self.entries.last().is_none_or(|&(o, p)| o < relative_offset && p < position));
        self.entries.push((relative_offset, position));
    }

    /// Position of the last indexed batch starting at or before `relative`,
    /// or 0 (the segment's first batch).
    pub fn floor(&self, relative: u32) -> u32 {
        match self.entries.partition_point(|&(o, _)| o <= relative) {
            0 => 0,
            i => self.entries[i - 1].1,
        }
    }

    pub fn last_position(&self) -> u32 {
        self.entries.last().map_or(0, |e| e.1)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * 8);
        for &(o, p) in &self.entries {
            out.extend_from_slice(&o.to_be_bytes());
            out.extend_from_slice(&p.to_be_bytes());
        }
        out
    }

    /// `None` unless the bytes are whole, strictly increasing entries that
    /// point inside a segment of `segment_size` bytes.
    pub fn decode(b: &[u8], segment_size: u64) -> Option<OffsetIndex> {
        if b.len() % 8 != 0 {
            return None;
        }
        let mut idx = OffsetIndex::default();
        for e in b.chunks_exact(8) {
            let o = u32::from_be_bytes(e[..4].try_into().unwrap());
            let p = u32::from_be_bytes(e[4..].try_into().unwrap());
            if p as u64 >= segment_size || idx.entries.last().is_some_and(|&(lo, lp)| lo >= o || lp >= p) {
                return None;
            }
            idx.entries.push((o, p));
        }
        Some(idx)
    }
}

/// Time index: an entry (T, o) says no record before relative offset `o`'s
/// batch end has a timestamp above T. Timestamps strictly increase.
#[derive(Default, Clone, Debug, PartialEq, Eq)]
pub struct TimeIndex {
    entries: Vec<(i64, u32)>,
}

impl TimeIndex {
    pub fn push(&mut self, timestamp: i64, relative_offset: u32) {
        if self.entries.last().is_none_or(|&(t, o)| t < timestamp && o <= relative_offset) {
            self.entries.push((timestamp, relative_offset));
        }
    }

    /// The last entry whose timestamp is strictly below `timestamp`: every
    /// record up to its batch is older than `timestamp`.
    pub fn floor_below(&self, timestamp: i64) -> Option<(i64, u32)> {
        match self.entries.partition_point(|&(t, _)| t < timestamp) {
            0 => None,
            i => Some(self.entries[i - 1]),
        }
    }

    pub fn last(&self) -> Option<(i64, u32)> {
        self.entries.last().copied()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * 12);
        for &(t, o) in &self.entries {
            out.extend_from_slice(&t.to_be_bytes());
            out.extend_from_slice(&o.to_be_bytes());
        }
        out
    }

    pub fn decode(b: &[u8], max_relative: u32) -> Option<TimeIndex> {
        if b.len() % 12 != 0 {
            return None;
        }
        let mut idx = TimeIndex::default();
        for e in b.chunks_exact(12) {
            let t = i64::from_be_bytes(e[..8].try_into().unwrap());
            let o = u32::from_be_bytes(e[8..].try_into().unwrap());
            if o > max_relative || idx.entries.last().is_some_and(|&(lt, lo)| lt >= t || lo > o) {
                return None;
            }
            idx.entries.push((t, o));
        }
        Some(idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_floor_and_roundtrip() {
        let mut i = OffsetIndex::default();
        assert_eq!(i.floor(5), 0);
        i.push(10, 4096);
        i.push(20, 8200);
        assert_eq!(i.floor(9), 0);
        assert_eq!(i.floor(10), 4096);
        assert_eq!(i.floor(19), 4096);
        assert_eq!(i.floor(1000), 8200);
        assert_eq!(OffsetIndex::decode(&i.encode(), 9000), Some(i.clone()));
        assert_eq!(OffsetIndex::decode(&i.encode(), 8200), None);
        assert_eq!(OffsetIndex::decode(&i.encode()[..7], 9000), None);
    }

    #[test]
    fn time_index_keeps_a_running_maximum() {
        let mut t = TimeIndex::default();
        t.push(100, 0);
        t.push(90, 5);
        t.push(150, 9);
        assert_eq!(t.floor_below(100), None);
        assert_eq!(t.floor_below(101), Some((100, 0)));
        assert_eq!(t.floor_below(10_000), Some((150, 9)));
        assert_eq!(TimeIndex::decode(&t.encode(), 9), Some(t.clone()));
        assert_eq!(TimeIndex::decode(&t.encode(), 8), None);
    }
}
