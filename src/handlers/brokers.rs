//! Which brokers Metadata and DescribeCluster list: the live brokers of
//! the metadata image in a cluster, this broker alone otherwise.

use crate::cluster::image::BrokerInfo;
use crate::shard::Shard;
use crate::topics::{PartitionMeta, TopicTable};

/// A partition as Metadata and DescribeTopicPartitions show it.
pub struct PartitionView {
    /// The first live replica; -1 when none is (LEADER_NOT_AVAILABLE).
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// Replicas on brokers that are fenced or gone.
    pub offline: Vec<i32>,
}

/// A partition's only replica is its ISR, and stays so while its broker is
/// down (Kafka keeps the last member); a replicated partition's leader and
/// ISR are what its leader last reported.
pub fn partition_view(shard: &Shard, p: &PartitionMeta) -> PartitionView {
    let me = shard.config.node_id;
    let replicas = if p.replicas.is_empty() { vec![me] } else { p.replicas.clone() };
    let view = shard.cluster();
    let live = |id: i32| id == me || view.as_ref().is_none_or(|v| v.image.is_live(id));
    let offline = replicas.iter().copied().filter(|r| !live(*r)).collect();
    if replicas.len() > 1 {
        // Replicated: the leader its Raft group elected, while it is live.
        let leader = p.leader.filter(|l| live(*l)).unwrap_or(-1);
        let isr = if p.isr.is_empty() { replicas.clone() } else { p.isr.clone() };
        return PartitionView { leader, isr, replicas, offline };
    }
    let leader = replicas.iter().copied().find(|r| live(*r)).unwrap_or(-1);
    PartitionView { leader, isr: replicas.clone(), replicas, offline }
}

pub struct ListedBroker {
    pub id: i32,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    pub fenced: bool,
}

impl From<&BrokerInfo> for ListedBroker {
    fn from(b: &BrokerInfo) -> Self {
        ListedBroker { id: b.id, host: b.host.clone(), port: b.port, rack: b.rack.clone(), fenced: b.fenced }
    }
}

/// KIP-951: the broker that leads a partition this one does not, with the
/// leader epoch, for the NOT_LEADER_OR_FOLLOWER answers of Produce (v10+)
/// and Fetch (v16+), so that clients go there without asking for metadata.
pub fn leader_elsewhere(shard: &Shard, table: &TopicTable, topic: &str, partition: i32) -> Option<(i32, ListedBroker)> {
    let p = table.get(topic)?.partitions.get(usize::try_from(partition).ok()?)?;
    let leader = partition_view(shard, p).leader;
    if leader < 0 || leader == shard.config.node_id {
        return None;
    }
    let b = cluster_brokers(shard).into_iter().find(|b| b.id == leader)?;
    Some((p.leader_epoch, b))
}

/// The controller id clients are given: this broker. It forwards what only
/// the controller does (as Kafka 4 brokers do, KIP-590, where it names a
/// random live broker), so an admin client never waits on a controller it
/// cannot reach while the quorum elects another.
pub fn controller_id(shard: &Shard) -> i32 {
    shard.config.node_id
}

/// The brokers to list, by id.
pub fn cluster_brokers(shard: &Shard) -> Vec<ListedBroker> {
    let c = &shard.config;
    let me = ListedBroker {
        id: c.node_id,
        host: c.advertised.0.clone(),
        port: c.advertised.1,
        rack: c.rack.clone(),
        fenced: false,
    };
    let Some(view) = shard.cluster() else { return vec![me] };
    let mut brokers: Vec<ListedBroker> = view.live_brokers().into_iter().map(ListedBroker::from).collect();
    // Until its own registration is applied this broker still serves, so
    // it lists itself (a client that reached it must find it listed).
    if !brokers.iter().any(|b| b.id == c.node_id) {
        brokers.push(me);
        brokers.sort_by_key(|b| b.id);
    }
    brokers
}

/// The metadata log's cluster id in a cluster; the data dir's otherwise.
pub fn cluster_id(shard: &Shard, table: &TopicTable) -> String {
    shard.cluster().and_then(|v| v.image.cluster_id.clone()).unwrap_or_else(|| table.cluster_id.clone())
}
