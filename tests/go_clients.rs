//! The Go clients against a real broker: franz-go (kgo, kadm) and IBM/sarama,
//! the programs in tests/go (`franz`, `sarama`). Sarama picks its request
//! versions from `config.Version` and has broken against Kafka-compatible
//! brokers over advertised API versions, so it runs with its default
//! version and with a recent one.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::thread;
use std::time::{Duration, Instant};

use common::go::{go_json, spawn_go};
use common::{ck_consume, ck_create, ck_produce, unique_name, Broker, Json, Rec, RunningClient};

const SARAMA_VERSIONS: [&str; 2] = ["default", "4.0.0"];

/// Every delivered record is read back once, with its content, and each
/// partition's offsets run 0.. without holes.
fn expect_read_back(delivered: &[Rec], read: &[Rec], what: &str) {
    assert_eq!(read.len(), delivered.len(), "{what}: records read vs delivered");
    let by_pos: BTreeMap<(i32, i64), &Rec> = read.iter().map(|r| ((r.partition, r.offset), r)).collect();
    assert_eq!(by_pos.len(), read.len(), "{what}: a (partition, offset) read twice");
    for d in delivered {
        let r = by_pos
            .get(&(d.partition, d.offset))
            .unwrap_or_else(|| panic!("{what}: delivered {} was not read", d.brief()));
        assert!(
            d.same_content(r),
            "{what}: at {}:{} delivered {} read {}",
            d.partition,
            d.offset,
            d.brief(),
            r.brief()
        );
    }
    let mut per_part: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for r in read {
        per_part.entry(r.partition).or_default().push(r.offset);
    }
    for (p, mut offs) in per_part {
        offs.sort();
        assert_eq!(offs, (0..offs.len() as i64).collect::<Vec<_>>(), "{what}: partition {p} offsets");
    }
}

#[test]
fn franz_idempotent_producer_records_read_back_exactly_once() {
    let broker = Broker::start();
    let boot = broker.bootstrap();
    let topic = unique_name("franz");
    let created = go_json("franz", &["create", &boot, &topic, "3"]);
    assert_eq!(created.get("partitions").as_i64(), 3, "{}", created.short());
    let j = go_json("franz", &["produce", &boot, &topic, "--count", "3000"]);
    let delivered = Rec::list(j.get("delivered"));
    assert_eq!(delivered.len(), 3000);
    // One producer id, not -1: the batches went out idempotently.
    let producers = j.get("producers").as_arr();
    assert_eq!(producers.len(), 1, "{}", j.get("producers").short());
    assert!(!producers[0].as_str().starts_with("-1/"), "not idempotent: {}", producers[0].as_str());
    let parts: BTreeSet<i32> = delivered.iter().map(|r| r.partition).collect();
    assert_eq!(parts.len(), 3, "records spread over all partitions");
    expect_read_back(&delivered, &ck_consume(&boot, &topic, &[]).records, "confluent-kafka reading franz-go's records");
    let read = go_json("franz", &["consume", &boot, &topic]);
    expect_read_back(&delivered, &Rec::list(read.get("records")), "franz-go reading its own records");
    println!("franz: 3000 idempotent records on 3 partitions read back exactly once by confluent-kafka and franz-go");
}

