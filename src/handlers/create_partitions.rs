//! CreatePartitions (key 37): grows topics; new partitions are placed on the
//! least loaded shards by the controller.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use super::respond;
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;
use crate::shard::{self, invoke_on};

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: CreatePartitionsRequest = decode_body(frame)?;
    let node = shard::current().config.node_id;
    // Manual assignments may only name this broker.
    let bad_assignment = |t: &kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic| {
        t.assignments.as_ref().is_some_and(|a| a.iter().any(|x| x.broker_ids.iter().any(|b| b.0 != node)))
    };
    let asks: Vec<(String, i32)> =
        req.topics.iter().filter(|t| !bad_assignment(t)).map(|t| (t.name.0.to_string(), t.count)).collect();
    let validate_only = req.validate_only;
    let mut done = invoke_on(0, move || crate::admin::create_partitions(asks, validate_only)).await.into_iter();
    let results = req
        .topics
        .iter()
        .map(|t| {
            let r = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            let outcome = if bad_assignment(t) {
                Err((ResponseError::InvalidReplicaAssignment, format!("replicas must be exactly [{node}]")))
            } else {
                done.next().expect("a result per topic")
            };
            match outcome {
                Ok(()) => r,
                Err((code, msg)) => r.with_error_code(code.code()).with_error_message(Some(StrBytes::from_string(msg))),
            }
        })
        .collect();
    respond(frame, &CreatePartitionsResponse::default().with_results(results))
}
