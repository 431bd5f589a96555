//! Crash safety: torn tails at every byte, and SIGKILL during appends.
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{batch, run, with_offset};
use sluice_storage::{FlushPolicy, Log, LogConfig};

fn config() -> LogConfig {
    LogConfig { index_interval_bytes: 256, retention_ms: None, segment_ms: None, ..LogConfig::default() }
}

#[test]
fn torn_tail_is_cut_at_every_byte_position() {
    let (flushed, full, offsets) = run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), config()).await.unwrap();
        for i in 0..5 {
            log.append(batch(3, 40, i)).await.unwrap();
        }
        log.flush().await.unwrap();
        let flushed = log.size_bytes();
        let offsets = log.log_end_offset();
        log.append(batch(4, 60, 9)).await.unwrap(); // never flushed
        drop(log);
        let full = std::fs::read(dir.path().join(format!("{:020}.log", 0))).unwrap();
        (flushed as usize, full, offsets)
    });
    let torn_len = full.len() - flushed;
    assert!(torn_len > 61);
    for cut in 0..torn_len {
        for zero_filled in [false, true] {
            // A cut file (process crash mid-write) or one whose unwritten
            // pages read back as zeros (power loss on ext4/XFS).
            let mut bytes = full[..flushed + cut].to_vec();
            if zero_filled {
                bytes.resize(full.len(), 0);
                if bytes == full {
                    continue; // the batch happened to end in zeros: not torn
                }
            }
            let full_len = bytes.len();
            run(move || async move {
                let dir = tempfile::tempdir().unwrap();
                std::fs::write(dir.path().join(format!("{:020}.log", 0)), &bytes).unwrap();
                let mut log = Log::open(dir.path(), config()).await.unwrap();
                assert_eq!(log.log_end_offset(), offsets, "cut {cut}");
                assert_eq!(log.size_bytes(), flushed as u64);
                assert_eq!(log.recovery().truncated_bytes, (full_len - flushed) as u64);
                let info = log.append(batch(1, 5, 0)).await.unwrap();
                assert_eq!(info.base_offset, offsets);
                let s = log.read(offsets, 1 << 20).await.unwrap().unwrap();
                assert_eq!(&s.read().await.unwrap()[..], &with_offset(batch(1, 5, 0), offsets)[..]);
                for o in 0..offsets {
                    assert!(log.read(o, 1).await.unwrap().is_some());
                }
            });
        }
    }
}

const CHILD_ENV: &str = "SLUICE_CRASH_CHILD_DIR";

/// Deterministic batch number `i`, so the parent knows what each offset holds.
fn nth_batch(i: u64) -> Vec<u8> {
    batch(1 + (i % 7) as usize, 100 + (i % 13) as usize * 50, i as i64)
}

#[test]
fn sigkill_during_flushed_appends_loses_nothing_acknowledged() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        // The child: append forever (bounded), reporting each durable batch.
        run(move || async move {
            let cfg = LogConfig { flush: FlushPolicy::EveryAppend, segment_bytes: 64 << 10, ..config() };
            let mut log = Log::open(std::path::Path::new(&dir), cfg).await.unwrap();
            for i in 0..1_000_000u64 {
                let info = log.append(nth_batch(i)).await.unwrap();
                assert!(log.durable_offset() > info.last_offset);
                println!("durable {i} {}", info.base_offset);
            }
        });
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sigkill_during_flushed_appends_loses_nothing_acknowledged",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("durable ") {
            let mut it = rest.split(' ').map(|x| x.parse::<i64>().unwrap());
            acked.push((it.next().unwrap() as u64, it.next().unwrap()));
            if acked.len() == 300 {
                unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
                break;
            }
        }
    }
    let status = child.wait().unwrap();
    assert_eq!(acked.len(), 300, "child died early: {status:?}");
    let path = dir.path().to_path_buf();
    run(move || async move {
        let log = Log::open(&path, config()).await.unwrap();
        assert!(log.segment_count() > 1, "the run should cross segment rolls");
        for &(i, base) in &acked {
            let expected = with_offset(nth_batch(i), base);
            let s = log.read(base, expected.len()).await.unwrap().expect("acknowledged batch");
            assert_eq!(&s.read().await.unwrap()[..expected.len()], &expected[..], "batch {i}");
        }
        assert!(log.log_end_offset() > acked.last().unwrap().1);
    });
}
