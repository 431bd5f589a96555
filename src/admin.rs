//! Where topic changes go: to this broker's own controller (`topics`) when
//! it runs alone, to the cluster's active controller (`cluster::admin`)
//! when a quorum is configured. Called on shard 0, as both expect.

use std::cell::Cell;

use kafka_protocol::error::ResponseError;

use crate::shard;
use crate::topics::{self, ConfigOp, NewTopic, TopicResult};

thread_local! {
    /// In a cluster: this shard's block of producer ids, (next, end).
    static PRODUCER_IDS: Cell<(i64, i64)> = const { Cell::new((0, 0)) };
}

/// A producer id no other producer of the cluster has: from this broker's
/// durable counter alone, from blocks the controller gives in a cluster
/// (COORDINATOR_LOAD_IN_PROGRESS, which clients retry, while none comes).
pub async fn next_producer_id() -> Result<i64, (ResponseError, String)> {
    let shard = shard::current();
    if !clustered() {
        return shard.producer_ids.next().map_err(|e| (ResponseError::KafkaStorageError, e));
    }
    loop {
        let (next, end) = PRODUCER_IDS.with(Cell::get);
        if next < end {
            PRODUCER_IDS.with(|c| c.set((next + 1, end)));
            return Ok(next);
        }
        let (start, len) = crate::cluster::admin::allocate_producer_ids(shard.config.node_id)
            .await
            .map_err(|(_, e)| (ResponseError::CoordinatorLoadInProgress, e))?;
        // Another task of this shard may have refilled meanwhile: keep the
        // block with ids left, the newer one.
        if PRODUCER_IDS.with(Cell::get).0 >= PRODUCER_IDS.with(Cell::get).1 {
            PRODUCER_IDS.with(|c| c.set((start, start + len)));
        }
    }
}

fn clustered() -> bool {
    shard::current().config.quorum.is_some()
}

pub async fn create_topics(new: Vec<NewTopic>, validate_only: bool) -> Vec<TopicResult> {
    if clustered() {
        crate::cluster::admin::create_topics(new, validate_only).await
    } else {
        topics::create_topics(new, validate_only).await
    }
}

pub async fn delete_topics(names: Vec<String>) -> Vec<TopicResult> {
    if clustered() {
        crate::cluster::admin::delete_topics(names).await
    } else {
        topics::delete_topics(names).await
    }
}

pub async fn create_partitions(
    asks: Vec<(String, i32)>,
    validate_only: bool,
) -> Vec<Result<(), (ResponseError, String)>> {
    if clustered() {
        crate::cluster::admin::create_partitions(asks, validate_only).await
    } else {
        topics::create_partitions(asks, validate_only).await
    }
}

/// Reassignments (KIP-455): the controller's, in a cluster. A single
/// broker has nowhere to move a replica: only its own assignment stands.
pub async fn reassign(moves: Vec<(String, i32, Option<Vec<i32>>)>) -> Vec<Result<(), (ResponseError, String)>> {
    if clustered() {
        return crate::cluster::admin::reassign(moves).await;
    }
    let shard = shard::current();
    let (node, table) = (shard.config.node_id, shard.topics());
    moves
        .into_iter()
        .map(|(name, partition, target)| {
            let known = table.get(&name).is_some_and(|m| (0..m.partitions.len() as i32).contains(&partition));
            match target {
                _ if !known => Err((ResponseError::UnknownTopicOrPartition, format!("{name}-{partition}"))),
                None => {
                    Err((ResponseError::NoReassignmentInProgress, format!("no reassignment of {name}-{partition}")))
                }
                Some(t) if t == [node] => Ok(()),
                Some(t) => Err((
                    ResponseError::InvalidReplicaAssignment,
                    format!("The proposed assignment {t:?} names brokers other than this one ({node})."),
                )),
            }
        })
        .collect()
}

pub async fn alter_configs(
    changes: Vec<(String, Vec<ConfigOp>, bool)>,
    validate_only: bool,
) -> Vec<Result<(), (ResponseError, String)>> {
    if clustered() {
        crate::cluster::admin::alter_configs(changes, validate_only).await
    } else {
        topics::alter_configs(changes, validate_only).await
    }
}
