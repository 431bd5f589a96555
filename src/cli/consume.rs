//! `sluice consume TOPIC`: prints records as they arrive, as
//! kafka-console-consumer.sh: long-poll Fetch to each partition's leader,
//! one line per record, stdout flushed after every response. Ctrl-C (or
//! SIGTERM) ends it cleanly: the group's offsets are committed, the member
//! leaves, the exit status is 0.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest};
use kafka_protocol::records::RecordBatchDecoder;

use super::client::{topic_name, Cluster, TopicLayout};
use super::format::{self, Format};
use super::kafka_error::{check, name};
use super::membership::Member;
use super::offsets::{self, EARLIEST, LATEST};
use super::{usage, Server};

/// Long-poll time per fetch: also how soon Ctrl-C is noticed.
const MAX_WAIT_MS: i32 = 500;
const MAX_BYTES: i32 = 16 << 20;
const PARTITION_MAX_BYTES: i32 = 1 << 20;
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);
/// Consecutive failed fetches (leader moving, broker restarting) before giving up.
const MAX_RETRIES: u32 = 50;

#[derive(clap::Args)]
pub struct ConsumeArgs {
    topic: String,
    #[command(flatten)]
    server: Server,
    /// Start at the earliest record (without a committed group offset).
    #[arg(long)]
    from_beginning: bool,
    /// Where to start: earliest, latest, or an offset (with --partition).
    #[arg(long, conflicts_with = "group")]
    offset: Option<String>,
    /// Read only this partition [default: all].
    #[arg(long, conflicts_with = "group")]
    partition: Option<i32>,
    /// Consume as a member of this consumer group, committing offsets.
    #[arg(long)]
    group: Option<String>,
    /// Exit after this many records.
    #[arg(long)]
    max_messages: Option<u64>,
    /// Exit when no record has arrived for this long (ms).
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// What to print per record.
    #[arg(long, value_enum, default_value = "value")]
    format: Format,
    /// Between key and value with --format key-value.
    #[arg(long, default_value = "\t", value_name = "SEP")]
    key_separator: String,
}

#[derive(Clone, Copy)]
enum Start {
    Earliest,
    Latest,
    At(i64),
}

impl Start {
    fn timestamp(self) -> i64 {
        match self {
            Start::Earliest => EARLIEST,
            _ => LATEST,
        }
    }
}

struct Consumer {
    cluster: Cluster,
    layout: TopicLayout,
    args: ConsumeArgs,
    /// Where to start a partition without a committed offset, and after
    /// OFFSET_OUT_OF_RANGE.
    reset: Start,
    /// partition → next offset to read.
    positions: BTreeMap<i32, i64>,
    member: Option<Member>,
    printed: u64,
    last_commit: Instant,
    stop: Arc<AtomicBool>,
}

pub fn run(args: ConsumeArgs) -> Result<()> {
    let start = match args.offset.as_deref() {
        None if args.from_beginning => Start::Earliest,
        None => Start::Latest,
        Some("earliest") => Start::Earliest,
        Some("latest") => Start::Latest,
        Some(n) => match n.parse::<i64>() {
            Ok(o) if o >= 0 && args.partition.is_some() => Start::At(o),
            Ok(o) if o >= 0 => return Err(usage("--offset with a number needs --partition")),
            _ => return Err(usage(format!("--offset {n}: expected earliest, latest or a non-negative offset"))),
        },
    };
    if args.max_messages == Some(0) {
        return Ok(());
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing the Ctrl-C handler")?;
    }
    let mut cluster = Cluster::connect(&args.server.bootstrap_server)?;
    let layout = cluster.topic(&args.topic)?;
    let mut c = Consumer {
        reset: if matches!(start, Start::At(_)) { Start::Latest } else { start },
        cluster,
        layout,
        args,
        positions: BTreeMap::new(),
        member: None,
        printed: 0,
        last_commit: Instant::now(),
        stop,
    };
    let result = c.start(start).and_then(|()| c.fetch_loop());
    // Commit what was printed and leave, also after an error or Ctrl-C.
    if let Some(m) = c.member.as_mut() {
        let committed = m.commit(&c.positions);
        m.leave();
        if result.is_ok() {
            committed?;
        }
    }
    // As kafka-console-consumer ends; after an error, the error alone is
    // the last word.
    if result.is_ok() {
        eprintln!("Processed a total of {} messages", c.printed);
    }
    result
}

