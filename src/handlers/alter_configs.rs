//! AlterConfigs (key 33, the legacy form): replaces a topic's whole set of
//! configs; what is not named returns to the broker's default.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::describe_configs::TOPIC;
use super::respond;
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;
use crate::shard::invoke_on;
use crate::topics::ConfigOp;

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: AlterConfigsRequest = decode_body(frame)?;
    let changes: Vec<_> = req
        .resources
        .iter()
        .filter(|r| r.resource_type == TOPIC)
        .map(|r| {
            let ops = r
                .configs
                .iter()
                .map(|c| ConfigOp::Set(c.name.to_string(), c.value.as_ref().map(|v| v.to_string()).unwrap_or_default()))
                .collect();
            (r.resource_name.to_string(), ops, true)
        })
        .collect();
    let validate_only = req.validate_only;
    let mut done = invoke_on(0, move || crate::admin::alter_configs(changes, validate_only)).await.into_iter();
    let responses = req
        .resources
        .iter()
        .map(|r| {
            let resp = AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let outcome = if r.resource_type == TOPIC {
                done.next().expect("a result per topic")
            } else {
                Err((ResponseError::InvalidRequest, "only topic configs can be altered".to_string()))
            };
            match outcome {
                Ok(()) => resp,
                Err((code, msg)) => {
                    resp.with_error_code(code.code()).with_error_message(Some(StrBytes::from_string(msg)))
                }
            }
        })
        .collect();
    respond(frame, &AlterConfigsResponse::default().with_responses(responses))
}
