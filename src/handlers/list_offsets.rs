//! ListOffsets (key 2): earliest (-2), latest (-1), max timestamp (-3,
//! KIP-734) and first offset at or after a timestamp, answered by the
//! partition's owner. Earliest-local (-4) is earliest: all data is local.
//! Without transactions, read_committed sees what read_uncommitted sees.

use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::{per_partition, respond};
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;
use crate::topics::TopicPartition;

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: ListOffsetsRequest = decode_body(frame)?;
    let items = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                let ts = if p.timestamp == -4 { -2 } else { p.timestamp };
                let tp = TopicPartition::new(&t.name.0, p.partition_index);
                (tp.clone(), (tp, ts, p.current_leader_epoch))
            })
        })
        .collect();
    let mut answers = per_partition(items, |p, (tp, ts, current)| async move {
        p.check_leader_epoch(&tp, current)?;
        match p.list_offset(ts).await {
            Ok(Some((offset, timestamp))) => Ok((offset, timestamp, p.leader_epoch.get())),
            Ok(None) => Ok((-1, -1, -1)),
            Err((code, _)) => Err(code),
        }
    })
    .await
    .into_iter();
    let version = frame.version;
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let r = ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
                    match answers.next().expect("an answer per partition") {
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
