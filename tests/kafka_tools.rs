//! Apache Kafka's own command-line tools (kafka-tools 4.3 from Maven, run by
//! their main classes: what kafka-topics.sh, kafka-console-producer.sh,
//! kafka-console-consumer.sh, kafka-consumer-groups.sh, kafka-get-offsets.sh
//! and the perf-test scripts start) pointed at the broker, with the
//! quickstart's commands. Their printed output is the interface users read,
//! so the tests check it line by line.

mod common;

use std::collections::BTreeMap;

use common::kafka_tools::{
    describe, kafka_tool, kafka_tool_ok, listed, poll, topics, topics_refused, CONSOLE_CONSUMER, CONSOLE_PRODUCER,
    CONSUMER_GROUPS, CONSUMER_PERF, GET_OFFSETS, PRODUCER_PERF,
};
use common::{unique_name, Broker};

/// Per-partition end offsets as kafka-get-offsets prints them (`topic:partition:offset`).
fn end_offsets(boot: &str, topic: &str) -> BTreeMap<i32, i64> {
    let out = kafka_tool_ok(GET_OFFSETS, &["--bootstrap-server", boot, "--topic", topic], None);
    out.lines()
        .filter_map(|l| {
            let mut it = l.rsplitn(3, ':');
            let offset = it.next()?.parse().ok()?;
            let partition = it.next()?.parse().ok()?;
            (it.next()? == topic).then_some((partition, offset))
        })
        .collect()
}

#[test]
fn topics_tool_creates_lists_describes_alters_and_deletes() {
    let broker = Broker::start();
    let boot = broker.bootstrap();
    let topic = unique_name("tools-topic");

    let out = topics(&boot, &["--create", "--topic", &topic, "--partitions", "3", "--replication-factor", "1"]);
    assert_eq!(out.trim(), format!("Created topic {topic}."));
    assert!(listed(&boot).contains(&topic), "--list lacks {topic}");

    let (header, parts) = describe(&boot, &topic);
    assert_eq!(header.get("Topic"), Some(&topic), "{header:?}");
    assert_eq!(header.get("PartitionCount").map(String::as_str), Some("3"), "{header:?}");
    assert_eq!(header.get("ReplicationFactor").map(String::as_str), Some("1"), "{header:?}");
    assert!(header.get("TopicId").is_some_and(|id| id.len() == 22), "{header:?}");
    assert_eq!(parts.len(), 3, "{parts:?}");
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(p.get("Partition"), Some(&i.to_string()), "{p:?}");
        let leader = p.get("Leader").unwrap_or_else(|| panic!("no leader in {p:?}"));
        assert!(leader.parse::<i32>().is_ok_and(|l| l >= 0), "{p:?}");
        assert_eq!(p.get("Replicas"), Some(leader), "{p:?}");
        assert_eq!(p.get("Isr"), Some(leader), "{p:?}");
    }

    // The same name again: exit 1 and Kafka's message.
    let text = topics_refused(&boot, &["--create", "--topic", &topic, "--partitions", "1"]);
    assert!(text.contains(&format!("Topic '{topic}' already exists.")), "{text}");
    // `--if-not-exists` makes it a no-op.
    topics(&boot, &["--create", "--if-not-exists", "--topic", &topic, "--partitions", "1"]);

    // The tutorial's replication factor 3 on one broker is refused, not half-made.
    let rf3 = unique_name("tools-rf3");
    let text = topics_refused(&boot, &["--create", "--topic", &rf3, "--partitions", "3", "--replication-factor", "3"]);
    assert!(text.contains("InvalidReplicationFactorException"), "{text}");
    assert!(!listed(&boot).contains(&rf3), "{rf3} was created anyway");

    // Topic configs given at creation show in the header.
    let compacted = unique_name("tools-compacted");
    topics(
        &boot,
        &["--create", "--topic", &compacted, "--config", "cleanup.policy=compact", "--config", "retention.ms=3600000"],
    );
    let (header, _) = describe(&boot, &compacted);
    let configs = header.get("Configs").cloned().unwrap_or_default();
    assert!(configs.contains("cleanup.policy=compact"), "{configs}");
    assert!(configs.contains("retention.ms=3600000"), "{configs}");

    // More partitions, then delete: it leaves the list (deletion may be asynchronous).
    topics(&boot, &["--alter", "--topic", &topic, "--partitions", "5"]);
    // Apache Kafka's broker metadata shows the new partitions a moment after the answer.
    let (header, parts) = poll(50, || describe(&boot, &topic), |d| d.1.len() == 5);
    assert_eq!(header.get("PartitionCount").map(String::as_str), Some("5"), "{header:?}");
    assert_eq!(parts.len(), 5, "{parts:?}");
    topics(&boot, &["--delete", "--topic", &topic]);
    let gone = poll(100, || !listed(&boot).contains(&topic), |gone| *gone);
    assert!(gone, "{topic} still listed after --delete");
    assert!(listed(&boot).contains(&compacted));
    println!("kafka-topics: create, duplicate, rf 3 refused, configs, alter 3 -> 5 partitions, delete");
}

