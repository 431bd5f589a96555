//! DescribeQuorum (key 55, KIP-595/KIP-853): the metadata quorum's leader,
//! epoch, high watermark and how far each voter has come, as
//! `kafka-metadata-quorum describe --status|--replication` shows them. Any
//! broker answers: a follower asks the active controller, as Kafka's
//! brokers forward this request.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_quorum_response::{Listener, Node, PartitionData, ReplicaState, TopicData};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::respond;
use crate::cluster::{self, QuorumState};
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;
use crate::shard;

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: DescribeQuorumRequest = decode_body(frame)?;
    let shard = shard::current();
    let config = &shard.config;
    let topic = TopicName(StrBytes::from_static_str(cluster::METADATA_TOPIC));
    let asks_metadata_log = req.topics.len() == 1
        && req.topics[0].topic_name.as_str() == cluster::METADATA_TOPIC
        && req.topics[0].partitions.len() == 1
        && req.topics[0].partitions[0].partition_index == 0;
    let partition = |p: PartitionData| {
        DescribeQuorumResponse::default().with_topics(vec![TopicData::default()
            .with_topic_name(topic.clone())
            .with_partitions(vec![p.with_partition_index(0)])])
    };
    if !asks_metadata_log {
        // Kafka's answer for anything but __cluster_metadata-0.
        let p = PartitionData::default().with_error_code(ResponseError::UnknownTopicOrPartition.code());
        return respond(frame, &partition(p));
    }
    let quorum = match cluster::quorum().await {
        Some(Ok(q)) => q,
        Some(Err(why)) => {
            let p = PartitionData::default()
                .with_error_code(ResponseError::NotLeaderOrFollower.code())
                .with_error_message(Some(StrBytes::from_string(why)));
            return respond(frame, &partition(p));
        }
        // A broker on its own is its own quorum of one, with no log yet.
        None => QuorumState {
            leader: config.node_id,
            term: 0,
            high_watermark: 0,
            voters: vec![cluster::controller::VoterState {
                id: config.node_id,
                log_end: 0,
                last_fetch_ms: -1,
                last_caught_up_ms: -1,
            }],
        },
    };
    let voters = quorum
        .voters
        .iter()
        .map(|v| {
            ReplicaState::default()
                .with_replica_id(BrokerId(v.id))
                .with_log_end_offset(v.log_end as i64)
                .with_last_fetch_timestamp(v.last_fetch_ms)
                .with_last_caught_up_timestamp(v.last_caught_up_ms)
        })
        .collect();
    let p = PartitionData::default()
        .with_leader_id(BrokerId(quorum.leader))
        .with_leader_epoch(quorum.term.min(i32::MAX as u64) as i32)
        .with_high_watermark(quorum.high_watermark as i64)
        .with_current_voters(voters);
    // v2: where each voter's controller listener is.
    let nodes = match &config.quorum {
        Some(q) => q
            .voters
            .iter()
            .map(|v| {
                Node::default().with_node_id(BrokerId(v.id)).with_listeners(vec![Listener::default()
                    .with_name(StrBytes::from_string(q.listener_name.clone()))
                    .with_host(StrBytes::from_string(v.host.clone()))
                    .with_port(v.port)])
            })
            .collect(),
        None => vec![],
    };
    respond(frame, &partition(p).with_nodes(nodes))
}
