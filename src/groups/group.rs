//! One classic consumer group: Apache Kafka's group membership protocol
//! (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) as a state machine.
//!
//! The machine is synchronous and owns no tasks: time comes in as `now`,
//! requests that must wait (a JoinGroup until the rebalance completes, a
//! follower's SyncGroup until the leader's assignment arrives) get a
//! one-shot channel that a later call fills. The caller (`super`) keeps the
//! group in a thread-local, calls `on_timer` when `next_deadline` passes,
//! and never holds the group across an `.await`.
//!
//! States, as in Kafka: Empty → PreparingRebalance → CompletingRebalance →
//! Stable. A rebalance completes when every known member has rejoined and
//! no member id handed out by MEMBER_ID_REQUIRED (KIP-394) is still
//! outstanding, or when the rebalance timeout passes; dynamic members that
//! did not rejoin are then removed. A group that was empty first waits
//! `group.initial.rebalance.delay.ms` (extended while new members arrive,
//! up to the rebalance timeout) so that a fleet of consumers starting
//! together lands in one generation.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;

/// Error code for "no error".
pub const NONE: i16 = 0;

fn code(e: ResponseError) -> i16 {
    e.code()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

/// Broker settings a group needs.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// `group.initial.rebalance.delay.ms`
    pub initial_rebalance_delay: Duration,
    /// `group.min.session.timeout.ms`
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`
    pub max_session_timeout_ms: i32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            initial_rebalance_delay: Duration::from_millis(3000),
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
        }
    }
}

/// A JoinGroup, as plain data.
#[derive(Clone, Debug, Default)]
pub struct JoinRequest {
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    /// The client's address, for DescribeGroups.
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// (name, opaque metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new dynamic member first gets MEMBER_ID_REQUIRED.
    pub require_known_member_id: bool,
    /// JoinGroup v9+ (KIP-814): a rejoining static leader may skip assigning.
    pub supports_skip_assignment: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberMetadata {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinResponse {
    pub error: i16,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub skip_assignment: bool,
    pub member_id: String,
    /// Every member's metadata for the chosen protocol: the leader only.
    pub members: Vec<MemberMetadata>,
}

impl JoinResponse {
    pub fn error(error: ResponseError, member_id: &str) -> JoinResponse {
        JoinResponse {
            error: code(error),
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct SyncRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// SyncGroup v5+: checked against the group's when present.
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// From the leader: (member id, opaque assignment).
    pub assignments: Vec<(String, Bytes)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncResponse {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResponse {
    pub fn error(error: ResponseError) -> SyncResponse {
        SyncResponse { error: code(error), protocol_type: None, protocol_name: None, assignment: Bytes::new() }
    }
}

/// A group as DescribeGroups shows it.
#[derive(Clone, Debug, Default)]
pub struct GroupView {
    pub state: &'static str,
    pub protocol_type: String,
    /// The selected protocol (assignor); empty until the group is Stable.
    pub protocol: String,
    pub members: Vec<MemberView>,
}

#[derive(Clone, Debug, Default)]
pub struct MemberView {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// The topics of a consumer-protocol subscription (a version, then
/// `ConsumerProtocolSubscription`), or `None` if it does not decode.
pub fn decode_subscription(metadata: &Bytes) -> Option<Vec<String>> {
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::Decodable;
    let mut buf = metadata.clone();
    if buf.len() < 2 {
        return None;
    }
    let version = i16::from_be_bytes([buf[0], buf[1]]);
    bytes::Buf::advance(&mut buf, 2);
    // Newer versions only add fields: read them as the newest we know.
    let version = version.clamp(0, 3);
    let sub = std::panic::catch_unwind(move || ConsumerProtocolSubscription::decode(&mut buf, version)).ok()?.ok()?;
    Some(sub.topics.into_iter().map(|t| t.to_string()).collect())
}

/// An answer now, or a channel the answer will arrive on.
pub enum Reply<T> {
    Now(T),
    Wait(flume::Receiver<T>),
}

struct Member {
    id: String,
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    /// Join order: the first member is preferred as leader.
    order: u64,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    join_waiter: Option<flume::Sender<JoinResponse>>,
    sync_waiter: Option<flume::Sender<SyncResponse>>,
    last_heard: Instant,
}

impl Member {
    fn matches(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }

    fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(n, _)| n == protocol)
    }

    fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(n, _)| n == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }

    /// A member whose request the coordinator holds is not expected to
    /// heartbeat meanwhile.
    fn session_deadline(&self) -> Option<Instant> {
        if self.join_waiter.is_some() || self.sync_waiter.is_some() {
            None
        } else {
            Some(self.last_heard + self.session_timeout)
        }
    }
}

struct InitialDelay {
    until: Instant,
    delay: Duration,
    /// How much longer the delay may still be extended.
    remaining: Duration,
    new_member_added: bool,
}

pub struct Group {
    pub id: String,
    settings: Settings,
    state: State,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    members: HashMap<String, Member>,
    /// group.instance.id → member id (KIP-345).
    static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, until they rejoin.
    pending: HashMap<String, Instant>,
    next_order: u64,
    /// PreparingRebalance: the join phase ends at this time at the latest.
    rebalance_deadline: Option<Instant>,
    initial_delay: Option<InitialDelay>,
    /// Members of the new generation that have not sent SyncGroup yet,
    /// and when they are given up on.
    pending_sync: HashSet<String>,
    sync_deadline: Option<Instant>,
    /// The timer task that serves this group, if one runs (`super`).
    pub timer: Option<flume::Sender<()>>,
}

impl Group {
    pub fn new(id: String, settings: Settings) -> Group {
        Group {
            id,
            settings,
            state: State::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: HashMap::new(),
            static_members: HashMap::new(),
            pending: HashMap::new(),
            next_order: 0,
            rebalance_deadline: None,
            initial_delay: None,
            pending_sync: HashSet::new(),
            sync_deadline: None,
            timer: None,
        }
    }

    #[cfg(test)]
    pub fn state(&self) -> State {
        self.state
    }

    #[cfg(test)]
    pub fn generation(&self) -> i32 {
        self.generation
    }

    #[cfg(test)]
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    fn ordered_ids(&self) -> Vec<String> {
        let mut v: Vec<(&u64, &String)> = self.members.values().map(|m| (&m.order, &m.id)).collect();
        v.sort();
        v.into_iter().map(|(_, id)| id.clone()).collect()
    }

    fn rebalance_timeout(&self) -> Duration {
        self.members.values().map(|m| m.rebalance_timeout).max().unwrap_or_default()
    }

    /// Static member `instance` is known under another member id.
    fn fenced(&self, member_id: &str, instance: Option<&str>) -> bool {
        instance.and_then(|i| self.static_members.get(i)).is_some_and(|id| id != member_id)
    }

    /// Kafka's check: an empty group takes any non-empty protocol list; a
    /// group with members needs the same protocol type and one protocol
    /// every other member supports.
    fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)], exclude: Option<&str>) -> bool {
        let others: Vec<&Member> = self.members.values().filter(|m| Some(m.id.as_str()) != exclude).collect();
        if others.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|(name, _)| others.iter().all(|m| m.supports(name)))
    }

    /// The protocol all members support that most members prefer most;
    /// ties go to the first member's order of preference.
    fn select_protocol(&self) -> Option<String> {
        let ids = self.ordered_ids();
        let first = self.members.get(ids.first()?)?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| self.members.values().all(|m| m.supports(n)))
            .collect();
        let mut votes = vec![0usize; candidates.len()];
        for m in self.members.values() {
            if let Some(i) = m.protocols.iter().find_map(|(n, _)| candidates.iter().position(|c| c == n)) {
                votes[i] += 1;
            }
        }
        let best = votes.iter().copied().max()?;
        let i = votes.iter().position(|&v| v == best)?;
        Some(candidates[i].to_string())
    }

    fn current_members(&self) -> Vec<MemberMetadata> {
        let proto = self.protocol.clone().unwrap_or_default();
        self.ordered_ids()
            .into_iter()
            .filter_map(|id| self.members.get(&id))
            .map(|m| MemberMetadata {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                metadata: m.metadata(&proto),
            })
            .collect()
    }

    fn join_ok(&self, member_id: &str, with_members: bool, skip_assignment: bool) -> JoinResponse {
        JoinResponse {
            error: NONE,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            skip_assignment,
            member_id: member_id.to_string(),
            members: if with_members { self.current_members() } else { Vec::new() },
        }
    }

    // ----- DescribeGroups, ListGroups, DeleteGroups, OffsetDelete -----

    /// Kafka's name for the group's state.
    pub fn state_name(&self) -> &'static str {
        match self.state {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
        }
    }

    pub fn is_empty(&self) -> bool {
        self.state == State::Empty && self.members.is_empty()
    }

    pub fn protocol_type(&self) -> &str {
        self.protocol_type.as_deref().unwrap_or("")
    }

    /// As Kafka describes a group: member metadata and assignments only
    /// once the group is Stable (before that they are being replaced).
    pub fn describe(&self) -> GroupView {
        let stable = self.state == State::Stable;
        let proto = self.protocol.clone().unwrap_or_default();
        let members = self
            .ordered_ids()
            .iter()
            .filter_map(|id| self.members.get(id))
            .map(|m| MemberView {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable { m.metadata(&proto) } else { Bytes::new() },
                assignment: if stable { m.assignment.clone() } else { Bytes::new() },
            })
            .collect();
        GroupView {
            state: self.state_name(),
            protocol_type: self.protocol_type().to_string(),
            protocol: if stable { proto } else { String::new() },
            members,
        }
    }

    /// The topics the members subscribe to, when the group uses the
    /// consumer protocol and every subscription decodes; `None` otherwise.
    pub fn subscribed_topics(&self) -> Option<HashSet<String>> {
        if self.protocol_type() != "consumer" {
            return None;
        }
        let proto = self.protocol.clone()?;
        let mut topics = HashSet::new();
        for m in self.members.values() {
            topics.extend(decode_subscription(&m.metadata(&proto))?);
        }
        Some(topics)
    }

    // ----- JoinGroup -----

    /// Handles a JoinGroup. The caller has checked the group id and the
    /// session timeout.
    pub fn join(&mut self, req: JoinRequest, now: Instant) -> Reply<JoinResponse> {
        let known = !req.member_id.is_empty();
        let exclude = known.then_some(req.member_id.as_str());
        if !self.supports_protocols(&req.protocol_type, &req.protocols, exclude) {
            return Reply::Now(JoinResponse::error(ResponseError::InconsistentGroupProtocol, &req.member_id));
        }
        if !known {
            if let Some(instance) = req.group_instance_id.clone() {
                let new_id = format!("{instance}-{}", uuid::Uuid::new_v4());
                if let Some(old_id) = self.static_members.get(&instance).cloned() {
                    return self.replace_static_member(&old_id, new_id, req, now);
                }
                return self.add_member_and_rebalance(new_id, req, now);
            }
            let new_id = format!("{}-{}", req.client_id, uuid::Uuid::new_v4());
            if req.require_known_member_id {
                let timeout = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
                self.pending.insert(new_id.clone(), now + timeout);
                return Reply::Now(JoinResponse::error(ResponseError::MemberIdRequired, &new_id));
            }
            return self.add_member_and_rebalance(new_id, req, now);
        }
        if self.pending.remove(&req.member_id).is_some() {
            let id = req.member_id.clone();
            return self.add_member_and_rebalance(id, req, now);
        }
        if self.fenced(&req.member_id, req.group_instance_id.as_deref()) {
            return Reply::Now(JoinResponse::error(ResponseError::FencedInstanceId, &req.member_id));
        }
        let Some(member) = self.members.get(&req.member_id) else {
            return Reply::Now(JoinResponse::error(ResponseError::UnknownMemberId, &req.member_id));
        };
        let same = member.matches(&req.protocols);
        let is_leader = self.leader.as_deref() == Some(req.member_id.as_str());
        match self.state {
            State::Empty => Reply::Now(JoinResponse::error(ResponseError::UnknownMemberId, &req.member_id)),
            State::PreparingRebalance => self.update_member_and_rebalance(req, now),
            State::CompletingRebalance if same => {
                // Lost its JoinGroup response: the current generation again.
                self.touch(&req.member_id, now);
                Reply::Now(self.join_ok(&req.member_id, is_leader, false))
            }
            State::Stable if same && !is_leader => {
                self.touch(&req.member_id, now);
                Reply::Now(self.join_ok(&req.member_id, false, false))
            }
            // The leader rejoining forces a rebalance (a topic change the
            // metadata does not show), as does a change of metadata.
            State::CompletingRebalance | State::Stable => self.update_member_and_rebalance(req, now),
        }
    }

    fn touch(&mut self, member_id: &str, now: Instant) {
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_heard = now;
        }
    }

    fn add_member_and_rebalance(&mut self, id: String, req: JoinRequest, now: Instant) -> Reply<JoinResponse> {
        let (tx, rx) = flume::bounded(1);
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(id.clone());
        }
        if let Some(d) = &mut self.initial_delay {
            d.new_member_added = true;
        }
        if let Some(instance) = &req.group_instance_id {
            self.static_members.insert(instance.clone(), id.clone());
        }
        self.next_order += 1;
        self.members.insert(
            id.clone(),
            Member {
                id,
                instance_id: req.group_instance_id,
                client_id: req.client_id,
                client_host: req.client_host,
                order: self.next_order,
                session_timeout: Duration::from_millis(req.session_timeout_ms.max(0) as u64),
                rebalance_timeout: Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64),
                protocols: req.protocols,
                assignment: Bytes::new(),
                join_waiter: Some(tx),
                sync_waiter: None,
                last_heard: now,
            },
        );
        self.maybe_prepare_rebalance(now);
        Reply::Wait(rx)
    }

    fn update_member_and_rebalance(&mut self, req: JoinRequest, now: Instant) -> Reply<JoinResponse> {
        let (tx, rx) = flume::bounded(1);
        if let Some(m) = self.members.get_mut(&req.member_id) {
            m.protocols = req.protocols;
            m.session_timeout = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
            m.rebalance_timeout = Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64);
            m.last_heard = now;
            if let Some(old) = m.join_waiter.replace(tx) {
                // A retried JoinGroup replaces the one still waiting.
                let _ = old.try_send(JoinResponse::error(ResponseError::RebalanceInProgress, &req.member_id));
            }
        }
        self.maybe_prepare_rebalance(now);
        Reply::Wait(rx)
    }

    /// KIP-345: a static member rejoining without its member id takes over
    /// the old member's place under a new id; the old id is fenced.
    fn replace_static_member(
        &mut self,
        old_id: &str,
        new_id: String,
        req: JoinRequest,
        now: Instant,
    ) -> Reply<JoinResponse> {
        let Some(mut m) = self.members.remove(old_id) else {
            return self.add_member_and_rebalance(new_id, req, now);
        };
        if let Some(w) = m.join_waiter.take() {
            let _ = w.try_send(JoinResponse::error(ResponseError::FencedInstanceId, old_id));
        }
        if let Some(w) = m.sync_waiter.take() {
            let _ = w.try_send(SyncResponse::error(ResponseError::FencedInstanceId));
        }
        m.id = new_id.clone();
        m.protocols = req.protocols;
        m.session_timeout = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
        m.rebalance_timeout = Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64);
        m.last_heard = now;
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(new_id.clone());
        }
        if self.pending_sync.remove(old_id) {
            self.pending_sync.insert(new_id.clone());
        }
        if let Some(instance) = &m.instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        self.members.insert(new_id.clone(), m);
        let is_leader = self.leader.as_deref() == Some(new_id.as_str());
        if self.state == State::Stable
            && self.select_protocol() == self.protocol
            && (!is_leader || req.supports_skip_assignment)
        {
            // Nothing changes for the group: carry on in this generation.
            return Reply::Now(self.join_ok(&new_id, is_leader, is_leader));
        }
        let (tx, rx) = flume::bounded(1);
        if let Some(m) = self.members.get_mut(&new_id) {
            m.join_waiter = Some(tx);
        }
        self.maybe_prepare_rebalance(now);
        Reply::Wait(rx)
    }

    fn maybe_prepare_rebalance(&mut self, now: Instant) {
        match self.state {
            State::PreparingRebalance => self.try_complete_join(now),
            _ => self.prepare_rebalance(now),
        }
    }

    fn prepare_rebalance(&mut self, now: Instant) {
        if self.state == State::CompletingRebalance {
            // Assignments of the generation being abandoned are void.
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.try_send(SyncResponse::error(ResponseError::RebalanceInProgress));
                }
            }
        }
        self.pending_sync.clear();
        self.sync_deadline = None;
        let timeout = self.rebalance_timeout();
        let delay = self.settings.initial_rebalance_delay;
        let was_empty = self.state == State::Empty;
        self.state = State::PreparingRebalance;
        if was_empty && !delay.is_zero() {
            self.initial_delay = Some(InitialDelay {
                until: now + delay,
                delay,
                remaining: timeout.saturating_sub(delay),
                new_member_added: false,
            });
            self.rebalance_deadline = None;
        } else {
            self.initial_delay = None;
            self.rebalance_deadline = Some(now + timeout);
            self.try_complete_join(now);
        }
    }

    fn all_joined(&self) -> bool {
        self.pending.is_empty() && self.members.values().all(|m| m.join_waiter.is_some())
    }

    fn try_complete_join(&mut self, now: Instant) {
        if self.state == State::PreparingRebalance && self.initial_delay.is_none() && self.all_joined() {
            self.complete_join(now);
        }
    }

    /// Ends the join phase: members that did not rejoin leave (static ones
    /// stay until their session expires), a new generation starts and
    /// every waiting JoinGroup is answered.
    fn complete_join(&mut self, now: Instant) {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id);
        }
        self.initial_delay = None;
        self.rebalance_deadline = None;
        self.generation = self.generation.wrapping_add(1).max(1);
        if self.members.is_empty() {
            self.state = State::Empty;
            self.protocol = None;
            self.protocol_type = None;
            self.leader = None;
            return;
        }
        self.protocol = self.select_protocol();
        let leader_rejoined =
            self.leader.as_ref().and_then(|l| self.members.get(l)).is_some_and(|m| m.join_waiter.is_some());
        if !leader_rejoined {
            let ids = self.ordered_ids();
            let rejoined = ids.iter().find(|id| self.members.get(*id).is_some_and(|m| m.join_waiter.is_some()));
            self.leader = rejoined.or(ids.first()).cloned();
        }
        self.state = State::CompletingRebalance;
        tracing::info!(
            group = %self.id,
            generation = self.generation,
            members = self.members.len(),
            protocol = self.protocol.as_deref().unwrap_or(""),
            "group rebalanced"
        );
        self.pending_sync = self.members.keys().cloned().collect();
        self.sync_deadline = Some(now + self.rebalance_timeout());
        let leader = self.leader.clone().unwrap_or_default();
        let for_leader = self.join_ok(&leader, true, false);
        let for_others = self.join_ok("", false, false);
        for m in self.members.values_mut() {
            m.last_heard = now;
            if let Some(w) = m.join_waiter.take() {
                let mut r = if m.id == leader { for_leader.clone() } else { for_others.clone() };
                r.member_id = m.id.clone();
                let _ = w.try_send(r);
            }
        }
    }

    /// Takes a member out; a waiting request of its own is told it is gone.
    fn remove_member(&mut self, id: &str) {
        let Some(mut m) = self.members.remove(id) else { return };
        if let Some(w) = m.join_waiter.take() {
            let _ = w.try_send(JoinResponse::error(ResponseError::UnknownMemberId, id));
        }
        if let Some(w) = m.sync_waiter.take() {
            let _ = w.try_send(SyncResponse::error(ResponseError::UnknownMemberId));
        }
        if let Some(instance) = &m.instance_id {
            if self.static_members.get(instance).is_some_and(|i| i == id) {
                self.static_members.remove(instance);
            }
        }
        self.pending_sync.remove(id);
        if self.leader.as_deref() == Some(id) {
            self.leader = self.ordered_ids().into_iter().next();
        }
        if self.members.is_empty() {
            self.protocol_type = None;
        }
    }

    fn remove_member_and_update(&mut self, id: &str, now: Instant) {
        self.remove_member(id);
        match self.state {
            State::Stable | State::CompletingRebalance => self.prepare_rebalance(now),
            State::PreparingRebalance => self.try_complete_join(now),
            State::Empty => {}
        }
    }

    // ----- SyncGroup -----

    pub fn sync(&mut self, req: SyncRequest, now: Instant) -> Reply<SyncResponse> {
        if self.fenced(&req.member_id, req.group_instance_id.as_deref()) {
            return Reply::Now(SyncResponse::error(ResponseError::FencedInstanceId));
        }
        if !self.members.contains_key(&req.member_id) {
            return Reply::Now(SyncResponse::error(ResponseError::UnknownMemberId));
        }
        if req.generation_id != self.generation {
            return Reply::Now(SyncResponse::error(ResponseError::IllegalGeneration));
        }
        let type_differs = req.protocol_type.as_ref().is_some_and(|t| Some(t) != self.protocol_type.as_ref());
        let name_differs = req.protocol_name.as_ref().is_some_and(|n| Some(n) != self.protocol.as_ref());
        if type_differs || name_differs {
            return Reply::Now(SyncResponse::error(ResponseError::InconsistentGroupProtocol));
        }
        match self.state {
            State::Empty => Reply::Now(SyncResponse::error(ResponseError::UnknownMemberId)),
            State::PreparingRebalance => Reply::Now(SyncResponse::error(ResponseError::RebalanceInProgress)),
            State::Stable => {
                self.synced(&req.member_id, now);
                let assignment = self.members.get(&req.member_id).map(|m| m.assignment.clone()).unwrap_or_default();
                Reply::Now(self.sync_ok(assignment))
            }
            State::CompletingRebalance => {
                self.synced(&req.member_id, now);
                let (tx, rx) = flume::bounded(1);
                if let Some(m) = self.members.get_mut(&req.member_id) {
                    if let Some(old) = m.sync_waiter.replace(tx) {
                        let _ = old.try_send(SyncResponse::error(ResponseError::RebalanceInProgress));
                    }
                }
                if self.leader.as_deref() == Some(req.member_id.as_str()) {
                    for m in self.members.values_mut() {
                        m.assignment = Bytes::new();
                    }
                    for (id, assignment) in req.assignments {
                        if let Some(m) = self.members.get_mut(&id) {
                            m.assignment = assignment;
                        }
                    }
                    self.state = State::Stable;
                    let ok = self.sync_ok(Bytes::new());
                    for m in self.members.values_mut() {
                        if let Some(w) = m.sync_waiter.take() {
                            let _ = w.try_send(SyncResponse { assignment: m.assignment.clone(), ..ok.clone() });
                        }
                    }
                }
                Reply::Wait(rx)
            }
        }
    }

    fn synced(&mut self, member_id: &str, now: Instant) {
        self.touch(member_id, now);
        self.pending_sync.remove(member_id);
        if self.pending_sync.is_empty() {
            self.sync_deadline = None;
        }
    }

    fn sync_ok(&self, assignment: Bytes) -> SyncResponse {
        SyncResponse {
            error: NONE,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            assignment,
        }
    }

    // ----- Heartbeat, LeaveGroup, OffsetCommit checks -----

    pub fn heartbeat(&mut self, generation: i32, member_id: &str, instance: Option<&str>, now: Instant) -> i16 {
        if self.fenced(member_id, instance) {
            return code(ResponseError::FencedInstanceId);
        }
        if !self.members.contains_key(member_id) {
            return code(ResponseError::UnknownMemberId);
        }
        if generation != self.generation {
            return code(ResponseError::IllegalGeneration);
        }
        self.touch(member_id, now);
        match self.state {
            State::Empty => code(ResponseError::UnknownMemberId),
            State::PreparingRebalance => code(ResponseError::RebalanceInProgress),
            State::CompletingRebalance | State::Stable => NONE,
        }
    }

    /// Removes members (LeaveGroup); an error code per member.
    pub fn leave(&mut self, leaving: &[(String, Option<String>)], now: Instant) -> Vec<i16> {
        leaving
            .iter()
            .map(|(member_id, instance)| {
                if member_id.is_empty() {
                    // v3+: a static member may leave by instance id alone.
                    let id = instance.as_ref().and_then(|i| self.static_members.get(i)).cloned();
                    return match id {
                        Some(id) => {
                            self.remove_member_and_update(&id, now);
                            NONE
                        }
                        None => code(ResponseError::UnknownMemberId),
                    };
                }
                if self.fenced(member_id, instance.as_deref()) {
                    return code(ResponseError::FencedInstanceId);
                }
                if self.pending.remove(member_id).is_some() {
                    self.try_complete_join(now);
                    return NONE;
                }
                if self.members.contains_key(member_id) {
                    self.remove_member_and_update(member_id, now);
                    return NONE;
                }
                code(ResponseError::UnknownMemberId)
            })
            .collect()
    }

    /// Whether an OffsetCommit may go ahead, as Kafka decides it for
    /// classic groups: members commit with their generation; anyone may
    /// commit with generation -1 and no member id while the group is
    /// empty (kcat, Spark). A commit counts as a heartbeat.
    pub fn validate_commit(
        &mut self,
        generation: i32,
        member_id: &str,
        instance: Option<&str>,
        now: Instant,
    ) -> Result<(), i16> {
        if generation >= 0 || !member_id.is_empty() || instance.is_some() {
            if self.fenced(member_id, instance) {
                return Err(code(ResponseError::FencedInstanceId));
            }
            if !self.members.contains_key(member_id) {
                return Err(code(ResponseError::UnknownMemberId));
            }
            if generation != self.generation {
                return Err(code(ResponseError::IllegalGeneration));
            }
        } else if self.state != State::Empty {
            return Err(code(ResponseError::UnknownMemberId));
        }
        match self.state {
            // The member has its JoinGroup answer but not yet its
            // assignment: it must not commit for partitions it may lose.
            State::CompletingRebalance => Err(code(ResponseError::RebalanceInProgress)),
            // During PreparingRebalance Kafka still takes commits of the
            // current generation (consumers commit before they rejoin).
            State::Stable | State::PreparingRebalance => {
                self.touch(member_id, now);
                Ok(())
            }
            State::Empty => Ok(()),
        }
    }

    // ----- time -----

    /// The earliest time `on_timer` has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let members = self.members.values().filter_map(Member::session_deadline);
        let fixed = [self.initial_delay.as_ref().map(|d| d.until), self.rebalance_deadline, self.sync_deadline];
        members.chain(self.pending.values().copied()).chain(fixed.into_iter().flatten()).min()
    }

    /// Acts on every deadline that has passed.
    pub fn on_timer(&mut self, now: Instant) {
        let before = self.pending.len();
        self.pending.retain(|_, deadline| *deadline > now);
        if self.pending.len() != before {
            self.try_complete_join(now);
        }
        let mut expired: Vec<(u64, String)> = self
            .members
            .values()
            .filter(|m| m.session_deadline().is_some_and(|d| d <= now))
            .map(|m| (m.order, m.id.clone()))
            .collect();
        expired.sort();
        for (_, id) in expired {
            tracing::debug!(group = %self.id, member = %id, "session expired");
            self.remove_member_and_update(&id, now);
        }
        if let Some(d) = &mut self.initial_delay {
            if d.until <= now {
                if d.new_member_added && !d.remaining.is_zero() {
                    let step = d.delay.min(d.remaining);
                    d.until = now + step;
                    d.remaining -= step;
                    d.new_member_added = false;
                } else {
                    self.initial_delay = None;
                    self.complete_join(now);
                }
            }
        }
        if self.state == State::PreparingRebalance && self.rebalance_deadline.is_some_and(|d| d <= now) {
            self.complete_join(now);
        }
        if self.sync_deadline.is_some_and(|d| d <= now) {
            self.sync_deadline = None;
            let late: Vec<String> = self.pending_sync.drain().collect();
            if !late.is_empty() && matches!(self.state, State::CompletingRebalance | State::Stable) {
                for id in &late {
                    tracing::debug!(group = %self.id, member = %id, "no SyncGroup within the rebalance timeout");
                    self.remove_member(id);
                }
                self.prepare_rebalance(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(delay_ms: u64) -> Settings {
        Settings { initial_rebalance_delay: Duration::from_millis(delay_ms), ..Settings::default() }
    }

    fn join_req(member_id: &str, protocols: &[&str]) -> JoinRequest {
        JoinRequest {
            group_id: "g".into(),
            member_id: member_id.into(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".into(),
            protocols: protocols.iter().map(|p| (p.to_string(), Bytes::from(format!("meta-{p}")))).collect(),
            require_known_member_id: true,
            supports_skip_assignment: false,
        }
    }

    fn now_reply<T>(r: Reply<T>) -> T {
        match r {
            Reply::Now(v) => v,
            Reply::Wait(rx) => rx.try_recv().expect("answered"),
        }
    }

    fn waiting<T>(r: Reply<T>) -> flume::Receiver<T> {
        match r {
            Reply::Wait(rx) => {
                assert!(rx.is_empty(), "should still wait");
                rx
            }
            Reply::Now(_) => panic!("expected to wait"),
        }
    }

    /// Two-round join (KIP-394) of a new member; returns the member id and
    /// the channel of its JoinGroup answer.
    fn new_member(g: &mut Group, protocols: &[&str], now: Instant) -> (String, Reply<JoinResponse>) {
        let r = now_reply(g.join(join_req("", protocols), now));
        assert_eq!(r.error, code(ResponseError::MemberIdRequired));
        assert!(r.member_id.starts_with("c-"));
        let id = r.member_id.clone();
        let reply = g.join(join_req(&id, protocols), now);
        (id, reply)
    }

    fn sync_req(g: &Group, member: &str, assignments: Vec<(String, Bytes)>) -> SyncRequest {
        SyncRequest {
            group_id: "g".into(),
            generation_id: g.generation(),
            member_id: member.into(),
            assignments,
            ..SyncRequest::default()
        }
    }

    #[test]
    fn single_member_lifecycle() {
        let t0 = Instant::now();
        let mut g = Group::new("g".into(), settings(0));
        let (a, reply) = new_member(&mut g, &["range", "roundrobin"], t0);
        let r = now_reply(reply);
        assert_eq!(r.error, NONE);
        assert_eq!(r.generation_id, 1);
        assert_eq!(r.leader, a);
        assert_eq!(r.protocol_name.as_deref(), Some("range"));
        assert_eq!(r.members.len(), 1);
        assert_eq!(r.members[0].metadata, Bytes::from("meta-range"));
        assert_eq!(g.state(), State::CompletingRebalance);
        assert_eq!(g.heartbeat(1, &a, None, t0), NONE);
        let s = now_reply(g.sync(sync_req(&g, &a, vec![(a.clone(), Bytes::from("A"))]), t0));
        assert_eq!(s.error, NONE);
        assert_eq!(s.assignment, Bytes::from("A"));
        assert_eq!(g.state(), State::Stable);
        assert_eq!(g.heartbeat(0, &a, None, t0), code(ResponseError::IllegalGeneration));
        assert_eq!(g.heartbeat(1, "nobody", None, t0), code(ResponseError::UnknownMemberId));
        assert_eq!(g.leave(&[(a.clone(), None)], t0), vec![NONE]);
        assert_eq!(g.state(), State::Empty);
        assert_eq!(g.generation(), 2);
        assert_eq!(g.heartbeat(2, &a, None, t0), code(ResponseError::UnknownMemberId));
    }

    #[test]
    fn second_member_triggers_rebalance_and_follower_waits_for_leader() {
        let t0 = Instant::now();
        let mut g = Group::new("g".into(), settings(0));
        let (a, reply) = new_member(&mut g, &["range"], t0);
        now_reply(reply);
        now_reply(g.sync(sync_req(&g, &a, vec![]), t0));
        // B arrives: the group prepares a rebalance, B waits for A.
        let (b, reply_b) = new_member(&mut g, &["roundrobin", "range"], t0);
        let rx_b = waiting(reply_b);
        assert_eq!(g.state(), State::PreparingRebalance);
        assert_eq!(g.heartbeat(1, &a, None, t0), code(ResponseError::RebalanceInProgress));
        // Commits of the current generation still go through.
        assert_eq!(g.validate_commit(1, &a, None, t0), Ok(()));
        let ra = now_reply(g.join(join_req(&a, &["range"]), t0));
        let rb = rx_b.try_recv().unwrap();
        assert_eq!((ra.generation_id, rb.generation_id), (2, 2));
        assert_eq!(ra.leader, a);
        assert_eq!(ra.members.len(), 2);
        assert!(rb.members.is_empty());
        assert_eq!(rb.protocol_name.as_deref(), Some("range"));
        assert_eq!(g.validate_commit(2, &a, None, t0), Err(code(ResponseError::RebalanceInProgress)));
        // The follower syncs first and waits; the leader's sync answers both.
        let rx_sb = waiting(g.sync(sync_req(&g, &b, vec![]), t0));
        let sa = now_reply(
            g.sync(sync_req(&g, &a, vec![(a.clone(), Bytes::from("pa")), (b.clone(), Bytes::from("pb"))]), t0),
        );
        assert_eq!(sa.assignment, Bytes::from("pa"));
        assert_eq!(rx_sb.try_recv().unwrap().assignment, Bytes::from("pb"));
        assert_eq!(g.state(), State::Stable);
        assert_eq!(g.validate_commit(1, &a, None, t0), Err(code(ResponseError::IllegalGeneration)));
        assert_eq!(g.validate_commit(2, &a, None, t0), Ok(()));
        assert_eq!(g.validate_commit(-1, "", None, t0), Err(code(ResponseError::UnknownMemberId)));
    }

    #[test]
    fn protocol_vote_and_inconsistent_protocols() {
        let t0 = Instant::now();
        let mut g = Group::new("g".into(), settings(0));
        let (_a, r) = new_member(&mut g, &["range", "roundrobin"], t0);
        now_reply(r);
        let r = now_reply(g.join(join_req("", &["sticky"]), t0));
        assert_eq!(r.error, code(ResponseError::InconsistentGroupProtocol));
        let mut other_type = join_req("", &["range"]);
        other_type.protocol_type = "connect".into();
        assert_eq!(now_reply(g.join(other_type, t0)).error, code(ResponseError::InconsistentGroupProtocol));
        // Two of three prefer roundrobin: it wins the vote.
        let (_b, _rb) = new_member(&mut g, &["roundrobin", "range"], t0);
        let (_c, _rc) = new_member(&mut g, &["roundrobin", "range"], t0);
        assert_eq!(g.select_protocol().as_deref(), Some("roundrobin"));
    }

    #[test]
    fn members_that_do_not_rejoin_are_removed_at_the_rebalance_timeout() {
        let t0 = Instant::now();
        let mut g = Group::new("g".into(), settings(0));
        let (a, r) = new_member(&mut g, &["range"], t0);
        now_reply(r);
        let (b, rb) = new_member(&mut g, &["range"], t0);
        let ra = now_reply(g.join(join_req(&a, &["range"]), t0));
        let _ = (ra, now_reply(rb));
        now_reply(g.sync(sync_req(&g, &a, vec![]), t0));
        now_reply(g.sync(sync_req(&g, &b, vec![]), t0));
        assert_eq!(g.state(), State::Stable);
        // A new member: a rejoins, b does not.
        let (_c, rc) = new_member(&mut g, &["range"], t0);
        let rc = waiting(rc);
        let ra = waiting(g.join(join_req(&a, &["range"]), t0));
        let deadline = g.next_deadline().unwrap();
        assert!(deadline <= t0 + Duration::from_millis(10_000));
        // b's session (10 s) ends before the rebalance timeout (30 s).
        g.on_timer(t0 + Duration::from_millis(10_000));
        let ra = ra.try_recv().unwrap();
        assert_eq!(ra.members.len(), 2);
        assert!(!ra.members.iter().any(|m| m.member_id == b));
        assert_eq!(rc.try_recv().unwrap().generation_id, g.generation());
        assert_eq!(g.heartbeat(g.generation(), &b, None, t0), code(ResponseError::UnknownMemberId));
    }

    #[test]
    fn rebalance_timeout_completes_the_join() {
        let t0 = Instant::now();
        let mut g = Group::new("g".into(), settings(0));
        let (a, r) = new_member(&mut g, &["range"], t0);
        now_reply(r);
        now_reply(g.sync(sync_req(&g, &a, vec![]), t0));
        let (_b, rb) = new_member(&mut g, &["range"], t0);
        let rb = waiting(rb);
        // a keeps heartbeating (REBALANCE_IN_PROGRESS) but never rejoins.
        let mut t = t0;
        for _ in 0..5 {
            t += Duration::from_millis(5_000);
            assert_eq!(g.heartbeat(1, &a, None, t), code(ResponseError::RebalanceInProgress));
            g.on_timer(t);
        }
        assert!(rb.is_empty());
        t = t0 + Duration::from_millis(30_000);
        g.on_timer(t);
        let rb = rb.try_recv().unwrap();
        assert_eq!(rb.error, NONE);
        assert_eq!(rb.members.len(), 1, "b leads alone");
        assert_eq!(g.member_count(), 1);
    }

    #[test]
    fn initial_delay_collects_members_into_one_generation() {
        let t0 = Instant::now();
        let mut g = Group::new("g".into(), settings(3000));
        let (_a, ra) = new_member(&mut g, &["range"], t0);
        let ra = waiting(ra);
        let t1 = t0 + Duration::from_millis(1000);
        let (_b, rb) = new_member(&mut g, &["range"], t1);
        let rb = waiting(rb);
        g.on_timer(t0 + Duration::from_millis(3000));
        assert!(ra.is_empty(), "a new member extended the delay");
        g.on_timer(t0 + Duration::from_millis(6000));
        let (ra, rb) = (ra.try_recv().unwrap(), rb.try_recv().unwrap());
        assert_eq!((ra.generation_id, rb.generation_id), (1, 1));
        assert_eq!(ra.members.len() + rb.members.len(), 2);
    }

    #[test]
    fn session_expiry_and_pending_member_expiry() {
        let t0 = Instant::now();
        let mut g = Group::new("g".into(), settings(0));
        let (a, r) = new_member(&mut g, &["range"], t0);
        now_reply(r);
        now_reply(g.sync(sync_req(&g, &a, vec![]), t0));
        // A member id handed out but never used expires with the session.
        let r = now_reply(g.join(join_req("", &["range"]), t0));
        assert_eq!(r.error, code(ResponseError::MemberIdRequired));
        assert_eq!(g.pending.len(), 1);
        assert_eq!(g.next_deadline(), Some(t0 + Duration::from_millis(10_000)));
        g.on_timer(t0 + Duration::from_millis(10_000));
        assert!(g.pending.is_empty());
        assert_eq!(g.state(), State::Empty, "a's session expired too");
        assert_eq!(g.member_count(), 0);
        assert_eq!(g.next_deadline(), None);
    }

    #[test]
    fn leader_that_never_syncs_is_given_up() {
        let t0 = Instant::now();
        let mut g = Group::new("g".into(), settings(0));
        let (a, r) = new_member(&mut g, &["range"], t0);
        now_reply(r);
        now_reply(g.sync(sync_req(&g, &a, vec![]), t0));
        let (b, rb) = new_member(&mut g, &["range"], t0);
        now_reply(g.join(join_req(&a, &["range"]), t0));
        now_reply(rb);
        let rx_sb = waiting(g.sync(sync_req(&g, &b, vec![]), t0));
        // The leader heartbeats (so its session holds) but never syncs.
        for s in [9_000, 18_000, 27_000] {
            let t = t0 + Duration::from_millis(s);
            assert_eq!(g.heartbeat(2, &a, None, t), NONE);
            g.on_timer(t);
        }
        assert!(rx_sb.is_empty());
        g.on_timer(t0 + Duration::from_millis(30_000));
        assert_eq!(rx_sb.try_recv().unwrap().error, code(ResponseError::RebalanceInProgress));
        assert_eq!(g.member_count(), 1);
        assert_eq!(g.state(), State::PreparingRebalance);
    }

    #[test]
    fn static_member_rejoins_without_rebalance_and_fences_the_old_id() {
        let t0 = Instant::now();
        let mut g = Group::new("g".into(), settings(0));
        let (a, r) = new_member(&mut g, &["range"], t0);
        now_reply(r);
        let mut sj = join_req("", &["range"]);
        sj.group_instance_id = Some("inst-1".into());
        let rs = waiting(g.join(sj.clone(), t0));
        now_reply(g.join(join_req(&a, &["range"]), t0));
        let s = rs.try_recv().unwrap();
        assert!(s.member_id.starts_with("inst-1-"));
        now_reply(g.sync(sync_req(&g, &a, vec![(s.member_id.clone(), Bytes::from("S"))]), t0));
        now_reply(g.sync(sync_req(&g, &s.member_id, vec![]), t0));
        let generation = g.generation();
        // Restarted: same instance id, no member id. No rebalance.
        let again = now_reply(g.join(sj, t0));
        assert_eq!(again.error, NONE);
        assert_eq!(again.generation_id, generation);
        assert_ne!(again.member_id, s.member_id);
        assert_eq!(g.state(), State::Stable);
        let got = now_reply(g.sync(
            SyncRequest { group_instance_id: Some("inst-1".into()), ..sync_req(&g, &again.member_id, vec![]) },
            t0,
        ));
        assert_eq!(got.assignment, Bytes::from("S"));
        assert_eq!(g.heartbeat(generation, &s.member_id, Some("inst-1"), t0), code(ResponseError::FencedInstanceId));
        // Leaving by instance id alone (v3+).
        assert_eq!(g.leave(&[(String::new(), Some("inst-1".into()))], t0), vec![NONE]);
        assert_eq!(g.state(), State::PreparingRebalance);
    }

    #[test]
    fn simple_commits_only_while_empty() {
        let t0 = Instant::now();
        let mut g = Group::new("g".into(), settings(0));
        assert_eq!(g.validate_commit(-1, "", None, t0), Ok(()));
        assert_eq!(g.validate_commit(3, "x", None, t0), Err(code(ResponseError::UnknownMemberId)));
        let (_a, r) = new_member(&mut g, &["range"], t0);
        now_reply(r);
        assert_eq!(g.validate_commit(-1, "", None, t0), Err(code(ResponseError::UnknownMemberId)));
    }

    #[test]
    fn v3_join_without_member_id_is_admitted_at_once() {
        let t0 = Instant::now();
        let mut g = Group::new("g".into(), settings(0));
        let mut req = join_req("", &["range"]);
        req.require_known_member_id = false;
        let r = now_reply(g.join(req, t0));
        assert_eq!(r.error, NONE);
        assert_eq!(r.leader, r.member_id);
        assert_eq!(g.leave(&[("unknown".into(), None)], t0), vec![code(ResponseError::UnknownMemberId)]);
    }
}
