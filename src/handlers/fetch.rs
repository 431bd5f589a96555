//! Fetch (key 1): reads are run by the shards that own the partitions;
//! recent data comes back as a file range that the connection `sendfile`s
//! to the socket, older data as bytes read through io_uring. Long poll:
//! while fewer than `min_bytes` are ready, the fetch waits on the owners
//! for an append, until `max_wait_ms`.
//!
//! Fetch sessions (KIP-227) are not kept: every response carries session id
//! 0, which tells clients to send full fetch requests.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use sluice_storage::SharedSlice;

use super::{encode_err, per_partition};
use crate::partition::Partition;
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::{encode, file_placeholder, Response, MAX_FILE_CHUNK};
use crate::shard::{self, invoke_on};
use crate::topics::TopicPartition;

enum Records {
    None,
    File(SharedSlice),
    Bytes(Bytes),
}

impl Records {
    fn len(&self) -> usize {
        match self {
            Records::None => 0,
            Records::File(f) => f.len,
            Records::Bytes(b) => b.len(),
        }
    }
}

struct PartResult {
    error: Option<ResponseError>,
    high_watermark: i64,
    log_start_offset: i64,
    records: Records,
}

impl PartResult {
    fn error(error: ResponseError) -> PartResult {
        PartResult { error: Some(error), high_watermark: -1, log_start_offset: -1, records: Records::None }
    }
}

/// One partition asked for.
struct Want {
    topic: usize,
    tp: Option<TopicPartition>,
    owner: Option<usize>,
    partition: i32,
    offset: i64,
    max_bytes: usize,
    /// The leader epoch the client knows (v9+; -1: unchecked).
    current_epoch: i32,
    error: Option<ResponseError>,
}

const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: FetchRequest = decode_body(frame)?;
    let shard = shard::current();
    let table = shard.topics();
    let by_id = frame.version >= 13;
    // KIP-74: no partition may fill more than the whole response may; the
    // first batch still goes out when it is larger than both (storage reads
    // at least one batch).
    let response_max = req.max_bytes.max(0) as usize;
    let mut topic_names = Vec::new();
    let mut wants = Vec::new();
    for (ti, t) in req.topics.iter().enumerate() {
        let meta = if by_id { table.by_id(&t.topic_id) } else { table.get(t.topic.0.as_str()) };
        topic_names.push(meta.map_or_else(|| t.topic.0.to_string(), |m| m.name.clone()));
        for p in &t.partitions {
            let (tp, owner, error) = match meta {
                None if by_id => (None, None, Some(ResponseError::UnknownTopicId)),
                None => (None, None, Some(ResponseError::UnknownTopicOrPartition)),
                Some(m) => match table.owner(&m.name, p.partition) {
                    Some(o) => (Some(TopicPartition::new(&m.name, p.partition)), Some(o), None),
                    None => (None, None, Some(table.not_here(&m.name, p.partition))),
                },
            };
            wants.push(Want {
                topic: ti,
                tp,
                owner,
                partition: p.partition,
                offset: p.fetch_offset,
                max_bytes: (p.partition_max_bytes.max(0) as usize).min(response_max).min(MAX_FILE_CHUNK),
                current_epoch: p.current_leader_epoch,
                error,
            });
        }
    }
    let mut resp = FetchResponse::default();
    if req.session_id != 0 || req.session_epoch > 0 {
        resp.error_code = FETCH_SESSION_ID_NOT_FOUND;
        return encode(frame, &resp, Vec::new()).map_err(encode_err);
    }
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let min_bytes = req.min_bytes.max(0) as usize;
    let mut results = read_all(&wants).await;
    loop {
        let ready: usize = results.iter().map(|r| r.records.len()).sum();
        let errors = results.iter().any(|r| r.error.is_some());
        if ready >= min_bytes.max(1) || errors || Instant::now() >= deadline || wants.is_empty() {
            break;
        }
        wait_for_data(&wants, deadline).await;
        results = read_all(&wants).await;
    }
    // `max_bytes` over the whole response; the first data always goes out.
    let mut budget = response_max;
    let mut any = false;
    for r in results.iter_mut() {
        let len = r.records.len();
        if len == 0 {
            continue;
        }
        // As Kafka: a later partition whose batches do not fit is left for
        // the next fetch; smaller ones after it may still fill the budget.
        if any && len > budget {
            r.records = Records::None;
            continue;
        }
        budget = budget.saturating_sub(len);
        any = true;
    }
    let mut files = Vec::new();
    let mut topics: Vec<FetchableTopicResponse> = req
        .topics
        .iter()
        .zip(&topic_names)
        .map(|(t, name)| {
            FetchableTopicResponse::default()
                .with_topic(TopicName(StrBytes::from_string(name.clone())))
                .with_topic_id(t.topic_id)
        })
        .collect();
    let mut endpoints = std::collections::BTreeMap::new();
    for (w, r) in wants.iter().zip(results) {
        let elsewhere = (frame.version >= 16 && r.error == Some(ResponseError::NotLeaderOrFollower))
            .then(|| super::leader_elsewhere(&shard, &table, &topic_names[w.topic], w.partition))
            .flatten();
        let current_leader = match elsewhere {
            Some((epoch, b)) => {
                let c = LeaderIdAndEpoch::default().with_leader_id(BrokerId(b.id)).with_leader_epoch(epoch);
                endpoints.insert(b.id, b);
                c
            }
            None => LeaderIdAndEpoch::default(),
        };
        let records = match r.records {
            Records::None => Some(Bytes::new()),
            Records::Bytes(b) => Some(b),
            Records::File(f) => {
                let placeholder = file_placeholder(f.len);
                files.push(f);
                Some(placeholder)
            }
        };
        let hw = r.high_watermark;
        topics[w.topic].partitions.push(
            PartitionData::default()
                .with_partition_index(w.partition)
                .with_error_code(r.error.map_or(0, |e| e.code()))
                .with_high_watermark(hw)
                .with_last_stable_offset(hw)
                .with_log_start_offset(if frame.version >= 5 { r.log_start_offset } else { -1 })
                .with_aborted_transactions(Some(Vec::new()))
                .with_current_leader(current_leader)
                .with_records(records),
        );
    }
    resp.responses = topics;
    resp.node_endpoints = endpoints
        .into_values()
        .map(|b| {
            NodeEndpoint::default()
                .with_node_id(BrokerId(b.id))
                .with_host(StrBytes::from_string(b.host))
                .with_port(b.port as i32)
                .with_rack(b.rack.map(StrBytes::from_string))
        })
        .collect();
    encode(frame, &resp, files).map_err(encode_err)
}

