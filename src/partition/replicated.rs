//! The task of a partition with more than one replica: its log is the log
//! of its Raft group (`sluice_consensus::replica`), on this shard. The
//! leader proposes the producer's batches and answers `acks=all` once they
//! are committed (a quorum has them durable), `acks=1` once they are in
//! its own log; consumers read up to the high watermark, the end of what
//! is committed. Followers answer NOT_LEADER_OR_FOLLOWER. The leader
//! reports its leadership and ISR to the controller, so that every broker's
//! metadata names it (docs/replication.md, step 2).
//!
//! Every replica applies retention and compaction to what it has applied
//! (compaction keeps one batch per entry, emptied if need be); a follower
//! behind the leader's log start is sent where it starts (a Raft snapshot
//! with no data) and starts its log there. DeleteRecords is an entry of
//! the log: every replica moves its start when it is committed.

use std::rc::{Rc, Weak};
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use sluice_consensus::replica::Replica;
use sluice_storage::batch::{self, BatchHeader, HEADER_LEN};
use sluice_storage::producer::SeqCheck;
use sluice_storage::FileSlice;

use super::{storage_error, Cmd, Offsets, Partition, PartitionError, ProduceOutcome};
use crate::cluster::controller::raft_id;
use crate::shard;
use crate::topics::{TopicMeta, TopicPartition};

/// Raft's clock for partitions, as the controller's: elections after 1–2 s
/// without a leader, heartbeats every 200 ms.
const TICK: Duration = Duration::from_millis(100);
/// Entries whose bytes stay in memory for followers that are close behind.
const WINDOW: usize = 1024;

/// (term, ISR) as reported to the controller.
type Leadership = (u64, Vec<u64>);

/// A DeleteRecords waiting for its entry to apply on the leader.
struct Deleting {
    index: u64,
    term: u64,
    reply: flume::Sender<Result<i64, PartitionError>>,
}

struct Pending {
    first: u64,
    last: u64,
    /// The term the batches were proposed in: if the entry at `last` has
    /// another term, a later leader replaced them and they are not ours.
    term: u64,
    acks: i16,
    reply: flume::Sender<Result<ProduceOutcome, PartitionError>>,
}

pub(super) async fn open(tp: TopicPartition, meta: &TopicMeta) -> Result<Rc<Partition>, String> {
    let shard = shard::current();
    let config = shard.config.log_config(&meta.configs);
    let dir = tp.dir(&shard.config.data_dir);
    let p = &meta.partitions[tp.partition as usize];
    let first = if p.origin.is_empty() { &p.replicas } else { &p.origin };
    let voters: Vec<u64> = first.iter().map(|r| raft_id(*r)).collect();
    let replica = Replica::open(raft_id(shard.config.node_id), &voters, &dir, config, WINDOW)
        .await
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let offsets = Rc::new(Offsets::default());
    update(&offsets, &replica);
    let (tx, rx) = flume::unbounded();
    let part = Rc::new(Partition {
        leader_epoch: std::cell::Cell::new(replica.term() as i32),
        leading: std::cell::Cell::new(false),
        tx: tx.clone(),
        offsets,
        waiters: Default::default(),
    });
    glommio::spawn_local(super::ticker(tx.clone(), TICK)).detach();
    let group = crate::cluster::group_id(meta.id, tp.partition);
    glommio::spawn_local(run(replica, rx, tx, Rc::downgrade(&part), group, tp, meta.id)).detach();
    Ok(part)
}

fn update(offsets: &Offsets, r: &Replica) {
    let log = r.log();
    offsets.log_start.set(log.log_start_offset());
    offsets.end.set(log.log_end_offset());
    offsets.high_watermark.set(r.high_watermark());
    offsets.size.set(log.size_bytes());
}

fn not_leader() -> PartitionError {
    (ResponseError::NotLeaderOrFollower, "this broker is not the partition's leader".into())
}

