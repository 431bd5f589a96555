//! The group coordinator for classic consumer groups (JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup), committed offsets (OffsetCommit, OffsetFetch,
//! OffsetDelete) and group administration (DescribeGroups, ListGroups,
//! DeleteGroups).
//!
//! Each group lives on one shard, `owner(group_id)`: the shard that owns
//! the group's partition of `__consumer_offsets` (see `persist`), so every
//! connection's shard sends a group's requests to the same place
//! (`invoke_on`) and its commits are local appends. Requests and answers cross shards as the plain
//! owned types below. On the owner, groups and their committed offsets sit
//! in thread-locals; a borrow is never held across an `.await`. Each group
//! with something pending (a rebalance, session deadlines) has one timer
//! task that sleeps until the group's nearest deadline, or until it is
//! nudged because a deadline moved closer.

pub mod consumer;
pub mod group;
pub mod offsets;
pub mod persist;
pub mod records;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;

use consumer::{ConsumerGroup, ConsumerSettings};
pub use consumer::{HeartbeatRequest, HeartbeatResponse};
use group::{Group, Reply, Settings};
pub use group::{GroupView, JoinRequest, JoinResponse, SyncRequest, SyncResponse, NONE};
pub use offsets::CommittedOffset;
use offsets::OffsetMap;

use crate::shard::{self, invoke_on};
use crate::topics::{TopicPartition, OFFSETS_TOPIC};

thread_local! {
    static GROUPS: RefCell<HashMap<String, Group>> = RefCell::new(HashMap::new());
    /// Groups of the new protocol (KIP-848); an id is in one map or the other.
    static CONSUMER_GROUPS: RefCell<HashMap<String, ConsumerGroup>> = RefCell::new(HashMap::new());
    /// Whether this shard's consumer-group session sweeper runs.
    static SWEEPING: Cell<bool> = const { Cell::new(false) };
    static OFFSETS: RefCell<OffsetMap> = RefCell::new(OffsetMap::default());
    /// Offsets partitions this shard has replayed, with the leader epoch
    /// it replayed them in: a new leadership replays again.
    static LOADED: RefCell<HashMap<TopicPartition, i32>> = RefCell::new(HashMap::new());
    /// Offsets partitions being replayed.
    static LOADING: RefCell<std::collections::HashSet<TopicPartition>> = RefCell::new(Default::default());
}

/// The shard that coordinates `group_id`.
pub fn owner(group_id: &str) -> usize {
    persist::group_partition(group_id).and_then(|(_, shard)| shard).unwrap_or(0)
}

/// Replays this shard's partitions of `__consumer_offsets` that it leads
/// now, before the shard serves groups. A replicated partition whose Raft
/// group has no leader yet is replayed when it first leads (`unavailable`).
pub async fn load_owned() -> Result<(), String> {
    let shard = shard::current();
    let table = shard.topics();
    let Some(meta) = table.get(OFFSETS_TOPIC) else { return Ok(()) };
    let started = Instant::now();
    let mut records = 0;
    for (i, p) in meta.partitions.iter().enumerate() {
        if p.shard == Some(shard.id) {
            records += load_partition(TopicPartition::new(OFFSETS_TOPIC, i as i32)).await?;
        }
    }
    if records > 0 {
        let groups = OFFSETS.with(|o| o.borrow().group_ids().count());
        tracing::info!(records, groups, ms = started.elapsed().as_millis() as u64, "committed offsets loaded");
    }
    Ok(())
}

/// Replays one partition of `__consumer_offsets` that this shard leads,
/// after dropping what it held of that partition's groups from an earlier
/// leadership (another coordinator has served them since). Its groups
/// answer COORDINATOR_LOAD_IN_PROGRESS until it is done. Returns the
/// records read (0 when it does not lead the partition, or is loading it).
async fn load_partition(tp: TopicPartition) -> Result<usize, String> {
    let Some(part) = shard::current().partition(&tp) else { return Ok(0) };
    let Some(epoch) = part.settled_leader() else { return Ok(0) };
    if !LOADING.with(|l| l.borrow_mut().insert(tp.clone())) {
        return Ok(0);
    }
    forget_partition(&tp);
    let apply = |group: &str, tp: TopicPartition, o: Option<CommittedOffset>| {
        OFFSETS.with(|m| match o {
            Some(o) => m.borrow_mut().commit(group, vec![(tp, o)]),
            None => m.borrow_mut().delete(group, &tp),
        })
    };
    let r = persist::replay(part, apply).await;
    LOADING.with(|l| l.borrow_mut().remove(&tp));
    if r.is_ok() {
        LOADED.with(|l| l.borrow_mut().insert(tp.clone(), epoch));
    }
    r.map_err(|e| format!("{}-{}: {e}", tp.topic, tp.partition))
}

