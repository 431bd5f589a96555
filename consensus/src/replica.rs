//! A partition's Raft replica whose Raft log is the partition's segment log
//! (docs/replication.md): one record batch per entry, the entry's term as
//! the batch's partition leader epoch, the empty entry a new leader appends
//! written as a LeaderChange control batch. Offsets are not in the entries:
//! every replica gives entry `i` the offset its log ends at once entries
//! before `i` are in, which is the same everywhere because the logs agree
//! up to there (Raft's log matching), so the leader proposes a batch as the
//! producer sent it.
//!
//! raft-rs reads entries from memory while they are recent (the last
//! `window` entries keep their bytes) and from the segment files otherwise:
//! `entries` then answers LogTemporarilyUnavailable, the replica reads the
//! range with io_uring and hands it back with `on_entries_fetched`, so the
//! shard never blocks on a read. Each entry's term and offsets stay in
//! memory. The log start moves (retention, DeleteRecords) through Raft's
//! compaction: a follower behind it is sent a snapshot naming where the
//! log starts. Compaction keeps one batch per entry. Runs on one glommio
//! executor (the partition's shard).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use protobuf::Message as _;
use raft::eraftpb::{ConfChangeV2, ConfState, Entry, EntryType, HardState, Message, Snapshot};
use raft::{Config, GetEntriesContext, RaftState, RawNode, StateRole, Storage, StorageError};
use sluice_storage::batch::{self, BatchBuilder, BatchHeader, HEADER_LEN};
use sluice_storage::{Log, LogConfig};

const HARD_STATE: &str = "raft-hard-state";
/// Where the log starts in Raft's terms once retention moved its start: the
/// index and term of the entry before the first kept, the replicas as of
/// it, and the offset the first kept entry begins at.
const LOG_START: &str = "raft-log-start";
/// Kafka's control record type of KRaft's LeaderChange record.
const LEADER_CHANGE: i16 = 2;
/// Our control record type for a change of the group's replicas: the
/// value is raft-rs's ConfChangeV2. Kafka defines types up to 6 and its
/// clients skip control batches of types they do not know.
const CONF_CHANGE: i16 = 1000;
/// Our control record type for DeleteRecords: the value is the offset
/// (i64, big-endian) the log is to start at. Every replica moves its log
/// start when the entry is committed.
const DELETE_RECORDS: i16 = 1001;

/// One entry as raft-rs reads it back, with where it is in the log.
struct Cached {
    term: u64,
    /// Offset of its first record, and one past its last.
    base: i64,
    end: i64,
    /// The batch (empty for a leader's no-op, a control batch in the log);
    /// `None` once it left the window: read it from the log.
    data: Option<Vec<u8>>,
    /// A change of replicas (its ConfChangeV2), kept in memory: rare, small.
    conf: Option<Vec<u8>>,
    /// The largest batch timestamp up to and including this entry.
    max_timestamp: i64,
}

/// The part of the log retention deleted, as Raft sees it: a snapshot with
/// no data but where the log starts (followers behind it start there too).
#[derive(Clone, Debug, Default, PartialEq)]
struct Start {
    /// The entry before the first kept (0: nothing deleted).
    index: u64,
    term: u64,
    conf: ConfState,
    /// The offset the first kept entry begins at (the log start).
    offset: i64,
    /// The largest batch timestamp of the deleted part.
    max_timestamp: i64,
}

struct Inner {
    hard: HardState,
    conf: ConfState,
    start: Start,
    /// Entries from index `start.index + 1` on.
    entries: VecDeque<Cached>,
    /// Ranges raft-rs asked for that are not in memory: (low, high, context).
    wanted: Vec<(u64, u64, GetEntriesContext)>,
    /// Batches read back from the log for those, by index, until used.
    fetched: std::collections::HashMap<u64, Vec<u8>>,
}

impl Inner {
    fn last(&self) -> u64 {
        self.start.index + self.entries.len() as u64
    }

    fn get(&self, index: u64) -> Option<&Cached> {
        index.checked_sub(self.start.index + 1).and_then(|i| self.entries.get(i as usize))
    }

    fn get_mut(&mut self, index: u64) -> Option<&mut Cached> {
        index.checked_sub(self.start.index + 1).and_then(|i| self.entries.get_mut(i as usize))
    }

    /// Where entry `index` ends in the log (the log start for the entry
    /// before the first kept).
    fn end_of(&self, index: u64) -> Option<i64> {
        if index == self.start.index {
            return Some(self.start.offset);
        }
        self.get(index).map(|c| c.end)
    }
}

/// raft-rs's view of the log (shared with the replica that writes it).
#[derive(Clone)]
pub struct LogStorage(Rc<RefCell<Inner>>);

