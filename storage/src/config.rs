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
        }
    }
}