/// Drops the groups (members and offsets) this shard holds whose records
/// go to `tp`.
fn forget_partition(tp: &TopicPartition) {
    let Some(n) = shard::current().topics().get(OFFSETS_TOPIC).map(|m| m.partitions.len()) else { return };
    let ours = |id: &str| persist::partition_for(id, n) == tp.partition;
    GROUPS.with(|g| g.borrow_mut().retain(|id, _| !ours(id)));
    CONSUMER_GROUPS.with(|g| g.borrow_mut().retain(|id, _| !ours(id)));
    OFFSETS.with(|o| o.borrow_mut().retain_groups(|id| !ours(id)));
}

/// Whether this shard coordinates the groups of offsets partition `tp`
/// now: it leads the partition and has replayed it in this leadership.
/// Kafka's answers otherwise: NOT_COORDINATOR sends the client back to
/// FindCoordinator, COORDINATOR_LOAD_IN_PROGRESS has it retry here.
fn coordinates(tp: &TopicPartition) -> Result<(), ResponseError> {
    let Some(part) = shard::current().partition(tp) else { return Err(ResponseError::NotCoordinator) };
    if !part.leading.get() {
        return Err(ResponseError::NotCoordinator);
    }
    match part.settled_leader() {
        Some(epoch) if LOADED.with(|l| l.borrow().get(tp) == Some(&epoch)) => Ok(()),
        _ => Err(ResponseError::CoordinatorLoadInProgress),
    }
}

/// Why this shard cannot coordinate `group_id` now, if it cannot: in a
/// cluster another broker may hold the group's offsets partition, or
/// `__consumer_offsets` may not exist yet. A partition this shard has come
/// to lead is replayed from here, on the first ask.
fn unavailable(group_id: &str) -> Option<ResponseError> {
    let (tp, shard_of) = match persist::group_partition(group_id) {
        None => return Some(ResponseError::CoordinatorNotAvailable),
        Some(found) => found,
    };
    if shard_of != Some(shard::current().id) {
        return Some(ResponseError::NotCoordinator);
    }
    let e = coordinates(&tp).err()?;
    // `load_partition` does nothing while the partition is loading or its
    // leadership is not settled yet.
    if e == ResponseError::CoordinatorLoadInProgress {
        glommio::spawn_local(async move {
            if let Err(e) = load_partition(tp).await {
                tracing::error!(%e, "loading committed offsets failed");
            }
        })
        .detach();
    }
    Some(e)
}

/// COORDINATOR_LOAD_IN_PROGRESS while this shard replays an offsets
/// partition (ListGroups would otherwise miss its groups).
fn loading() -> Option<i16> {
    let busy = LOADING.with(|l| !l.borrow().is_empty());
    busy.then(|| code(ResponseError::CoordinatorLoadInProgress))
}

/// Whether this shard coordinates `group_id` now (ListGroups shows it).
fn listed_here(group_id: &str) -> bool {
    persist::group_partition(group_id).is_some_and(|(tp, s)| s == Some(shard::current().id) && coordinates(&tp).is_ok())
}