impl Storage for LogStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let s = self.0.borrow();
        Ok(RaftState::new(s.hard.clone(), s.conf.clone()))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let mut s = self.0.borrow_mut();
        if low <= s.start.index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > s.last() + 1 || low > high {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let max_size = max_size.into();
        let mut out = Vec::new();
        let mut size = 0u64;
        for i in low..high {
            let c = s.get(i).expect("in range");
            if let Some(cc) = &c.conf {
                size += cc.len() as u64;
                let mut e = Entry { index: i, term: c.term, data: cc.clone().into(), ..Default::default() };
                e.set_entry_type(EntryType::EntryConfChangeV2);
                out.push(e);
                continue;
            }
            let data = match c.data.as_ref().or_else(|| s.fetched.get(&i)) {
                Some(d) => d.clone(),
                None if out.is_empty() && context.can_async() => {
                    if !s.wanted.iter().any(|w| w.0 == low) {
                        s.wanted.push((low, high, context));
                    }
                    return Err(raft::Error::Store(StorageError::LogTemporarilyUnavailable));
                }
                // What is in memory now; the rest comes with the next send.
                None if !out.is_empty() => break,
                None => return Err(raft::Error::Store(StorageError::Unavailable)),
            };
            size += data.len() as u64;
            out.push(Entry { index: i, term: c.term, data: data.into(), ..Default::default() });
            if max_size.is_some_and(|m| size > m) {
                break;
            }
        }
        raft::util::limit_size(&mut out, max_size);
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let s = self.0.borrow();
        if idx == s.start.index {
            return Ok(s.start.term);
        }
        if idx < s.start.index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        s.get(idx).map(|c| c.term).ok_or(raft::Error::Store(StorageError::Unavailable))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.0.borrow().start.index + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.0.borrow().last())
    }

    /// A follower behind the log start gets where it starts: the records
    /// before were deleted here, so there is nothing else to send.
    fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let s = self.0.borrow();
        let mut snap = Snapshot::default();
        let meta = snap.mut_metadata();
        meta.index = s.start.index;
        meta.term = s.start.term;
        meta.set_conf_state(s.start.conf.clone());
        snap.data = encode_start_data(s.start.offset, s.start.max_timestamp).into();
        Ok(snap)
    }
}

