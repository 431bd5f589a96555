//! Topic set-up and offsets: Metadata, CreateTopics, DeleteTopics,
//! ListOffsets, each through the `kafka-protocol` codecs.

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, DeleteTopicsRequest, ListOffsetsRequest, MetadataRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::client::Conn;

/// Where a topic's partitions are led, and how to reach those brokers.
#[derive(Clone, Debug)]
pub struct TopicInfo {
    pub name: String,
    /// (partition, leader node id), sorted by partition.
    pub partitions: Vec<(i32, i32)>,
    /// node id → "host:port".
    pub brokers: BTreeMap<i32, String>,
}

impl TopicInfo {
    /// Partitions grouped by leader: (broker address, partitions).
    pub fn by_leader(&self) -> Vec<(String, Vec<i32>)> {
        let mut m: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for &(p, leader) in &self.partitions {
            m.entry(leader).or_default().push(p);
        }
        m.into_iter().map(|(leader, ps)| (self.brokers[&leader].clone(), ps)).collect()
    }
}

pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// Metadata for one topic: `None` if the broker does not know it; an error
/// if some partition has no leader yet (retry).
fn metadata(conn: &mut Conn, topic: &str) -> Result<Option<TopicInfo>> {
    let mut req = MetadataRequest::default();
    let mut t = MetadataRequestTopic::default();
    t.name = Some(topic_name(topic));
    req.topics = Some(vec![t]);
    req.allow_auto_topic_creation = false;
    let resp = conn.call(&req, conn.versions.metadata)?;
    let brokers: BTreeMap<i32, String> =
        resp.brokers.iter().map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port))).collect();
    let Some(t) = resp.topics.iter().find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some(topic)) else {
        return Ok(None);
    };
    match t.error_code {
        0 => {}
        3 => return Ok(None),
        e => bail!("metadata for {topic}: error {e}"),
    }
    let mut partitions = Vec::new();
    for p in &t.partitions {
        if p.error_code != 0 || p.leader_id.0 < 0 || !brokers.contains_key(&p.leader_id.0) {
            bail!("partition {topic}-{} has no leader yet (error {})", p.partition_index, p.error_code);
        }
        partitions.push((p.partition_index, p.leader_id.0));
    }
    if partitions.is_empty() {
        bail!("topic {topic} has no partitions yet");
    }
    partitions.sort();
    Ok(Some(TopicInfo { name: topic.to_string(), partitions, brokers }))
}

/// Finds the topic, creating it with `asked` partitions (default 1) if it
/// does not exist (or deleting and re-creating it with `recreate`), and waits (at most
/// 60 s) until every partition has a leader (that serves it, if created here).
pub fn ensure_topic(
    bootstrap: &str,
    topic: &str,
    asked: Option<i32>,
    replication: i16,
    recreate: bool,
) -> Result<TopicInfo> {
    let partitions = asked.unwrap_or(1);
    let mut conn = Conn::connect(bootstrap, "sluice-bench-admin")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    if recreate && metadata(&mut conn, topic).ok().flatten().is_some() {
        delete_with(&mut conn, topic)?;
    }
    let mut created = false;
    loop {
        match metadata(&mut conn, topic) {
            Ok(Some(info)) => {
                if created {
                    wait_served(&info, deadline)?;
                    return Ok(info);
                }
                if asked.is_none() || info.partitions.len() == partitions as usize {
                    return Ok(info);
                }
                eprintln!(
                    "sluice-bench: topic {topic} exists with {} partitions (asked for {partitions}); using it as it is",
                    info.partitions.len()
                );
                return Ok(info);
            }
            Ok(None) if !created => {
                if conn.versions.create_topics < 0 {
                    bail!("the broker does not serve CreateTopics; create {topic} first");
                }
                let mut t = CreatableTopic::default();
                t.name = topic_name(topic);
                t.num_partitions = partitions;
                t.replication_factor = replication;
                let mut req = CreateTopicsRequest::default();
                req.topics = vec![t];
                req.timeout_ms = 60_000;
                let resp = conn.call(&req, conn.versions.create_topics)?;
                for r in &resp.topics {
                    // 36: TOPIC_ALREADY_EXISTS (a concurrent creator won).
                    if r.error_code != 0 && r.error_code != 36 {
                        bail!(
                            "creating {topic}: error {} {}",
                            r.error_code,
                            r.error_message.as_ref().map(|m| m.as_str()).unwrap_or("")
                        );
                    }
                }
                created = true;
            }
            Ok(None) | Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            Ok(None) => bail!("topic {topic} not visible 60 s after CreateTopics"),
            Err(e) => return Err(e.context(format!("waiting for leaders of {topic}"))),
        }
    }
}

