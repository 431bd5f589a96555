//! kcat (Debian's 1.7.1, librdkafka 2.0.2: an old client that sends
//! Metadata v4 / Produce v7 / Fetch v11 and parses ApiVersions v3 strictly).

mod common;

use std::collections::{BTreeMap, HashMap};

use common::{expect_success, kcat, python_json, unique_name, Broker};

/// Deterministic printable key/value pairs: 1000 distinct keys, values of
/// 1..=200 characters without newlines (kcat splits its input on them).
fn records(n: usize) -> Vec<(String, String)> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 :;,.-_=+/!?#";
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|i| {
            let len = 1 + (next() % 200) as usize;
            let value: String = (0..len).map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize] as char).collect();
            (format!("k{}", i % 1000), format!("{i}|{value}"))
        })
        .collect()
}

/// (partition, offset, key, value) from `-f '%p %o %k %s\n'` output.
fn parse_consumed(out: &[u8]) -> Vec<(i32, i64, String, String)> {
    String::from_utf8(out.to_vec())
        .expect("kcat output is UTF-8")
        .lines()
        .map(|l| {
            let mut f = l.splitn(4, ' ');
            let p = f.next().and_then(|s| s.parse().ok());
            let o = f.next().and_then(|s| s.parse().ok());
            let k = f.next();
            let v = f.next();
            match (p, o, k, v) {
                (Some(p), Some(o), Some(k), Some(v)) => (p, o, k.to_string(), v.to_string()),
                _ => panic!("unexpected kcat output line {l:?}"),
            }
        })
        .collect()
}

#[test]
fn kcat_100k_keyed_records_round_trip() {
    let broker = Broker::start();
    let boot = broker.bootstrap();
    let topic = unique_name("kcat");
    python_json("ck.py", &["create", &boot, &topic, "3"]);

    let produced = records(100_000);
    let mut input = Vec::with_capacity(produced.len() * 120);
    for (k, v) in &produced {
        input.extend_from_slice(k.as_bytes());
        input.push(b':');
        input.extend_from_slice(v.as_bytes());
        input.push(b'\n');
    }
    let out = kcat(&["-b", &boot, "-P", "-t", &topic, "-K:", "-X", "acks=all"], &input);
    expect_success(&out, "kcat -P");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("Delivery failed") && !err.contains("ERROR"), "kcat -P reported errors:\n{err}");

    let out = kcat(&["-b", &boot, "-C", "-t", &topic, "-e", "-q", "-o", "beginning", "-f", "%p %o %k %s\\n"], b"");
    expect_success(&out, "kcat -C");
    let consumed = parse_consumed(&out.stdout);
    assert_eq!(consumed.len(), produced.len(), "kcat consumed a different number of records than it produced");

    // Same multiset of (key, value) pairs.
    let mut want: Vec<(&str, &str)> = produced.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut got: Vec<(&str, &str)> = consumed.iter().map(|(_, _, k, v)| (k.as_str(), v.as_str())).collect();
    want.sort_unstable();
    got.sort_unstable();
    if want != got {
        let first = want.iter().zip(&got).position(|(a, b)| a != b);
        panic!(
            "the consumed key/value pairs differ from the produced ones (first difference at sorted index {first:?})"
        );
    }

    // Each key went to one partition; each partition holds offsets 0..n in
    // order, and its records are exactly the produced ones with its keys, in
    // the order they were produced.
    let mut partition_of: HashMap<&str, i32> = HashMap::new();
    let mut per_partition: BTreeMap<i32, Vec<(i64, &str, &str)>> = BTreeMap::new();
    for (p, o, k, v) in &consumed {
        let prev = *partition_of.entry(k.as_str()).or_insert(*p);
        assert_eq!(prev, *p, "key {k} was found in partitions {prev} and {p}");
        per_partition.entry(*p).or_default().push((*o, k, v));
    }
    assert!(per_partition.keys().all(|p| (0..3).contains(p)), "partitions outside 0..3: {:?}", per_partition.keys());
    assert_eq!(per_partition.len(), 3, "1000 keys should spread over all 3 partitions");
    for (p, recs) in &per_partition {
        for (i, (o, _, _)) in recs.iter().enumerate() {
            assert_eq!(*o, i as i64, "partition {p}: offsets are not 0, 1, 2, ... in consumption order");
        }
        let expected: Vec<(&str, &str)> = produced
            .iter()
            .filter(|(k, _)| partition_of[k.as_str()] == *p)
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let actual: Vec<(&str, &str)> = recs.iter().map(|(_, k, v)| (*k, *v)).collect();
        if expected != actual {
            let at = expected.iter().zip(&actual).position(|(a, b)| a != b);
            panic!(
                "partition {p}: records not in production order (lengths {} vs {}, first difference at {at:?})",
                expected.len(),
                actual.len()
            );
        }
    }
}

#[test]
fn kcat_metadata_auto_creates_with_num_partitions() {
    let broker = Broker::start_with(&["num.partitions=3", "auto.create.topics.enable=true"], 1);
    let boot = broker.bootstrap();
    let topic = unique_name("kcat-auto");
    // The first metadata request may see the topic still being created
    // (LEADER_NOT_AVAILABLE): ask a few times, bounded.
    let mut last = String::new();
    for _ in 0..10 {
        let out = kcat(&["-b", &boot, "-L", "-t", &topic, "-m", "10"], b"");
        last = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && last.contains(&format!("topic \"{topic}\" with 3 partitions")) {
            let leaders = last
                .lines()
                .filter(|l| {
                    l.trim_start().starts_with("partition ") && l.contains("leader ") && !l.contains("leader -1")
                })
                .count();
            assert!(leaders >= 3, "every partition should have a leader:\n{last}");
            // A produce and consume through the auto-created topic.
            let out = kcat(&["-b", &boot, "-P", "-t", &topic, "-K:"], b"a:1\nb:2\nc:3\n");
            expect_success(&out, "kcat -P");
            let out = kcat(&["-b", &boot, "-C", "-t", &topic, "-e", "-q", "-o", "beginning", "-f", "%k=%s\\n"], b"");
            expect_success(&out, "kcat -C");
            let mut got: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
            got.sort();
            assert_eq!(got, ["a=1", "b=2", "c=3"]);
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    panic!("metadata for {topic} never showed 3 partitions (num.partitions=3); last kcat -L output:\n{last}");
}
