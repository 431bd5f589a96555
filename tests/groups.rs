//! Consumer groups (the classic protocol) with real clients against the
//! real broker:
//!
//! - rebalances: three members of one group on a six-partition topic
//!   (confluent-kafka, the Java client 4.3, kafka-python, kafkajs; each a
//!   long-running process printing its assignments and what it consumed as
//!   JSON lines). The six partitions must be split exactly among them; then
//!   one member is SIGKILLed (no LeaveGroup: its session must expire) and
//!   the two others must own all six; then one leaves cleanly and the last
//!   must own all six. Records are produced in every phase and every one
//!   must be consumed by some member (duplicates after a rebalance are
//!   allowed, loss is not). At the end no partition may have been assigned
//!   to two members in the same generation.
//! - committed offsets across a broker SIGKILL and restart (confluent-kafka,
//!   synchronous commits): a new member resumes exactly after them.
//! - commits without group membership (assign() + commit()), read back.
//!
//! The brokers run with `group.min.session.timeout.ms=1000` and
//! `group.initial.rebalance.delay.ms=0`, so members may use short sessions
//! and a group forms at once.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use common::{
    ck_create, ck_produce, python_json, spawn_java, spawn_node, spawn_python, unique_name, Broker, Json, Rec,
    RunningClient,
};

const PARTITIONS: i32 = 6;
/// The members' session timeout: how long a SIGKILLed member keeps its
/// partitions.
const SESSION_TIMEOUT_MS: &str = "4000";
/// How long a phase may take to settle (a generous bound, not a
/// performance expectation: JVMs start slowly on a loaded machine).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(90);
const RECORDS_PER_PHASE: usize = 300;

fn group_broker() -> Broker {
    Broker::start_with(&["group.min.session.timeout.ms=1000", "group.initial.rebalance.delay.ms=0"], 2)
}

// ---------------------------------------------------------------------------
// Group members as processes

#[derive(Clone, Copy, Debug)]
enum Client {
    ConfluentKafka,
    Java,
    KafkaPython,
    Kafkajs,
}

/// What a member process reports, one JSON object per stdout line.
#[derive(Clone, Debug)]
enum Event {
    /// The member owns exactly `parts` from generation `generation` on
    /// (None: the client does not expose its generation).
    Assigned {
        generation: Option<i32>,
        member: String,
        parts: BTreeSet<i32>,
    },
    /// The member gave up `parts` (a rebalance starts, or they were lost).
    Revoked {
        parts: BTreeSet<i32>,
    },
    Records(Vec<(i32, i64)>),
    /// The consumer closed cleanly (LeaveGroup sent).
    Closed,
    Other,
}

fn parse_events(who: &str, stdout: &str) -> Vec<Event> {
    // Only complete lines: the last one may still be being written.
    let complete = match stdout.rfind('\n') {
        Some(i) => &stdout[..=i],
        None => "",
    };
    complete
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let j = Json::parse(line).unwrap_or_else(|e| panic!("{who}: not a JSON event line ({e}): {line}"));
            let parts = |j: &Json| j.get("parts").as_arr().iter().map(|p| p.as_i64() as i32).collect();
            match j.get("ev").as_str() {
                "assigned" => Event::Assigned {
                    generation: j.opt("gen").filter(|g| !g.is_null()).map(|g| g.as_i64() as i32),
                    member: j.opt("member").and_then(Json::as_opt_str).unwrap_or("").to_string(),
                    parts: parts(&j),
                },
                "revoked" | "lost" => Event::Revoked { parts: parts(&j) },
                "records" => Event::Records(
                    j.get("r")
                        .as_arr()
                        .iter()
                        .map(|r| (r.as_arr()[0].as_i64() as i32, r.as_arr()[1].as_i64()))
                        .collect(),
                ),
                "closed" => Event::Closed,
                _ => Event::Other,
            }
        })
        .collect()
}

struct Member {
    name: String,
    client: Option<RunningClient>,
    stop_file: PathBuf,
    /// stdout and stderr once the process is gone.
    final_stdout: Option<String>,
    final_stderr: Option<String>,
}

