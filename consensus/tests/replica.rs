//! Three replicas of one partition in one process (one glommio executor),
//! messages passed in memory: their Raft logs are their segment logs, so
//! after replication the three logs are the same bytes; a leader cut off
//! keeps nothing it could not commit once it is back; a replica restarts
//! from its log.

use std::collections::HashSet;
use std::future::Future;
use std::path::{Path, PathBuf};

use glommio::{LocalExecutorBuilder, Placement};
use sluice_consensus::replica::Replica;
use sluice_consensus::Message;
use sluice_storage::batch::{BatchBuilder, BatchHeader, HEADER_LEN};
use sluice_storage::{Log, LogConfig};

const VOTERS: [u64; 3] = [1, 2, 3];
/// Entries whose bytes stay in memory: small, so that a follower that is
/// behind gets the older ones read back from the leader's segments.
const WINDOW: usize = 2;

fn run<F, Fut, T>(f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    LocalExecutorBuilder::new(Placement::Unbound).io_memory(1 << 20).spawn(f).expect("executor").join().expect("joined")
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 10,
        index_interval_bytes: 256,
        retention_ms: None,
        segment_ms: None,
        ..LogConfig::default()
    }
}

/// A producer batch of 3 records whose values start with `tag`, stamped
/// from `ts` on.
fn batch_at(tag: &str, ts: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new(ts);
    for i in 0..3 {
        b.push(ts + i, Some(format!("k{i}").as_bytes()), Some(format!("{tag}-{i}").as_bytes()));
    }
    b.build()
}

fn batch(tag: &str) -> Vec<u8> {
    batch_at(tag, 1_000)
}

/// The log's bytes from its start, and its batches' (base offset, leader epoch, control).
async fn contents(log: &Log) -> (Vec<u8>, Vec<(i64, i32, bool)>) {
    let (mut bytes, mut batches) = (Vec::new(), Vec::new());
    let mut at = log.log_start_offset();
    while let Some(slice) = log.read(at, 1 << 20).await.unwrap() {
        let chunk = slice.read().await.unwrap();
        let mut pos = 0;
        while pos + HEADER_LEN <= chunk.len() {
            let h = BatchHeader::read(&chunk[pos..]);
            if pos + h.size > chunk.len() {
                break;
            }
            bytes.extend_from_slice(&chunk[pos..pos + h.size]);
            batches.push((h.base_offset, h.leader_epoch, h.is_control()));
            at = h.last_offset() + 1;
            pos += h.size;
        }
    }
    (bytes, batches)
}

fn holds(bytes: &[u8], tag: &str) -> bool {
    bytes.windows(tag.len()).any(|w| w == tag.as_bytes())
}

struct Sim {
    dirs: Vec<PathBuf>,
    nodes: Vec<Option<Replica>>,
    queue: Vec<Message>,
    /// Replicas cut off from the others.
    cut: HashSet<u64>,
}

impl Sim {
    async fn new(root: &Path) -> Sim {
        Sim::with(root, 3).await
    }

    /// Replicas 1..=n of a group whose first voters are 1, 2 and 3.
    async fn with(root: &Path, n: u64) -> Sim {
        Sim::with_config(root, n, config()).await
    }

    async fn with_config(root: &Path, n: u64, config: LogConfig) -> Sim {
        let dirs: Vec<PathBuf> = (1..=n).map(|id| root.join(format!("r{id}"))).collect();
        let mut nodes = Vec::new();
        for (i, d) in dirs.iter().enumerate() {
            nodes.push(Some(Replica::open(i as u64 + 1, &VOTERS, d, config.clone(), WINDOW).await.unwrap()));
        }
        Sim { dirs, nodes, queue: Vec::new(), cut: HashSet::new() }
    }

    /// One tick everywhere, then ready loops and deliveries until quiet.
    async fn round(&mut self) {
        for n in self.nodes.iter_mut().flatten() {
            n.tick();
        }
        for _ in 0..20 {
            for n in self.nodes.iter_mut().flatten() {
                self.queue.extend(n.process().await.unwrap());
            }
            if self.queue.is_empty() {
                break;
            }
            for m in std::mem::take(&mut self.queue) {
                if self.cut.contains(&m.from) || self.cut.contains(&m.to) {
                    continue;
                }
                if let Some(n) = self.nodes[(m.to - 1) as usize].as_mut() {
                    n.step(m);
                }
            }
        }
    }

