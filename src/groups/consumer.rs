//! One consumer group of the new protocol (KIP-848): members heartbeat
//! (ConsumerGroupHeartbeat) with their subscription and the partitions they
//! own, and the coordinator assigns partitions itself.
//!
//! Epochs, as in Kafka: every change of membership or subscription bumps
//! the group epoch; the target assignment is recomputed for it (its epoch
//! becomes the assignment epoch); each member then moves to the target on
//! its own heartbeats. A member that must give partitions up first gets an
//! assignment without them at its old epoch, and only after it reports
//! them released does it reach the new epoch and get new partitions. A
//! partition is handed to a member only once no other member holds or is
//! still revoking it (so no partition has two owners at any time); such
//! unreleased partitions arrive on later heartbeats.
//!
//! Like `group::Group`, the machine is synchronous: time comes in as `now`,
//! topic metadata as a map of partition counts, and the caller (`super`)
//! removes members whose session or revocation deadline has passed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;

use super::group::NONE;

/// Partitions by topic name.
pub type Assignment = BTreeMap<String, BTreeSet<i32>>;

/// Broker settings of consumer groups.
#[derive(Clone, Copy, Debug)]
pub struct ConsumerSettings {
    /// `group.consumer.session.timeout.ms`
    pub session_timeout: Duration,
    /// `group.consumer.heartbeat.interval.ms`
    pub heartbeat_interval_ms: i32,
}

/// A ConsumerGroupHeartbeat, as plain data with topic names.
#[derive(Clone, Debug, Default)]
pub struct HeartbeatRequest {
    pub group_id: String,
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    /// `None`: unchanged since the last heartbeat.
    pub subscribed: Option<Vec<String>>,
    pub regex: Option<String>,
    /// `None`: unchanged since the last heartbeat.
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeartbeatResponse {
    pub error: i16,
    pub message: Option<String>,
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// Sent when it changed or the member reported what it owns.
    pub assignment: Option<Assignment>,
}

impl HeartbeatResponse {
    pub fn error(e: ResponseError, message: &str, member_id: &str, epoch: i32) -> HeartbeatResponse {
        HeartbeatResponse {
            error: e.code(),
            message: Some(message.to_string()),
            member_id: member_id.to_string(),
            member_epoch: epoch,
            ..HeartbeatResponse::default()
        }
    }
}

#[derive(Clone, Debug)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed: BTreeSet<String>,
    pub regex: Option<String>,
    /// `regex` compiled once when it changes (heartbeats use it each time).
    pattern: Option<regex::Regex>,
    pub epoch: i32,
    previous_epoch: i32,
    rebalance_timeout: Duration,
    session_deadline: Instant,
    /// Partitions the member may consume at its epoch.
    pub assigned: Assignment,
    /// Partitions it must release before it can move on.
    revoking: Assignment,
    revoke_deadline: Option<Instant>,
    /// The assignment last sent, to send only changes.
    sent: Option<Assignment>,
}

pub struct ConsumerGroup {
    pub id: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, Member>,
    pub target: BTreeMap<String, Assignment>,
    /// The subscribed topics and their partition counts the target was
    /// computed from: a change of either recomputes it.
    subscription: Vec<(String, i32)>,
}

fn minus(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, ps) in a {
        let left: BTreeSet<i32> = ps.iter().filter(|p| !b.get(t).is_some_and(|s| s.contains(p))).copied().collect();
        if !left.is_empty() {
            out.insert(t.clone(), left);
        }
    }
    out
}

fn holds(a: &Assignment, topic: &str, p: i32) -> bool {
    a.get(topic).is_some_and(|s| s.contains(&p))
}

/// A subscription pattern as a whole-name match (as Kafka's RE2J does);
/// one that does not compile matches nothing.
fn compile_pattern(pattern: &str) -> Option<regex::Regex> {
    regex::Regex::new(&format!("^(?:{pattern})$")).ok()
}