pub struct Replica {
    raw: RawNode<LogStorage>,
    store: LogStorage,
    log: Log,
    dir: PathBuf,
    /// The largest batch timestamp in the log (a no-op's timestamp).
    last_timestamp: i64,
    /// How many of the newest entries keep their bytes in memory.
    window: usize,
    /// While leading: when each follower last had the leader's whole log.
    caught_up: std::collections::HashMap<u64, std::time::Instant>,
    /// The hard state last written to disk.
    saved_hard: Option<HardState>,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Replica {
    /// Opens replica `id` of the group that began with `voters` on the log
    /// in `dir`, rebuilding the entries from its batches; the replicas are
    /// those voters changed by the committed changes in the log. A replica
    /// added to a group opens with the group's first voters and an empty
    /// log: it is not one of them, so it waits for the leader's appends.
    pub async fn open(
        id: u64,
        voters: &[u64],
        dir: &Path,
        config: LogConfig,
        window: usize,
    ) -> Result<Replica, String> {
        let mut log = Log::open(dir, config).await.map_err(err)?;
        let start = match read_start(&dir.join(LOG_START))? {
            Some(start) => start,
            None if log.log_start_offset() == 0 => {
                Start { conf: ConfState { voters: voters.to_vec(), ..Default::default() }, ..Start::default() }
            }
            None => return Err(format!("{}: the log starts past 0 and {LOG_START} is missing", dir.display())),
        };
        // The start is saved before segments go: finish a deletion a crash
        // cut short.
        if log.log_end_offset() < start.offset {
            log.reset_to(start.offset).await.map_err(err)?;
        } else if log.log_start_offset() < start.offset {
            log.delete_records(start.offset).await.map_err(err)?;
        }
        let mut entries = VecDeque::new();
        // DeleteRecords entries: (index, offset).
        let mut deletes: Vec<(u64, i64)> = Vec::new();
        let mut at = start.offset.max(log.log_start_offset());
        let mut last_timestamp = start.max_timestamp;
        while let Some(slice) = log.read(at, 1 << 20).await.map_err(err)? {
            let bytes = slice.read().await.map_err(err)?;
            let mut pos = 0;
            while pos + HEADER_LEN <= bytes.len() {
                let h = BatchHeader::read(&bytes[pos..]);
                if pos + h.size > bytes.len() {
                    break;
                }
                let batch = &bytes[pos..pos + h.size];
                let data = entry_data(batch);
                if let Some(before) = delete_records_of(batch) {
                    deletes.push((start.index + 1 + entries.len() as u64, before));
                }
                last_timestamp = last_timestamp.max(h.max_timestamp);
                entries.push_back(Cached {
                    term: h.leader_epoch.max(0) as u64,
                    base: h.base_offset,
                    end: h.last_offset() + 1,
                    data: Some(data),
                    conf: if h.is_control() { conf_change_of(batch) } else { None },
                    max_timestamp: last_timestamp,
                });
                at = h.last_offset() + 1;
                pos += h.size;
            }
            if pos == 0 {
                return Err(format!("{}: no whole batch at offset {at}", dir.display()));
            }
        }
        let saved_hard = read_hard_state(&dir.join(HARD_STATE))?;
        let mut hard = saved_hard.clone().unwrap_or_default();
        hard.commit = hard.commit.clamp(start.index, start.index + entries.len() as u64);
        let committed_here = (hard.commit - start.index) as usize;
        // Only the window and what is not committed yet stay in memory.
        let keep_from = entries.len().saturating_sub(window.max(1)).min(committed_here);
        for c in entries.iter_mut().take(keep_from) {
            c.data = None;
        }
        let committed = entries.iter().take(committed_here).filter_map(|c| c.conf.as_deref());
        let conf = replay_conf(id, &start.conf, committed)?;
        let applied = hard.commit;
        let delete_to = deletes.iter().filter(|(i, _)| *i <= applied).map(|(_, o)| *o).max();
        let store = LogStorage(Rc::new(RefCell::new(Inner {
            hard,
            conf,
            start,
            entries,
            wanted: Vec::new(),
            fetched: Default::default(),
        })));
        let cfg = Config {
            id,
            election_tick: 10,
            heartbeat_tick: 2,
            applied,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            check_quorum: true,
            pre_vote: true,
            ..Config::default()
        };
        cfg.validate().map_err(err)?;
        let raw = RawNode::new(&cfg, store.clone(), &crate::logger::logger("partition")).map_err(err)?;
        let mut replica = Replica {
            raw,
            store,
            log,
            dir: dir.to_path_buf(),
            last_timestamp,
            window: window.max(1),
            caught_up: Default::default(),
            saved_hard,
        };
        // A committed DeleteRecords a crash kept from taking effect.
        if let Some(before) = delete_to {
            replica.move_start(before).await?;
        }
        Ok(replica)
    }

    /// Proposes a producer batch (only a leader takes it). Returns its
    /// index; its offsets are known once it is in the leader's log.
    pub fn propose(&mut self, batch: Vec<u8>) -> Result<u64, String> {
        if self.raw.raft.state != StateRole::Leader {
            return Err("not the leader".into());
        }
        self.raw.propose(vec![], batch).map_err(err)?;
        Ok(self.raw.raft.raft_log.last_index())
    }

    /// Proposes DeleteRecords: once committed, every replica's log starts
    /// at `before` (which must not be past the high watermark). Returns the
    /// entry's index; see `applied`.
    pub fn propose_delete_records(&mut self, before: i64) -> Result<u64, String> {
        let control = control_batch(DELETE_RECORDS, &before.to_be_bytes(), self.last_timestamp);
        self.propose(control)
    }

    /// The last entry this replica has applied (committed entries take
    /// effect in `process`).
    pub fn applied(&self) -> u64 {
        self.raw.raft.raft_log.applied
    }

    /// A compaction pass of what is applied (`Log::plan_clean_below`),
    /// keeping one batch per entry, if one is due.
    pub fn plan_clean(&self, now_ms: i64) -> Option<sluice_storage::CleanPlan> {
        let limit = self.store.0.borrow().end_of(self.applied()).unwrap_or(0);
        self.log.plan_clean_below(now_ms, limit).map(|p| p.keep_every_batch())
    }

    /// Swaps a finished compaction pass in (`Log::finish_clean`). Offsets
    /// and entries stay as they were; only the batches' records change.
    pub async fn finish_clean(&mut self, outcome: sluice_storage::CleanOutcome) -> Result<bool, String> {
        self.log.finish_clean(outcome).await.map_err(err)
    }

    pub fn step(&mut self, m: Message) {
        // A follower gets MsgTransferLeader only as `transfer_request`:
        // it asks its leader for leadership (raft-rs passes it on).
        if m.get_msg_type() == raft::eraftpb::MessageType::MsgTransferLeader && !self.is_leader() {
            let me = self.raw.raft.id;
            self.raw.transfer_leader(me);
            return;
        }
        if let Err(e) = self.raw.step(m) {
            tracing::debug!(%e, "raft: message not taken");
        }
    }

    pub fn tick(&mut self) {
        self.raw.tick();
    }

    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    pub fn leader(&self) -> Option<u64> {
        Some(self.raw.raft.leader_id).filter(|l| *l != 0)
    }

    pub fn term(&self) -> u64 {
        self.raw.raft.term
    }

    pub fn log(&self) -> &Log {
        &self.log
    }

    /// New topic configs (retention, segment size), applied live.
    pub fn set_config(&mut self, config: LogConfig) {
        self.log.set_config(config);
    }

    pub fn commit_index(&self) -> u64 {
        self.raw.raft.raft_log.committed
    }

    /// Where committed entries end: what consumers may read up to.
    pub fn high_watermark(&self) -> i64 {
        let s = self.store.0.borrow();
        let commit = self.raw.raft.raft_log.committed.min(s.last());
        s.end_of(commit).unwrap_or(s.start.offset)
    }

    /// The Raft term of entry `index`, while it is in this replica's log (a
    /// new leader's entry may take an index an earlier one had).
    pub fn term_of(&self, index: u64) -> Option<u64> {
        self.store.0.borrow().get(index).map(|c| c.term)
    }

    /// The offsets of entry `index`, once it is in this replica's log.
    pub fn offsets_of(&self, index: u64) -> Option<(i64, i64)> {
        self.store.0.borrow().get(index).map(|c| (c.base, c.end))
    }

    /// Runs the ready loop until nothing is pending: writes new entries to
    /// the log (cutting a divergent tail first) and makes them durable,
    /// then the hard state, and returns the messages to send.
    pub async fn process(&mut self) -> Result<Vec<Message>, String> {
        let mut out = Vec::new();
        let mut delete_to: Option<i64> = None;
        loop {
            self.fetch_wanted().await?;
            if !self.raw.has_ready() {
                break;
            }
            let mut rd = self.raw.ready();
            // A leader may send before it persists (raft thesis 10.2.1).
            out.extend(rd.take_messages());
            if !rd.snapshot().is_empty() {
                let snap = rd.snapshot().clone();
                self.install(&snap).await?;
            }
            if !rd.entries().is_empty() {
                let entries = rd.entries().clone();
                self.write(&entries).await?;
            }
            if let Some(hs) = rd.hs() {
                self.store.0.borrow_mut().hard = hs.clone();
                self.save_hard_state(hs).await?;
            }
            out.extend(rd.take_persisted_messages());
            let committed = rd.take_committed_entries();
            self.apply_conf_changes(&committed)?;
            delete_to = delete_to.max(deletes_in(&committed));
            let mut light = self.raw.advance(rd);
            if let Some(commit) = light.commit_index() {
                self.store.0.borrow_mut().hard.commit = commit;
            }
            out.extend(light.take_messages());
            let committed = light.take_committed_entries();
            self.apply_conf_changes(&committed)?;
            delete_to = delete_to.max(deletes_in(&committed));
            self.raw.advance_apply();
        }
        if let Some(before) = delete_to {
            self.move_start(before).await?;
        }
        self.trim_window();
        self.note_caught_up();
        Ok(out)
    }

    /// A snapshot from the leader: this replica was behind the leader's log
    /// start, so its log starts again there, empty.
    async fn install(&mut self, snap: &Snapshot) -> Result<(), String> {
        let meta = snap.get_metadata();
        let (offset, max_timestamp) = decode_start_data(&snap.data).ok_or("a snapshot without its log start")?;
        let start =
            Start { index: meta.index, term: meta.term, conf: meta.get_conf_state().clone(), offset, max_timestamp };
        tracing::info!(index = start.index, offset, "behind the leader's log start: starting the log there");
        write_start(&self.dir.join(LOG_START), &start).await?;
        self.log.reset_to(offset).await.map_err(err)?;
        let mut s = self.store.0.borrow_mut();
        s.entries.clear();
        s.fetched.clear();
        s.conf = start.conf.clone();
        s.hard.commit = s.hard.commit.max(start.index);
        s.start = start;
        self.last_timestamp = max_timestamp;
        Ok(())
    }

    /// Retention for a replicated log (`retention.ms`, `retention.bytes`):
    /// drops the segments the policy no longer allows, of what is applied
    /// only. Where the log then starts is saved first, as the entry before
    /// it and the replicas as of it (what a follower behind it is sent).
    /// Returns whether anything was deleted.
    pub async fn enforce_retention(&mut self, now_ms: i64) -> Result<bool, String> {
        let limit = self.store.0.borrow().end_of(self.applied()).unwrap_or(0);
        let Some(offset) = self.log.retention_start(now_ms, limit) else { return Ok(false) };
        let before = self.store.0.borrow().start.index;
        self.move_start(offset).await?;
        Ok(self.store.0.borrow().start.index != before)
    }

    /// Moves the log start to `offset` (retention, or a committed
    /// DeleteRecords, which may cut a batch): the entries that end at or
    /// before it leave Raft's log. The new start is saved before anything
    /// is deleted, so a crash finishes the move on open.
    async fn move_start(&mut self, offset: i64) -> Result<(), String> {
        if offset <= self.log.log_start_offset() {
            return Ok(());
        }
        let start = {
            let s = self.store.0.borrow();
            // The last entry that ends at or before the new start.
            let mut index = s.start.index;
            let mut changes = Vec::new();
            let mut max_timestamp = s.start.max_timestamp;
            for (i, c) in s.entries.iter().enumerate() {
                if c.end > offset {
                    break;
                }
                index = s.start.index + 1 + i as u64;
                max_timestamp = c.max_timestamp;
                changes.extend(c.conf.clone());
            }
            let conf = replay_conf(self.raw.raft.id, &s.start.conf, changes.iter().map(Vec::as_slice))?;
            let term = if index == s.start.index { s.start.term } else { s.get(index).expect("kept until now").term };
            let offset = s.end_of(index).expect("kept until now");
            Start { index, term, conf, offset, max_timestamp }
        };
        write_start(&self.dir.join(LOG_START), &start).await?;
        self.log.delete_records(offset).await.map_err(err)?;
        let mut s = self.store.0.borrow_mut();
        let dropped = (start.index - s.start.index) as usize;
        s.entries.drain(..dropped);
        s.start = start;
        Ok(())
    }

    /// Committed changes of replicas take effect (raft-rs's conf changes
    /// apply once committed); the rest of a committed entry is in the log.
    fn apply_conf_changes(&mut self, committed: &[Entry]) -> Result<(), String> {
        for e in committed.iter().filter(|e| e.get_entry_type() == EntryType::EntryConfChangeV2) {
            let cc = ConfChangeV2::parse_from_bytes(&e.data).map_err(err)?;
            let cs = self.raw.apply_conf_change(&cc).map_err(err)?;
            tracing::info!(index = e.index, voters = ?cs.voters, learners = ?cs.learners,
                outgoing = ?cs.voters_outgoing, "replicas changed");
            self.store.0.borrow_mut().conf = cs;
        }
        Ok(())
    }

    /// Reads from the log what raft-rs asked for and had to wait for, and
    /// tells it so (it sends the appends it held back).
    async fn fetch_wanted(&mut self) -> Result<(), String> {
        let wanted = std::mem::take(&mut self.store.0.borrow_mut().wanted);
        if wanted.is_empty() {
            return Ok(());
        }
        self.store.0.borrow_mut().fetched.clear();
        for (low, high, context) in wanted {
            // DeleteRecords may have cut the first entry kept.
            let first = self.store.0.borrow().get(low).map(|c| c.base.max(self.log.log_start_offset()));
            let Some(mut at) = first else { continue };
            let mut index = low;
            // Up to a message's worth: raft-rs asks again for the rest.
            let mut budget: usize = 1 << 20;
            'read: while index < high && budget > 0 {
                let Some(slice) = self.log.read(at, budget.max(HEADER_LEN)).await.map_err(err)? else { break };
                let bytes = slice.read().await.map_err(err)?;
                let mut pos = 0;
                while pos + HEADER_LEN <= bytes.len() && index < high {
                    let h = BatchHeader::read(&bytes[pos..]);
                    if pos + h.size > bytes.len() {
                        break;
                    }
                    let data = entry_data(&bytes[pos..pos + h.size]);
                    budget = budget.saturating_sub(h.size);
                    self.store.0.borrow_mut().fetched.insert(index, data);
                    index += 1;
                    at = h.last_offset() + 1;
                    pos += h.size;
                }
                if pos == 0 {
                    break 'read;
                }
            }
            self.raw.on_entries_fetched(context);
        }
        Ok(())
    }

