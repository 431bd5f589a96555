//! Chaos on a three-broker cluster under load: two Java idempotent
//! producers (`acks=all`, the client's defaults) and a confluent-kafka
//! consumer run against a topic of three partitions, three replicas and
//! `min.insync.replicas=2` while the test takes brokers away: kill -9,
//! SIGSTOP then SIGCONT, or a rolling restart (SIGTERM) of all three.
//! Every round takes one broker away (even rounds a partition's leader, odd
//! rounds any broker), waits until the clients write again without it,
//! brings it back and waits until it is in every ISR again.
//!
//! Then: every send was acknowledged (no error beyond retriable ones reached
//! the application), the consumer read every acknowledged record exactly
//! once, at the offset its acknowledgement named, each partition in offset
//! order, each producer's records in send order, every record sent (none
//! was left unacknowledged) and no record that was not produced. Offsets may
//! skip one where a new leader's no-op went (a control batch, which
//! consumers do not see, as with Kafka's transaction markers). Each round prints its worst unavailability
//! window: the longest time no producer had a record acknowledged.
//!
//! `SLUICE_CHAOS_ROUNDS` runs more rounds (default 20); `SLUICE_CHAOS_SEED`
//! replays a run's choice of brokers (each run prints its seed).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::cluster::Cluster;
use common::cluster::Layout;
use common::idem::{unhex, IdemRun};
use common::kafka_tools::topics;
use common::records::assert_ordered;
use common::{java_cmd, json_result, python_cmd, unique_name, Rec, RunningClient};

const FAST: &[&str] =
    &["broker.session.timeout.ms=3000", "broker.heartbeat.interval.ms=500", "replica.lag.time.max.ms=2000"];
const AGREE: Duration = Duration::from_secs(30);
/// How long one round may take to lose and regain a broker.
const ROUND: Duration = Duration::from_secs(90);
/// The clients' bound: the whole run.
const LOAD: Duration = Duration::from_secs(1500);
const PRODUCERS: usize = 2;
/// Records each producer may send at most (the loop stops well before).
const MAX_RECORDS: usize = 400_000;
const PROGRESS_EVERY: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Action {
    Kill,
    Stop,
    Restart,
}

