//! Where topic changes go: to this broker's own controller (`topics`) when
//! it runs alone, to the cluster's active controller (`cluster::admin`)
//! when a quorum is configured. Called on shard 0, as both expect.

use kafka_protocol::error::ResponseError;

use crate::shard;
use crate::topics::{self, ConfigOp, NewTopic, TopicResult};

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
