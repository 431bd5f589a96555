//! The controller: this node's member of the metadata quorum, on a thread
//! of its own (off the shards' data path). It runs the Raft group whose
//! log is the cluster's metadata, applies that log to an image every shard
//! gets a copy of, and, while it leads, writes the records that keep the
//! broker list true: registrations, fencing of brokers that went quiet,
//! unfencing of those that came back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sluice_consensus::transport::{Frame, GroupId, Inbound, Transport};
use sluice_consensus::{NodeStatus, RaftNode, StateMachine};

use super::admin::{self, AdminRequest, AdminResult, Check};
use super::image::{MetadataImage, Record};
use super::ClusterView;
use crate::config::BrokerConfig;

/// Raft's logical clock: an election after 1–2 s without a leader, leader
/// heartbeats every 200 ms (Kafka's controller.quorum.election.timeout.ms
/// is 1000).
const TICK: Duration = Duration::from_millis(100);
/// A proposal not yet seen applied is proposed again after this long.
const RETRY: Duration = Duration::from_secs(2);

/// Raft ids must be non-zero; Kafka node ids start at 0.
pub fn raft_id(node: i32) -> u64 {
    node as u64 + 1
}

fn node_id(raft: u64) -> i32 {
    (raft - 1) as i32
}

/// Messages between controllers besides Raft's own.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type")]
enum PeerMsg {
    /// A broker to the active controller: I am alive, and this is me.
    Heartbeat {
        id: i32,
        incarnation: uuid::Uuid,
        host: String,
        port: u16,
        rack: Option<String>,
    },
    /// To the active controller: describe the quorum (DescribeQuorum
    /// reaching a follower is answered by the leader, as Kafka forwards it).
    QuorumRequest {
        req: u64,
    },
    QuorumReply {
        req: u64,
        quorum: QuorumState,
    },
    /// A topic change for the active controller to make.
    AdminRequest {
        req: u64,
        request: AdminRequest,
    },
    AdminReply {
        req: u64,
        reply: AdminReplyBody,
    },
}

/// The controller's answer to an admin request: per item, or one error
/// for all (no controller, a timeout).
pub type AdminReplyBody = Result<Vec<AdminResult>, (i16, String)>;
type AdminReply = flume::Sender<AdminReplyBody>;

/// Who waits for an admin request's answer.
enum ReplyTo {
    Here(AdminReply),
    Peer { node: u64, req: u64 },
}

/// An admin request whose records are proposed, until they are applied.
struct Proposed {
    index: u64,
    since: Instant,
    items: Vec<(AdminResult, Option<Check>)>,
    to: ReplyTo,
}

/// How long an admin request may take: a proposal not applied by then
/// (a leader that lost its term) is answered NOT_CONTROLLER.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The quorum as its leader sees it (DescribeQuorum's facts).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct QuorumState {
    pub leader: i32,
    pub term: u64,
    /// The commit index.
    pub high_watermark: u64,
    pub voters: Vec<VoterState>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VoterState {
    pub id: i32,
    /// The last index known to be in its log.
    pub log_end: u64,
    /// Milliseconds since the epoch; -1 when never heard from.
    pub last_fetch_ms: i64,
    pub last_caught_up_ms: i64,
}

pub enum Event {
    Peer(Inbound),
    /// Describe the quorum; asks the leader when this node is not it.
    Quorum(flume::Sender<Result<QuorumState, String>>),
    /// A topic change; sent on to the leader when this node is not it.
    Admin(AdminRequest, AdminReply),
}

type QuorumReply = flume::Sender<Result<QuorumState, String>>;

struct MetadataState {
    image: MetadataImage,
}