/// Reads every partition on its owner, all at once.
async fn read_all(wants: &[Want]) -> Vec<PartResult> {
    let items: Vec<_> = wants
        .iter()
        .filter(|w| w.error.is_none())
        .filter_map(|w| Some((w.tp.clone()?, (w.tp.clone()?, w.offset, w.max_bytes, w.current_epoch))))
        .collect();
    let mut read = per_partition(items, |p, (tp, offset, max_bytes, current)| async move {
        p.check_leader_epoch(&tp, current)?;
        Ok(read_one(&p, offset, max_bytes).await)
    })
    .await
    .into_iter();
    wants
        .iter()
        .map(|w| match w.error {
            Some(e) => PartResult::error(e),
            None if w.tp.is_none() => PartResult::error(ResponseError::UnknownTopicOrPartition),
            None => read.next().expect("a read per partition").unwrap_or_else(PartResult::error),
        })
        .collect()
}

/// On the owning shard: read one partition.
async fn read_one(p: &Partition, offset: i64, max_bytes: usize) -> PartResult {
    let read = p.read(offset, max_bytes).await;
    let (high_watermark, log_start_offset) = (p.offsets.high_watermark.get(), p.offsets.log_start.get());
    let mut r = PartResult { error: None, high_watermark, log_start_offset, records: Records::None };
    match read {
        Ok(None) => {}
        // A file range must fit the encoder's placeholder; a larger first
        // batch (a topic with a huge max.message.bytes) goes as bytes.
        Ok(Some(slice)) if slice.in_active_segment && slice.len <= MAX_FILE_CHUNK => {
            r.records = Records::File(slice.shared())
        }
        Ok(Some(slice)) => match slice.read().await {
            Ok(bytes) => r.records = Records::Bytes(Bytes::copy_from_slice(&bytes)),
            Err(e) => {
                tracing::error!(%e, "fetch read failed");
                r.error = Some(ResponseError::KafkaStorageError);
            }
        },
        Err((code, msg)) => {
            tracing::debug!(?code, %msg, "fetch refused");
            r.error = Some(code);
        }
    }
    r
}

/// Waits until any wanted partition gets data past its fetch offset, or the
/// deadline passes.
async fn wait_for_data(wants: &[Want], deadline: Instant) {
    let (tx, rx) = flume::bounded::<()>(1);
    let mut by_owner: BTreeMap<usize, Vec<(TopicPartition, i64)>> = BTreeMap::new();
    for w in wants {
        if let (Some(owner), Some(tp)) = (w.owner, &w.tp) {
            by_owner.entry(owner).or_default().push((tp.clone(), w.offset));
        }
    }
    for (owner, items) in by_owner {
        let tx = tx.clone();
        invoke_on(owner, move || async move {
            let shard = shard::current();
            for (tp, offset) in items {
                if let Some(p) = shard.partition(&tp) {
                    if p.offsets.high_watermark.get() > offset {
                        let _ = tx.try_send(());
                    } else {
                        p.subscribe(tx.clone());
                    }
                }
            }
        })
        .await;
    }
    drop(tx);
    let left = deadline.saturating_duration_since(Instant::now());
    futures_lite::future::or(
        async {
            let _ = rx.recv_async().await;
        },
        glommio::timer::sleep(left),
    )
    .await;
}
