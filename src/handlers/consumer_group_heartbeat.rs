//! ConsumerGroupHeartbeat (key 68, KIP-848): a member of a new-protocol
//! group joins, stays, reports what it owns and learns its assignment.
//! Topics travel as ids on the wire and as names in the coordinator.

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::protocol::StrBytes;

use super::respond;
use crate::groups::{self, HeartbeatRequest};
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;
use crate::shard;

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: ConsumerGroupHeartbeatRequest = decode_body(frame)?;
    let table = shard::current().topics();
    // Owned partitions of topics deleted meanwhile are simply not owned.
    let owned = req.topic_partitions.map(|tps| {
        let mut owned = groups::consumer::Assignment::new();
        for tp in tps {
            if let Some(meta) = table.by_id(&tp.topic_id) {
                owned.entry(meta.name.clone()).or_default().extend(tp.partitions);
            }
        }
        owned
    });
    let args = HeartbeatRequest {
        group_id: req.group_id.0.to_string(),
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.map(|i| i.to_string()),
        rack_id: req.rack_id.map(|r| r.to_string()),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed: req.subscribed_topic_names.map(|ts| ts.into_iter().map(|t| t.0.to_string()).collect()),
        regex: if frame.version >= 1 { req.subscribed_topic_regex.map(|r| r.to_string()) } else { None },
        owned,
        client_id: frame.header.client_id.as_ref().map(|c| c.to_string()).unwrap_or_default(),
        client_host: format!("/{}", frame.peer.ip()),
    };
    let r = groups::consumer_heartbeat(args).await;
    let table = shard::current().topics();
    let assignment = r.assignment.map(|a| {
        let topic_partitions = a
            .into_iter()
            .filter_map(|(name, ps)| {
                let id = table.get(&name)?.id;
                Some(TopicPartitions::default().with_topic_id(id).with_partitions(ps.into_iter().collect()))
            })
            .collect();
        Assignment::default().with_topic_partitions(topic_partitions)
    });
    let resp = ConsumerGroupHeartbeatResponse::default()
        .with_error_code(r.error)
        .with_error_message(r.message.map(StrBytes::from_string))
        .with_member_id((!r.member_id.is_empty()).then(|| StrBytes::from_string(r.member_id)))
        .with_member_epoch(r.member_epoch)
        .with_heartbeat_interval_ms(r.heartbeat_interval_ms)
        .with_assignment(assignment);
    respond(frame, &resp)
}