impl Member {
    fn spawn(client: Client, args: [&str; 3], name: &str, extra: &[&str], dir: &std::path::Path) -> Member {
        let [boot, topic, group] = args;
        let stop_file = dir.join(format!("stop-{name}"));
        let stop = stop_file.to_str().expect("utf-8 path").to_string();
        let mut common = vec![
            boot,
            topic,
            group,
            "--name",
            name,
            "--stop-file",
            stop.as_str(),
            "--session-timeout-ms",
            SESSION_TIMEOUT_MS,
        ];
        common.extend_from_slice(extra);
        let running = match client {
            Client::ConfluentKafka => spawn_python("ck.py", &[&["member"][..], &common[..]].concat()),
            Client::KafkaPython => spawn_python("kp.py", &[&["member"][..], &common[..]].concat()),
            Client::Java => spawn_java("GroupMember", &common),
            Client::Kafkajs => spawn_node("kafkajs_group.js", &common),
        };
        Member { name: name.to_string(), client: Some(running), stop_file, final_stdout: None, final_stderr: None }
    }

    fn stdout(&self) -> String {
        match (&self.client, &self.final_stdout) {
            (Some(c), _) => c.stdout_so_far(),
            (None, Some(s)) => s.clone(),
            (None, None) => String::new(),
        }
    }

    fn stderr_tail(&self) -> String {
        let all = match (&self.client, &self.final_stderr) {
            (Some(c), _) => c.stderr_so_far(),
            (None, Some(s)) => s.clone(),
            (None, None) => String::new(),
        };
        let lines: Vec<&str> = all.lines().collect();
        lines[lines.len().saturating_sub(25)..].join("\n")
    }

    fn events(&self) -> Vec<Event> {
        parse_events(&self.name, &self.stdout())
    }

    /// The partitions the member owns now and the generation it got them
    /// in, from its events.
    fn owned(&self) -> (Option<i32>, BTreeSet<i32>) {
        let mut generation = None;
        let mut owned = BTreeSet::new();
        for e in self.events() {
            match e {
                Event::Assigned { generation: g, parts, .. } => {
                    generation = g;
                    owned = parts;
                }
                Event::Revoked { parts } => owned.retain(|p| !parts.contains(p)),
                _ => {}
            }
        }
        (generation, owned)
    }

    /// SIGKILL: no LeaveGroup, no commit.
    fn kill9(&mut self) {
        let out = self.client.take().expect("member already gone").kill9();
        self.final_stdout = Some(String::from_utf8_lossy(&out.stdout).into_owned());
        self.final_stderr = Some(String::from_utf8_lossy(&out.stderr).into_owned());
    }

    /// Asks the member to close cleanly (LeaveGroup) and waits for it.
    fn stop(&mut self) {
        fs::write(&self.stop_file, b"stop").expect("writing a stop file");
        let out = self.client.take().expect("member already gone").wait();
        self.final_stdout = Some(String::from_utf8_lossy(&out.stdout).into_owned());
        self.final_stderr = Some(String::from_utf8_lossy(&out.stderr).into_owned());
        assert!(out.status.success(), "{} did not close cleanly ({}):\n{}", self.name, out.status, self.stderr_tail());
        assert!(
            matches!(self.events().last(), Some(Event::Closed)),
            "{}: no \"closed\" event at the end:\n{}",
            self.name,
            self.stderr_tail()
        );
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if thread::panicking() {
            if let Some(c) = &self.client {
                eprintln!("--- member {} stderr (tail) ---\n{}", self.name, {
                    let all = c.stderr_so_far();
                    let lines: Vec<&str> = all.lines().collect();
                    lines[lines.len().saturating_sub(25)..].join("\n")
                });
            }
        }
        // RunningClient's own drop kills a process still running.
    }
}

fn consumed(members: &[Member]) -> HashSet<(i32, i64)> {
    let mut all = HashSet::new();
    for m in members {
        for e in m.events() {
            if let Event::Records(r) = e {
                all.extend(r);
            }
        }
    }
    all
}

fn missing(produced: &[Rec], consumed: &HashSet<(i32, i64)>) -> Vec<(i32, i64)> {
    produced.iter().map(|r| (r.partition, r.offset)).filter(|k| !consumed.contains(k)).collect()
}

