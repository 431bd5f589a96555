//! IncrementalAlterConfigs (key 44): SET, DELETE, APPEND and SUBTRACT on
//! topic configs, applied live by the partitions' owners. Broker configs
//! are static (the properties file): altering them is refused.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::describe_configs::TOPIC;
use super::respond;
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;
use crate::shard::invoke_on;
use crate::topics::ConfigOp;

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: IncrementalAlterConfigsRequest = decode_body(frame)?;
    let mut early = Vec::new();
    let mut changes = Vec::new();
    for r in &req.resources {
        if r.resource_type != TOPIC {
            early.push(Some((ResponseError::InvalidRequest, "only topic configs can be altered".to_string())));
            continue;
        }
        let ops: Result<Vec<ConfigOp>, String> = r
            .configs
            .iter()
            .map(|c| {
                let (k, v) = (c.name.to_string(), c.value.as_ref().map(|v| v.to_string()).unwrap_or_default());
                match c.config_operation {
                    0 => Ok(ConfigOp::Set(k, v)),
                    1 => Ok(ConfigOp::Delete(k)),
                    2 => Ok(ConfigOp::Append(k, v)),
                    3 => Ok(ConfigOp::Subtract(k, v)),
                    op => Err(format!("unknown config operation {op}")),
                }
            })
            .collect();
        match ops {
            Ok(ops) => {
                changes.push((r.resource_name.to_string(), ops, false));
                early.push(None);
            }
            Err(e) => early.push(Some((ResponseError::InvalidRequest, e))),
        }
    }
    let validate_only = req.validate_only;
    let mut done = invoke_on(0, move || crate::admin::alter_configs(changes, validate_only)).await.into_iter();
    let responses = req
        .resources
        .iter()
        .zip(early)
        .map(|(r, early)| {
            let resp = AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            match early.map(Err).unwrap_or_else(|| done.next().expect("a result per resource")) {
                Ok(()) => resp,
                Err((code, msg)) => {
                    resp.with_error_code(code.code()).with_error_message(Some(StrBytes::from_string(msg)))
                }
            }
        })
        .collect();
    respond(frame, &IncrementalAlterConfigsResponse::default().with_responses(responses))
}
