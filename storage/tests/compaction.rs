//! Log compaction end to end on real files: the latest record per key stays
//! at its offset, tombstones stay for `delete.retention.ms` and then go, a
//! swap interrupted at any step recovers, and the log takes appends and
//! serves reads while a pass runs.
mod common;

use std::collections::BTreeMap;

use common::run;
use sluice_storage::batch::{self, BatchBuilder, BatchHeader, BatchPrefix, HEADER_LEN};
use sluice_storage::{CompactionConfig, Log, LogConfig};

const NOW: i64 = 1_700_000_000_000;
const DAY: i64 = 86_400_000;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 4 << 10,
        index_interval_bytes: 256,
        retention_ms: None,
        segment_ms: None,
        cleanup_delete: false,
        cleanup_compact: true,
        compaction: CompactionConfig { min_cleanable_ratio: 0.0, ..CompactionConfig::default() },
        ..LogConfig::default()
    }
}

/// A batch of (key, value) records at timestamp `ts`; `None` is a tombstone.
fn keyed(records: &[(String, Option<String>)], ts: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new(ts);
    for (k, v) in records {
        b.push(ts, Some(k.as_bytes()), v.as_deref().map(str::as_bytes));
    }
    b.build()
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rec {
    offset: i64,
    key: Option<String>,
    value: Option<String>,
}

/// Every record from the log start on, read the way a consumer would: a
/// fetch at the next offset, whole batches, records before the offset skipped.
async fn read_all(log: &Log) -> (Vec<Rec>, Vec<BatchHeader>) {
    let (mut recs, mut headers) = (Vec::new(), Vec::new());
    let mut next = log.log_start_offset();
    for _ in 0..1_000_000 {
        let Some(slice) = log.read(next, 64 << 10).await.unwrap() else { break };
        let data = slice.read().await.unwrap();
        let mut at = 0;
        let before = next;
        while let Some(p) = BatchPrefix::parse(&data[at..]) {
            if at + p.size > data.len() {
                break;
            }
            let b = &data[at..at + p.size];
            assert_eq!(batch::compute_crc(b), batch::stored_crc(b), "CRC of a batch at {}", p.base_offset);
            let h = BatchHeader::read(b);
            let section = &b[HEADER_LEN..];
            for r in batch::parse_records(section, h.record_count).expect("records parse") {
                let offset = h.base_offset + r.offset_delta;
                if offset >= next {
                    let key = r.key.map(|k| String::from_utf8(section[k].to_vec()).unwrap());
                    let value = r.value.map(|v| String::from_utf8(section[v].to_vec()).unwrap());
                    recs.push(Rec { offset, key, value });
                }
            }
            headers.push(h);
            next = h.last_offset() + 1;
            at += p.size;
        }
        assert!(next > before, "no progress at offset {before}");
    }
    (recs, headers)
}

/// Values are "=<key>:<n>", so that `read_all` can find them in a record.
fn value(key: &str, n: usize) -> Option<String> {
    Some(format!("={key}:{n}"))
}

async fn clean(log: &mut Log, now: i64) -> bool {
    let Some(plan) = log.plan_clean(now) else { return false };
    let outcome = plan.run(None).await.unwrap().expect("not aborted");
    log.finish_clean(outcome).await.unwrap()
}

/// Appends `rounds` rounds of `keys` keys (3 records a batch), then rolls.
/// Returns the latest (offset, value) of each key.
async fn fill(log: &mut Log, keys: usize, rounds: usize, ts: i64) -> BTreeMap<String, (i64, Option<String>)> {
    let mut latest = BTreeMap::new();
    for round in 0..rounds {
        for chunk in (0..keys).collect::<Vec<_>>().chunks(3) {
            let recs: Vec<_> = chunk.iter().map(|k| (format!("k{k}"), value(&format!("k{k}"), round))).collect();
            let info = log.append_at(keyed(&recs, ts), ts).await.unwrap();
            for (i, (k, v)) in recs.into_iter().enumerate() {
                latest.insert(k, (info.base_offset + i as i64, v));
            }
        }
    }
    log.roll().await.unwrap();
    latest
}

fn assert_latest_only(recs: &[Rec], latest: &BTreeMap<String, (i64, Option<String>)>) {
    let mut seen = BTreeMap::new();
    for r in recs {
        let k = r.key.clone().expect("a key");
        assert!(seen.insert(k.clone(), r.clone()).is_none(), "key {k} appears twice: {recs:?}");
    }
    let got: BTreeMap<String, (i64, Option<String>)> =
        seen.into_iter().map(|(k, r)| (k, (r.offset, r.value))).collect();
    assert_eq!(&got, latest);
}

#[test]
fn keeps_the_latest_record_per_key_at_its_offset() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), config()).await.unwrap();
        let latest = fill(&mut log, 40, 20, NOW).await;
        let (start, end, size) = (log.log_start_offset(), log.log_end_offset(), log.size_bytes());
        let segments = log.segment_count();
        assert!(segments > 5, "want several sealed segments, got {segments}");
        let (before, original) = read_all(&log).await;
        assert_eq!(before.len(), 800);
        let original: std::collections::BTreeSet<(i64, i64)> =
            original.iter().map(|h| (h.base_offset, h.last_offset())).collect();

        assert!(clean(&mut log, NOW).await);
        let (after, headers) = read_all(&log).await;
        assert_latest_only(&after, &latest);
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (start, end));
        assert!(log.size_bytes() < size / 5, "{} bytes of {size} left", log.size_bytes());
        // Batches keep their base offset and last offset delta.
        for h in &headers {
            assert!(original.contains(&(h.base_offset, h.last_offset())), "{h:?}");
        }
        // A fetch inside a gap answers with the next batch.
        let first_kept = after[0].offset;
        let slice = log.read(1, 1).await.unwrap().unwrap();
        let h = BatchHeader::read(&slice.read().await.unwrap());
        assert!(h.last_offset() >= 1 && h.base_offset <= first_kept.max(1), "{h:?}");
        // Offsets before the first kept record still read (the consumer skips ahead).
        assert!(log.read(0, 1).await.unwrap().is_some());

        // Nothing new: no pass is due; appends go on at the end.
        assert!(log.plan_clean(NOW).is_none());
        let info = log.append_at(keyed(&[("k1".into(), value("k1", 99))], NOW), NOW).await.unwrap();
        assert_eq!(info.base_offset, end);

        // Both a clean and an unclean reopen see the same compacted log.
        log.close().await.unwrap();
        let log = Log::open(dir.path(), config()).await.unwrap();
        let (reopened, _) = read_all(&log).await;
        assert_eq!(reopened[..after.len()], after[..]);
        drop(log);
        for f in std::fs::read_dir(dir.path()).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "index" || e == "timeindex") {
                std::fs::remove_file(p).unwrap();
            }
        }
        let log = Log::open(dir.path(), config()).await.unwrap();
        assert_eq!(read_all(&log).await.0[..after.len()], after[..]);
        assert_eq!(log.log_start_offset(), start);
    });
}

