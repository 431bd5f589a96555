//! What librdkafka (confluent-kafka) and Java applications trip on, beyond
//! the basics, each checked with both clients and on the wire (kafka-protocol
//! requests through `sluice_bench`'s connection), and against Apache Kafka
//! with `SLUICE_TEST_BROKER=kafka`:
//!
//! - fetch size limits (KIP-74): a consumer whose `fetch.max.bytes` is below
//!   `max.partition.fetch.bytes` and whose receive limit is just above
//!   `fetch.max.bytes` drains a topic of ~1 MB records; a response never
//!   carries more than `max_bytes` of batches, except the first batch of the
//!   first non-empty partition, which always goes out whole;
//! - per-record produce errors (KIP-467): a batch with keyless records on a
//!   compacted topic fails with INVALID_RECORD naming each bad record; a
//!   batch over `max.message.bytes` fails whole (MESSAGE_TOO_LARGE), which
//!   the Java client answers by splitting it;
//! - deprecated topic configs Kafka 4 still takes, and those it refuses.
//!
//! The client programs are `tests/clients/compat.py` and
//! `tests/java/ClientCompat.java`.

mod common;

use common::{java_json, python_json, unique_name, Broker, Json};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use sluice_bench::load::client::Conn;
use sluice_storage::batch::BatchBuilder;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn create(boot: &str, topic: &str, partitions: u32, configs: &[&str]) {
    let p = partitions.to_string();
    let mut args = vec!["create", boot, topic, p.as_str()];
    for c in configs {
        args.extend(["--config", c]);
    }
    python_json("compat.py", &args);
}

// ---------------------------------------------------------------------------
// Fetch size limits (KIP-74)

const BIG: usize = 1_000_000;
const BIG_PER_PARTITION: usize = 8;
const FETCH_MAX: usize = 2_000_000;
const PARTITION_MAX: usize = 5_000_000;

/// One partition's records: the sizes of its whole batches, in order, and
/// the length of the partial batch after them (Kafka cuts a read at the
/// limit, so the last batch may be partial; clients drop it).
#[derive(Debug)]
struct Read {
    batches: Vec<usize>,
    partial: usize,
}

impl Read {
    fn parse(records: &[u8]) -> Read {
        let mut batches = Vec::new();
        let mut at = 0;
        while at + 12 <= records.len() {
            let size = 12 + i32::from_be_bytes(records[at + 8..at + 12].try_into().unwrap()) as usize;
            if at + size > records.len() {
                break;
            }
            batches.push(size);
            at += size;
        }
        Read { batches, partial: records.len() - at }
    }

    fn bytes(&self) -> usize {
        self.batches.iter().sum::<usize>() + self.partial
    }
}

/// One sessionless Fetch (v12: topic names) of `topic` partitions 0..3 at
/// `offsets`, answered at once; the batch sizes per partition.
fn fetch(conn: &mut Conn, topic: &str, offsets: [i64; 3], max_bytes: usize, partition_max: usize) -> Vec<Read> {
    let partitions = offsets
        .iter()
        .enumerate()
        .map(|(p, &o)| {
            FetchPartition::default()
                .with_partition(p as i32)
                .with_fetch_offset(o)
                .with_partition_max_bytes(partition_max as i32)
                .with_current_leader_epoch(-1)
                .with_log_start_offset(-1)
        })
        .collect();
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes as i32)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default().with_topic(name(topic)).with_partitions(partitions)]);
    let resp: FetchResponse = conn.call(&req, 12).expect("fetch");
    assert_eq!(resp.error_code, 0, "{:?}", resp.error_code);
    let t = &resp.responses[0];
    (0..3)
        .map(|p| {
            let pd = t.partitions.iter().find(|d| d.partition_index == p).expect("every partition answered");
            assert_eq!(pd.error_code, 0, "partition {p}: error {}", pd.error_code);
            Read::parse(pd.records.as_deref().unwrap_or(&[]))
        })
        .collect()
}

