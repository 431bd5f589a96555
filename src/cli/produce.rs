//! `sluice produce TOPIC`: one record per input line, as
//! kafka-console-producer.sh. Lines typed at a terminal are sent as each is
//! entered; piped input is sent in batches of whatever is already read, so a
//! large file goes in few requests.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::ProduceRequest;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType, NO_PARTITION_LEADER_EPOCH,
};

use super::client::{topic_name, Cluster, TopicLayout};
use super::kafka_error::check;
use super::{key_value, partitioner, usage, Server};

/// Send what has been read once this much is waiting, even if more input is
/// already buffered.
const MAX_PENDING_BYTES: usize = 1 << 20;
const MAX_PENDING_RECORDS: usize = 10_000;
const INPUT_BUFFER: usize = 1 << 20;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum CompressionArg {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

#[derive(clap::Args)]
pub struct ProduceArgs {
    topic: String,
    #[command(flatten)]
    server: Server,
    /// Read records from this file instead of stdin.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Split each line at the first SEP into key and value (lines without it are an error).
    #[arg(long, value_name = "SEP")]
    key_separator: Option<String>,
    /// A header added to every record (repeatable).
    #[arg(long = "header", value_name = "KEY=VALUE")]
    headers: Vec<String>,
    /// Send every record to this partition [default: by key, as the Java client; keyless records spread].
    #[arg(long)]
    partition: Option<i32>,
    /// Acknowledgement to wait for: all (-1), 1 (the leader) or 0 (none).
    #[arg(long, default_value = "all", value_parser = parse_acks, allow_hyphen_values = true)]
    acks: i16,
    /// Compression of the record batches.
    #[arg(long, value_enum, default_value = "none")]
    compression: CompressionArg,
    /// How long the broker may take to acknowledge (ms).
    #[arg(long, default_value_t = 30_000)]
    timeout_ms: i32,
}

fn parse_acks(s: &str) -> Result<i16, String> {
    match s {
        "all" | "-1" => Ok(-1),
        "1" => Ok(1),
        "0" => Ok(0),
        _ => Err(format!("{s}: expected all, -1, 0 or 1")),
    }
}

struct Pending {
    key: Option<Bytes>,
    value: Bytes,
}

struct Producer {
    cluster: Cluster,
    layout: TopicLayout,
    args: ProduceArgs,
    headers: Vec<(StrBytes, Option<Bytes>)>,
    options: RecordEncodeOptions,
    /// Keyless records of one send all go to this partition, the next send
    /// to the next one (the Java client's "sticky" spreading).
    next_keyless: usize,
}

pub fn run(args: ProduceArgs) -> Result<()> {
    let headers = args
        .headers
        .iter()
        .map(|h| key_value(h, "--header").map(|(k, v)| (StrBytes::from_string(k), Some(Bytes::from(v)))))
        .collect::<Result<Vec<_>>>()?;
    if args.key_separator.as_deref() == Some("") {
        return Err(usage("--key-separator must not be empty"));
    }
    let input: Box<dyn Read> = match &args.file {
        Some(path) => Box::new(std::fs::File::open(path).with_context(|| format!("{}", path.display()))?),
        None => Box::new(std::io::stdin().lock()),
    };
    let mut cluster = Cluster::connect(&args.server.bootstrap_server)?;
    let layout = cluster.topic(&args.topic)?;
    if let Some(p) = args.partition {
        if !layout.partitions.iter().any(|l| l.index == p) {
            bail!("topic {} has no partition {p} (it has {})", args.topic, layout.partitions.len());
        }
    }
    let compression = match args.compression {
        CompressionArg::None => Compression::None,
        CompressionArg::Gzip => Compression::Gzip,
        CompressionArg::Snappy => Compression::Snappy,
        CompressionArg::Lz4 => Compression::Lz4,
        CompressionArg::Zstd => Compression::Zstd,
    };
    let start = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as usize).unwrap_or(0);
    let mut producer = Producer {
        next_keyless: start % layout.partitions.len().max(1),
        cluster,
        layout,
        args,
        headers,
        options: RecordEncodeOptions { version: 2, compression },
    };
    producer.pump(BufReader::with_capacity(INPUT_BUFFER, input))
}

