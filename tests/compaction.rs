//! Log compaction against the real broker, with confluent-kafka
//! (tests/clients/compaction.py): a topic gets 100k records over 1000 keys
//! and a tombstone for every tenth key, then is switched to
//! `cleanup.policy=compact` (IncrementalAlterConfigs, so that the size
//! before cleaning can be measured: a compacted topic would be cleaned
//! while the records are still coming in). Once the cleaner has run, a consumer reading from the beginning sees each
//! key's latest value exactly once, no tombstoned key (after
//! `delete.retention.ms`), unchanged earliest/latest offsets, and a fetch
//! inside a gap gets the next record, also after SIGKILL and restart. The
//! partition's files on disk must shrink, so the test fails if nothing is
//! compacted.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::{python_json, sockets_on_port, unique_name, Broker};

const RECORDS: i64 = 100_000;
const KEYS: i64 = 1000;
const TOMBSTONE_EVERY: i64 = 10;
const SEGMENT_MS: u64 = 2000;

/// Bytes of `.log` files in a partition directory.
fn log_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

struct Consumed {
    low: i64,
    high: i64,
    records: Vec<(i64, String, Option<String>)>,
}

fn consume(boot: &str, topic: &str, start: Option<i64>) -> Consumed {
    let start = start.map(|s| s.to_string());
    let mut args = vec!["consume", boot, topic, "--timeout", "60"];
    if let Some(s) = &start {
        args.extend(["--start", s.as_str()]);
    }
    let j = python_json("compaction.py", &args);
    let records = j
        .get("records")
        .as_arr()
        .iter()
        .map(|r| {
            let r = r.as_arr();
            (r[0].as_i64(), r[1].as_str().to_string(), r[2].as_opt_str().map(str::to_string))
        })
        .collect();
    Consumed { low: j.get("low").as_i64(), high: j.get("high").as_i64(), records }
}

/// Checks what holds after any number of cleaner passes: the offsets did
/// not move, they only increase, and every key's last record is its latest
/// value (the cleaner never drops a key's newest record; a tombstone may
/// still be there, and an older value too while a pass has not reached the
/// newer one yet). Returns whether the log is final: every live key
/// exactly once and no tombstone left.
fn check(c: &Consumed, latest: &BTreeMap<String, Option<String>>, end: i64) -> bool {
    assert_eq!((c.low, c.high), (0, end), "ListOffsets earliest/latest must not change");
    let mut last: BTreeMap<&str, (i64, &Option<String>)> = BTreeMap::new();
    let mut duplicates = 0;
    let mut previous = -1;
    for (offset, key, value) in &c.records {
        assert!(*offset < end, "offset {offset} past the end {end}");
        assert!(*offset > previous, "offset {offset} after {previous}");
        previous = *offset;
        if key == "sentinel" {
            assert_eq!(*offset, end - 1);
            continue;
        }
        assert!(latest.contains_key(key), "unknown key {key}");
        if last.insert(key, (*offset, value)).is_some() {
            duplicates += 1;
        }
    }
    for (key, want) in latest {
        match last.get(key.as_str()) {
            Some((offset, value)) => {
                assert_eq!(*value, want, "key {key}: its last record (offset {offset}) is not its latest value")
            }
            None => assert!(want.is_none(), "key {key} lost: its latest value {want:?} is gone"),
        }
    }
    let tombstones = c.records.iter().filter(|r| r.2.is_none()).count();
    tombstones == 0 && duplicates == 0
}

fn compacts(compression: &str) {
    let mut broker = Broker::start_with(&["log.cleaner.backoff.ms=100", "log.retention.check.interval.ms=100"], 1);
    let boot = broker.bootstrap();
    let topic = unique_name(&format!("compact-{compression}"));
    let segment_ms = format!("segment.ms={SEGMENT_MS}");
    python_json(
        "compaction.py",
        &[
            "create",
            &boot,
            &topic,
            "cleanup.policy=delete",
            "segment.bytes=65536",
            &segment_ms,
            "min.cleanable.dirty.ratio=0.01",
            "delete.retention.ms=3000",
        ],
    );
    let produced = python_json(
        "compaction.py",
        &[
            "produce",
            &boot,
            &topic,
            "--count",
            &RECORDS.to_string(),
            "--keys",
            &KEYS.to_string(),
            "--tombstone-every",
            &TOMBSTONE_EVERY.to_string(),
            "--compression",
            compression,
        ],
    );
    let latest: BTreeMap<String, Option<String>> =
        produced.get("latest").as_obj().iter().map(|(k, v)| (k.clone(), v.as_opt_str().map(str::to_string))).collect();
    assert_eq!(latest.len(), KEYS as usize);
    let dir = broker.data_dir().join(format!("{topic}-0"));
    let before = log_bytes(&dir);
    assert!(before > 0, "no log files under {}", dir.display());

    python_json("compaction.py", &["alter", &boot, &topic, "cleanup.policy=compact"]);
    // Only sealed segments are cleaned: once segment.ms has passed, one
    // more record rolls the active segment, so every record above is cleanable.
    std::thread::sleep(Duration::from_millis(SEGMENT_MS + 500));
    python_json("compaction.py", &["sentinel", &boot, &topic]);
    let end = RECORDS + KEYS / TOMBSTONE_EVERY + 1;

    let mut after = before;
    for _ in 0..600 {
        after = log_bytes(&dir);
        if after < before / 10 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(after < before / 10, "the log did not shrink: {before} bytes before, {after} after\n{}", broker.log_tail());

    // Tombstones go once delete.retention.ms has passed and a pass ran.
    let mut last = None;
    for _ in 0..120 {
        let c = consume(&boot, &topic, None);
        if check(&c, &latest, end) {
            last = Some(c);
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let c = last.unwrap_or_else(|| panic!("tombstones were never removed\n{}", broker.log_tail()));
    assert_eq!(c.records.len(), (KEYS - KEYS / TOMBSTONE_EVERY + 1) as usize);

    // A fetch at an offset that compaction removed returns the next record.
    let offsets: Vec<i64> = c.records.iter().map(|r| r.0).collect();
    let gap = (0..end).find(|o| !offsets.contains(o)).expect("compaction left gaps");
    let next = *offsets.iter().find(|&&o| o > gap).unwrap();
    let from_gap = consume(&boot, &topic, Some(gap));
    assert_eq!(from_gap.records.first().map(|r| r.0), Some(next), "fetch from offset {gap}, inside a gap");
    assert_eq!(from_gap.records[..], c.records[offsets.iter().position(|&o| o == next).unwrap()..]);

    // A compacted log (gaps, emptied segments) reopens as it was after a kill.
    broker.kill9();
    // The killed process's io_uring is torn down after it exits, and its
    // listening socket with it: wait (bounded) until the port is free.
    for _ in 0..100 {
        if !sockets_on_port(broker.port()).contains("LISTEN") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    broker.restart();
    let reopened = consume(&boot, &topic, None);
    assert_eq!((reopened.low, reopened.high), (0, end));
    assert_eq!(reopened.records, c.records, "after SIGKILL and restart");
}

#[test]
fn compaction_uncompressed() {
    compacts("none");
}

/// Compressed batches are opened, filtered and compressed again with their codec.
#[test]
fn compaction_lz4() {
    compacts("lz4");
}