impl Consumer {
    fn start(&mut self, start: Start) -> Result<()> {
        if let Some(group) = self.args.group.clone() {
            let (member, assigned) = Member::join(&mut self.cluster, &group, &self.layout.name)?;
            self.member = Some(member);
            return self.take(assigned);
        }
        let partitions: Vec<i32> = match self.args.partition {
            Some(p) => {
                if !self.layout.partitions.iter().any(|l| l.index == p) {
                    bail!("topic {} has no partition {p} (it has {})", self.layout.name, self.layout.partitions.len());
                }
                vec![p]
            }
            None => self.layout.partitions.iter().map(|p| p.index).collect(),
        };
        self.positions = match start {
            Start::At(o) => partitions.iter().map(|&p| (p, o)).collect(),
            s => offsets::list(&mut self.cluster, &self.layout, &partitions, s.timestamp())?,
        };
        Ok(())
    }

    /// Starts reading `assigned` from the group's committed offsets.
    fn take(&mut self, assigned: Vec<i32>) -> Result<()> {
        let member = self.member.as_mut().expect("a group member");
        let committed = member.committed(&assigned)?;
        let missing: Vec<i32> = assigned.iter().copied().filter(|p| !committed.contains_key(p)).collect();
        let mut positions = committed;
        if !missing.is_empty() {
            positions.extend(offsets::list(&mut self.cluster, &self.layout, &missing, self.reset.timestamp())?);
        }
        self.positions = positions;
        Ok(())
    }

    fn done(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.args.max_messages.is_some_and(|m| self.printed >= m)
    }

    fn fetch_loop(&mut self) -> Result<()> {
        let mut last_record = Instant::now();
        let mut failures = 0;
        while !self.done() {
            if let Some(t) = self.args.timeout_ms {
                if last_record.elapsed() >= Duration::from_millis(t) {
                    break;
                }
            }
            if self.group_maintenance()? {
                continue;
            }
            if self.positions.is_empty() {
                // A group member with nothing assigned waits for a rebalance.
                std::thread::sleep(Duration::from_millis(MAX_WAIT_MS as u64));
                continue;
            }
            let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
            for (&p, &o) in &self.positions {
                let leader = self.layout.partitions.iter().find(|l| l.index == p).map_or(-1, |l| l.leader);
                by_leader.entry(leader).or_default().push((p, o));
            }
            // With several leaders each is asked in turn: a shorter wait
            // keeps the others from waiting behind an idle one.
            let wait = if by_leader.len() > 1 { 100 } else { MAX_WAIT_MS };
            let mut trouble = false;
            for (leader, parts) in by_leader {
                match self.fetch(leader, &parts, wait) {
                    Ok((n, ok)) => {
                        if n > 0 {
                            last_record = Instant::now();
                        }
                        trouble |= !ok;
                    }
                    // The connection may be broken: reconnect on the next try.
                    Err(_) if failures < MAX_RETRIES && !self.done() => {
                        self.cluster.forget(leader);
                        trouble = true;
                    }
                    Err(e) => return Err(e),
                }
                if self.done() {
                    break;
                }
            }
            if trouble {
                failures += 1;
                std::thread::sleep(Duration::from_millis(100));
                self.refresh()?;
            } else {
                failures = 0;
            }
        }
        Ok(())
    }

    /// Heartbeat, rejoin after a rebalance, periodic commit. True if the
    /// assignment changed.
    fn group_maintenance(&mut self) -> Result<bool> {
        let Some(member) = self.member.as_mut() else { return Ok(false) };
        if self.last_commit.elapsed() >= COMMIT_INTERVAL {
            member.commit(&self.positions)?;
            self.last_commit = Instant::now();
        }
        if !member.heartbeat_if_due()? {
            return Ok(false);
        }
        member.commit(&self.positions)?;
        let assigned = member.rejoin(&mut self.cluster)?;
        self.take(assigned)?;
        Ok(true)
    }

    /// Metadata again, after an error that may mean the leader moved.
    fn refresh(&mut self) -> Result<()> {
        self.layout = self.cluster.topic(&self.layout.name)?;
        Ok(())
    }

