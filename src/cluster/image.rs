//! The cluster's metadata as the metadata log builds it: records (what the
//! controller writes) and the image (what applying them gives). Every
//! broker applies the same records in the same order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One entry of the metadata log, as JSON. Kafka's metadata records carry
/// the same facts (RegisterBrokerRecord, FenceBrokerRecord, …); the format
/// is ours.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Record {
    /// The first record of a new cluster.
    ClusterId {
        id: String,
    },
    /// A broker (re)starts: `incarnation` tells one run from the next.
    RegisterBroker {
        id: i32,
        incarnation: uuid::Uuid,
        host: String,
        port: u16,
        rack: Option<String>,
    },
    /// Not heard from within `broker.session.timeout.ms`.
    FenceBroker {
        id: i32,
        incarnation: uuid::Uuid,
    },
    /// Heard from again.
    UnfenceBroker {
        id: i32,
        incarnation: uuid::Uuid,
    },
    /// A topic and the replicas of each of its partitions (Kafka's
    /// TopicRecord with its PartitionRecords).
    CreateTopic {
        name: String,
        id: uuid::Uuid,
        replicas: Vec<Vec<i32>>,
        configs: BTreeMap<String, String>,
        internal: bool,
    },
    /// Partitions added at the end (CreatePartitions).
    AddPartitions {
        name: String,
        id: uuid::Uuid,
        replicas: Vec<Vec<i32>>,
    },
    RemoveTopic {
        name: String,
        id: uuid::Uuid,
    },
    /// The topic's whole set of configs from now on.
    TopicConfigs {
        name: String,
        id: uuid::Uuid,
        configs: BTreeMap<String, String>,
    },
    /// Producer ids `start..start + len` are the broker's to hand out
    /// (Kafka's ProducerIdsRecord). Taken only if `start` is the next free
    /// id, so no two brokers ever get the same block.
    ProducerIdBlock {
        broker: i32,
        start: i64,
        len: i64,
    },
    /// A partition's replicas are to become `target` (Kafka's
    /// AlterPartitionReassignments; the partition's current replicas as the
    /// target cancel a reassignment).
    Reassign {
        name: String,
        id: uuid::Uuid,
        partition: i32,
        target: Vec<i32>,
    },
    /// A reassignment is done: the partition's Raft group has `replicas`,
    /// as its leader reports.
    Reassigned {
        name: String,
        id: uuid::Uuid,
        partition: i32,
        replicas: Vec<i32>,
    },
    /// A replicated partition's leader, its epoch (the Raft term) and ISR,
    /// as the leader reports them (Kafka's PartitionChangeRecord). An older
    /// epoch than the one recorded does nothing.
    PartitionState {
        name: String,
        id: uuid::Uuid,
        partition: i32,
        leader: i32,
        epoch: i32,
        isr: Vec<i32>,
    },
}

