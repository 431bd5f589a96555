//! Committed offsets of the groups a shard coordinates.
//!
//! # The durability boundary
//!
//! Everything that reads or writes committed offsets goes through
//! [`OffsetStore`], on the shard that owns the group (`super::owner`). The
//! coordinator's commit path (`super::commit_offsets`) is:
//!
//! 1. validate the commit against the group (generation, member id) while
//!    holding the group's `RefCell` borrow, then release it;
//! 2. `super::persist_commits(group, &offsets).await`: today a no-op;
//! 3. [`OffsetStore::commit`]: apply the offsets to the in-memory map;
//!    OffsetFetch reads only this map ([`OffsetStore::fetch`],
//!    [`OffsetStore::fetch_all`]).
//!
//! To make offsets durable (next step), step 2 appends one record per
//! partition (key: group, topic, partition; value: offset, leader epoch,
//! metadata, commit time — Kafka's `OffsetCommitKey`/`OffsetCommitValue`
//! layout) to partition `owner(group)` of an internal, compacted
//! `__consumer_offsets` topic with acks=all, and answers the commit with
//! the append's error if it fails, without applying it. On start-up each
//! shard replays its `__consumer_offsets` partitions into a
//! [`MemoryOffsetStore`] before serving groups (answering
//! COORDINATOR_LOAD_IN_PROGRESS meanwhile). The map stays the cache that
//! OffsetFetch reads, so only the commit path and start-up change. The
//! internal topic's partition count must then be fixed (as Kafka's
//! `offsets.topic.num.partitions`), because `owner` must not move.

use std::collections::{BTreeMap, HashMap};

use crate::topics::TopicPartition;

/// One committed offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    /// -1 when the client did not say (OffsetCommit before v6).
    pub leader_epoch: i32,
    /// The client's metadata string; empty when it sent none (null).
    pub metadata: String,
    /// When the broker took the commit (ms since the epoch).
    pub commit_timestamp_ms: i64,
}

/// Where committed offsets live; see the module documentation for how a
/// durable implementation plugs in.
pub trait OffsetStore {
    /// Records offsets for `group`, replacing earlier commits of the same
    /// partitions.
    fn commit(&mut self, group: &str, offsets: Vec<(TopicPartition, CommittedOffset)>);
    /// The committed offset of one partition, if any.
    fn fetch(&self, group: &str, tp: &TopicPartition) -> Option<CommittedOffset>;
    /// Every committed partition of `group`, by topic then partition.
    fn fetch_all(&self, group: &str) -> Vec<(TopicPartition, CommittedOffset)>;
}

/// Offsets kept in memory only: lost on a broker restart.
#[derive(Default)]
pub struct MemoryOffsetStore {
    groups: HashMap<String, BTreeMap<TopicPartition, CommittedOffset>>,
}

impl OffsetStore for MemoryOffsetStore {
    fn commit(&mut self, group: &str, offsets: Vec<(TopicPartition, CommittedOffset)>) {
        if offsets.is_empty() {
            return;
        }
        let map = self.groups.entry(group.to_string()).or_default();
        for (tp, o) in offsets {
            map.insert(tp, o);
        }
    }

    fn fetch(&self, group: &str, tp: &TopicPartition) -> Option<CommittedOffset> {
        self.groups.get(group)?.get(tp).cloned()
    }

    fn fetch_all(&self, group: &str) -> Vec<(TopicPartition, CommittedOffset)> {
        self.groups.get(group).map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn off(offset: i64) -> CommittedOffset {
        CommittedOffset { offset, leader_epoch: -1, metadata: String::new(), commit_timestamp_ms: 0 }
    }

    #[test]
    fn commit_replaces_and_fetch_all_is_ordered() {
        let mut s = MemoryOffsetStore::default();
        s.commit("g", vec![(TopicPartition::new("b", 1), off(5)), (TopicPartition::new("a", 2), off(7))]);
        s.commit("g", vec![(TopicPartition::new("b", 1), off(9))]);
        s.commit("h", vec![(TopicPartition::new("a", 0), off(1))]);
        assert_eq!(s.fetch("g", &TopicPartition::new("b", 1)), Some(off(9)));
        assert_eq!(s.fetch("g", &TopicPartition::new("b", 0)), None);
        assert_eq!(s.fetch("x", &TopicPartition::new("b", 1)), None);
        let all: Vec<_> =
            s.fetch_all("g").into_iter().map(|(tp, o)| (tp.topic.to_string(), tp.partition, o.offset)).collect();
        assert_eq!(all, vec![("a".to_string(), 2, 7), ("b".to_string(), 1, 9)]);
        assert!(s.fetch_all("x").is_empty());
    }
}
