//! Topic changes in a cluster (CreateTopics, DeleteTopics,
//! CreatePartitions, AlterConfigs): whichever broker receives one sends it
//! to the active controller, which checks it against the metadata image
//! with Kafka's rules, places new replicas on the live brokers, writes the
//! records and answers once they are applied. `plan` is the controller's
//! half; `create_topics` and the others are the receiving broker's.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use serde::{Deserialize, Serialize};

use super::image::{MetadataImage, Record};
use crate::config::BrokerConfig;
use crate::shard;
use crate::topics::{self, ConfigOp, NewTopic, PartitionMeta, TopicMeta, TopicResult, OFFSETS_TOPIC};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum AdminRequest {
    CreateTopics {
        topics: Vec<NewTopic>,
        validate_only: bool,
    },
    DeleteTopics {
        names: Vec<String>,
    },
    CreatePartitions {
        asks: Vec<(String, i32)>,
        validate_only: bool,
    },
    /// (topic, ops, whether the ops replace every config)
    AlterConfigs {
        changes: Vec<(String, Vec<ConfigOp>, bool)>,
        validate_only: bool,
    },
    /// `__consumer_offsets`, created on the first FindCoordinator.
    EnsureOffsetsTopic,
    /// A block of producer ids for a broker (Kafka's AllocateProducerIds).
    AllocateProducerIds {
        broker: i32,
    },
    /// Partitions' replicas are to become these (`None`: cancel).
    Reassign {
        moves: Vec<(String, i32, Option<Vec<i32>>)>,
    },
    /// A partition's leader reports its group reached the target.
    Reassigned {
        name: String,
        id: uuid::Uuid,
        partition: i32,
        replicas: Vec<i32>,
    },
    /// A replicated partition's leader reports itself, its epoch and ISR
    /// (Kafka's AlterPartition).
    PartitionState {
        name: String,
        id: uuid::Uuid,
        partition: i32,
        leader: i32,
        epoch: i32,
        isr: Vec<i32>,
    },
}

/// Kafka's producer-id block size.
pub const PRODUCER_ID_BLOCK: i64 = 1000;

/// What became of one item of a request: a topic as it now is, or a
/// producer-id block.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Outcome {
    Topic(TopicOutcome),
    ProducerIds {
        start: i64,
        len: i64,
    },
    /// Taken (a partition state report).
    Done,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TopicOutcome {
    pub name: String,
    pub id: uuid::Uuid,
    pub partitions: i32,
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
}

pub type AdminResult = Result<Outcome, (i16, String)>;

/// What must hold in the image once the records are applied for an item
/// to have taken effect (a leader that lost its term may have lost them).
#[derive(Clone, Debug)]
pub enum Check {
    Exists { name: String, id: uuid::Uuid, partitions: usize, configs: BTreeMap<String, String> },
    Gone { name: String, id: uuid::Uuid },
    Block { broker: i32, start: i64 },
    State { name: String, partition: i32, state: super::image::PartitionState },
    Moving { name: String, id: uuid::Uuid, partition: i32, target: Option<Vec<i32>> },
}

impl Check {
    pub fn holds(&self, image: &MetadataImage) -> bool {
        match self {
            Check::Exists { name, id, partitions, configs } => image
                .topics
                .get(name)
                .is_some_and(|t| t.id == *id && t.partitions.len() >= *partitions && t.configs == *configs),
            Check::Gone { name, id } => image.topics.get(name).is_none_or(|t| t.id != *id),
            Check::Block { broker, start } => image.producer_id_blocks.get(broker) == Some(start),
            Check::State { name, partition, state } => {
                image.topics.get(name).and_then(|t| t.states.get(partition)) == Some(state)
            }
            Check::Moving { name, id, partition, target } => {
                // Recorded as the target, or already done (`None`: done).
                image.topics.get(name).filter(|t| t.id == *id).is_some_and(|t| match t.moving.get(partition) {
                    Some(m) => Some(&m.target) == target.as_ref(),
                    None => target.is_none() || target.as_ref() == t.partitions.get(*partition as usize),
                })
            }
        }
    }

