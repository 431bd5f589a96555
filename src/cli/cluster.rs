//! `sluice cluster info`: the cluster id, its controller and its brokers
//! (DescribeCluster where the broker serves it, else Metadata).

use std::io::Write;

use anyhow::{Context, Result};
use kafka_protocol::messages::DescribeClusterRequest;

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
    Ok(())
}
