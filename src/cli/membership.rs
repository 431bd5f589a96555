//! `sluice consume --group`: membership of a classic consumer group, as the
//! Java consumer has it (protocol type "consumer", the "range" assignor),
//! so the CLI can share a group with Kafka's own consumers. Join, and when
//! elected leader assign partitions; heartbeat between fetches; commit the
//! positions; leave on exit.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest,
    OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::client::{group_id, str_bytes, topic_name, Cluster, Conn};
use super::kafka_error::check;

const PROTOCOL_TYPE: &str = "consumer";
const ASSIGNOR: &str = "range";
/// Short, so partitions of a consumer killed without leaving move on soon.
const SESSION_TIMEOUT_MS: i32 = 10_000;
/// Below the client's 30 s read timeout: JoinGroup may be held this long.
const REBALANCE_TIMEOUT_MS: i32 = 20_000;
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(3);

/// Error codes that mean "join again".
const REBALANCE_IN_PROGRESS: i16 = 27;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const MEMBER_ID_REQUIRED: i16 = 79;

pub struct Member {
    coordinator: Conn,
    group: String,
    topic: String,
    member_id: String,
    generation: i32,
    protocol_name: Option<StrBytes>,
    last_heartbeat: Instant,
}

/// A versioned embedded message (subscription, assignment): int16 version,
/// then the body at that version.
fn encode_versioned<M: Encodable>(m: &M, version: i16) -> Result<Bytes> {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    m.encode(&mut buf, version)?;
    Ok(buf.freeze())
}

/// Decodes at the newest version this codec knows when a newer one was
/// written: later versions only add fields at the end.
fn decode_versioned<M: Decodable>(mut b: Bytes, newest: i16) -> Result<M> {
    if b.remaining() < 2 {
        bail!("an embedded message of {} bytes", b.remaining());
    }
    let v = b.get_i16();
    if v < 0 {
        bail!("an embedded message of version {v}");
    }
    M::decode(&mut b, v.min(newest))
}

impl Member {
    /// Finds the coordinator and joins; returns the member and the
    /// partitions of `topic` assigned to it.
    pub fn join(cluster: &mut Cluster, group: &str, topic: &str) -> Result<(Member, Vec<i32>)> {
        let coordinator = cluster.coordinator(group)?;
        let mut m = Member {
            coordinator,
            group: group.to_string(),
            topic: topic.to_string(),
            member_id: String::new(),
            generation: -1,
            protocol_name: None,
            last_heartbeat: Instant::now(),
        };
        let assigned = m.rejoin(cluster)?;
        Ok((m, assigned))
    }

