//! DescribeConfigs (key 32): a topic's effective configs with their sources
//! and synonyms (its own setting, the broker's, the default), and the
//! broker's own settings, as Apache Kafka reports them.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::respond;
use crate::config::{ConfigEntry, TopicDefaults};
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;
use crate::shard;

pub const TOPIC: i8 = 2;
pub const BROKER: i8 = 4;
pub const BROKER_LOGGER: i8 = 8;

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: DescribeConfigsRequest = decode_body(frame)?;
    let shard = shard::current();
    let config = &shard.config;
    let table = shard.topics();
    let v = frame.version;
    let results = req
        .resources
        .iter()
        .map(|r| {
            let base = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let entries: Result<Vec<ConfigEntry>, (ResponseError, String)> = match r.resource_type {
                TOPIC => match table.get(&r.resource_name) {
                    Some(meta) => Ok(config.topic_configs(&meta.configs)),
                    None => Err((
                        ResponseError::UnknownTopicOrPartition,
                        format!("The topic '{}' does not exist.", r.resource_name),
                    )),
                },
                BROKER if r.resource_name.is_empty() || *r.resource_name == *config.node_id.to_string() => {
                    Ok(config.broker_configs())
                }
                BROKER => {
                    Err((ResponseError::InvalidRequest, format!("Unexpected broker id, expected {}", config.node_id)))
                }
                BROKER_LOGGER => Ok(Vec::new()),
                other => Err((ResponseError::InvalidRequest, format!("unsupported resource type {other}"))),
            };
            match entries {
                Err((code, msg)) => {
                    base.with_error_code(code.code()).with_error_message(Some(StrBytes::from_string(msg)))
                }
                Ok(entries) => {
                    let wanted =
                        |name: &str| r.configuration_keys.as_ref().is_none_or(|keys| keys.iter().any(|k| **k == *name));
                    let configs = entries
                        .into_iter()
                        .filter(|e| wanted(&e.name))
                        .map(|e| {
                            let synonyms = if req.include_synonyms {
                                e.synonyms
                                    .iter()
                                    .map(|(n, val, s)| {
                                        DescribeConfigsSynonym::default()
                                            .with_name(StrBytes::from_string(n.clone()))
                                            .with_value(Some(StrBytes::from_string(val.clone())))
                                            .with_source(*s)
                                    })
                                    .collect()
                            } else {
                                Vec::new()
                            };
                            let entry = DescribeConfigsResourceResult::default()
                                .with_config_type(if v >= 3 { TopicDefaults::config_type(&e.name) } else { 0 })
                                .with_name(StrBytes::from_string(e.name))
                                .with_value(Some(StrBytes::from_string(e.value)))
                                .with_read_only(r.resource_type == BROKER)
                                .with_config_source(e.source);
                            entry.with_synonyms(synonyms)
                        })
                        .collect();
                    base.with_configs(configs)
                }
            }
        })
        .collect();
    respond(frame, &DescribeConfigsResponse::default().with_results(results))
}