impl ConsumerGroup {
    pub fn new(id: String) -> ConsumerGroup {
        ConsumerGroup {
            id,
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            target: BTreeMap::new(),
            subscription: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Kafka's consumer group states.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.assignment_epoch < self.group_epoch {
            "Assigning"
        } else if self.members.values().any(|m| {
            m.epoch != self.assignment_epoch
                || !m.revoking.is_empty()
                || self.target.get(&m.id).is_some_and(|t| !minus(t, &m.assigned).is_empty())
        }) {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// Every topic some member subscribes to (by name or pattern).
    pub fn subscribed_topics(&self, topics: &BTreeMap<String, i32>) -> BTreeSet<String> {
        self.members.values().flat_map(|m| Self::member_topics(m, topics)).collect()
    }

    /// The existing topics one member subscribes to, by name or pattern.
    fn member_topics(m: &Member, topics: &BTreeMap<String, i32>) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = m.subscribed.iter().filter(|t| topics.contains_key(*t)).cloned().collect();
        if let Some(re) = &m.pattern {
            out.extend(topics.keys().filter(|t| re.is_match(t)).cloned());
        }
        out
    }

    /// Server-side assignment ("uniform"): each topic's partitions spread
    /// over the members subscribed to it, round-robin in member order,
    /// starting where the last topic stopped so that many single-partition
    /// topics do not all land on the first member. Partitions a member
    /// already has stay with it while that keeps the spread even.
    fn compute_target(&mut self, topics: &BTreeMap<String, i32>) {
        let ids: Vec<String> = self.members.keys().cloned().collect();
        let member_topics: BTreeMap<String, BTreeSet<String>> =
            self.members.values().map(|m| (m.id.clone(), Self::member_topics(m, topics))).collect();
        let mut target: BTreeMap<String, Assignment> = ids.iter().map(|id| (id.clone(), Assignment::new())).collect();
        let mut load: BTreeMap<&str, usize> = ids.iter().map(|id| (id.as_str(), 0)).collect();
        for (topic, &count) in topics {
            let subs: Vec<&String> = ids.iter().filter(|id| member_topics[*id].contains(topic)).collect();
            if subs.is_empty() || count <= 0 {
                continue;
            }
            // Quota per member for this topic: even split, the first
            // `extra` members (by current load) taking one more.
            let n = subs.len();
            let (base, extra) = (count as usize / n, count as usize % n);
            let mut order = subs.clone();
            order.sort_by_key(|id| (load[id.as_str()], id.as_str()));
            let quota: BTreeMap<&str, usize> =
                order.iter().enumerate().map(|(i, id)| (id.as_str(), base + usize::from(i < extra))).collect();
            let mut given: BTreeMap<&str, usize> = BTreeMap::new();
            let mut free = Vec::new();
            for p in 0..count {
                // Stickiness: the current holder keeps it within its quota.
                let holder = subs.iter().find(|id| {
                    let m = &self.members[id.as_str()];
                    holds(&m.assigned, topic, p) || holds(&m.revoking, topic, p)
                });
                match holder {
                    Some(id) if given.get(id.as_str()).copied().unwrap_or(0) < quota[id.as_str()] => {
                        *given.entry(id.as_str()).or_default() += 1;
                        target.get_mut(id.as_str()).unwrap().entry(topic.clone()).or_default().insert(p);
                    }
                    _ => free.push(p),
                }
            }
            let mut free = free.into_iter();
            for id in &order {
                while given.get(id.as_str()).copied().unwrap_or(0) < quota[id.as_str()] {
                    let Some(p) = free.next() else { break };
                    *given.entry(id.as_str()).or_default() += 1;
                    target.get_mut(id.as_str()).unwrap().entry(topic.clone()).or_default().insert(p);
                }
            }
            for id in subs {
                *load.get_mut(id.as_str()).unwrap() += given.get(id.as_str()).copied().unwrap_or(0);
            }
        }
        self.target = target;
        self.assignment_epoch = self.group_epoch;
    }

    fn held_by_other(&self, me: &str, topic: &str, p: i32) -> bool {
        self.members.iter().any(|(id, m)| id != me && (holds(&m.assigned, topic, p) || holds(&m.revoking, topic, p)))
    }

    /// Moves the member toward its target as far as it safely can now.
    fn reconcile(&mut self, id: &str, owned: Option<&Assignment>, now: Instant) {
        let target = self.target.get(id).cloned().unwrap_or_default();
        let assignment_epoch = self.assignment_epoch;
        let Some(m) = self.members.get(id) else { return };
        if !m.revoking.is_empty() {
            // Released once the member reports owning none of them.
            let released = owned.is_some_and(|o| minus(&m.revoking, o) == m.revoking);
            if !released {
                return;
            }
            let m = self.members.get_mut(id).unwrap();
            m.revoking.clear();
            m.revoke_deadline = None;
        }
        let m = &self.members[id];
        if m.epoch < assignment_epoch {
            let revoke = minus(&m.assigned, &target);
            if !revoke.is_empty() {
                let keep = minus(&m.assigned, &revoke);
                let m = self.members.get_mut(id).unwrap();
                m.assigned = keep;
                m.revoking = revoke;
                m.revoke_deadline = Some(now + m.rebalance_timeout);
                return;
            }
            let m = self.members.get_mut(id).unwrap();
            m.previous_epoch = m.epoch;
            m.epoch = assignment_epoch;
        }
        // New partitions, once nobody else holds them.
        let wanted = minus(&target, &self.members[id].assigned);
        let mut gained = Vec::new();
        for (t, ps) in &wanted {
            for &p in ps {
                if !self.held_by_other(id, t, p) {
                    gained.push((t.clone(), p));
                }
            }
        }
        let m = self.members.get_mut(id).unwrap();
        for (t, p) in gained {
            m.assigned.entry(t).or_default().insert(p);
        }
    }

    fn bump(&mut self) {
        self.group_epoch += 1;
    }

    /// Takes a member out (left, fenced, expired); its partitions are free.
    pub fn remove(&mut self, id: &str) {
        if self.members.remove(id).is_some() {
            self.target.remove(id);
            self.bump();
        }
    }

    /// A ConsumerGroupHeartbeat. `topics`: partition counts of the topics
    /// that exist (not internal ones).
    pub fn heartbeat(
        &mut self,
        req: HeartbeatRequest,
        topics: &BTreeMap<String, i32>,
        s: ConsumerSettings,
        now: Instant,
    ) -> HeartbeatResponse {
        let interval = s.heartbeat_interval_ms;
        // Leaving: -1, or -2 for a static member that will be back.
        if req.member_epoch < 0 {
            self.remove(&req.member_id);
            return HeartbeatResponse {
                member_id: req.member_id,
                member_epoch: req.member_epoch,
                heartbeat_interval_ms: interval,
                ..HeartbeatResponse::default()
            };
        }
        let mut id = req.member_id.clone();
        if req.member_epoch == 0 {
            if req.subscribed.is_none() && req.regex.is_none() {
                return HeartbeatResponse::error(
                    ResponseError::InvalidRequest,
                    "SubscribedTopicNames must be set in the first heartbeat",
                    &id,
                    0,
                );
            }
            if id.is_empty() {
                id = uuid::Uuid::new_v4().to_string();
            }
            // A static member coming back replaces its old incarnation.
            if let Some(instance) = &req.instance_id {
                let old: Vec<String> = self
                    .members
                    .values()
                    .filter(|m| m.instance_id.as_ref() == Some(instance) && m.id != id)
                    .map(|m| m.id.clone())
                    .collect();
                for o in old {
                    self.remove(&o);
                }
            }
            // Joining again (after being fenced) starts from nothing.
            self.remove(&id);
            self.members.insert(
                id.clone(),
                Member {
                    id: id.clone(),
                    instance_id: req.instance_id.clone(),
                    rack_id: req.rack_id.clone(),
                    client_id: req.client_id.clone(),
                    client_host: req.client_host.clone(),
                    subscribed: BTreeSet::new(),
                    regex: None,
                    pattern: None,
                    epoch: 0,
                    previous_epoch: 0,
                    rebalance_timeout: Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64),
                    session_deadline: now + s.session_timeout,
                    assigned: Assignment::new(),
                    revoking: Assignment::new(),
                    revoke_deadline: None,
                    sent: None,
                },
            );
            self.bump();
        } else {
            let Some(m) = self.members.get(&id) else {
                return HeartbeatResponse::error(
                    ResponseError::UnknownMemberId,
                    &format!("member {id} is not in group {}", self.id),
                    &id,
                    req.member_epoch,
                );
            };
            // A member that missed our last answer may repeat its epoch.
            let lost_reply = req.member_epoch == m.previous_epoch
                && req.owned.as_ref().is_none_or(|o| minus(o, &m.assigned).is_empty());
            if req.member_epoch != m.epoch && !lost_reply {
                return HeartbeatResponse::error(
                    ResponseError::FencedMemberEpoch,
                    &format!("epoch {} is not the member's epoch {}", req.member_epoch, m.epoch),
                    &id,
                    req.member_epoch,
                );
            }
        }
        let m = self.members.get_mut(&id).expect("present");
        m.session_deadline = now + s.session_timeout;
        if req.rebalance_timeout_ms > 0 {
            m.rebalance_timeout = Duration::from_millis(req.rebalance_timeout_ms as u64);
        }
        let mut changed = false;
        if let Some(sub) = &req.subscribed {
            let sub: BTreeSet<String> = sub.iter().cloned().collect();
            changed |= sub != m.subscribed;
            m.subscribed = sub;
        }
        if let Some(re) = &req.regex {
            let re = (!re.is_empty()).then(|| re.clone());
            if re != m.regex {
                changed = true;
                m.pattern = re.as_deref().and_then(compile_pattern);
                m.regex = re;
            }
        }
        if changed {
            self.bump();
        }
        // New topics or partitions the subscriptions reach move the target.
        let subscription: Vec<(String, i32)> =
            self.subscribed_topics(topics).into_iter().map(|t| (t.clone(), topics[&t])).collect();
        if subscription != self.subscription {
            self.subscription = subscription;
            self.bump();
        }
        if self.assignment_epoch < self.group_epoch {
            let sticky: BTreeMap<String, i32> = self.subscription.iter().cloned().collect();
            self.compute_target(&sticky);
        }
        let reported = req.owned.is_some();
        let before_epoch = req.member_epoch;
        self.reconcile(&id, req.owned.as_ref(), now);
        let m = self.members.get_mut(&id).expect("present");
        let send = reported || m.epoch != before_epoch || m.sent.as_ref() != Some(&m.assigned);
        let assignment = send.then(|| m.assigned.clone());
        if send {
            m.sent = Some(m.assigned.clone());
        }
        HeartbeatResponse {
            error: NONE,
            message: None,
            member_id: id,
            member_epoch: m.epoch,
            heartbeat_interval_ms: interval,
            assignment,
        }
    }

