//! A three-node group, in one process: elections, replication, restarts
//! from disk, log compaction and catching up from a snapshot; and the same
//! group over the TCP transport.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sluice_consensus::transport::{Frame, Transport};
use sluice_consensus::{Message, RaftNode, StateMachine};

/// The applied entries, in order; a snapshot is their concatenation.
#[derive(Default)]
struct Applied(Vec<String>);

impl StateMachine for Applied {
    fn apply(&mut self, _index: u64, data: &[u8]) {
        self.0.push(String::from_utf8(data.to_vec()).unwrap());
    }
    fn snapshot(&self) -> Vec<u8> {
        self.0.join("\n").into_bytes()
    }
    fn restore(&mut self, data: &[u8]) {
        self.0 = if data.is_empty() {
            Vec::new()
        } else {
            String::from_utf8(data.to_vec()).unwrap().split('\n').map(String::from).collect()
        };
    }
}

const VOTERS: [u64; 3] = [1, 2, 3];

struct Sim {
    dirs: Vec<PathBuf>,
    nodes: Vec<Option<RaftNode<Applied>>>,
    queue: Vec<Message>,
}

impl Sim {
    fn new(root: &Path, compact_after: usize) -> Sim {
        let dirs: Vec<PathBuf> = VOTERS.iter().map(|id| root.join(format!("n{id}"))).collect();
        let mut sim = Sim { dirs, nodes: vec![], queue: vec![] };
        for i in 0..3 {
            let n = sim.open(i, compact_after);
            sim.nodes.push(Some(n));
        }
        sim
    }

    fn open(&self, i: usize, compact_after: usize) -> RaftNode<Applied> {
        let mut n = RaftNode::open(VOTERS[i], &VOTERS, &self.dirs[i], Applied::default(), "test").unwrap();
        n.set_compact_after(compact_after);
        n
    }

    /// One round: tick, process, deliver to the nodes that are up.
    fn round(&mut self) {
        for n in self.nodes.iter_mut().flatten() {
            n.tick();
        }
        for _ in 0..5 {
            for n in self.nodes.iter_mut().flatten() {
                self.queue.extend(n.process().unwrap());
            }
            let msgs = std::mem::take(&mut self.queue);
            if msgs.is_empty() {
                break;
            }
            for m in msgs {
                if let Some(Some(n)) = self.nodes.get_mut((m.to - 1) as usize) {
                    n.step(m);
                }
            }
        }
    }

    fn leader(&self) -> Option<usize> {
        self.nodes.iter().position(|n| n.as_ref().is_some_and(|n| n.is_leader()))
    }

    fn run_until(&mut self, what: &str, mut done: impl FnMut(&Sim) -> bool) {
        for _ in 0..2000 {
            if done(self) {
                return;
            }
            self.round();
        }
        panic!("not reached in 2000 rounds: {what}");
    }

    fn propose(&mut self, data: &str) {
        self.run_until("a leader", |s| s.leader().is_some());
        let l = self.leader().unwrap();
        self.nodes[l].as_mut().unwrap().propose(data.as_bytes().to_vec()).unwrap();
    }

    fn applied(&self, i: usize) -> Vec<String> {
        self.nodes[i].as_ref().unwrap().state().0.clone()
    }
}

#[test]
fn three_nodes_elect_replicate_survive_restarts_and_catch_up_from_a_snapshot() {
    let root = tempfile::tempdir().unwrap();
    let mut sim = Sim::new(root.path(), 20);
    let want: Vec<String> = (0..50).map(|i| format!("r{i}")).collect();
    for r in &want[..30] {
        sim.propose(r);
        sim.round();
    }
    sim.run_until("30 entries applied everywhere", |s| (0..3).all(|i| s.applied(i).len() == 30));

    // Stop a follower; the other two go on, compact past it.
    let l = sim.leader().unwrap();
    let down = (l + 1) % 3;
    sim.nodes[down] = None;
    for r in &want[30..] {
        sim.propose(r);
        sim.round();
    }
    let up: Vec<usize> = (0..3).filter(|&i| i != down).collect();
    sim.run_until("50 entries on the two left", |s| up.iter().all(|&i| s.applied(i).len() == 50));
    assert!(std::fs::metadata(sim.dirs[l].join("snapshot")).is_ok(), "the leader compacted its log");

    // It comes back from its own disk, then catches up (by snapshot: the
    // entries it missed were compacted away).
    let n = sim.open(down, 20);
    let restored = n.state().0.clone();
    assert!(
        !restored.is_empty() && restored[..] == want[..restored.len()],
        "restored from its own snapshot: {restored:?}"
    );
    sim.nodes[down] = Some(n);
    sim.run_until("the returning node has everything", |s| s.applied(down) == want);

    // Every node restarted at once: the log on disk is the truth.
    for i in 0..3 {
        sim.nodes[i] = None;
    }
    for i in 0..3 {
        let n = sim.open(i, 20);
        sim.nodes[i] = Some(n);
    }
    sim.propose("after");
    sim.run_until("all three apply after a full restart", |s| {
        (0..3).all(|i| s.applied(i).last().map(String::as_str) == Some("after"))
    });
    for i in 0..3 {
        let got = sim.applied(i);
        assert_eq!(&got[..50], &want[..], "node {i}: the same entries in the same order");
        assert_eq!(got.len(), 51, "node {i}: nothing applied twice");
    }
}

