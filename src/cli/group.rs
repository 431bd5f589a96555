//! `sluice group list|describe|delete|reset-offsets`, as
//! kafka-consumer-groups.sh: ListGroups on every broker, DescribeGroups and
//! OffsetFetch at the group's coordinator, ListOffsets for log end offsets
//! and lag, DeleteGroups, OffsetDelete, OffsetCommit for resets.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use anyhow::{bail, Context, Result};
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerProtocolAssignment, DeleteGroupsRequest, DescribeGroupsRequest,
    ListGroupsRequest, OffsetCommitRequest, OffsetDeleteRequest,
};
use kafka_protocol::protocol::Decodable;

use super::client::{group_id, topic_name, Cluster, Conn};
use super::kafka_error::check;
use super::membership::committed_offsets;
use super::offsets::{self, EARLIEST, LATEST};
use super::{usage, Server};

const GROUP_ID_NOT_FOUND: i16 = 69;
const NON_EMPTY_GROUP: i16 = 68;

#[derive(clap::Args)]
pub struct GroupArgs {
    #[command(flatten)]
    server: Server,
    #[command(subcommand)]
    cmd: GroupCmd,
}

#[derive(clap::Subcommand)]
enum GroupCmd {
    /// Print every consumer group's id, one per line.
    List,
    /// Members, assignments, committed offsets, log end offsets and lag per partition.
    Describe { groups: Vec<String> },
    /// Delete a group (it must have no members), or with --topic only its offsets for that topic.
    Delete {
        group: String,
        /// Delete only the group's committed offsets of this topic (OffsetDelete).
        #[arg(long)]
        topic: Option<String>,
    },
    /// Move the group's committed offsets (the group must have no members);
    /// prints the plan, and applies it with --execute.
    ResetOffsets {
        group: String,
        #[arg(long)]
        topic: String,
        /// Only these partitions [default: all] (repeatable).
        #[arg(long = "partition")]
        partitions: Vec<i32>,
        /// To each partition's earliest offset.
        #[arg(long, group = "to")]
        to_earliest: bool,
        /// To each partition's log end offset.
        #[arg(long, group = "to")]
        to_latest: bool,
        /// To this offset (kept within the partition's earliest..latest).
        #[arg(long, group = "to")]
        to_offset: Option<i64>,
        /// By this many records from the committed offset (negative: back).
        #[arg(long, group = "to", allow_hyphen_values = true)]
        shift_by: Option<i64>,
        /// Commit the new offsets (without it, only print them).
        #[arg(long)]
        execute: bool,
    },
}

