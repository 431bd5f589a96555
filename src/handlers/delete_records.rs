//! DeleteRecords (key 21): moves partitions' log start offsets forward
//! (offset -1 means the high watermark), dropping whole segments below.

use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::{per_partition, respond};
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;
use crate::topics::TopicPartition;

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: DeleteRecordsRequest = decode_body(frame)?;
    let items = req
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (TopicPartition::new(&t.name.0, p.partition_index), p.offset)))
        .collect();
    let mut answers = per_partition(items, |p, before| async move { p.delete_records(before).await.map_err(|e| e.0) })
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
                    let r = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
                    match answers.next().expect("an answer per partition") {
                        Ok(low) => r.with_low_watermark(low),
                        Err(code) => r.with_error_code(code.code()).with_low_watermark(-1),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default().with_name(t.name.clone()).with_partitions(partitions)
        })
        .collect();
    respond(frame, &DeleteRecordsResponse::default().with_topics(topics))
}
