//! Storage benchmark: 1 KiB-record batches of several sizes appended to a
//! `sluice_storage::Log` with flush-every-append and with interval flush,
//! then read back; beside each, a raw O_DIRECT sequential write of the same
//! sizes with the same flushing, measured in the same run. The ratio
//! log/raw is the figure; runs alternate raw and log and the median is kept.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use glommio::io::{DmaFile, OpenOptions};
use glommio::{LocalExecutorBuilder, Placement};
use sluice_storage::batch::BatchBuilder;
use sluice_storage::{FlushPolicy, Log, LogConfig};

#[derive(clap::Args)]
pub struct Args {
    /// Where to write (the disk under test); a fresh subdirectory is used.
    #[arg(long, default_value = "./bench-data")]
    dir: PathBuf,
    /// MiB written per measurement.
    #[arg(long, default_value_t = 128)]
    mib: usize,
    /// Runs per measurement; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Batch sizes in KiB.
    #[arg(long, value_delimiter = ',', default_value = "16,64,1024")]
    batch_kib: Vec<usize>,
    /// Interval for the `flush.ms` mode.
    #[arg(long, default_value_t = 100)]
    flush_ms: u64,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    EveryAppend,
    Interval(Duration),
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::EveryAppend => "flush-every-append",
            Mode::Interval(_) => "flush.ms",
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn template(batch_bytes: usize) -> Vec<u8> {
    let mut b = BatchBuilder::new(0);
    let value = vec![0x5au8; 1000];
    let mut n = 0;
    while (n + 1) * 1024 <= batch_bytes {
        b.push(n as i64, None, Some(&value));
        n += 1;
    }
    b.build()
}

async fn raw_write(dir: &Path, size: usize, total: usize, mode: Mode) -> f64 {
    let path = dir.join("raw.dat");
    let _ = std::fs::remove_file(&path);
    let f: DmaFile = OpenOptions::new().create(true).write(true).dma_open(&path).await.unwrap();
    let fill = vec![0x5au8; size];
    let start = Instant::now();
    let mut last_sync = start;
    let mut pos = 0;
    while pos < total {
        let mut buf = f.alloc_dma_buffer(size);
        buf.as_bytes_mut().copy_from_slice(&fill);
        f.write_at(buf, pos as u64).await.unwrap();
        pos += size;
        match mode {
            Mode::EveryAppend => f.fdatasync().await.unwrap(),
            Mode::Interval(i) if last_sync.elapsed() >= i => {
                f.fdatasync().await.unwrap();
                last_sync = Instant::now();
            }
            Mode::Interval(_) => {}
        }
    }
    f.fdatasync().await.unwrap();
    let mbs = total as f64 / start.elapsed().as_secs_f64() / 1e6;
    f.close().await.unwrap();
    let _ = std::fs::remove_file(&path);
    mbs
}

/// Returns (append MB/s, read-back MB/s).
async fn log_write_read(dir: &Path, size: usize, total: usize, mode: Mode) -> (f64, f64) {
    let path = dir.join("log");
    let _ = std::fs::remove_dir_all(&path);
    let flush = match mode {
        Mode::EveryAppend => FlushPolicy::EveryAppend,
        Mode::Interval(i) => FlushPolicy::Interval { messages: None, interval: Some(i) },
    };
    let config = LogConfig { flush, max_batch_bytes: 2 << 20, retention_ms: None, ..LogConfig::default() };
    let mut log = Log::open(&path, config).await.unwrap();
    let batch = template(size);
    let start = Instant::now();
    let mut written = 0;
    while written < total {
        log.append(batch.clone()).await.unwrap();
        written += batch.len();
        if log.flush_due(Instant::now()) {
            log.flush().await.unwrap();
        }
    }
    log.flush().await.unwrap();
    let write = written as f64 / start.elapsed().as_secs_f64() / 1e6;
    let start = Instant::now();
    let (mut offset, mut read) = (0, 0);
    while let Some(slice) = log.read(offset, size).await.unwrap() {
        let bytes = slice.read().await.unwrap();
        let (whole, next) = sluice_storage::batch::whole_batches(&bytes);
        read += whole;
        offset = next.expect("at least one whole batch");
    }
    let read_mbs = read as f64 / start.elapsed().as_secs_f64() / 1e6;
    assert_eq!(read, written, "read back everything written");
    log.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&path);
    (write, read_mbs)
}

pub fn main(args: Args) {
    let dir = args.dir.join(format!("storage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    let rows = LocalExecutorBuilder::new(Placement::Fixed(0))
        .spawn({
            let dir = dir.clone();
            move || async move {
                let mut rows = Vec::new();
                for &kib in &args.batch_kib {
                    let size = kib << 10;
                    let total = (args.mib << 20).max(size * 4) / size * size;
                    for mode in [Mode::EveryAppend, Mode::Interval(Duration::from_millis(args.flush_ms))] {
                        let (mut raw, mut log, mut read) = (vec![], vec![], vec![]);
                        for _ in 0..args.runs {
                            raw.push(raw_write(&dir, size, total, mode).await);
                            let (w, r) = log_write_read(&dir, size, total, mode).await;
                            log.push(w);
                            read.push(r);
                        }
                        let row = (kib, mode.name(), median(raw), median(log), median(read));
                        print_row(&row, args.json);
                        rows.push(row);
                    }
                }
                rows
            }
        })
        .expect("executor")
        .join()
        .expect("benchmark");
    let _ = std::fs::remove_dir_all(&dir);
    if !args.json {
        eprintln!("{} rows; medians of {} runs", rows.len(), args.runs);
    }
}

fn print_row(&(kib, mode, raw, log, read): &(usize, &str, f64, f64, f64), json: bool) {
    if json {
        println!(
            "{{\"batch_kib\":{kib},\"mode\":\"{mode}\",\"raw_odirect_mbs\":{raw:.1},\"log_append_mbs\":{log:.1},\"ratio\":{:.3},\"log_read_mbs\":{read:.1}}}",
            log / raw
        );
    } else {
        println!(
            "batch {kib:>5} KiB  {mode:<19} raw O_DIRECT {raw:>8.1} MB/s  log append {log:>8.1} MB/s  ratio {:>5.2}  read back {read:>8.1} MB/s",
            log / raw
        );
    }
}
