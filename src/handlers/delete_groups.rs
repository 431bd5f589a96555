//! DeleteGroups (key 42): removes empty groups and their committed
//! offsets (tombstones in `__consumer_offsets`).

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use super::respond;
use crate::groups;
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: DeleteGroupsRequest = decode_body(frame)?;
    let ids = req.groups_names.iter().map(|g| g.0.to_string()).collect();
    let results = groups::delete_groups(ids)
        .await
        .into_iter()
        .map(|(id, error)| {
            DeletableGroupResult::default().with_group_id(StrBytes::from_string(id).into()).with_error_code(error)
        })
        .collect();
    respond(frame, &DeleteGroupsResponse::default().with_results(results))
}
