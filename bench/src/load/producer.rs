//! One producer connection: a sender thread that generates records, batches
//! them per partition (`batch.size`, `linger.ms`, one batch per partition per
//! request, up to `max.request.size`) and writes Produce requests, and a
//! receiver thread that reads the pipelined responses and records each
//! record's latency. At most `max.in.flight` requests are unanswered.
//!
//! Open loop (`--rate`): record k of this producer is *due* at
//! `start + k / rate`, and its latency is measured from that intended time,
//! not from when it was actually written. If the broker (or this client)
//! falls behind, records are generated late and their latency shows it: the
//! coordinated-omission trap of closed-loop tools is avoided. Without a rate
//! the loop is closed: records are generated as fast as the buffer
//! (`buffer.memory`) drains, each timed from its creation.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::ProduceRequest;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType, NO_PARTITION_LEADER_EPOCH,
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};

use super::admin::topic_name;
use super::client::{decode_response, encode_frame_gather, Conn, FrameReader, Killer};
use super::gather::write_all_segments;
use super::stats::Counters;
use super::Run;

#[derive(Clone, Debug)]
pub struct ProducerSpec {
    pub id: usize,
    pub broker: String,
    pub topic: String,
    pub partitions: Vec<i32>,
    pub acks: i16,
    pub linger_ns: u64,
    pub batch_size: usize,
    pub max_request: usize,
    pub max_in_flight: usize,
    pub buffer_memory: usize,
    pub compression: Compression,
    /// 0: records have no key; otherwise random keys of this size, and a
    /// random partition per record (as hashing a random key would give).
    pub key_size: usize,
    pub record_size: usize,
    /// Records per second for this connection (open loop), or none.
    pub rate: Option<f64>,
    /// Records for this connection, or none (then `deadline`).
    pub quota: Option<u64>,
    /// Clock ns at which generation stops.
    pub deadline: u64,
    pub seed: u64,
}

/// One request in flight: what the receiver needs to account for it.
struct InFlight {
    correlation_id: i32,
    /// Per partition, in request order: (partition, records, payload bytes,
    /// batch bytes). The record times are in `times`, in the same order.
    parts: Vec<(i32, usize, u64, u64)>,
    times: Vec<u64>,
}

pub struct Producer {
    pub handles: Vec<JoinHandle<Result<()>>>,
    pub killer: Killer,
}

/// Connects (in the caller's thread, so that errors show before the run
/// starts) and starts the sender and, unless `acks=0`, the receiver.
pub fn spawn(spec: ProducerSpec, run: Arc<Run>) -> Result<Producer> {
    let conn = Conn::connect(&spec.broker, &format!("sluice-bench-producer-{}", spec.id))?;
    let killer = conn.killer()?;
    let version = conn.versions.produce;
    let mut handles = Vec::new();
    let (inflight_tx, inflight_rx) = mpsc::channel::<InFlight>();
    let slots = if spec.acks != 0 {
        let (slot_tx, slot_rx) = mpsc::sync_channel::<()>(spec.max_in_flight);
        for _ in 0..spec.max_in_flight {
            slot_tx.send(()).unwrap();
        }
        let reader = FrameReader::new(conn.stream.try_clone()?);
        let run2 = run.clone();
        let id = spec.id;
        handles.push(
            thread::Builder::new()
                .name(format!("prod-rx-{id}"))
                .spawn(move || {
                    let r = receiver(reader, version, inflight_rx, slot_tx, &run2);
                    if let Err(e) = &r {
                        run2.fail(format!("producer {id} receiver: {e:#}"));
                    }
                    r
                })
                .unwrap(),
        );
        Some(slot_rx)
    } else {
        drop(inflight_rx);
        None
    };
    let id = spec.id;
    handles.push(
        thread::Builder::new()
            .name(format!("prod-tx-{id}"))
            .spawn(move || {
                let r = Sender::new(spec, conn, run.clone(), slots, inflight_tx).and_then(|mut s| s.run());
                if let Err(e) = &r {
                    run.fail(format!("producer {id} sender: {e:#}"));
                }
                r
            })
            .unwrap(),
    );
    Ok(Producer { handles, killer })
}

