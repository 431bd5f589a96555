//! The new consumer group protocol (KIP-848) with the Java client 4.3
//! (`group.protocol=consumer`): the broker assigns partitions itself
//! through ConsumerGroupHeartbeat. Members are tests/java/ConsumerProtocolMember.java.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use common::{ck_create, ck_produce, spawn_java, unique_name, Broker, Json, RunningClient};

/// What one member reported so far: the partitions it holds now and the
/// (partition, offset) pairs it consumed.
#[derive(Default, Debug)]
struct Seen {
    owned: BTreeSet<i64>,
    consumed: BTreeSet<(i64, i64)>,
    closed: bool,
}

fn seen(member: &RunningClient) -> Seen {
    let mut s = Seen::default();
    for line in member.stdout_so_far().lines() {
        let Ok(j) = Json::parse(line) else { continue };
        let parts = || j.get("partitions").as_arr().iter().map(Json::as_i64).collect::<Vec<_>>();
        match j.get("event").as_str() {
            "assigned" => s.owned.extend(parts()),
            "revoked" => {
                for p in parts() {
                    s.owned.remove(&p);
                }
            }
            "records" => {
                for r in j.get("records").as_arr() {
                    let r = r.as_arr();
                    s.consumed.insert((r[0].as_i64(), r[1].as_i64()));
                }
            }
            "closed" => s.closed = true,
            _ => {}
        }
    }
    s
}

/// Waits (bounded) until `ok` holds for the members' reports; panics with
/// the reports and the members' stderr otherwise.
fn wait_until(members: &[&RunningClient], what: &str, ok: impl Fn(&[Seen]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let all: Vec<Seen> = members.iter().map(|m| seen(m)).collect();
        if ok(&all) {
            return;
        }
        if Instant::now() > deadline {
            let errs: Vec<String> = members.iter().map(|m| m.stderr_so_far()).collect();
            panic!("{what}: not reached in 60 s; members: {all:?}\n--- stderr ---\n{}", errs.join("\n---\n"));
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// Every partition of `0..n` owned by exactly one member.
fn split_exactly(all: &[Seen], n: i64) -> bool {
    let mut count = BTreeMap::new();
    for s in all {
        for p in &s.owned {
            *count.entry(*p).or_insert(0) += 1;
        }
    }
    count.len() as i64 == n && count.values().all(|&c| c == 1) && all.iter().all(|s| !s.owned.is_empty())
}

fn member(broker: &Broker, topic: &str, group: &str, stop: &Path) -> RunningClient {
    let boot = broker.bootstrap();
    let stop = stop.to_str().unwrap();
    spawn_java("ConsumerProtocolMember", &[&boot, topic, group, "consumer", stop])
}

#[test]
fn java_consumer_protocol_members_split_partitions_and_take_over_from_a_dead_one() {
    let broker = Broker::start_with(
        &[
            "group.consumer.min.heartbeat.interval.ms=300",
            "group.consumer.heartbeat.interval.ms=300",
            "group.consumer.min.session.timeout.ms=4000",
            "group.consumer.session.timeout.ms=4000",
        ],
        2,
    );
    let boot = broker.bootstrap();
    let topic = unique_name("kip848");
    let group = unique_name("kip848-group");
    ck_create(&boot, &topic, 6);
    let first = ck_produce(&boot, &topic, 600, &[]);
    let stop = tempfile::tempdir().unwrap();
    let stop_file = stop.path().join("stop");

    let a = member(&broker, &topic, &group, &stop_file);
    let b = member(&broker, &topic, &group, &stop_file);
    let c = member(&broker, &topic, &group, &stop_file);
    wait_until(&[&a, &b, &c], "three members own all six partitions, each exactly once", |all| split_exactly(all, 6));

    // One member dies without leaving: its session ends on the broker and
    // the other two take its partitions over.
    let c_before = seen(&c);
    drop(c);
    wait_until(&[&a, &b], "two members own all six partitions", |all| split_exactly(all, 6));

    let second = ck_produce(&boot, &topic, 600, &[]);
    // Whatever the dead member read and committed is not read again; the
    // rest is, by the survivors.
    let want: BTreeSet<(i64, i64)> = first.iter().chain(&second).map(|r| (r.partition as i64, r.offset)).collect();
    wait_until(&[&a, &b], "every record consumed", |all| {
        let mut got = c_before.consumed.clone();
        got.extend(all.iter().flat_map(|s| s.consumed.iter().copied()));
        want.is_subset(&got)
    });

    // The broker describes the group as a consumer group with two members.
    let described = common::java_json("DescribeGroup", &[&boot, &group]);
    assert_eq!(described.get("type").as_str(), "Consumer", "{}", described.short());
    assert_eq!(described.get("state").as_str(), "Stable", "{}", described.short());
    let members = described.get("members").as_arr();
    assert_eq!(members.len(), 2, "{}", described.short());
    let total: usize = members.iter().map(|m| m.as_arr().len()).sum();
    assert_eq!(total, 6, "{}", described.short());

    // So does `sluice group describe` (through ConsumerGroupDescribe).
    let cli = common::run(
        {
            let mut cmd = std::process::Command::new(common::broker_bin());
            cmd.args(["group", "describe", &group, "--bootstrap-server", &boot]);
            cmd
        },
        None,
        Duration::from_secs(60),
        "sluice group describe",
    );
    let printed = String::from_utf8_lossy(&cli.stdout);
    assert!(cli.status.success(), "{printed}\n{}", String::from_utf8_lossy(&cli.stderr));
    assert!(printed.contains("state Stable, 2 members"), "{printed}");
    let rows = printed.lines().filter(|l| l.starts_with(group.as_str())).count();
    assert_eq!(rows, 6, "one row per partition:\n{printed}");

    std::fs::write(&stop_file, b"").unwrap();
    for m in [a, b] {
        let out = m.wait();
        assert!(out.status.success(), "member failed: {}", String::from_utf8_lossy(&out.stderr));
    }
}