    /// Whether an OffsetCommit may go ahead: a member at its current epoch,
    /// or (generation -1, no member id) an admin while the group is empty.
    pub fn validate_commit(&self, member_id: &str, epoch: i32) -> Result<(), i16> {
        if epoch < 0 && member_id.is_empty() {
            return if self.members.is_empty() { Ok(()) } else { Err(ResponseError::UnknownMemberId.code()) };
        }
        let Some(m) = self.members.get(member_id) else { return Err(ResponseError::UnknownMemberId.code()) };
        if epoch != m.epoch {
            return Err(ResponseError::StaleMemberEpoch.code());
        }
        Ok(())
    }

    /// Members whose session ended or who held partitions past their
    /// rebalance timeout; the caller removes them.
    pub fn expired(&self, now: Instant) -> Vec<String> {
        self.members
            .values()
            .filter(|m| m.session_deadline <= now || m.revoke_deadline.is_some_and(|d| d <= now))
            .map(|m| m.id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ConsumerSettings {
        ConsumerSettings { session_timeout: Duration::from_secs(45), heartbeat_interval_ms: 5000 }
    }

    fn join(g: &mut ConsumerGroup, id: &str, topics: &BTreeMap<String, i32>, now: Instant) -> HeartbeatResponse {
        let req = HeartbeatRequest {
            group_id: "g".into(),
            member_id: id.into(),
            member_epoch: 0,
            rebalance_timeout_ms: 30_000,
            subscribed: Some(vec!["t".into()]),
            owned: Some(Assignment::new()),
            ..HeartbeatRequest::default()
        };
        g.heartbeat(req, topics, settings(), now)
    }

    fn beat(
        g: &mut ConsumerGroup,
        id: &str,
        epoch: i32,
        owned: Option<Assignment>,
        topics: &BTreeMap<String, i32>,
        now: Instant,
    ) -> HeartbeatResponse {
        let req = HeartbeatRequest {
            group_id: "g".into(),
            member_id: id.into(),
            member_epoch: epoch,
            owned,
            ..HeartbeatRequest::default()
        };
        g.heartbeat(req, topics, settings(), now)
    }

    fn parts(a: &Option<Assignment>) -> BTreeSet<i32> {
        a.as_ref().and_then(|a| a.get("t").cloned()).unwrap_or_default()
    }

    fn owned(ps: &BTreeSet<i32>) -> Option<Assignment> {
        Some(BTreeMap::from([("t".to_string(), ps.clone())]))
    }

    /// No partition is held (assigned or being revoked) by two members.
    fn exclusive(g: &ConsumerGroup) {
        let mut seen = BTreeSet::new();
        for m in g.members.values() {
            for p in m.assigned.get("t").into_iter().flatten().chain(m.revoking.get("t").into_iter().flatten()) {
                assert!(seen.insert(*p), "partition {p} held twice: {:?}", g.members.keys());
            }
        }
    }

    #[test]
    fn two_members_split_then_one_leaves() {
        let topics = BTreeMap::from([("t".to_string(), 6)]);
        let now = Instant::now();
        let mut g = ConsumerGroup::new("g".into());
        let a = join(&mut g, "a", &topics, now);
        assert_eq!(a.error, NONE);
        assert_eq!(parts(&a.assignment).len(), 6);
        let a_epoch = a.member_epoch;
        // b joins: a must revoke half before b gets them.
        let b = join(&mut g, "b", &topics, now);
        assert!(parts(&b.assignment).is_empty(), "b gets nothing a still holds");
        exclusive(&g);
        let a2 = beat(&mut g, "a", a_epoch, None, &topics, now);
        assert_eq!(a2.member_epoch, a_epoch, "still revoking: old epoch");
        let kept = parts(&a2.assignment);
        assert_eq!(kept.len(), 3);
        exclusive(&g);
        // a reports it released the others: it moves to the new epoch.
        let a3 = beat(&mut g, "a", a_epoch, owned(&kept), &topics, now);
        assert!(a3.member_epoch > a_epoch);
        assert_eq!(parts(&a3.assignment), kept);
        let b2 = beat(&mut g, "b", b.member_epoch, owned(&BTreeSet::new()), &topics, now);
        assert_eq!(parts(&b2.assignment).len(), 3);
        assert!(parts(&b2.assignment).is_disjoint(&kept));
        exclusive(&g);
        assert_eq!(g.state_name(), "Stable");
        // b leaves: a gets all six at its next heartbeat.
        let left = beat(&mut g, "b", -1, None, &topics, now);
        assert_eq!((left.error, left.member_epoch), (NONE, -1));
        let a4 = beat(&mut g, "a", a3.member_epoch, None, &topics, now);
        assert_eq!(parts(&a4.assignment).len(), 6);
    }

    #[test]
    fn fencing_unknown_members_and_commits() {
        let topics = BTreeMap::from([("t".to_string(), 2)]);
        let now = Instant::now();
        let mut g = ConsumerGroup::new("g".into());
        let a = join(&mut g, "a", &topics, now);
        let r = beat(&mut g, "a", a.member_epoch + 5, None, &topics, now);
        assert_eq!(r.error, ResponseError::FencedMemberEpoch.code());
        let r = beat(&mut g, "zz", 3, None, &topics, now);
        assert_eq!(r.error, ResponseError::UnknownMemberId.code());
        assert_eq!(g.validate_commit("a", a.member_epoch), Ok(()));
        assert_eq!(g.validate_commit("a", a.member_epoch - 1), Err(ResponseError::StaleMemberEpoch.code()));
        assert_eq!(g.validate_commit("", -1), Err(ResponseError::UnknownMemberId.code()));
        // Sessions end: the member is reported for removal.
        assert_eq!(g.expired(now + Duration::from_secs(46)), vec!["a".to_string()]);
        g.remove("a");
        assert_eq!(g.validate_commit("", -1), Ok(()));
        assert_eq!(g.state_name(), "Empty");
    }

    #[test]
    fn new_partitions_and_patterns_reach_members() {
        let mut topics = BTreeMap::from([("t".to_string(), 2)]);
        let now = Instant::now();
        let mut g = ConsumerGroup::new("g".into());
        let a = join(&mut g, "a", &topics, now);
        assert_eq!(parts(&a.assignment).len(), 2);
        topics.insert("t".into(), 4);
        let a2 = beat(&mut g, "a", a.member_epoch, None, &topics, now);
        assert_eq!(parts(&a2.assignment).len(), 4);
        assert!(a2.member_epoch > a.member_epoch);
        // A pattern subscription picks up matching topics.
        topics.insert("events-1".into(), 1);
        topics.insert("other".into(), 1);
        let req = HeartbeatRequest {
            member_id: "a".into(),
            member_epoch: a2.member_epoch,
            regex: Some("events-.*".into()),
            ..HeartbeatRequest::default()
        };
        let a3 = g.heartbeat(req, &topics, settings(), now);
        let got = a3.assignment.unwrap();
        assert!(got.contains_key("events-1") && !got.contains_key("other"), "{got:?}");
    }
}
