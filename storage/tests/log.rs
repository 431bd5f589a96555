//! The log end to end on real files in a temp dir, on a glommio executor.
mod common;

use std::time::Duration;

use common::{batch, batch_with_timestamps, idempotent_batch, run, with_offset};
use proptest::prelude::*;
use sluice_storage::{FlushPolicy, Log, LogConfig, StorageError};

fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 8 << 10,
        index_interval_bytes: 512,
        retention_ms: None,
        segment_ms: None,
        ..LogConfig::default()
    }
}

/// Reads everything from `offset` and checks the first batch holds it and
/// the bytes are exactly what was appended.
async fn check_reads(log: &Log, appended: &[(i64, i64, Vec<u8>)], max_bytes: usize) {
    for &(base, last, ref bytes) in appended {
        for offset in [base, (base + last) / 2, last] {
            let slice = log.read(offset, max_bytes).await.unwrap().expect("data at offset");
            let data = slice.read().await.unwrap();
            assert!(data.len() >= bytes.len().min(max_bytes.max(bytes.len())));
            assert_eq!(&data[..bytes.len()], &bytes[..], "offset {offset}");
        }
    }
    assert!(log.read(log.log_end_offset(), max_bytes).await.unwrap().is_none());
    assert!(matches!(log.read(log.log_end_offset() + 1, max_bytes).await, Err(StorageError::OffsetOutOfRange { .. })));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]
    #[test]
    fn random_batches_round_trip(
        shapes in prop::collection::vec((1usize..40, 0usize..600), 1..60),
        max_bytes in 1usize..20_000,
    ) {
        run(move || async move {
            let dir = tempfile::tempdir().unwrap();
            let mut log = Log::open(dir.path(), small_config()).await.unwrap();
            let mut appended = Vec::new();
            for (i, &(records, value_len)) in shapes.iter().enumerate() {
                let b = batch(records, value_len, 1_000 + i as i64 * 100);
                let info = log.append(b.clone()).await.unwrap();
                assert_eq!(info.last_offset - info.base_offset + 1, records as i64);
                appended.push((info.base_offset, info.last_offset, with_offset(b, info.base_offset)));
            }
            let total: i64 = shapes.iter().map(|s| s.0 as i64).sum();
            assert_eq!(log.log_end_offset(), total);
            check_reads(&log, &appended, max_bytes).await;
            // Clean reopen trusts saved indexes; unclean rebuilds them.
            log.close().await.unwrap();
            let log = Log::open(dir.path(), small_config()).await.unwrap();
            assert!(log.recovery().clean_shutdown);
            check_reads(&log, &appended, max_bytes).await;
            drop(log);
            let log = Log::open(dir.path(), small_config()).await.unwrap();
            assert!(!log.recovery().clean_shutdown);
            assert_eq!(log.log_end_offset(), total);
            check_reads(&log, &appended, max_bytes).await;
        });
    }

    #[test]
    fn timestamp_lookup_agrees_with_a_scan(
        stamps in prop::collection::vec(prop::collection::vec(0i64..5_000, 1..8), 1..50),
        probes in prop::collection::vec(-10i64..5_100, 20),
    ) {
        run(move || async move {
            let dir = tempfile::tempdir().unwrap();
            let mut log = Log::open(dir.path(), LogConfig { segment_bytes: 2048, index_interval_bytes: 128, ..small_config() }).await.unwrap();
            let mut records = Vec::new();
            for s in &stamps {
                let info = log.append(batch_with_timestamps(s, 20)).await.unwrap();
                records.extend(s.iter().enumerate().map(|(i, &t)| (info.base_offset + i as i64, t)));
            }
            for &t in &probes {
                let expected = records.iter().find(|&&(_, ts)| ts >= t).copied();
                assert_eq!(log.offset_for_timestamp(t).await.unwrap(), expected, "ts {t}");
            }
            let max = records.iter().map(|r| r.1).max().unwrap();
            let first_max = records.iter().find(|r| r.1 == max).unwrap().0;
            assert_eq!(log.max_timestamp().await.unwrap(), Some((first_max, max)));
        });
    }
}

#[test]
fn reads_return_whole_first_batch_even_beyond_max_bytes() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig { segment_bytes: 1 << 20, ..small_config() };
        let mut log = Log::open(dir.path(), cfg).await.unwrap();
        let big = batch(4, 3000, 0);
        log.append(big.clone()).await.unwrap();
        log.append(batch(1, 10, 5)).await.unwrap();
        let s = log.read(2, 1).await.unwrap().unwrap();
        assert_eq!(s.len, big.len());
        assert_eq!(s.position, 0);
        let s = log.read(0, 1 << 20).await.unwrap().unwrap();
        assert_eq!(s.len as u64, log.size_bytes());
    });
}

