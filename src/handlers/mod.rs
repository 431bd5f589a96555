//! One file per Kafka API. `handle` routes a decoded frame to its handler;
//! `API_VERSIONS` is what ApiVersions advertises and what is accepted.

mod alter_configs;
mod alter_partition_reassignments;
mod api_versions;
mod brokers;
mod consumer_group_describe;
mod consumer_group_heartbeat;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod describe_log_dirs;
mod describe_quorum;
mod describe_topic_partitions;
mod elect_leaders;
mod fetch;
mod find_coordinator;
mod heartbeat;
mod incremental_alter_configs;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod list_partition_reassignments;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
mod sync_group;

use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;

use kafka_protocol::error::ResponseError;

use crate::partition::Partition;
use crate::shard::{self, invoke_on};
use crate::topics::TopicPartition;
pub use brokers::{cluster_brokers, cluster_id, controller_id, leader_elsewhere, partition_view, ListedBroker};

use kafka_protocol::messages::ApiKey;

use crate::server::connection::{Close, RequestFrame};
use crate::server::response::Response;

/// (API, oldest, newest) version served, matching Apache Kafka 4.0 for every
/// API listed. Produce is advertised from v0 because librdkafka will only
/// compress when it sees v0 listed, as Kafka 4.0 does (KAFKA-18659); v0–v2
/// requests themselves are refused.
pub const API_VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 12),
    (ApiKey::Fetch, 4, 17),
    (ApiKey::ListOffsets, 1, 9),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::DescribeQuorum, 0, 2),
    (ApiKey::DescribeTopicPartitions, 0, 0),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::AlterPartitionReassignments, 0, 0),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
];

/// Whether requests of this version are decoded and served.
pub fn supported(api: ApiKey, version: i16) -> bool {
    let min_decodable = if api == ApiKey::Produce { 3 } else { i16::MIN };
    API_VERSIONS.iter().any(|&(a, lo, hi)| a == api && version >= lo.max(min_decodable) && version <= hi)
}

pub async fn handle(frame: RequestFrame) -> Result<Option<Response>, Close> {
    match frame.api_key {
        ApiKey::ApiVersions => api_versions::handle(&frame).map(Some),
        ApiKey::Metadata => metadata::handle(&frame).await.map(Some),
        ApiKey::Produce => produce::handle(&frame).await,
        ApiKey::Fetch => fetch::handle(&frame).await.map(Some),
        ApiKey::ListOffsets => list_offsets::handle(&frame).await.map(Some),
        ApiKey::CreateTopics => create_topics::handle(&frame).await.map(Some),
        ApiKey::DeleteTopics => delete_topics::handle(&frame).await.map(Some),
        ApiKey::InitProducerId => init_producer_id::handle(&frame).await.map(Some),
        ApiKey::FindCoordinator => find_coordinator::handle(&frame).await.map(Some),
        ApiKey::JoinGroup => join_group::handle(&frame).await.map(Some),
        ApiKey::SyncGroup => sync_group::handle(&frame).await.map(Some),
        ApiKey::Heartbeat => heartbeat::handle(&frame).await.map(Some),
        ApiKey::LeaveGroup => leave_group::handle(&frame).await.map(Some),
        ApiKey::OffsetCommit => offset_commit::handle(&frame).await.map(Some),
        ApiKey::OffsetFetch => offset_fetch::handle(&frame).await.map(Some),
        ApiKey::DeleteRecords => delete_records::handle(&frame).await.map(Some),
        ApiKey::OffsetForLeaderEpoch => offset_for_leader_epoch::handle(&frame).await.map(Some),
        ApiKey::DescribeTopicPartitions => describe_topic_partitions::handle(&frame).await.map(Some),
        ApiKey::ElectLeaders => elect_leaders::handle(&frame).await.map(Some),
        ApiKey::AlterPartitionReassignments => alter_partition_reassignments::handle(&frame).await.map(Some),
        ApiKey::ListPartitionReassignments => list_partition_reassignments::handle(&frame).await.map(Some),
        ApiKey::DescribeConfigs => describe_configs::handle(&frame).await.map(Some),
        ApiKey::AlterConfigs => alter_configs::handle(&frame).await.map(Some),
        ApiKey::DescribeLogDirs => describe_log_dirs::handle(&frame).await.map(Some),
        ApiKey::CreatePartitions => create_partitions::handle(&frame).await.map(Some),
        ApiKey::IncrementalAlterConfigs => incremental_alter_configs::handle(&frame).await.map(Some),
        ApiKey::DescribeCluster => describe_cluster::handle(&frame).await.map(Some),
        ApiKey::DescribeQuorum => describe_quorum::handle(&frame).await.map(Some),
        ApiKey::DescribeGroups => describe_groups::handle(&frame).await.map(Some),
        ApiKey::ListGroups => list_groups::handle(&frame).await.map(Some),
        ApiKey::DeleteGroups => delete_groups::handle(&frame).await.map(Some),
        ApiKey::OffsetDelete => offset_delete::handle(&frame).await.map(Some),
        ApiKey::ConsumerGroupHeartbeat => consumer_group_heartbeat::handle(&frame).await.map(Some),
        ApiKey::ConsumerGroupDescribe => consumer_group_describe::handle(&frame).await.map(Some),
        other => Err(Close::Protocol(format!("{other:?} is not served"))),
    }
}

