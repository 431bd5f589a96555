//! What replication needs of the log: a follower appends the leader's
//! batches as they are, cuts its tail back to where a new leader's log
//! agrees with it, and the epoch cache says where each leader epoch ends,
//! across restarts.
mod common;

use common::{batch, idempotent_batch, run, with_offset};
use sluice_storage::batch::{set_leader_epoch, BatchHeader};
use sluice_storage::{Log, LogConfig, StorageError};

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 4 << 10,
        index_interval_bytes: 256,
        retention_ms: None,
        segment_ms: None,
        ..LogConfig::default()
    }
}

/// A batch of 5 records at `base`, written by the leader of `epoch`.
fn leader_batch(base: i64, epoch: i32) -> Vec<u8> {
    let mut b = with_offset(batch(5, 200, 1_000 + base), base);
    set_leader_epoch(&mut b, epoch);
    b
}

async fn read_all(log: &Log) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = log.log_start_offset();
    while let Some(slice) = log.read(at, 1 << 20).await.unwrap() {
        let bytes = slice.read().await.unwrap();
        out.extend_from_slice(&bytes);
        let mut pos = 0;
        while pos + 61 <= bytes.len() {
            let h = BatchHeader::read(&bytes[pos..]);
            at = h.last_offset() + 1;
            pos += h.size;
        }
    }
    out
}

#[test]
fn a_follower_copies_batches_exactly_and_truncates_a_divergent_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let mut log = Log::open(&path, config()).await.unwrap();
        // Epoch 1 writes offsets 0..50 over several segments, epoch 2 50..75.
        let mut leader = Vec::new();
        for i in 0..15 {
            let b = leader_batch(i * 5, if i < 10 { 1 } else { 2 });
            leader.extend_from_slice(&b);
            let info = log.append_replica(b).await.unwrap();
            assert_eq!(info.base_offset, i * 5);
        }
        assert!(log.segment_count() > 2, "the copy rolls segments as the leader's does");
        assert_eq!(read_all(&log).await, leader, "byte for byte the leader's batches");
        assert_eq!(log.epochs().entries(), &[(1, 0), (2, 50)]);
        assert_eq!(log.epochs().end_offset_for(1, log.log_end_offset()), (1, 50));
        // Not at the log end: refused, nothing written.
        let gap = log.append_replica(leader_batch(80, 2)).await;
        assert!(matches!(gap, Err(StorageError::OffsetOutOfRange { offset: 80, end: 75, .. })), "{gap:?}");

        // A new leader (epoch 3) has only up to 50: the follower cuts there
        // and takes the new leader's batches after.
        assert_eq!(log.truncate_to(50).await.unwrap(), 50);
        assert_eq!(log.log_end_offset(), 50);
        assert_eq!(log.epochs().entries(), &[(1, 0)]);
        assert_eq!(read_all(&log).await, leader[..leader.len() * 10 / 15], "the first 50 offsets are intact");
        for i in 10..12 {
            log.append_replica(leader_batch(i * 5, 3)).await.unwrap();
        }
        assert_eq!(log.epochs().entries(), &[(1, 0), (3, 50)]);
        // A cut inside a batch takes the whole batch, as Kafka's does.
        assert_eq!(log.truncate_to(57).await.unwrap(), 55);
        // Below the log start there is nothing to cut to.
        log.delete_records(10).await.unwrap();
        assert!(matches!(log.truncate_to(5).await, Err(StorageError::OffsetOutOfRange { .. })));
        assert_eq!(log.epochs().entries(), &[(1, 10), (3, 50)], "the epoch cache follows the log start");
        log.close().await.unwrap();

        // All of it holds after a reopen, and after a crash (no clean close).
        for clean in [true, false] {
            let log = Log::open(&path, config()).await.unwrap();
            assert_eq!((log.log_start_offset(), log.log_end_offset()), (10, 55), "clean={clean}");
            assert_eq!(log.epochs().entries(), &[(1, 10), (3, 50)], "clean={clean}");
            let all = read_all(&log).await;
            let first = BatchHeader::read(&all);
            assert_eq!(first.base_offset, 10);
            if clean {
                log.close().await.unwrap();
            } else {
                drop(log);
            }
        }
    });
}

#[test]
fn truncation_rolls_idempotent_producer_state_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let mut log = Log::open(&path, config()).await.unwrap();
        let pid = 42;
        for seq in 0..4 {
            log.append(idempotent_batch(5, pid, 0, seq * 5)).await.unwrap();
        }
        assert_eq!(log.log_end_offset(), 20);
        // Cut the last two batches: the producer's next sequence is 10
        // again, so its retry of sequence 10 is new data, not a duplicate.
        assert_eq!(log.truncate_to(10).await.unwrap(), 10);
        let info = log.append(idempotent_batch(5, pid, 0, 10)).await.unwrap();
        assert!(!info.duplicate, "{info:?}");
        assert_eq!(info.base_offset, 10);
        // And a retry of 5 still is a duplicate.
        assert!(log.append(idempotent_batch(5, pid, 0, 5)).await.unwrap().duplicate);
    });
}

#[test]
fn a_log_written_before_the_epoch_cache_starts_it_from_its_first_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let mut log = Log::open(&path, config()).await.unwrap();
        log.set_leader_epoch(7);
        for _ in 0..3 {
            log.append(batch(5, 100, 1_000)).await.unwrap();
        }
        assert_eq!(log.epochs().entries(), &[(7, 0)]);
        log.close().await.unwrap();
        std::fs::remove_file(path.join("leader-epoch-checkpoint")).unwrap();
        let log = Log::open(&path, config()).await.unwrap();
        assert_eq!(log.epochs().entries(), &[(7, 0)]);
        assert_eq!(log.epochs().end_offset_for(7, log.log_end_offset()), (7, 15));
        assert!(path.join("leader-epoch-checkpoint").exists(), "written again");
    });
}
