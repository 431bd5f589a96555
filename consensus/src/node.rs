//! Drives one Raft group: ticks, messages in, proposals, and raft-rs's
//! ready loop (persist, send, apply) against a [`StateMachine`]. Not
//! thread-safe by design: its owner calls it from one thread and carries
//! the messages it returns.

use std::io;
use std::path::Path;

use raft::eraftpb::{Entry, EntryType, Message, MessageType};
use raft::{Config, RawNode, StateRole};

use crate::log_store::DiskLog;

/// What a group replicates. `apply` sees every committed entry once per
/// life of the process, in order, after `restore` of the latest snapshot.
pub trait StateMachine {
    fn apply(&mut self, index: u64, data: &[u8]);
    /// The state as of the last applied entry, for a snapshot.
    fn snapshot(&self) -> Vec<u8>;
    /// Replaces the state with a snapshot's (`data` may be empty: no
    /// snapshot yet, the initial state).
    fn restore(&mut self, data: &[u8]);
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStatus {
    pub id: u64,
    pub leader: Option<u64>,
    pub term: u64,
    pub role: Option<StateRole>,
    pub commit: u64,
    pub applied: u64,
    pub last_index: u64,
    /// On the leader: each voter's matched index (the leader's own is its
    /// last index).
    pub matched: Vec<(u64, u64)>,
}

pub struct RaftNode<S: StateMachine> {
    raw: RawNode<DiskLog>,
    sm: S,
    applied: u64,
    /// Compact the log once this many entries follow the snapshot.
    compact_after: usize,
}

impl<S: StateMachine> RaftNode<S> {
    /// Opens node `id` of the group whose log lives in `dir`. Ticks: the
    /// caller ticks at a fixed pace; an election starts after 10–20 ticks
    /// without a leader, and a leader heartbeats every 2.
    pub fn open(id: u64, voters: &[u64], dir: &Path, mut sm: S, group: &str) -> io::Result<RaftNode<S>> {
        let store = DiskLog::open(dir, voters)?;
        sm.restore(store.snapshot_data());
        let applied = store.snapshot_index();
        let cfg = Config {
            id,
            election_tick: 10,
            heartbeat_tick: 2,
            applied,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            // A leader cut off from the quorum steps down instead of
            // believing it leads; pre-vote keeps a returning node from
            // disrupting a healthy term.
            check_quorum: true,
            pre_vote: true,
            ..Config::default()
        };
        cfg.validate().map_err(|e| io::Error::other(e.to_string()))?;
        let raw =
            RawNode::new(&cfg, store, &crate::logger::logger(group)).map_err(|e| io::Error::other(e.to_string()))?;
        Ok(RaftNode { raw, sm, applied, compact_after: 1000 })
    }

    pub fn set_compact_after(&mut self, entries: usize) {
        self.compact_after = entries.max(1);
    }

    pub fn state(&self) -> &S {
        &self.sm
    }

    pub fn state_mut(&mut self) -> &mut S {
        &mut self.sm
    }

    pub fn id(&self) -> u64 {
        self.raw.raft.id
    }

    pub fn leader(&self) -> Option<u64> {
        let l = self.raw.raft.leader_id;
        (l != raft::INVALID_ID).then_some(l)
    }

    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    pub fn term(&self) -> u64 {
        self.raw.raft.term
    }

    pub fn status(&self) -> NodeStatus {
        let st = self.raw.status();
        let mut matched: Vec<(u64, u64)> =
            st.progress.map(|p| p.iter().map(|(id, pr)| (*id, pr.matched)).collect()).unwrap_or_default();
        matched.sort_unstable();
        NodeStatus {
            id: st.id,
            leader: self.leader(),
            term: st.hs.term,
            role: Some(st.ss.raft_state),
            commit: st.hs.commit,
            applied: self.applied,
            last_index: self.raw.raft.raft_log.last_index(),
            matched,
        }
    }

    /// One tick of the logical clock.
    pub fn tick(&mut self) {
        self.raw.tick();
    }

    /// A message from another member. Messages for another group or
    /// malformed ones are refused by raft-rs without harm.
    pub fn step(&mut self, msg: Message) {
        if let Err(e) = self.raw.step(msg) {
            tracing::debug!(%e, "raft: message not taken");
        }
    }

    /// Proposes `data` for the log; only a leader takes proposals. Returns
    /// the index the entry is given (it is committed only if an entry of
    /// this term is applied there).
    pub fn propose(&mut self, data: Vec<u8>) -> Result<u64, String> {
        if !self.is_leader() {
            return Err("not the leader".into());
        }
        self.raw.propose(vec![], data).map_err(|e| e.to_string())?;
        Ok(self.raw.raft.raft_log.last_index())
    }

    /// Runs the ready loop until nothing is pending: persists entries and
    /// hard state, applies what is committed, and returns the messages to
    /// send (each to `msg.to`).
    pub fn process(&mut self) -> io::Result<Vec<Message>> {
        let mut out = Vec::new();
        while self.raw.has_ready() {
            let mut rd = self.raw.ready();
            // A leader may send before it persists (raft thesis 10.2.1).
            out.extend(rd.take_messages());
            if !rd.snapshot().is_empty() {
                let snap = rd.snapshot().clone();
                let index = snap.get_metadata().index;
                self.raw.mut_store().apply_snapshot(snap)?;
                self.sm.restore(self.raw.store().snapshot_data());
                self.applied = index;
            }
            self.apply(rd.take_committed_entries());
            if !rd.entries().is_empty() {
                self.raw.mut_store().append(rd.entries())?;
            }
            if let Some(hs) = rd.hs() {
                self.raw.mut_store().set_hard_state(hs.clone())?;
            }
            out.extend(rd.take_persisted_messages());
            let mut light = self.raw.advance(rd);
            if let Some(commit) = light.commit_index() {
                self.raw.mut_store().set_commit(commit)?;
            }
            out.extend(light.take_messages());
            self.apply(light.take_committed_entries());
            self.raw.advance_apply();
        }
        // A snapshot is queued on the connection ahead of whatever the
        // leader sends next, so it may probe at once; a lost snapshot shows
        // as a rejected probe and is sent again.
        for m in out.iter().filter(|m| m.get_msg_type() == MessageType::MsgSnapshot) {
            self.raw.report_snapshot(m.to, raft::SnapshotStatus::Finish);
        }
        self.maybe_compact()?;
        Ok(out)
    }

    fn apply(&mut self, entries: Vec<Entry>) {
        for e in entries {
            if e.index <= self.applied {
                continue;
            }
            self.applied = e.index;
            // Empty entries are the no-ops a new leader appends; conf
            // changes are not used (the voter set is static).
            if e.get_entry_type() == EntryType::EntryNormal && !e.data.is_empty() {
                self.sm.apply(e.index, &e.data);
            }
        }
    }

    fn maybe_compact(&mut self) -> io::Result<()> {
        let store = self.raw.store();
        let since = self.applied.saturating_sub(store.snapshot_index());
        if since as usize >= self.compact_after {
            let data = self.sm.snapshot();
            self.raw.mut_store().compact(self.applied, data)?;
        }
        Ok(())
    }

    /// A peer could not be reached: raft-rs slows its sending to it.
    pub fn report_unreachable(&mut self, id: u64) {
        self.raw.report_unreachable(id);
    }
}
