//! The Kafka load generator: `produce`, `consume` and `e2e` against any
//! Kafka-compatible broker.
//!
//! Threads, not an async runtime: each producer connection is a sender
//! thread (generate, batch, encode, write) and a receiver thread (read
//! acknowledgements, record latency), each consumer connection one thread,
//! all on blocking sockets. Every thread does real work per wake-up (a
//! request's worth of records), so there are few context switches, and the
//! latency measured is not inflated by an event loop's scheduling: a blocked
//! `read` returns as soon as the response lands. The main thread prints the
//! progress line once a second and enforces the time limits.
//!
//! Record format: the value starts with the intended send time (wall-clock
//! nanoseconds, big-endian u64), then random upper-case letters up to
//! `--record-size`; keys (`--keys random`) are random bytes. Batches are
//! record-batch v2, encoded by `kafka_protocol::records`.

pub mod admin;
pub mod client;
pub mod consumer;
pub mod gather;
pub mod producer;
pub mod stats;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use anyhow::{bail, Result};
use kafka_protocol::records::Compression;
use serde_json::json;
/// The report's type (a JSON object), re-exported for callers of [`run`].
pub use serde_json::Value;

use consumer::{ConsumerSpec, Decode};
use producer::ProducerSpec;
use stats::{cpu_seconds, fmt_ms, latency_json, new_histogram, Clock, Counters, SharedHist};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Produce,
    Consume,
    E2e,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Produce => "produce",
            Mode::Consume => "consume",
            Mode::E2e => "e2e",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Keys {
    Random,
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum From {
    Earliest,
    Latest,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CompressionArg {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Broker to bootstrap from (host:port); the partition leaders it names are used.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap_server: String,
    /// Topic; created with `--partitions` if it does not exist.
    #[arg(long, default_value = "sluice-bench")]
    pub topic: String,
    /// Partitions of the topic if it is created (default 1); an existing
    /// topic is used as it is.
    #[arg(long)]
    pub partitions: Option<i32>,
    #[arg(long, default_value_t = 1)]
    pub replication_factor: i16,
    /// Delete the topic first if it exists (a fresh, empty topic).
    #[arg(long)]
    pub recreate: bool,
    /// Delete the topic when the run is over (to keep a benchmark's disk or
    /// memory use bounded).
    #[arg(long)]
    pub delete_after: bool,
    /// Producer connections (each a sender and a receiver thread).
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    /// Consumer connections; the partitions are split between them.
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
    /// Value size in bytes (the first 8 carry the send time).
    #[arg(long, default_value_t = 1024)]
    pub record_size: usize,
    /// Records to produce (produce, e2e) or to consume (consume), over all connections.
    #[arg(long, conflicts_with = "duration")]
    pub records: Option<u64>,
    /// Seconds to produce (produce, e2e) or consume. Default 10 s if neither
    /// this nor --records is given; `consume` without either reads up to
    /// the end offsets found at start.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Open-loop target rate over all producers: records/s (`50000`, `50k`,
    /// `1.5M`) or bytes/s of values (`100MB/s`, `1GiB/s`). Latency is then
    /// measured from each record's intended send time.
    #[arg(long)]
    pub rate: Option<String>,
    /// all (-1), 1 or 0.
    #[arg(long, default_value = "all")]
    pub acks: String,
    #[arg(long, default_value_t = 0.0)]
    pub linger_ms: f64,
    /// Bytes of records per partition batch (Kafka's batch.size).
    #[arg(long, default_value_t = 16384)]
    pub batch_size: usize,
    /// Upper bound of one Produce request's record bytes (max.request.size).
    #[arg(long, default_value_t = 1 << 20)]
    pub max_request_size: usize,
    /// Unanswered Produce requests per connection (max.in.flight.requests.per.connection).
    #[arg(long, default_value_t = 5)]
    pub max_in_flight: usize,
    /// Bytes of records a producer buffers before it stops generating (buffer.memory).
    #[arg(long, default_value_t = 32 << 20)]
    pub buffer_memory: usize,
    #[arg(long, value_enum, default_value_t = CompressionArg::None)]
    pub compression: CompressionArg,
    #[arg(long, value_enum, default_value_t = Keys::None)]
    pub keys: Keys,
    #[arg(long, default_value_t = 16)]
    pub key_size: usize,
    /// Where consumers start (default: earliest for consume, latest for e2e).
    #[arg(long, value_enum)]
    pub from: Option<From>,
    #[arg(long, value_enum, default_value_t = Decode::Full)]
    pub decode: Decode,
    #[arg(long, default_value_t = 500)]
    pub fetch_max_wait_ms: i32,
    #[arg(long, default_value_t = 1)]
    pub fetch_min_bytes: i32,
    #[arg(long, default_value_t = 50 << 20)]
    pub fetch_max_bytes: i32,
    #[arg(long, default_value_t = 1 << 20)]
    pub partition_max_bytes: i32,
    /// Hard limit on the whole run in seconds (default: the duration + 60,
    /// or 600 with --records); past it the connections are cut.
    #[arg(long)]
    pub timeout: Option<f64>,
    /// One JSON object on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Free text copied into the JSON (for scripts).
    #[arg(long, default_value = "")]
    pub label: String,
}

#[derive(clap::Parser)]
#[command(no_binary_name = true, args_override_self = true)]
struct ArgsOnly {
    #[command(flatten)]
    args: Args,
}

impl Args {
    /// Parses the load options from words of a command line (without the
    /// program and mode), e.g. `["--topic", "t", "--records", "1000"]`.
    pub fn parse_from<I, T>(words: I) -> Result<Args>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::Parser;
        Ok(ArgsOnly::try_parse_from(words)?.args)
    }
}

/// State shared by the load threads and the reporter.
pub struct Run {
    pub clock: Clock,
    /// Clock ns of the start (0 until every connection is ready).
    start: AtomicU64,
    pub counters: Counters,
    pub produce_latency: SharedHist,
    pub e2e_latency: SharedHist,
    /// Intended (or creation) time to the write of its request.
    pub send_delay: SharedHist,
    abort: AtomicBool,
    /// Consumers stop once this many records were consumed in all…
    consume_target: AtomicU64,
    /// …or at this clock ns.
    consume_deadline: AtomicU64,
    /// Clock ns at which producers stop generating.
    pub produce_deadline: AtomicU64,
    produce_errors: Mutex<BTreeMap<i16, (u64, String)>>,
    failures: Mutex<Vec<String>>,
}

impl Run {
    fn new() -> Run {
        Run {
            clock: Clock::new(),
            start: AtomicU64::new(0),
            counters: Counters::default(),
            produce_latency: SharedHist::new(),
            e2e_latency: SharedHist::new(),
            send_delay: SharedHist::new(),
            abort: AtomicBool::new(false),
            consume_target: AtomicU64::new(u64::MAX),
            consume_deadline: AtomicU64::new(u64::MAX),
            produce_deadline: AtomicU64::new(u64::MAX),
            produce_errors: Mutex::new(BTreeMap::new()),
            failures: Mutex::new(Vec::new()),
        }
    }

    pub fn aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }

    /// Records a thread's fatal error (the run is then reported as failed).
    pub fn fail(&self, msg: String) {
        let mut f = self.failures.lock().unwrap();
        if f.len() < 20 {
            f.push(msg);
        }
    }

    pub fn produce_error(&self, code: i16, msg: String) {
        let mut m = self.produce_errors.lock().unwrap();
        let e = m.entry(code).or_insert((0, msg));
        e.0 += 1;
    }

    /// Blocks until the main thread has started the clock of the run.
    pub fn wait_start(&self) {
        while self.start.load(Ordering::Acquire) == 0 && !self.aborted() {
            thread::sleep(Duration::from_micros(200));
        }
    }

    /// Clock ns of the start (after `wait_start`).
    pub fn start_ns(&self) -> u64 {
        self.start.load(Ordering::Acquire)
    }

    pub fn consumers_should_stop(&self) -> bool {
        Counters::get(&self.counters.consumed_records) >= self.consume_target.load(Ordering::Relaxed)
            || self.clock.now() >= self.consume_deadline.load(Ordering::Relaxed)
    }
}

