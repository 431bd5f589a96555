//! Clocks, counters and latency histograms shared by the load threads and
//! the reporter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// Monotonic nanoseconds since the run's base instant, and the wall-clock
/// time of that base, so that a time carried in a record (wall-clock ns)
/// can be compared by another process on the same machine.
pub struct Clock {
    base: Instant,
    base_wall_ns: u64,
}

impl Clock {
    pub fn new() -> Clock {
        let base = Instant::now();
        let base_wall_ns = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
        Clock { base, base_wall_ns }
    }

    /// Nanoseconds since the base.
    #[inline]
    pub fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// Wall-clock nanoseconds of a time given in `now()` units.
    #[inline]
    pub fn wall(&self, t: u64) -> u64 {
        self.base_wall_ns + t
    }

    pub fn instant(&self, t: u64) -> Instant {
        self.base + std::time::Duration::from_nanos(t)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// Latencies in nanoseconds, from 1 µs to 1 hour, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, 3_600_000_000_000, 3).expect("histogram bounds")
}

/// A histogram that threads record into and the reporter drains once a second.
pub struct SharedHist {
    interval: Mutex<Histogram<u64>>,
}

impl SharedHist {
    pub fn new() -> SharedHist {
        SharedHist { interval: Mutex::new(new_histogram()) }
    }

    /// Records many values under one lock.
    pub fn record_all(&self, values: impl Iterator<Item = u64>) {
        let mut h = self.interval.lock().unwrap();
        for v in values {
            h.saturating_record(v.max(1_000));
        }
    }

    /// Takes what was recorded since the last call.
    pub fn take(&self) -> Histogram<u64> {
        let mut h = self.interval.lock().unwrap();
        let fresh = new_histogram();
        std::mem::replace(&mut *h, fresh)
    }
}

impl Default for SharedHist {
    fn default() -> Self {
        SharedHist::new()
    }
}

/// Counters of one run.
#[derive(Default)]
pub struct Counters {
    /// Records and payload bytes written to the socket (produce requests).
    pub sent_records: AtomicU64,
    /// Records and payload bytes acknowledged without error.
    pub acked_records: AtomicU64,
    pub acked_bytes: AtomicU64,
    /// Bytes of encoded record batches acknowledged (the wire size).
    pub acked_batch_bytes: AtomicU64,
    pub produce_requests: AtomicU64,
    /// Records whose partition answered an error.
    pub produce_errors: AtomicU64,
    pub consumed_records: AtomicU64,
    pub consumed_bytes: AtomicU64,
    pub consumed_batch_bytes: AtomicU64,
    pub fetches: AtomicU64,
    pub fetch_errors: AtomicU64,
    /// Time (clock ns) of the last acknowledgement / last consumed record.
    pub last_ack: AtomicU64,
    pub last_consume: AtomicU64,
}

impl Counters {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    pub fn add(c: &AtomicU64, v: u64) {
        c.fetch_add(v, Ordering::Relaxed);
    }

    pub fn max(c: &AtomicU64, v: u64) {
        c.fetch_max(v, Ordering::Relaxed);
    }
}

/// The quantiles reported, and those that make the percentile curve.
pub const QUANTILES: &[(&str, f64)] =
    &[("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p99_9", 0.999), ("p99_99", 0.9999)];
const CURVE: &[f64] = &[0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99995, 0.99999, 1.0];

fn us(ns: u64) -> f64 {
    (ns as f64 / 1000.0 * 10.0).round() / 10.0
}

/// `{"count", "p50", …, "max", "mean", "curve": [[q, µs], …]}` in µs.
pub fn latency_json(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!({ "count": 0 });
    }
    let mut m = serde_json::Map::new();
    m.insert("count".into(), json!(h.len()));
    for (name, q) in QUANTILES {
        m.insert(format!("{name}_us"), json!(us(h.value_at_quantile(*q))));
    }
    m.insert("max_us".into(), json!(us(h.max())));
    m.insert("mean_us".into(), json!((h.mean() / 100.0).round() / 10.0));
    let curve: Vec<Value> = CURVE.iter().map(|&q| json!([q, us(h.value_at_quantile(q))])).collect();
    m.insert("curve".into(), Value::Array(curve));
    Value::Object(m)
}

/// A short text form: "p50 1.2 ms p99 3.4 ms".
pub fn fmt_ms(ns: u64) -> String {
    let ms = ns as f64 / 1e6;
    if ms < 10.0 {
        format!("{ms:.3}")
    } else {
        format!("{ms:.1}")
    }
}

/// (user + system) CPU seconds of this process.
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}