fn settings() -> Settings {
    let c = &shard::current().config;
    Settings {
        initial_rebalance_delay: c.group_initial_rebalance_delay,
        min_session_timeout_ms: c.group_min_session_timeout_ms,
        max_session_timeout_ms: c.group_max_session_timeout_ms,
    }
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

/// Runs `f` on the group, if it exists, then makes sure its timer is
/// armed for whatever deadline `f` left.
fn with_group<R>(group_id: &str, f: impl FnOnce(&mut Group) -> R) -> Option<R> {
    let r = GROUPS.with(|g| g.borrow_mut().get_mut(group_id).map(f))?;
    arm_timer(group_id);
    Some(r)
}

/// Wakes the group's timer task, or starts one when the group has a
/// deadline and no task serves it.
fn arm_timer(group_id: &str) {
    let start = GROUPS.with(|g| {
        let mut groups = g.borrow_mut();
        let group = groups.get_mut(group_id)?;
        if let Some(wake) = &group.timer {
            let _ = wake.try_send(());
            None
        } else if group.next_deadline().is_some() {
            let (tx, rx) = flume::bounded(1);
            group.timer = Some(tx);
            Some(rx)
        } else {
            None
        }
    });
    // Spawned outside the borrow: glommio may start polling the task at once.
    if let Some(rx) = start {
        glommio::spawn_local(timer_task(group_id.to_string(), rx)).detach();
    }
}

/// Sleeps until the group's nearest deadline (or a nudge), then lets the
/// group act on what has passed. Ends when the group has no deadline.
async fn timer_task(group_id: String, wake: flume::Receiver<()>) {
    loop {
        let next = GROUPS.with(|g| {
            let mut groups = g.borrow_mut();
            let group = groups.get_mut(&group_id)?;
            let next = group.next_deadline();
            if next.is_none() {
                group.timer = None;
            }
            next
        });
        let Some(deadline) = next else { return };
        // At least 1 ms: a deadline that failed to clear must not spin.
        let wait = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        futures_lite::future::or(glommio::timer::sleep(wait), async {
            let _ = wake.recv_async().await;
        })
        .await;
        GROUPS.with(|g| {
            if let Some(group) = g.borrow_mut().get_mut(&group_id) {
                group.on_timer(Instant::now());
            }
        });
    }
}

async fn answer<T>(reply: Reply<T>, gone: impl FnOnce() -> T) -> T {
    match reply {
        Reply::Now(v) => v,
        Reply::Wait(rx) => rx.recv_async().await.unwrap_or_else(|_| gone()),
    }
}

// ----- JoinGroup / SyncGroup / Heartbeat / LeaveGroup -----

pub async fn join(req: JoinRequest) -> JoinResponse {
    invoke_on(owner(&req.group_id), move || join_here(req)).await
}

async fn join_here(req: JoinRequest) -> JoinResponse {
    let s = settings();
    if req.group_id.is_empty() {
        return JoinResponse::error(ResponseError::InvalidGroupId, &req.member_id);
    }
    if let Some(e) = unavailable(&req.group_id) {
        return JoinResponse::error(e, &req.member_id);
    }
    if CONSUMER_GROUPS.with(|g| g.borrow().get(&req.group_id).is_some_and(|g| !g.is_empty())) {
        return JoinResponse::error(ResponseError::InconsistentGroupProtocol, &req.member_id);
    }
    if req.session_timeout_ms < s.min_session_timeout_ms || req.session_timeout_ms > s.max_session_timeout_ms {
        return JoinResponse::error(ResponseError::InvalidSessionTimeout, &req.member_id);
    }
    let group_id = req.group_id.clone();
    let member_id = req.member_id.clone();
    let reply = GROUPS.with(|g| {
        let mut groups = g.borrow_mut();
        if !groups.contains_key(&group_id) {
            if !member_id.is_empty() {
                return Reply::Now(JoinResponse::error(ResponseError::UnknownMemberId, &member_id));
            }
            groups.insert(group_id.clone(), Group::new(group_id.clone(), s));
        }
        let group = groups.get_mut(&group_id).expect("inserted above");
        group.join(req, Instant::now())
    });
    arm_timer(&group_id);
    answer(reply, || JoinResponse::error(ResponseError::CoordinatorNotAvailable, &member_id)).await
}

pub async fn sync(req: SyncRequest) -> SyncResponse {
    invoke_on(owner(&req.group_id), move || async move {
        if req.group_id.is_empty() {
            return SyncResponse::error(ResponseError::InvalidGroupId);
        }
        if let Some(e) = unavailable(&req.group_id) {
            return SyncResponse::error(e);
        }
        let group_id = req.group_id.clone();
        let reply = with_group(&group_id, |g| g.sync(req, Instant::now()))
            .unwrap_or(Reply::Now(SyncResponse::error(ResponseError::UnknownMemberId)));
        answer(reply, || SyncResponse::error(ResponseError::CoordinatorNotAvailable)).await
    })
    .await
}

pub async fn heartbeat(group_id: String, generation: i32, member_id: String, instance: Option<String>) -> i16 {
    invoke_on(owner(&group_id), move || async move {
        if group_id.is_empty() {
            return code(ResponseError::InvalidGroupId);
        }
        if let Some(e) = unavailable(&group_id).map(code) {
            return e;
        }
        with_group(&group_id, |g| g.heartbeat(generation, &member_id, instance.as_deref(), Instant::now()))
            .unwrap_or(code(ResponseError::UnknownMemberId))
    })
    .await
}

/// LeaveGroup: the group-level error and one error per leaving member.
pub async fn leave(group_id: String, members: Vec<(String, Option<String>)>) -> (i16, Vec<i16>) {
    invoke_on(owner(&group_id), move || async move {
        if group_id.is_empty() {
            return (code(ResponseError::InvalidGroupId), Vec::new());
        }
        if let Some(e) = unavailable(&group_id).map(code) {
            return (e, Vec::new());
        }
        match with_group(&group_id, |g| g.leave(&members, Instant::now())) {
            Some(errors) => (NONE, errors),
            None => (NONE, vec![code(ResponseError::UnknownMemberId); members.len()]),
        }
    })
    .await
}

// ----- OffsetCommit / OffsetFetch -----

pub struct CommitRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// (topic, partition, offset, leader epoch, metadata); the caller has
    /// checked that the partitions exist.
    pub offsets: Vec<(String, i32, i64, i32, String)>,
}