/// Parses `--rate` into records per second.
pub fn parse_rate(s: &str, record_bytes: usize) -> Result<f64> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let (num, bytes_unit) = if let Some(n) = lower.strip_suffix("/s") { (n.to_string(), true) } else { (lower, false) };
    let units: &[(&str, f64, bool)] = &[
        ("gib", (1u64 << 30) as f64, true),
        ("mib", (1u64 << 20) as f64, true),
        ("kib", 1024.0, true),
        ("gb", 1e9, true),
        ("mb", 1e6, true),
        ("kb", 1e3, true),
        ("b", 1.0, true),
        ("g", 1e9, false),
        ("m", 1e6, false),
        ("k", 1e3, false),
    ];
    for &(suffix, mult, is_bytes) in units {
        if let Some(n) = num.strip_suffix(suffix) {
            let v: f64 = n.trim().parse().map_err(|_| anyhow::anyhow!("--rate {s}: not a number"))?;
            return Ok(if is_bytes { v * mult / record_bytes as f64 } else { v * mult });
        }
    }
    if bytes_unit {
        bail!("--rate {s}: use records/s (`50000`) or bytes/s with a unit (`100MB/s`)");
    }
    num.parse::<f64>().map_err(|_| anyhow::anyhow!("--rate {s}: not a number"))
}