    /// Drops the bytes of entries that left the window; never of entries
    /// not yet applied (raft-rs reads those without waiting).
    fn trim_window(&mut self) {
        let applied = self.raw.raft.raft_log.applied;
        let mut s = self.store.0.borrow_mut();
        let keep_from = s.last().saturating_sub(self.window as u64);
        let upto = keep_from.min(applied);
        for i in (s.start.index + 1..=upto).rev() {
            match s.get_mut(i) {
                Some(c) if c.data.is_some() => c.data = None,
                _ => break,
            }
        }
        s.fetched.clear();
    }

    /// Term and vote must be durable before this replica's messages go out
    /// (a vote given twice breaks Raft); the commit index need not be (a
    /// restarted replica learns it again from the leader), so a change of it
    /// alone is kept in memory and written with the next term or on close.
    async fn save_hard_state(&mut self, hs: &HardState) -> Result<(), String> {
        if self.saved_hard.as_ref().is_some_and(|s| s.term == hs.term && s.vote == hs.vote) {
            return Ok(());
        }
        write_hard_state(&self.dir.join(HARD_STATE), hs).await?;
        self.saved_hard = Some(hs.clone());
        Ok(())
    }

    async fn write(&mut self, entries: &[Entry]) -> Result<(), String> {
        let first = entries[0].index;
        let cut = {
            let s = self.store.0.borrow();
            (first <= s.last()).then(|| s.get(first).expect("in range").base)
        };
        if let Some(at) = cut {
            // A new leader's entries replace this replica's tail from here.
            let end = self.log.truncate_to(at).await.map_err(err)?;
            if end != at {
                return Err(format!("truncating to {at} left the log ending at {end}"));
            }
            let mut s = self.store.0.borrow_mut();
            let keep = (first - s.start.index - 1) as usize;
            s.entries.truncate(keep);
            self.last_timestamp = s.entries.back().map_or(s.start.max_timestamp, |c| c.max_timestamp);
        }
        for e in entries {
            let conf = (e.get_entry_type() != EntryType::EntryNormal).then(|| e.data.to_vec());
            let control = conf.is_some() || e.data.is_empty();
            let mut bytes = match &conf {
                Some(cc) => control_batch(CONF_CHANGE, cc, self.last_timestamp),
                None if control => leader_change(e.term, self.last_timestamp),
                None => e.data.to_vec(),
            };
            batch::set_base_offset(&mut bytes, self.log.log_end_offset());
            batch::set_leader_epoch(&mut bytes, e.term.min(i32::MAX as u64) as i32);
            let info = self.log.append_replica(bytes.clone()).await.map_err(err)?;
            self.last_timestamp = self.last_timestamp.max(BatchHeader::read(&bytes).max_timestamp);
            let data = Some(if control { Vec::new() } else { bytes });
            self.store.0.borrow_mut().entries.push_back(Cached {
                term: e.term,
                base: info.base_offset,
                end: info.last_offset + 1,
                data,
                conf,
                max_timestamp: self.last_timestamp,
            });
        }
        // Durable before anyone is told (votes and acknowledgements follow).
        self.log.flush().await.map_err(err)
    }