/// OffsetCommit for one group: `Err` is the error for every partition.
pub async fn commit_offsets(req: CommitRequest) -> Result<(), i16> {
    invoke_on(owner(&req.group_id), move || async move {
        if let Some(e) = unavailable(&req.group_id).map(code) {
            return Err(e);
        }
        let now = Instant::now();
        let consumer = CONSUMER_GROUPS
            .with(|g| g.borrow().get(&req.group_id).map(|g| g.validate_commit(&req.member_id, req.generation_id)));
        let checked = if consumer.is_some() {
            consumer
        } else {
            with_group(&req.group_id, |g| {
                g.validate_commit(req.generation_id, &req.member_id, req.group_instance_id.as_deref(), now)
            })
        };
        match checked {
            Some(r) => r?,
            // No such group: only commits outside group management (Kafka
            // creates an empty "simple" group for them; no state is needed).
            None if req.generation_id >= 0 => return Err(code(ResponseError::IllegalGeneration)),
            None if !req.member_id.is_empty() || req.group_instance_id.is_some() => {
                return Err(code(ResponseError::UnknownMemberId))
            }
            None => {}
        }
        let ts = sluice_storage::log::now_ms();
        let offsets: Vec<(TopicPartition, CommittedOffset)> = req
            .offsets
            .into_iter()
            .map(|(topic, partition, offset, leader_epoch, metadata)| {
                (
                    TopicPartition::new(&topic, partition),
                    CommittedOffset { offset, leader_epoch, metadata, commit_timestamp_ms: ts },
                )
            })
            .collect();
        let entries = offsets.iter().map(|(tp, o)| persist::commit_entry(&req.group_id, tp, o)).collect();
        persist::append(&req.group_id, entries).await?;
        OFFSETS.with(|o| o.borrow_mut().commit(&req.group_id, offsets));
        Ok(())
    })
    .await
}

/// Partitions asked for, by topic.
pub type TopicPartitions = Vec<(String, Vec<i32>)>;

/// Committed offsets by topic: (partition, offset if committed).
pub type FetchedOffsets = Vec<(String, Vec<(i32, Option<CommittedOffset>)>)>;