fn parse_acks(s: &str) -> Result<i16> {
    match s {
        "all" | "-1" => Ok(-1),
        "1" => Ok(1),
        "0" => Ok(0),
        _ => bail!("--acks must be all, -1, 1 or 0"),
    }
}

fn compression(c: CompressionArg) -> Compression {
    match c {
        CompressionArg::None => Compression::None,
        CompressionArg::Gzip => Compression::Gzip,
        CompressionArg::Snappy => Compression::Snappy,
        CompressionArg::Lz4 => Compression::Lz4,
        CompressionArg::Zstd => Compression::Zstd,
    }
}

/// Splits `total` into `n` parts that differ by at most one.
fn split(total: u64, n: usize, i: usize) -> u64 {
    total / n as u64 + u64::from((i as u64) < total % n as u64)
}

/// Entry point of the binary: runs, prints, returns the exit code.
pub fn main(mode: Mode, args: Args) -> i32 {
    // Precise sleeps for the open-loop schedule (the default slack is 50 µs);
    // threads created afterwards inherit it.
    // SAFETY: prctl with an integer argument.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1u64, 0, 0, 0) };
    match run(mode, &args) {
        Ok(report) => {
            if args.json {
                println!("{report}");
            } else {
                print_table(&report);
            }
            if report["ok"].as_bool() == Some(true) {
                0
            } else {
                1
            }
        }
        Err(e) => {
            eprintln!("sluice-bench: {e:#}");
            2
        }
    }
}