    async fn until(&mut self, what: &str, done: impl Fn(&Sim) -> bool) {
        for _ in 0..300 {
            if done(self) {
                return;
            }
            self.round().await;
        }
        panic!("not within 300 rounds: {what}");
    }

    fn leader_among(&self, ids: &[u64]) -> Option<usize> {
        (0..self.nodes.len())
            .find(|&i| ids.contains(&(i as u64 + 1)) && self.nodes[i].as_ref().is_some_and(|n| n.is_leader()))
    }

    /// Waits for a leader, closes the follower after it, and has the leader
    /// propose `batches` batches ("b0", "b1", …), a round each. Returns
    /// (leader, the one closed).
    async fn leader_and_one_away(&mut self, batches: usize) -> (usize, usize) {
        self.until("a leader", |s| s.leader_among(&VOTERS).is_some()).await;
        let l = self.leader_among(&VOTERS).unwrap();
        let down = (l + 1) % 3;
        self.nodes[down].take().unwrap().close().await.unwrap();
        for n in 0..batches {
            self.nodes[l].as_mut().unwrap().propose(batch(&format!("b{n}"))).unwrap();
            self.round().await;
        }
        (l, down)
    }

    fn hw(&self, i: usize) -> i64 {
        self.nodes[i].as_ref().unwrap().high_watermark()
    }
}

