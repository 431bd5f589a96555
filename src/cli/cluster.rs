//! `sluice cluster info`: the cluster id, its controller and its brokers
//! (DescribeCluster where the broker serves it, else Metadata), and the
//! metadata quorum's leader and voters (DescribeQuorum).

use std::io::Write;

use anyhow::{Context, Result};
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::{DescribeClusterRequest, DescribeQuorumRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::client::Cluster;
use super::kafka_error::check;
use super::Server;

#[derive(clap::Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    server: Server,
    #[command(subcommand)]
    cmd: ClusterCmd,
}

#[derive(clap::Subcommand)]
enum ClusterCmd {
    /// The cluster id, the controller, and each broker's id and address.
    Info,
}

pub fn run(args: ClusterArgs) -> Result<()> {
    let mut cluster = Cluster::connect(&args.server.bootstrap_server)?;
    let ClusterCmd::Info = args.cmd;
    let (id, controller, brokers) = if cluster.bootstrap.supports::<DescribeClusterRequest>() {
        let v = cluster.bootstrap.version::<DescribeClusterRequest>(1)?;
        let resp = cluster.bootstrap.call(&DescribeClusterRequest::default(), v)?;
        check(resp.error_code, resp.error_message.as_deref()).context("describing the cluster")?;
        let brokers: Vec<(i32, String, Option<String>)> = resp
            .brokers
            .iter()
            .map(|b| (b.broker_id.0, format!("{}:{}", b.host.as_str(), b.port), b.rack.as_ref().map(|r| r.to_string())))
            .collect();
        (Some(resp.cluster_id.to_string()), resp.controller_id.0, brokers)
    } else {
        let resp = cluster.metadata(Some(&[]))?;
        let brokers = resp
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port), b.rack.as_ref().map(|r| r.to_string())))
            .collect();
        (resp.cluster_id.as_ref().map(|c| c.to_string()), resp.controller_id.0, brokers)
    };
    let mut brokers = brokers;
    brokers.sort();
    let mut out = std::io::stdout().lock();
    writeln!(out, "Cluster ID: {}", id.as_deref().unwrap_or("-"))?;
    writeln!(out, "Controller: {}", if controller < 0 { "-".to_string() } else { controller.to_string() })?;
    writeln!(out, "Brokers:")?;
    for (node, addr, rack) in brokers {
        let rack = rack.map(|r| format!("  rack {r}")).unwrap_or_default();
        let mark = if node == controller { "  (controller)" } else { "" };
        writeln!(out, "  {node}  {addr}{rack}{mark}")?;
    }
    // The metadata quorum (KIP-595), where the broker describes it: Kafka's
    // DescribeCluster names a random broker as "controller", so the quorum's
    // leader comes from here.
    if cluster.bootstrap.supports::<DescribeQuorumRequest>() {
        let v = cluster.bootstrap.version::<DescribeQuorumRequest>(2)?;
        let req = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
            .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
            .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
        let resp = cluster.bootstrap.call(&req, v)?;
        check(resp.error_code, resp.error_message.as_deref()).context("describing the metadata quorum")?;
        let p = resp.topics.first().and_then(|t| t.partitions.first()).context("DescribeQuorum: no partition")?;
        check(p.error_code, p.error_message.as_deref()).context("describing the metadata quorum")?;
        let mut voters: Vec<i32> = p.current_voters.iter().map(|r| r.replica_id.0).collect();
        voters.sort_unstable();
        let voters: Vec<String> = voters.iter().map(i32::to_string).collect();
        writeln!(
            out,
            "Quorum leader: {} (epoch {}, high watermark {})",
            p.leader_id.0, p.leader_epoch, p.high_watermark
        )?;
        writeln!(out, "Quorum voters: {}", voters.join(" "))?;
    }
    Ok(())
}
