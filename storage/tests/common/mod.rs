#![allow(dead_code)]
use std::future::Future;

use glommio::{LocalExecutorBuilder, Placement};
use sluice_storage::batch::BatchBuilder;

/// Runs `f` on a fresh glommio executor thread, as a shard would.
pub fn run<F, Fut, T>(f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(1 << 20)
        .spawn(f)
        .expect("executor")
        .join()
        .expect("executor thread")
}

/// A batch of `records` records with values of `value_len` bytes whose
/// timestamps are `ts`, `ts + 1`, ... (or the given ones).
pub fn batch(records: usize, value_len: usize, ts: i64) -> Vec<u8> {
    let stamps: Vec<i64> = (0..records as i64).map(|i| ts + i).collect();
    batch_with_timestamps(&stamps, value_len)
}

pub fn batch_with_timestamps(stamps: &[i64], value_len: usize) -> Vec<u8> {
    let mut b = BatchBuilder::new(stamps[0]);
    for (i, &t) in stamps.iter().enumerate() {
        let value: Vec<u8> = (0..value_len).map(|j| (i * 31 + j) as u8).collect();
        b.push(t, Some(format!("key-{i}").as_bytes()), Some(&value));
    }
    b.build()
}

pub fn idempotent_batch(records: usize, pid: i64, epoch: i16, seq: i32) -> Vec<u8> {
    let mut b = BatchBuilder::new(1_000);
    for i in 0..records {
        b.push(1_000 + i as i64, None, Some(b"idempotent"));
    }
    b.build_with_producer(pid, epoch, seq)
}

/// The batch as the log stores it: base offset patched in.
pub fn with_offset(mut b: Vec<u8>, base: i64) -> Vec<u8> {
    sluice_storage::batch::set_base_offset(&mut b, base);
    b
}