impl Producer {
    fn pump(&mut self, mut input: BufReader<Box<dyn Read>>) -> Result<()> {
        let mut pending: Vec<Pending> = Vec::new();
        let mut pending_bytes = 0;
        let mut line = Vec::new();
        let mut line_no = 0u64;
        loop {
            line.clear();
            let n = input.read_until(b'\n', &mut line).context("reading the input")?;
            if n > 0 {
                line_no += 1;
                if line.last() == Some(&b'\n') {
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                }
                let rec = self.parse(&line, line_no)?;
                pending_bytes += rec.value.len() + rec.key.as_ref().map_or(0, |k| k.len());
                pending.push(rec);
            }
            // Only what is already buffered counts: asking for more would wait
            // on a terminal.
            let more_ready = n > 0 && !input.buffer().is_empty();
            if !pending.is_empty()
                && (n == 0 || !more_ready || pending_bytes >= MAX_PENDING_BYTES || pending.len() >= MAX_PENDING_RECORDS)
            {
                self.send(std::mem::take(&mut pending))?;
                pending_bytes = 0;
            }
            if n == 0 {
                return Ok(());
            }
        }
    }

    fn parse(&self, line: &[u8], line_no: u64) -> Result<Pending> {
        let Some(sep) = self.args.key_separator.as_deref() else {
            return Ok(Pending { key: None, value: Bytes::copy_from_slice(line) });
        };
        let sep = sep.as_bytes();
        match line.windows(sep.len()).position(|w| w == sep) {
            Some(i) => Ok(Pending {
                key: Some(Bytes::copy_from_slice(&line[..i])),
                value: Bytes::copy_from_slice(&line[i + sep.len()..]),
            }),
            None => bail!("line {line_no} has no key separator {:?}", String::from_utf8_lossy(sep)),
        }
    }

    fn partition_of(&self, rec: &Pending, keyless: usize) -> i32 {
        if let Some(p) = self.args.partition {
            return p;
        }
        let n = self.layout.partitions.len();
        let i = match &rec.key {
            Some(k) => partitioner::for_key(k, n),
            None => keyless,
        };
        self.layout.partitions[i].index
    }

    /// Encodes one batch per partition and sends one request per leader.
    fn send(&mut self, records: Vec<Pending>) -> Result<()> {
        let keyless = self.next_keyless % self.layout.partitions.len().max(1);
        self.next_keyless = self.next_keyless.wrapping_add(1);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        let mut by_partition: BTreeMap<i32, Vec<Record>> = BTreeMap::new();
        for rec in records {
            let p = self.partition_of(&rec, keyless);
            let batch = by_partition.entry(p).or_default();
            let i = batch.len();
            batch.push(Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // The encoder derives the batch's base sequence from the first
                // record: -1, no idempotence.
                sequence: i as i32 - 1,
                timestamp: now,
                key: rec.key,
                value: Some(rec.value),
                headers: self.headers.iter().cloned().collect(),
            });
        }
        let mut by_leader: BTreeMap<i32, Vec<(i32, Bytes)>> = BTreeMap::new();
        for (p, batch) in by_partition {
            let mut buf = BytesMut::new();
            RecordBatchEncoder::encode(&mut buf, batch.iter(), &self.options).context("encoding a record batch")?;
            let leader = self.layout.partitions.iter().find(|l| l.index == p).map_or(-1, |l| l.leader);
            if leader < 0 {
                bail!("partition {}-{p} has no leader", self.layout.name);
            }
            by_leader.entry(leader).or_default().push((p, buf.freeze()));
        }
        for (leader, batches) in by_leader {
            self.send_to(leader, batches)?;
        }
        Ok(())
    }

    fn send_to(&mut self, leader: i32, batches: Vec<(i32, Bytes)>) -> Result<()> {
        let acks = self.args.acks;
        let timeout_ms = self.args.timeout_ms;
        let topic = self.layout.name.clone();
        let conn = self.cluster.node(leader)?;
        // v13 names topics by id; this tool names them.
        let v = conn.version::<ProduceRequest>(12)?;
        let mut t = TopicProduceData::default();
        t.name = topic_name(&topic);
        t.partition_data = batches
            .iter()
            .map(|(p, b)| {
                let mut pd = PartitionProduceData::default();
                pd.index = *p;
                pd.records = Some(b.clone());
                pd
            })
            .collect();
        let mut req = ProduceRequest::default();
        req.acks = acks;
        req.timeout_ms = timeout_ms;
        req.topic_data = vec![t];
        if acks == 0 {
            return conn.send(&req, v);
        }
        let resp = conn.call(&req, v)?;
        for t in &resp.responses {
            for p in &t.partition_responses {
                if p.error_code != 0 {
                    let detail = p
                        .record_errors
                        .first()
                        .and_then(|e| e.batch_index_error_message.as_deref())
                        .or(p.error_message.as_deref());
                    return check(p.error_code, detail).with_context(|| format!("producing to {topic}-{}", p.index));
                }
            }
        }
        let answered: usize = resp.responses.iter().map(|t| t.partition_responses.len()).sum();
        if answered != batches.len() {
            bail!("the broker answered {answered} of {} partitions", batches.len());
        }
        Ok(())
    }
}
