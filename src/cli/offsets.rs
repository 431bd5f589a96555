//! ListOffsets against each partition's leader: the earliest and latest
//! offsets the consumer, `group describe` (lag) and `group reset-offsets`
//! start from.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest};

use super::client::{topic_name, Cluster, TopicLayout};
use super::kafka_error::check;

pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;

/// partition → offset at `timestamp` (LATEST, EARLIEST or a time in ms)
/// for `partitions` of `topic`.
pub fn list(
    cluster: &mut Cluster,
    topic: &TopicLayout,
    partitions: &[i32],
    timestamp: i64,
) -> Result<BTreeMap<i32, i64>> {
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for &p in partitions {
        let Some(layout) = topic.partitions.iter().find(|l| l.index == p) else {
            bail!("topic {} has no partition {p}", topic.name);
        };
        by_leader.entry(layout.leader).or_default().push(p);
    }
    let mut out = BTreeMap::new();
    for (leader, parts) in by_leader {
        let conn = cluster.node(leader)?;
        let v = conn.version::<ListOffsetsRequest>(7)?;
        let mut t = ListOffsetsTopic::default();
        t.name = topic_name(&topic.name);
        t.partitions = parts
            .iter()
            .map(|&p| {
                let mut lp = ListOffsetsPartition::default();
                lp.partition_index = p;
                lp.current_leader_epoch = -1;
                lp.timestamp = timestamp;
                lp
            })
            .collect();
        let mut req = ListOffsetsRequest::default();
        req.replica_id = BrokerId(-1);
        req.topics = vec![t];
        let resp = conn.call(&req, v)?;
        for t in &resp.topics {
            for p in &t.partitions {
                check(p.error_code, None)
                    .with_context(|| format!("offsets of {}-{}", topic.name, p.partition_index))?;
                out.insert(p.partition_index, p.offset);
            }
        }
    }
    for p in partitions {
        if !out.contains_key(p) {
            bail!("no offset returned for {}-{p}", topic.name);
        }
    }
    Ok(out)
}
