use std::path::PathBuf;

/// Why a record batch was refused; each maps to one Kafka error code above.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BatchError {
    #[error("batch of {0} bytes is shorter than a v2 header")]
    TooShort(usize),
    #[error("unsupported magic {0}: only record batch v2 is accepted")]
    Magic(i8),
    #[error("batch declares {declared} bytes but {actual} were given")]
    Length { declared: i64, actual: usize },
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Crc { stored: u32, computed: u32 },
    #[error("record count {count} does not match last offset delta {last_offset_delta}")]
    RecordCount { count: i32, last_offset_delta: i32 },
    #[error("batch of {size} bytes exceeds the limit of {max}")]
    TooLarge { size: usize, max: usize },
}

/// Idempotent-producer refusals (Kafka's OUT_OF_ORDER_SEQUENCE_NUMBER and
/// INVALID_PRODUCER_EPOCH).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProducerError {
    #[error("producer {producer_id}: expected sequence after {last}, got {first}")]
    OutOfOrderSequence { producer_id: i64, last: i32, first: i32 },
    #[error("producer {producer_id}: epoch {epoch} is older than {current}")]
    InvalidEpoch { producer_id: i64, epoch: i16, current: i16 },
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid batch: {0}")]
    Batch(#[from] BatchError),
    #[error("{0}")]
    Producer(#[from] ProducerError),
    #[error("corrupt batch in {path} at byte {position}: {reason}")]
    Corrupt { path: PathBuf, position: u64, reason: String },
    #[error("offset {offset} is outside the log [{start}, {end})")]
    OffsetOutOfRange { offset: i64, start: i64, end: i64 },
    #[error("I/O on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl StorageError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: impl Into<std::io::Error>) -> Self {
        StorageError::Io { path: path.into(), source: source.into() }
    }
}

pub type Result<T> = std::result::Result<T, StorageError>;