#[test]
fn three_replicas_hold_the_same_log_and_a_cut_off_leader_loses_only_what_it_could_not_commit() {
    let root = tempfile::tempdir().unwrap();
    let root_path = root.path().to_path_buf();
    run(move || async move {
        let mut sim = Sim::new(&root_path).await;
        sim.until("a leader", |s| s.leader_among(&VOTERS).is_some()).await;
        let l = sim.leader_among(&VOTERS).unwrap();
        for n in 0..10 {
            sim.nodes[l].as_mut().unwrap().propose(batch(&format!("first{n}"))).unwrap();
        }
        // The leader's no-op and ten batches of three: 31 offsets.
        sim.until("all committed everywhere", |s| (0..3).all(|i| s.hw(i) == 31)).await;
        let (bytes, batches) = contents(sim.nodes[0].as_ref().unwrap().log()).await;
        for i in 1..3 {
            assert_eq!(
                contents(sim.nodes[i].as_ref().unwrap().log()).await.0,
                bytes,
                "replica {} has other bytes",
                i + 1
            );
        }
        assert!(batches[0].2, "the leader's no-op is a control batch");
        assert_eq!(batches.len(), 11);
        assert!(
            batches.iter().all(|b| b.1 as u64 == batches[0].1 as u64 && b.1 >= 1),
            "the term is the epoch: {batches:?}"
        );
        assert_eq!(batches.iter().map(|b| b.0).collect::<Vec<_>>(), [0, 1, 4, 7, 10, 13, 16, 19, 22, 25, 28]);

        // Cut the leader off; what it takes now it cannot commit.
        let old = VOTERS[l];
        sim.cut.insert(old);
        for n in 0..3 {
            // Later timestamps than anything committed: a no-op written
            // after the cut must not carry them.
            sim.nodes[l].as_mut().unwrap().propose(batch_at(&format!("lost{n}"), 9_000_000)).unwrap();
        }
        let others: Vec<u64> = VOTERS.iter().copied().filter(|id| *id != old).collect();
        sim.until("a new leader among the others", |s| s.leader_among(&others).is_some()).await;
        let nl = sim.leader_among(&others).unwrap();
        for n in 0..3 {
            sim.nodes[nl].as_mut().unwrap().propose(batch(&format!("second{n}"))).unwrap();
        }
        let ids: Vec<usize> = others.iter().map(|id| (*id - 1) as usize).collect();
        // 31 + a no-op + three batches of three.
        sim.until("the others commit", |s| ids.iter().all(|&i| s.hw(i) == 41)).await;
        assert_eq!(sim.hw(l), 31, "the cut-off leader committed nothing more");
        assert!(holds(&contents(sim.nodes[l].as_ref().unwrap().log()).await.0, "lost0"));

        // Back: its tail is cut and replaced by the new leader's.
        sim.cut.clear();
        sim.until("all equal again", |s| (0..3).all(|i| s.hw(i) == 41)).await;
        let (bytes, batches) = contents(sim.nodes[nl].as_ref().unwrap().log()).await;
        for i in 0..3 {
            let (b, _) = contents(sim.nodes[i].as_ref().unwrap().log()).await;
            assert_eq!(b, bytes, "replica {} differs", i + 1);
            assert!(!holds(&b, "lost"), "replica {} kept an uncommitted batch", i + 1);
            assert!(holds(&b, "second2"));
        }
        let epochs: Vec<i32> = batches.iter().map(|b| b.1).collect();
        assert!(epochs.windows(2).all(|w| w[0] <= w[1]) && epochs[0] < epochs[epochs.len() - 1], "{epochs:?}");
        let old_log = sim.nodes[l].as_ref().unwrap().log();
        assert_eq!(old_log.epochs().entries().len(), 2, "{:?}", old_log.epochs().entries());

        // A follower restarts from its log and hard state, and catches up.
        let f = (0..3).find(|&i| i != nl).unwrap();
        sim.nodes[f].take().unwrap().close().await.unwrap();
        sim.nodes[f] = Some(Replica::open(VOTERS[f], &VOTERS, &sim.dirs[f], config(), WINDOW).await.unwrap());
        assert_eq!(contents(sim.nodes[f].as_ref().unwrap().log()).await.0, bytes, "the log is as it was");
        let leader = sim.leader_among(&VOTERS).unwrap();
        sim.nodes[leader].as_mut().unwrap().propose(batch("third")).unwrap();
        sim.until("the restarted replica has the new batch", |s| (0..3).all(|i| s.hw(i) == 44)).await;
        let (b, _) = contents(sim.nodes[f].as_ref().unwrap().log()).await;
        assert!(holds(&b, "third-2"));

        // Leaders change twice more (each writes its no-op); the logs stay
        // the same bytes, whoever writes.
        for _ in 0..2 {
            let leader = sim.leader_among(&VOTERS).unwrap();
            let before = sim.hw(leader);
            sim.cut.insert(VOTERS[leader]);
            let others: Vec<u64> = VOTERS.iter().copied().filter(|id| *id != VOTERS[leader]).collect();
            sim.until("another leader", |s| s.leader_among(&others).is_some()).await;
            sim.cut.clear();
            sim.until("all caught up past the new no-op", |s| {
                let h = s.hw(0);
                h > before && (0..3).all(|i| s.hw(i) == h)
            })
            .await;
        }
        let (bytes, batches) = contents(sim.nodes[0].as_ref().unwrap().log()).await;
        for i in 1..3 {
            assert_eq!(contents(sim.nodes[i].as_ref().unwrap().log()).await.0, bytes, "replica {} differs", i + 1);
        }
        assert!(batches.iter().filter(|b| b.2).count() >= 4, "a no-op per leader: {batches:?}");
    });
}

/// A replica down while the others take 40 batches (over several segment
/// rolls) catches up after its restart from what the leader reads back from
/// its segment files, to the same bytes.
#[test]
fn a_replica_far_behind_catches_up_from_the_leaders_segments() {
    let root = tempfile::tempdir().unwrap();
    let root_path = root.path().to_path_buf();
    run(move || async move {
        let mut sim = Sim::new(&root_path).await;
        let (l, down) = sim.leader_and_one_away(40).await;
        let up: Vec<usize> = (0..3).filter(|&i| i != down).collect();
        sim.until("the two commit", |s| up.iter().all(|&i| s.hw(i) == 121)).await;
        assert!(sim.nodes[l].as_ref().unwrap().log().segment_count() > 2);
        sim.nodes[down] = Some(Replica::open(VOTERS[down], &VOTERS, &sim.dirs[down], config(), WINDOW).await.unwrap());
        sim.until("the third catches up", |s| s.hw(down) == 121).await;
        let (bytes, _) = contents(sim.nodes[l].as_ref().unwrap().log()).await;
        assert_eq!(contents(sim.nodes[down].as_ref().unwrap().log()).await.0, bytes);
    });
}

