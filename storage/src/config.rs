use std::time::Duration;

/// When appended data is made durable with fdatasync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Every append is flushed before it returns (what `acks=all` relies on).
    EveryAppend,
    /// Kafka's `flush.messages` and `flush.ms`: flush once either is reached.
    /// `None` disables that trigger; with both `None` the OS decides.
    Interval { messages: Option<u64>, interval: Option<Duration> },
}

/// One log's settings, named after the Kafka topic configs they mirror.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// `segment.bytes`
    pub segment_bytes: u64,
    /// `segment.ms`
    pub segment_ms: Option<Duration>,
    /// `retention.bytes` (`None` = unlimited, Kafka's -1)
    pub retention_bytes: Option<u64>,
    /// `retention.ms` (`None` = unlimited, Kafka's -1)
    pub retention_ms: Option<Duration>,
    /// `index.interval.bytes`
    pub index_interval_bytes: u64,
    /// `message.max.bytes`: the largest batch accepted.
    pub max_batch_bytes: usize,
    /// `message.timestamp.type=LogAppendTime` when true.
    pub log_append_time: bool,
    pub flush: FlushPolicy,
    /// `cleanup.policy` holds `delete`: retention removes old segments.
    pub cleanup_delete: bool,
    /// `cleanup.policy` holds `compact`: the cleaner keeps the latest record per key.
    pub cleanup_compact: bool,
    pub compaction: CompactionConfig,
}

/// The topic configs that steer the cleaner, with Kafka's names.
#[derive(Clone, Debug, PartialEq)]
pub struct CompactionConfig {
    /// `delete.retention.ms`: how long a tombstone outlives its own timestamp.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: records younger than this are not cleaned.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: dirty records older than this are cleaned
    /// whatever the dirty ratio.
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`
    pub min_cleanable_ratio: f64,
    /// Keys the cleaner's offset map may hold in one pass (Kafka sizes it
    /// by `log.cleaner.dedupe.buffer.size`); a larger dirty section is
    /// cleaned over several passes.
    pub max_map_keys: usize,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        CompactionConfig {
            delete_retention_ms: 86_400_000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_ratio: 0.5,
            // 128 MiB at Kafka's 24 bytes per entry, the same budget.
            max_map_keys: (128 << 20) / 24,
        }
    }
}

impl Default for LogConfig {
    /// Apache Kafka's defaults, except that flushing is left to the caller.
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: Some(Duration::from_millis(604_800_000)),
            retention_bytes: None,
            retention_ms: Some(Duration::from_millis(604_800_000)),
            index_interval_bytes: 4096,
            max_batch_bytes: 1_048_588,
            log_append_time: false,
            flush: FlushPolicy::Interval { messages: None, interval: None },
            cleanup_delete: true,
            cleanup_compact: false,
            compaction: CompactionConfig::default(),
        }
    }
}