pub fn run(args: GroupArgs) -> Result<()> {
    let mut cluster = Cluster::connect(&args.server.bootstrap_server)?;
    let mut out = std::io::stdout().lock();
    match args.cmd {
        GroupCmd::List => {
            for g in list(&mut cluster)? {
                writeln!(out, "{g}")?;
            }
        }
        GroupCmd::Describe { groups } => {
            let groups = if groups.is_empty() { list(&mut cluster)? } else { groups };
            for (i, g) in groups.iter().enumerate() {
                if i > 0 {
                    writeln!(out)?;
                }
                describe(&mut cluster, g, &mut out)?;
            }
        }
        GroupCmd::Delete { group, topic: None } => {
            delete(&mut cluster, &group)?;
            writeln!(out, "Deleted consumer group {group}.")?;
        }
        GroupCmd::Delete { group, topic: Some(topic) } => {
            delete_offsets(&mut cluster, &group, &topic)?;
            writeln!(out, "Deleted the offsets of consumer group {group} for topic {topic}.")?;
        }
        GroupCmd::ResetOffsets { group, topic, partitions, to_earliest, to_latest, to_offset, shift_by, execute } => {
            let to = if to_earliest {
                To::Earliest
            } else if to_latest {
                To::Latest
            } else if let Some(o) = to_offset {
                To::Offset(o)
            } else if let Some(s) = shift_by {
                To::Shift(s)
            } else {
                return Err(usage(
                    "reset-offsets needs one of --to-earliest, --to-latest, --to-offset N, --shift-by N",
                ));
            };
            let plan = reset_offsets(&mut cluster, &group, &topic, &partitions, to, execute)?;
            let rows: Vec<Vec<String>> =
                plan.iter().map(|(p, o)| vec![group.clone(), topic.clone(), p.to_string(), o.to_string()]).collect();
            table(&mut out, &["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], &rows)?;
            if !execute {
                eprintln!("Dry run: nothing was changed (add --execute to commit these offsets).");
            }
        }
    }
    Ok(())
}

/// Every group of every broker, sorted.
fn list(cluster: &mut Cluster) -> Result<Vec<String>> {
    cluster.metadata(Some(&[]))?;
    let nodes: Vec<i32> = cluster.brokers.keys().copied().collect();
    let mut groups = BTreeSet::new();
    for node in nodes {
        let conn = cluster.node(node)?;
        let v = conn.version::<ListGroupsRequest>(4)?;
        let resp = conn.call(&ListGroupsRequest::default(), v)?;
        check(resp.error_code, None).with_context(|| format!("listing the groups of broker {}", conn.addr))?;
        groups.extend(resp.groups.iter().map(|g| g.group_id.to_string()));
    }
    Ok(groups.into_iter().collect())
}

struct Described {
    state: String,
    members: Vec<GroupMember>,
}

struct GroupMember {
    id: String,
    client_id: String,
    host: String,
    assigned: Vec<(String, i32)>,
}

fn describe_group(coordinator: &mut Conn, group: &str) -> Result<Described> {
    let v = coordinator.version::<DescribeGroupsRequest>(5)?;
    let mut req = DescribeGroupsRequest::default();
    req.groups = vec![group_id(group)];
    let resp = coordinator.call_while_loading(&req, v, |r| r.groups.first().map_or(0, |g| g.error_code))?;
    let Some(g) = resp.groups.into_iter().next() else { bail!("DescribeGroups returned nothing for {group}") };
    // Below v6 Kafka says "no such classic group" as a Dead group without an
    // error (KIP-1043 added the error code): both mean it may be a group of
    // the new protocol (KIP-848).
    if g.error_code == GROUP_ID_NOT_FOUND || (g.error_code == 0 && g.group_state.as_str() == "Dead") {
        let d = describe_consumer_group(coordinator, group)?;
        return Ok(d.unwrap_or(Described { state: "Dead".into(), members: Vec::new() }));
    }
    check(g.error_code, g.error_message.as_deref()).with_context(|| format!("describing group {group}"))?;
    let consumer = g.protocol_type.as_str() == "consumer" || g.protocol_type.is_empty();
    let members = g
        .members
        .iter()
        .map(|m| {
            let mut assigned = Vec::new();
            if consumer && m.member_assignment.len() >= 2 {
                let mut b = m.member_assignment.clone();
                let version = i16::from_be_bytes([b[0], b[1]]).clamp(0, 3);
                let _ = bytes::Buf::get_i16(&mut b);
                // A member whose assignment does not parse is still shown.
                if let Ok(a) = ConsumerProtocolAssignment::decode(&mut b, version) {
                    for t in a.assigned_partitions {
                        assigned.extend(t.partitions.iter().map(|&p| (t.topic.to_string(), p)));
                    }
                }
            }
            GroupMember {
                id: m.member_id.to_string(),
                client_id: m.client_id.to_string(),
                host: m.client_host.to_string(),
                assigned,
            }
        })
        .collect();
    Ok(Described { state: g.group_state.to_string(), members })
}

/// ConsumerGroupDescribe, where the broker serves it; `None` when it does
/// not or knows no such group.
fn describe_consumer_group(coordinator: &mut Conn, group: &str) -> Result<Option<Described>> {
    let Ok(v) = coordinator.version::<ConsumerGroupDescribeRequest>(1) else { return Ok(None) };
    let mut req = ConsumerGroupDescribeRequest::default();
    req.group_ids = vec![group_id(group)];
    let resp = coordinator.call_while_loading(&req, v, |r| r.groups.first().map_or(0, |g| g.error_code))?;
    let Some(g) = resp.groups.into_iter().next().filter(|g| g.error_code == 0) else { return Ok(None) };
    let members = g
        .members
        .into_iter()
        .map(|m| GroupMember {
            id: m.member_id.to_string(),
            client_id: m.client_id.to_string(),
            host: m.client_host.to_string(),
            assigned: m
                .assignment
                .topic_partitions
                .iter()
                .flat_map(|t| t.partitions.iter().map(|&p| (t.topic_name.to_string(), p)))
                .collect(),
        })
        .collect();
    Ok(Some(Described { state: g.group_state.to_string(), members }))
}

fn describe(cluster: &mut Cluster, group: &str, out: &mut impl Write) -> Result<()> {
    let mut coordinator = cluster.coordinator(group)?;
    let d = describe_group(&mut coordinator, group)?;
    let committed = committed_offsets(&mut coordinator, group, "", None)?;
    if d.state == "Dead" && committed.is_empty() {
        bail!("consumer group {group} does not exist");
    }
    let mut owner: BTreeMap<(String, i32), usize> = BTreeMap::new();
    for (i, m) in d.members.iter().enumerate() {
        for tp in &m.assigned {
            owner.insert(tp.clone(), i);
        }
    }
    let partitions: BTreeSet<(String, i32)> = committed.keys().chain(owner.keys()).cloned().collect();
    // Log end offsets, one ListOffsets per topic (a deleted topic shows "-").
    let mut ends: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let topics: BTreeSet<&String> = partitions.iter().map(|(t, _)| t).collect();
    for topic in topics {
        let Ok(layout) = cluster.topic(topic) else { continue };
        let ps: Vec<i32> = partitions
            .iter()
            .filter(|(t, p)| t == topic && layout.partitions.iter().any(|l| l.index == *p))
            .map(|(_, p)| *p)
            .collect();
        for (p, o) in offsets::list(cluster, &layout, &ps, LATEST)? {
            ends.insert((topic.clone(), p), o);
        }
    }
    let active = d.members.len();
    writeln!(
        out,
        "Consumer group '{group}': state {}, {active} member{}.",
        d.state,
        if active == 1 { "" } else { "s" }
    )?;
    let dash = || "-".to_string();
    let mut rows = Vec::new();
    for tp in &partitions {
        let current = committed.get(tp).copied();
        let end = ends.get(tp).copied();
        let lag = match (current, end) {
            (Some(c), Some(e)) => (e - c).max(0).to_string(),
            _ => dash(),
        };
        let (member, host, client) = match owner.get(tp).map(|&i| &d.members[i]) {
            Some(m) => (m.id.clone(), m.host.clone(), m.client_id.clone()),
            None => (dash(), dash(), dash()),
        };
        rows.push(vec![
            group.to_string(),
            tp.0.clone(),
            tp.1.to_string(),
            current.map_or_else(dash, |c| c.to_string()),
            end.map_or_else(dash, |e| e.to_string()),
            lag,
            member,
            host,
            client,
        ]);
    }
    // Members with nothing assigned are listed too.
    for m in d.members.iter().filter(|m| m.assigned.is_empty()) {
        rows.push(vec![
            group.to_string(),
            dash(),
            dash(),
            dash(),
            dash(),
            dash(),
            m.id.clone(),
            m.host.clone(),
            m.client_id.clone(),
        ]);
    }
    table(
        out,
        &["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"],
        &rows,
    )
}

/// Columns padded to their widest cell, two spaces apart.
fn table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for r in rows {
        writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

fn delete(cluster: &mut Cluster, group: &str) -> Result<()> {
    let mut coordinator = cluster.coordinator(group)?;
    let v = coordinator.version::<DeleteGroupsRequest>(2)?;
    let mut req = DeleteGroupsRequest::default();
    req.groups_names = vec![group_id(group)];
    let resp = coordinator.call_while_loading(&req, v, |r| r.results.first().map_or(0, |g| g.error_code))?;
    let Some(r) = resp.results.first() else { bail!("DeleteGroups returned nothing for {group}") };
    match r.error_code {
        GROUP_ID_NOT_FOUND => bail!("consumer group {group} does not exist"),
        NON_EMPTY_GROUP => bail!("consumer group {group} has active members: stop its consumers first"),
        code => check(code, None).with_context(|| format!("deleting group {group}")),
    }
}

fn delete_offsets(cluster: &mut Cluster, group: &str, topic: &str) -> Result<()> {
    let layout = cluster.topic(topic)?;
    let mut coordinator = cluster.coordinator(group)?;
    let v = coordinator.version::<OffsetDeleteRequest>(0)?;
    let mut t = OffsetDeleteRequestTopic::default();
    t.name = topic_name(topic);
    t.partitions = layout
        .partitions
        .iter()
        .map(|p| {
            let mut d = OffsetDeleteRequestPartition::default();
            d.partition_index = p.index;
            d
        })
        .collect();
    let mut req = OffsetDeleteRequest::default();
    req.group_id = group_id(group);
    req.topics = vec![t];
    let resp = coordinator.call_while_loading(&req, v, |r| r.error_code)?;
    if resp.error_code == GROUP_ID_NOT_FOUND {
        bail!("consumer group {group} does not exist");
    }
    check(resp.error_code, None).with_context(|| format!("deleting offsets of group {group}"))?;
    for t in &resp.topics {
        for p in &t.partitions {
            // 86 GROUP_SUBSCRIBED_TO_TOPIC: a member still reads it.
            if p.error_code == 86 {
                bail!("consumer group {group} is still subscribed to {topic}: stop its consumers first");
            }
            check(p.error_code, None)
                .with_context(|| format!("deleting the offset of group {group} for {topic}-{}", p.partition_index))?;
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum To {
    Earliest,
    Latest,
    Offset(i64),
    Shift(i64),
}

fn reset_offsets(
    cluster: &mut Cluster,
    group: &str,
    topic: &str,
    only: &[i32],
    to: To,
    execute: bool,
) -> Result<Vec<(i32, i64)>> {
    let layout = cluster.topic(topic)?;
    let partitions: Vec<i32> = if only.is_empty() {
        layout.partitions.iter().map(|p| p.index).collect()
    } else {
        for p in only {
            if !layout.partitions.iter().any(|l| l.index == *p) {
                bail!("topic {topic} has no partition {p}");
            }
        }
        only.to_vec()
    };
    let mut coordinator = cluster.coordinator(group)?;
    let d = describe_group(&mut coordinator, group)?;
    if !d.members.is_empty() || !matches!(d.state.as_str(), "Empty" | "Dead" | "") {
        bail!("consumer group {group} is active (state {}): stop its consumers before resetting offsets", d.state);
    }
    let earliest = offsets::list(cluster, &layout, &partitions, EARLIEST)?;
    let latest = offsets::list(cluster, &layout, &partitions, LATEST)?;
    let committed = committed_offsets(&mut coordinator, group, topic, Some(&partitions))?;
    let plan: Vec<(i32, i64)> = partitions
        .iter()
        .map(|&p| {
            let (lo, hi) = (earliest[&p], latest[&p]);
            let target = match to {
                To::Earliest => lo,
                To::Latest => hi,
                To::Offset(o) => o,
                // Without a committed offset, shifting starts from the earliest.
                To::Shift(s) => committed.get(&(topic.to_string(), p)).copied().unwrap_or(lo).saturating_add(s),
            };
            (p, target.clamp(lo, hi.max(lo)))
        })
        .collect();
    if execute {
        let v = coordinator.version::<OffsetCommitRequest>(8)?;
        let mut t = OffsetCommitRequestTopic::default();
        t.name = topic_name(topic);
        t.partitions = plan
            .iter()
            .map(|&(p, o)| {
                let mut cp = OffsetCommitRequestPartition::default();
                cp.partition_index = p;
                cp.committed_offset = o;
                cp.committed_leader_epoch = -1;
                cp
            })
            .collect();
        let mut req = OffsetCommitRequest::default();
        req.group_id = group_id(group);
        // Generation -1 and no member: a commit from outside the group,
        // which the coordinator accepts only while the group is empty.
        req.generation_id_or_member_epoch = -1;
        req.retention_time_ms = -1;
        req.topics = vec![t];
        let resp = coordinator.call_while_loading(&req, v, |r| {
            r.topics.iter().flat_map(|t| &t.partitions).map(|p| p.error_code).find(|&c| c != 0).unwrap_or(0)
        })?;
        for t in &resp.topics {
            for p in &t.partitions {
                check(p.error_code, None).with_context(|| {
                    format!("committing the offset of group {group} for {topic}-{}", p.partition_index)
                })?;
            }
        }
    }
    Ok(plan)
}
