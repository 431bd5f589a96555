//! SyncGroup (key 14): the leader hands in the assignment of a new
//! generation; every member gets its own part (followers wait for the
//! leader's).

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::respond;
use crate::groups::{self, SyncRequest};
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: SyncGroupRequest = decode_body(frame)?;
    let v = frame.version;
    let args = SyncRequest {
        group_id: req.group_id.0.to_string(),
        generation_id: req.generation_id,
        member_id: req.member_id.to_string(),
        group_instance_id: if v >= 3 { req.group_instance_id.map(|i| i.to_string()) } else { None },
        protocol_type: if v >= 5 { req.protocol_type.map(|t| t.to_string()) } else { None },
        protocol_name: if v >= 5 { req.protocol_name.map(|n| n.to_string()) } else { None },
        assignments: req.assignments.into_iter().map(|a| (a.member_id.to_string(), a.assignment)).collect(),
    };
    let r = groups::sync(args).await;
    let mut resp = SyncGroupResponse::default().with_error_code(r.error).with_assignment(r.assignment);
    if v >= 5 {
        resp = resp
            .with_protocol_type(r.protocol_type.map(StrBytes::from_string))
            .with_protocol_name(r.protocol_name.map(StrBytes::from_string));
    }
    respond(frame, &resp)
}