impl StateMachine for MetadataState {
    fn apply(&mut self, index: u64, data: &[u8]) {
        match Record::decode(data) {
            Ok(r) => self.image.apply(index, r),
            Err(e) => {
                // Written by a newer version: skip it rather than stop.
                tracing::error!(index, %e, "metadata log: record not understood; skipped");
                self.image.applied = index;
            }
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(&self.image).expect("the image serializes")
    }

    fn restore(&mut self, data: &[u8]) {
        self.image = if data.is_empty() {
            MetadataImage::default()
        } else {
            serde_json::from_slice(data).unwrap_or_else(|e| {
                tracing::error!(%e, "metadata snapshot not understood; starting from an empty image");
                MetadataImage::default()
            })
        };
    }
}

pub struct Settings {
    pub node: i32,
    pub voters: Vec<(i32, String)>,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    pub session_timeout: Duration,
    pub heartbeat_interval: Duration,
    /// The defaults and limits new topics are checked against.
    pub config: Arc<BrokerConfig>,
}

pub struct Controller {
    s: Settings,
    incarnation: uuid::Uuid,
    node: RaftNode<MetadataState>,
    transport: Arc<Transport>,
    /// While leading: when each broker was last heard from.
    last_seen: HashMap<i32, Instant>,
    leader_since: Option<Instant>,
    /// Proposals in flight, by what they are about, to not repeat them.
    pending: HashMap<(i32, &'static str), Instant>,
    last_heartbeat: Option<Instant>,
    published: Option<(u64, Option<i32>)>,
    version: u64,
    /// DescribeQuorum answers awaited from the leader.
    waiting: HashMap<u64, (QuorumReply, Instant)>,
    next_req: u64,
    /// Admin requests proposed here (as leader), oldest first.
    proposed: Vec<Proposed>,
    /// Admin requests sent on to the leader, by request number.
    forwarded: HashMap<u64, (AdminReply, Instant)>,
    /// While leading: the end of the last producer-id block proposed.
    pid_planned: i64,
    publish: Box<dyn Fn(Arc<ClusterView>) + Send>,
}

impl Controller {
    /// `groups` takes the partition groups' messages that share the
    /// controllers' connections (on a transport reader thread).
    pub fn new(
        s: Settings,
        dir: &std::path::Path,
        listener: std::net::TcpListener,
        events: flume::Sender<Event>,
        publish: Box<dyn Fn(Arc<ClusterView>) + Send>,
        groups: impl Fn(u64, GroupId, sluice_consensus::Message) + Send + Sync + 'static,
    ) -> Result<Controller, String> {
        let voters: Vec<u64> = s.voters.iter().map(|(id, _)| raft_id(*id)).collect();
        let node = RaftNode::open(
            raft_id(s.node),
            &voters,
            dir,
            MetadataState { image: MetadataImage::default() },
            "metadata",
        )
        .map_err(|e| format!("metadata log {}: {e}", dir.display()))?;
        let peers: HashMap<u64, String> = s.voters.iter().map(|(id, addr)| (raft_id(*id), addr.clone())).collect();
        let transport = Transport::start(raft_id(s.node), listener, &peers, move |m| match m.frame {
            Frame::Group(g, msg) => {
                groups(m.from, g, msg);
                true
            }
            _ => events.send(Event::Peer(m)).is_ok(),
        })
        .map_err(|e| format!("controller transport: {e}"))?;
        let transport = Arc::new(transport);
        Ok(Controller {
            s,
            incarnation: uuid::Uuid::new_v4(),
            node,
            transport,
            last_seen: HashMap::new(),
            leader_since: None,
            pending: HashMap::new(),
            last_heartbeat: None,
            published: None,
            version: 0,
            waiting: HashMap::new(),
            next_req: 0,
            proposed: Vec::new(),
            forwarded: HashMap::new(),
            pid_planned: 0,
            publish,
        })
    }

    pub fn run(mut self, events: flume::Receiver<Event>) {
        let mut next_tick = Instant::now() + TICK;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            match events.recv_timeout(wait) {
                Ok(Event::Peer(m)) => self.on_peer(m),
                Ok(Event::Quorum(reply)) => self.on_quorum_request(reply),
                Ok(Event::Admin(request, reply)) => self.on_admin(request, reply),
                Err(flume::RecvTimeoutError::Timeout) => {}
                Err(flume::RecvTimeoutError::Disconnected) => return,
            }
            if Instant::now() >= next_tick {
                next_tick += TICK;
                if next_tick < Instant::now() {
                    next_tick = Instant::now() + TICK;
                }
                self.node.tick();
                self.duties();
                self.waiting.retain(|_, (reply, since)| {
                    let alive = since.elapsed() < Duration::from_secs(3);
                    if !alive {
                        let _ = reply.send(Err("the active controller did not answer".into()));
                    }
                    alive
                });
                self.forwarded.retain(|_, (reply, since)| {
                    let alive = since.elapsed() < ADMIN_TIMEOUT;
                    if !alive {
                        let _ = reply.send(Err((
                            kafka_protocol::error::ResponseError::RequestTimedOut.code(),
                            "the active controller did not answer in time".into(),
                        )));
                    }
                    alive
                });
            }
            self.flush();
            self.answer_applied();
        }
    }

