//! One consumer connection, assign-style: ListOffsets for its partitions,
//! then a Fetch loop (one request in flight, as Kafka's consumer keeps one
//! fetch per broker). Every batch's CRC is checked; `--decode full` also
//! decodes each record (what a real consumer does), which `e2e` needs to
//! read the send time at the front of each value.

use std::sync::Arc;
use std::thread::{self, JoinHandle};

use anyhow::{anyhow, bail, Result};
use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest};
use kafka_protocol::records::RecordBatchDecoder;

use super::admin::{list_offsets, topic_name};
use super::client::{decode_response, encode_frame, Conn, Killer};
use super::stats::Counters;
use super::Run;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Decode {
    /// Decode every record with `RecordBatchDecoder` (CRC, varints, slices).
    Full,
    /// Check each batch's CRC and read its header only (record counts).
    Headers,
}

#[derive(Clone, Debug)]
pub struct ConsumerSpec {
    pub id: usize,
    pub broker: String,
    pub topic: String,
    pub partitions: Vec<i32>,
    /// -1: latest, -2: earliest.
    pub from: i64,
    /// Stop at the end offsets found at start.
    pub to_end: bool,
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub max_bytes: i32,
    pub partition_max_bytes: i32,
    pub decode: Decode,
    pub e2e: bool,
}

pub struct Consumer {
    pub handle: JoinHandle<Result<()>>,
    pub killer: Killer,
}

struct Part {
    partition: i32,
    next: i64,
    end: Option<i64>,
}

/// Connects and looks the start offsets up in the caller's thread (so an
/// `e2e` run starts producing only after every consumer knows where the
/// tail was), then starts the fetch loop.
pub fn spawn(spec: ConsumerSpec, run: Arc<Run>) -> Result<Consumer> {
    let mut conn = Conn::connect(&spec.broker, &format!("sluice-bench-consumer-{}", spec.id))?;
    let killer = conn.killer()?;
    let start = list_offsets(&mut conn, &spec.topic, &spec.partitions, spec.from)?;
    let ends = if spec.to_end { Some(list_offsets(&mut conn, &spec.topic, &spec.partitions, -1)?) } else { None };
    let parts: Vec<Part> = start
        .iter()
        .map(|&(p, off)| Part {
            partition: p,
            next: off,
            end: ends.as_ref().map(|e| e.iter().find(|x| x.0 == p).map(|x| x.1).unwrap_or(off)),
        })
        .collect();
    let id = spec.id;
    let handle = thread::Builder::new()
        .name(format!("cons-{id}"))
        .spawn(move || {
            let r = fetch_loop(spec, conn, parts, &run);
            if let Err(e) = &r {
                run.fail(format!("consumer {id}: {e:#}"));
            }
            r
        })
        .unwrap();
    Ok(Consumer { handle, killer })
}