/// Runs one load and returns the report (the object `--json` prints).
/// `ok` is false if any record failed or any connection broke.
pub fn run(mode: Mode, a: &Args) -> Result<Value> {
    let acks = parse_acks(&a.acks)?;
    let produces = mode != Mode::Consume;
    let consumes = mode != Mode::Produce;
    if a.producers == 0 || a.consumers == 0 {
        bail!("--producers and --consumers must be at least 1");
    }
    if mode == Mode::E2e && a.record_size < 8 {
        bail!("e2e needs --record-size of at least 8 (the send time is carried in the value)");
    }
    if a.partitions.is_some_and(|p| p < 1) {
        bail!("--partitions must be at least 1");
    }
    let key_size = if a.keys == Keys::Random { a.key_size.max(1) } else { 0 };
    let rate = a.rate.as_deref().map(|r| parse_rate(r, a.record_size + key_size)).transpose()?;
    if rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
        bail!("--rate must be positive");
    }
    let duration = match (a.duration, a.records) {
        (Some(d), _) => Some(d),
        (None, Some(_)) => None,
        (None, None) if mode == Mode::Consume => None,
        (None, None) => Some(10.0),
    };
    let hard_limit = a.timeout.unwrap_or(match duration {
        Some(d) => d + 60.0,
        None => 600.0,
    });
    let info = admin::ensure_topic(&a.bootstrap_server, &a.topic, a.partitions, a.replication_factor, a.recreate)?;
    let leaders = info.by_leader();
    let run = Arc::new(Run::new());
    let cpu0 = cpu_seconds();

    // Consumers first: they fix their start offsets before anything is produced.
    let mut consumers = Vec::new();
    if consumes {
        let from = match a.from.unwrap_or(if mode == Mode::E2e { From::Latest } else { From::Earliest }) {
            From::Earliest => -2,
            From::Latest => -1,
        };
        let to_end = mode == Mode::Consume && a.records.is_none() && a.duration.is_none();
        let mut id = 0;
        for (broker, parts) in &leaders {
            let n = a.consumers.min(parts.len());
            for c in 0..n {
                let mine: Vec<i32> = parts.iter().copied().skip(c).step_by(n).collect();
                let spec = ConsumerSpec {
                    id,
                    broker: broker.clone(),
                    topic: a.topic.clone(),
                    partitions: mine,
                    from,
                    to_end,
                    max_wait_ms: a.fetch_max_wait_ms,
                    min_bytes: a.fetch_min_bytes,
                    max_bytes: a.fetch_max_bytes,
                    partition_max_bytes: a.partition_max_bytes,
                    decode: if mode == Mode::E2e { Decode::Full } else { a.decode },
                    e2e: mode == Mode::E2e,
                };
                consumers.push(consumer::spawn(spec, run.clone())?);
                id += 1;
            }
        }
    }

    let mut producers = Vec::new();
    if produces {
        let total_parts = info.partitions.len() as f64;
        let mut id = 0;
        for p in 0..a.producers {
            for (broker, parts) in &leaders {
                // This connection's share of the rate and of the records.
                let share = parts.len() as f64 / total_parts / a.producers as f64;
                let quota = a.records.map(|r| {
                    let mine = split(r, a.producers, p);
                    let idx = leaders.iter().position(|(b, _)| b == broker).unwrap();
                    // Split over brokers in proportion to partitions; the last takes the rest.
                    if idx + 1 == leaders.len() {
                        mine - leaders[..idx]
                            .iter()
                            .map(|(_, ps)| (mine as f64 * ps.len() as f64 / total_parts) as u64)
                            .sum::<u64>()
                    } else {
                        (mine as f64 * parts.len() as f64 / total_parts) as u64
                    }
                });
                let spec = ProducerSpec {
                    id,
                    broker: broker.clone(),
                    topic: a.topic.clone(),
                    partitions: parts.clone(),
                    acks,
                    linger_ns: (a.linger_ms * 1e6) as u64,
                    batch_size: a.batch_size.max(1),
                    max_request: a.max_request_size.max(1),
                    max_in_flight: a.max_in_flight.max(1),
                    buffer_memory: a.buffer_memory,
                    compression: compression(a.compression),
                    key_size,
                    record_size: a.record_size,
                    rate: rate.map(|r| r * share),
                    quota,
                    deadline: u64::MAX,
                    seed: 0x9E37_79B9_7F4A_7C15 ^ ((id as u64 + 1) * 0x1000_0000_01B3),
                };
                producers.push(producer::spawn(spec, run.clone())?);
                id += 1;
            }
        }
    }

    // Every connection is up: start the clock of the run.
    let start = run.clock.now() + 1_000_000;
    let produce_deadline = duration.map(|d| start + (d * 1e9) as u64);
    run.produce_deadline.store(produce_deadline.unwrap_or(u64::MAX), Ordering::Relaxed);
    if mode == Mode::Consume {
        if let Some(d) = produce_deadline {
            run.consume_deadline.store(d, Ordering::Relaxed);
        }
        if let Some(r) = a.records {
            run.consume_target.store(r, Ordering::Relaxed);
        }
    }
    run.start.store(start, Ordering::Release);
    let hard_deadline = start + (hard_limit * 1e9) as u64;

    // Report once a second until the load threads are done.
    let mut produce_total = new_histogram();
    let mut e2e_total = new_histogram();
    let mut delay_total = new_histogram();
    let mut last = (start, 0u64, 0u64, 0u64, 0u64, cpu0);
    let mut tick = 1u64;
    let mut producers_done_at: Option<u64> = None;
    let mut killed = false;
    loop {
        let producing = producers.iter().any(|p| p.handles.iter().any(|h| !h.is_finished()));
        let consuming = consumers.iter().any(|c| !c.handle.is_finished());
        let now = run.clock.now();
        if produces && !producing && producers_done_at.is_none() {
            producers_done_at = Some(now);
            if mode == Mode::E2e {
                // Consume what was acknowledged (or written, acks=0), then stop;
                // give up 10 s after the last producer finished.
                let acked = Counters::get(&run.counters.acked_records);
                run.consume_target.store(acked, Ordering::Relaxed);
                run.consume_deadline.store(now + 10_000_000_000, Ordering::Relaxed);
            }
        }
        if !producing && !consuming {
            break;
        }
        if now >= hard_deadline && !killed {
            eprintln!("sluice-bench: hard time limit ({hard_limit} s) reached; cutting the connections");
            run.fail(format!("hard time limit of {hard_limit} s reached"));
            run.abort.store(true, Ordering::Relaxed);
            for p in &producers {
                p.killer.kill();
            }
            for c in &consumers {
                c.killer.kill();
            }
            killed = true;
        }
        let next = start + tick * 1_000_000_000;
        if now < next {
            thread::sleep(Duration::from_nanos((next - now).min(50_000_000)));
            continue;
        }
        tick += 1;
        let ph = run.produce_latency.take();
        let eh = run.e2e_latency.take();
        produce_total.add(&ph).ok();
        e2e_total.add(&eh).ok();
        delay_total.add(run.send_delay.take()).ok();
        if !a.quiet {
            let c = &run.counters;
            let cur = (
                now,
                Counters::get(&c.acked_records),
                Counters::get(&c.acked_bytes),
                Counters::get(&c.consumed_records),
                Counters::get(&c.consumed_bytes),
                cpu_seconds(),
            );
            let dt = (cur.0 - last.0) as f64 / 1e9;
            let mut line = format!("sluice-bench {:>5.1}s", (now - start) as f64 / 1e9);
            if produces {
                line += &format!(
                    " | produce {:>9.0} rec/s {:>8.1} MB/s",
                    (cur.1 - last.1) as f64 / dt,
                    (cur.2 - last.2) as f64 / dt / 1e6
                );
                if !ph.is_empty() {
                    line += &format!(
                        " p50 {} p99 {} max {} ms",
                        fmt_ms(ph.value_at_quantile(0.5)),
                        fmt_ms(ph.value_at_quantile(0.99)),
                        fmt_ms(ph.max())
                    );
                }
            }
            if consumes {
                line += &format!(
                    " | consume {:>9.0} rec/s {:>8.1} MB/s",
                    (cur.3 - last.3) as f64 / dt,
                    (cur.4 - last.4) as f64 / dt / 1e6
                );
            }
            if !eh.is_empty() {
                line += &format!(
                    " | e2e p50 {} p99 {} max {} ms",
                    fmt_ms(eh.value_at_quantile(0.5)),
                    fmt_ms(eh.value_at_quantile(0.99)),
                    fmt_ms(eh.max())
                );
            }
            line += &format!(" | cpu {:.2}", (cur.5 - last.5) / dt);
            eprintln!("{line}");
            last = cur;
        }
    }
    let mut failures: Vec<String> = Vec::new();
    for p in producers {
        for h in p.handles {
            if let Ok(Err(e)) | Err(e) = h.join().map_err(|_| anyhow::anyhow!("a producer thread panicked")) {
                failures.push(format!("{e:#}"));
            }
        }
    }
    for c in consumers {
        if let Ok(Err(e)) | Err(e) = c.handle.join().map_err(|_| anyhow::anyhow!("a consumer thread panicked")) {
            failures.push(format!("{e:#}"));
        }
    }
    produce_total.add(run.produce_latency.take()).ok();
    e2e_total.add(run.e2e_latency.take()).ok();
    delay_total.add(run.send_delay.take()).ok();
    let cpu = cpu_seconds() - cpu0;
    let end = run.clock.now();
    let c = &run.counters;
    let secs = |t: u64| (t.saturating_sub(start)) as f64 / 1e9;
    let elapsed = secs(end);

    let mut report = json!({
        "tool": "sluice-bench",
        "mode": mode.name(),
        "label": a.label,
        "bootstrap_server": a.bootstrap_server,
        "topic": a.topic,
        "partitions": info.partitions.len(),
        "brokers": leaders.len(),
        "producers": if produces { a.producers } else { 0 },
        "consumers": if consumes { a.consumers } else { 0 },
        "record_size": a.record_size,
        "key_size": key_size,
        "acks": acks,
        "linger_ms": a.linger_ms,
        "batch_size": a.batch_size,
        "max_request_size": a.max_request_size,
        "max_in_flight": a.max_in_flight,
        "compression": format!("{:?}", a.compression).to_lowercase(),
        "target_rate_records_per_s": rate,
        "duration_s": duration,
        "records_requested": a.records,
        "elapsed_s": (elapsed * 1000.0).round() / 1000.0,
        "client_cpu_s": (cpu * 100.0).round() / 100.0,
        "client_cores": (cpu / elapsed.max(1e-9) * 100.0).round() / 100.0,
    });
    let mut ok = failures.is_empty() && run.failures.lock().unwrap().is_empty();
    if produces {
        let acked = Counters::get(&c.acked_records);
        // Throughput over the time to the last acknowledgement.
        let t = secs(Counters::get(&c.last_ack).max(start + 1));
        let errors = Counters::get(&c.produce_errors);
        ok &= errors == 0;
        for (code, (n, msg)) in run.produce_errors.lock().unwrap().iter() {
            failures.push(format!("{n} produce responses with error {code}: {msg}"));
        }
        let error_codes: BTreeMap<String, Value> = run
            .produce_errors
            .lock()
            .unwrap()
            .iter()
            .map(|(code, (n, msg))| (code.to_string(), json!({ "records": n, "message": msg })))
            .collect();
        report["produce"] = json!({
            "records": acked,
            "sent_records": Counters::get(&c.sent_records),
            "bytes": Counters::get(&c.acked_bytes),
            "batch_bytes": Counters::get(&c.acked_batch_bytes),
            "requests": Counters::get(&c.produce_requests),
            "errors": errors,
            "error_codes": error_codes,
            "seconds": (t * 1000.0).round() / 1000.0,
            "records_per_s": (acked as f64 / t).round(),
            "mb_per_s": round2(Counters::get(&c.acked_bytes) as f64 / t / 1e6),
            "batch_mb_per_s": round2(Counters::get(&c.acked_batch_bytes) as f64 / t / 1e6),
            "latency": latency_json(&produce_total),
            "send_delay": latency_json(&delay_total),
        });
    }
    if consumes {
        let n = Counters::get(&c.consumed_records);
        let t = secs(Counters::get(&c.last_consume).max(start + 1));
        // With --decode headers the payload is not parsed: MB/s counts batches.
        let decoded = mode == Mode::E2e || a.decode == Decode::Full;
        let bytes = if decoded { Counters::get(&c.consumed_bytes) } else { Counters::get(&c.consumed_batch_bytes) };
        report["consume"] = json!({
            "records": n,
            "bytes": bytes,
            "bytes_counted": if decoded { "payload" } else { "batches" },
            "batch_bytes": Counters::get(&c.consumed_batch_bytes),
            "fetches": Counters::get(&c.fetches),
            "decode": format!("{:?}", if mode == Mode::E2e { Decode::Full } else { a.decode }).to_lowercase(),
            "seconds": (t * 1000.0).round() / 1000.0,
            "records_per_s": (n as f64 / t).round(),
            "mb_per_s": round2(bytes as f64 / t / 1e6),
            "batch_mb_per_s": round2(Counters::get(&c.consumed_batch_bytes) as f64 / t / 1e6),
        });
        if mode == Mode::E2e {
            let acked = Counters::get(&c.acked_records);
            report["e2e"] = json!({ "latency": latency_json(&e2e_total), "missing": acked.saturating_sub(n) });
            ok &= n >= acked;
            if n < acked {
                failures.push(format!("consumed {n} of {acked} acknowledged records"));
            }
        }
        if mode == Mode::Consume {
            if let Some(r) = a.records {
                if n < r {
                    ok = false;
                    failures.push(format!("consumed {n} of the {r} records asked for"));
                }
            }
        }
    }
    if a.delete_after {
        if let Err(e) = admin::delete_topic(&a.bootstrap_server, &a.topic) {
            failures.push(format!("--delete-after: {e:#}"));
        }
    }
    failures.extend(run.failures.lock().unwrap().iter().cloned());
    failures.dedup();
    report["ok"] = json!(ok);
    report["failures"] = json!(failures);
    Ok(report)
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn lat_row(name: &str, l: &Value) -> String {
    if l["count"].as_u64().unwrap_or(0) == 0 {
        return format!("{name:<16} (no samples)\n");
    }
    let ms = |k: &str| l[k].as_f64().map(|v| format!("{:.3}", v / 1000.0)).unwrap_or_default();
    format!(
        "{name:<16} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
        l["count"].as_u64().unwrap_or(0),
        ms("p50_us"),
        ms("p90_us"),
        ms("p99_us"),
        ms("p99_9_us"),
        ms("p99_99_us"),
        ms("max_us")
    )
}