    /// JoinGroup (again), SyncGroup; the partitions of the topic now assigned.
    pub fn rejoin(&mut self, cluster: &mut Cluster) -> Result<Vec<i32>> {
        for _ in 0..20 {
            match self.try_join(cluster)? {
                Some(assigned) => {
                    self.last_heartbeat = Instant::now();
                    return Ok(assigned);
                }
                None => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        bail!("could not join group {}: it keeps rebalancing", self.group)
    }

    fn try_join(&mut self, cluster: &mut Cluster) -> Result<Option<Vec<i32>>> {
        let v = self.coordinator.version::<JoinGroupRequest>(7)?;
        let mut sub = ConsumerProtocolSubscription::default();
        sub.topics = vec![str_bytes(&self.topic)];
        let mut proto = JoinGroupRequestProtocol::default();
        proto.name = str_bytes(ASSIGNOR);
        proto.metadata = encode_versioned(&sub, 0)?;
        let mut req = JoinGroupRequest::default();
        req.group_id = group_id(&self.group);
        req.session_timeout_ms = SESSION_TIMEOUT_MS;
        req.rebalance_timeout_ms = REBALANCE_TIMEOUT_MS;
        req.member_id = str_bytes(&self.member_id);
        req.protocol_type = str_bytes(PROTOCOL_TYPE);
        req.protocols = vec![proto];
        let resp = self.coordinator.call(&req, v)?;
        match resp.error_code {
            0 => {}
            // v4+: the first join only hands out a member id.
            MEMBER_ID_REQUIRED => {
                self.member_id = resp.member_id.to_string();
                return Ok(None);
            }
            UNKNOWN_MEMBER_ID => {
                self.member_id.clear();
                return Ok(None);
            }
            REBALANCE_IN_PROGRESS => return Ok(None),
            code => return check(code, None).with_context(|| format!("joining group {}", self.group)).map(|_| None),
        }
        self.member_id = resp.member_id.to_string();
        self.generation = resp.generation_id;
        self.protocol_name = resp.protocol_name.clone().or_else(|| Some(str_bytes(ASSIGNOR)));
        let assignments = if resp.leader == resp.member_id { self.assign(cluster, &resp.members)? } else { Vec::new() };
        let sv = self.coordinator.version::<SyncGroupRequest>(5)?;
        let mut sync = SyncGroupRequest::default();
        sync.group_id = group_id(&self.group);
        sync.generation_id = self.generation;
        sync.member_id = str_bytes(&self.member_id);
        sync.protocol_type = Some(str_bytes(PROTOCOL_TYPE));
        sync.protocol_name = self.protocol_name.clone();
        sync.assignments = assignments;
        let resp = self.coordinator.call(&sync, sv)?;
        match resp.error_code {
            0 => {}
            REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION => return Ok(None),
            UNKNOWN_MEMBER_ID => {
                self.member_id.clear();
                return Ok(None);
            }
            code => return check(code, None).with_context(|| format!("syncing group {}", self.group)).map(|_| None),
        }
        if resp.assignment.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let assignment: ConsumerProtocolAssignment =
            decode_versioned(resp.assignment, 3).context("the group's assignment")?;
        let mut mine: Vec<i32> = assignment
            .assigned_partitions
            .iter()
            .filter(|t| t.topic.as_str() == self.topic)
            .flat_map(|t| t.partitions.iter().copied())
            .collect();
        mine.sort_unstable();
        Ok(Some(mine))
    }

    /// The leader's job: the range assignment of every member's topics.
    fn assign(
        &mut self,
        cluster: &mut Cluster,
        members: &[kafka_protocol::messages::join_group_response::JoinGroupResponseMember],
    ) -> Result<Vec<SyncGroupRequestAssignment>> {
        let mut subscribers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for m in members {
            let sub: ConsumerProtocolSubscription = decode_versioned(m.metadata.clone(), 3)
                .with_context(|| format!("the subscription of member {}", m.member_id))?;
            for t in &sub.topics {
                subscribers.entry(t.to_string()).or_default().push(m.member_id.to_string());
            }
        }
        let mut per_member: BTreeMap<String, Vec<AssignedTopic>> =
            members.iter().map(|m| (m.member_id.to_string(), Vec::new())).collect();
        for (topic, mut subs) in subscribers {
            // A topic that does not exist (yet) has nothing to assign.
            let Ok(layout) = cluster.topic(&topic) else { continue };
            subs.sort();
            subs.dedup();
            let parts: Vec<i32> = layout.partitions.iter().map(|p| p.index).collect();
            for (who, range) in subs.iter().zip(range_split(&parts, subs.len())) {
                if range.is_empty() {
                    continue;
                }
                let mut t = AssignedTopic::default();
                t.topic = topic_name(&topic);
                t.partitions = range;
                per_member.entry(who.clone()).or_default().push(t);
            }
        }
        per_member
            .into_iter()
            .map(|(member, topics)| {
                let mut a = ConsumerProtocolAssignment::default();
                a.assigned_partitions = topics;
                let mut s = SyncGroupRequestAssignment::default();
                s.member_id = StrBytes::from_string(member);
                s.assignment = encode_versioned(&a, 0)?;
                Ok(s)
            })
            .collect()
    }

    /// Heartbeats when one is due; true if the group is rebalancing and the
    /// member must join again.
    pub fn heartbeat_if_due(&mut self) -> Result<bool> {
        if self.last_heartbeat.elapsed() < HEARTBEAT_INTERVAL {
            return Ok(false);
        }
        let v = self.coordinator.version::<HeartbeatRequest>(4)?;
        let mut req = HeartbeatRequest::default();
        req.group_id = group_id(&self.group);
        req.generation_id = self.generation;
        req.member_id = str_bytes(&self.member_id);
        let resp = self.coordinator.call(&req, v)?;
        self.last_heartbeat = Instant::now();
        match resp.error_code {
            0 => Ok(false),
            REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION => Ok(true),
            UNKNOWN_MEMBER_ID => {
                self.member_id.clear();
                Ok(true)
            }
            code => check(code, None).with_context(|| format!("heartbeat to group {}", self.group)).map(|_| false),
        }
    }

    /// The group's committed offsets for `partitions` (absent: none committed).
    pub fn committed(&mut self, partitions: &[i32]) -> Result<BTreeMap<i32, i64>> {
        committed_offsets(&mut self.coordinator, &self.group, &self.topic, Some(partitions))
            .map(|m| m.into_iter().map(|((_, p), o)| (p, o)).collect())
    }

    /// Commits `positions` (the next offset to read, per partition). A
    /// rebalance in the meantime is not an error: the new owner starts from
    /// the last commit.
    pub fn commit(&mut self, positions: &BTreeMap<i32, i64>) -> Result<()> {
        if positions.is_empty() {
            return Ok(());
        }
        let v = self.coordinator.version::<OffsetCommitRequest>(8)?;
        let mut t = OffsetCommitRequestTopic::default();
        t.name = topic_name(&self.topic);
        t.partitions = positions
            .iter()
            .map(|(&p, &o)| {
                let mut cp = OffsetCommitRequestPartition::default();
                cp.partition_index = p;
                cp.committed_offset = o;
                cp.committed_leader_epoch = -1;
                cp
            })
            .collect();
        let mut req = OffsetCommitRequest::default();
        req.group_id = group_id(&self.group);
        req.generation_id_or_member_epoch = self.generation;
        req.member_id = str_bytes(&self.member_id);
        req.retention_time_ms = -1;
        req.topics = vec![t];
        let resp = self.coordinator.call(&req, v)?;
        for t in &resp.topics {
            for p in &t.partitions {
                match p.error_code {
                    0 | REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION | UNKNOWN_MEMBER_ID => {}
                    code => check(code, None).with_context(|| {
                        format!("committing offsets of group {} for {}-{}", self.group, self.topic, p.partition_index)
                    })?,
                }
            }
        }
        Ok(())
    }

    /// LeaveGroup, so the others get the partitions at once; best effort.
    pub fn leave(&mut self) {
        if self.member_id.is_empty() {
            return;
        }
        let Ok(v) = self.coordinator.version::<LeaveGroupRequest>(5) else { return };
        let mut req = LeaveGroupRequest::default();
        req.group_id = group_id(&self.group);
        if v >= 3 {
            let mut m = MemberIdentity::default();
            m.member_id = str_bytes(&self.member_id);
            req.members = vec![m];
        } else {
            req.member_id = str_bytes(&self.member_id);
        }
        let _ = self.coordinator.call(&req, v);
    }
}

/// Consecutive runs of `parts`, the first `len % n` one longer (the range
/// assignor's split).
fn range_split(parts: &[i32], n: usize) -> Vec<Vec<i32>> {
    if n == 0 {
        return Vec::new();
    }
    let (each, extra) = (parts.len() / n, parts.len() % n);
    let mut out = Vec::with_capacity(n);
    let mut at = 0;
    for i in 0..n {
        let len = each + usize::from(i < extra);
        out.push(parts[at..at + len].to_vec());
        at += len;
    }
    out
}

/// OffsetFetch: (topic, partition) → committed offset, for one topic's
/// `partitions`, or every topic the group has offsets for (`topic` "" and
/// `partitions` None).
pub fn committed_offsets(
    coordinator: &mut Conn,
    group: &str,
    topic: &str,
    partitions: Option<&[i32]>,
) -> Result<BTreeMap<(String, i32), i64>> {
    // v8 batches several groups in another layout; one group needs none of it.
    let v = coordinator.version::<OffsetFetchRequest>(7)?;
    let mut req = OffsetFetchRequest::default();
    req.group_id = group_id(group);
    req.topics = match partitions {
        Some(ps) => {
            let mut t = OffsetFetchRequestTopic::default();
            t.name = topic_name(topic);
            t.partition_indexes = ps.to_vec();
            Some(vec![t])
        }
        None if v >= 2 => None,
        None => bail!("broker {} cannot list a group's offsets (OffsetFetch v{v})", coordinator.addr),
    };
    let resp = coordinator.call_while_loading(&req, v, |r| r.error_code)?;
    check(resp.error_code, None).with_context(|| format!("offsets of group {group}"))?;
    let mut out = BTreeMap::new();
    for t in &resp.topics {
        for p in &t.partitions {
            check(p.error_code, None)
                .with_context(|| format!("offset of group {group} for {}-{}", t.name.as_str(), p.partition_index))?;
            if p.committed_offset >= 0 {
                out.insert((t.name.to_string(), p.partition_index), p.committed_offset);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_split_gives_the_first_members_one_more() {
        assert_eq!(range_split(&[0, 1, 2, 3, 4], 2), vec![vec![0, 1, 2], vec![3, 4]]);
        assert_eq!(range_split(&[0], 3), vec![vec![0], vec![], vec![]]);
        assert!(range_split(&[0, 1], 0).is_empty());
    }

    #[test]
    fn embedded_messages_round_trip() {
        let mut sub = ConsumerProtocolSubscription::default();
        sub.topics = vec![str_bytes("t")];
        let b = encode_versioned(&sub, 0).unwrap();
        let back: ConsumerProtocolSubscription = decode_versioned(b, 3).unwrap();
        assert_eq!(back.topics, sub.topics);
        assert!(decode_versioned::<ConsumerProtocolSubscription>(Bytes::from_static(b"\x00"), 3).is_err());
    }
}