fn receiver(
    mut reader: FrameReader,
    version: i16,
    inflight: Receiver<InFlight>,
    slots: SyncSender<()>,
    run: &Run,
) -> Result<()> {
    let c = &run.counters;
    while let Ok(req) = inflight.recv() {
        let frame = reader.next_frame()?;
        let resp = decode_response::<ProduceRequest>(frame, version, req.correlation_id)?;
        let now = run.clock.now();
        let _ = slots.send(());
        // Partition outcomes, in request order when the broker keeps it.
        let outcomes: Vec<(i32, i16, Option<String>)> = resp
            .responses
            .iter()
            .flat_map(|t| t.partition_responses.iter())
            .map(|p| (p.index, p.error_code, p.error_message.as_ref().map(|m| m.to_string())))
            .collect();
        let in_order = outcomes.len() == req.parts.len() && outcomes.iter().zip(&req.parts).all(|(o, p)| o.0 == p.0);
        let by_partition: std::collections::HashMap<i32, (i16, Option<String>)> = if in_order {
            Default::default()
        } else {
            outcomes.iter().map(|(p, c, m)| (*p, (*c, m.clone()))).collect()
        };
        let mut at = 0;
        let (mut ok_records, mut ok_bytes, mut ok_batch, mut err_records) = (0u64, 0u64, 0u64, 0u64);
        let mut ok_ranges = Vec::with_capacity(req.parts.len());
        for (i, &(partition, n, bytes, batch_bytes)) in req.parts.iter().enumerate() {
            let code = if in_order {
                Some((outcomes[i].1, outcomes[i].2.clone()))
            } else {
                by_partition.get(&partition).cloned()
            };
            match code {
                Some((0, _)) => {
                    ok_records += n as u64;
                    ok_bytes += bytes;
                    ok_batch += batch_bytes;
                    ok_ranges.push(at..at + n);
                }
                other => {
                    err_records += n as u64;
                    let (code, msg) = other.unwrap_or((-1, Some("partition missing from the response".into())));
                    run.produce_error(code, msg.unwrap_or_default());
                }
            }
            at += n;
        }
        run.produce_latency
            .record_all(ok_ranges.into_iter().flat_map(|r| req.times[r].iter().map(move |&t| now.saturating_sub(t))));
        Counters::add(&c.acked_records, ok_records);
        Counters::add(&c.acked_bytes, ok_bytes);
        Counters::add(&c.acked_batch_bytes, ok_batch);
        Counters::add(&c.produce_errors, err_records);
        Counters::max(&c.last_ack, now);
    }
    Ok(())
}

/// A batch being filled for one partition. The record bytes (key, then
/// value) are appended to `arena`; each record's key and value become
/// `Bytes` slices of it when the batch is encoded.
struct Open {
    arena: BytesMut,
    /// Estimated encoded size: batch header plus records with their
    /// framing (what `batch.size` bounds, as in Kafka).
    est: usize,
    times: Vec<u64>,
    created: u64,
}

struct Sender {
    spec: ProducerSpec,
    conn: Conn,
    run: Arc<Run>,
    slots: Option<Receiver<()>>,
    inflight: mpsc::Sender<InFlight>,
    // accumulator
    open: Vec<Option<Open>>,
    ready: VecDeque<(usize, Open)>,
    order: VecDeque<(usize, u64)>,
    used: Vec<bool>,
    sticky: usize,
    buffered: usize,
    // generation
    generated: u64,
    rng: u64,
    filler: Vec<u8>,
    scratch: Vec<Record>,
    options: RecordEncodeOptions,
}

const FILLER_POOL: usize = 1 << 20;
/// Record-batch v2 header bytes.
const BATCH_OVERHEAD: usize = 61;
/// Upper bound of a record's framing in a batch: length, attributes,
/// timestamp and offset deltas, key and value lengths, header count.
const RECORD_OVERHEAD: usize = 5 + 1 + 10 + 5 + 5 + 5 + 1;

fn xorshift(s: &mut u64) -> u64 {
    let mut x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    x
}

fn blank_record() -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
        producer_id: NO_PRODUCER_ID,
        producer_epoch: NO_PRODUCER_EPOCH,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 0,
        key: None,
        value: None,
        headers: Default::default(),
    }
}

