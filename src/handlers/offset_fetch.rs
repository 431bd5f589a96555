//! OffsetFetch (key 9): a group's committed offsets, for the partitions
//! asked for or (null topics) every partition the group committed. v8+
//! asks for several groups at once. Partitions without a commit get -1.

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{join_all, respond};
use crate::groups::{self, CommittedOffset, FetchedOffsets, TopicPartitions};
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;

/// (offset, leader epoch, metadata) as the response carries them.
fn parts(o: Option<CommittedOffset>) -> (i64, i32, StrBytes) {
    match o {
        Some(o) => (o.offset, o.leader_epoch, StrBytes::from_string(o.metadata)),
        None => (-1, -1, StrBytes::default()),
    }
}

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: OffsetFetchRequest = decode_body(frame)?;
    let v = frame.version;
    if v >= 8 {
        let asks: Vec<(String, Option<TopicPartitions>)> = req
            .groups
            .into_iter()
            .map(|g| {
                let topics = g
                    .topics
                    .map(|ts| ts.into_iter().map(|t| (t.name.0.to_string(), t.partition_indexes)).collect::<Vec<_>>());
                (g.group_id.0.to_string(), topics)
            })
            .collect();
        let names: Vec<String> = asks.iter().map(|(g, _)| g.clone()).collect();
        let results = join_all(asks.into_iter().map(|(g, t)| groups::fetch_offsets(g, t)).collect()).await;
        let groups = names
            .into_iter()
            .zip(results)
            .map(|(name, r)| {
                let g = OffsetFetchResponseGroup::default().with_group_id(GroupId(StrBytes::from_string(name)));
                match r {
                    Ok(found) => g.with_topics(topics_v8(found)),
                    Err(e) => g.with_error_code(e),
                }
            })
            .collect();
        return respond(frame, &OffsetFetchResponse::default().with_groups(groups));
    }
    // v1 asks for named partitions only; v2+ may ask for all (null).
    let topics = req.topics.map(|ts| ts.into_iter().map(|t| (t.name.0.to_string(), t.partition_indexes)).collect());
    let resp = match groups::fetch_offsets(req.group_id.0.to_string(), topics).await {
        Ok(found) => {
            let topics = found
                .into_iter()
                .map(|(topic, ps)| {
                    let partitions = ps
                        .into_iter()
                        .map(|(p, o)| {
                            let (offset, epoch, metadata) = parts(o);
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(offset)
                                .with_committed_leader_epoch(if v >= 5 { epoch } else { -1 })
                                .with_metadata(Some(metadata))
                        })
                        .collect();
                    OffsetFetchResponseTopic::default()
                        .with_name(TopicName(StrBytes::from_string(topic)))
                        .with_partitions(partitions)
                })
                .collect();
            OffsetFetchResponse::default().with_topics(topics)
        }
        Err(e) if v >= 2 => OffsetFetchResponse::default().with_error_code(e),
        Err(_) => OffsetFetchResponse::default(),
    };
    respond(frame, &resp)
}

fn topics_v8(found: FetchedOffsets) -> Vec<OffsetFetchResponseTopics> {
    found
        .into_iter()
        .map(|(topic, ps)| {
            let partitions = ps
                .into_iter()
                .map(|(p, o)| {
                    let (offset, epoch, metadata) = parts(o);
                    OffsetFetchResponsePartitions::default()
                        .with_partition_index(p)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(epoch)
                        .with_metadata(Some(metadata))
                })
                .collect();
            OffsetFetchResponseTopics::default()
                .with_name(TopicName(StrBytes::from_string(topic)))
                .with_partitions(partitions)
        })
        .collect()
}