/// A fourth replica joins as a learner, catches up, and takes a voter's
/// place through a joint configuration; the change is in every log, so a
/// restarted replica has it, and the new voters elect without the removed
/// one.
#[test]
fn a_replica_joins_catches_up_and_replaces_a_voter() {
    let root = tempfile::tempdir().unwrap();
    let root_path = root.path().to_path_buf();
    run(move || async move {
        let mut sim = Sim::with(&root_path, 4).await;
        sim.until("a leader", |s| s.leader_among(&VOTERS).is_some()).await;
        let l = sim.leader_among(&VOTERS).unwrap();
        for n in 0..5 {
            sim.nodes[l].as_mut().unwrap().propose(batch(&format!("before{n}"))).unwrap();
        }
        sim.until("the three commit", |s| (0..3).all(|i| s.hw(i) == 16)).await;
        assert_eq!(sim.hw(3), 0, "not a member yet: it has nothing");

        sim.nodes[l].as_mut().unwrap().propose_replicas(&[4], &[], &[]).unwrap();
        sim.until("the learner catches up", |s| s.hw(3) >= 16 && s.hw(3) == s.hw(l)).await;
        assert_eq!(sim.nodes[l].as_ref().unwrap().conf().learners, vec![4]);
        assert!(sim.nodes[l].as_ref().unwrap().has_whole_log(4));

        // A follower makes way for it.
        let gone = (0..3).find(|&i| i != l).unwrap();
        let removed = gone as u64 + 1;
        sim.nodes[l].as_mut().unwrap().propose_replicas(&[], &[4], &[removed]).unwrap();
        let mut target: Vec<u64> = VOTERS.iter().copied().filter(|id| *id != removed).chain([4]).collect();
        target.sort_unstable();
        sim.until("every member has the new voters, joint left", |s| {
            (0..4).filter(|&i| i != gone).all(|i| {
                let c = s.nodes[i].as_ref().unwrap().conf();
                let mut v = c.voters.clone();
                v.sort_unstable();
                v == target && c.voters_outgoing.is_empty() && c.learners.is_empty()
            })
        })
        .await;
        sim.cut.insert(removed);
        let hw = sim.hw(l);
        sim.nodes[l].as_mut().unwrap().propose(batch("after")).unwrap();
        sim.until("committed without the removed replica", |s| s.hw(l) == hw + 3 && s.hw(3) == hw + 3).await;

        // The joined replica restarts: its log says it is a voter.
        sim.nodes[3].take().unwrap().close().await.unwrap();
        sim.nodes[3] = Some(Replica::open(4, &VOTERS, &sim.dirs[3], config(), WINDOW).await.unwrap());
        let mut voters = sim.nodes[3].as_ref().unwrap().conf().voters;
        voters.sort_unstable();
        assert_eq!(voters, target, "replayed from the log");
        // Without the old leader, the two others of the new voters elect.
        let old = l as u64 + 1;
        sim.cut.insert(old);
        let rest: Vec<u64> = target.iter().copied().filter(|id| *id != old).collect();
        sim.until("a leader among the new voters", |s| s.leader_among(&rest).is_some()).await;
        let nl = sim.leader_among(&rest).unwrap();
        let hw = sim.hw(nl);
        sim.nodes[nl].as_mut().unwrap().propose(batch("last")).unwrap();
        sim.until("they commit", |s| rest.iter().all(|id| s.hw(*id as usize - 1) >= hw + 3)).await;
        let (b, _) = contents(sim.nodes[3].as_ref().unwrap().log()).await;
        assert!(holds(&b, "before0") && holds(&b, "after") && holds(&b, "last-2"));
    });
}

