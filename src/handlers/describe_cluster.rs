//! DescribeCluster (key 60): this broker, the controller (itself) and the
//! cluster id.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::respond;
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;
use crate::shard;

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let _req: DescribeClusterRequest = decode_body(frame)?;
    let shard = shard::current();
    let c = &shard.config;
    let node = BrokerId(c.node_id);
    let broker = DescribeClusterBroker::default()
        .with_broker_id(node)
        .with_host(StrBytes::from_string(c.advertised.0.clone()))
        .with_port(c.advertised.1 as i32);
    let resp = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(shard.topics().cluster_id.clone()))
        .with_controller_id(node)
        .with_brokers(vec![broker]);
    respond(frame, &resp)
}