    fn on_peer(&mut self, m: Inbound) {
        // The transport takes any connection; only voters are listened to.
        if !self.s.voters.iter().any(|(id, _)| raft_id(*id) == m.from) {
            tracing::warn!(from = m.from, "controller: message from a node that is not a voter; ignored");
            return;
        }
        match m.frame {
            Frame::Raft(msg) => {
                // Raft's own traffic (heartbeat answers every 200 ms) shows
                // a voter is alive sooner than its broker heartbeats do.
                if self.node.is_leader() {
                    self.last_seen.insert(node_id(m.from), Instant::now());
                }
                self.node.step(msg)
            }
            Frame::Group(..) => {}
            Frame::App(bytes) => match serde_json::from_slice::<PeerMsg>(&bytes) {
                Ok(PeerMsg::Heartbeat { id, incarnation, host, port, rack }) => {
                    // Only the connection's own node may speak for itself.
                    if raft_id(id) != m.from {
                        tracing::warn!(from = m.from, id, "controller: heartbeat for another node; ignored");
                        return;
                    }
                    if self.node.is_leader() {
                        self.on_heartbeat(id, incarnation, host, port, rack);
                    }
                }
                Ok(PeerMsg::QuorumRequest { req }) => {
                    if let Some(quorum) = self.quorum_state() {
                        let reply = PeerMsg::QuorumReply { req, quorum };
                        self.transport.send(m.from, Frame::App(serde_json::to_vec(&reply).expect("serializes")));
                    }
                }
                Ok(PeerMsg::QuorumReply { req, quorum }) => {
                    if let Some((reply, _)) = self.waiting.remove(&req) {
                        let _ = reply.send(Ok(quorum));
                    }
                }
                Ok(PeerMsg::AdminRequest { req, request }) => {
                    self.admin(request, ReplyTo::Peer { node: m.from, req });
                }
                Ok(PeerMsg::AdminReply { req, reply }) => {
                    if let Some((to, _)) = self.forwarded.remove(&req) {
                        let _ = to.send(reply);
                    }
                }
                Err(e) => tracing::warn!(from = m.from, %e, "controller: message not understood"),
            },
        }
    }

    /// Runs raft-rs's ready loop, sends what it produced, publishes changes.
    fn flush(&mut self) {
        match self.node.process() {
            Ok(msgs) => {
                for m in msgs {
                    let to = m.to;
                    if !self.transport.send(to, Frame::Raft(m)) {
                        self.node.report_unreachable(to);
                    }
                }
            }
            Err(e) => {
                // The metadata log could not be written: this node must not
                // go on voting or leading on a log it cannot keep.
                tracing::error!(%e, "metadata log write failed; exiting");
                std::process::exit(1);
            }
        }
        let leader = self.node.leader().map(node_id);
        let now = (self.node.state().image.applied, leader);
        if self.published != Some(now) {
            if self.published.is_none_or(|(_, was)| was != leader) {
                match leader {
                    Some(l) => {
                        tracing::info!(controller = l, term = self.node.term(), "metadata quorum: active controller")
                    }
                    None => tracing::info!(term = self.node.term(), "metadata quorum: no active controller"),
                }
            }
            self.published = Some(now);
            self.version += 1;
            (self.publish)(Arc::new(ClusterView {
                version: self.version,
                image: Arc::new(self.node.state().image.clone()),
            }));
        }
    }