#[test]
fn console_producer_and_consumer_from_beginning_with_a_group() {
    let broker = Broker::start();
    let boot = broker.bootstrap();

    // The quickstart: two lines typed into the console producer, read back
    // with --from-beginning.
    let quick = unique_name("quickstart-events");
    topics(&boot, &["--create", "--topic", &quick]);
    let typed = "This is my first event\nThis is my second event\n";
    kafka_tool_ok(CONSOLE_PRODUCER, &["--topic", &quick, "--bootstrap-server", &boot], Some(typed.as_bytes()));
    let out = kafka_tool_ok(
        CONSOLE_CONSUMER,
        &["--topic", &quick, "--from-beginning", "--bootstrap-server", &boot, "--max-messages", "2"],
        None,
    );
    assert_eq!(out, typed);

    // Keyed lines over 3 partitions, read by a group that commits its offsets.
    let topic = unique_name("tools-console");
    let group = unique_name("tools-group");
    topics(&boot, &["--create", "--topic", &topic, "--partitions", "3"]);
    let n = 300;
    let input: String = (0..n).map(|i| format!("k{}:v{i}\n", i % 7)).collect();
    kafka_tool_ok(
        CONSOLE_PRODUCER,
        &[
            "--bootstrap-server",
            &boot,
            "--topic",
            &topic,
            "--reader-property",
            "parse.key=true",
            "--reader-property",
            "key.separator=:",
            "--command-property",
            "acks=all",
        ],
        Some(input.as_bytes()),
    );
    let max = n.to_string();
    let consumed = kafka_tool(
        CONSOLE_CONSUMER,
        &[
            "--bootstrap-server",
            &boot,
            "--topic",
            &topic,
            "--from-beginning",
            "--group",
            &group,
            "--max-messages",
            &max,
            "--formatter-property",
            "print.key=true",
            "--formatter-property",
            "print.partition=true",
            "--formatter-property",
            "print.offset=true",
        ],
        None,
    );
    common::expect_success(&consumed, "console consumer");
    let stderr = String::from_utf8_lossy(&consumed.stderr);
    assert!(stderr.contains(&format!("Processed a total of {n} messages")), "{stderr}");
    // Lines are `Partition:P\tOffset:O\tKEY\tVALUE`.
    let mut per_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    let mut values = Vec::new();
    let mut key_partition: BTreeMap<String, i32> = BTreeMap::new();
    for line in String::from_utf8_lossy(&consumed.stdout).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 4, "{line}");
        let p: i32 = f[0].strip_prefix("Partition:").and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{line}"));
        let o: i64 = f[1].strip_prefix("Offset:").and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{line}"));
        let i: usize = f[3].strip_prefix('v').and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{line}"));
        assert_eq!(f[2], format!("k{}", i % 7), "{line}");
        // The default partitioner hashes the key: one key, one partition.
        assert_eq!(*key_partition.entry(f[2].to_string()).or_insert(p), p, "key {} in two partitions", f[2]);
        per_partition.entry(p).or_default().push(o);
        values.push(i);
    }
    values.sort();
    assert_eq!(values, (0..n).collect::<Vec<_>>(), "every line once");
    for (p, offsets) in &per_partition {
        assert_eq!(*offsets, (0..offsets.len() as i64).collect::<Vec<_>>(), "partition {p} in offset order");
    }
    let ends = end_offsets(&boot, &topic);
    assert_eq!(ends.len(), 3, "{ends:?}");
    for (p, offsets) in &per_partition {
        assert_eq!(ends.get(p), Some(&(offsets.len() as i64)), "kafka-get-offsets for partition {p}: {ends:?}");
    }

    // kafka-consumer-groups sees the group with its committed offsets and no lag.
    let list = kafka_tool_ok(CONSUMER_GROUPS, &["--bootstrap-server", &boot, "--list"], None);
    assert!(list.lines().any(|l| l.trim() == group), "{list}");
    let described =
        kafka_tool_ok(CONSUMER_GROUPS, &["--bootstrap-server", &boot, "--describe", "--group", &group], None);
    let mut committed = BTreeMap::new();
    for line in described.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 || f[0] != group {
            continue;
        }
        assert_eq!(f[1], topic, "{line}");
        let (p, current, end, lag): (i32, i64, i64, i64) = (
            f[2].parse().unwrap_or_else(|_| panic!("{line}")),
            f[3].parse().unwrap_or_else(|_| panic!("{line}")),
            f[4].parse().unwrap_or_else(|_| panic!("{line}")),
            f[5].parse().unwrap_or_else(|_| panic!("{line}")),
        );
        assert_eq!((current, lag), (end, 0), "{line}");
        committed.insert(p, current);
    }
    assert_eq!(committed, ends, "committed offsets vs end offsets\n{described}");
    println!("console producer/consumer: quickstart and {n} keyed lines on 3 partitions; the group's lag is 0");
}