#[test]
fn a_leader_cut_off_from_the_others_steps_down_and_a_new_one_is_elected() {
    let root = tempfile::tempdir().unwrap();
    let mut sim = Sim::new(root.path(), 1000);
    sim.propose("one");
    sim.run_until("applied everywhere", |s| (0..3).all(|i| s.applied(i).len() == 1));
    let old = sim.leader().unwrap();
    let term = sim.nodes[old].as_ref().unwrap().term();
    // Partition: the old leader keeps running but hears nothing and is
    // heard by no one.
    let mut isolated = sim.nodes[old].take().unwrap();
    sim.run_until("a new leader among the other two", |s| s.leader().is_some_and(|l| l != old));
    for _ in 0..40 {
        isolated.tick();
        let _ = isolated.process().unwrap();
    }
    assert!(!isolated.is_leader(), "check_quorum makes an isolated leader step down");
    assert!(isolated.propose(b"lost".to_vec()).is_err(), "a stepped-down leader takes no proposals");
    sim.nodes[old] = Some(isolated);
    sim.propose("two");
    sim.run_until("the old leader rejoins and applies", |s| s.applied(old) == ["one", "two"]);
    assert!(sim.nodes[sim.leader().unwrap()].as_ref().unwrap().term() > term);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn the_group_works_over_tcp() {
    let root = tempfile::tempdir().unwrap();
    let listeners: Vec<std::net::TcpListener> =
        (0..3).map(|_| std::net::TcpListener::bind(("127.0.0.1", free_port())).unwrap()).collect();
    let peers: HashMap<u64, String> =
        VOTERS.iter().zip(&listeners).map(|(id, l)| (*id, l.local_addr().unwrap().to_string())).collect();
    let (done_tx, done_rx) = mpsc::channel();
    let mut handles = vec![];
    for (i, listener) in listeners.into_iter().enumerate() {
        let id = VOTERS[i];
        let dir = root.path().join(format!("n{id}"));
        let peers = peers.clone();
        let done_tx = done_tx.clone();
        handles.push(std::thread::spawn(move || {
            let (tx, rx) = mpsc::channel();
            let transport = Transport::start(id, listener, &peers, move |i| tx.send(i).is_ok()).unwrap();
            let mut node = RaftNode::open(id, &VOTERS, &dir, Applied::default(), "tcp").unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut proposed = false;
            let mut last_tick = Instant::now();
            while Instant::now() < deadline {
                if let Ok(inb) = rx.recv_timeout(Duration::from_millis(20)) {
                    if let Frame::Raft(m) = inb.frame {
                        node.step(m);
                    }
                }
                if last_tick.elapsed() >= Duration::from_millis(20) {
                    node.tick();
                    last_tick = Instant::now();
                }
                if node.is_leader() && !proposed {
                    node.propose(format!("from {id}").into_bytes()).unwrap();
                    proposed = true;
                }
                for m in node.process().unwrap() {
                    transport.send(m.to, Frame::Raft(m));
                }
                if node.state().0.len() == 1 {
                    done_tx.send((id, node.state().0.clone())).unwrap();
                    // Keep serving so the others can finish too.
                    let until = Instant::now() + Duration::from_secs(2);
                    while Instant::now() < until {
                        if let Ok(inb) = rx.recv_timeout(Duration::from_millis(20)) {
                            if let Frame::Raft(m) = inb.frame {
                                node.step(m);
                            }
                        }
                        node.tick();
                        for m in node.process().unwrap() {
                            transport.send(m.to, Frame::Raft(m));
                        }
                    }
                    return;
                }
            }
            panic!("node {id}: nothing applied in 30 s");
        }));
    }
    drop(done_tx);
    let got: Vec<(u64, Vec<String>)> = done_rx.iter().take(3).collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(got.len(), 3);
    let first = &got[0].1;
    assert!(got.iter().all(|(_, v)| v == first), "every node applied the same entry: {got:?}");
}
