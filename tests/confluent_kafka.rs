//! confluent-kafka (librdkafka 2.16): acks=all producer with each
//! compression codec, keys and headers; assign() + seek() consumer at
//! explicit offsets (including the middle of a batch); a consumer group that
//! commits offsets; the idempotent producer.

mod common;

use std::collections::BTreeMap;

use common::records::{assert_ordered, assert_round_trip, by_partition};
use common::{acked_ends, ck_consume, ck_create, ck_produce, end_args, python_json, unique_name, Broker, Rec};

const COUNT: usize = 5000;

fn counts(delivered: &[Rec]) -> BTreeMap<i32, i64> {
    by_partition(delivered).into_iter().map(|(p, rs)| (p, rs.len() as i64)).collect()
}

fn round_trip_with(compression: &str, extra: &[&str]) {
    let broker = Broker::start();
    let boot = broker.bootstrap();
    let topic = unique_name(&format!("ck-{compression}"));
    ck_create(&boot, &topic, 3);

    let mut args = vec!["--compression", compression, "--seed", compression];
    args.extend_from_slice(extra);
    let delivered = ck_produce(&boot, &topic, COUNT, &args);
    assert_eq!(delivered.len(), COUNT);
    let per_partition = counts(&delivered);
    assert_eq!(per_partition.len(), 3, "the keys should spread over all 3 partitions");

    // Everything from offset 0 of every partition.
    let ends = end_args(&delivered);
    let ends: Vec<&str> = ends.iter().map(String::as_str).collect();
    let all = ck_consume(&boot, &topic, &ends);
    assert_round_trip(&format!("{compression}: read from 0"), &delivered, &all.records);
    for (p, n) in &per_partition {
        assert_eq!(all.low.get(p), Some(&0), "{compression}: low watermark of partition {p}");
        assert_eq!(all.high.get(p), Some(n), "{compression}: high watermark (ListOffsets latest) of partition {p}");
    }

    // Start partition 1 in the middle (most likely inside a batch); on
    // partition 0 seek back from 3/4 to 1/3 once reached.
    let (n0, n1) = (per_partition[&0], per_partition[&1]);
    let (start1, at0, to0) = (n1 / 2 + 1, n0 * 3 / 4, n0 / 3 + 1);
    let start = format!("1:{start1}");
    let rewind = format!("0:{at0}:{to0}");
    let mut args = vec!["--start", start.as_str(), "--rewind", rewind.as_str()];
    args.extend_from_slice(&ends);
    let partial = ck_consume(&boot, &topic, &args);
    let got = by_partition(&partial.records);
    let want = by_partition(&delivered);
    let offsets = |rs: &[&Rec]| rs.iter().map(|r| r.offset).collect::<Vec<_>>();
    let p0_expected: Vec<i64> = (0..=at0).chain(to0..n0).collect();
    assert_eq!(offsets(&got[&0]), p0_expected, "{compression}: partition 0 after seek({to0}) at offset {at0}");
    assert_eq!(offsets(&got[&1]), (start1..n1).collect::<Vec<_>>(), "{compression}: partition 1 from offset {start1}");
    assert_eq!(got[&2].len(), want[&2].len(), "{compression}: partition 2");
    for r in &partial.records {
        let d = want[&r.partition].iter().find(|d| d.offset == r.offset).expect("an offset that was delivered");
        assert!(d.same_content(r), "{compression}: {} differs from what was delivered: {}", r.brief(), d.brief());
    }
}

#[test]
fn compression_none() {
    round_trip_with("none", &[]);
}

#[test]
fn compression_gzip() {
    round_trip_with("gzip", &[]);
}

#[test]
fn compression_snappy() {
    round_trip_with("snappy", &[]);
}

#[test]
fn compression_lz4() {
    round_trip_with("lz4", &[]);
}

#[test]
fn compression_zstd() {
    round_trip_with("zstd", &[]);
}

#[test]
fn idempotent_producer() {
    round_trip_with("lz4", &["--idempotence"]);
}

/// subscribe() in a group, commit, leave; a new member sees the commits.
#[test]
fn consumer_group_commits() {
    let broker = Broker::start();
    let boot = broker.bootstrap();
    let topic = unique_name("ck-group");
    let group = unique_name("ck-group");
    ck_create(&boot, &topic, 3);
    let delivered = ck_produce(&boot, &topic, 2000, &["--seed", "group"]);

    let j = python_json("ck.py", &["group", &boot, &topic, &group, "--expect", "2000", "--timeout", "90"]);
    let records = Rec::list(j.get("records"));
    assert_ordered("group consumer", &records);
    assert_round_trip("group consumer", &delivered, &records);
    let assigned: Vec<i64> = j.get("assigned").as_arr().iter().map(|p| p.as_i64()).collect();
    assert_eq!(assigned, [0, 1, 2], "the only member should get every partition");
    let committed: BTreeMap<i32, i64> =
        j.get("committed").as_obj().iter().map(|(p, o)| (p.parse().unwrap(), o.as_i64())).collect();
    assert_eq!(committed, acked_ends(&delivered), "committed offsets (OffsetFetch) after the commit");
}