#[test]
fn perf_test_tools_produce_and_consume_every_record() {
    let broker = Broker::start();
    let boot = broker.bootstrap();
    let topic = unique_name("tools-perf");
    topics(&boot, &["--create", "--topic", &topic, "--partitions", "2"]);
    let n = 20_000i64;
    let records = n.to_string();
    let bootstrap = format!("bootstrap.servers={boot}");
    let out = kafka_tool_ok(
        PRODUCER_PERF,
        &[
            "--topic",
            &topic,
            "--num-records",
            &records,
            "--record-size",
            "100",
            "--throughput",
            "-1",
            "--command-property",
            &bootstrap,
            "acks=all",
        ],
        None,
    );
    // The closing line: "20000 records sent, ... records/sec (... MB/sec), ..."
    let summary = out.lines().rev().find(|l| l.contains("records sent")).unwrap_or_else(|| panic!("{out}"));
    assert!(summary.starts_with(&format!("{n} records sent,")), "{summary}");
    assert_eq!(end_offsets(&boot, &topic).values().sum::<i64>(), n);

    let out = kafka_tool_ok(
        CONSUMER_PERF,
        &["--bootstrap-server", &boot, "--topic", &topic, "--num-records", &records],
        None,
    );
    // A CSV header then one line: start.time, end.time, data.consumed.in.MB,
    // MB.sec, data.consumed.in.nMsg, nMsg.sec, ...
    let mut lines = out.lines().filter(|l| l.contains(','));
    let header: Vec<&str> = lines.next().unwrap_or_else(|| panic!("{out}")).split(',').map(str::trim).collect();
    let row: Vec<&str> = lines.next().unwrap_or_else(|| panic!("{out}")).split(',').map(str::trim).collect();
    let col = |name: &str| {
        let i = header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no {name} in {header:?}"));
        row[i]
    };
    assert_eq!(col("data.consumed.in.nMsg"), records, "{out}");
    let mb: f64 = col("data.consumed.in.MB").parse().unwrap_or_else(|_| panic!("{out}"));
    let want = (n * 100) as f64 / (1024.0 * 1024.0);
    assert!((mb - want).abs() < 0.01, "{mb} MB consumed, {want} produced");
    println!("perf tests: {summary}");
}
