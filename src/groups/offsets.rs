//! Committed offsets of the groups a shard coordinates: the in-memory
//! view that OffsetFetch reads.
//!
//! Durability lives beside it (`super::persist`): a commit is appended to
//! the group's partition of `__consumer_offsets` and made durable first,
//! and only then applied here; at start-up each shard replays its
//! partitions of that topic into this map before it serves groups.

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

/// Committed offsets by group, then partition.
#[derive(Default)]
pub struct OffsetMap {
    groups: HashMap<String, BTreeMap<TopicPartition, CommittedOffset>>,
}

impl OffsetMap {
    /// Records offsets for `group`, replacing earlier commits of the same
    /// partitions.
    pub fn commit(&mut self, group: &str, offsets: Vec<(TopicPartition, CommittedOffset)>) {
        if offsets.is_empty() {
            return;
        }
        let map = self.groups.entry(group.to_string()).or_default();
        for (tp, o) in offsets {
            map.insert(tp, o);
        }
    }

    /// The committed offset of one partition, if any.
    pub fn fetch(&self, group: &str, tp: &TopicPartition) -> Option<CommittedOffset> {
        self.groups.get(group)?.get(tp).cloned()
    }

    /// Every committed partition of `group`, by topic then partition.
    pub fn fetch_all(&self, group: &str) -> Vec<(TopicPartition, CommittedOffset)> {
        self.groups.get(group).map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
    }

    /// Forgets one partition's commit (a tombstone, OffsetDelete).
    pub fn delete(&mut self, group: &str, tp: &TopicPartition) {
        if let Some(m) = self.groups.get_mut(group) {
            m.remove(tp);
            if m.is_empty() {
                self.groups.remove(group);
            }
        }
    }

    /// Forgets the group; returns the partitions it had committed.
    pub fn remove_group(&mut self, group: &str) -> Vec<TopicPartition> {
        self.groups.remove(group).map(|m| m.into_keys().collect()).unwrap_or_default()
    }

    /// Keeps only the groups `keep` says yes to.
    pub fn retain_groups(&mut self, keep: impl Fn(&str) -> bool) {
        self.groups.retain(|g, _| keep(g));
    }

    pub fn has_group(&self, group: &str) -> bool {
        self.groups.contains_key(group)
    }

    pub fn group_ids(&self) -> impl Iterator<Item = &String> {
        self.groups.keys()
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
        let mut s = OffsetMap::default();
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
        s.delete("h", &TopicPartition::new("a", 0));
        assert!(!s.has_group("h"));
        assert_eq!(s.remove_group("g").len(), 2);
        assert_eq!(s.group_ids().count(), 0);
    }
}