    fn duties(&mut self) {
        let now = Instant::now();
        if !self.node.is_leader() {
            self.leader_since = None;
            let registered = self.registered();
            let due = self
                .last_heartbeat
                .is_none_or(|t| now.duration_since(t) >= if registered { self.s.heartbeat_interval } else { TICK * 2 });
            if let (Some(leader), true) = (self.node.leader(), due) {
                self.last_heartbeat = Some(now);
                let hb = PeerMsg::Heartbeat {
                    id: self.s.node,
                    incarnation: self.incarnation,
                    host: self.s.host.clone(),
                    port: self.s.port,
                    rack: self.s.rack.clone(),
                };
                self.transport.send(leader, Frame::App(serde_json::to_vec(&hb).expect("serializes")));
            }
            return;
        }
        let since = *self.leader_since.get_or_insert_with(|| {
            // A new leader has heard from nobody yet: everyone gets a full
            // session from now.
            self.last_seen.clear();
            self.pending.clear();
            self.pid_planned = 0;
            now
        });
        if self.node.state().image.cluster_id.is_none() {
            let id = uuid::Uuid::new_v4().simple().to_string();
            self.propose_once((-1, "cluster"), Record::ClusterId { id });
        }
        let (id, inc, host, port, rack) =
            (self.s.node, self.incarnation, self.s.host.clone(), self.s.port, self.s.rack.clone());
        self.on_heartbeat(id, inc, host, port, rack);
        let quiet: Vec<(i32, uuid::Uuid)> = self
            .node
            .state()
            .image
            .unfenced()
            .filter(|b| b.id != self.s.node)
            .filter(|b| now.duration_since(*self.last_seen.get(&b.id).unwrap_or(&since)) > self.s.session_timeout)
            .map(|b| (b.id, b.incarnation))
            .collect();
        for (id, incarnation) in quiet {
            tracing::info!(broker = id, "controller: fencing a broker not heard from within broker.session.timeout.ms");
            self.propose_once((id, "fence"), Record::FenceBroker { id, incarnation });
        }
    }

    /// The connections to the other nodes, for the partition groups too.
    pub fn transport(&self) -> Arc<Transport> {
        self.transport.clone()
    }

    fn on_admin(&mut self, request: AdminRequest, reply: AdminReply) {
        if self.node.is_leader() {
            return self.admin(request, ReplyTo::Here(reply));
        }
        let not_controller = |why: &str| Err((kafka_protocol::error::ResponseError::NotController.code(), why.into()));
        let Some(leader) = self.node.leader() else {
            let _ = reply.send(not_controller("the metadata quorum has no leader"));
            return;
        };
        self.next_req += 1;
        let req = self.next_req;
        let msg = PeerMsg::AdminRequest { req, request };
        if self.transport.send(leader, Frame::App(serde_json::to_vec(&msg).expect("serializes"))) {
            self.forwarded.insert(req, (reply, Instant::now()));
        } else {
            let _ = reply.send(not_controller("the active controller is unreachable"));
        }
    }

    /// Plans an admin request against the image and proposes its records;
    /// answered by `answer_applied` once they are applied.
    fn admin(&mut self, request: AdminRequest, to: ReplyTo) {
        if !self.node.is_leader() {
            let code = kafka_protocol::error::ResponseError::NotController.code();
            return self.reply(to, Err((code, "this node is no longer the active controller".into())));
        }
        let plan = admin::plan(&self.node.state().image, &self.s.config, request, self.pid_planned);
        if let Some(end) = plan.producer_ids_end {
            self.pid_planned = end;
        }
        let mut index = None;
        for r in plan.records {
            match self.node.propose(r.encode()) {
                Ok(i) => index = Some(i),
                Err(e) => {
                    let code = kafka_protocol::error::ResponseError::NotController.code();
                    return self.reply(to, Err((code, format!("proposal not taken: {e}"))));
                }
            }
        }
        match index {
            // Nothing to write (validate_only, or every item refused).
            None => self.reply(to, Ok(plan.items.into_iter().map(|(r, _)| r).collect())),
            Some(index) => self.proposed.push(Proposed { index, since: Instant::now(), items: plan.items, to }),
        }
    }