    /// The error for an item whose records did not take effect.
    pub fn failed(&self, image: &MetadataImage) -> (i16, String) {
        match self {
            Check::Exists { name, id, .. } if image.topics.get(name).is_some_and(|t| t.id != *id) => {
                (ResponseError::TopicAlreadyExists.code(), format!("Topic '{name}' already exists."))
            }
            _ => (ResponseError::NotController.code(), "The active controller changed; try again.".into()),
        }
    }
}

/// The controller's answer to a request before anything is written: the
/// records to propose, and per item its result and what must hold after.
pub struct Plan {
    pub records: Vec<Record>,
    pub items: Vec<(AdminResult, Option<Check>)>,
    /// The end of the producer-id block proposed, if one is.
    pub producer_ids_end: Option<i64>,
}

fn err(e: (ResponseError, String)) -> (AdminResult, Option<Check>) {
    (Err((e.0.code(), e.1)), None)
}

/// Per partition, its replicas: the live brokers taken round-robin in an
/// order that alternates racks (Kafka's rack-aware assignment), the first
/// replicas of partition 0 at `start`.
pub fn assign(brokers: &[(i32, Option<String>)], partitions: usize, rf: usize, start: usize) -> Vec<Vec<i32>> {
    let mut by_rack: BTreeMap<Option<&str>, Vec<i32>> = BTreeMap::new();
    let mut sorted = brokers.to_vec();
    sorted.sort();
    for (id, rack) in &sorted {
        by_rack.entry(rack.as_deref()).or_default().push(*id);
    }
    let mut order = Vec::with_capacity(sorted.len());
    for i in 0.. {
        let before = order.len();
        order.extend(by_rack.values().filter_map(|ids| ids.get(i)));
        if order.len() == before {
            break;
        }
    }
    let n = order.len().max(1);
    (0..partitions).map(|p| (0..rf.min(n)).map(|j| order[(start + p + j) % n]).collect()).collect()
}

impl MetadataImage {
    /// The live brokers with their racks, by id.
    fn placeable(&self) -> Vec<(i32, Option<String>)> {
        self.unfenced().map(|b| (b.id, b.rack.clone())).collect()
    }

    /// Where the next topic's first partition goes: the live broker that is
    /// preferred leader of the fewest partitions, so leaders spread.
    fn start_for(&self, brokers: &[(i32, Option<String>)]) -> usize {
        let mut leads: BTreeMap<i32, usize> = brokers.iter().map(|(id, _)| (*id, 0)).collect();
        for t in self.topics.values() {
            for r in &t.partitions {
                if let Some(n) = r.first().and_then(|l| leads.get_mut(l)) {
                    *n += 1;
                }
            }
        }
        // The brokers in placement order; the first with the fewest leads.
        let order = assign(brokers, brokers.len(), 1, 0);
        (0..order.len()).min_by_key(|&i| (leads[&order[i][0]], i)).unwrap_or(0)
    }
}