impl Sender {
    fn new(
        spec: ProducerSpec,
        conn: Conn,
        run: Arc<Run>,
        slots: Option<Receiver<()>>,
        inflight: mpsc::Sender<InFlight>,
    ) -> Result<Sender> {
        let mut rng = spec.seed | 1;
        // Payload: random upper-case letters (as Kafka's own perf tool), from
        // a 1 MiB pool at a random offset per record.
        let filler: Vec<u8> =
            (0..FILLER_POOL + spec.record_size).map(|_| b'A' + (xorshift(&mut rng) % 26) as u8).collect();
        let n = spec.partitions.len();
        Ok(Sender {
            options: RecordEncodeOptions { version: 2, compression: spec.compression },
            open: (0..n).map(|_| None).collect(),
            ready: VecDeque::new(),
            order: VecDeque::new(),
            used: vec![false; n],
            sticky: (spec.id * 7919) % n,
            buffered: 0,
            generated: 0,
            rng,
            filler,
            scratch: Vec::new(),
            spec,
            conn,
            run,
            slots,
            inflight,
        })
    }

    fn rec_bytes(&self) -> usize {
        self.spec.key_size + self.spec.record_size
    }

    /// Appends one record created (or due) at `t`.
    fn append(&mut self, t: u64) {
        let rec = self.rec_bytes();
        let idx = if self.spec.key_size > 0 {
            (xorshift(&mut self.rng) % self.open.len() as u64) as usize
        } else {
            self.sticky
        };
        let enc = rec + RECORD_OVERHEAD;
        if let Some(o) = &self.open[idx] {
            if o.est + enc > self.spec.batch_size {
                self.close(idx);
            }
        }
        if self.open[idx].is_none() {
            let cap = self.spec.batch_size.clamp(rec, 1 << 20);
            self.open[idx] =
                Some(Open { arena: BytesMut::with_capacity(cap), est: BATCH_OVERHEAD, times: Vec::new(), created: t });
            self.order.push_back((idx, t));
        }
        let wall = self.run.clock.wall(t);
        let key_size = self.spec.key_size;
        let size = self.spec.record_size;
        let r1 = xorshift(&mut self.rng);
        let r2 = xorshift(&mut self.rng);
        let o = self.open[idx].as_mut().unwrap();
        if key_size > 0 {
            let mut left = key_size;
            let mut k = [r1, r2];
            while left > 0 {
                let word = k[0].to_le_bytes();
                let take = left.min(8);
                o.arena.extend_from_slice(&word[..take]);
                k[0] = xorshift(&mut k[1]);
                left -= take;
            }
        }
        let off = (r1 % FILLER_POOL as u64) as usize;
        if size >= 8 {
            o.arena.put_u64(wall);
            o.arena.extend_from_slice(&self.filler[off..off + size - 8]);
        } else {
            o.arena.extend_from_slice(&self.filler[off..off + size]);
        }
        o.times.push(t);
        o.est += enc;
        self.buffered += rec;
        if key_size == 0 && o.est + enc > self.spec.batch_size {
            self.close(idx);
            self.sticky = (self.sticky + 1) % self.open.len();
        }
    }

    fn close(&mut self, idx: usize) {
        if let Some(o) = self.open[idx].take() {
            self.ready.push_back((idx, o));
        }
    }

    /// Creation time of the oldest open batch.
    fn oldest_open(&mut self) -> Option<u64> {
        while let Some(&(idx, c)) = self.order.front() {
            if self.open[idx].as_ref().map(|o| o.created) == Some(c) {
                return Some(c);
            }
            self.order.pop_front();
        }
        None
    }

    fn is_empty(&self) -> bool {
        self.buffered == 0
    }

