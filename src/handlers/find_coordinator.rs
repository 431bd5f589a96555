//! FindCoordinator (key 10): every group is coordinated by this broker
//! (by one of its shards, which clients do not see). v4+ asks for several
//! keys at once. Transaction coordinators are not served yet.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::respond;
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;
use crate::shard;

/// The coordinator (node id, host, port) for a key type, or the error.
fn lookup(key_type: i8, node_id: i32, host: &str, port: i32) -> Result<(i32, String, i32), ResponseError> {
    match key_type {
        0 => Ok((node_id, host.to_string(), port)),
        1 => Err(ResponseError::CoordinatorNotAvailable),
        _ => Err(ResponseError::InvalidRequest),
    }
}

/// (error code, error message, node id, host, port) as the response carries them.
fn answer(found: Result<(i32, String, i32), ResponseError>) -> (i16, Option<StrBytes>, i32, StrBytes, i32) {
    match found {
        Ok((node, host, port)) => (0, None, node, StrBytes::from_string(host), port),
        Err(e) => {
            let msg = match e {
                ResponseError::CoordinatorNotAvailable => "The coordinator is not available.",
                _ => "Unknown coordinator key type.",
            };
            (e.code(), Some(StrBytes::from_static_str(msg)), -1, StrBytes::default(), -1)
        }
    }
}

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: FindCoordinatorRequest = decode_body(frame)?;
    let config = shard::current().config.clone();
    let (node_id, host, port) = (config.node_id, config.advertised.0.as_str(), config.advertised.1 as i32);
    let v = frame.version;
    let key_type = if v >= 1 { req.key_type } else { 0 };
    if v >= 4 {
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let (err, msg, node, host, port) = answer(lookup(key_type, node_id, host, port));
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(BrokerId(node))
                    .with_host(host)
                    .with_port(port)
                    .with_error_code(err)
                    .with_error_message(msg)
            })
            .collect();
        return respond(frame, &FindCoordinatorResponse::default().with_coordinators(coordinators));
    }
    let (err, msg, node, host, port) = answer(lookup(key_type, node_id, host, port));
    let resp = FindCoordinatorResponse::default()
        .with_error_code(err)
        .with_error_message(if v >= 1 { msg } else { None })
        .with_node_id(BrokerId(node))
        .with_host(host)
        .with_port(port);
    respond(frame, &resp)
}