    fn answer_applied(&mut self) {
        if self.proposed.is_empty() {
            return;
        }
        let applied = self.node.state().image.applied;
        let (done, waiting): (Vec<Proposed>, Vec<Proposed>) = std::mem::take(&mut self.proposed)
            .into_iter()
            .partition(|p| applied >= p.index || p.since.elapsed() >= ADMIN_TIMEOUT);
        self.proposed = waiting;
        let mut lost_block = false;
        for p in done {
            let image = &self.node.state().image;
            let items = p
                .items
                .into_iter()
                .map(|(r, check)| match (r, check) {
                    (Ok(_), Some(c)) if !c.holds(image) => {
                        if matches!(c, Check::Block { .. }) {
                            // Blocks planned past a lost one would never
                            // apply: plan from the image again.
                            lost_block = true;
                        }
                        Err(c.failed(image))
                    }
                    (r, _) => r,
                })
                .collect();
            self.reply(p.to, Ok(items));
        }
        if lost_block {
            self.pid_planned = 0;
        }
    }

    fn reply(&mut self, to: ReplyTo, body: AdminReplyBody) {
        match to {
            ReplyTo::Here(tx) => {
                let _ = tx.send(body);
            }
            ReplyTo::Peer { node, req } => {
                let msg = PeerMsg::AdminReply { req, reply: body };
                self.transport.send(node, Frame::App(serde_json::to_vec(&msg).expect("serializes")));
            }
        }
    }

    fn on_quorum_request(&mut self, reply: QuorumReply) {
        if let Some(q) = self.quorum_state() {
            let _ = reply.send(Ok(q));
            return;
        }
        let Some(leader) = self.node.leader() else {
            let _ = reply.send(Err("the quorum has no leader".into()));
            return;
        };
        self.next_req += 1;
        let req = self.next_req;
        let msg = PeerMsg::QuorumRequest { req };
        if self.transport.send(leader, Frame::App(serde_json::to_vec(&msg).expect("serializes"))) {
            self.waiting.insert(req, (reply, Instant::now()));
        } else {
            let _ = reply.send(Err("the active controller is unreachable".into()));
        }
    }

    /// Only the leader knows how far each voter has come.
    fn quorum_state(&self) -> Option<QuorumState> {
        if !self.node.is_leader() {
            return None;
        }
        let st: NodeStatus = self.node.status();
        let now = Instant::now();
        let wall =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let voters = self
            .s
            .voters
            .iter()
            .map(|(id, _)| {
                let log_end = st.matched.iter().find(|(r, _)| *r == raft_id(*id)).map_or(0, |(_, m)| *m);
                let log_end = if *id == self.s.node { st.last_index } else { log_end };
                let last_fetch_ms = if *id == self.s.node {
                    wall
                } else {
                    self.last_seen.get(id).map_or(-1, |t| wall - now.duration_since(*t).as_millis() as i64)
                };
                let caught_up = log_end >= st.commit;
                VoterState {
                    id: *id,
                    log_end,
                    last_fetch_ms,
                    last_caught_up_ms: if caught_up { last_fetch_ms } else { -1 },
                }
            })
            .collect();
        Some(QuorumState { leader: self.s.node, term: st.term, high_watermark: st.commit, voters })
    }

    fn registered(&self) -> bool {
        self.node.state().image.brokers.get(&self.s.node).is_some_and(|b| b.incarnation == self.incarnation)
    }

    fn on_heartbeat(&mut self, id: i32, incarnation: uuid::Uuid, host: String, port: u16, rack: Option<String>) {
        self.last_seen.insert(id, Instant::now());
        let current = self.node.state().image.brokers.get(&id).cloned();
        match current {
            Some(b) if b.incarnation == incarnation && b.host == host && b.port == port && b.rack == rack => {
                if b.fenced {
                    tracing::info!(broker = id, "controller: unfencing a broker heard from again");
                    self.propose_once((id, "unfence"), Record::UnfenceBroker { id, incarnation });
                }
            }
            _ => {
                tracing::info!(broker = id, %host, port, "controller: registering a broker");
                self.propose_once((id, "register"), Record::RegisterBroker { id, incarnation, host, port, rack });
            }
        }
    }

    fn propose_once(&mut self, key: (i32, &'static str), record: Record) {
        let now = Instant::now();
        if self.pending.get(&key).is_some_and(|t| now.duration_since(*t) < RETRY) {
            return;
        }
        match self.node.propose(record.encode()) {
            Ok(_) => {
                self.pending.insert(key, now);
            }
            Err(e) => tracing::debug!(%e, ?record, "controller: proposal not taken"),
        }
    }
}