    /// Takes at most one batch per partition, full ones first, then open ones
    /// oldest first, up to `max_request` bytes (always at least one).
    fn drain(&mut self) -> Vec<(usize, Open)> {
        let max = self.spec.max_request;
        let mut taken: Vec<(usize, Open)> = Vec::new();
        let mut bytes = 0;
        let mut keep = VecDeque::new();
        while let Some((idx, o)) = self.ready.pop_front() {
            if self.used[idx] || (bytes > 0 && bytes + o.arena.len() > max) {
                keep.push_back((idx, o));
                continue;
            }
            self.used[idx] = true;
            bytes += o.arena.len();
            taken.push((idx, o));
        }
        self.ready = keep;
        if bytes < max {
            let order = std::mem::take(&mut self.order);
            for (idx, c) in order {
                let valid = self.open[idx].as_ref().map(|o| o.created) == Some(c);
                if !valid {
                    continue;
                }
                let len = self.open[idx].as_ref().unwrap().arena.len();
                if !self.used[idx] && (bytes == 0 || bytes + len <= max) {
                    self.used[idx] = true;
                    bytes += len;
                    taken.push((idx, self.open[idx].take().unwrap()));
                } else {
                    self.order.push_back((idx, c));
                }
            }
        }
        for (idx, _) in &taken {
            self.used[*idx] = false;
        }
        taken
    }

    /// Encodes and writes one Produce request from the accumulator.
    fn send(&mut self) -> Result<()> {
        let batches = self.drain();
        let mut parts = Vec::with_capacity(batches.len());
        let mut times = Vec::new();
        let mut partition_data = Vec::with_capacity(batches.len());
        let rec = self.rec_bytes();
        let key_size = self.spec.key_size;
        let mut records_total = 0u64;
        let mut encoded: Vec<Bytes> = Vec::new();
        for (idx, open) in batches {
            let n = open.times.len();
            let arena = open.arena.freeze();
            if self.scratch.len() < n {
                self.scratch.resize_with(n, blank_record);
            }
            for (i, r) in self.scratch[..n].iter_mut().enumerate() {
                let base = i * rec;
                r.offset = i as i64;
                // offset − sequence must be the same for the whole batch;
                // the encoder derives base sequence −1 (none) from it.
                r.sequence = i as i32 - 1;
                r.timestamp = (self.run.clock.wall(open.times[i]) / 1_000_000) as i64;
                r.key = (key_size > 0).then(|| arena.slice(base..base + key_size));
                r.value = Some(arena.slice(base + key_size..base + rec));
            }
            let mut out = BytesMut::with_capacity(arena.len() + n * 12 + 128);
            RecordBatchEncoder::encode(&mut out, self.scratch[..n].iter(), &self.options)
                .map_err(|e| anyhow!("encoding a record batch: {e}"))?;
            for r in &mut self.scratch[..n] {
                r.key = None;
                r.value = None;
            }
            self.buffered -= n * rec;
            let partition = self.spec.partitions[idx];
            parts.push((partition, n, arena.len() as u64, out.len() as u64));
            times.extend_from_slice(&open.times);
            records_total += n as u64;
            let out = out.freeze();
            encoded.push(out.clone());
            let mut pd = PartitionProduceData::default();
            pd.index = partition;
            pd.records = Some(out);
            partition_data.push(pd);
        }
        let mut td = TopicProduceData::default();
        td.name = topic_name(&self.spec.topic);
        td.partition_data = partition_data;
        let mut req = ProduceRequest::default();
        req.acks = self.spec.acks;
        req.timeout_ms = 30_000;
        req.topic_data = vec![td];
        let corr = self.conn.next_correlation_id();
        // The batches are referenced, not copied, into the frame (writev).
        let frame = encode_frame_gather(&req, self.conn.versions.produce, corr, &self.conn.client_id, &encoded)?;
        drop(req);
        let c = &self.run.counters;
        // How late each record goes out against its intended (or creation)
        // time: the client's own lag, plus any wait for a free slot.
        let writing = self.run.clock.now();
        self.run.send_delay.record_all(times.iter().map(|&t| writing.saturating_sub(t)));
        if self.spec.acks != 0 {
            self.inflight
                .send(InFlight { correlation_id: corr, parts: parts.clone(), times })
                .map_err(|_| anyhow!("the response reader stopped"))?;
        }
        write_all_segments(&mut self.conn.stream, &frame).context("writing a produce request")?;
        Counters::add(&c.sent_records, records_total);
        Counters::add(&c.produce_requests, 1);
        if self.spec.acks == 0 {
            // No response will come: count the records as done once written.
            let now = self.run.clock.now();
            for (_, n, bytes, batch_bytes) in parts {
                Counters::add(&c.acked_records, n as u64);
                Counters::add(&c.acked_bytes, bytes);
                Counters::add(&c.acked_batch_bytes, batch_bytes);
            }
            Counters::max(&c.last_ack, now);
        }
        Ok(())
    }