/// `pid_floor`: the first producer id not yet proposed (the image's next
/// free one, or past blocks this leader proposed that are not applied yet).
pub fn plan(image: &MetadataImage, config: &BrokerConfig, req: AdminRequest, pid_floor: i64) -> Plan {
    let mut records = Vec::new();
    let mut items = Vec::new();
    let mut producer_ids_end = None;
    let brokers = image.placeable();
    match req {
        AdminRequest::CreateTopics { topics, validate_only } => {
            let mut names: BTreeSet<String> = image.topics.keys().cloned().collect();
            for t in topics {
                match topics::check_new_topic(config, names.iter(), brokers.len(), &t) {
                    Err(e) => items.push(err(e)),
                    Ok((partitions, rf)) => {
                        let id = uuid::Uuid::new_v4();
                        let outcome = TopicOutcome {
                            name: t.name.clone(),
                            id,
                            partitions,
                            replication_factor: rf,
                            configs: t.configs.clone(),
                        };
                        if validate_only {
                            items.push((Ok(Outcome::Topic(outcome)), None));
                            continue;
                        }
                        let replicas = assign(
                            &brokers,
                            partitions as usize,
                            rf as usize,
                            image.start_for(&brokers) + records.len(),
                        );
                        let check = Check::Exists {
                            name: t.name.clone(),
                            id,
                            partitions: partitions as usize,
                            configs: t.configs.clone(),
                        };
                        names.insert(t.name.clone());
                        records.push(Record::CreateTopic {
                            name: t.name,
                            id,
                            replicas,
                            configs: t.configs,
                            internal: false,
                        });
                        items.push((Ok(Outcome::Topic(outcome)), Some(check)));
                    }
                }
            }
        }
        AdminRequest::AllocateProducerIds { broker } => {
            let start = pid_floor.max(image.next_producer_id);
            records.push(Record::ProducerIdBlock { broker, start, len: PRODUCER_ID_BLOCK });
            producer_ids_end = Some(start + PRODUCER_ID_BLOCK);
            items.push((
                Ok(Outcome::ProducerIds { start, len: PRODUCER_ID_BLOCK }),
                Some(Check::Block { broker, start }),
            ));
        }
        AdminRequest::PartitionState { name, id, partition, leader, epoch, isr } => {
            let current = image.topics.get(&name).filter(|t| t.id == id);
            match current {
                Some(t) if (0..t.partitions.len() as i32).contains(&partition) => {
                    let state = super::image::PartitionState { leader, epoch, isr: isr.clone() };
                    if t.states.get(&partition).is_some_and(|s| s.epoch > epoch) {
                        items.push(err((ResponseError::FencedLeaderEpoch, format!("epoch {epoch} is stale"))));
                    } else if t.states.get(&partition) == Some(&state) {
                        items.push((Ok(Outcome::Done), None));
                    } else {
                        records.push(Record::PartitionState { name: name.clone(), id, partition, leader, epoch, isr });
                        items.push((Ok(Outcome::Done), Some(Check::State { name, partition, state })));
                    }
                }
                _ => items.push(err((ResponseError::UnknownTopicOrPartition, format!("{name}-{partition}")))),
            }
        }
        AdminRequest::Reassign { moves } => {
            for (name, partition, target) in moves {
                match check_reassignment(image, &name, partition, target.as_deref()) {
                    Err(e) => items.push(err(e)),
                    Ok((id, target)) => {
                        let check = Check::Moving { name: name.clone(), id, partition, target: Some(target.clone()) };
                        records.push(Record::Reassign { name, id, partition, target });
                        items.push((Ok(Outcome::Done), Some(check)));
                    }
                }
            }
        }
        AdminRequest::Reassigned { name, id, partition, replicas } => {
            let moving = image.topics.get(&name).filter(|t| t.id == id).and_then(|t| t.moving.get(&partition));
            match moving {
                Some(m) if m.target == replicas => {
                    let check = Check::Moving { name: name.clone(), id, partition, target: None };
                    records.push(Record::Reassigned { name, id, partition, replicas });
                    items.push((Ok(Outcome::Done), Some(check)));
                }
                _ => items.push(err((ResponseError::NoReassignmentInProgress, format!("{name}-{partition}")))),
            }
        }
        AdminRequest::EnsureOffsetsTopic => {
            // As Kafka: not made until enough brokers are up for its
            // replication factor (a smaller quorum caps it).
            let voters = config.quorum.as_ref().map_or(1, |q| q.voters.len());
            let rf = (config.offsets_topic_replication_factor.max(1) as usize).min(voters.max(1));
            if !image.topics.contains_key(OFFSETS_TOPIC) && brokers.len() >= rf {
                let id = uuid::Uuid::new_v4();
                let partitions = config.offsets_topic_num_partitions.max(1) as usize;
                let configs = topics::offsets_topic_configs(config.offsets_topic_segment_bytes);
                let replicas = assign(&brokers, partitions, rf, image.start_for(&brokers));
                let check = Check::Exists { name: OFFSETS_TOPIC.into(), id, partitions, configs: configs.clone() };
                records.push(Record::CreateTopic {
                    name: OFFSETS_TOPIC.into(),
                    id,
                    replicas,
                    configs: configs.clone(),
                    internal: true,
                });
                let outcome = TopicOutcome {
                    name: OFFSETS_TOPIC.into(),
                    id,
                    partitions: partitions as i32,
                    replication_factor: rf as i16,
                    configs,
                };
                items.push((Ok(Outcome::Topic(outcome)), Some(check)));
            }
        }
        AdminRequest::DeleteTopics { names } => {
            for name in names {
                match image.topics.get(&name) {
                    None => items.push(err(topics::unknown_topic_to_delete())),
                    Some(t) if t.internal => items.push(err(topics::internal_topic_not_deletable(&name))),
                    Some(t) => {
                        records.push(Record::RemoveTopic { name: name.clone(), id: t.id });
                        let outcome = TopicOutcome {
                            name: name.clone(),
                            id: t.id,
                            partitions: t.partitions.len() as i32,
                            replication_factor: t.partitions.first().map_or(1, |r| r.len() as i16),
                            configs: t.configs.clone(),
                        };
                        items.push((Ok(Outcome::Topic(outcome)), Some(Check::Gone { name, id: t.id })));
                    }
                }
            }
        }
        AdminRequest::CreatePartitions { asks, validate_only } => {
            for (name, count) in asks {
                let Some(t) = image.topics.get(&name) else {
                    items.push(err((
                        ResponseError::UnknownTopicOrPartition,
                        format!("The topic '{name}' does not exist."),
                    )));
                    continue;
                };
                let current = t.partitions.len() as i32;
                if let Err(e) = topics::check_new_partitions(&name, t.internal, current, count) {
                    items.push(err(e));
                    continue;
                }
                let rf = t.partitions.first().map_or(1, |r| r.len());
                if rf > brokers.len() {
                    items.push(err((
                        ResponseError::InvalidReplicationFactor,
                        format!(
                            "Unable to replicate the partition {rf} time(s): only {} broker(s) are live.",
                            brokers.len()
                        ),
                    )));
                    continue;
                }
                let outcome = TopicOutcome {
                    name: name.clone(),
                    id: t.id,
                    partitions: count,
                    replication_factor: rf as i16,
                    configs: t.configs.clone(),
                };
                if validate_only {
                    items.push((Ok(Outcome::Topic(outcome)), None));
                    continue;
                }
                let start = image.start_for(&brokers);
                let replicas = assign(&brokers, (count - current) as usize, rf, start);
                records.push(Record::AddPartitions { name: name.clone(), id: t.id, replicas });
                let check = Check::Exists { name, id: t.id, partitions: count as usize, configs: t.configs.clone() };
                items.push((Ok(Outcome::Topic(outcome)), Some(check)));
            }
        }
        AdminRequest::AlterConfigs { changes, validate_only } => {
            for (name, ops, replace) in changes {
                let Some(t) = image.topics.get(&name) else {
                    items.push(err((
                        ResponseError::UnknownTopicOrPartition,
                        format!("The topic '{name}' does not exist."),
                    )));
                    continue;
                };
                match topics::apply_ops(&t.configs, &ops, replace, config) {
                    Err(e) => items.push(err((ResponseError::InvalidConfig, e))),
                    Ok(configs) => {
                        let outcome = TopicOutcome {
                            name: name.clone(),
                            id: t.id,
                            partitions: t.partitions.len() as i32,
                            replication_factor: t.partitions.first().map_or(1, |r| r.len() as i16),
                            configs: configs.clone(),
                        };
                        if validate_only || configs == t.configs {
                            items.push((Ok(Outcome::Topic(outcome)), None));
                            continue;
                        }
                        records.push(Record::TopicConfigs { name: name.clone(), id: t.id, configs: configs.clone() });
                        let check = Check::Exists { name, id: t.id, partitions: t.partitions.len(), configs };
                        items.push((Ok(Outcome::Topic(outcome)), Some(check)));
                    }
                }
            }
        }
    }
    Plan { records, items, producer_ids_end }
}

