//! DescribeTopicPartitions (key 75, KIP-966): topics and their partitions
//! from this broker's copy of the metadata, as Metadata gives them, sorted
//! by name and paged by a partition limit and a cursor. Kafka's admin
//! client (`describeTopics`, kafka-topics --describe) prefers it.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::respond;
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;
use crate::shard;
use crate::topics;

/// Kafka's `max.request.partition.size.limit` default: a response holds at
/// most this many partitions, whatever the request asks.
const MAX_PARTITIONS: i32 = 2000;

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: DescribeTopicPartitionsRequest = decode_body(frame)?;
    let shard = shard::current();
    let table = shard.topics();
    // Every topic when none is named; sorted by name either way.
    let mut names: Vec<String> = if req.topics.is_empty() {
        table.topics.keys().cloned().collect()
    } else {
        req.topics.iter().map(|t| t.name.0.to_string()).collect()
    };
    names.sort();
    names.dedup();
    let (mut first, mut from) = (0, 0);
    if let Some(c) = &req.cursor {
        match names.iter().position(|n| n.as_str() == c.topic_name.0.as_str()) {
            Some(i) if c.partition_index >= 0 => (first, from) = (i, c.partition_index as usize),
            _ => {
                let resp = DescribeTopicPartitionsResponse::default();
                // Kafka answers a cursor outside the topics asked for with
                // INVALID_REQUEST on every topic it cannot describe.
                let topics = names
                    .iter()
                    .map(|n| {
                        DescribeTopicPartitionsResponseTopic::default()
                            .with_error_code(ResponseError::InvalidRequest.code())
                            .with_name(Some(TopicName(StrBytes::from_string(n.clone()))))
                    })
                    .collect();
                return respond(frame, &resp.with_topics(topics));
            }
        }
    }
    let mut budget = req.response_partition_limit.clamp(1, MAX_PARTITIONS) as usize;
    let mut out = Vec::new();
    let mut next_cursor = None;
    for (i, name) in names.iter().enumerate().skip(first) {
        let start = if i == first { from } else { 0 };
        let Some(meta) = table.get(name) else {
            let code = if topics::valid_topic_name(name).is_err() {
                ResponseError::InvalidTopicException
            } else {
                ResponseError::UnknownTopicOrPartition
            };
            out.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_error_code(code.code())
                    .with_name(Some(TopicName(StrBytes::from_string(name.clone())))),
            );
            continue;
        };
        if budget == 0 {
            next_cursor = Some((name.clone(), start));
            break;
        }
        let ids = |v: Vec<i32>| v.into_iter().map(BrokerId).collect::<Vec<_>>();
        let end = meta.partitions.len().min(start + budget);
        let partitions: Vec<_> = (start..end)
            .map(|p| {
                let pv = super::partition_view(&shard, &meta.partitions[p]);
                let error = if pv.leader < 0 { ResponseError::LeaderNotAvailable.code() } else { 0 };
                DescribeTopicPartitionsResponsePartition::default()
                    .with_error_code(error)
                    .with_partition_index(p as i32)
                    .with_leader_id(BrokerId(pv.leader))
                    .with_leader_epoch(meta.partitions[p].leader_epoch)
                    .with_replica_nodes(ids(pv.replicas))
                    .with_isr_nodes(ids(pv.isr))
                    .with_eligible_leader_replicas(Some(vec![]))
                    .with_last_known_elr(Some(vec![]))
                    .with_offline_replicas(ids(pv.offline))
            })
            .collect();
        budget -= end.saturating_sub(start);
        out.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                .with_topic_id(meta.id)
                .with_is_internal(meta.internal)
                .with_partitions(partitions)
                .with_topic_authorized_operations(i32::MIN),
        );
        if end < meta.partitions.len() {
            next_cursor = Some((name.clone(), end));
            break;
        }
    }
    let resp =
        DescribeTopicPartitionsResponse::default().with_topics(out).with_next_cursor(next_cursor.map(|(t, p)| {
            Cursor::default().with_topic_name(TopicName(StrBytes::from_string(t))).with_partition_index(p as i32)
        }));
    respond(frame, &resp)
}