#[test]
fn franz_admin_creates_describes_alters_and_deletes_topics() {
    let broker = Broker::start();
    let prefix = unique_name("franz-admin");
    let j = go_json("franz", &["admin", &broker.bootstrap(), &prefix]);
    let (a, b) = (format!("{prefix}-a"), format!("{prefix}-b"));
    for (t, n) in [(&a, 3), (&b, 2)] {
        let c = j.get("created").get(t);
        assert!(matches!(c.get("error"), Json::Null), "create {t}: {}", c.short());
        assert_eq!(c.get("partitions").as_i64(), n, "{}", c.short());
        assert!(c.get("id_set").as_bool(), "create {t} returned no topic id");
        let parts = j.get("described").get(t).get("partitions").as_arr();
        assert_eq!(parts.len(), n as usize, "describe {t}");
        for p in parts {
            assert!(p.get("leader").as_i64() >= 0, "no leader: {}", p.short());
            assert_eq!(p.get("replicas").as_arr().len(), 1, "{}", p.short());
            assert_eq!(p.get("isr").as_arr().len(), 1, "{}", p.short());
        }
    }
    assert_eq!(j.get("duplicate").as_i64(), 36, "second create: TOPIC_ALREADY_EXISTS");
    let listed: BTreeSet<&str> = j.get("listed").as_arr().iter().map(|t| t.as_str()).collect();
    assert_eq!(listed, BTreeSet::from([a.as_str(), b.as_str()]), "listed");
    assert!(j.get("unknown_listed").as_arr().is_empty(), "an unknown topic was listed: {}", j.short());
    let cfg = j.get("configs");
    assert_eq!(cfg.get("retention.ms").get("value").as_str(), "3600000");
    assert_eq!(cfg.get("retention.ms").get("source").as_str(), "DYNAMIC_TOPIC_CONFIG");
    assert_eq!(cfg.get("cleanup.policy").get("value").as_str(), "compact");
    let altered = j.get("configs_altered");
    assert_eq!(altered.get("retention.ms").get("value").as_str(), "7200000");
    assert_eq!(altered.get("cleanup.policy").get("source").as_str(), "DEFAULT_CONFIG", "DELETE restores the default");
    assert_eq!(j.get("alter_invalid").as_i64(), 40, "an invalid value: INVALID_CONFIG");
    for k in ["alter_unknown", "configs_unknown", "describe_unknown", "delete_unknown"] {
        assert_eq!(j.get(k).as_i64(), 3, "{k}: UNKNOWN_TOPIC_OR_PARTITION");
    }
    for t in [&a, &b] {
        assert!(matches!(j.get("deleted").get(t), Json::Null), "delete {t}: {}", j.get("deleted").short());
    }
    assert!(j.get("listed_after_delete").as_arr().is_empty(), "{}", j.get("listed_after_delete").short());
}

#[test]
fn sarama_sync_producer_with_default_and_recent_versions() {
    let broker = Broker::start();
    let boot = broker.bootstrap();
    for version in SARAMA_VERSIONS {
        let topic = unique_name("sarama");
        ck_create(&boot, &topic, 3);
        let j = go_json("sarama", &["produce", &boot, &topic, "--count", "2000", "--version", version]);
        let delivered = Rec::list(j.get("delivered"));
        assert_eq!(delivered.len(), 2000);
        expect_read_back(&delivered, &ck_consume(&boot, &topic, &[]).records, &format!("sarama {version}"));
        println!("sarama (Version {}): 2000 records acknowledged and read back exactly", j.get("version").as_str());
    }
}

#[test]
fn sarama_cluster_admin_with_default_and_recent_versions() {
    let broker = Broker::start();
    for version in SARAMA_VERSIONS {
        let prefix = unique_name("sarama-admin");
        let j = go_json("sarama", &["admin", &broker.bootstrap(), &prefix, "--version", version]);
        let what = format!("sarama admin (Version {})", j.get("version").as_str());
        assert!(matches!(j.get("create"), Json::Null), "{what}: create: {}", j.short());
        assert_eq!(j.get("brokers").as_arr().len(), 1, "{what}: {}", j.short());
        assert_eq!(j.get("described").as_arr().len(), 3, "{what}: partitions described");
        assert_eq!(j.get("listed").get("partitions").as_i64(), 3, "{what}");
        assert_eq!(j.get("listed").get("configs").get("retention.ms").as_str(), "3600000", "{what}");
        assert_eq!(j.get("configs").get("retention.ms").get("value").as_str(), "3600000", "{what}");
        assert_eq!(j.get("duplicate").as_i64(), 36, "{what}: second create");
        assert_eq!(j.get("describe_unknown").as_i64(), 3, "{what}");
        assert_eq!(j.get("delete_unknown").as_i64(), 3, "{what}");
        assert!(matches!(j.get("delete"), Json::Null), "{what}: delete: {}", j.short());
        assert!(!j.get("listed_after_delete").as_bool(), "{what}: still listed after delete");
        assert!(!j.get("unknown_listed").as_bool(), "{what}");
    }
}