/// Retention on a replicated log: each replica deletes segments of what it
/// has applied; a replica down meanwhile is behind the leader's log start
/// when it returns, is sent where the log starts (a Raft snapshot), starts
/// its log there and catches up to the same bytes; replicas reopen on a log
/// whose start moved.
#[test]
fn retention_moves_the_log_start_and_a_replica_behind_it_starts_there() {
    let root = tempfile::tempdir().unwrap();
    let root_path = root.path().to_path_buf();
    run(move || async move {
        let retained = LogConfig { retention_bytes: Some(3 << 10), ..config() };
        let mut sim = Sim::with_config(&root_path, 3, retained.clone()).await;
        let (l, down) = sim.leader_and_one_away(60).await;
        let up = 3 - l - down;
        sim.until("the two commit", |s| [l, up].iter().all(|&i| s.hw(i) == 181)).await;
        for i in [l, up] {
            let n = sim.nodes[i].as_mut().unwrap();
            assert!(n.enforce_retention(0).await.unwrap(), "replica {} had segments to drop", i + 1);
            assert!(n.log().log_start_offset() > 0);
            assert!(n.log().size_bytes() <= 4 << 10, "{}", n.log().size_bytes());
        }
        let start = sim.nodes[l].as_ref().unwrap().log().log_start_offset();

        sim.nodes[down] =
            Some(Replica::open(down as u64 + 1, &VOTERS, &sim.dirs[down], retained.clone(), WINDOW).await.unwrap());
        sim.until("the returning replica catches up", |s| s.hw(down) == 181).await;
        let returned = sim.nodes[down].as_ref().unwrap().log();
        assert_eq!(returned.log_start_offset(), start, "it starts where the leader's log starts");
        let (bytes, _) = contents(sim.nodes[l].as_ref().unwrap().log()).await;
        assert_eq!(contents(returned).await.0, bytes, "the same bytes from there on");
        assert!(!holds(&bytes, "b0-") && holds(&bytes, "b59-2"));

        // Every replica reopens on its moved start, and the group goes on.
        for i in 0..3 {
            sim.nodes[i].take().unwrap().close().await.unwrap();
            sim.nodes[i] =
                Some(Replica::open(i as u64 + 1, &VOTERS, &sim.dirs[i], retained.clone(), WINDOW).await.unwrap());
        }
        sim.until("a leader again", |s| s.leader_among(&VOTERS).is_some()).await;
        let l = sim.leader_among(&VOTERS).unwrap();
        sim.nodes[l].as_mut().unwrap().propose(batch("after")).unwrap();
        sim.until("all commit the new batch", |s| {
            let h = s.hw(l);
            h > 181 && (0..3).all(|i| s.hw(i) == h)
        })
        .await;
        let (bytes, _) = contents(sim.nodes[l].as_ref().unwrap().log()).await;
        for i in 0..3 {
            assert_eq!(contents(sim.nodes[i].as_ref().unwrap().log()).await.0, bytes, "replica {} differs", i + 1);
        }
    });
}

