//! LeaveGroup (key 13): members leave (v3+: several at once, static
//! members by instance id); the group rebalances without them.

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::respond;
use crate::groups::{self, NONE};
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: LeaveGroupRequest = decode_body(frame)?;
    let v = frame.version;
    let leaving: Vec<(String, Option<String>)> = if v >= 3 {
        req.members
            .iter()
            .map(|m| (m.member_id.to_string(), m.group_instance_id.as_ref().map(|i| i.to_string())))
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    let (group_error, errors) = groups::leave(req.group_id.0.to_string(), leaving.clone()).await;
    if v < 3 {
        // One member: its error is the response's.
        let error = if group_error != NONE { group_error } else { errors.first().copied().unwrap_or(NONE) };
        return respond(frame, &LeaveGroupResponse::default().with_error_code(error));
    }
    let members = if group_error != NONE {
        Vec::new()
    } else {
        leaving
            .into_iter()
            .zip(errors)
            .map(|((member_id, instance), error)| {
                MemberResponse::default()
                    .with_member_id(StrBytes::from_string(member_id))
                    .with_group_instance_id(instance.map(StrBytes::from_string))
                    .with_error_code(error)
            })
            .collect()
    };
    respond(frame, &LeaveGroupResponse::default().with_error_code(group_error).with_members(members))
}
