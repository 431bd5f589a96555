//! CreateTopics (key 19): validated and placed by the controller on shard 0.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use super::respond;
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;
use crate::shard::{self, invoke_on};
use crate::topics::{self, NewTopic};

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: CreateTopicsRequest = decode_body(frame)?;
    let shard = shard::current();
    let node = shard.config.node_id;
    let mut early: Vec<Option<(ResponseError, String)>> = Vec::new();
    let mut new = Vec::new();
    for t in &req.topics {
        let mut err = None;
        let mut partitions = t.num_partitions;
        if !t.assignments.is_empty() {
            if t.num_partitions != -1 || t.replication_factor != -1 {
                err = Some((
                    ResponseError::InvalidRequest,
                    "Both numPartitions or replicationFactor and replicasAssignments were set.".into(),
                ));
            } else if t.assignments.iter().any(|a| a.broker_ids.iter().any(|b| b.0 != node) || a.broker_ids.len() != 1)
            {
                err = Some((ResponseError::InvalidReplicaAssignment, format!("replicas must be exactly [{node}]")));
            }
            partitions = t.assignments.len() as i32;
        }
        let mut configs = std::collections::BTreeMap::new();
        for c in &t.configs {
            match &c.value {
                Some(v) => {
                    configs.insert(c.name.to_string(), v.to_string());
                }
                None => err = err.or(Some((ResponseError::InvalidConfig, format!("config {} has no value", c.name)))),
            }
        }
        new.push(NewTopic {
            name: t.name.0.to_string(),
            partitions,
            replication_factor: t.replication_factor,
            configs,
        });
        early.push(err);
    }
    // Topics that failed the checks above are not sent to the controller.
    let (to_create, indexes): (Vec<NewTopic>, Vec<usize>) =
        new.into_iter().enumerate().filter(|(i, _)| early[*i].is_none()).map(|(i, t)| (t, i)).unzip();
    let validate_only = req.validate_only;
    let created = invoke_on(0, move || async move {
        crate::admin::create_topics(to_create, validate_only)
            .await
            .into_iter()
            .map(|r| r.map(|m| (*m).clone()))
            .collect::<Vec<_>>()
    })
    .await;
    let mut results: Vec<Option<Result<topics::TopicMeta, (ResponseError, String)>>> =
        early.into_iter().map(|e| e.map(Err)).collect();
    for (i, r) in indexes.into_iter().zip(created) {
        results[i] = Some(r);
    }
    let v = frame.version;
    let topics = req
        .topics
        .iter()
        .zip(results)
        .map(|(t, r)| {
            let base = CreatableTopicResult::default().with_name(t.name.clone());
            match r.expect("every topic has a result") {
                Ok(meta) => {
                    let configs = shard
                        .config
                        .topic_configs(&meta.configs)
                        .into_iter()
                        .map(|e| {
                            CreatableTopicConfigs::default()
                                .with_name(StrBytes::from_string(e.name))
                                .with_value(Some(StrBytes::from_string(e.value)))
                                .with_config_source(e.create_source)
                        })
                        .collect();
                    let base = if v >= 7 { base.with_topic_id(meta.id) } else { base };
                    if v >= 5 {
                        base.with_num_partitions(meta.partitions.len() as i32)
                            .with_replication_factor(meta.replication_factor)
                            .with_configs(Some(configs))
                    } else {
                        base
                    }
                }
                Err((code, msg)) => {
                    base.with_error_code(code.code()).with_error_message(Some(StrBytes::from_string(msg)))
                }
            }
        })
        .collect();
    respond(frame, &CreateTopicsResponse::default().with_topics(topics))
}