/// OffsetFetch for one group; `None` topics means every committed
/// partition of the group.
pub async fn fetch_offsets(group_id: String, topics: Option<TopicPartitions>) -> Result<FetchedOffsets, i16> {
    invoke_on(owner(&group_id), move || async move {
        if let Some(e) = unavailable(&group_id).map(code) {
            return Err(e);
        }
        OFFSETS.with(|o| {
            let store = o.borrow();
            Ok(match topics {
                Some(topics) => topics
                    .into_iter()
                    .map(|(topic, partitions)| {
                        let found = partitions
                            .into_iter()
                            .map(|p| (p, store.fetch(&group_id, &TopicPartition::new(&topic, p))))
                            .collect();
                        (topic, found)
                    })
                    .collect(),
                None => {
                    let mut out: FetchedOffsets = Vec::new();
                    for (tp, o) in store.fetch_all(&group_id) {
                        match out.last_mut() {
                            Some((t, ps)) if t.as_str() == &*tp.topic => ps.push((tp.partition, Some(o))),
                            _ => out.push((tp.topic.to_string(), vec![(tp.partition, Some(o))])),
                        }
                    }
                    out
                }
            })
        })
    })
    .await
}

// ----- DescribeGroups / ListGroups / DeleteGroups / OffsetDelete -----

/// Runs `f` for each id on the shard that coordinates it, several ids per
/// shard in one hop; answers come back in the order asked.
async fn per_group<T, F, Fut>(ids: Vec<String>, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(String) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
{
    let mut by_owner: BTreeMap<usize, Vec<(usize, String)>> = BTreeMap::new();
    for (i, id) in ids.into_iter().enumerate() {
        by_owner.entry(owner(&id)).or_default().push((i, id));
    }
    let calls = by_owner.into_iter().map(|(shard, work)| {
        let f = f.clone();
        invoke_on(shard, move || async move {
            let mut out = Vec::with_capacity(work.len());
            for (i, id) in work {
                out.push((i, f(id).await));
            }
            out
        })
    });
    let mut all: Vec<(usize, T)> = crate::handlers::join_all(calls.collect()).await.into_iter().flatten().collect();
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, t)| t).collect()
}

/// Why DescribeGroups or ConsumerGroupDescribe describes no group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotDescribed {
    /// An error code (the coordinator is still loading).
    Error(i16),
    /// No group of that id.
    Unknown,
    /// A group of the other protocol, which the other API describes.
    OtherType,
}

/// DescribeGroups: the classic group as Kafka shows it.
pub async fn describe_groups(ids: Vec<String>) -> Vec<(String, Result<GroupView, NotDescribed>)> {
    per_group(ids, |id| async move {
        if let Some(e) = unavailable(&id).map(code) {
            return (id, Err(NotDescribed::Error(e)));
        }
        if CONSUMER_GROUPS.with(|g| g.borrow().contains_key(&id)) {
            return (id, Err(NotDescribed::OtherType));
        }
        if let Some(view) = GROUPS.with(|g| g.borrow().get(&id).map(Group::describe)) {
            return (id, Ok(view));
        }
        // Offsets without members: Kafka's "simple" group, Empty.
        if OFFSETS.with(|o| o.borrow().has_group(&id)) {
            return (id, Ok(GroupView { state: "Empty", ..GroupView::default() }));
        }
        (id, Err(NotDescribed::Unknown))
    })
    .await
}

/// A group as ListGroups shows it.
#[derive(Clone, Debug)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    pub state: &'static str,
    /// KIP-848's group type: "classic" or "consumer".
    pub group_type: &'static str,
}

/// ListGroups over every shard; a group passes when its state is in
/// `states` and its type in `types` (case-insensitive; empty: any).
pub async fn list_groups(states: Vec<String>, types: Vec<String>) -> Result<Vec<ListedGroup>, i16> {
    let shards = shard::current().router.shards();
    let calls = (0..shards).map(|s| {
        invoke_on(s, || async {
            if let Some(e) = loading() {
                return Err(e);
            }
            let mut out: Vec<ListedGroup> = GROUPS.with(|g| {
                g.borrow()
                    .values()
                    .filter(|g| listed_here(&g.id))
                    .map(|g| ListedGroup {
                        group_id: g.id.clone(),
                        protocol_type: g.protocol_type().to_string(),
                        state: g.state_name(),
                        group_type: "classic",
                    })
                    .collect()
            });
            CONSUMER_GROUPS.with(|g| {
                out.extend(g.borrow().values().filter(|g| listed_here(&g.id)).map(|g| ListedGroup {
                    group_id: g.id.clone(),
                    protocol_type: "consumer".into(),
                    state: g.state_name(),
                    group_type: "consumer",
                }))
            });
            // Groups with offsets but no membership state: Kafka's "simple" groups.
            let known: std::collections::HashSet<String> = out.iter().map(|g| g.group_id.clone()).collect();
            OFFSETS.with(|o| {
                for id in o.borrow().group_ids() {
                    if !known.contains(id) && listed_here(id) {
                        let simple = ListedGroup {
                            group_id: id.clone(),
                            protocol_type: String::new(),
                            state: "Empty",
                            group_type: "classic",
                        };
                        out.push(simple);
                    }
                }
            });
            Ok(out)
        })
    });
    let mut all = Vec::new();
    for r in crate::handlers::join_all(calls.collect()).await {
        all.extend(r?);
    }
    let wanted = |list: &[String], v: &str| list.is_empty() || list.iter().any(|s| s.eq_ignore_ascii_case(v));
    all.retain(|g| wanted(&states, g.state) && wanted(&types, g.group_type));
    all.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    Ok(all)
}

