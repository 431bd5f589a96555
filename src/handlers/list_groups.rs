//! ListGroups (key 16): every group of every shard, filtered by state
//! (v4+, KIP-518) and type (v5+, KIP-848).

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use super::respond;
use crate::groups;
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: ListGroupsRequest = decode_body(frame)?;
    let v = frame.version;
    let states = if v >= 4 { req.states_filter.iter().map(|s| s.to_string()).collect() } else { Vec::new() };
    let types = if v >= 5 { req.types_filter.iter().map(|s| s.to_string()).collect() } else { Vec::new() };
    let resp = match groups::list_groups(states, types).await {
        Err(e) => ListGroupsResponse::default().with_error_code(e),
        Ok(list) => {
            let groups = list
                .into_iter()
                .map(|g| {
                    let l = ListedGroup::default()
                        .with_group_id(StrBytes::from_string(g.group_id).into())
                        .with_protocol_type(StrBytes::from_string(g.protocol_type));
                    let l = if v >= 4 { l.with_group_state(StrBytes::from_static_str(g.state)) } else { l };
                    if v >= 5 {
                        l.with_group_type(StrBytes::from_static_str(g.group_type))
                    } else {
                        l
                    }
                })
                .collect();
            ListGroupsResponse::default().with_groups(groups)
        }
    };
    respond(frame, &resp)
}