    pub async fn close(self) -> Result<(), String> {
        let hs = self.store.0.borrow().hard.clone();
        write_hard_state(&self.dir.join(HARD_STATE), &hs).await?;
        self.log.close().await.map_err(err)
    }

    /// Deletes the replica's log and Raft state (its directory).
    pub async fn delete(self) -> Result<(), String> {
        self.log.delete().await.map_err(err)
    }

    /// Hands leadership to `to` when it has the whole log now (raft-rs's
    /// leader transfer: it campaigns at once, without an election timeout;
    /// proposals are refused until it is done or abandoned after one
    /// election timeout). Returns whether a transfer began.
    pub fn transfer_leader(&mut self, to: u64) -> bool {
        let raft = &self.raw.raft;
        if !self.is_leader() || raft.lead_transferee.is_some() || to == raft.id {
            return false;
        }
        let last = raft.raft_log.last_index();
        if raft.prs().get(to).is_none_or(|p| p.matched < last) {
            return false;
        }
        self.raw.transfer_leader(to);
        true
    }

    /// The group's replicas as this replica has applied them.
    pub fn conf(&self) -> ConfState {
        self.raw.raft.prs().conf().to_conf_state()
    }

    /// Whether a change of replicas is proposed and not yet applied (raft-rs
    /// takes one at a time).
    pub fn conf_change_pending(&self) -> bool {
        self.raw.raft.pending_conf_index > self.raw.raft.raft_log.applied
    }