/// DeleteGroups: an error code per group, in request order.
pub async fn delete_groups(ids: Vec<String>) -> Vec<(String, i16)> {
    per_group(ids, |id| async move {
        if let Some(e) = unavailable(&id).map(code) {
            return (id, e);
        }
        if id.is_empty() {
            return (id, code(ResponseError::InvalidGroupId));
        }
        let members = GROUPS.with(|g| g.borrow().get(&id).map(|g| !g.is_empty()));
        let members = members.or_else(|| CONSUMER_GROUPS.with(|g| g.borrow().get(&id).map(|g| !g.is_empty())));
        if members == Some(true) {
            return (id, code(ResponseError::NonEmptyGroup));
        }
        let committed: Vec<TopicPartition> =
            OFFSETS.with(|o| o.borrow().fetch_all(&id).into_iter().map(|(tp, _)| tp).collect());
        if members.is_none() && committed.is_empty() {
            return (id, code(ResponseError::GroupIdNotFound));
        }
        let entries = committed.iter().map(|tp| persist::tombstone(&id, tp)).collect();
        if let Err(e) = persist::append(&id, entries).await {
            return (id, e);
        }
        // A member may have joined while the tombstones were written.
        let now_empty = GROUPS.with(|g| g.borrow().get(&id).is_none_or(Group::is_empty))
            && CONSUMER_GROUPS.with(|g| g.borrow().get(&id).is_none_or(ConsumerGroup::is_empty));
        if now_empty {
            GROUPS.with(|g| g.borrow_mut().remove(&id));
            CONSUMER_GROUPS.with(|g| g.borrow_mut().remove(&id));
        }
        OFFSETS.with(|o| o.borrow_mut().remove_group(&id));
        (id, NONE)
    })
    .await
}

/// OffsetDelete for one group: a group-level error, or an error per
/// (topic, partition) in request order. A group with members keeps the
/// offsets of topics it subscribes to (GROUP_SUBSCRIBED_TO_TOPIC).
pub async fn delete_offsets(group_id: String, partitions: Vec<TopicPartition>) -> Result<Vec<i16>, i16> {
    invoke_on(owner(&group_id), move || async move {
        if let Some(e) = unavailable(&group_id).map(code) {
            return Err(e);
        }
        let subscribed =
            GROUPS.with(|g| g.borrow().get(&group_id).filter(|g| !g.is_empty()).map(|g| g.subscribed_topics()));
        let known = subscribed.is_some() || OFFSETS.with(|o| o.borrow().has_group(&group_id));
        if !known {
            return Err(code(ResponseError::GroupIdNotFound));
        }
        let subscribed = match subscribed {
            None => None,
            Some(Some(topics)) => Some(topics),
            // Members whose subscriptions cannot be read: nothing is safe.
            Some(None) => return Err(code(ResponseError::NonEmptyGroup)),
        };
        let errors: Vec<i16> = partitions
            .iter()
            .map(|tp| match &subscribed {
                Some(topics) if topics.contains(&*tp.topic) => code(ResponseError::GroupSubscribedToTopic),
                _ => NONE,
            })
            .collect();
        let doomed: Vec<&TopicPartition> = partitions
            .iter()
            .zip(&errors)
            .filter(|(tp, e)| **e == NONE && OFFSETS.with(|o| o.borrow().fetch(&group_id, tp).is_some()))
            .map(|(tp, _)| tp)
            .collect();
        let entries = doomed.iter().map(|tp| persist::tombstone(&group_id, tp)).collect();
        persist::append(&group_id, entries).await?;
        OFFSETS.with(|o| {
            for tp in doomed {
                o.borrow_mut().delete(&group_id, tp);
            }
        });
        Ok(errors)
    })
    .await
}

