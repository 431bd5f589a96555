//! OffsetCommit (key 8): a group's consumed positions. Partitions are
//! checked here (they must exist; metadata at most
//! `offset.metadata.max.bytes`), the group on its own shard.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::respond;
use crate::groups::{self, CommitRequest};
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;
use crate::shard;

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: OffsetCommitRequest = decode_body(frame)?;
    let v = frame.version;
    let shard = shard::current();
    let table = shard.topics();
    let max_metadata = shard.config.offset_metadata_max_bytes;
    // An error per partition, in request order; None: to be committed.
    let mut errors: Vec<Option<i16>> = Vec::new();
    let mut offsets = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            let metadata = p.committed_metadata.as_ref().map(|m| m.to_string()).unwrap_or_default();
            if table.locate(t.name.0.as_str(), p.partition_index).is_none() {
                errors.push(Some(ResponseError::UnknownTopicOrPartition.code()));
            } else if metadata.len() > max_metadata {
                errors.push(Some(ResponseError::OffsetMetadataTooLarge.code()));
            } else {
                errors.push(None);
                let epoch = if v >= 6 { p.committed_leader_epoch } else { -1 };
                offsets.push((t.name.0.to_string(), p.partition_index, p.committed_offset, epoch, metadata));
            }
        }
    }
    let group_error = if offsets.is_empty() {
        None
    } else {
        groups::commit_offsets(CommitRequest {
            group_id: req.group_id.0.to_string(),
            generation_id: req.generation_id_or_member_epoch,
            member_id: req.member_id.to_string(),
            group_instance_id: if v >= 7 { req.group_instance_id.as_ref().map(|i| i.to_string()) } else { None },
            offsets,
        })
        .await
        .err()
    };
    let mut errors = errors.into_iter();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let error = errors.next().flatten().or(group_error).unwrap_or(groups::NONE);
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error)
                })
                .collect();
            OffsetCommitResponseTopic::default().with_name(t.name.clone()).with_partitions(partitions)
        })
        .collect();
    respond(frame, &OffsetCommitResponse::default().with_topics(topics))
}