fn fetch_loop(spec: ConsumerSpec, mut conn: Conn, mut parts: Vec<Part>, run: &Run) -> Result<()> {
    run.wait_start();
    let c = &run.counters;
    let version = conn.versions.fetch;
    let topic = topic_name(&spec.topic);
    let mut lat: Vec<u64> = Vec::new();
    let min_wall = run.clock.wall(0).saturating_sub(3_600_000_000_000);
    let index: std::collections::HashMap<i32, usize> =
        parts.iter().enumerate().map(|(i, p)| (p.partition, i)).collect();
    loop {
        if run.aborted() {
            bail!("aborted");
        }
        if run.consumers_should_stop() {
            return Ok(());
        }
        let wanted: Vec<&Part> = parts.iter().filter(|p| p.end.is_none_or(|e| p.next < e)).collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let mut ft = FetchTopic::default();
        ft.topic = topic.clone();
        ft.partitions = wanted
            .iter()
            .map(|p| {
                let mut fp = FetchPartition::default();
                fp.partition = p.partition;
                fp.fetch_offset = p.next;
                fp.current_leader_epoch = -1;
                fp.last_fetched_epoch = -1;
                fp.log_start_offset = -1;
                fp.partition_max_bytes = spec.partition_max_bytes;
                fp
            })
            .collect();
        let mut req = FetchRequest::default();
        req.replica_id = BrokerId(-1);
        req.max_wait_ms = spec.max_wait_ms;
        req.min_bytes = spec.min_bytes;
        req.max_bytes = spec.max_bytes;
        req.isolation_level = 0;
        req.session_id = 0;
        req.session_epoch = -1;
        req.topics = vec![ft];
        let corr = conn.next_correlation_id();
        let frame = encode_frame(&req, version, corr, &conn.client_id)?;
        std::io::Write::write_all(&mut conn.stream, &frame)?;
        let resp = conn.reader.next_frame()?;
        let resp = decode_response::<FetchRequest>(resp, version, corr)?;
        let now = run.clock.now();
        let now_wall = run.clock.wall(now);
        Counters::add(&c.fetches, 1);
        if resp.error_code != 0 {
            bail!("fetch error {}", resp.error_code);
        }
        let (mut records, mut bytes, mut batch_bytes) = (0u64, 0u64, 0u64);
        for t in resp.responses {
            for pd in t.partitions {
                let Some(&i) = index.get(&pd.partition_index) else {
                    continue;
                };
                let part = &mut parts[i];
                if pd.error_code != 0 {
                    Counters::add(&c.fetch_errors, 1);
                    bail!("fetch {}-{} at {}: error {}", spec.topic, part.partition, part.next, pd.error_code);
                }
                let Some(mut rest) = pd.records else { continue };
                let before = part.next;
                while rest.len() >= 12 {
                    // The batch length field delimits the batch; a trailing
                    // batch cut by the size limit is dropped (fetched again).
                    let len = i32::from_be_bytes(rest[8..12].try_into().unwrap());
                    if len < 0 {
                        bail!("negative batch length in {}-{}", spec.topic, part.partition);
                    }
                    let total = 12 + len as usize;
                    if rest.len() < total {
                        break;
                    }
                    let mut batch: Bytes = rest.split_to(total);
                    batch_bytes += total as u64;
                    match spec.decode {
                        Decode::Full => {
                            let set = RecordBatchDecoder::decode(&mut batch)
                                .map_err(|e| anyhow!("{}-{}: {e}", spec.topic, part.partition))?;
                            for r in &set.records {
                                if r.offset < part.next {
                                    continue;
                                }
                                part.next = r.offset + 1;
                                records += 1;
                                let v = r.value.as_deref().unwrap_or(&[]);
                                bytes += (v.len() + r.key.as_ref().map_or(0, |k| k.len())) as u64;
                                if spec.e2e && v.len() >= 8 {
                                    let sent = u64::from_be_bytes(v[..8].try_into().unwrap());
                                    if sent > min_wall && sent <= now_wall + 1_000_000_000 {
                                        lat.push(now_wall.saturating_sub(sent));
                                    }
                                }
                            }
                        }
                        Decode::Headers => {
                            let infos = RecordBatchDecoder::decode_batch_info(&mut batch)
                                .map_err(|e| anyhow!("{}-{}: {e}", spec.topic, part.partition))?;
                            for info in infos {
                                let last = info.min_offset + info.record_count as i64 - 1;
                                if last >= part.next {
                                    records += (last - part.next.max(info.min_offset) + 1) as u64;
                                    part.next = last + 1;
                                }
                            }
                        }
                    }
                }
                if part.next == before && !rest.is_empty() && rest.len() as i32 >= spec.partition_max_bytes {
                    bail!(
                        "{}-{}: a batch larger than --partition-max-bytes ({}) at offset {}",
                        spec.topic,
                        part.partition,
                        spec.partition_max_bytes,
                        part.next
                    );
                }
            }
        }
        if !lat.is_empty() {
            run.e2e_latency.record_all(lat.drain(..));
        }
        Counters::add(&c.consumed_records, records);
        Counters::add(&c.consumed_bytes, bytes);
        Counters::add(&c.consumed_batch_bytes, batch_bytes);
        if records > 0 {
            Counters::max(&c.last_consume, now);
        }
    }
}
