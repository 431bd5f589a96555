//! ListPartitionReassignments (key 46, KIP-455; `kafka-reassign-partitions
//! --verify`/`--list`): the reassignments in progress, from this broker's
//! copy of the metadata, with Kafka's replicas / adding / removing.

use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse};

use super::respond;
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;
use crate::shard;
use crate::topics::TopicMeta;

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: ListPartitionReassignmentsRequest = decode_body(frame)?;
    let table = shard::current().topics();
    let ids = |v: &[i32]| v.iter().copied().map(BrokerId).collect::<Vec<_>>();
    let ongoing = |meta: &TopicMeta, only: Option<&[i32]>| {
        let partitions: Vec<OngoingPartitionReassignment> = meta
            .partitions
            .iter()
            .enumerate()
            .filter(|(i, _)| only.is_none_or(|o| o.contains(&(*i as i32))))
            .filter_map(|(i, p)| {
                let m = p.moving.as_ref()?;
                Some(
                    OngoingPartitionReassignment::default()
                        .with_partition_index(i as i32)
                        .with_replicas(ids(&p.replicas))
                        .with_adding_replicas(ids(&m.adding))
                        .with_removing_replicas(ids(&m.removing)),
                )
            })
            .collect();
        (!partitions.is_empty()).then(|| {
            OngoingTopicReassignment::default()
                .with_name(kafka_protocol::messages::TopicName(meta.name.clone().into()))
                .with_partitions(partitions)
        })
    };
    // Unknown topics and partitions are left out, as Kafka does.
    let topics = match &req.topics {
        None => table.topics.values().filter_map(|m| ongoing(m, None)).collect(),
        Some(asked) => asked
            .iter()
            .filter_map(|t| table.get(t.name.0.as_str()).and_then(|m| ongoing(m, Some(&t.partition_indexes))))
            .collect(),
    };
    respond(frame, &ListPartitionReassignmentsResponse::default().with_topics(topics))
}
