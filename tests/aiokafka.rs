//! aiokafka (sends ApiVersions v0 first, Metadata v5, Produce v7, Fetch v11):
//! admin (create, duplicate create, list, describe, delete), an acks=all
//! producer, and an assign() + seek() consumer without a group.

mod common;

use common::records::{assert_round_trip, by_partition};
use common::{acked_ends, python_json, unique_name, Broker, Rec};

#[test]
fn admin_create_list_describe_delete() {
    let broker = Broker::start();
    let prefix = unique_name("aio-admin");
    let j = python_json("aio.py", &["admin", &broker.bootstrap(), &prefix]);
    let (a, b) = (format!("{prefix}-a"), format!("{prefix}-b"));
    let names = |k: &str| j.get(k).as_arr().iter().map(|t| t.as_str().to_string()).collect::<Vec<_>>();
    assert_eq!(names("listed_after_create"), [a.clone(), b.clone()]);
    assert_eq!(j.get("duplicate_create_error_code").as_i64(), 36, "TOPIC_ALREADY_EXISTS");
    let described = j.get("described");
    assert_eq!(described.get(&a).get("error_code").as_i64(), 0);
    assert_eq!(described.get(&a).get("partitions").as_i64(), 3);
    assert_eq!(described.get(&b).get("error_code").as_i64(), 0);
    assert_eq!(described.get(&b).get("partitions").as_i64(), 1);
    assert_eq!(names("listed_after_delete"), [a]);
}

fn produce_consume(compression: &str) {
    let broker = Broker::start();
    let topic = unique_name(&format!("aio-{compression}"));
    let j = python_json(
        "aio.py",
        &["produce-consume", &broker.bootstrap(), &topic, "--count", "3000", "--compression", compression],
    );
    let delivered = Rec::list(j.get("delivered"));
    let records = Rec::list(j.get("records"));
    assert_eq!(delivered.len(), 3000);
    assert_eq!(by_partition(&delivered).len(), 3);
    assert_round_trip(&format!("aiokafka {compression}"), &delivered, &records);
    let ends: std::collections::BTreeMap<i32, i64> =
        j.get("end_offsets").as_obj().iter().map(|(p, o)| (p.parse().unwrap(), o.as_i64())).collect();
    assert_eq!(ends, acked_ends(&delivered), "end offsets (ListOffsets latest)");
}

#[test]
fn produce_consume_uncompressed() {
    produce_consume("none");
}

#[test]
fn produce_consume_gzip() {
    produce_consume("gzip");
}

/// A consumer that starts in the middle of a partition gets exactly the
/// records from there on.
#[test]
fn consume_from_the_middle() {
    let broker = Broker::start();
    let topic = unique_name("aio-mid");
    let j = python_json(
        "aio.py",
        &["produce-consume", &broker.bootstrap(), &topic, "--partitions", "1", "--count", "1000", "--start", "0:457"],
    );
    let delivered = Rec::list(j.get("delivered"));
    let records = Rec::list(j.get("records"));
    let tail: Vec<Rec> = delivered.iter().filter(|r| r.offset >= 457).cloned().collect();
    assert_eq!(records.first().map(|r| r.offset), Some(457), "the first record read after seek(457)");
    assert_round_trip("aiokafka from offset 457", &tail, &records);
}
