//! The group coordinator for classic consumer groups (JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch).
//!
//! Each group lives on one shard, `owner(group_id)`: a stable hash of the
//! id, so every connection's shard sends a group's requests to the same
//! place (`invoke_on`). Requests and answers cross shards as the plain
//! owned types below. On the owner, groups and their committed offsets sit
//! in thread-locals; a borrow is never held across an `.await`. Each group
//! with something pending (a rebalance, session deadlines) has one timer
//! task that sleeps until the group's nearest deadline, or until it is
//! nudged because a deadline moved closer.

pub mod group;
pub mod offsets;

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;

use group::{Group, Reply, Settings};
pub use group::{JoinRequest, JoinResponse, SyncRequest, SyncResponse, NONE};
pub use offsets::CommittedOffset;
use offsets::{MemoryOffsetStore, OffsetStore};

use crate::shard::{self, invoke_on};
use crate::topics::TopicPartition;

thread_local! {
    static GROUPS: RefCell<HashMap<String, Group>> = RefCell::new(HashMap::new());
    static OFFSETS: RefCell<MemoryOffsetStore> = RefCell::new(MemoryOffsetStore::default());
}

/// 64-bit FNV-1a: stable across runs and builds, unlike std's hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The shard that coordinates `group_id` among `shards`.
pub fn owner_of(group_id: &str, shards: usize) -> usize {
    (fnv1a(group_id.as_bytes()) % shards.max(1) as u64) as usize
}

/// The shard that coordinates `group_id`.
pub fn owner(group_id: &str) -> usize {
    owner_of(group_id, shard::current().router.shards())
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
        let now = Instant::now();
        let checked = with_group(&req.group_id, |g| {
            g.validate_commit(req.generation_id, &req.member_id, req.group_instance_id.as_deref(), now)
        });
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
        persist_commits(&req.group_id, &offsets).await?;
        OFFSETS.with(|o| o.borrow_mut().commit(&req.group_id, offsets));
        Ok(())
    })
    .await
}

/// Makes commits durable before they are applied: nothing to do while
/// offsets are kept in memory. See `offsets` for the plan.
async fn persist_commits(_group: &str, _offsets: &[(TopicPartition, CommittedOffset)]) -> Result<(), i16> {
    Ok(())
}

/// Partitions asked for, by topic.
pub type TopicPartitions = Vec<(String, Vec<i32>)>;

/// Committed offsets by topic: (partition, offset if committed).
pub type FetchedOffsets = Vec<(String, Vec<(i32, Option<CommittedOffset>)>)>;

/// OffsetFetch for one group; `None` topics means every committed
/// partition of the group.
pub async fn fetch_offsets(group_id: String, topics: Option<TopicPartitions>) -> Result<FetchedOffsets, i16> {
    invoke_on(owner(&group_id), move || async move {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_is_stable_and_in_range() {
        // Fixed values: a group must map to the same shard in every build.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        for shards in 1..8 {
            for g in ["", "g", "my-consumer-group", "spark-kafka-source-1"] {
                let o = owner_of(g, shards);
                assert!(o < shards);
                assert_eq!(o, owner_of(g, shards));
            }
        }
        assert_eq!(owner_of("x", 0), 0);
    }
}
