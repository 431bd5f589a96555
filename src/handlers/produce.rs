//! Produce (key 0): batches are split per partition, copied once out of the
//! request frame, and appended by the shard that owns each partition. With
//! `acks=-1` the owner answers after the batch is flushed; with `acks=0`
//! there is no response at all.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;
use sluice_storage::batch::BatchPrefix;

use super::{per_partition, respond};
use crate::partition::{PartitionError, ProduceOutcome};
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;
use crate::shard;
use crate::topics::TopicPartition;

/// Records named by their index in the batch, each with why (KIP-467).
type RecordErrors = Vec<(i32, String)>;

/// A partition's place in the response: topic index, partition, outcome,
/// and the records a refusal names.
type Slot = (usize, i32, Option<Result<ProduceOutcome, PartitionError>>, RecordErrors);

/// Compacted topics need a key on every record (Kafka's LogValidator);
/// compressed batches are decompressed to check. Every keyless record is
/// named, as Kafka names them, so clients fail those and not the others.
fn check_keys(batches: &[Vec<u8>], tp: &str) -> Result<(), (PartitionError, RecordErrors)> {
    let mut index = 0i32;
    let mut bad = Vec::new();
    let why = format!("Compacted topic cannot accept message without key in topic partition {tp}");
    for b in batches {
        let mut buf = Bytes::copy_from_slice(b);
        let set = RecordBatchDecoder::decode(&mut buf)
            .map_err(|e| ((ResponseError::CorruptMessage, format!("undecodable record batch: {e}")), Vec::new()))?;
        for r in &set.records {
            if r.key.is_none() {
                bad.push((index, why.clone()));
            }
            index += 1;
        }
    }
    if bad.is_empty() {
        return Ok(());
    }
    // Kafka's partition-level message, with its RecordError list.
    let shown: Vec<String> =
        bad.iter().take(3).map(|(i, m)| format!("RecordError(batchIndex={i}, message='{m}')")).collect();
    let msg = format!(
        "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
        bad.len(),
        shown.join(", ")
    );
    Err(((ResponseError::InvalidRecord, msg), bad))
}

/// Splits a partition's records into whole v2 batches.
fn split_batches(records: &Bytes) -> Result<Vec<Vec<u8>>, PartitionError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < records.len() {
        let p = BatchPrefix::parse(&records[at..])
            .ok_or((ResponseError::CorruptMessage, format!("no v2 record batch at byte {at}")))?;
        if at + p.size > records.len() {
            return Err((ResponseError::CorruptMessage, "record batch runs past the end of the request".into()));
        }
        out.push(records[at..at + p.size].to_vec());
        at += p.size;
    }
    if out.is_empty() {
        return Err((ResponseError::CorruptMessage, "no records".into()));
    }
    Ok(out)
}