#[test]
fn second_pass_only_rereads_what_is_dirty_and_respects_the_ratio() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig {
            compaction: CompactionConfig { min_cleanable_ratio: 0.5, ..CompactionConfig::default() },
            ..config()
        };
        let mut log = Log::open(dir.path(), cfg).await.unwrap();
        let mut latest = fill(&mut log, 30, 6, NOW).await;
        assert!(clean(&mut log, NOW).await);
        let clean_upto = log.first_dirty_offset();
        assert_eq!(clean_upto, log.log_end_offset());
        // A little new data: dirty ratio below 0.5, nothing to do.
        latest.extend(fill(&mut log, 3, 1, NOW).await);
        assert!(log.plan_clean(NOW).is_none(), "dirty ratio is small");
        // Much more: a pass is due, and it keeps one record per key.
        latest.extend(fill(&mut log, 30, 8, NOW).await);
        let segments = log.segment_count();
        assert!(clean(&mut log, NOW).await);
        assert_latest_only(&read_all(&log).await.0, &latest);
        // Groups are sized by the segments' sizes before cleaning, as in
        // Kafka: the second pass merges what the first one shrank.
        assert!(log.segment_count() < segments, "{} of {segments} segments", log.segment_count());
    });
}

#[test]
fn min_compaction_lag_keeps_young_segments_dirty() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig {
            compaction: CompactionConfig {
                min_cleanable_ratio: 0.0,
                min_compaction_lag_ms: 60_000,
                ..Default::default()
            },
            ..config()
        };
        let mut log = Log::open(dir.path(), cfg).await.unwrap();
        let latest = fill(&mut log, 20, 5, NOW).await;
        assert!(log.plan_clean(NOW + 1_000).is_none(), "records are younger than the lag");
        assert!(clean(&mut log, NOW + 61_000).await);
        assert_latest_only(&read_all(&log).await.0, &latest);
    });
}