    /// While leading: proposes a change of replicas. `learners` join
    /// without a vote; `voters` and `removed` change the voters at once
    /// through a joint configuration that raft-rs leaves by itself. With
    /// nothing to change, it leaves a joint configuration a former leader
    /// entered.
    pub fn propose_replicas(&mut self, learners: &[u64], voters: &[u64], removed: &[u64]) -> Result<(), String> {
        use raft::eraftpb::{ConfChangeSingle, ConfChangeTransition, ConfChangeType};
        if !self.is_leader() {
            return Err("not the leader".into());
        }
        let one = |kind, id| {
            let mut c = ConfChangeSingle::default();
            c.set_change_type(kind);
            c.node_id = id;
            c
        };
        let mut cc = ConfChangeV2::default();
        let changes = learners
            .iter()
            .map(|id| one(ConfChangeType::AddLearnerNode, *id))
            .chain(voters.iter().map(|id| one(ConfChangeType::AddNode, *id)))
            .chain(removed.iter().map(|id| one(ConfChangeType::RemoveNode, *id)));
        cc.set_changes(changes.collect::<Vec<_>>().into());
        cc.set_transition(ConfChangeTransition::Auto);
        self.raw.propose_conf_change(vec![], cc).map_err(err)
    }

    /// While leading: whether replica `id` has every entry the leader has.
    pub fn has_whole_log(&self, id: u64) -> bool {
        let last = self.raw.raft.raft_log.last_index();
        self.is_leader() && self.raw.raft.prs().get(id).is_some_and(|p| p.matched >= last)
    }

