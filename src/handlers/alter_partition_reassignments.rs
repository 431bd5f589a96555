//! AlterPartitionReassignments (key 45, KIP-455; `kafka-reassign-partitions
//! --execute`/`--cancel`): the controller records each partition's target
//! replicas (null cancels), and the partition's Raft leader moves its group
//! there (`partition::replicated`). The answer comes once it is recorded,
//! as Kafka's does; ListPartitionReassignments shows the progress.

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse};
use kafka_protocol::protocol::StrBytes;

use super::respond;
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;
use crate::shard::invoke_on;

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: AlterPartitionReassignmentsRequest = decode_body(frame)?;
    let moves: Vec<(String, i32, Option<Vec<i32>>)> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                let target = p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect());
                (t.name.0.to_string(), p.partition_index, target)
            })
        })
        .collect();
    let mut done = invoke_on(0, move || crate::admin::reassign(moves)).await.into_iter();
    let responses = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let r = ReassignablePartitionResponse::default().with_partition_index(p.partition_index);
                    match done.next().expect("a result per partition") {
                        Ok(()) => r.with_error_message(None),
                        Err((code, msg)) => {
                            r.with_error_code(code.code()).with_error_message(Some(StrBytes::from_string(msg)))
                        }
                    }
                })
                .collect();
            ReassignableTopicResponse::default().with_name(t.name.clone()).with_partitions(partitions)
        })
        .collect();
    respond(frame, &AlterPartitionReassignmentsResponse::default().with_responses(responses))
}