/// What one member printed so far: the partitions it owns now and the
/// (partition, offset) pairs it consumed.
fn member_state(m: &RunningClient) -> (BTreeSet<i64>, Vec<(i64, i64)>, bool) {
    let (mut owned, mut consumed, mut closed) = (BTreeSet::new(), Vec::new(), false);
    for line in m.stdout_so_far().lines() {
        let Ok(ev) = Json::parse(line) else { continue };
        match ev.get("ev").as_str() {
            "assigned" => owned = ev.get("parts").as_arr().iter().map(Json::as_i64).collect(),
            "revoked" => {
                for p in ev.get("parts").as_arr() {
                    owned.remove(&p.as_i64());
                }
            }
            "records" => {
                consumed.extend(ev.get("r").as_arr().iter().map(|r| (r.as_arr()[0].as_i64(), r.as_arr()[1].as_i64())))
            }
            "closed" => closed = true,
            _ => {}
        }
    }
    (owned, consumed, closed)
}

/// Two members of one group split six partitions, consume every record and
/// commit; the committed offsets are the log end of every partition.
fn two_members_share_a_topic(program: &str, extra: &[&str]) {
    let broker = Broker::start();
    let boot = broker.bootstrap();
    let topic = unique_name(program);
    let group = unique_name(&format!("{program}-group"));
    ck_create(&boot, &topic, 6);
    let delivered = ck_produce(&boot, &topic, 1200, &[]);
    let want: BTreeSet<(i64, i64)> = delivered.iter().map(|r| (r.partition as i64, r.offset)).collect();
    let dir = tempfile::tempdir().expect("a temp dir");
    let stop = dir.path().join("stop");
    let stop_s = stop.display().to_string();
    let members: Vec<RunningClient> = ["m1", "m2"]
        .iter()
        .map(|name| {
            let mut args = vec![
                "member",
                &boot,
                &topic,
                &group,
                "--name",
                name,
                "--stop-file",
                &stop_s,
                "--session-timeout-ms",
                "10000",
            ];
            args.extend_from_slice(extra);
            spawn_go(program, &args)
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let states: Vec<_> = members.iter().map(member_state).collect();
        let got: BTreeSet<(i64, i64)> = states.iter().flat_map(|s| s.1.iter().copied()).collect();
        let (a, b) = (&states[0].0, &states[1].0);
        let split = a.len() + b.len() == 6 && a.is_disjoint(b) && !a.is_empty() && !b.is_empty();
        if split && want.is_subset(&got) {
            println!("{program}: members own {a:?} and {b:?}; {} records consumed", got.len());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{program}: the members did not split the partitions and consume everything in time: \
             owned {a:?} / {b:?}, {} of {} records\n--- m1 stderr ---\n{}\n--- m2 stderr ---\n{}",
            got.intersection(&want).count(),
            want.len(),
            members[0].stderr_so_far(),
            members[1].stderr_so_far()
        );
        thread::sleep(Duration::from_millis(200));
    }
    std::fs::write(&stop, b"").expect("writing the stop file");
    for m in members {
        let out = m.wait();
        common::expect_success(&out, &format!("{program} member"));
        assert!(String::from_utf8_lossy(&out.stdout).contains("\"closed\""), "{program}: a member did not close");
    }
    let ends = common::acked_ends(&delivered);
    let committed = go_json(program, &["committed", &boot, &topic, &group]);
    for (p, end) in ends {
        assert_eq!(committed.get("committed").get(&p.to_string()).as_i64(), end, "{program}: committed offset of {p}");
    }
}

#[test]
fn franz_consumer_group_members_split_partitions_and_commit() {
    two_members_share_a_topic("franz", &[]);
}

#[test]
fn sarama_consumer_group_members_split_partitions_and_commit() {
    two_members_share_a_topic("sarama", &[]);
}