    /// While leading: the ISR as Kafka defines it, this replica and those
    /// whose log reached the leader's end within `lag` (Kafka's
    /// `replica.lag.time.max.ms`).
    pub fn in_sync(&self, lag: std::time::Duration) -> Vec<u64> {
        if !self.is_leader() {
            return Vec::new();
        }
        let me = self.raw.raft.id;
        let mut ids: Vec<u64> = self
            .raw
            .raft
            .prs()
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| *id == me || self.caught_up.get(id).is_some_and(|t| t.elapsed() < lag))
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Notes which followers have everything the leader has, now.
    fn note_caught_up(&mut self) {
        if !self.is_leader() {
            self.caught_up.clear();
            return;
        }
        let last = self.raw.raft.raft_log.last_index();
        let now = std::time::Instant::now();
        for (id, pr) in self.raw.raft.prs().iter() {
            if pr.matched >= last {
                self.caught_up.insert(*id, now);
            }
        }
    }
}

/// The message by which `from` asks replica `to` to take over its group's
/// leadership (ElectLeaders). raft-rs's MsgTransferLeader names the
/// transferee as its sender, which the transport only lets a replica say
/// of itself: so the ask goes to the transferee, whose `step` turns it into
/// its own request to the leader.
pub fn transfer_request(to: u64, from: u64) -> Message {
    let mut m = Message::default();
    m.set_msg_type(raft::eraftpb::MessageType::MsgTransferLeader);
    m.to = to;
    m.from = from;
    m
}

/// The control batch a new leader's no-op becomes: one record whose key is
/// Kafka's control key (version 0, type LeaderChange) and whose value is a
/// LeaderChangeMessage v0 naming no voters. Every replica writes the same
/// bytes: its timestamp is the largest of the log before it.
fn leader_change(term: u64, now: i64) -> Vec<u8> {
    let mut value = Vec::with_capacity(14);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&(term.min(i32::MAX as u64) as i32).to_be_bytes());
    value.extend_from_slice(&0i32.to_be_bytes());
    value.extend_from_slice(&0i32.to_be_bytes());
    control_batch(LEADER_CHANGE, &value, now)
}

/// A control batch of one record: Kafka's control key (version 0, `kind`)
/// and `value`, timestamped `now`.
fn control_batch(kind: i16, value: &[u8], now: i64) -> Vec<u8> {
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&kind.to_be_bytes());
    let mut b = BatchBuilder::new(now);
    b.push(now, Some(&key), Some(value));
    let mut bytes = b.build();
    batch::set_control(&mut bytes);
    bytes
}

/// A control batch's type (its first record's control key) and value.
fn control_of(batch: &[u8]) -> Option<(i16, Vec<u8>)> {
    let h = BatchHeader::read(batch);
    if !h.is_control() {
        return None;
    }
    let section = batch.get(HEADER_LEN..)?;
    let records = batch::parse_records(section, h.record_count)?;
    let r = records.first()?;
    let key = section.get(r.key.clone()?)?;
    let kind = i16::from_be_bytes(key.get(2..4)?.try_into().ok()?);
    Some((kind, r.value.clone().and_then(|v| section.get(v)).unwrap_or_default().to_vec()))
}

/// The ConfChangeV2 a control batch carries, if it is a change of replicas.
fn conf_change_of(control: &[u8]) -> Option<Vec<u8>> {
    control_of(control).filter(|(kind, _)| *kind == CONF_CHANGE).map(|(_, v)| v)
}

/// The offset a DeleteRecords entry moves the log start to.
fn delete_records_of(batch: &[u8]) -> Option<i64> {
    let (_, value) = control_of(batch).filter(|(kind, _)| *kind == DELETE_RECORDS)?;
    Some(i64::from_be_bytes(value.get(..8)?.try_into().ok()?))
}

/// The furthest log start that committed DeleteRecords entries ask for.
fn deletes_in(committed: &[Entry]) -> Option<i64> {
    committed
        .iter()
        .filter(|e| e.get_entry_type() == EntryType::EntryNormal && e.data.len() >= HEADER_LEN)
        .filter_map(|e| delete_records_of(&e.data))
        .max()
}