// ----- ConsumerGroupHeartbeat / ConsumerGroupDescribe (KIP-848) -----

fn consumer_settings() -> ConsumerSettings {
    let c = &shard::current().config;
    ConsumerSettings {
        session_timeout: Duration::from_millis(c.group_consumer_session_timeout_ms),
        heartbeat_interval_ms: c.group_consumer_heartbeat_interval_ms,
    }
}

/// Partition counts of the topics consumers may subscribe to.
pub fn topic_counts() -> BTreeMap<String, i32> {
    let table = shard::current().topics();
    table.topics.values().filter(|t| !t.internal).map(|t| (t.name.clone(), t.partitions.len() as i32)).collect()
}

pub async fn consumer_heartbeat(req: HeartbeatRequest) -> HeartbeatResponse {
    invoke_on(owner(&req.group_id), move || async move {
        let (member, epoch) = (req.member_id.clone(), req.member_epoch);
        if req.group_id.is_empty() {
            return HeartbeatResponse::error(ResponseError::InvalidGroupId, "empty group id", &member, epoch);
        }
        if let Some(e) = unavailable(&req.group_id) {
            return HeartbeatResponse::error(e, "the coordinator is not available here", &member, epoch);
        }
        if GROUPS.with(|g| g.borrow().get(&req.group_id).is_some_and(|g| !g.is_empty())) {
            let why = format!("Group {} is not a consumer group.", req.group_id);
            return HeartbeatResponse::error(ResponseError::GroupIdNotFound, &why, &member, epoch);
        }
        let topics = topic_counts();
        let s = consumer_settings();
        let r = CONSUMER_GROUPS.with(|g| {
            let mut groups = g.borrow_mut();
            let group = groups.entry(req.group_id.clone()).or_insert_with(|| ConsumerGroup::new(req.group_id.clone()));
            group.heartbeat(req, &topics, s, Instant::now())
        });
        start_sweeper();
        r
    })
    .await
}

/// Removes consumer-group members whose session or revocation deadline
/// passed; one task per shard, started by the first heartbeat.
fn start_sweeper() {
    if SWEEPING.with(|s| s.replace(true)) {
        return;
    }
    glommio::spawn_local(async {
        loop {
            let period =
                (consumer_settings().session_timeout / 10).clamp(Duration::from_millis(50), Duration::from_secs(1));
            glommio::timer::sleep(period).await;
            let now = Instant::now();
            CONSUMER_GROUPS.with(|g| {
                for group in g.borrow_mut().values_mut() {
                    for id in group.expired(now) {
                        tracing::debug!(group = %group.id, member = %id, "consumer group member expired");
                        group.remove(&id);
                    }
                }
            });
        }
    })
    .detach();
}

/// A consumer group as ConsumerGroupDescribe shows it.
pub struct ConsumerGroupView {
    pub state: &'static str,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: Vec<(consumer::Member, consumer::Assignment)>,
}

pub async fn consumer_describe(ids: Vec<String>) -> Vec<(String, Result<ConsumerGroupView, NotDescribed>)> {
    per_group(ids, |id| async move {
        if let Some(e) = unavailable(&id).map(code) {
            return (id, Err(NotDescribed::Error(e)));
        }
        let view = CONSUMER_GROUPS.with(|g| {
            g.borrow().get(&id).map(|g| ConsumerGroupView {
                state: g.state_name(),
                group_epoch: g.group_epoch,
                assignment_epoch: g.assignment_epoch,
                members: g
                    .members
                    .values()
                    .map(|m| (m.clone(), g.target.get(&m.id).cloned().unwrap_or_default()))
                    .collect(),
            })
        });
        match view {
            Some(v) => (id, Ok(v)),
            None if GROUPS.with(|g| g.borrow().contains_key(&id)) || OFFSETS.with(|o| o.borrow().has_group(&id)) => {
                (id, Err(NotDescribed::OtherType))
            }
            None => (id, Err(NotDescribed::Unknown)),
        }
    })
    .await
}