    /// One fetch from `leader`; prints what came. Returns (records printed,
    /// whether every partition answered without error).
    fn fetch(&mut self, leader: i32, parts: &[(i32, i64)], wait_ms: i32) -> Result<(u64, bool)> {
        if leader < 0 {
            return Ok((0, false));
        }
        let topic = self.layout.name.clone();
        let conn = self.cluster.node(leader)?;
        // v13 names topics by id; this tool names them.
        let v = conn.version::<FetchRequest>(12)?;
        let mut t = FetchTopic::default();
        t.topic = topic_name(&topic);
        t.partitions = parts
            .iter()
            .map(|&(p, o)| {
                let mut fp = FetchPartition::default();
                fp.partition = p;
                fp.fetch_offset = o;
                fp.current_leader_epoch = -1;
                fp.last_fetched_epoch = -1;
                fp.log_start_offset = -1;
                fp.partition_max_bytes = PARTITION_MAX_BYTES;
                fp
            })
            .collect();
        let mut req = FetchRequest::default();
        req.replica_id = BrokerId(-1);
        req.max_wait_ms = wait_ms;
        req.min_bytes = 1;
        req.max_bytes = MAX_BYTES;
        req.session_epoch = -1;
        req.topics = vec![t];
        let resp = conn.call(&req, v)?;
        check(resp.error_code, None).context("fetch")?;
        let mut out = std::io::stdout().lock();
        let mut printed = 0;
        let mut all_ok = true;
        for t in resp.responses {
            for p in t.partitions {
                let Some(&pos) = self.positions.get(&p.partition_index) else { continue };
                match p.error_code {
                    0 => {}
                    // OFFSET_OUT_OF_RANGE: the start was deleted (retention)
                    // or the offset asked for does not exist.
                    1 => {
                        if matches!(self.args.offset.as_deref().map(str::parse::<i64>), Some(Ok(_)))
                            && self.member.is_none()
                        {
                            bail!("offset {pos} is out of range for {topic}-{}", p.partition_index);
                        }
                        let reset = offsets::list(
                            &mut self.cluster,
                            &self.layout,
                            &[p.partition_index],
                            self.reset.timestamp(),
                        )?;
                        self.positions.extend(reset);
                        continue;
                    }
                    3 => {
                        // The topic may have been deleted.
                        if self.cluster.topic(&topic).is_err() {
                            bail!("topic {topic} was deleted");
                        }
                        all_ok = false;
                        continue;
                    }
                    code if super::kafka_error::retriable(code) => {
                        all_ok = false;
                        continue;
                    }
                    code => bail!("fetching {topic}-{}: {}", p.partition_index, name(code)),
                }
                let Some(records) = p.records else { continue };
                let (n, next) = self.print(&mut out, &topic, p.partition_index, pos, records)?;
                printed += n;
                self.positions.insert(p.partition_index, next);
                if self.done() {
                    break;
                }
            }
        }
        out.flush()?;
        Ok((printed, all_ok))
    }

    /// Prints the records at or after `pos` (a fetch returns whole batches,
    /// and the last one may be cut short); returns how many and the next
    /// position.
    fn print(
        &mut self,
        out: &mut impl Write,
        topic: &str,
        partition: i32,
        mut pos: i64,
        data: Bytes,
    ) -> Result<(u64, i64)> {
        let mut printed = 0;
        for batch in batches(data)? {
            if batch.last_offset < pos {
                continue;
            }
            if !batch.control {
                let mut b = batch.bytes;
                let set = RecordBatchDecoder::decode(&mut b).with_context(|| {
                    format!("a malformed record batch in {topic}-{partition} at offset {}", batch.base_offset)
                })?;
                for r in &set.records {
                    if r.offset < pos {
                        continue;
                    }
                    if self.args.max_messages.is_some_and(|m| self.printed >= m) {
                        return Ok((printed, pos));
                    }
                    format::write(out, self.args.format, &self.args.key_separator, topic, partition, r)?;
                    self.printed += 1;
                    printed += 1;
                    pos = r.offset + 1;
                }
            }
            // Also past control batches and records removed by compaction.
            pos = pos.max(batch.last_offset + 1);
        }
        Ok((printed, pos))
    }
}

struct Batch {
    base_offset: i64,
    last_offset: i64,
    control: bool,
    bytes: Bytes,
}

/// Splits fetched record data into whole v2 batches, dropping a partial
/// one at the end. Checks what the decoder would trust (the record count
/// sizes an allocation) before any decoding.
fn batches(mut data: Bytes) -> Result<Vec<Batch>> {
    const HEADER: usize = 61;
    let mut out = Vec::new();
    while data.len() >= 12 {
        let be_i64 = |b: &[u8], at: usize| i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        let be_i32 = |b: &[u8], at: usize| i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"));
        let base_offset = be_i64(&data, 0);
        let len = be_i32(&data, 8);
        if len < 0 {
            bail!("a record batch of length {len}");
        }
        let total = 12 + len as usize;
        if total > data.len() {
            break;
        }
        let bytes = data.split_to(total);
        if total < HEADER {
            bail!("a record batch of {total} bytes");
        }
        let magic = bytes[16] as i8;
        if magic != 2 {
            bail!("record format v{magic} (before Kafka 0.11) is not supported");
        }
        let attributes = u16::from_be_bytes([bytes[21], bytes[22]]);
        let last_delta = be_i32(&bytes, 23);
        let count = be_i32(&bytes, 57);
        let compressed = attributes & 7 != 0;
        // An uncompressed record takes at least 7 bytes; compressed ones
        // are capped at what a sane batch holds.
        let max = if compressed { 10_000_000 } else { (total - HEADER) / 7 + 1 };
        if count < 0 || count as usize > max {
            bail!("a record batch claiming {count} records in {total} bytes");
        }
        out.push(Batch {
            base_offset,
            last_offset: base_offset + i64::from(last_delta.max(0)),
            control: attributes & 0x20 != 0,
            bytes,
        });
    }
    Ok(out)
}