#[test]
fn fetch_limits_let_consumers_drain_records_near_their_limits() {
    let broker = Broker::start();
    let boot = broker.bootstrap();
    let topic = unique_name("kip74");
    let total = 3 * BIG_PER_PARTITION;
    create(&boot, &topic, 3, &[]);
    python_json("compat.py", &["big", &boot, &topic, "3", "--count", &total.to_string(), "--size", &BIG.to_string()]);

    // On the wire. The first partition may fill the response, no more.
    let mut conn = Conn::connect(&boot, "kip74-test").unwrap();
    let got = fetch(&mut conn, &topic, [0, 0, 0], FETCH_MAX, PARTITION_MAX);
    let bytes: usize = got.iter().map(Read::bytes).sum();
    assert!(!got[0].batches.is_empty(), "the first partition's data: {got:?}");
    assert!(bytes <= FETCH_MAX, "{bytes} bytes of batches over max_bytes {FETCH_MAX}: {got:?}");
    // Limits below one batch: the first non-empty partition's first batch
    // still goes out whole, and nothing else.
    for (offsets, first) in [([0, 0, 0], 0), ([BIG_PER_PARTITION as i64, 0, 0], 1), ([8, 8, 3], 2)] {
        let got = fetch(&mut conn, &topic, offsets, 100_000, 100_000);
        for (p, r) in got.iter().enumerate() {
            let want = if p == first { 1 } else { 0 };
            assert_eq!((r.batches.len(), r.partial), (want, 0), "offsets {offsets:?}: partition {p}: {got:?}");
        }
        assert!(got[first].batches[0] > BIG, "the whole first batch: {got:?}");
    }
    // A partition limit below the response limit holds per partition.
    let got = fetch(&mut conn, &topic, [0, 0, 0], 10 * BIG, BIG + BIG / 2);
    assert!(got.iter().all(|r| r.batches.len() == 1 && r.bytes() <= BIG + BIG / 2), "one ~1 MB batch each: {got:?}");

    // librdkafka: receive.message.max.bytes must be at least fetch.max.bytes
    // + 512; a response over it is dropped and the consumer stalls.
    let receive_max = (FETCH_MAX + 512).to_string();
    let limits = ["--fetch-max-bytes", "2000000", "--partition-max-bytes", "5000000"];
    let count = total.to_string();
    let mut args = vec!["drain", &boot, &topic, "3", "--count", &count, "--receive-max-bytes", &receive_max];
    args.extend(limits);
    let ck = python_json("compat.py", &args);
    assert_drained(&ck, total, "confluent-kafka");
    assert!(ck.get("errors").as_arr().is_empty(), "confluent-kafka reported errors: {ck}");

    let mut args = vec!["drain", &boot, &topic, "3", "--count", &count];
    args.extend(limits);
    let java = java_json("ClientCompat", &args);
    assert_drained(&java, total, "Java");
}

fn assert_drained(j: &Json, total: usize, who: &str) {
    assert_eq!(j.get("records").as_i64(), total as i64, "{who}: {j}");
    for p in 0..3 {
        assert_eq!(j.get("per_partition").get(&p.to_string()).as_i64(), BIG_PER_PARTITION as i64, "{who}: {j}");
    }
}

// ---------------------------------------------------------------------------
// Per-record produce errors (KIP-467)

/// Produce v9 of one batch to partition 0; the partition's answer.
fn produce(conn: &mut Conn, topic: &str, batch: Vec<u8>) -> ProduceResponse {
    let part = PartitionProduceData::default().with_index(0).with_records(Some(batch.into()));
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default().with_name(name(topic)).with_partition_data(vec![part])]);
    conn.call(&req, 9).expect("produce")
}

/// The records of a `produce-batch` report: Ok(offset) or Err((error, message)).
fn reports(j: &Json) -> Vec<Result<i64, (String, String)>> {
    j.get("records")
        .as_arr()
        .iter()
        .map(|r| match r.opt("offset") {
            Some(o) => Ok(o.as_i64()),
            None => Err((r.get("error").as_str().to_string(), r.get("message").as_str().to_string())),
        })
        .collect()
}