/// A replicated partition's leadership, as last reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    pub leader: i32,
    pub epoch: i32,
    pub isr: Vec<i32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopicImage {
    pub id: uuid::Uuid,
    /// Per partition, its replicas (brokers), the preferred leader first.
    pub partitions: Vec<Vec<i32>>,
    /// Only the configs set on the topic.
    pub configs: BTreeMap<String, String>,
    pub internal: bool,
    /// Reported leadership of replicated partitions, by index.
    #[serde(default)]
    pub states: BTreeMap<i32, PartitionState>,
    /// Partitions being reassigned, by index.
    #[serde(default)]
    pub moving: BTreeMap<i32, Reassignment>,
    /// The first replicas of partitions reassigned since they were made.
    #[serde(default)]
    pub origins: BTreeMap<i32, Vec<i32>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reassignment {
    pub target: Vec<i32>,
    /// Every broker that may hold a replica until it is done: the replicas
    /// before it, then those of every target since.
    pub hosts: Vec<i32>,
}

impl TopicImage {
    /// Partition `p`'s replicas as clients see them: during a reassignment
    /// the target's, then the others that still hold one (Kafka's order).
    pub fn replicas_of(&self, p: usize) -> Vec<i32> {
        let Some(m) = self.moving.get(&(p as i32)) else { return self.partitions[p].clone() };
        let mut all = m.target.clone();
        all.extend(m.hosts.iter().filter(|h| !m.target.contains(h)));
        all
    }

    /// The replicas partition `p`'s Raft group began with.
    pub fn origin_of(&self, p: usize) -> Vec<i32> {
        self.origins.get(&(p as i32)).cloned().unwrap_or_else(|| self.partitions[p].clone())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BrokerInfo {
    pub id: i32,
    pub incarnation: uuid::Uuid,
    /// The log index of its registration (Kafka's broker epoch).
    pub epoch: u64,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    pub fenced: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetadataImage {
    pub cluster_id: Option<String>,
    pub brokers: BTreeMap<i32, BrokerInfo>,
    #[serde(default)]
    pub topics: BTreeMap<String, TopicImage>,
    /// The first producer id no broker has been given.
    #[serde(default)]
    pub next_producer_id: i64,
    /// The start of each broker's last producer-id block.
    #[serde(default)]
    pub producer_id_blocks: BTreeMap<i32, i64>,
    /// The index of the last record applied.
    pub applied: u64,
}

impl MetadataImage {
    pub fn apply(&mut self, index: u64, record: Record) {
        self.applied = index;
        match record {
            Record::ClusterId { id } => {
                // Only the first one counts: two leaders of successive terms
                // may both have proposed one before seeing the other's.
                self.cluster_id.get_or_insert(id);
            }
            Record::RegisterBroker { id, incarnation, host, port, rack } => {
                self.brokers.insert(id, BrokerInfo { id, incarnation, epoch: index, host, port, rack, fenced: false });
            }
            Record::FenceBroker { id, incarnation } | Record::UnfenceBroker { id, incarnation } => {
                let fence = matches!(record, Record::FenceBroker { .. });
                // A record about an earlier run of the broker is stale.
                if let Some(b) = self.brokers.get_mut(&id).filter(|b| b.incarnation == incarnation) {
                    b.fenced = fence;
                }
            }
            // Records naming a topic by name and id: a record about an
            // earlier topic of the same name is stale and does nothing.
            Record::CreateTopic { name, id, replicas, configs, internal } => {
                // Two creates of one name both proposed: the first stands.
                let t = TopicImage {
                    id,
                    partitions: replicas,
                    configs,
                    internal,
                    states: BTreeMap::new(),
                    moving: BTreeMap::new(),
                    origins: BTreeMap::new(),
                };
                self.topics.entry(name).or_insert(t);
            }
            Record::AddPartitions { name, id, replicas } => {
                if let Some(t) = self.topic_mut(&name, id) {
                    t.partitions.extend(replicas);
                }
            }
            Record::RemoveTopic { name, id } => {
                if self.topic_mut(&name, id).is_some() {
                    self.topics.remove(&name);
                }
            }
            Record::TopicConfigs { name, id, configs } => {
                if let Some(t) = self.topic_mut(&name, id) {
                    t.configs = configs;
                }
            }
            Record::PartitionState { name, id, partition, leader, epoch, isr } => {
                let n = self.topic_mut(&name, id).map_or(0, |t| t.partitions.len() as i32);
                if let Some(t) = self.topic_mut(&name, id).filter(|_| (0..n).contains(&partition)) {
                    if t.states.get(&partition).is_none_or(|s| epoch >= s.epoch) {
                        t.states.insert(partition, PartitionState { leader, epoch, isr });
                    }
                }
            }
            Record::Reassign { name, id, partition, target } => {
                if let Some(t) = self.topic_mut(&name, id) {
                    let Some(current) = t.partitions.get(partition.max(0) as usize).cloned() else { return };
                    if current == target && !t.moving.contains_key(&partition) {
                        return;
                    }
                    let m = t.moving.entry(partition).or_insert(Reassignment { target: vec![], hosts: current });
                    for b in &target {
                        if !m.hosts.contains(b) {
                            m.hosts.push(*b);
                        }
                    }
                    m.target = target;
                }
            }
            Record::Reassigned { name, id, partition, replicas } => {
                if let Some(t) = self.topic_mut(&name, id) {
                    if t.moving.get(&partition).is_some_and(|m| m.target == replicas) {
                        let before = std::mem::replace(&mut t.partitions[partition as usize], replicas);
                        t.origins.entry(partition).or_insert(before);
                        t.moving.remove(&partition);
                    }
                }
            }
            Record::ProducerIdBlock { broker, start, len } => {
                if start == self.next_producer_id && len > 0 {
                    self.next_producer_id = start + len;
                    self.producer_id_blocks.insert(broker, start);
                }
            }
        }
    }

    fn topic_mut(&mut self, name: &str, id: uuid::Uuid) -> Option<&mut TopicImage> {
        self.topics.get_mut(name).filter(|t| t.id == id)
    }

    /// Whether the broker is registered and not fenced.
    pub fn is_live(&self, id: i32) -> bool {
        self.brokers.get(&id).is_some_and(|b| !b.fenced)
    }

    pub fn unfenced(&self) -> impl Iterator<Item = &BrokerInfo> {
        self.brokers.values().filter(|b| !b.fenced)
    }
}

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("records serialize")
    }

    pub fn decode(bytes: &[u8]) -> Result<Record, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_fencing_and_a_restart_of_the_broker() {
        let mut img = MetadataImage::default();
        let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        img.apply(1, Record::ClusterId { id: "c1".into() });
        img.apply(2, Record::ClusterId { id: "c2".into() });
        assert_eq!(img.cluster_id.as_deref(), Some("c1"));
        let reg = |inc| Record::RegisterBroker { id: 2, incarnation: inc, host: "h".into(), port: 9092, rack: None };
        img.apply(3, reg(a));
        img.apply(4, Record::FenceBroker { id: 2, incarnation: a });
        assert!(img.brokers[&2].fenced);
        img.apply(5, reg(b));
        assert!(!img.brokers[&2].fenced && img.brokers[&2].epoch == 5);
        img.apply(6, Record::FenceBroker { id: 2, incarnation: a });
        assert!(!img.brokers[&2].fenced, "a fence of the previous run does not touch the new one");
        let bytes = Record::UnfenceBroker { id: 2, incarnation: b }.encode();
        assert_eq!(Record::decode(&bytes).unwrap(), Record::UnfenceBroker { id: 2, incarnation: b });
        assert!(Record::decode(b"{\"type\":\"Nope\"}").is_err());
    }

    #[test]
    fn topics_are_created_grown_configured_and_removed_by_name_and_id() {
        let mut img = MetadataImage::default();
        let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let create = |id, replicas: Vec<Vec<i32>>| Record::CreateTopic {
            name: "t".into(),
            id,
            replicas,
            configs: BTreeMap::new(),
            internal: false,
        };
        img.apply(1, create(a, vec![vec![1], vec![2]]));
        img.apply(2, create(b, vec![vec![3]]));
        assert_eq!(img.topics["t"].id, a, "the first create of a name stands");
        img.apply(3, Record::AddPartitions { name: "t".into(), id: a, replicas: vec![vec![3]] });
        img.apply(4, Record::AddPartitions { name: "t".into(), id: b, replicas: vec![vec![9]] });
        assert_eq!(img.topics["t"].partitions, vec![vec![1], vec![2], vec![3]]);
        let configs = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
        img.apply(5, Record::TopicConfigs { name: "t".into(), id: a, configs: configs.clone() });
        assert_eq!(img.topics["t"].configs, configs);
        img.apply(6, Record::RemoveTopic { name: "t".into(), id: b });
        assert!(img.topics.contains_key("t"), "removing another topic of the name does nothing");
        img.apply(7, Record::RemoveTopic { name: "t".into(), id: a });
        assert!(img.topics.is_empty());
        img.apply(8, Record::ProducerIdBlock { broker: 1, start: 0, len: 1000 });
        img.apply(9, Record::ProducerIdBlock { broker: 2, start: 0, len: 1000 });
        assert_eq!((img.next_producer_id, img.producer_id_blocks.get(&2)), (1000, None), "a block is given once");
        img.apply(10, Record::ProducerIdBlock { broker: 2, start: 1000, len: 1000 });
        assert_eq!((img.next_producer_id, img.producer_id_blocks[&2]), (2000, 1000));
        let bytes = create(a, vec![vec![1, 2, 3]]).encode();
        assert_eq!(Record::decode(&bytes).unwrap(), create(a, vec![vec![1, 2, 3]]));
    }

    #[test]
    fn a_reassignment_shows_every_holder_until_done_and_remembers_the_first_replicas() {
        let mut img = MetadataImage::default();
        let id = uuid::Uuid::new_v4();
        let t = |name: &str| name.to_string();
        img.apply(
            1,
            Record::CreateTopic {
                name: t("t"),
                id,
                replicas: vec![vec![1, 2], vec![2, 3]],
                configs: BTreeMap::new(),
                internal: false,
            },
        );
        let reassign = |target: Vec<i32>| Record::Reassign { name: t("t"), id, partition: 0, target };
        img.apply(2, reassign(vec![3, 2]));
        assert_eq!(img.topics["t"].replicas_of(0), vec![3, 2, 1], "the target first, then the others");
        // A new target before the first is done: broker 3 may hold a replica still.
        img.apply(3, reassign(vec![1, 2]));
        assert_eq!(img.topics["t"].replicas_of(0), vec![1, 2, 3]);
        let done = |replicas: Vec<i32>| Record::Reassigned { name: t("t"), id, partition: 0, replicas };
        img.apply(4, done(vec![3, 2]));
        assert!(img.topics["t"].moving.contains_key(&0), "a report of a target replaced since does nothing");
        img.apply(5, reassign(vec![3, 1]));
        img.apply(6, done(vec![3, 1]));
        let topic = &img.topics["t"];
        assert!(topic.moving.is_empty());
        assert_eq!((topic.partitions[0].clone(), topic.origin_of(0)), (vec![3, 1], vec![1, 2]));
        assert_eq!((topic.replicas_of(1), topic.origin_of(1)), (vec![2, 3], vec![2, 3]), "partition 1 untouched");
        // Its replicas as the target: nothing to do.
        img.apply(7, reassign(vec![3, 1]));
        assert!(img.topics["t"].moving.is_empty());
        img.apply(8, Record::Reassign { name: t("t"), id, partition: 9, target: vec![1] });
        assert!(img.topics["t"].moving.is_empty(), "no such partition");
    }
}