#[test]
fn tombstones_stay_for_delete_retention_then_go() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), config()).await.unwrap();
        let mut latest = fill(&mut log, 30, 3, NOW).await;
        for k in (0..30).step_by(3) {
            let key = format!("k{k}");
            let info = log.append_at(keyed(&[(key.clone(), None)], NOW + 10), NOW + 10).await.unwrap();
            latest.insert(key, (info.base_offset, None));
        }
        log.roll().await.unwrap();
        assert!(clean(&mut log, NOW + 20).await);
        let (recs, _) = read_all(&log).await;
        assert_latest_only(&recs, &latest);
        assert_eq!(recs.iter().filter(|r| r.value.is_none()).count(), 10, "tombstones are kept for now");

        // Nothing dirty, but once the tombstones expire a pass is due.
        assert!(log.plan_clean(NOW + DAY).is_none());
        assert!(clean(&mut log, NOW + 10 + DAY).await);
        latest.retain(|_, (_, v)| v.is_some());
        assert_latest_only(&read_all(&log).await.0, &latest);

        // The deadline survives a restart: the next tombstone is remembered.
        let key = "k1".to_string();
        let info = log.append_at(keyed(&[(key.clone(), None)], NOW + 2 * DAY), NOW + 2 * DAY).await.unwrap();
        log.roll().await.unwrap();
        assert!(clean(&mut log, NOW + 2 * DAY).await);
        latest.insert(key.clone(), (info.base_offset, None));
        assert_latest_only(&read_all(&log).await.0, &latest);
        log.close().await.unwrap();
        let mut log = Log::open(dir.path(), config()).await.unwrap();
        assert!(log.plan_clean(NOW + 3 * DAY - 1).is_none());
        assert!(clean(&mut log, NOW + 3 * DAY).await);
        latest.remove(&key);
        assert_latest_only(&read_all(&log).await.0, &latest);
    });
}

#[test]
fn a_swap_killed_at_any_step_recovers_old_or_new() {
    // Count the steps of one swap, then stop after each and reopen.
    let mut step = 1;
    loop {
        let done = run(move || async move {
            let dir = tempfile::tempdir().unwrap();
            let mut log = Log::open(dir.path(), config()).await.unwrap();
            let latest = fill(&mut log, 40, 8, NOW).await;
            let end = log.log_end_offset();
            let plan = log.plan_clean(NOW).unwrap();
            let outcome = plan.run(None).await.unwrap().unwrap();
            let finished = log.finish_clean_steps(outcome, step).await.unwrap();
            drop(log); // killed: no close
            let log = Log::open(dir.path(), config()).await.unwrap();
            assert_eq!(log.log_end_offset(), end, "step {step}");
            let (after, _) = read_all(&log).await;
            // The manifest (step 1) commits the swap: from then on a
            // restart finishes it, so the log is wholly the new one.
            assert_latest_only(&after, &latest);
            let leftovers: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.ends_with(".cleaned") || n == "cleaner-swap")
                .collect();
            assert!(leftovers.is_empty(), "step {step}: {leftovers:?}");
            finished
        });
        if done {
            break;
        }
        step += 1;
        assert!(step < 1000, "the swap never finished");
    }
    assert!(step > 4, "a swap of several groups takes several steps, took {step}");
}