#[test]
fn delete_records_moves_every_replicas_log_start_even_a_returning_ones() {
    let root = tempfile::tempdir().unwrap();
    let root_path = root.path().to_path_buf();
    run(move || async move {
        let mut sim = Sim::new(&root_path).await;
        let (l, down) = sim.leader_and_one_away(30).await;
        sim.until("the two commit", |s| s.hw(l) == 91).await;
        // Offset 0 is the leader's no-op; 50 is inside a batch (49..=51).
        let index = sim.nodes[l].as_mut().unwrap().propose_delete_records(50).unwrap();
        sim.until("the deletion applies on the two", |s| {
            (0..3).filter(|&i| i != down).all(|i| {
                let n = s.nodes[i].as_ref().unwrap();
                n.applied() >= index && n.log().log_start_offset() == 50
            })
        })
        .await;
        assert!(sim.nodes[l].as_ref().unwrap().log().segment_count() < 4, "segments below went");

        // The one that was away is behind the leader's start: it starts
        // where the leader's first entry begins, then applies the deletion.
        sim.nodes[down] =
            Some(Replica::open(down as u64 + 1, &VOTERS, &sim.dirs[down], config(), WINDOW).await.unwrap());
        sim.until("the returning replica applies it", |s| {
            s.nodes[down].as_ref().unwrap().log().log_start_offset() == 50 && s.hw(down) == s.hw(l)
        })
        .await;
        let (bytes, _) = contents(sim.nodes[l].as_ref().unwrap().log()).await;
        assert_eq!(contents(sim.nodes[down].as_ref().unwrap().log()).await.0, bytes);
        assert!(!holds(&bytes, "b0-") && holds(&bytes, "b29-2"));

        // Every replica reopens at 50, and the group goes on.
        for i in 0..3 {
            sim.nodes[i].take().unwrap().close().await.unwrap();
            sim.nodes[i] = Some(Replica::open(i as u64 + 1, &VOTERS, &sim.dirs[i], config(), WINDOW).await.unwrap());
            assert_eq!(sim.nodes[i].as_ref().unwrap().log().log_start_offset(), 50, "replica {}", i + 1);
        }
        sim.until("a leader again", |s| s.leader_among(&VOTERS).is_some()).await;
        let l = sim.leader_among(&VOTERS).unwrap();
        sim.nodes[l].as_mut().unwrap().propose(batch("after")).unwrap();
        sim.until("all commit the new batch", |s| {
            let h = s.hw(l);
            h > 92 && (0..3).all(|i| s.hw(i) == h)
        })
        .await;
    });
}

#[test]
fn compaction_keeps_one_batch_per_entry_and_a_replica_behind_gets_the_compacted_batches() {
    let root = tempfile::tempdir().unwrap();
    let root_path = root.path().to_path_buf();
    run(move || async move {
        let compacted = LogConfig {
            cleanup_delete: false,
            cleanup_compact: true,
            compaction: sluice_storage::CompactionConfig { min_cleanable_ratio: 0.0, ..Default::default() },
            ..config()
        };
        let mut sim = Sim::with_config(&root_path, 3, compacted.clone()).await;
        // Every batch writes the same three keys.
        let (l, down) = sim.leader_and_one_away(60).await;
        sim.until("the two commit", |s| s.hw(l) == 181).await;
        let (_, spans) = contents(sim.nodes[l].as_ref().unwrap().log()).await;
        for i in (0..3).filter(|&i| i != down) {
            let n = sim.nodes[i].as_mut().unwrap();
            let size = n.log().size_bytes();
            let plan = n.plan_clean(2_000).expect("a pass is due");
            let outcome = plan.run(None).await.unwrap().expect("not aborted");
            assert!(n.finish_clean(outcome).await.unwrap());
            assert!(n.log().size_bytes() < size * 2 / 3, "{} of {size} bytes", n.log().size_bytes());
            assert_eq!(contents(n.log()).await.1, spans, "replica {}: one batch per entry, as before", i + 1);
        }
        let (bytes, _) = contents(sim.nodes[l].as_ref().unwrap().log()).await;
        assert!(!holds(&bytes, "b0-") && holds(&bytes, "b59-2"));

        // A replica behind is sent the compacted batches (read back from
        // the leader's segments), and the group goes on.
        sim.nodes[down] =
            Some(Replica::open(down as u64 + 1, &VOTERS, &sim.dirs[down], compacted.clone(), WINDOW).await.unwrap());
        sim.until("the returning replica catches up", |s| s.hw(down) == 181).await;
        sim.nodes[l].as_mut().unwrap().propose(batch("after")).unwrap();
        sim.until("all commit the new batch", |s| (0..3).all(|i| s.hw(i) == 184)).await;
        let (bytes, spans) = contents(sim.nodes[l].as_ref().unwrap().log()).await;
        let (got, got_spans) = contents(sim.nodes[down].as_ref().unwrap().log()).await;
        assert_eq!(got_spans, spans);
        assert_eq!(got, bytes, "the returning replica holds the leader's compacted log");
        // It reopens on that log.
        sim.nodes[down].take().unwrap().close().await.unwrap();
        let n = Replica::open(down as u64 + 1, &VOTERS, &sim.dirs[down], compacted, WINDOW).await.unwrap();
        assert_eq!(n.high_watermark(), 184);
    });
}
