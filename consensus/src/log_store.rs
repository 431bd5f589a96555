//! A Raft log on disk, for groups whose log is small (the metadata quorum):
//! every entry is also kept in memory, and a snapshot of the state machine
//! lets the log be cut short.
//!
//! Files in the group's directory:
//! - `log`: entries appended as `[u32 len][u32 crc32c][Entry protobuf]`
//!   (little-endian). A later entry with an index already present replaces
//!   that entry and every one after it, as Raft truncates a follower's log;
//!   a torn or corrupt tail is cut at the last whole record on open.
//! - `hard_state`, `snapshot`: `[u32 crc32c][protobuf]`, each replaced
//!   whole (written aside, fsynced, renamed).
//!
//! Every write is durable (fsync) before the call returns: Raft's promises
//! rest on what a node said it had persisted.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};

/// Largest entry or snapshot accepted from disk; anything bigger is damage.
const MAX_RECORD: usize = 256 << 20;

pub struct DiskLog {
    dir: PathBuf,
    file: File,
    hard_state: HardState,
    conf_state: ConfState,
    /// The latest snapshot (index 0 and no data when there is none).
    snapshot: Snapshot,
    /// Entries after the snapshot, contiguous.
    entries: Vec<Entry>,
}

fn corrupt(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to `dir/name` so that a crash leaves the old or the new
/// file, never a mix.
fn replace_file(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

fn framed_crc(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + payload.len());
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Reads a `[u32 crc32c][protobuf]` file; `None` when it does not exist.
fn read_crc_file<M: protobuf::Message>(path: &Path) -> io::Result<Option<M>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if bytes.len() < 4 || bytes.len() > MAX_RECORD + 4 {
        return Err(corrupt(format!("{}: {} bytes", path.display(), bytes.len())));
    }
    let (crc, payload) = bytes.split_at(4);
    if u32::from_le_bytes(crc.try_into().unwrap()) != crc32c::crc32c(payload) {
        return Err(corrupt(format!("{}: checksum mismatch", path.display())));
    }
    M::parse_from_bytes(payload).map(Some).map_err(|e| corrupt(format!("{}: {e}", path.display())))
}

fn encode_entry(e: &Entry, out: &mut Vec<u8>) -> io::Result<()> {
    let payload = e.write_to_bytes().map_err(|e| corrupt(e.to_string()))?;
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(())
}

impl DiskLog {
    /// Opens (or creates) the log in `dir`. A new group starts with
    /// `voters`; one that has a snapshot keeps the voters it recorded, and
    /// `voters` must match them (changing the voter set is not supported).
    pub fn open(dir: &Path, voters: &[u64]) -> io::Result<DiskLog> {
        std::fs::create_dir_all(dir)?;
        let snapshot: Snapshot = read_crc_file(&dir.join("snapshot"))?.unwrap_or_default();
        let mut conf_state = ConfState::default();
        conf_state.set_voters(voters.to_vec());
        if snapshot.get_metadata().index > 0 {
            let mut had = snapshot.get_metadata().get_conf_state().get_voters().to_vec();
            let mut want = voters.to_vec();
            had.sort_unstable();
            want.sort_unstable();
            if had != want {
                return Err(io::Error::other(format!(
                    "{}: the group's voters are {had:?}, the configuration says {want:?}; changing the voter set is \
                     not supported",
                    dir.display()
                )));
            }
            conf_state = snapshot.get_metadata().get_conf_state().clone();
        }
        let mut hard_state: HardState = read_crc_file(&dir.join("hard_state"))?.unwrap_or_default();
        let (entries, valid_len) = Self::replay(&dir.join("log"), snapshot.get_metadata().index)?;
        let file = OpenOptions::new().create(true).append(true).read(true).open(dir.join("log"))?;
        if file.metadata()?.len() > valid_len {
            tracing::warn!(
                dir = %dir.display(),
                kept = valid_len,
                len = file.metadata()?.len(),
                "raft log: cutting a torn or corrupt tail"
            );
            file.set_len(valid_len)?;
            file.sync_all()?;
        }
        let last = entries.last().map_or(snapshot.get_metadata().index, |e| e.index);
        // The commit index can never be behind the snapshot, nor past what
        // this log holds (a lost tail is re-sent by the leader).
        let commit = hard_state.commit.max(snapshot.get_metadata().index).min(last);
        hard_state.commit = commit;
        hard_state.term = hard_state.term.max(snapshot.get_metadata().term);
        Ok(DiskLog { dir: dir.to_path_buf(), file, hard_state, conf_state, snapshot, entries })
    }

    /// The entries after `snap_index` in the log file, and the length of
    /// its valid prefix.
    fn replay(path: &Path, snap_index: u64) -> io::Result<(Vec<Entry>, u64)> {
        let mut bytes = Vec::new();
        match File::open(path) {
            Ok(mut f) => {
                f.read_to_end(&mut bytes)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
            Err(e) => return Err(e),
        }
        let mut entries: Vec<Entry> = Vec::new();
        let mut pos = 0usize;
        while bytes.len() - pos >= 8 {
            let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
            let crc = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap());
            if len > MAX_RECORD || bytes.len() - pos - 8 < len {
                break;
            }
            let payload = &bytes[pos + 8..pos + 8 + len];
            if crc32c::crc32c(payload) != crc {
                break;
            }
            let Ok(e) = Entry::parse_from_bytes(payload) else { break };
            let next = entries.last().map_or(snap_index + 1, |l| l.index + 1);
            if e.index > next || e.index == 0 {
                // A gap cannot be written by this code: treat it as damage.
                break;
            }
            pos += 8 + len;
            if e.index <= snap_index {
                continue;
            }
            let first = snap_index + 1;
            entries.truncate((e.index - first) as usize);
            entries.push(e);
        }
        Ok((entries, pos as u64))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn first(&self) -> u64 {
        self.snapshot.get_metadata().index + 1
    }

    fn last(&self) -> u64 {
        self.entries.last().map_or(self.snapshot.get_metadata().index, |e| e.index)
    }

    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    pub fn snapshot_index(&self) -> u64 {
        self.snapshot.get_metadata().index
    }

    /// The latest snapshot's state-machine bytes (empty when none).
    pub fn snapshot_data(&self) -> &[u8] {
        self.snapshot.get_data()
    }

    /// Entries held after the snapshot.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends `ents` (replacing any entries from `ents[0].index` on) and
    /// makes them durable.
    pub fn append(&mut self, ents: &[Entry]) -> io::Result<()> {
        let Some(first_new) = ents.first().map(|e| e.index) else { return Ok(()) };
        if first_new < self.first() || first_new > self.last() + 1 {
            return Err(io::Error::other(format!(
                "raft log: appending at {first_new} to a log holding {}..={}",
                self.first(),
                self.last()
            )));
        }
        let mut buf = Vec::new();
        for e in ents {
            encode_entry(e, &mut buf)?;
        }
        self.file.write_all(&buf)?;
        self.file.sync_data()?;
        self.entries.truncate((first_new - self.first()) as usize);
        self.entries.extend_from_slice(ents);
        Ok(())
    }

    pub fn set_hard_state(&mut self, hs: HardState) -> io::Result<()> {
        let bytes = hs.write_to_bytes().map_err(|e| corrupt(e.to_string()))?;
        replace_file(&self.dir, "hard_state", &framed_crc(&bytes))?;
        self.hard_state = hs;
        Ok(())
    }

    pub fn set_commit(&mut self, commit: u64) -> io::Result<()> {
        if commit == self.hard_state.commit {
            return Ok(());
        }
        let mut hs = self.hard_state.clone();
        hs.commit = commit;
        self.set_hard_state(hs)
    }

    /// Installs a snapshot received from the leader: the state machine is
    /// replaced by its data, and the log keeps only what follows it.
    pub fn apply_snapshot(&mut self, snap: Snapshot) -> io::Result<()> {
        let meta = snap.get_metadata().clone();
        if meta.index <= self.snapshot_index() {
            return Ok(());
        }
        let keep_tail = self.term_at(meta.index) == Some(meta.term);
        self.write_snapshot(&snap)?;
        let cut = if keep_tail { (meta.index + 1 - self.first()) as usize } else { self.entries.len() };
        let rest: Vec<Entry> = self.entries.split_off(cut.min(self.entries.len()));
        self.entries = if keep_tail { rest } else { Vec::new() };
        self.snapshot = snap;
        self.conf_state = meta.get_conf_state().clone();
        self.rewrite_log()?;
        let mut hs = self.hard_state.clone();
        hs.commit = hs.commit.max(meta.index);
        hs.term = hs.term.max(meta.term);
        self.set_hard_state(hs)
    }

    /// Records the state machine as of `index` (which must be applied) and
    /// drops the entries up to it.
    pub fn compact(&mut self, index: u64, data: Vec<u8>) -> io::Result<()> {
        if index <= self.snapshot_index() {
            return Ok(());
        }
        let term = self
            .term_at(index)
            .ok_or_else(|| io::Error::other(format!("raft log: compacting to {index}, not in the log")))?;
        let mut meta = SnapshotMetadata { index, term, ..Default::default() };
        meta.set_conf_state(self.conf_state.clone());
        let mut snap = Snapshot::default();
        snap.set_metadata(meta);
        snap.set_data(data.into());
        self.write_snapshot(&snap)?;
        let rest = self.entries.split_off((index + 1 - self.first()) as usize);
        self.entries = rest;
        self.snapshot = snap;
        self.rewrite_log()
    }

    fn write_snapshot(&self, snap: &Snapshot) -> io::Result<()> {
        let bytes = snap.write_to_bytes().map_err(|e| corrupt(e.to_string()))?;
        if bytes.len() > MAX_RECORD {
            return Err(io::Error::other(format!("raft snapshot of {} bytes is over the limit", bytes.len())));
        }
        replace_file(&self.dir, "snapshot", &framed_crc(&bytes))
    }

    /// Rewrites the log file with the entries held now (after a snapshot).
    fn rewrite_log(&mut self) -> io::Result<()> {
        let mut buf = Vec::new();
        for e in &self.entries {
            encode_entry(e, &mut buf)?;
        }
        replace_file(&self.dir, "log", &buf)?;
        self.file = OpenOptions::new().append(true).read(true).open(self.dir.join("log"))?;
        Ok(())
    }

    fn term_at(&self, idx: u64) -> Option<u64> {
        if idx == self.snapshot_index() {
            return Some(self.snapshot.get_metadata().term);
        }
        if idx < self.first() || idx > self.last() {
            return None;
        }
        Some(self.entries[(idx - self.first()) as usize].term)
    }
}

impl Storage for DiskLog {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(self.hard_state.clone(), self.conf_state.clone()))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last() + 1 || low > high {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let from = (low - self.first()) as usize;
        let to = (high - self.first()) as usize;
        let mut out = self.entries[from..to].to_vec();
        raft::util::limit_size(&mut out, max_size.into());
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx < self.snapshot_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        self.term_at(idx).ok_or(raft::Error::Store(StorageError::Unavailable))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        if self.snapshot_index() < request_index || self.snapshot_index() == 0 {
            return Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable));
        }
        Ok(self.snapshot.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
        Entry { index, term, data: data.to_vec().into(), ..Default::default() }
    }

    #[test]
    fn entries_and_hard_state_survive_reopen_and_a_later_entry_replaces_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = DiskLog::open(dir.path(), &[1, 2, 3]).unwrap();
        log.append(&[entry(1, 1, b"a"), entry(2, 1, b"b"), entry(3, 1, b"c")]).unwrap();
        log.append(&[entry(2, 2, b"B")]).unwrap();
        log.set_hard_state(HardState { term: 2, vote: 3, commit: 2, ..Default::default() }).unwrap();
        drop(log);
        let log = DiskLog::open(dir.path(), &[1, 2, 3]).unwrap();
        assert_eq!(log.last(), 2);
        let got = log.entries(1, 3, None, GetEntriesContext::empty(false)).unwrap();
        assert_eq!(
            got.iter().map(|e| (e.index, e.term, e.data.to_vec())).collect::<Vec<_>>(),
            vec![(1, 1, b"a".to_vec()), (2, 2, b"B".to_vec())]
        );
        assert_eq!((log.hard_state().term, log.hard_state().vote, log.hard_state().commit), (2, 3, 2));
        assert_eq!(log.initial_state().unwrap().conf_state.voters, vec![1, 2, 3]);
    }

    #[test]
    fn a_torn_tail_is_cut_at_the_last_whole_entry() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = DiskLog::open(dir.path(), &[1]).unwrap();
        log.append(&[entry(1, 1, b"one"), entry(2, 1, b"two")]).unwrap();
        drop(log);
        let path = dir.path().join("log");
        let len = std::fs::metadata(&path).unwrap().len();
        // Half of the second record, then garbage after a whole one.
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 3).unwrap();
        let log = DiskLog::open(dir.path(), &[1]).unwrap();
        assert_eq!(log.last(), 1);
        let cut = std::fs::metadata(&path).unwrap().len();
        assert!(cut < len - 3, "the torn record is removed from the file");
        drop(log);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let log = DiskLog::open(dir.path(), &[1]).unwrap();
        assert_eq!(log.last(), 0, "a record whose checksum fails is not replayed");
    }

    #[test]
    fn compaction_keeps_the_snapshot_and_the_entries_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = DiskLog::open(dir.path(), &[1, 2, 3]).unwrap();
        let ents: Vec<Entry> = (1..=10).map(|i| entry(i, 1 + i / 5, format!("e{i}").as_bytes())).collect();
        log.append(&ents).unwrap();
        log.set_commit(8).unwrap();
        log.compact(6, b"state@6".to_vec()).unwrap();
        assert_eq!(log.first_index().unwrap(), 7);
        assert!(matches!(
            log.entries(5, 7, None, GetEntriesContext::empty(false)),
            Err(raft::Error::Store(StorageError::Compacted))
        ));
        assert_eq!(log.term(6).unwrap(), 2);
        drop(log);
        let log = DiskLog::open(dir.path(), &[1, 2, 3]).unwrap();
        assert_eq!((log.first_index().unwrap(), log.last_index().unwrap()), (7, 10));
        assert_eq!(log.snapshot(0, 2).unwrap().get_data(), b"state@6");
        assert_eq!(log.hard_state().commit, 8);
        assert!(DiskLog::open(dir.path(), &[1, 2]).is_err(), "another voter set is refused");
    }

    #[test]
    fn an_installed_snapshot_replaces_a_log_that_disagrees_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = DiskLog::open(dir.path(), &[1, 2, 3]).unwrap();
        log.append(&[entry(1, 1, b"a"), entry(2, 1, b"b")]).unwrap();
        let mut snap = Snapshot::default();
        snap.mut_metadata().index = 5;
        snap.mut_metadata().term = 3;
        snap.mut_metadata().mut_conf_state().set_voters(vec![1, 2, 3]);
        snap.set_data(b"leader's state".to_vec().into());
        log.apply_snapshot(snap).unwrap();
        assert_eq!((log.first_index().unwrap(), log.last_index().unwrap()), (6, 5));
        log.append(&[entry(6, 3, b"after")]).unwrap();
        drop(log);
        let log = DiskLog::open(dir.path(), &[1, 2, 3]).unwrap();
        assert_eq!((log.first_index().unwrap(), log.last_index().unwrap()), (6, 6));
        assert_eq!(log.snapshot_data(), b"leader's state");
        assert_eq!(log.hard_state().commit, 5);
    }
}
