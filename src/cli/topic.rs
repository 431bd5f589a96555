//! `sluice topic create|list|describe|delete|alter-config|add-partitions`,
//! printing what kafka-topics.sh prints.

use std::io::Write;

use anyhow::{bail, Context, Result};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{
    alter_configs_request, incremental_alter_configs_request, AlterConfigsRequest, CreatePartitionsRequest,
    CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest,
};

use super::client::{str_bytes, topic_name, Cluster, Conn};
use super::kafka_error::check;
use super::{key_value, usage, Server};

/// DescribeConfigs/AlterConfigs resource type of a topic.
const TOPIC_RESOURCE: i8 = 2;
/// DescribeConfigs source: set on the topic itself.
const TOPIC_CONFIG_SOURCE: i8 = 1;
const TIMEOUT_MS: i32 = 30_000;

#[derive(clap::Args)]
pub struct TopicArgs {
    #[command(flatten)]
    server: Server,
    #[command(subcommand)]
    cmd: TopicCmd,
}

#[derive(clap::Subcommand)]
enum TopicCmd {
    /// Create a topic.
    Create {
        name: String,
        /// Number of partitions [default: the broker's num.partitions].
        #[arg(long)]
        partitions: Option<i32>,
        /// Replicas per partition [default: the broker's default.replication.factor].
        #[arg(long)]
        replication_factor: Option<i16>,
        /// A topic config, e.g. retention.ms=86400000 (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
    },
    /// Print every topic's name, one per line.
    List {
        /// Leave out internal topics (__consumer_offsets).
        #[arg(long)]
        exclude_internal: bool,
    },
    /// Show partitions (leader, replicas, ISR) and the configs a topic sets
    /// [default: every topic].
    Describe { names: Vec<String> },
    /// Delete a topic and its data.
    Delete { name: String },
    /// Set or remove topic configs.
    AlterConfig {
        name: String,
        /// Set KEY to VALUE (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        /// Remove the topic's own setting of KEY, back to the broker default (repeatable).
        #[arg(long = "delete-config", value_name = "KEY")]
        delete: Vec<String>,
    },
    /// Raise a topic's partition count.
    AddPartitions {
        name: String,
        /// The new total number of partitions (as kafka-topics --alter --partitions).
        #[arg(long)]
        partitions: i32,
    },
}

pub fn run(args: TopicArgs) -> Result<()> {
    let mut cluster = Cluster::connect(&args.server.bootstrap_server)?;
    let mut out = std::io::stdout().lock();
    match args.cmd {
        TopicCmd::Create { name, partitions, replication_factor, configs } => {
            let configs = configs.iter().map(|c| key_value(c, "--config")).collect::<Result<Vec<_>>>()?;
            create(&mut cluster.bootstrap, &name, partitions, replication_factor, &configs)?;
            writeln!(out, "Created topic {name}.")?;
        }
        TopicCmd::List { exclude_internal } => {
            let resp = cluster.metadata(None)?;
            let mut names: Vec<&str> = resp
                .topics
                .iter()
                .filter(|t| !(exclude_internal && t.is_internal))
                .filter_map(|t| t.name.as_ref().map(|n| n.as_str()))
                .collect();
            names.sort_unstable();
            for n in names {
                writeln!(out, "{n}")?;
            }
        }
        TopicCmd::Describe { mut names } => {
            if names.is_empty() {
                let resp = cluster.metadata(None)?;
                names = resp.topics.iter().filter_map(|t| t.name.as_ref().map(|n| n.to_string())).collect();
                names.sort_unstable();
            }
            for name in &names {
                describe(&mut cluster, name, &mut out)?;
            }
        }
        TopicCmd::Delete { name } => {
            delete(&mut cluster.bootstrap, &name)?;
            writeln!(out, "Deleted topic {name}.")?;
        }
        TopicCmd::AlterConfig { name, configs, delete } => {
            if configs.is_empty() && delete.is_empty() {
                return Err(usage("alter-config needs --config KEY=VALUE or --delete-config KEY"));
            }
            let set = configs.iter().map(|c| key_value(c, "--config")).collect::<Result<Vec<_>>>()?;
            alter_config(&mut cluster.bootstrap, &name, &set, &delete)?;
            writeln!(out, "Completed updating config for topic {name}.")?;
        }
        TopicCmd::AddPartitions { name, partitions } => {
            add_partitions(&mut cluster.bootstrap, &name, partitions)?;
            writeln!(out, "Topic {name} now has {partitions} partitions.")?;
        }
    }
    Ok(())
}