/// Runs the futures as concurrent tasks on this shard; results in order.
pub async fn join_all<T: 'static>(futs: Vec<impl Future<Output = T> + 'static>) -> Vec<T> {
    let tasks: Vec<_> = futs.into_iter().map(glommio::spawn_local).collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await);
    }
    out
}

/// Runs `f(partition, arg)` for every partition on the shard that owns it,
/// all partitions at once; results come back in input order. A partition that
/// does not exist gets UNKNOWN_TOPIC_OR_PARTITION.
pub async fn per_partition<A, T, F, Fut>(items: Vec<(TopicPartition, A)>, f: F) -> Vec<Result<T, ResponseError>>
where
    A: Send + 'static,
    T: Send + 'static,
    F: Fn(Rc<Partition>, A) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<T, ResponseError>> + 'static,
{
    let table = shard::current().topics();
    let mut out: Vec<Option<Result<T, ResponseError>>> = Vec::with_capacity(items.len());
    let mut by_owner: BTreeMap<usize, Vec<(usize, TopicPartition, A)>> = BTreeMap::new();
    for (i, (tp, arg)) in items.into_iter().enumerate() {
        match table.owner(&tp.topic, tp.partition) {
            Some(owner) => {
                by_owner.entry(owner).or_default().push((i, tp, arg));
                out.push(None);
            }
            None => out.push(Some(Err(table.not_here(&tp.topic, tp.partition)))),
        }
    }
    let calls = by_owner.into_iter().map(|(owner, work)| {
        let f = f.clone();
        invoke_on(owner, move || async move {
            let shard = shard::current();
            let each = work.into_iter().map(|(i, tp, arg)| {
                let (part, f) = (shard.partition(&tp), f.clone());
                async move {
                    let r = match part {
                        Some(p) => f(p, arg).await,
                        None => Err(ResponseError::NotLeaderOrFollower),
                    };
                    (i, r)
                }
            });
            join_all(each.collect()).await
        })
    });
    for done in join_all(calls.collect()).await {
        for (i, r) in done {
            out[i] = Some(r);
        }
    }
    out.into_iter().map(|r| r.expect("every partition answered")).collect()
}

fn encode_err(e: anyhow::Error) -> Close {
    Close::Protocol(format!("encoding the response failed: {e}"))
}

pub fn respond<M: kafka_protocol::protocol::Encodable>(frame: &RequestFrame, body: &M) -> Result<Response, Close> {
    crate::server::response::encode(frame, body, Vec::new()).map_err(encode_err)
}
