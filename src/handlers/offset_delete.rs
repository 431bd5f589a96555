//! OffsetDelete (key 47, KIP-496): drops a group's committed offsets for
//! some partitions, unless the group's members subscribe to the topic.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use super::respond;
use crate::groups;
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;
use crate::shard;
use crate::topics::TopicPartition;

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: OffsetDeleteRequest = decode_body(frame)?;
    let table = shard::current().topics();
    // Partitions that do not exist are answered here; the rest by the group.
    let mut errors: Vec<Option<i16>> = Vec::new();
    let mut asked = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            if table.locate(t.name.0.as_str(), p.partition_index).is_none() {
                errors.push(Some(ResponseError::UnknownTopicOrPartition.code()));
            } else {
                errors.push(None);
                asked.push(TopicPartition::new(t.name.0.as_str(), p.partition_index));
            }
        }
    }
    let resp = match groups::delete_offsets(req.group_id.0.to_string(), asked).await {
        Err(e) => OffsetDeleteResponse::default().with_error_code(e),
        Ok(group_errors) => {
            let mut group_errors = group_errors.into_iter();
            let mut errors = errors.into_iter();
            let topics = req
                .topics
                .iter()
                .map(|t| {
                    let partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let error = match errors.next().flatten() {
                                Some(e) => e,
                                None => group_errors.next().unwrap_or(groups::NONE),
                            };
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(error)
                        })
                        .collect();
                    OffsetDeleteResponseTopic::default().with_name(t.name.clone()).with_partitions(partitions)
                })
                .collect();
            OffsetDeleteResponse::default().with_topics(topics)
        }
    };
    respond(frame, &resp)
}
