//! ListOffsets (key 2): earliest (-2), latest (-1), max timestamp (-3,
//! KIP-734) and first offset at or after a timestamp, answered by the
//! partition's owner. Earliest-local (-4) is earliest: all data is local.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::{join_all, respond};
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;
use crate::shard::{self, invoke_on};
use crate::topics::TopicPartition;

type Answer = Result<(i64, i64, i32), ResponseError>;

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: ListOffsetsRequest = decode_body(frame)?;
    let table = shard::current().topics();
    let mut answers: Vec<Option<Answer>> = Vec::new();
    let mut by_owner: BTreeMap<usize, Vec<(usize, TopicPartition, i64)>> = BTreeMap::new();
    for t in &req.topics {
        for p in &t.partitions {
            let slot = answers.len();
            match table.owner(t.name.0.as_str(), p.partition_index) {
                Some(owner) => {
                    let ts = if p.timestamp == -4 { -2 } else { p.timestamp };
                    by_owner.entry(owner).or_default().push((
                        slot,
                        TopicPartition::new(&t.name.0, p.partition_index),
                        ts,
                    ));
                    answers.push(None);
                }
                None => answers.push(Some(Err(ResponseError::UnknownTopicOrPartition))),
            }
        }
    }
    let calls = by_owner.into_iter().map(|(owner, items)| {
        invoke_on(owner, move || async move {
            let shard = shard::current();
            let mut out = Vec::with_capacity(items.len());
            for (slot, tp, ts) in items {
                let answer = match shard.partition(&tp) {
                    None => Err(ResponseError::NotLeaderOrFollower),
                    Some(p) => match p.list_offset(ts).await {
                        Ok(Some((offset, timestamp))) => Ok((offset, timestamp, p.leader_epoch)),
                        Ok(None) => Ok((-1, -1, -1)),
                        Err((code, _)) => Err(code),
                    },
                };
                out.push((slot, answer));
            }
            out
        })
    });
    for batch in join_all(calls.collect()).await {
        for (slot, a) in batch {
            answers[slot] = Some(a);
        }
    }
    let version = frame.version;
    let mut answers = answers.into_iter();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let r = ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
                    match answers.next().flatten().expect("an answer per partition") {
                        Ok((offset, timestamp, epoch)) => {
                            let r = r.with_offset(offset).with_timestamp(timestamp);
                            if version >= 4 {
                                r.with_leader_epoch(epoch)
                            } else {
                                r
                            }
                        }
                        Err(code) => r.with_error_code(code.code()).with_offset(-1).with_timestamp(-1),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default().with_name(t.name.clone()).with_partitions(partitions)
        })
        .collect();
    respond(frame, &ListOffsetsResponse::default().with_topics(topics))
}