fn create(
    conn: &mut Conn,
    name: &str,
    partitions: Option<i32>,
    replication: Option<i16>,
    configs: &[(String, String)],
) -> Result<()> {
    let v = conn.version::<CreateTopicsRequest>(7)?;
    // Before v4 a broker needs explicit numbers; "-1: the broker's default" came with v4.
    let default = |asked: Option<i32>| asked.unwrap_or(if v >= 4 { -1 } else { 1 });
    let mut t = CreatableTopic::default();
    t.name = topic_name(name);
    t.num_partitions = default(partitions);
    t.replication_factor = default(replication.map(i32::from)) as i16;
    t.configs = configs
        .iter()
        .map(|(k, val)| {
            let mut c = CreatableTopicConfig::default();
            c.name = str_bytes(k);
            c.value = Some(str_bytes(val));
            c
        })
        .collect();
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = TIMEOUT_MS;
    let resp = conn.call(&req, v)?;
    let Some(r) = resp.topics.first() else { bail!("CreateTopics returned no result for {name}") };
    if r.error_code == 36 {
        bail!("topic {name} already exists");
    }
    check(r.error_code, r.error_message.as_deref()).with_context(|| format!("creating topic {name}"))
}

fn delete(conn: &mut Conn, name: &str) -> Result<()> {
    let v = conn.version::<DeleteTopicsRequest>(6)?;
    let mut req = DeleteTopicsRequest::default();
    if v >= 6 {
        let mut s = kafka_protocol::messages::delete_topics_request::DeleteTopicState::default();
        s.name = Some(topic_name(name));
        req.topics = vec![s];
    } else {
        req.topic_names = vec![topic_name(name)];
    }
    req.timeout_ms = TIMEOUT_MS;
    let resp = conn.call(&req, v)?;
    let Some(r) = resp.responses.first() else { bail!("DeleteTopics returned no result for {name}") };
    if r.error_code == 3 {
        bail!("unknown topic {name}");
    }
    check(r.error_code, r.error_message.as_deref()).with_context(|| format!("deleting topic {name}"))
}

/// The configs the topic sets itself (not inherited), sorted by name.
fn own_configs(conn: &mut Conn, name: &str) -> Result<Vec<(String, String)>> {
    let v = conn.version::<DescribeConfigsRequest>(4)?;
    let mut res = DescribeConfigsResource::default();
    res.resource_type = TOPIC_RESOURCE;
    res.resource_name = str_bytes(name);
    res.configuration_keys = None;
    let mut req = DescribeConfigsRequest::default();
    req.resources = vec![res];
    let resp = conn.call(&req, v)?;
    let Some(r) = resp.results.first() else { bail!("DescribeConfigs returned nothing for {name}") };
    if r.error_code == 3 {
        bail!("unknown topic {name}");
    }
    check(r.error_code, r.error_message.as_deref()).with_context(|| format!("configs of topic {name}"))?;
    let mut own: Vec<(String, String)> = r
        .configs
        .iter()
        .filter(|c| c.config_source == TOPIC_CONFIG_SOURCE)
        .map(|c| {
            (
                c.name.to_string(),
                if c.is_sensitive { "(sensitive)".into() } else { c.value.as_deref().unwrap_or("null").to_string() },
            )
        })
        .collect();
    own.sort();
    Ok(own)
}

