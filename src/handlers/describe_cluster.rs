//! DescribeCluster (key 60): the live brokers (with fenced ones too when
//! asked, v2), the active controller and the cluster id.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::respond;
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;
use crate::shard;

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: DescribeClusterRequest = decode_body(frame)?;
    let shard = shard::current();
    let mut brokers = super::cluster_brokers(&shard);
    if req.include_fenced_brokers {
        if let Some(view) = shard.cluster() {
            brokers.extend(view.image.brokers.values().filter(|b| b.fenced).map(super::ListedBroker::from));
            brokers.sort_by_key(|b| b.id);
        }
    }
    let brokers = brokers
        .into_iter()
        .map(|b| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.id))
                .with_host(StrBytes::from_string(b.host))
                .with_port(b.port as i32)
                .with_rack(b.rack.map(StrBytes::from_string))
                .with_is_fenced(b.fenced)
        })
        .collect();
    let resp = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(super::cluster_id(&shard, &shard.topics())))
        .with_controller_id(BrokerId(super::controller_id(&shard)))
        .with_brokers(brokers);
    respond(frame, &resp)
}