/// Waits until every leader serves its partitions of a new topic. Apache
/// Kafka lists a leader in Metadata before that broker has loaded the
/// partition, and produces sent then fail with NOT_LEADER_OR_FOLLOWER; a
/// ListOffsets that succeeds on every partition says they are loaded.
fn wait_served(info: &TopicInfo, deadline: Instant) -> Result<()> {
    for (addr, parts) in info.by_leader() {
        let mut conn = Conn::connect(&addr, "sluice-bench-admin")?;
        loop {
            match list_offsets(&mut conn, &info.name, &parts, -1) {
                Ok(_) => break,
                Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
                Err(e) => return Err(e.context(format!("waiting for {addr} to serve {}", info.name))),
            }
        }
    }
    Ok(())
}

/// ListOffsets for `partitions` of `topic` at `timestamp` (-1 latest,
/// -2 earliest): (partition, offset).
pub fn list_offsets(conn: &mut Conn, topic: &str, partitions: &[i32], timestamp: i64) -> Result<Vec<(i32, i64)>> {
    let mut req = ListOffsetsRequest::default();
    req.replica_id = BrokerId(-1);
    let mut t = ListOffsetsTopic::default();
    t.name = topic_name(topic);
    t.partitions = partitions
        .iter()
        .map(|&p| {
            let mut lp = ListOffsetsPartition::default();
            lp.partition_index = p;
            lp.current_leader_epoch = -1;
            lp.timestamp = timestamp;
            lp
        })
        .collect();
    req.topics = vec![t];
    req.timeout_ms = 30_000;
    let resp = conn.call(&req, conn.versions.list_offsets)?;
    let mut out = Vec::new();
    for t in &resp.topics {
        for p in &t.partitions {
            if p.error_code != 0 {
                bail!("ListOffsets {topic}-{}: error {}", p.partition_index, p.error_code);
            }
            out.push((p.partition_index, p.offset));
        }
    }
    if out.len() != partitions.len() {
        bail!("ListOffsets answered {} of {} partitions", out.len(), partitions.len());
    }
    Ok(out)
}

/// Deletes the topic (if the broker knows it) and waits, at most 60 s,
/// until the broker no longer lists it.
pub fn delete_topic(bootstrap: &str, topic: &str) -> Result<()> {
    let mut conn = Conn::connect(bootstrap, "sluice-bench-admin")?;
    delete_with(&mut conn, topic)
}

fn delete_with(conn: &mut Conn, topic: &str) -> Result<()> {
    if conn.versions.delete_topics < 0 {
        bail!("the broker does not serve DeleteTopics");
    }
    let mut req = DeleteTopicsRequest::default();
    req.topic_names = vec![topic_name(topic)];
    req.timeout_ms = 30_000;
    if conn.versions.delete_topics >= 6 {
        let mut s = kafka_protocol::messages::delete_topics_request::DeleteTopicState::default();
        s.name = Some(topic_name(topic));
        req.topics = vec![s];
    }
    let resp = conn.call(&req, conn.versions.delete_topics)?;
    for r in &resp.responses {
        if r.error_code != 0 && r.error_code != 3 {
            bail!("deleting {topic}: error {}", r.error_code);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while metadata(conn, topic).ok().flatten().is_some() {
        if Instant::now() > deadline {
            bail!("{topic} is still listed 60 s after DeleteTopics");
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}
