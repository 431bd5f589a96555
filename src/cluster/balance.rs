//! Preferred-leader balancing (Kafka's `auto.leader.rebalance.enable`): a
//! partition's first replica is its preferred leader, and placement spreads
//! those evenly. After a broker returns, the partitions it prefers are led
//! by others; when more than `leader.imbalance.per.broker.percentage` of
//! them are, each one's leader hands leadership back (a Raft leader
//! transfer) once the preferred replica is in sync. Kafka's controller
//! makes the same check and runs the elections; here every leader makes it
//! from its broker's copy of the metadata, which needs no new messages.

use crate::topics::TopicTable;

/// The share (percent) of the replicated partitions that prefer `broker`
/// and are led, by the metadata's last word, by another broker.
pub fn imbalance_percent(table: &TopicTable, broker: i32) -> u32 {
    let (mut preferred, mut elsewhere) = (0u64, 0u64);
    for p in table.topics.values().flat_map(|t| &t.partitions) {
        if p.replicas.len() > 1 && p.replicas[0] == broker {
            preferred += 1;
            elsewhere += u64::from(p.leader != Some(broker));
        }
    }
    (elsewhere * 100).checked_div(preferred).unwrap_or(0) as u32
}

/// The broker the leader of `topic`-`partition` (this broker, `me`) should
/// hand leadership to: its preferred replica, when that is another broker
/// whose imbalance is above `percentage`.
pub fn hand_back_to(table: &TopicTable, topic: &str, partition: i32, me: i32, percentage: u32) -> Option<i32> {
    let p = table.get(topic)?.partitions.get(usize::try_from(partition).ok()?)?;
    let preferred = *p.replicas.first()?;
    (preferred != me && imbalance_percent(table, preferred) > percentage).then_some(preferred)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::topics::{PartitionMeta, TopicMeta};

    fn table(parts: &[(&[i32], i32)]) -> TopicTable {
        let partitions = parts
            .iter()
            .map(|(replicas, leader)| PartitionMeta {
                shard: None,
                leader_epoch: 0,
                replicas: replicas.to_vec(),
                leader: Some(*leader),
                isr: replicas.to_vec(),
                ..Default::default()
            })
            .collect();
        let meta = TopicMeta {
            name: "t".into(),
            id: uuid::Uuid::new_v4(),
            partitions,
            replication_factor: 3,
            configs: Default::default(),
            internal: false,
        };
        let mut t = TopicTable::default();
        t.topics.insert("t".into(), Arc::new(meta));
        t
    }

    #[test]
    fn leadership_goes_back_only_above_the_threshold() {
        // Broker 1 prefers partitions 0 and 3; broker 2 leads partition 0.
        let t = table(&[(&[1, 2, 3], 2), (&[2, 3, 1], 2), (&[3, 1, 2], 3), (&[1, 3, 2], 1)]);
        assert_eq!(imbalance_percent(&t, 1), 50);
        assert_eq!(imbalance_percent(&t, 2), 0);
        assert_eq!(hand_back_to(&t, "t", 0, 2, 10), Some(1));
        assert_eq!(hand_back_to(&t, "t", 0, 2, 50), None, "50 % is not above 50 %");
        assert_eq!(hand_back_to(&t, "t", 1, 2, 10), None, "the leader is the preferred one");
        assert_eq!(hand_back_to(&t, "t", 9, 2, 10), None, "no such partition");
    }
}
