//! DescribeGroups (key 15): state, protocol and members of groups, each
//! asked of the shard that coordinates it.
//!
//! A group that is not there (never was, deleted, or a KIP-848 consumer
//! group) is "Dead" without an error below v6; from v6 (KIP-1043,
//! KAFKA-17550) it is GROUP_ID_NOT_FOUND with a message, still "Dead", as
//! Kafka 4.3 answers. The Java client 4.x then fails describeConsumerGroups
//! of a deleted group with GroupIdNotFoundException.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use super::respond;
use crate::groups::{self, NotDescribed};
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;

/// "Not requested" for authorized operations (KIP-430).
const OPS_NOT_REQUESTED: i32 = i32::MIN;

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: DescribeGroupsRequest = decode_body(frame)?;
    let v = frame.version;
    let ids = req.groups.iter().map(|g| g.0.to_string()).collect();
    let groups = groups::describe_groups(ids)
        .await
        .into_iter()
        .map(|(id, r)| {
            let g = DescribedGroup::default().with_group_id(StrBytes::from_string(id).into());
            let g = if v >= 3 { g.with_authorized_operations(OPS_NOT_REQUESTED) } else { g };
            match r {
                Err(NotDescribed::Error(e)) => g.with_error_code(e),
                Err(missing) => {
                    let g = g.with_group_state(StrBytes::from_static_str("Dead"));
                    if v < 6 {
                        return g;
                    }
                    let msg = match missing {
                        NotDescribed::OtherType => format!("Group {} is not a classic group.", g.group_id.as_str()),
                        _ => format!("Group {} not found.", g.group_id.as_str()),
                    };
                    g.with_error_code(ResponseError::GroupIdNotFound.code())
                        .with_error_message(Some(StrBytes::from_string(msg)))
                }
                Ok(view) => {
                    let members = view
                        .members
                        .into_iter()
                        .map(|m| {
                            DescribedGroupMember::default()
                                .with_member_id(StrBytes::from_string(m.member_id))
                                .with_group_instance_id(if v >= 4 {
                                    m.group_instance_id.map(StrBytes::from_string)
                                } else {
                                    None
                                })
                                .with_client_id(StrBytes::from_string(m.client_id))
                                .with_client_host(StrBytes::from_string(m.client_host))
                                .with_member_metadata(m.metadata)
                                .with_member_assignment(m.assignment)
                        })
                        .collect();
                    g.with_group_state(StrBytes::from_static_str(view.state))
                        .with_protocol_type(StrBytes::from_string(view.protocol_type))
                        .with_protocol_data(StrBytes::from_string(view.protocol))
                        .with_members(members)
                }
            }
        })
        .collect();
    respond(frame, &DescribeGroupsResponse::default().with_groups(groups))
}