/// What raft-rs sees of a batch in the log: nothing for the batches a
/// replica writes from the entry's kind (a leader's no-op, a change of
/// replicas), the bytes for the rest (producer batches, DeleteRecords).
fn entry_data(batch: &[u8]) -> Vec<u8> {
    match control_of(batch) {
        Some((LEADER_CHANGE | CONF_CHANGE, _)) => Vec::new(),
        None if BatchHeader::read(batch).is_control() => Vec::new(),
        _ => batch.to_vec(),
    }
}

/// The replicas of a group that were `from`, after `changes`
/// (ConfChangeV2s, in log order): raft-rs applies them to a scratch node,
/// so the rules are its own.
fn replay_conf<'a>(id: u64, from: &ConfState, changes: impl Iterator<Item = &'a [u8]>) -> Result<ConfState, String> {
    let mut conf = from.clone();
    let mut changes = changes.peekable();
    if changes.peek().is_none() {
        return Ok(conf);
    }
    let store = raft::storage::MemStorage::new_with_conf_state(conf.clone());
    let cfg = Config { id, ..Config::default() };
    let mut scratch = RawNode::new(&cfg, store, &crate::logger::logger("replay")).map_err(err)?;
    for cc in changes {
        let cc = ConfChangeV2::parse_from_bytes(cc).map_err(err)?;
        conf = scratch.apply_conf_change(&cc).map_err(err)?;
    }
    Ok(conf)
}

fn encode_start_data(offset: i64, max_timestamp: i64) -> Vec<u8> {
    let mut b = offset.to_be_bytes().to_vec();
    b.extend_from_slice(&max_timestamp.to_be_bytes());
    b
}

fn decode_start_data(b: &[u8]) -> Option<(i64, i64)> {
    let offset = i64::from_be_bytes(b.get(..8)?.try_into().ok()?);
    let max_timestamp = i64::from_be_bytes(b.get(8..16)?.try_into().ok()?);
    Some((offset, max_timestamp))
}

/// `[u32 crc32c little-endian][index u64][term u64][offset i64][max
/// timestamp i64][ConfState protobuf]`, all big-endian after the checksum.
fn read_start(path: &Path) -> Result<Option<Start>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let bad = |why: &str| format!("{}: {why}", path.display());
    if bytes.len() < 36 || bytes.len() > 4096 {
        return Err(bad("wrong size"));
    }
    let (crc, payload) = bytes.split_at(4);
    if u32::from_le_bytes(crc.try_into().expect("4 bytes")) != crc32c::crc32c(payload) {
        return Err(bad("checksum mismatch"));
    }
    let word = |i: usize| u64::from_be_bytes(payload[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    let conf = ConfState::parse_from_bytes(&payload[32..]).map_err(|e| bad(&e.to_string()))?;
    Ok(Some(Start { index: word(0), term: word(1), offset: word(2) as i64, max_timestamp: word(3) as i64, conf }))
}

async fn write_start(path: &Path, start: &Start) -> Result<(), String> {
    let mut payload = Vec::with_capacity(64);
    payload.extend_from_slice(&start.index.to_be_bytes());
    payload.extend_from_slice(&start.term.to_be_bytes());
    payload.extend_from_slice(&start.offset.to_be_bytes());
    payload.extend_from_slice(&start.max_timestamp.to_be_bytes());
    payload.extend_from_slice(&start.conf.write_to_bytes().map_err(err)?);
    let mut bytes = crc32c::crc32c(&payload).to_le_bytes().to_vec();
    bytes.extend_from_slice(&payload);
    sluice_storage::io::write_small(path, bytes).await.map_err(err)
}

/// `[u32 crc32c little-endian][HardState protobuf]`.
fn read_hard_state(path: &Path) -> Result<Option<HardState>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    if bytes.len() < 4 || bytes.len() > 4096 {
        return Err(format!("{}: {} bytes", path.display(), bytes.len()));
    }
    let (crc, payload) = bytes.split_at(4);
    if u32::from_le_bytes(crc.try_into().expect("4 bytes")) != crc32c::crc32c(payload) {
        return Err(format!("{}: checksum mismatch", path.display()));
    }
    HardState::parse_from_bytes(payload).map(Some).map_err(|e| format!("{}: {e}", path.display()))
}

async fn write_hard_state(path: &Path, hs: &HardState) -> Result<(), String> {
    let payload = hs.write_to_bytes().map_err(err)?;
    let mut bytes = crc32c::crc32c(&payload).to_le_bytes().to_vec();
    bytes.extend_from_slice(&payload);
    sluice_storage::io::write_small(path, bytes).await.map_err(err)
}