#[test]
fn a_pass_that_never_commits_leaves_the_old_log() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), config()).await.unwrap();
        fill(&mut log, 40, 8, NOW).await;
        let (before, _) = read_all(&log).await;
        let outcome = log.plan_clean(NOW).unwrap().run(None).await.unwrap().unwrap();
        std::mem::forget(outcome); // killed before the swap: .cleaned files stay
        drop(log);
        let names = || -> Vec<String> {
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect()
        };
        assert!(names().iter().any(|n| n.ends_with(".log.cleaned")));
        let log = Log::open(dir.path(), config()).await.unwrap();
        assert_eq!(read_all(&log).await.0, before);
        assert!(!names().iter().any(|n| n.ends_with(".cleaned")), "{:?}", names());
    });
}

#[test]
fn appends_and_reads_go_on_while_a_pass_runs() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), config()).await.unwrap();
        let mut latest = fill(&mut log, 50, 20, NOW).await;
        // A read planned before the swap keeps working after it.
        let old_slice = log.read(0, 1 << 20).await.unwrap().unwrap();
        let old_bytes = old_slice.read().await.unwrap().to_vec();
        let plan = log.plan_clean(NOW).unwrap();
        let finished = std::rc::Rc::new(std::cell::Cell::new(false));
        let flag = finished.clone();
        let task = glommio::spawn_local(async move {
            let r = plan.run(None).await;
            flag.set(true);
            r
        });
        let mut appended = 0;
        while !finished.get() && appended < 100_000 {
            let k = format!("k{}", appended % 50);
            let info = log.append_at(keyed(&[(k.clone(), value(&k, 1000 + appended))], NOW), NOW).await.unwrap();
            latest.insert(k.clone(), (info.base_offset, value(&k, 1000 + appended)));
            appended += 1;
            glommio::executor().yield_task_queue_now().await;
        }
        let outcome = task.await.unwrap().unwrap();
        assert!(appended > 0, "the pass finished before any append could interleave");
        assert!(log.finish_clean(outcome).await.unwrap());
        assert_eq!(old_slice.read().await.unwrap().to_vec(), old_bytes);
        // Records appended meanwhile sit after the cleaned part; a second
        // pass (after a roll) leaves one per key.
        log.roll().await.unwrap();
        assert!(clean(&mut log, NOW).await);
        assert_latest_only(&read_all(&log).await.0, &latest);
    });
}

#[test]
fn a_pass_is_dropped_when_retention_moved_under_it() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig { cleanup_delete: true, ..config() };
        let mut log = Log::open(dir.path(), cfg).await.unwrap();
        fill(&mut log, 40, 8, NOW).await;
        let outcome = log.plan_clean(NOW).unwrap().run(None).await.unwrap().unwrap();
        log.delete_records(log.segment_bases()[2]).await.unwrap();
        let (before, _) = read_all(&log).await;
        assert!(!log.finish_clean(outcome).await.unwrap());
        assert_eq!(read_all(&log).await.0, before);
        let leftovers = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".cleaned"))
            .count();
        assert_eq!(leftovers, 0);
    });
}