/// How long a receiving broker waits for the controller's answer and then
/// for its own copy of the metadata to show the change.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);
const VISIBLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends a request to the active controller (through this node's).
async fn send(req: AdminRequest) -> Result<Vec<AdminResult>, (ResponseError, String)> {
    let Some(events) = super::events() else {
        return Err((ResponseError::UnknownServerError, "no controller runs here".into()));
    };
    let (tx, rx) = flume::bounded(1);
    if events.send_async(super::controller::Event::Admin(req, tx)).await.is_err() {
        return Err((ResponseError::UnknownServerError, "the controller has stopped".into()));
    }
    match futures_lite::future::or(async { rx.recv_async().await.ok() }, async {
        glommio::timer::sleep(ANSWER_TIMEOUT).await;
        None
    })
    .await
    {
        Some(r) => r.map_err(|(code, msg)| {
            (ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError), msg)
        }),
        None => Err((ResponseError::RequestTimedOut, "the active controller did not answer in time".into())),
    }
}

/// Waits (bounded) until this broker's topic table satisfies `done`, so
/// that a client told "created" finds the topic here at once.
async fn until_visible(done: impl Fn(&topics::TopicTable) -> bool) {
    let start = Instant::now();
    while !done(&shard::current().topics()) && start.elapsed() < VISIBLE_TIMEOUT {
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
}

fn to_error(e: (i16, String)) -> (ResponseError, String) {
    (ResponseError::try_from_code(e.0).unwrap_or(ResponseError::UnknownServerError), e.1)
}

fn all_failed<T>(n: usize, e: (ResponseError, String)) -> Vec<Result<T, (ResponseError, String)>> {
    (0..n).map(|_| Err(e.clone())).collect()
}

/// The topics among the outcomes.
fn topics_of(results: &[AdminResult]) -> impl Iterator<Item = &TopicOutcome> {
    results.iter().flatten().filter_map(|o| match o {
        Outcome::Topic(t) => Some(t),
        Outcome::ProducerIds { .. } | Outcome::Done => None,
    })
}

/// An item's result as the topic handlers take it.
fn topic_result(r: AdminResult) -> TopicResult {
    match r {
        Ok(Outcome::Topic(o)) => Ok(meta_of(&o)),
        Ok(Outcome::ProducerIds { .. } | Outcome::Done) => {
            Err((ResponseError::UnknownServerError, "not a topic".into()))
        }
        Err(e) => Err(to_error(e)),
    }
}

fn meta_of(o: &TopicOutcome) -> Arc<TopicMeta> {
    let local = shard::current().topics().get(&o.name).filter(|m| m.id == o.id).cloned();
    local.unwrap_or_else(|| {
        Arc::new(TopicMeta {
            name: o.name.clone(),
            id: o.id,
            partitions: (0..o.partitions).map(|_| PartitionMeta::default()).collect(),
            replication_factor: o.replication_factor,
            configs: o.configs.clone(),
            internal: o.name == OFFSETS_TOPIC,
        })
    })
}

pub async fn create_topics(new: Vec<NewTopic>, validate_only: bool) -> Vec<TopicResult> {
    let n = new.len();
    let results = match send(AdminRequest::CreateTopics { topics: new, validate_only }).await {
        Ok(r) => r,
        Err(e) => return all_failed(n, e),
    };
    if !validate_only {
        let made: Vec<(String, uuid::Uuid)> = topics_of(&results).map(|o| (o.name.clone(), o.id)).collect();
        until_visible(|t| made.iter().all(|(name, id)| t.get(name).is_some_and(|m| m.id == *id))).await;
    }
    results.into_iter().map(topic_result).collect()
}

thread_local! {
    /// When this shard last asked for `__consumer_offsets`.
    static OFFSETS_ASKED: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// Asks for `__consumer_offsets`, at most once a second per shard however
/// often clients retry FindCoordinator meanwhile.
pub async fn ensure_offsets_topic() {
    let now = Instant::now();
    if OFFSETS_ASKED.with(|a| a.get()).is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
        return;
    }
    OFFSETS_ASKED.with(|a| a.set(Some(now)));
    if let Err(e) = send(AdminRequest::EnsureOffsetsTopic).await {
        tracing::debug!(?e, "creating __consumer_offsets: not yet");
    }
}

pub async fn delete_topics(names: Vec<String>) -> Vec<TopicResult> {
    let n = names.len();
    let results = match send(AdminRequest::DeleteTopics { names }).await {
        Ok(r) => r,
        Err(e) => return all_failed(n, e),
    };
    let gone: Vec<(String, uuid::Uuid)> = topics_of(&results).map(|o| (o.name.clone(), o.id)).collect();
    until_visible(|t| gone.iter().all(|(name, id)| t.get(name).is_none_or(|m| m.id != *id))).await;
    results.into_iter().map(topic_result).collect()
}

pub async fn create_partitions(
    asks: Vec<(String, i32)>,
    validate_only: bool,
) -> Vec<Result<(), (ResponseError, String)>> {
    let n = asks.len();
    let results = match send(AdminRequest::CreatePartitions { asks, validate_only }).await {
        Ok(r) => r,
        Err(e) => return all_failed(n, e),
    };
    if !validate_only {
        let grown: Vec<(String, i32)> = topics_of(&results).map(|o| (o.name.clone(), o.partitions)).collect();
        until_visible(|t| grown.iter().all(|(name, n)| t.get(name).is_some_and(|m| m.partitions.len() >= *n as usize)))
            .await;
    }
    results.into_iter().map(|r| topic_result(r).map(|_| ())).collect()
}

pub async fn alter_configs(
    changes: Vec<(String, Vec<ConfigOp>, bool)>,
    validate_only: bool,
) -> Vec<Result<(), (ResponseError, String)>> {
    let n = changes.len();
    let results = match send(AdminRequest::AlterConfigs { changes, validate_only }).await {
        Ok(r) => r,
        Err(e) => return all_failed(n, e),
    };
    if !validate_only {
        let set: Vec<(String, BTreeMap<String, String>)> =
            topics_of(&results).map(|o| (o.name.clone(), o.configs.clone())).collect();
        until_visible(|t| set.iter().all(|(name, c)| t.get(name).is_none_or(|m| m.configs == *c))).await;
    }
    results.into_iter().map(|r| topic_result(r).map(|_| ())).collect()
}

/// Kafka's checks of one partition's reassignment (KIP-455): the target's
/// brokers exist, appear once and are not none; `None` cancels one in
/// progress (the target is then the replicas before it). Only replicated
/// partitions move here: their Raft group carries the data over.
fn check_reassignment(
    image: &MetadataImage,
    name: &str,
    partition: i32,
    target: Option<&[i32]>,
) -> Result<(uuid::Uuid, Vec<i32>), (ResponseError, String)> {
    let unknown = || (ResponseError::UnknownTopicOrPartition, format!("{name}-{partition}"));
    let t = image.topics.get(name).ok_or_else(unknown)?;
    let current = t.partitions.get(usize::try_from(partition).map_err(|_| unknown())?).ok_or_else(unknown)?;
    let Some(target) = target else {
        if !t.moving.contains_key(&partition) {
            return Err((ResponseError::NoReassignmentInProgress, format!("no reassignment of {name}-{partition}")));
        }
        return Ok((t.id, current.clone()));
    };
    let invalid = |m: String| Err((ResponseError::InvalidReplicaAssignment, m));
    if target.is_empty() {
        return invalid("The replica list cannot be empty.".into());
    }
    if target.iter().collect::<BTreeSet<_>>().len() != target.len() {
        return invalid(format!("The proposed assignment {target:?} contains duplicate brokers."));
    }
    if let Some(b) = target.iter().find(|b| !image.brokers.contains_key(b)) {
        return invalid(format!("The proposed assignment contains non-existent broker {b}."));
    }
    if current.len() < 2 || target.len() < 2 {
        return invalid(format!(
            "{name}-{partition}: only partitions with two or more replicas are reassigned here (their Raft group copies the data); {current:?} to {target:?}"
        ));
    }
    Ok((t.id, target.to_vec()))
}

/// Sends partitions' reassignments (or cancellations) to the controller.
pub async fn reassign(moves: Vec<(String, i32, Option<Vec<i32>>)>) -> Vec<Result<(), (ResponseError, String)>> {
    let n = moves.len();
    match send(AdminRequest::Reassign { moves }).await {
        Ok(r) => r.into_iter().map(|r| r.map(|_| ()).map_err(to_error)).collect(),
        Err(e) => all_failed(n, e),
    }
}

/// The outcome of a request of one item that answers only "taken".
fn one_done(results: Vec<AdminResult>) -> Result<(), (ResponseError, String)> {
    match results.into_iter().next() {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(to_error(e)),
        None => Err((ResponseError::UnknownServerError, "no answer".into())),
    }
}

/// A partition's leader reports its group has the reassignment's target.
pub async fn report_reassigned(
    name: String,
    id: uuid::Uuid,
    partition: i32,
    replicas: Vec<i32>,
) -> Result<(), (ResponseError, String)> {
    one_done(send(AdminRequest::Reassigned { name, id, partition, replicas }).await?)
}

/// A replicated partition's leader reports its leadership and ISR.
pub async fn report_partition_state(
    name: String,
    id: uuid::Uuid,
    partition: i32,
    leader: i32,
    epoch: i32,
    isr: Vec<i32>,
) -> Result<(), (ResponseError, String)> {
    one_done(send(AdminRequest::PartitionState { name, id, partition, leader, epoch, isr }).await?)
}

/// A block of producer ids for this broker: (start, len).
pub async fn allocate_producer_ids(broker: i32) -> Result<(i64, i64), (ResponseError, String)> {
    let results = send(AdminRequest::AllocateProducerIds { broker }).await?;
    match results.into_iter().next() {
        Some(Ok(Outcome::ProducerIds { start, len })) => Ok((start, len)),
        Some(Err(e)) => Err(to_error(e)),
        _ => Err((ResponseError::UnknownServerError, "no producer-id block in the answer".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_spread_round_robin_and_alternate_racks() {
        let brokers = vec![(1, None), (2, None), (3, None)];
        assert_eq!(assign(&brokers, 3, 1, 0), vec![vec![1], vec![2], vec![3]]);
        assert_eq!(assign(&brokers, 4, 3, 1), vec![vec![2, 3, 1], vec![3, 1, 2], vec![1, 2, 3], vec![2, 3, 1]]);
        let racked = vec![(1, Some("a".into())), (2, Some("a".into())), (3, Some("b".into())), (4, Some("b".into()))];
        for replicas in assign(&racked, 4, 2, 0) {
            let racks: BTreeSet<_> =
                replicas.iter().map(|id| racked.iter().find(|b| b.0 == *id).unwrap().1.clone()).collect();
            assert_eq!(racks.len(), 2, "{replicas:?} spans both racks");
        }
    }
}