/// Polls `layout` through the nodes in `through` until `done` holds (bounded).
fn wait_layout(
    c: &Cluster,
    through: &[usize],
    topic: &str,
    timeout: Duration,
    what: &str,
    done: impl Fn(&Layout) -> bool,
) -> Layout {
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        for &i in through {
            if let Some(l) = c.layout(i, topic) {
                if l.len() == 3 && done(&l) {
                    return l;
                }
                last = Some(l);
            }
        }
        if Instant::now() > deadline {
            let logs: String =
                through.iter().map(|&i| format!("--- node {} log ---\n{}\n", i + 1, c.nodes[i].log_tail())).collect();
            panic!("{what}: not within {timeout:?}; last layout {last:?}\n{logs}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn full(l: &Layout) -> bool {
    l.iter().all(|(leader, r, isr)| *leader > 0 && r.len() == 3 && isr.len() == 3)
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as i64
}

/// The newest "progress acked=N" a producer printed.
fn acked_so_far(p: &RunningClient) -> usize {
    p.stderr_so_far().lines().rev().find_map(|l| l.split_once("progress acked=")?.1.trim().parse().ok()).unwrap_or(0)
}

/// A small xorshift: which broker a round takes away, replayable from its seed.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

struct Round {
    victim: usize,
    started: i64,
    ended: i64,
}

fn chaos(action: Action, rounds: usize) {
    let seed: u64 = std::env::var("SLUICE_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1);
    eprintln!("chaos {action:?}: {rounds} rounds, SLUICE_CHAOS_SEED={seed}");
    let mut dice = Dice(seed);
    let mut c = Cluster::start(3, FAST);
    c.wait_agreed(&[0, 1, 2], &[1, 2, 3], AGREE);
    let boot: Vec<String> = c.nodes.iter().map(|n| n.bootstrap()).collect();
    let all = boot.join(",");
    let topic = unique_name("chaos");
    let create = ["--create", "--topic", &topic, "--partitions", "3", "--replication-factor", "3"];
    topics(&boot[0], &[&create[..], &["--config", "min.insync.replicas=2"]].concat());
    wait_layout(&c, &[0, 1, 2], &topic, AGREE, "three replicas of each partition in sync", full);

    let tmp = tempfile::tempdir().expect("temp dir");
    let stop_producers = tmp.path().join("producers-stop");
    let stop_consumer = tmp.path().join("consumer-stop");
    let seeds: Vec<String> = (0..PRODUCERS).map(|i| format!("p{i}")).collect();
    let mut producers: Vec<RunningClient> =
        seeds.iter().map(|s| spawn_producer(&all, &topic, s, &stop_producers)).collect();
    let consumer = spawn_consumer(&all, &topic, &stop_consumer);
    for p in &mut producers {
        let ok = p.wait_for_stderr(ROUND, |s| s.contains(&format!("progress acked={}\n", PROGRESS_EVERY * 2)));
        assert!(ok, "a producer did not start writing; stderr:\n{}", p.stderr_so_far());
    }

    let mut done: Vec<Round> = Vec::new();
    for round in 0..rounds {
        let live = wait_layout(&c, &[0, 1, 2], &topic, ROUND, "all replicas in sync before a round", full);
        let victim = match action {
            Action::Restart => round % 3,
            _ if round % 2 == 0 => (live[round / 2 % 3].0 - 1) as usize,
            _ => dice.roll(3),
        };
        let others: Vec<usize> = (0..3).filter(|&i| i != victim).collect();
        let before: Vec<usize> = producers.iter().map(acked_so_far).collect();
        let started = now_ms();
        match action {
            Action::Kill => c.nodes[victim].kill9(),
            Action::Stop => c.nodes[victim].pause(true),
            Action::Restart => {
                c.nodes[victim].sigterm_and_wait();
            }
        }
        let id = victim as i32 + 1;
        wait_layout(&c, &others, &topic, ROUND, &format!("round {round}: partitions led by others than {id}"), |l| {
            l.iter().all(|(leader, _, _)| *leader > 0 && *leader != id)
        });
        // The clients write again without it.
        let deadline = Instant::now() + ROUND;
        while producers.iter().zip(&before).any(|(p, b)| acked_so_far(p) < b + 2 * PROGRESS_EVERY) {
            assert!(Instant::now() < deadline, "round {round}: the producers made no progress without broker {id}");
            assert!(producers.iter_mut().all(|p| !p.has_exited()), "round {round}: a producer exited");
            std::thread::sleep(Duration::from_millis(50));
        }
        match action {
            Action::Kill | Action::Restart => c.nodes[victim].restart(),
            Action::Stop => c.nodes[victim].pause(false),
        }
        wait_layout(&c, &[0, 1, 2], &topic, ROUND, &format!("round {round}: broker {id} back in every ISR"), full);
        done.push(Round { victim, started, ended: now_ms() });
    }

    std::fs::write(&stop_producers, b"").expect("stop file");
    let runs: Vec<IdemRun> = producers
        .into_iter()
        .zip(&seeds)
        .map(|(p, s)| common::idem::parse(&p.wait(), s, &format!("IdemProducer {s}")))
        .collect();
    std::fs::write(&stop_consumer, b"").expect("stop file");
    let out = consumer.wait();
    let j = json_result(&out, "ck.py tail");
    let consumed = Rec::list(j.get("records"));
    eprintln!("consumer: {} records, {} retriable errors", consumed.len(), j.get("error_count").as_i64());

    report_windows(action, &done, &runs);
    check(&runs, &consumed);
}

fn spawn_producer(all: &str, topic: &str, seed: &str, until: &Path) -> RunningClient {
    let (max, every, until) = (MAX_RECORDS.to_string(), PROGRESS_EVERY.to_string(), until.display().to_string());
    let args = [
        all,
        topic,
        "--count",
        &max,
        "--seed",
        seed,
        "--chunk",
        "10",
        "--pace-ms",
        "20",
        "--progress-every",
        &every,
        "--until-file",
        &until,
        "--request-timeout-ms",
        "5000",
    ];
    RunningClient::spawn(java_cmd("IdemProducer", &args), None, LOAD, &format!("IdemProducer {seed}"))
}

fn spawn_consumer(all: &str, topic: &str, stop: &Path) -> RunningClient {
    let (stop, limit) = (stop.display().to_string(), LOAD.as_secs().to_string());
    let args = ["tail", all, topic, "3", "--stop-file", &stop, "--timeout", &limit];
    RunningClient::spawn(python_cmd("ck.py", &args), None, LOAD, "ck.py tail")
}

/// Prints, per round, the longest time a partition had no record
/// acknowledged, from the moment the broker was taken away until it was back
/// in every ISR.
fn report_windows(action: Action, rounds: &[Round], runs: &[IdemRun]) {
    let mut acks: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for a in runs.iter().flat_map(|r| &r.acked) {
        acks.entry(a.1).or_default().push(a.3);
    }
    acks.values_mut().for_each(|t| t.sort_unstable());
    let mut worst_all = 0;
    for (i, r) in rounds.iter().enumerate() {
        let mut worst = (0, -1);
        for (p, times) in &acks {
            let mut last = r.started;
            for &t in times.iter().filter(|&&t| t > r.started && t <= r.ended) {
                worst = worst.max((t - last, *p));
                last = t;
            }
        }
        worst_all = worst_all.max(worst.0);
        eprintln!(
            "chaos {action:?} round {i}: broker {} away and back in {} ms; worst unavailability window {} ms (partition {})",
            r.victim + 1,
            r.ended - r.started,
            worst.0,
            worst.1
        );
    }
    eprintln!("chaos {action:?}: worst unavailability window over {} rounds: {worst_all} ms", rounds.len());
}

fn check(runs: &[IdemRun], consumed: &[Rec]) {
    let by_seed: HashMap<&str, &IdemRun> = runs.iter().map(|r| (r.seed.as_str(), r)).collect();
    // (seed, index) -> where it was read
    let mut found: HashMap<(String, usize), Vec<(i32, i64)>> = HashMap::new();
    for r in consumed {
        let value = String::from_utf8(unhex(r.value.as_deref().unwrap_or(""))).expect("utf-8 value");
        let (seed, i) = value
            .rsplit_once('-')
            .and_then(|(s, i)| Some((s.to_string(), i.parse::<usize>().ok()?)))
            .filter(|(s, i)| by_seed.get(s.as_str()).is_some_and(|run| *i < run.sent))
            .unwrap_or_else(|| panic!("a record no one sent: {}", r.brief()));
        found.entry((seed, i)).or_default().push((r.partition, r.offset));
    }
    let mut dups: Vec<_> = found.iter().filter(|(_, at)| at.len() > 1).collect();
    dups.sort();
    assert!(dups.is_empty(), "{} records read more than once, e.g. {:?}", dups.len(), &dups[..dups.len().min(10)]);
    assert_ordered("chaos (consumed)", consumed);
    for run in runs {
        assert!(
            run.failed.is_empty(),
            "{}: {} sends failed, e.g. {:?}",
            run.seed,
            run.failed.len(),
            &run.failed[..run.failed.len().min(5)]
        );
        assert_eq!(run.acked.len(), run.sent, "{}: every send acknowledged", run.seed);
        let mut problems = Vec::new();
        let mut last: BTreeMap<i32, (usize, i64)> = BTreeMap::new();
        let mut acked = run.acked.clone();
        acked.sort_unstable();
        for &(i, p, off, _) in &acked {
            match found.get(&(run.seed.clone(), i)).map(Vec::as_slice) {
                Some([(fp, fo)]) if (*fp, *fo) == (p, off) => {}
                Some(at) => problems.push(format!("record {i} acknowledged at p{p} @{off} but read at {at:?}")),
                None => problems.push(format!("record {i} acknowledged at p{p} @{off} but never read")),
            }
            if let Some(&(pi, po)) = last.get(&p) {
                if po >= off {
                    problems.push(format!("p{p}: record {i} @{off} after record {pi} @{po}: out of send order"));
                }
            }
            last.insert(p, (i, off));
        }
        assert!(
            problems.is_empty(),
            "{}: {} of {} acknowledged records are wrong, e.g.:\n{}",
            run.seed,
            problems.len(),
            run.acked.len(),
            problems[..problems.len().min(10)].join("\n")
        );
    }
    let sent: usize = runs.iter().map(|r| r.sent).sum();
    assert_eq!(found.len(), sent, "every record sent was read once");
}

fn rounds() -> usize {
    std::env::var("SLUICE_CHAOS_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(20).max(1)
}

#[test]
fn kill9_of_a_broker_loses_no_acknowledged_record() {
    chaos(Action::Kill, rounds());
}

#[test]
fn sigstop_of_a_broker_loses_no_acknowledged_record() {
    chaos(Action::Stop, rounds());
}

/// A rolling restart: each broker in turn is stopped (SIGTERM), started
/// again, and waited for until it is back in every ISR.
#[test]
fn a_rolling_restart_under_load_surfaces_no_error() {
    chaos(Action::Restart, 3);
}