    fn exhausted(&self) -> bool {
        self.spec.quota.is_some_and(|q| self.generated >= q)
    }

    fn run(&mut self) -> Result<()> {
        let run = self.run.clone();
        let clock = &run.clock;
        run.wait_start();
        let start = run.start_ns();
        self.spec.deadline = self.spec.deadline.min(run.produce_deadline.load(std::sync::atomic::Ordering::Relaxed));
        let interval = self.spec.rate.map(|r| 1e9 / r);
        let rec = self.rec_bytes();
        let mut have_slot = false;
        let mut done_generating = false;
        loop {
            if self.run.aborted() {
                bail!("aborted");
            }
            let now = clock.now();
            // 1. Generate what is due (open loop) or what fits (closed loop),
            //    at most one request's worth per turn so that sends interleave.
            let mut budget = self.spec.max_request;
            while !done_generating && self.buffered + rec <= self.spec.buffer_memory.max(rec) && budget > 0 {
                if self.exhausted() {
                    done_generating = true;
                    break;
                }
                let t = match interval {
                    Some(iv) => {
                        let t = start + (self.generated as f64 * iv) as u64;
                        if t >= self.spec.deadline && self.spec.quota.is_none() {
                            done_generating = true;
                            break;
                        }
                        if t > now {
                            break;
                        }
                        t
                    }
                    None => {
                        if now >= self.spec.deadline && self.spec.quota.is_none() {
                            done_generating = true;
                            break;
                        }
                        now
                    }
                };
                self.append(t);
                self.generated += 1;
                budget = budget.saturating_sub(rec);
            }
            if !done_generating && self.exhausted() {
                done_generating = true;
            }
            // 2. Send if something is sendable and a slot is free.
            let oldest = self.oldest_open();
            let sendable = !self.ready.is_empty()
                || oldest.is_some_and(|c| now >= c + self.spec.linger_ns)
                || (done_generating && !self.is_empty());
            if self.is_empty() && done_generating {
                break;
            }
            if sendable {
                if !have_slot {
                    have_slot = match &self.slots {
                        None => true,
                        Some(s) => match s.try_recv() {
                            Ok(()) => true,
                            Err(TryRecvError::Empty) => false,
                            Err(TryRecvError::Disconnected) => bail!("the response reader stopped"),
                        },
                    };
                }
                if have_slot {
                    self.send()?;
                    have_slot = false;
                    continue;
                }
            }
            // 3. Wait: for a slot, the next due record, or a linger deadline.
            let mut wake = u64::MAX;
            let can_generate = !done_generating && self.buffered + rec <= self.spec.buffer_memory.max(rec);
            match (can_generate, interval, oldest.filter(|_| !sendable)) {
                (false, _, _) => {}
                // Waiting for a slot: records that come due meanwhile are
                // generated when it frees (timed from their due time); waking
                // for each of them would only burn CPU.
                (true, Some(_), _) if sendable => {}
                (true, None, _) => wake = now,
                // Nothing is lingering: wake when the next record is due.
                (true, Some(iv), None) => wake = start + (self.generated as f64 * iv) as u64,
                // A batch is lingering: the records due meanwhile join it when
                // generated (their latency counts from their due time), so wake
                // at the linger deadline, or when enough records are due to
                // fill a batch — not once per record.
                (true, Some(iv), Some(_)) => {
                    let fit = (self.spec.batch_size / (rec + RECORD_OVERHEAD)).max(1) as f64;
                    wake = start + ((self.generated as f64 + fit) * iv) as u64;
                }
            }
            if !sendable {
                if let Some(c) = oldest {
                    wake = wake.min(c + self.spec.linger_ns);
                }
            }
            let now = clock.now();
            if wake <= now {
                continue;
            }
            let wait = Duration::from_nanos((wake - now).min(100_000_000));
            if sendable {
                if let Some(s) = &self.slots {
                    match s.recv_timeout(wait) {
                        Ok(()) => have_slot = true,
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => bail!("the response reader stopped"),
                    }
                }
            } else {
                thread::sleep(wait);
            }
        }
        Ok(())
    }
}