fn describe(cluster: &mut Cluster, name: &str, out: &mut impl Write) -> Result<()> {
    let layout = cluster.topic(name)?;
    let configs = own_configs(&mut cluster.bootstrap, name)?;
    let rf = layout.partitions.first().map_or(0, |p| p.replicas.len());
    let configs = configs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    let id = if layout.id.is_nil() { String::new() } else { format!("\tTopicId: {}", kafka_uuid(&layout.id)) };
    writeln!(
        out,
        "Topic: {name}{id}\tPartitionCount: {}\tReplicationFactor: {rf}\tConfigs: {configs}",
        layout.partitions.len()
    )?;
    let list = |ids: &[i32]| ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    for p in &layout.partitions {
        let leader = if p.leader < 0 { "none".to_string() } else { p.leader.to_string() };
        write!(
            out,
            "\tTopic: {name}\tPartition: {}\tLeader: {leader}\tReplicas: {}\tIsr: {}",
            p.index,
            list(&p.replicas),
            list(&p.isr)
        )?;
        if p.error_code != 0 {
            write!(out, "\tError: {}", super::kafka_error::name(p.error_code))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// Topic ids as Kafka prints them: URL-safe base64 of the 16 bytes, no padding.
fn kafka_uuid(id: &uuid::Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn alter_config(conn: &mut Conn, name: &str, set: &[(String, String)], remove: &[String]) -> Result<()> {
    if conn.supports::<IncrementalAlterConfigsRequest>() {
        let v = conn.version::<IncrementalAlterConfigsRequest>(1)?;
        let mut res = incremental_alter_configs_request::AlterConfigsResource::default();
        res.resource_type = TOPIC_RESOURCE;
        res.resource_name = str_bytes(name);
        let op = |k: &str, val: Option<&str>, op: i8| {
            let mut c = incremental_alter_configs_request::AlterableConfig::default();
            c.name = str_bytes(k);
            c.value = val.map(str_bytes);
            c.config_operation = op;
            c
        };
        // Operations: 0 SET, 1 DELETE.
        res.configs = set.iter().map(|(k, val)| op(k, Some(val), 0)).collect();
        res.configs.extend(remove.iter().map(|k| op(k, None, 1)));
        let mut req = IncrementalAlterConfigsRequest::default();
        req.resources = vec![res];
        let resp = conn.call(&req, v)?;
        let Some(r) = resp.responses.first() else { bail!("IncrementalAlterConfigs returned nothing for {name}") };
        return alter_result(name, r.error_code, r.error_message.as_deref());
    }
    // AlterConfigs replaces the whole set: start from what the topic sets now.
    let mut configs = own_configs(conn, name)?;
    configs.retain(|(k, _)| !remove.contains(k) && !set.iter().any(|(s, _)| s == k));
    configs.extend(set.iter().cloned());
    let v = conn.version::<AlterConfigsRequest>(2)?;
    let mut res = alter_configs_request::AlterConfigsResource::default();
    res.resource_type = TOPIC_RESOURCE;
    res.resource_name = str_bytes(name);
    res.configs = configs
        .iter()
        .map(|(k, val)| {
            let mut c = alter_configs_request::AlterableConfig::default();
            c.name = str_bytes(k);
            c.value = Some(str_bytes(val));
            c
        })
        .collect();
    let mut req = AlterConfigsRequest::default();
    req.resources = vec![res];
    let resp = conn.call(&req, v)?;
    let Some(r) = resp.responses.first() else { bail!("AlterConfigs returned nothing for {name}") };
    alter_result(name, r.error_code, r.error_message.as_deref())
}

fn alter_result(name: &str, code: i16, msg: Option<&str>) -> Result<()> {
    if code == 3 {
        bail!("unknown topic {name}");
    }
    check(code, msg).with_context(|| format!("altering configs of topic {name}"))
}

fn add_partitions(conn: &mut Conn, name: &str, count: i32) -> Result<()> {
    let v = conn.version::<CreatePartitionsRequest>(3)?;
    let mut t = CreatePartitionsTopic::default();
    t.name = topic_name(name);
    t.count = count;
    t.assignments = None;
    let mut req = CreatePartitionsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = TIMEOUT_MS;
    let resp = conn.call(&req, v)?;
    let Some(r) = resp.results.first() else { bail!("CreatePartitions returned nothing for {name}") };
    if r.error_code == 3 {
        bail!("unknown topic {name}");
    }
    check(r.error_code, r.error_message.as_deref()).with_context(|| format!("adding partitions to topic {name}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn kafka_uuid_is_unpadded_url_safe_base64() {
        let id = uuid::Uuid::from_bytes([0xff; 16]);
        assert_eq!(super::kafka_uuid(&id), "_____________________w");
        let id = uuid::Uuid::from_bytes([0; 16]);
        assert_eq!(super::kafka_uuid(&id), "AAAAAAAAAAAAAAAAAAAAAA");
    }
}
