//! JoinGroup (key 11): enter a classic group, or rejoin it for a new
//! generation. The answer waits on the group's shard until the rebalance
//! completes (see `groups::group`).

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::respond;
use crate::groups::{self, JoinRequest};
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: JoinGroupRequest = decode_body(frame)?;
    let v = frame.version;
    let args = JoinRequest {
        group_id: req.group_id.0.to_string(),
        member_id: req.member_id.to_string(),
        group_instance_id: if v >= 5 { req.group_instance_id.map(|i| i.to_string()) } else { None },
        client_id: frame.header.client_id.as_ref().map(|c| c.to_string()).unwrap_or_default(),
        // As Kafka prints it (Java's InetAddress.toString).
        client_host: format!("/{}", frame.peer.ip()),
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if v >= 1 { req.rebalance_timeout_ms } else { req.session_timeout_ms },
        protocol_type: req.protocol_type.to_string(),
        protocols: req.protocols.into_iter().map(|p| (p.name.to_string(), p.metadata)).collect(),
        require_known_member_id: v >= 4,
        supports_skip_assignment: v >= 9,
    };
    let r = groups::join(args).await;
    let members = r
        .members
        .into_iter()
        .map(|m| {
            JoinGroupResponseMember::default()
                .with_member_id(StrBytes::from_string(m.member_id))
                .with_group_instance_id(if v >= 5 { m.group_instance_id.map(StrBytes::from_string) } else { None })
                .with_metadata(m.metadata)
        })
        .collect();
    // Before v7 the protocol name is not nullable: Kafka sends "".
    let protocol_name = match r.protocol_name {
        Some(p) => Some(StrBytes::from_string(p)),
        None if v >= 7 => None,
        None => Some(StrBytes::default()),
    };
    let resp = JoinGroupResponse::default()
        .with_error_code(r.error)
        .with_generation_id(r.generation_id)
        .with_protocol_type(if v >= 7 { r.protocol_type.map(StrBytes::from_string) } else { None })
        .with_protocol_name(protocol_name)
        .with_leader(StrBytes::from_string(r.leader))
        .with_skip_assignment(v >= 9 && r.skip_assignment)
        .with_member_id(StrBytes::from_string(r.member_id))
        .with_members(members);
    respond(frame, &resp)
}
