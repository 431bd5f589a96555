//! Committed offsets on disk: the internal, compacted `__consumer_offsets`
//! topic, in the same storage engine as every other topic.
//!
//! A group's records go to one partition of it, chosen as Kafka chooses
//! (`partition_for`), and the group is coordinated by the shard that owns
//! that partition, so a commit is a local append. Commits are appended as
//! one batch with acks=all (durable before the OffsetCommit is answered)
//! and applied to the in-memory `OffsetMap` only then; at start-up each
//! shard replays its partitions into that map before serving groups.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::records::RecordBatchDecoder;
use sluice_storage::batch::{whole_batches, BatchBuilder};

use super::offsets::CommittedOffset;
use super::records::{self, Key};
use crate::partition::Partition;
use crate::shard;
use crate::topics::{TopicPartition, OFFSETS_TOPIC};

/// Kafka's partition for a group: Java's `String.hashCode` of the id made
/// non-negative, modulo the partition count. Matching it keeps a group on
/// the partition number Kafka tools expect.
pub fn partition_for(group: &str, partitions: usize) -> i32 {
    let h = group.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32));
    ((h & 0x7fff_ffff) as usize % partitions.max(1)) as i32
}

/// The `__consumer_offsets` partition that keeps `group`'s records, and
/// the shard that owns it here (None: another broker coordinates it).
pub fn group_partition(group: &str) -> Option<(TopicPartition, Option<usize>)> {
    let table = shard::current().topics();
    let meta = table.get(OFFSETS_TOPIC)?;
    let p = partition_for(group, meta.partitions.len());
    Some((TopicPartition::new(OFFSETS_TOPIC, p), meta.partitions[p as usize].shard))
}

/// One record to write: a key and its value, or `None` to delete the key.
pub type Entry = (Vec<u8>, Option<Vec<u8>>);

pub fn commit_entry(group: &str, tp: &TopicPartition, o: &CommittedOffset) -> Entry {
    (records::offset_key(group, &tp.topic, tp.partition), Some(records::offset_value(o)))
}

pub fn tombstone(group: &str, tp: &TopicPartition) -> Entry {
    (records::offset_key(group, &tp.topic, tp.partition), None)
}

/// Appends the entries as one batch to the group's partition (on this
/// shard) and waits until it is durable. The error is the one Kafka gives
/// a commit whose write failed.
pub async fn append(group: &str, entries: Vec<Entry>) -> Result<(), i16> {
    if entries.is_empty() {
        return Ok(());
    }
    let part = group_partition(group).and_then(|(tp, _)| shard::current().partition(&tp));
    let Some(part) = part else { return Err(ResponseError::NotCoordinator.code()) };
    let now = sluice_storage::log::now_ms();
    let mut b = BatchBuilder::new(now);
    for (key, value) in &entries {
        b.push(now, Some(key), value.as_deref());
    }
    match part.append(vec![b.build()], -1).await {
        Ok(_) => Ok(()),
        Err((e, why)) => {
            tracing::warn!(group, %why, "writing to {OFFSETS_TOPIC} failed");
            Err(match e {
                ResponseError::MessageTooLarge => ResponseError::InvalidCommitOffsetSize,
                ResponseError::NotLeaderOrFollower => ResponseError::NotCoordinator,
                _ => ResponseError::CoordinatorNotAvailable,
            }
            .code())
        }
    }
}

/// Replays one partition of `__consumer_offsets` through `apply` in log
/// order (a commit, or `None` for a tombstone), so the last record of each
/// key wins. Returns the records read.
pub async fn replay(
    part: Rc<Partition>,
    mut apply: impl FnMut(&str, TopicPartition, Option<CommittedOffset>),
) -> Result<usize, String> {
    let mut offset = part.offsets.log_start.get();
    let end = part.offsets.end.get();
    let mut count = 0;
    while offset < end {
        let slice = part.read(offset, 1 << 20).await.map_err(|(_, why)| why)?;
        let Some(slice) = slice else { break };
        let bytes = slice.read().await.map_err(|e| e.to_string())?;
        let (whole, next) = whole_batches(&bytes);
        let Some(next) = next else { return Err(format!("no whole batch at offset {offset}")) };
        let mut buf = Bytes::copy_from_slice(&bytes[..whole]);
        let sets = RecordBatchDecoder::decode_all(&mut buf).map_err(|e| format!("offset {offset}: {e}"))?;
        for record in sets.into_iter().flat_map(|s| s.records) {
            // Records before the offset asked for were already applied.
            if record.offset < offset {
                continue;
            }
            count += 1;
            let Some(Key::Offset { group, topic, partition }) = record.key.as_deref().and_then(records::decode_key)
            else {
                continue;
            };
            let tp = TopicPartition::new(&topic, partition);
            match record.value.as_deref().map(records::decode_value) {
                None => apply(&group, tp, None),
                Some(Some(o)) => apply(&group, tp, Some(o)),
                Some(None) => tracing::warn!(group, %topic, partition, "skipping an offset record of unknown format"),
            }
        }
        offset = next.max(offset + 1);
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_matches_kafka() {
        // Java: "my-group".hashCode() == -1_906_497_762 (0x8e5d_271e);
        // Kafka masks it to 0x0e5d_271e and takes partition 36 of 50.
        assert_eq!(partition_for("my-group", 50), 36);
        // A negative hash is masked, not negated (Kafka's Utils.abs).
        let h = "polygenelubricants".encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32));
        assert_eq!(h, i32::MIN);
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        assert_eq!(partition_for("", 50), 0);
        assert_eq!(partition_for("x", 0), 0);
    }
}