/// `min.insync.replicas` (the topic's, else the broker's) against the
/// partition's ISR: an `acks=all` write that fewer replicas would hold is
/// refused with NOT_ENOUGH_REPLICAS, as Kafka refuses it. As in Kafka 4
/// (KIP-966), the minimum is never more than the replication factor.
fn too_few_in_sync(topic: &str, partition: i32) -> Option<(ResponseError, String)> {
    let shard = shard::current();
    let table = shard.topics();
    let meta = table.get(topic)?;
    let min: usize = meta
        .configs
        .get("min.insync.replicas")
        .cloned()
        .or_else(|| shard.config.log_defaults.default_value("min.insync.replicas"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let view = super::partition_view(&shard, meta.partitions.get(usize::try_from(partition).ok()?)?);
    let (isr, min) = (view.isr, min.min(view.replicas.len()));
    (isr.len() < min).then(|| {
        (
            ResponseError::NotEnoughReplicas,
            format!(
                "The size of the current ISR : {} is insufficient to satisfy the min.isr requirement of {min} for partition {topic}-{partition}, live replica(s) broker.id are : {isr:?}",
                isr.len()
            ),
        )
    })
}

pub async fn handle(frame: &RequestFrame) -> Result<Option<Response>, Close> {
    let req: ProduceRequest = decode_body(frame)?;
    let shard = shard::current();
    let table = shard.topics();
    let acks = req.acks;
    let compacted = |topic: &str| {
        let policy = table.get(topic).and_then(|m| m.configs.get("cleanup.policy").cloned());
        policy.unwrap_or_else(|| shard.config.log_defaults.cleanup_policy.clone()).contains("compact")
    };
    // Slot per partition in request order; filled by errors or owners.
    let mut slots: Vec<Slot> = Vec::new();
    let mut work: Vec<(usize, TopicPartition, Vec<Vec<u8>>)> = Vec::new();
    for (ti, t) in req.topic_data.iter().enumerate() {
        let name = t.name.0.as_str();
        for p in &t.partition_data {
            let slot = slots.len();
            let mut named = RecordErrors::new();
            let early = if !matches!(acks, -1..=1) {
                Some((ResponseError::InvalidRequiredAcks, format!("acks={acks} is not -1, 0 or 1")))
            } else if req.transactional_id.is_some() {
                Some((ResponseError::TransactionalIdAuthorizationFailed, "transactions are not supported yet".into()))
            } else if table.get(name).is_some_and(|t| t.internal) {
                // Only the coordinator writes its records (as Kafka refuses).
                Some((ResponseError::InvalidTopicException, format!("Cannot append to internal topic {name}")))
            } else {
                None
            };
            let owner = table.owner(name, p.index);
            let early =
                early.or_else(|| if acks == -1 && owner.is_some() { too_few_in_sync(name, p.index) } else { None });
            let r = match (early, owner, &p.records) {
                (Some(e), _, _) => Some(Err(e)),
                (None, None, _) => Some(Err(match table.not_here(name, p.index) {
                    ResponseError::NotLeaderOrFollower => (
                        ResponseError::NotLeaderOrFollower,
                        format!("This server is not the leader for {name}-{}.", p.index),
                    ),
                    e => (e, format!("{name}-{} does not exist", p.index)),
                })),
                (None, Some(_), None) => Some(Err((ResponseError::CorruptMessage, "null records".into()))),
                (None, Some(_), Some(records)) => {
                    match split_batches(records).map_err(|e| (e, Vec::new())).and_then(|b| {
                        if compacted(name) {
                            check_keys(&b, &format!("{name}-{}", p.index))?;
                        }
                        Ok(b)
                    }) {
                        Err((e, bad)) => {
                            named = bad;
                            Some(Err(e))
                        }
                        Ok(batches) => {
                            work.push((slot, TopicPartition::new(name, p.index), batches));
                            None
                        }
                    }
                }
            };
            slots.push((ti, p.index, r, named));
        }
    }
    let (slot_of, items): (Vec<usize>, Vec<_>) =
        work.into_iter().map(|(slot, tp, batches)| (slot, (tp, batches))).unzip();
    let done = per_partition(items, move |p, batches| async move { Ok(p.append(batches, acks).await) }).await;
    for (slot, r) in slot_of.into_iter().zip(done) {
        slots[slot].2 = Some(r.unwrap_or_else(|code| Err((code, "partition is not open here".into()))));
    }
    if acks == 0 {
        return Ok(None);
    }
    let mut topics: Vec<TopicProduceResponse> = req
        .topic_data
        .iter()
        .map(|t| TopicProduceResponse::default().with_name(t.name.clone()).with_topic_id(t.topic_id))
        .collect();
    let v = frame.version;
    let mut endpoints = std::collections::BTreeMap::new();
    for (ti, index, r, named) in slots {
        let mut p = PartitionProduceResponse::default().with_index(index);
        if v >= 8 {
            p.record_errors = named
                .into_iter()
                .map(|(i, m)| {
                    BatchIndexAndErrorMessage::default()
                        .with_batch_index(i)
                        .with_batch_index_error_message(Some(StrBytes::from_string(m)))
                })
                .collect();
        }
        let p = match r.expect("every partition answered") {
            Ok(o) => p
                .with_base_offset(o.base_offset)
                .with_log_append_time_ms(o.log_append_time)
                .with_log_start_offset(if v >= 5 { o.log_start_offset } else { -1 }),
            Err((code, msg)) => {
                tracing::debug!(partition = index, ?code, %msg, "produce refused");
                let elsewhere = (v >= 10 && code == ResponseError::NotLeaderOrFollower)
                    .then(|| super::leader_elsewhere(&shard, &table, req.topic_data[ti].name.0.as_str(), index))
                    .flatten();
                let p = match elsewhere {
                    Some((epoch, b)) => {
                        let current =
                            LeaderIdAndEpoch::default().with_leader_id(BrokerId(b.id)).with_leader_epoch(epoch);
                        endpoints.insert(b.id, b);
                        p.with_current_leader(current)
                    }
                    None => p,
                };
                p.with_error_code(code.code())
                    .with_base_offset(-1)
                    .with_log_append_time_ms(-1)
                    .with_log_start_offset(-1)
                    .with_error_message(if v >= 8 { Some(StrBytes::from_string(msg)) } else { None })
            }
        };
        topics[ti].partition_responses.push(p);
    }
    let node_endpoints = endpoints
        .into_values()
        .map(|b| {
            NodeEndpoint::default()
                .with_node_id(BrokerId(b.id))
                .with_host(StrBytes::from_string(b.host))
                .with_port(b.port as i32)
                .with_rack(b.rack.map(StrBytes::from_string))
        })
        .collect();
    respond(frame, &ProduceResponse::default().with_responses(topics).with_node_endpoints(node_endpoints)).map(Some)
}
