//! ElectLeaders (key 43, KIP-460; `kafka-leader-election.sh`). A preferred
//! election asks the first replica to take over from the partition's Raft
//! leader (`cluster::request_leader_transfer`) and answers once this
//! broker's metadata names that replica leader, or the request's timeout
//! passes. Raft never elects a replica that lacks committed entries, so an
//! unclean election has nothing to do: it is "not needed" while a leader
//! exists and impossible otherwise.

use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::respond;
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;
use crate::shard;

const PREFERRED: i8 = 0;
/// The longest a request waits for its elections, whatever it asks.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// How often an unfinished transfer is asked for again.
const RETRY: Duration = Duration::from_millis(500);

/// Why a partition's election was not held, as the response says it.
type Refusal = (ResponseError, &'static str);
type Outcome = Result<(), Refusal>;
/// A transfer to ask for: (topic id, leader, preferred replica).
type Transfer = (uuid::Uuid, i32, i32);

/// What one partition's election needs, decided from this broker's copy of
/// the metadata: the transfer to ask for, or why there is none.
fn plan(topic: &str, partition: i32, election: i8) -> Result<Transfer, Refusal> {
    let shard = shard::current();
    let table = shard.topics();
    let meta = table.get(topic).ok_or((ResponseError::UnknownTopicOrPartition, "no such topic"))?;
    let p = usize::try_from(partition)
        .ok()
        .and_then(|i| meta.partitions.get(i))
        .ok_or((ResponseError::UnknownTopicOrPartition, "no such partition"))?;
    let view = super::partition_view(&shard, p);
    let preferred = view.replicas.first().copied().unwrap_or(-1);
    if election != PREFERRED {
        return match view.leader {
            l if l >= 0 => Err((ResponseError::ElectionNotNeeded, "the partition has a leader")),
            _ => Err((ResponseError::EligibleLeadersNotAvailable, "no replica with every committed record is live")),
        };
    }
    if view.leader == preferred {
        return Err((ResponseError::ElectionNotNeeded, "the preferred replica leads already"));
    }
    if view.leader < 0 || !view.isr.contains(&preferred) || view.offline.contains(&preferred) {
        return Err((ResponseError::PreferredLeaderNotAvailable, "the preferred replica is not in sync"));
    }
    Ok((meta.id, view.leader, preferred))
}

fn led_by(topic: &str, partition: i32, id: uuid::Uuid, want: i32) -> bool {
    let shard = shard::current();
    let table = shard.topics();
    let Some(meta) = table.get(topic).filter(|m| m.id == id) else { return false };
    meta.partitions.get(partition as usize).is_some_and(|p| super::partition_view(&shard, p).leader == want)
}

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: ElectLeadersRequest = decode_body(frame)?;
    let election = if frame.version >= 1 { req.election_type } else { PREFERRED };
    let all = req.topic_partitions.is_none();
    let asked: Vec<(String, i32)> = match req.topic_partitions {
        Some(ts) => ts.iter().flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p))).collect(),
        None => {
            let table = shard::current().topics();
            let mut v = Vec::new();
            for (name, meta) in table.topics.iter().filter(|(_, m)| !m.internal) {
                v.extend((0..meta.partitions.len() as i32).map(|p| (name.clone(), p)));
            }
            v
        }
    };
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(asked.len());
    let mut waiting: Vec<(usize, uuid::Uuid, i32, i32)> = Vec::new();
    for (i, (topic, partition)) in asked.iter().enumerate() {
        match plan(topic, *partition, election) {
            Ok((id, leader, preferred)) => {
                waiting.push((i, id, leader, preferred));
                outcomes.push(Ok(()));
            }
            Err(e) => outcomes.push(Err(e)),
        }
    }
    let wait = Duration::from_millis(req.timeout_ms.max(0) as u64).min(MAX_WAIT);
    let deadline = Instant::now() + wait;
    let mut asked_at: Option<Instant> = None;
    loop {
        waiting.retain(|(i, id, _, want)| !led_by(&asked[*i].0, asked[*i].1, *id, *want));
        if waiting.is_empty() || Instant::now() >= deadline {
            break;
        }
        // raft-rs abandons a transfer the transferee does not complete within
        // an election timeout (it may still be catching up): ask again.
        if asked_at.is_none_or(|t| t.elapsed() >= RETRY) {
            for (i, id, _, preferred) in &waiting {
                crate::cluster::request_leader_transfer(*id, asked[*i].1, *preferred);
            }
            asked_at = Some(Instant::now());
        }
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
    for (i, _, leader, preferred) in waiting {
        tracing::info!(topic = %asked[i].0, partition = asked[i].1, leader, preferred, ms = wait.as_millis() as u64, "preferred election not done in time");
        outcomes[i] = Err((ResponseError::RequestTimedOut, "the preferred replica did not take over in time"));
    }
    // As Kafka: asked for every partition, only those with news are listed.
    let mut results: Vec<ReplicaElectionResult> = Vec::new();
    for ((topic, partition), outcome) in asked.into_iter().zip(outcomes) {
        if all && matches!(outcome, Err((ResponseError::ElectionNotNeeded, _))) {
            continue;
        }
        let (code, msg) = match outcome {
            Ok(()) => (0, None),
            Err((e, m)) => (e.code(), Some(StrBytes::from_static_str(m))),
        };
        let r = PartitionResult::default().with_partition_id(partition).with_error_code(code).with_error_message(msg);
        match results.last_mut().filter(|t| t.topic.0.as_str() == topic) {
            Some(t) => t.partition_result.push(r),
            None => results.push(
                ReplicaElectionResult::default()
                    .with_topic(TopicName(StrBytes::from_string(topic)))
                    .with_partition_result(vec![r]),
            ),
        }
    }
    respond(frame, &ElectLeadersResponse::default().with_replica_election_results(results))
}
