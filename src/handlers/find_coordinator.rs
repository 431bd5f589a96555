//! FindCoordinator (key 10): every group is coordinated by this broker
//! (by one of its shards, which clients do not see). v4+ asks for several
//! keys at once. Transaction coordinators are not served yet.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::respond;
use crate::groups::persist::partition_for;
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;
use crate::shard::{self, Shard};
use crate::topics::OFFSETS_TOPIC;

/// The coordinator (node id, host, port) for a key: the broker that leads
/// the group's partition of `__consumer_offsets`. In a cluster that topic
/// is created on the first ask, as Kafka does, and the client asks again.
fn lookup(key_type: i8, key: &str, shard: &Shard) -> Result<(i32, String, i32), ResponseError> {
    match key_type {
        0 => {}
        1 => return Err(ResponseError::CoordinatorNotAvailable),
        _ => return Err(ResponseError::InvalidRequest),
    }
    let table = shard.topics();
    let Some(meta) = table.get(OFFSETS_TOPIC) else {
        glommio::spawn_local(crate::cluster::admin::ensure_offsets_topic()).detach();
        return Err(ResponseError::CoordinatorNotAvailable);
    };
    let p = partition_for(key, meta.partitions.len());
    let leader = super::partition_view(shard, &meta.partitions[p as usize]).leader;
    let brokers = super::cluster_brokers(shard);
    let b = brokers.into_iter().find(|b| b.id == leader).ok_or(ResponseError::CoordinatorNotAvailable)?;
    Ok((b.id, b.host, b.port as i32))
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
    let shard = shard::current();
    let v = frame.version;
    let key_type = if v >= 1 { req.key_type } else { 0 };
    if v >= 4 {
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let (err, msg, node, host, port) = answer(lookup(key_type, &key, &shard));
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
    let (err, msg, node, host, port) = answer(lookup(key_type, &req.key, &shard));
    let resp = FindCoordinatorResponse::default()
        .with_error_code(err)
        .with_error_message(if v >= 1 { msg } else { None })
        .with_node_id(BrokerId(node))
        .with_host(host)
        .with_port(port);
    respond(frame, &resp)
}
