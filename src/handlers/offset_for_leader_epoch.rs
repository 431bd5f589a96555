//! OffsetForLeaderEpoch (key 23): the end offset of a leader epoch, which
//! consumers use to validate their position after a leader change. With a
//! single replica a partition's epoch never moves: the current epoch ends
//! at the log end; a later epoch is unknown (UNDEFINED_EPOCH_OFFSET).

use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::{per_partition, respond};
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;
use crate::topics::TopicPartition;

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: OffsetForLeaderEpochRequest = decode_body(frame)?;
    let items = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                let tp = TopicPartition::new(&t.topic.0, p.partition);
                (tp.clone(), (tp, p.current_leader_epoch, p.leader_epoch))
            })
        })
        .collect();
    let mut answers = per_partition(items, |p, (tp, current, asked)| async move {
        p.check_leader_epoch(&tp, current)?;
        p.end_offset_for_epoch(asked).await.map_err(|(code, _)| code)
    })
    .await
    .into_iter();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let r = EpochEndOffset::default().with_partition(p.partition);
                    match answers.next().expect("an answer per partition") {
                        Ok((epoch, end)) => r.with_leader_epoch(epoch).with_end_offset(end),
                        Err(code) => r.with_error_code(code.code()).with_leader_epoch(-1).with_end_offset(-1),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default().with_topic(t.topic.clone()).with_partitions(partitions)
        })
        .collect();
    respond(frame, &OffsetForLeaderEpochResponse::default().with_topics(topics))
}
