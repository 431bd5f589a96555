//! Heartbeat (key 12): keeps a member's session alive and tells it when a
//! rebalance is under way (REBALANCE_IN_PROGRESS).

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::respond;
use crate::groups;
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: HeartbeatRequest = decode_body(frame)?;
    let instance = if frame.version >= 3 { req.group_instance_id.map(|i| i.to_string()) } else { None };
    let error =
        groups::heartbeat(req.group_id.0.to_string(), req.generation_id, req.member_id.to_string(), instance).await;
    respond(frame, &HeartbeatResponse::default().with_error_code(error))
}