#[test]
fn segments_roll_by_size_and_age() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig { segment_bytes: 4096, ..small_config() };
        let mut log = Log::open(dir.path(), cfg.clone()).await.unwrap();
        let b = batch(1, 1000, 0);
        let per_segment = 4096 / b.len();
        for _ in 0..per_segment * 3 {
            log.append(b.clone()).await.unwrap();
        }
        assert_eq!(log.segment_count(), 3);
        let bases = log.segment_bases();
        assert_eq!(bases, vec![0, per_segment as i64, 2 * per_segment as i64]);
        for base in &bases[..2] {
            let name = format!("{base:020}");
            for ext in ["log", "index", "timeindex"] {
                assert!(dir.path().join(format!("{name}.{ext}")).exists(), "{name}.{ext}");
            }
            let size = std::fs::metadata(dir.path().join(format!("{name}.log"))).unwrap().len();
            assert!(size <= 4096 && size > 4096 - b.len() as u64);
        }
        // segment.ms counts from the first batch's timestamp.
        log.set_config(LogConfig { segment_bytes: 1 << 30, segment_ms: Some(Duration::from_millis(1000)), ..cfg });
        let n = log.segment_count();
        log.append(batch(1, 10, 10_000)).await.unwrap();
        assert_eq!(log.segment_count(), n + 1);
        log.append(batch(1, 10, 10_999)).await.unwrap();
        assert_eq!(log.segment_count(), n + 1);
        log.append(batch(1, 10, 11_000)).await.unwrap();
        assert_eq!(log.segment_count(), n + 2);
    });
}

#[test]
fn retention_by_size_and_time_and_delete_records() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig { segment_bytes: 2048, ..small_config() };
        let mut log = Log::open(dir.path(), cfg.clone()).await.unwrap();
        for i in 0..40 {
            log.append(batch(2, 200, i * 1000)).await.unwrap();
        }
        let segs = log.segment_count();
        assert!(segs >= 8, "{segs}");
        // By size: keep at most 6 KiB beyond the segment being dropped.
        log.set_config(LogConfig { retention_bytes: Some(6 << 10), ..cfg.clone() });
        let deleted = log.enforce_retention(0).await.unwrap();
        assert!(deleted > 0);
        assert!(log.size_bytes() <= (6 << 10) + 2048);
        assert_eq!(log.log_start_offset(), log.segment_bases()[0]);
        assert!(matches!(log.read(0, 100).await, Err(StorageError::OffsetOutOfRange { .. })));
        assert!(log.read(log.log_start_offset(), 100).await.unwrap().is_some());
        // By time: segments whose newest record is older than now - retention.
        log.set_config(LogConfig { retention_ms: Some(Duration::from_millis(10_000)), ..cfg.clone() });
        log.enforce_retention(30_000).await.unwrap();
        let start = log.log_start_offset();
        let (oldest_kept_ts, _) = log.offset_for_timestamp(0).await.unwrap().map(|(o, t)| (t, o)).unwrap();
        assert!(oldest_kept_ts >= 20_000 - 1000, "{oldest_kept_ts} start {start}");
        // Everything expired: the active segment is rolled and dropped too.
        let end = log.log_end_offset();
        log.enforce_retention(1_000_000).await.unwrap();
        assert_eq!(log.log_start_offset(), end);
        assert_eq!(log.segment_count(), 1);
        assert!(log.read(end, 100).await.unwrap().is_none());
        // delete_records moves the start without needing a segment boundary.
        log.set_config(cfg.clone());
        for i in 0..10 {
            log.append(batch(1, 100, 2_000_000 + i)).await.unwrap();
        }
        assert_eq!(log.delete_records(end + 3).await.unwrap(), end + 3);
        assert!(matches!(log.read(end + 2, 100).await, Err(StorageError::OffsetOutOfRange { .. })));
        assert!(log.delete_records(end + 100).await.is_err());
        log.close().await.unwrap();
        let log = Log::open(dir.path(), cfg).await.unwrap();
        assert_eq!(log.log_start_offset(), end + 3);
        assert_eq!(log.log_end_offset(), end + 10);
    });
}

#[test]
fn bad_batches_are_refused_and_log_append_time_is_stamped() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig { log_append_time: true, max_batch_bytes: 2000, ..small_config() };
        let mut log = Log::open(dir.path(), cfg).await.unwrap();
        log.set_leader_epoch(3);
        let mut bad = batch(2, 10, 0);
        let n = bad.len();
        bad[n - 1] ^= 0xff;
        assert!(matches!(log.append(bad).await, Err(StorageError::Batch(_))));
        assert!(matches!(log.append(batch(1, 3000, 0)).await, Err(StorageError::Batch(_))));
        let info = log.append_at(batch(2, 10, 0), 123_456).await.unwrap();
        assert_eq!(info.log_append_time, Some(123_456));
        let data = log.read(0, 1000).await.unwrap().unwrap().read().await.unwrap();
        let h = sluice_storage::batch::validate(&data).unwrap();
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 123_456);
        assert_eq!(h.leader_epoch, 3);
        assert_eq!(log.log_end_offset(), 2);
    });
}

