//! The leader-epoch cache (Kafka's `leader-epoch-checkpoint`): the first
//! offset of each partition leader epoch present in the log. It answers
//! OffsetForLeaderEpoch (where a follower or consumer that saw an older
//! leader must cut its log) and gives replication each batch's term.

/// (epoch, first offset), epochs and offsets both increasing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EpochCache {
    entries: Vec<(i32, i64)>,
}

impl EpochCache {
    /// A batch of `epoch` starts at `offset`: records the epoch if it is
    /// newer than the latest. Returns whether the cache changed.
    pub fn assign(&mut self, epoch: i32, offset: i64) -> bool {
        if epoch < 0 || self.entries.last().is_some_and(|&(e, _)| e >= epoch) {
            return false;
        }
        self.entries.push((epoch, offset));
        true
    }

    /// The log now ends at `end`: epochs that start there or later go.
    pub fn truncate_from(&mut self, end: i64) -> bool {
        let keep = self.entries.partition_point(|&(_, start)| start < end);
        let changed = keep < self.entries.len();
        self.entries.truncate(keep);
        changed
    }

    /// The log now starts at `start`: epochs wholly before it go, and the
    /// one it falls in starts there.
    pub fn truncate_before(&mut self, start: i64) -> bool {
        let first_kept = self.entries.partition_point(|&(_, s)| s <= start).saturating_sub(1);
        let mut changed = first_kept > 0;
        self.entries.drain(..first_kept);
        if let Some(first) = self.entries.first_mut().filter(|e| e.1 < start) {
            first.1 = start;
            changed = true;
        }
        changed
    }

    pub fn latest(&self) -> Option<(i32, i64)> {
        self.entries.last().copied()
    }

    pub fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }

    /// Kafka's `endOffsetFor`: the largest epoch at most `epoch` and the
    /// offset its records end at (where the next epoch starts, or the log
    /// end for the latest). An epoch older than every one kept ends where
    /// the first kept starts; one newer than the latest is unknown
    /// (`(-1, -1)`).
    pub fn end_offset_for(&self, epoch: i32, log_end: i64) -> (i32, i64) {
        match self.latest() {
            Some((latest, _)) if epoch == latest => return (latest, log_end),
            None => return (-1, -1),
            _ => {}
        }
        let higher = self.entries.partition_point(|&(e, _)| e <= epoch);
        let Some(&(_, next_start)) = self.entries.get(higher) else { return (-1, -1) };
        match higher.checked_sub(1).map(|i| self.entries[i]) {
            Some((floor, _)) => (floor, next_start),
            None => (epoch, next_start),
        }
    }

    /// Kafka's checkpoint text: a version line (0), a count line, then
    /// `epoch offset` per line.
    pub fn encode(&self) -> Vec<u8> {
        let mut s = format!("0\n{}\n", self.entries.len());
        for (e, o) in &self.entries {
            s.push_str(&format!("{e} {o}\n"));
        }
        s.into_bytes()
    }

    /// `None` when the text is not a well-formed checkpoint.
    pub fn decode(b: &[u8]) -> Option<EpochCache> {
        let text = std::str::from_utf8(b).ok()?;
        let mut lines = text.lines();
        if lines.next()?.trim() != "0" {
            return None;
        }
        let count: usize = lines.next()?.trim().parse().ok()?;
        let mut cache = EpochCache::default();
        for _ in 0..count {
            let mut f = lines.next()?.split_whitespace();
            let (e, o) = (f.next()?.parse().ok()?, f.next()?.parse().ok()?);
            if !cache.assign(e, o) || cache.entries.windows(2).any(|w| w[0].1 > w[1].1) {
                return None;
            }
        }
        Some(cache)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> EpochCache {
        let mut c = EpochCache::default();
        for &(e, o) in entries {
            assert!(c.assign(e, o));
        }
        c
    }

    #[test]
    fn end_offsets_as_kafka_answers_them() {
        let c = cache(&[(1, 0), (3, 10), (4, 25)]);
        assert_eq!(c.end_offset_for(4, 40), (4, 40), "the latest ends at the log end");
        assert_eq!(c.end_offset_for(3, 40), (3, 25));
        assert_eq!(c.end_offset_for(2, 40), (1, 10), "an epoch with no records: the one before it");
        assert_eq!(c.end_offset_for(0, 40), (0, 0), "older than all: where the first starts");
        assert_eq!(c.end_offset_for(5, 40), (-1, -1), "newer than the latest: unknown");
        assert_eq!(EpochCache::default().end_offset_for(0, 0), (-1, -1));
    }

    #[test]
    fn only_newer_epochs_are_assigned_and_truncation_both_ways() {
        let mut c = cache(&[(1, 0), (3, 10), (4, 25)]);
        assert!(!c.assign(3, 30) && !c.assign(-1, 30));
        assert!(c.truncate_from(25));
        assert_eq!(c.entries(), &[(1, 0), (3, 10)]);
        assert!(!c.truncate_from(25));
        assert!(c.truncate_before(12));
        assert_eq!(c.entries(), &[(3, 12)]);
        assert!(!c.truncate_before(12));
        let mut d = cache(&[(1, 0), (3, 10)]);
        assert!(d.truncate_before(10));
        assert_eq!(d.entries(), &[(3, 10)]);
    }

    #[test]
    fn checkpoint_text_round_trips_and_bad_text_is_refused() {
        let c = cache(&[(0, 0), (2, 7)]);
        assert_eq!(String::from_utf8(c.encode()).unwrap(), "0\n2\n0 0\n2 7\n");
        assert_eq!(EpochCache::decode(&c.encode()), Some(c));
        assert_eq!(EpochCache::decode(b"0\n2\n2 7\n0 0\n"), None, "epochs must increase");
        assert_eq!(EpochCache::decode(b"0\n2\n1 9\n2 3\n"), None, "offsets must not decrease");
        assert_eq!(EpochCache::decode(b"1\n0\n"), None);
        assert_eq!(EpochCache::decode(b"0\n3\n0 0\n"), None);
    }
}