async fn run(
    mut r: Replica,
    rx: flume::Receiver<Cmd>,
    // Where a compaction pass reports back.
    me: flume::Sender<Cmd>,
    partition: Weak<Partition>,
    group: sluice_consensus::transport::GroupId,
    tp: TopicPartition,
    topic_id: uuid::Uuid,
) {
    let mut pending: Vec<Pending> = Vec::new();
    let mut deleting: Vec<Deleting> = Vec::new();
    let (cleaner_enabled, clean_every) = {
        let c = &shard::current().config;
        (c.cleaner_enable, (c.cleaner_backoff.as_millis() / TICK.as_millis()).max(1) as u64)
    };
    // Set while a compaction pass runs: the abort switch for it.
    let mut cleaning: Option<Rc<std::cell::Cell<bool>>> = None;
    // What the controller has taken, and whether a report is on its way:
    // one at a time, so that an older ISR never lands after a newer one.
    let reported: Rc<std::cell::RefCell<Option<Leadership>>> = Default::default();
    let reporting = Rc::new(std::cell::Cell::new(false));
    let node = shard::current().config.node_id;
    // `replica.lag.time.max.ms`: a follower that has not had the leader's
    // whole log for this long leaves the ISR.
    let lag = Duration::from_millis(shard::current().config.replica_lag_time_max_ms);
    let balancing = {
        let c = &shard::current().config;
        let every = (c.leader_imbalance_check_interval.as_millis() / TICK.as_millis()).max(1) as u64;
        c.auto_leader_rebalance_enable.then_some((every, c.leader_imbalance_per_broker_percentage))
    };
    let retention_every =
        (shard::current().config.retention_check_interval.as_millis() / TICK.as_millis()).max(1) as u64;
    let mut ticks: u64 = 0;
    let reassigning = Rc::new(std::cell::Cell::new(false));
    while let Ok(cmd) = rx.recv_async().await {
        match cmd {
            Cmd::Tick => {
                r.tick();
                ticks += 1;
                if ticks % REASSIGN_EVERY == 0 {
                    reassign(&mut r, &tp, topic_id, lag, &reassigning);
                }
                if ticks % retention_every == 0 {
                    match r.enforce_retention(sluice_storage::log::now_ms()).await {
                        Ok(true) => {
                            tracing::info!(partition = ?tp, start = r.log().log_start_offset(), "retention moved the log start")
                        }
                        Ok(false) => {}
                        Err(e) => tracing::error!(partition = ?tp, %e, "retention failed"),
                    }
                }
                if cleaner_enabled && cleaning.is_none() && ticks % clean_every == 0 {
                    cleaning = super::start_cleaning(|| r.plan_clean(sluice_storage::log::now_ms()), &me);
                }
                if let Some((_, percentage)) = balancing.filter(|(every, _)| ticks % every == 0) {
                    hand_back(&mut r, &tp, node, percentage, lag);
                }
            }
            Cmd::Raft(m) => r.step(m),
            Cmd::Append { batches, acks, reply } => {
                if !r.is_leader() {
                    let _ = reply.send(Err(not_leader()));
                    continue;
                }
                let mut range: Option<(u64, u64)> = None;
                let mut failed = None;
                let single = batches.len() == 1;
                for b in batches {
                    let h = match batch::validate(&b) {
                        Ok(h) => h,
                        Err(e) => {
                            failed = Some(Err(storage_error(e.into())));
                            break;
                        }
                    };
                    // Idempotent producers: the log's producer state has
                    // every batch proposed so far (the leader writes each
                    // before it takes the next command), so a retry is known
                    // here, on a new leader too. Only a produce of one batch
                    // per partition (what clients send) is checked.
                    if single {
                        match r.log().producers().check(&h) {
                            Ok(SeqCheck::Append) => {}
                            Ok(SeqCheck::Duplicate { first_offset, .. }) => {
                                let outcome = ProduceOutcome {
                                    base_offset: first_offset,
                                    log_append_time: -1,
                                    log_start_offset: 0,
                                };
                                failed = Some(Ok(outcome));
                                break;
                            }
                            Err(e) => {
                                failed = Some(Err(storage_error(e.into())));
                                break;
                            }
                        }
                    }
                    match r.propose(b) {
                        Ok(i) => range = Some((range.map_or(i, |(f, _)| f), i)),
                        Err(_) => {
                            failed = Some(Err(not_leader()));
                            break;
                        }
                    }
                }
                match (failed, range) {
                    (Some(answer), _) => {
                        let _ = reply.send(answer);
                    }
                    (None, Some((first, last))) => pending.push(Pending { first, last, term: r.term(), acks, reply }),
                    (None, None) => {
                        let _ = reply.send(Err((ResponseError::CorruptMessage, "no record batch".into())));
                    }
                }
            }
            Cmd::Read { offset, max_bytes, reply } => {
                if !r.is_leader() {
                    let _ = reply.send(Err(not_leader()));
                    continue;
                }
                let hw = r.high_watermark();
                match r.log().plan_read(offset, max_bytes) {
                    Ok(_) if offset >= hw => {
                        let _ = reply.send(Ok(None));
                    }
                    Ok(plan) => {
                        glommio::spawn_local(async move {
                            let _ = reply.send(below(plan.run().await.map_err(storage_error), hw).await);
                        })
                        .detach();
                    }
                    Err(e) => {
                        let _ = reply.send(Err(storage_error(e)));
                    }
                }
            }
            Cmd::ListOffset { timestamp, reply } => {
                let log = r.log();
                let found =
                    if timestamp == -3 { log.max_timestamp().await } else { log.offset_for_timestamp(timestamp).await };
                let hw = r.high_watermark();
                let _ = reply.send(found.map(|o| o.filter(|(off, _)| *off < hw)).map_err(storage_error));
            }
            Cmd::EpochEnd { epoch, reply } => {
                let _ = reply.send(r.log().epochs().end_offset_for(epoch, r.log().log_end_offset()));
            }
            Cmd::DeleteRecords { before, reply } => {
                if !r.is_leader() {
                    let _ = reply.send(Err(not_leader()));
                    continue;
                }
                // Kafka's rule: up to the high watermark (-1), never past it.
                let hw = r.high_watermark();
                let before = if before == -1 { hw } else { before };
                let start = r.log().log_start_offset();
                if before < 0 || before > hw {
                    let why = format!("offset {before} is outside [{start}, {hw}]");
                    let _ = reply.send(Err((ResponseError::OffsetOutOfRange, why)));
                } else if before <= start {
                    let _ = reply.send(Ok(start));
                } else {
                    match r.propose_delete_records(before) {
                        Ok(index) => deleting.push(Deleting { index, term: r.term(), reply }),
                        Err(_) => {
                            let _ = reply.send(Err(not_leader()));
                        }
                    }
                }
            }
            Cmd::SetConfig(config) => r.set_config(config),
            Cmd::Cleaned(result) => {
                cleaning = None;
                match result {
                    Ok(Some(outcome)) => {
                        let stats = outcome.stats.clone();
                        let dir = tp.dir(&shard::current().config.data_dir);
                        super::log_swap(&dir, &stats, r.finish_clean(outcome).await);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::error!(partition = ?tp, %e, "compaction failed"),
                }
            }
            Cmd::Flushed { .. } => {}
            Cmd::Close { delete, reply } => {
                if let Some(abort) = cleaning.take() {
                    abort.set(true);
                }
                for p in pending.drain(..) {
                    let _ = p.reply.send(Err(not_leader()));
                }
                for d in deleting.drain(..) {
                    let _ = d.reply.send(Err(not_leader()));
                }
                let dir = tp.dir(&shard::current().config.data_dir);
                let done = if delete { r.delete().await } else { r.close().await };
                if let Err(e) = done {
                    tracing::error!(dir = %dir.display(), %e, "closing a replicated partition failed");
                }
                let _ = reply.send(());
                return;
            }
        }
        match r.process().await {
            Ok(msgs) => {
                for m in msgs {
                    crate::cluster::send_group(group, m);
                }
            }
            Err(e) => {
                // The log could not be written: stop taking part rather
                // than vote or lead on a log this replica cannot keep.
                tracing::error!(partition = %format!("{}-{}", tp.topic, tp.partition), %e, "replica failed; stopping it");
                for p in pending.drain(..) {
                    let _ = p.reply.send(Err((ResponseError::KafkaStorageError, e.clone())));
                }
                return;
            }
        }
        let commit = r.commit_index();
        let leading = r.is_leader();
        pending.retain(|p| {
            let term = r.term_of(p.last);
            let done =
                term == Some(p.term) && if p.acks == -1 { commit >= p.last } else { r.offsets_of(p.last).is_some() };
            if done {
                let base = r.offsets_of(p.first).map_or(-1, |(b, _)| b);
                let outcome = ProduceOutcome { base_offset: base, log_append_time: -1, log_start_offset: 0 };
                let _ = p.reply.send(Ok(outcome));
            } else if !leading || term.is_some_and(|t| t != p.term) {
                // Its fate is the new leader's: the client retries there.
                let _ = p.reply.send(Err(not_leader()));
                return false;
            }
            !done
        });
        deleting.retain(|d| {
            let term = r.term_of(d.index);
            if term == Some(d.term) && r.applied() >= d.index {
                let _ = d.reply.send(Ok(r.log().log_start_offset()));
                false
            } else if !leading || term.is_some_and(|t| t != d.term) {
                let _ = d.reply.send(Err(not_leader()));
                false
            } else {
                true
            }
        });
        if let Some(part) = partition.upgrade() {
            let before = part.offsets.high_watermark.get();
            update(&part.offsets, &r);
            part.leader_epoch.set(r.term().min(i32::MAX as u64) as i32);
            part.leading.set(leading);
            if part.offsets.high_watermark.get() > before {
                part.wake_waiters();
            }
        }
        if leading && !reporting.get() {
            let now = (r.term(), r.in_sync(lag));
            if reported.borrow().as_ref() != Some(&now) {
                reporting.set(true);
                let isr: Vec<i32> = now.1.iter().map(|id| *id as i32 - 1).collect();
                let (name, partition, epoch) = (tp.topic.to_string(), tp.partition, now.0 as i32);
                let (reported, reporting) = (reported.clone(), reporting.clone());
                glommio::spawn_local(async move {
                    let r = crate::cluster::admin::report_partition_state(name, topic_id, partition, node, epoch, isr)
                        .await;
                    match r {
                        Ok(()) => *reported.borrow_mut() = Some(now),
                        Err(e) => tracing::debug!(?e, "reporting partition leadership: not taken; again next tick"),
                    }
                    reporting.set(false);
                })
                .detach();
            }
        }
    }
}

/// How often, in ticks, a leader takes the next step of a reassignment.
const REASSIGN_EVERY: u64 = 5;

/// A leader moves its group's replicas to the target the controller
/// recorded (KIP-455), one Raft configuration change at a time: the new
/// replicas join as learners; once they have the whole log they become
/// voters, and the replicas not in the target leave, in one joint change.
/// A leader that is to leave first makes the new ones voters and hands its
/// leadership to one of them (raft-rs's leader removing itself is
/// untested). When the group is the target it reports the end, and the
/// brokers left out delete their replicas.
fn reassign(
    r: &mut Replica,
    tp: &TopicPartition,
    topic_id: uuid::Uuid,
    lag: Duration,
    reporting: &Rc<std::cell::Cell<bool>>,
) {
    if !r.is_leader() || r.conf_change_pending() {
        return;
    }
    let table = shard::current().topics();
    let Some(meta) = table.get(&tp.topic).filter(|m| m.id == topic_id) else { return };
    let Some(target) = meta.partitions.get(tp.partition as usize).and_then(|p| p.moving.as_ref()).map(|m| &m.target)
    else {
        return;
    };
    let want: Vec<u64> = target.iter().map(|b| raft_id(*b)).collect();
    let conf = r.conf();
    let step = if !conf.voters_outgoing.is_empty() {
        // A joint configuration an earlier leader entered and did not leave.
        r.propose_replicas(&[], &[], &[])
    } else {
        let missing: Vec<u64> =
            want.iter().copied().filter(|id| !conf.voters.contains(id) && !conf.learners.contains(id)).collect();
        let promote: Vec<u64> = conf.learners.iter().copied().filter(|id| want.contains(id)).collect();
        let remove: Vec<u64> =
            conf.voters.iter().chain(&conf.learners).copied().filter(|id| !want.contains(id)).collect();
        let me = raft_id(shard::current().config.node_id);
        if !missing.is_empty() {
            r.propose_replicas(&missing, &[], &[])
        } else if !promote.is_empty() {
            if !promote.iter().all(|id| r.has_whole_log(*id)) {
                return;
            }
            let remove: Vec<u64> = if remove.contains(&me) { Vec::new() } else { remove };
            r.propose_replicas(&[], &promote, &remove)
        } else if remove.contains(&me) {
            let in_sync = r.in_sync(lag);
            if let Some(to) = want.iter().copied().find(|id| in_sync.contains(id) && r.has_whole_log(*id)) {
                r.transfer_leader(to);
            }
            return;
        } else if !remove.is_empty() {
            r.propose_replicas(&[], &[], &remove)
        } else {
            if !reporting.get() {
                reporting.set(true);
                let reporting = reporting.clone();
                let (name, partition, replicas) = (tp.topic.to_string(), tp.partition, target.clone());
                glommio::spawn_local(async move {
                    let r = crate::cluster::admin::report_reassigned(name, topic_id, partition, replicas).await;
                    if let Err(e) = r {
                        tracing::debug!(?e, "reporting a finished reassignment: not taken; again later");
                    }
                    reporting.set(false);
                })
                .detach();
            }
            return;
        }
    };
    match step {
        Ok(()) => tracing::info!(partition = ?tp, ?target, voters = ?conf.voters, learners = ?conf.learners,
            "reassignment: proposed the next change of replicas"),
        Err(e) => tracing::debug!(%e, "reassignment: change not proposed"),
    }
}

/// Preferred-leader balancing (`cluster::balance`): a leader that is not
/// its partition's preferred replica hands leadership to it when that one
/// is in sync and its broker leads too few of the partitions it prefers.
fn hand_back(r: &mut Replica, tp: &TopicPartition, node: i32, percentage: u32, lag: Duration) {
    if !r.is_leader() {
        return;
    }
    let table = shard::current().topics();
    // The preferred replica of a partition being reassigned may not be a voter yet.
    if table.get(&tp.topic).and_then(|m| m.partitions.get(tp.partition as usize)).is_some_and(|p| p.moving.is_some()) {
        return;
    }
    let Some(to) = crate::cluster::balance::hand_back_to(&table, &tp.topic, tp.partition, node, percentage) else {
        return;
    };
    if r.in_sync(lag).contains(&raft_id(to)) && r.transfer_leader(raft_id(to)) {
        tracing::info!(partition = %format!("{}-{}", tp.topic, tp.partition), to, "handing leadership back to the preferred replica");
    }
}

/// Cuts a read at the high watermark: whole batches below it only.
async fn below(read: Result<Option<FileSlice>, PartitionError>, hw: i64) -> Result<Option<FileSlice>, PartitionError> {
    let Some(slice) = read? else { return Ok(None) };
    let bytes = slice.read().await.map_err(storage_error)?;
    let mut len = 0;
    while len + HEADER_LEN <= bytes.len() {
        let h = BatchHeader::read(&bytes[len..]);
        if h.last_offset() >= hw || len + h.size > bytes.len() {
            break;
        }
        len += h.size;
    }
    Ok((len > 0).then_some(FileSlice { len, ..slice }))
}