#[test]
fn flush_policies_track_the_durable_offset() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig { flush: FlushPolicy::EveryAppend, ..small_config() };
        let mut log = Log::open(dir.path(), cfg.clone()).await.unwrap();
        log.append(batch(3, 10, 0)).await.unwrap();
        assert_eq!(log.durable_offset(), 3);
        log.set_config(LogConfig {
            flush: FlushPolicy::Interval { messages: Some(5), interval: Some(Duration::from_millis(50)) },
            ..cfg
        });
        log.append(batch(3, 10, 0)).await.unwrap();
        assert_eq!(log.durable_offset(), 3);
        assert!(!log.flush_due(std::time::Instant::now()));
        assert!(log.flush_due(std::time::Instant::now() + Duration::from_millis(60)));
        log.append(batch(2, 10, 0)).await.unwrap();
        assert_eq!(log.durable_offset(), 8);
        log.append(batch(1, 10, 0)).await.unwrap();
        let pending = log.pending_flush().unwrap();
        log.append(batch(1, 10, 0)).await.unwrap();
        pending.run().await.unwrap();
        log.mark_durable(pending.upto);
        assert_eq!(log.durable_offset(), 9);
        log.flush().await.unwrap();
        assert_eq!(log.durable_offset(), 10);
    });
}

#[test]
fn idempotent_producer_state_survives_restart() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig { segment_bytes: 1024, ..small_config() };
        let mut log = Log::open(dir.path(), cfg.clone()).await.unwrap();
        let mut seq = 0;
        let mut first = None;
        for _ in 0..30 {
            let info = log.append(idempotent_batch(2, 42, 0, seq)).await.unwrap();
            first.get_or_insert(info);
            seq += 2;
        }
        assert!(log.segment_count() > 2, "snapshots are taken at rolls");
        let last = log.append(idempotent_batch(2, 42, 0, seq)).await.unwrap();
        // A retry of the last batch gets its original offsets back.
        let dup = log.append(idempotent_batch(2, 42, 0, seq)).await.unwrap();
        assert!(dup.duplicate);
        assert_eq!((dup.base_offset, dup.last_offset), (last.base_offset, last.last_offset));
        let end = log.log_end_offset();
        // Unclean restart: snapshot at the last roll plus replay of the tail.
        log.flush().await.unwrap();
        drop(log);
        let mut log = Log::open(dir.path(), cfg.clone()).await.unwrap();
        assert!(log.recovery().replayed_batches > 0);
        let dup = log.append(idempotent_batch(2, 42, 0, seq)).await.unwrap();
        assert!(dup.duplicate && dup.base_offset == last.base_offset);
        assert!(matches!(log.append(idempotent_batch(1, 42, 0, seq + 5)).await, Err(StorageError::Producer(_))));
        assert!(matches!(log.append(idempotent_batch(1, 42, -1, 0)).await, Err(StorageError::Producer(_))));
        assert_eq!(log.log_end_offset(), end);
        log.append(idempotent_batch(1, 42, 0, seq + 2)).await.unwrap();
        log.close().await.unwrap();
        let mut log = Log::open(dir.path(), cfg).await.unwrap();
        assert_eq!(log.recovery().replayed_batches, 0);
        let dup = log.append(idempotent_batch(1, 42, 0, seq + 2)).await.unwrap();
        assert!(dup.duplicate && dup.base_offset == end);
    });
}

#[test]
fn missing_or_garbage_indexes_are_rebuilt() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig { segment_bytes: 4096, ..small_config() };
        let mut log = Log::open(dir.path(), cfg.clone()).await.unwrap();
        let mut appended = Vec::new();
        for i in 0..40 {
            let b = batch(3, 100, i);
            let info = log.append(b.clone()).await.unwrap();
            appended.push((info.base_offset, info.last_offset, with_offset(b, info.base_offset)));
        }
        let bases = log.segment_bases();
        log.close().await.unwrap();
        std::fs::remove_file(dir.path().join(format!("{:020}.index", bases[0]))).unwrap();
        std::fs::write(dir.path().join(format!("{:020}.timeindex", bases[1])), b"garbage").unwrap();
        std::fs::write(dir.path().join(format!("{:020}.index", bases[2])), [0xffu8; 16]).unwrap();
        let log = Log::open(dir.path(), cfg).await.unwrap();
        check_reads(&log, &appended, 300).await;
        assert_eq!(log.offset_for_timestamp(20).await.unwrap().map(|x| x.1), Some(20));
    });
}

#[test]
fn corruption_in_the_middle_is_reported_not_served() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_config()).await.unwrap();
        let mut positions = Vec::new();
        for i in 0..10 {
            positions.push(log.size_bytes());
            log.append(batch(2, 50, i)).await.unwrap();
        }
        log.flush().await.unwrap();
        drop(log); // no clean shutdown: the active segment is re-validated
        let path = dir.path().join(format!("{:020}.log", 0));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[positions[3] as usize + 70] ^= 0x55;
        std::fs::write(&path, &bytes).unwrap();
        match Log::open(dir.path(), small_config()).await {
            Err(StorageError::Corrupt { position, .. }) => assert_eq!(position, positions[3]),
            Err(e) => panic!("unexpected {e}"),
            Ok(_) => panic!("corrupt log opened"),
        }
    });
}
