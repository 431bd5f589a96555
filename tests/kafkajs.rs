//! kafkajs 2.2.4 (pure JS; Metadata v6, Produce v7, Fetch v11): admin create,
//! list and describe; acks=all produce with keys and headers; a consumer
//! group (subscribe + run) that reads everything back and commits.

mod common;

use std::collections::BTreeMap;

use common::records::{assert_round_trip, by_partition};
use common::{acked_ends, node_json, unique_name, Broker, Rec};

#[test]
fn produce_and_consume_in_a_group() {
    let broker = Broker::start();
    let topic = unique_name("kafkajs");
    let group = unique_name("kafkajs-group");
    let j = node_json("kafkajs.js", &[&broker.bootstrap(), &topic, &group, "--count", "3000", "--timeout", "90"]);

    assert!(j.get("created").as_bool(), "createTopics should report the topic as created");
    assert_eq!(j.get("listed").as_arr().len(), 1, "listTopics should include the topic");
    let described = &j.get("described").as_arr()[0];
    assert_eq!(described.get("partitions").as_i64(), 3);

    let delivered = Rec::list(j.get("delivered"));
    let records = Rec::list(j.get("records"));
    assert_eq!(delivered.len(), 3000);
    assert_eq!(by_partition(&delivered).len(), 3);
    assert_round_trip("kafkajs group consumer", &delivered, &records);

    let committed: BTreeMap<i32, i64> =
        j.get("committed").as_obj().iter().map(|(p, o)| (p.parse().unwrap(), o.as_i64())).collect();
    assert_eq!(committed, acked_ends(&delivered), "the group's committed offsets after stop()");
    let ends: BTreeMap<i32, i64> =
        j.get("end_offsets").as_obj().iter().map(|(p, o)| (p.parse().unwrap(), o.as_i64())).collect();
    assert_eq!(ends, acked_ends(&delivered), "end offsets (ListOffsets latest)");
}