/// A settled phase: the generation (if the client says) and who owns what.
struct Settled {
    generation: Option<i32>,
    owners: BTreeMap<String, BTreeSet<i32>>,
}

/// Waits until the members at `live` own the six partitions exactly (each
/// owns at least one, no partition twice, all in the same generation, a
/// later one than `after`) and every produced record has been consumed.
fn wait_settled(members: &mut [Member], live: &[usize], produced: &[Rec], after: Option<i32>, what: &str) -> Settled {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let all: BTreeSet<i32> = (0..PARTITIONS).collect();
    loop {
        for m in members.iter_mut() {
            if let Some(c) = m.client.as_mut() {
                if c.has_exited() {
                    let out = m.client.take().expect("client").wait();
                    panic!(
                        "{what}: member {} exited ({}):\n{}",
                        m.name,
                        out.status,
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
        }
        let owned: Vec<(Option<i32>, BTreeSet<i32>)> = live.iter().map(|&i| members[i].owned()).collect();
        let mut union = BTreeSet::new();
        let mut disjoint = true;
        for (_, parts) in &owned {
            for p in parts {
                disjoint &= union.insert(*p);
            }
        }
        let generations: BTreeSet<Option<i32>> = owned.iter().map(|(g, _)| *g).collect();
        let one_generation = generations.len() == 1;
        let generation = owned[0].0;
        let newer = match (after, generation) {
            (Some(a), Some(g)) => g > a,
            _ => true,
        };
        let each_owns = owned.iter().all(|(_, p)| !p.is_empty());
        let lost = missing(produced, &consumed(members));
        if disjoint && union == all && one_generation && newer && each_owns && lost.is_empty() {
            let owners = live.iter().map(|&i| (members[i].name.clone(), members[i].owned().1)).collect();
            let s = Settled { generation, owners };
            eprintln!("{what}: generation {:?}, owners {:?}", s.generation, s.owners);
            return s;
        }
        if Instant::now() > deadline {
            // The whole output of every member, for the post-mortem.
            let dump = std::env::temp_dir().join(unique_name("sluice-groups-failure"));
            let _ = fs::create_dir_all(&dump);
            for m in members.iter() {
                let (out, err) = match &m.client {
                    Some(c) => (c.stdout_so_far(), c.stderr_so_far()),
                    None => (m.final_stdout.clone().unwrap_or_default(), m.final_stderr.clone().unwrap_or_default()),
                };
                let _ = fs::write(dump.join(format!("{}.stdout", m.name)), out);
                let _ = fs::write(dump.join(format!("{}.stderr", m.name)), err);
            }
            let state: Vec<String> = live
                .iter()
                .zip(&owned)
                .map(|(&i, (g, p))| format!("  {} owns {:?} (generation {:?})", members[i].name, p, g))
                .collect();
            let tails: Vec<String> =
                members.iter().map(|m| format!("--- {} stderr (tail) ---\n{}", m.name, m.stderr_tail())).collect();
            panic!(
                "{what}: the group did not settle within {SETTLE_TIMEOUT:?}:\n{}\n{} of {} produced records not \
                 consumed yet (e.g. {:?})\nevery member's whole output is in {}\n{}",
                state.join("\n"),
                lost.len(),
                produced.len(),
                &lost[..lost.len().min(10)],
                dump.display(),
                tails.join("\n")
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// No partition was assigned to two members in the same generation (over
/// every event of every member, dead ones included).
fn assert_no_double_ownership(members: &[Member]) {
    let mut by_gen: BTreeMap<i32, BTreeMap<i32, BTreeSet<String>>> = BTreeMap::new();
    let mut with_gen = 0;
    for m in members {
        let mut history = Vec::new();
        for e in m.events() {
            if let Event::Assigned { generation, parts, .. } = &e {
                history.push(format!("{generation:?}:{parts:?}"));
            }
            if let Event::Assigned { generation: Some(g), parts, member } = e {
                with_gen += 1;
                for p in parts {
                    by_gen.entry(g).or_default().entry(p).or_default().insert(format!("{} ({member})", m.name));
                }
            }
        }
        eprintln!("{} assignments (generation:partitions): {}", m.name, history.join(" "));
    }
    for (g, parts) in &by_gen {
        for (p, owners) in parts {
            assert!(owners.len() == 1, "generation {g}: partition {p} was assigned to {owners:?}");
        }
    }
    eprintln!("{with_gen} assignments checked over generations {:?}", by_gen.keys().collect::<Vec<_>>());
}

/// Three members split six partitions; one is SIGKILLed, the two left take
/// over; one of them leaves cleanly, the last owns everything; every
/// produced record is consumed.
/// `extra`: more member options (an assignment strategy).
fn rebalance_scenario(client: Client, prefix: &str, extra: &[&str]) {
    let broker = group_broker();
    let boot = broker.bootstrap();
    let topic = unique_name(prefix);
    let group = unique_name(&format!("{prefix}-group"));
    ck_create(&boot, &topic, PARTITIONS as u32);
    let dir = tempfile::Builder::new().prefix("sluice-groups-").tempdir().expect("a temp dir");

    let mut produced = ck_produce(&boot, &topic, RECORDS_PER_PHASE, &["--seed", "groups"]);
    let mut members: Vec<Member> =
        (0..3).map(|i| Member::spawn(client, [&boot, &topic, &group], &format!("m{i}"), extra, dir.path())).collect();
    let s1 = wait_settled(&mut members, &[0, 1, 2], &produced, None, "three members");
    assert_eq!(s1.owners.len(), 3);

    // A crash: no LeaveGroup; the coordinator must expire the session.
    members[2].kill9();
    let start = (produced.len()).to_string();
    produced.extend(ck_produce(&boot, &topic, RECORDS_PER_PHASE, &["--seed", "groups", "--start", &start]));
    let s2 = wait_settled(&mut members, &[0, 1], &produced, s1.generation, "after m2 was killed");

    // A clean leave: the group rebalances at once.
    members[1].stop();
    let start = (produced.len()).to_string();
    produced.extend(ck_produce(&boot, &topic, RECORDS_PER_PHASE, &["--seed", "groups", "--start", &start]));
    wait_settled(&mut members, &[0], &produced, s2.generation, "after m1 left");

    members[0].stop();
    let seen = consumed(&members);
    let all: HashSet<(i32, i64)> = produced.iter().map(|r| (r.partition, r.offset)).collect();
    let phantom: Vec<&(i32, i64)> = seen.iter().filter(|k| !all.contains(k)).collect();
    assert!(phantom.is_empty(), "consumed records that were never produced: {phantom:?}");
    assert!(missing(&produced, &seen).is_empty());
    assert_no_double_ownership(&members);
}

#[test]
fn confluent_kafka_members_split_partitions_and_take_over() {
    rebalance_scenario(Client::ConfluentKafka, "ck-rebalance", &[]);
}

/// The same with the incremental (cooperative) protocol: members keep what
/// they own across rebalances, and rejoin at once after giving something up.
#[test]
fn confluent_kafka_cooperative_sticky_members_split_partitions_and_take_over() {
    rebalance_scenario(Client::ConfluentKafka, "ck-coop", &["--strategy", "cooperative-sticky"]);
}

#[test]
fn java_members_split_partitions_and_take_over() {
    rebalance_scenario(Client::Java, "java-rebalance", &[]);
}

#[test]
fn java_cooperative_sticky_members_split_partitions_and_take_over() {
    rebalance_scenario(
        Client::Java,
        "java-coop",
        &["--assignor", "org.apache.kafka.clients.consumer.CooperativeStickyAssignor"],
    );
}

#[test]
fn kafka_python_members_split_partitions_and_take_over() {
    rebalance_scenario(Client::KafkaPython, "kp-rebalance", &[]);
}

#[test]
fn kafkajs_members_split_partitions_and_take_over() {
    rebalance_scenario(Client::Kafkajs, "kafkajs-rebalance", &[]);
}

// ---------------------------------------------------------------------------
// Committed offsets

fn offsets(j: &Json) -> BTreeMap<i32, i64> {
    j.as_obj().iter().map(|(p, o)| (p.parse().expect("partition"), o.as_i64())).collect()
}

fn offset_args(flag: &str, m: &BTreeMap<i32, i64>) -> Vec<String> {
    m.iter().flat_map(|(p, o)| [flag.to_string(), format!("{p}:{o}")]).collect()
}

/// A member commits synchronously, the broker is SIGKILLed and started
/// again, and a new member of the group resumes exactly after the commits.
#[test]
fn committed_offsets_survive_broker_sigkill() {
    let mut broker = group_broker();
    let boot = broker.bootstrap();
    let topic = unique_name("ck-offsets-restart");
    let group = unique_name("ck-offsets-restart-group");
    ck_create(&boot, &topic, 3);
    let produced = ck_produce(&boot, &topic, 600, &["--seed", "restart"]);
    let ends = common::acked_ends(&produced);
    assert_eq!(ends.len(), 3, "records on every partition");
    // Commit points strictly inside every partition.
    let commit: BTreeMap<i32, i64> = ends.iter().map(|(p, e)| (*p, e / 2)).collect();
    assert!(commit.iter().all(|(p, c)| *c > 0 && *c < ends[p]));

    let args = offset_args("--commit", &commit);
    let mut a = vec!["commit-at", boot.as_str(), topic.as_str(), group.as_str()];
    a.extend(args.iter().map(String::as_str));
    let j = python_json("ck.py", &a);
    assert!(j.get("generation").as_i64() >= 1, "committed as a group member: {}", j.short());
    assert_eq!(offsets(j.get("committed")), commit, "committed() right after the commit");

    broker.kill9();
    // As tests/restart.rs: the killed process's listener (held by its
    // io_uring rings, torn down asynchronously) may outlive it briefly.
    thread::sleep(Duration::from_millis(300));
    broker.restart();

    let args = offset_args("--end", &ends);
    let mut a = vec!["resume", boot.as_str(), topic.as_str(), group.as_str(), "--timeout", "60"];
    a.extend(args.iter().map(String::as_str));
    let j = python_json("ck.py", &a);
    let before = offsets(j.get("committed_before"));
    let records: Vec<(i32, i64)> =
        j.get("records").as_arr().iter().map(|r| (r.as_arr()[0].as_i64() as i32, r.as_arr()[1].as_i64())).collect();
    let mut first: BTreeMap<i32, i64> = BTreeMap::new();
    for (p, o) in &records {
        first.entry(*p).or_insert(*o);
    }
    assert_eq!(
        before, commit,
        "OffsetFetch after the broker's SIGKILL and restart (-1001: no committed offset) should return what was \
         committed before it"
    );
    assert_eq!(first, commit, "after the restart the group should resume at its committed offsets (first record read)");
    let want: Vec<(i32, i64)> = produced
        .iter()
        .filter(|r| r.offset >= commit[&r.partition])
        .map(|r| (r.partition, r.offset))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let got: BTreeSet<(i32, i64)> = records.iter().copied().collect();
    assert_eq!(got.len(), records.len(), "a record was read twice");
    assert_eq!(got.into_iter().collect::<Vec<_>>(), want, "exactly the records after the committed offsets");
}

/// Commits without group membership (generation -1, no member id; as kcat
/// and Spark do): read back by the committer and by a new consumer, and a
/// consumer that assign()s without offsets starts at them.
#[test]
fn commits_without_membership_are_read_back() {
    let broker = group_broker();
    let boot = broker.bootstrap();
    let topic = unique_name("ck-simple-commit");
    let group = unique_name("ck-simple-commit-group");
    ck_create(&boot, &topic, 3);
    let produced = ck_produce(&boot, &topic, 300, &["--seed", "simple"]);
    let ends = common::acked_ends(&produced);
    assert_eq!(ends.len(), 3, "records on every partition");
    let commit: BTreeMap<i32, i64> = ends.iter().map(|(p, e)| (*p, e / 3)).collect();
    let args = offset_args("--commit", &commit);
    let mut a = vec!["simple-commit", boot.as_str(), topic.as_str(), group.as_str()];
    a.extend(args.iter().map(String::as_str));
    let j = python_json("ck.py", &a);
    assert_eq!(offsets(j.get("committed_same")), commit, "committed() by the committing consumer");
    assert_eq!(offsets(j.get("committed_new")), commit, "committed() by a new consumer of the group");
    assert_eq!(offsets(j.get("first_read")), commit, "assign() without offsets starts at the committed ones");
}
