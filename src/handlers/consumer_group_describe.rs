//! ConsumerGroupDescribe (key 69, KIP-848): members of new-protocol
//! groups with their current and target assignments.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_describe_response::{Assignment, DescribedGroup, Member, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse};
use kafka_protocol::protocol::StrBytes;

use super::respond;
use crate::groups::{self, consumer, NotDescribed};
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;
use crate::shard;
use crate::topics::TopicTable;

/// "Not requested" for authorized operations (KIP-430).
const OPS_NOT_REQUESTED: i32 = i32::MIN;

fn assignment(table: &TopicTable, a: consumer::Assignment) -> Assignment {
    let topic_partitions = a
        .into_iter()
        .filter_map(|(name, ps)| {
            let id = table.get(&name)?.id;
            Some(
                TopicPartitions::default()
                    .with_topic_id(id)
                    .with_topic_name(StrBytes::from_string(name).into())
                    .with_partitions(ps.into_iter().collect()),
            )
        })
        .collect();
    Assignment::default().with_topic_partitions(topic_partitions)
}

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: ConsumerGroupDescribeRequest = decode_body(frame)?;
    let ids = req.group_ids.iter().map(|g| g.0.to_string()).collect();
    let described = groups::consumer_describe(ids).await;
    let table = shard::current().topics();
    let groups = described
        .into_iter()
        .map(|(id, r)| {
            let g = DescribedGroup::default()
                .with_group_id(StrBytes::from_string(id.clone()).into())
                .with_authorized_operations(OPS_NOT_REQUESTED);
            match r {
                Err(NotDescribed::Error(e)) => g.with_error_code(e),
                // Kafka 4.3's messages; the Java client shows them.
                Err(missing) => {
                    let msg = match missing {
                        NotDescribed::OtherType => format!("Group {id} is not a consumer group."),
                        _ => format!("Group {id} not found."),
                    };
                    g.with_error_code(ResponseError::GroupIdNotFound.code())
                        .with_error_message(Some(StrBytes::from_string(msg)))
                }
                Ok(view) => {
                    let members = view
                        .members
                        .into_iter()
                        .map(|(m, target)| {
                            let subscribed =
                                m.subscribed.iter().map(|t| StrBytes::from_string(t.clone()).into()).collect();
                            let member = Member::default()
                                .with_member_id(StrBytes::from_string(m.id))
                                .with_instance_id(m.instance_id.map(StrBytes::from_string))
                                .with_rack_id(m.rack_id.map(StrBytes::from_string))
                                .with_member_epoch(m.epoch)
                                .with_client_id(StrBytes::from_string(m.client_id))
                                .with_client_host(StrBytes::from_string(m.client_host))
                                .with_subscribed_topic_names(subscribed)
                                .with_subscribed_topic_regex(m.regex.map(StrBytes::from_string))
                                .with_assignment(assignment(&table, m.assigned))
                                .with_target_assignment(assignment(&table, target));
                            // v1: 1 = a member of the new protocol (0: classic).
                            if frame.version >= 1 {
                                member.with_member_type(1)
                            } else {
                                member
                            }
                        })
                        .collect();
                    g.with_group_state(StrBytes::from_static_str(view.state))
                        .with_group_epoch(view.group_epoch)
                        .with_assignment_epoch(view.assignment_epoch)
                        .with_assignor_name(StrBytes::from_static_str("uniform"))
                        .with_members(members)
                }
            }
        })
        .collect();
    respond(frame, &ConsumerGroupDescribeResponse::default().with_groups(groups))
}