#[test]
fn a_batch_with_bad_records_names_each_of_them() {
    let broker = Broker::start();
    let boot = broker.bootstrap();
    let compacted = unique_name("kip467-compact");
    create(&boot, &compacted, 1, &["cleanup.policy=compact"]);

    // On the wire: every keyless record named by its index in the batch.
    let mut conn = Conn::connect(&boot, "kip467-test").unwrap();
    let mut b = BatchBuilder::new(1_700_000_000_000);
    for key in [Some(&b"a"[..]), None, Some(b"b"), None] {
        b.push(1_700_000_000_000, key, Some(b"value"));
    }
    let resp = produce(&mut conn, &compacted, b.build());
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 87, "INVALID_RECORD: {resp:?}");
    let named: Vec<i32> = p.record_errors.iter().map(|e| e.batch_index).collect();
    assert_eq!(named, [1, 3], "{resp:?}");
    let want = format!("Compacted topic cannot accept message without key in topic partition {compacted}-0");
    for e in &p.record_errors {
        assert_eq!(e.batch_index_error_message.as_deref(), Some(want.as_str()), "{resp:?}");
    }
    let msg = p.error_message.as_deref().unwrap_or("");
    assert!(msg.contains("2 record errors") && msg.contains(&want), "error_message: {msg:?}");

    // librdkafka fails the named records with INVALID_RECORD, the others
    // for being in their batch (with more than one named).
    let ck = python_json("compat.py", &["produce-batch", &boot, &compacted, "--keys", "a,-,b,-"]);
    eprintln!("confluent-kafka: {ck}");
    for (i, r) in reports(&ck).into_iter().enumerate() {
        let (code, _) = r.expect_err("every record of the batch fails");
        let want = if i % 2 == 1 { "INVALID_RECORD" } else { "_INVALID_DIFFERENT_RECORD" };
        assert_eq!(code, want, "{ck}");
    }
    // Java fails the named records with the broker's message for each, and
    // the others for being in their batch.
    let java = java_json("ClientCompat", &["produce-batch", &boot, &compacted, "--keys", "a,-,b,-"]);
    eprintln!("Java: {java}");
    for (i, r) in reports(&java).into_iter().enumerate() {
        let (class, message) = r.expect_err("every record of the batch fails");
        if i % 2 == 1 {
            assert_eq!((class.as_str(), message.as_str()), ("InvalidRecordException", want.as_str()), "{java}");
        } else {
            assert_eq!(class, "KafkaException", "{java}");
        }
    }
    // Nothing of those batches was written; a keyed batch is.
    let ok = python_json("compat.py", &["produce-batch", &boot, &compacted, "--keys", "a,b"]);
    let offsets: Vec<i64> = reports(&ok).into_iter().map(|r| r.expect("written")).collect();
    assert_eq!(offsets, [0, 1], "{ok}");

    // A batch over max.message.bytes fails whole (MESSAGE_TOO_LARGE):
    // librdkafka fails all its records, Java splits it and fails only the
    // record that is too large alone.
    let small = unique_name("kip467-small");
    create(&boot, &small, 1, &["max.message.bytes=10000"]);
    let sizes = ["--keys", "a,b,c", "--sizes", "10,20000,10"];
    let ck = python_json("compat.py", &[&["produce-batch", &boot, &small][..], &sizes].concat());
    eprintln!("confluent-kafka: {ck}");
    for r in reports(&ck) {
        assert_eq!(r.expect_err("the batch fails").0, "MSG_SIZE_TOO_LARGE", "{ck}");
    }
    let java = java_json("ClientCompat", &[&["produce-batch", &boot, &small][..], &sizes].concat());
    eprintln!("Java: {java}");
    let r = reports(&java);
    assert!(r[0].is_ok() && r[2].is_ok(), "{java}");
    assert_eq!(r[1].as_ref().unwrap_err().0, "RecordTooLargeException", "{java}");
}

// ---------------------------------------------------------------------------
// Topic configs Kafka 4 removed (KIP-724 and the 4.0 clean-up)

/// Kafka 4 removed `message.format.version`, `message.downconversion.enable`
/// and `message.timestamp.difference.max.ms`: creating or setting them is
/// INVALID_CONFIG "Unknown topic config name: …", as for any unknown name,
/// while deleting a name that is not set is a no-op; a value below a known
/// config's minimum is INVALID_CONFIG too.
#[test]
fn removed_topic_configs_are_refused_as_kafka_4_refuses_them() {
    let broker = Broker::start();
    let boot = broker.bootstrap();
    let prefix = unique_name("cfg");
    let removed = ["message.format.version=3.0", "message.downconversion.enable=true"];
    let more = ["message.timestamp.difference.max.ms=1000", "no.such.config=1"];
    let args: Vec<&str> = ["configs", &boot, &prefix].into_iter().chain(removed).chain(more).collect();
    let mut args = args;
    args.extend(["segment.index.bytes=2", "segment.index.bytes=4096"]);
    let got = python_json("compat.py", &args);
    eprintln!("{got}");
    for kv in removed.iter().chain(&more) {
        let name = kv.split('=').next().unwrap();
        let unknown = format!("40 Unknown topic config name: {name}");
        assert_eq!(got.get(kv).get("create").as_str(), unknown, "{kv}: {got}");
        assert_eq!(got.get(kv).get("set").as_str(), unknown, "{kv}: {got}");
        assert_eq!(got.get(kv).get("delete").as_str(), "ok", "{kv}: {got}");
    }
    let low = got.get("segment.index.bytes=2");
    for op in ["create", "set"] {
        assert!(low.get(op).as_str().starts_with("40 Invalid value 2 for configuration segment.index.bytes"), "{got}");
    }
    let fine = got.get("segment.index.bytes=4096");
    assert_eq!((fine.get("create").as_str(), fine.get("set").as_str()), ("ok", "ok"), "{got}");
}