/// The human-readable end of a run.
pub fn print_table(r: &Value) {
    let mut out = String::new();
    out += &format!(
        "{} {} topic {} ({} partitions) record {} B{} acks {} linger {} ms batch {} B compression {}{}\n",
        r["tool"].as_str().unwrap_or(""),
        r["mode"].as_str().unwrap_or(""),
        r["topic"].as_str().unwrap_or(""),
        r["partitions"],
        r["record_size"],
        if r["key_size"].as_u64().unwrap_or(0) > 0 { format!(" + key {} B", r["key_size"]) } else { String::new() },
        r["acks"],
        r["linger_ms"],
        r["batch_size"],
        r["compression"].as_str().unwrap_or(""),
        match r["target_rate_records_per_s"].as_f64() {
            Some(v) => format!(" rate {v:.0} rec/s"),
            None => String::new(),
        }
    );
    out += &format!("{:<16} {:>12} {:>12} {:>10} {:>10}\n", "throughput", "records", "rec/s", "MB/s", "seconds");
    for k in ["produce", "consume"] {
        if r[k].is_object() {
            out += &format!(
                "{:<16} {:>12} {:>12.0} {:>10.1} {:>10.3}\n",
                k,
                r[k]["records"],
                r[k]["records_per_s"].as_f64().unwrap_or(0.0),
                r[k]["mb_per_s"].as_f64().unwrap_or(0.0),
                r[k]["seconds"].as_f64().unwrap_or(0.0)
            );
        }
    }
    out += &format!(
        "{:<16} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
        "latency (ms)", "samples", "p50", "p90", "p99", "p99.9", "p99.99", "max"
    );
    if r["produce"].is_object() {
        out += &lat_row("produce ack", &r["produce"]["latency"]);
        out += &lat_row("send delay", &r["produce"]["send_delay"]);
    }
    if r["e2e"].is_object() {
        out += &lat_row("end-to-end", &r["e2e"]["latency"]);
    }
    out += &format!("client CPU {} s ({} cores)\n", r["client_cpu_s"], r["client_cores"]);
    if r["ok"].as_bool() != Some(true) {
        out += &format!("FAILED: {}\n", r["failures"]);
    }
    let _ = std::io::stdout().write_all(out.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::parse_rate;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("50000", 1000).unwrap(), 50000.0);
        assert_eq!(parse_rate("50k", 1000).unwrap(), 50000.0);
        assert_eq!(parse_rate("1.5M", 1000).unwrap(), 1.5e6);
        assert_eq!(parse_rate("100MB/s", 1000).unwrap(), 100000.0);
        assert_eq!(parse_rate("1MiB/s", 1024).unwrap(), 1024.0);
        assert!(parse_rate("100MB/h", 1000).is_err());
        assert!(parse_rate("fast", 1000).is_err());
    }
}