#[test]
fn a_producers_last_batch_stays_as_an_empty_batch() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), config()).await.unwrap();
        for seq in 0..3 {
            let mut b = BatchBuilder::new(NOW);
            b.push(NOW, Some(b"p"), value("p", seq as usize).as_deref().map(str::as_bytes));
            b.push(NOW, Some(b"q"), value("q", seq as usize).as_deref().map(str::as_bytes));
            log.append_at(b.build_with_producer(7, 0, seq * 2), NOW).await.unwrap();
        }
        let producer_last = log.log_end_offset() - 1;
        // Later records of the same keys from elsewhere supersede them all.
        let mut latest = fill(&mut log, 0, 0, NOW).await;
        let info = log.append_at(keyed(&[("p".into(), value("p", 9)), ("q".into(), value("q", 9))], NOW), NOW).await;
        let info = info.unwrap();
        latest.insert("p".into(), (info.base_offset, value("p", 9)));
        latest.insert("q".into(), (info.base_offset + 1, value("q", 9)));
        log.roll().await.unwrap();
        assert!(clean(&mut log, NOW).await);
        let (recs, headers) = read_all(&log).await;
        assert_latest_only(&recs, &latest);
        let empty: Vec<_> = headers.iter().filter(|h| h.record_count == 0).collect();
        assert_eq!(empty.len(), 1, "{headers:?}");
        assert_eq!((empty[0].producer_id, empty[0].base_sequence, empty[0].last_offset()), (7, 4, producer_last));
        // Producer state rebuilt from the log alone still knows producer 7.
        log.close().await.unwrap();
        for f in std::fs::read_dir(dir.path()).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "snapshot") {
                std::fs::remove_file(p).unwrap();
            }
        }
        let mut log = Log::open(dir.path(), config()).await.unwrap();
        let last = log.producers().get(7).expect("producer 7").batches.back().copied().unwrap();
        assert_eq!((last.last_seq, last.last_offset), (5, producer_last));
        let mut b = BatchBuilder::new(NOW);
        b.push(NOW, Some(b"p"), Some(b"=again"));
        assert!(log.append_at(b.build_with_producer(7, 0, 6), NOW).await.is_ok());
    });
}

#[test]
fn compact_only_logs_are_not_touched_by_retention() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig { retention_ms: Some(std::time::Duration::from_millis(1)), ..config() };
        let mut log = Log::open(dir.path(), cfg.clone()).await.unwrap();
        fill(&mut log, 10, 10, NOW).await;
        assert_eq!(log.enforce_retention(NOW + DAY).await.unwrap(), 0);
        log.set_config(LogConfig { cleanup_delete: true, ..cfg });
        assert!(log.enforce_retention(NOW + DAY).await.unwrap() > 0);
    });
}

#[test]
fn a_log_that_keeps_every_batch_is_cleaned_below_a_limit_only() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), config()).await.unwrap();
        let first = fill(&mut log, 40, 10, NOW).await;
        let limit = log.log_end_offset();
        let (_, headers_before) = read_all(&log).await;
        // A later round past the limit names every key again: it must not
        // decide anything below the limit (it may yet be replaced).
        fill(&mut log, 40, 2, NOW).await;
        let (_, all_before) = read_all(&log).await;

        let plan = log.plan_clean_below(NOW, limit).expect("due").keep_every_batch();
        assert!(plan.range().1 <= limit, "{:?} past {limit}", plan.range());
        let outcome = plan.run(None).await.unwrap().expect("not aborted");
        assert!(log.finish_clean(outcome).await.unwrap());

        let (recs, headers) = read_all(&log).await;
        // One batch per batch before, at the same offsets, emptied or not.
        let spans = |hs: &[BatchHeader]| hs.iter().map(|h| (h.base_offset, h.last_offset())).collect::<Vec<_>>();
        assert_eq!(spans(&headers), spans(&all_before));
        assert!(headers[..headers_before.len() - 14].iter().any(|h| h.record_count == 0), "some batches emptied");
        let below: Vec<Rec> = recs.iter().filter(|r| r.offset < limit).cloned().collect();
        assert_latest_only(&below, &first);
        assert_eq!(recs.iter().filter(|r| r.offset >= limit).count(), 80, "nothing past the limit cleaned");

        // Nothing below 0 is cleanable.
        assert!(log.plan_clean_below(NOW, 0).is_none());
    });
}
