//! Metadata (key 3): the live brokers, and the topics asked for (all when none
//! are named). Unknown topics are created when `auto.create.topics.enable`
//! is on and the client allows it, as Kafka does.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::respond;
use crate::server::connection::{decode_body, Close, RequestFrame};
use crate::server::response::Response;
use crate::shard::{self, invoke_on};
use crate::topics::{self, NewTopic, TopicMeta};

pub async fn handle(frame: &RequestFrame) -> Result<Response, Close> {
    let req: MetadataRequest = decode_body(frame)?;
    let shard = shard::current();
    let config = shard.config.clone();
    let mut table = shard.topics();
    // v0: an empty list means all topics; v1+: null means all.
    let wanted: Option<Vec<(Option<String>, uuid::Uuid)>> = match req.topics {
        None => None,
        Some(t) if t.is_empty() && frame.version == 0 => None,
        // A topic id, when given, names the topic (Java sends "" as the name).
        Some(t) => Some(
            t.into_iter()
                .map(|t| {
                    let name = if t.topic_id.is_nil() { t.name.map(|n| n.0.to_string()) } else { None };
                    (name, t.topic_id)
                })
                .collect(),
        ),
    };
    let auto_create = config.auto_create_topics && (frame.version < 4 || req.allow_auto_topic_creation);
    if let (Some(w), true) = (&wanted, auto_create) {
        let missing: Vec<String> = w
            .iter()
            .filter_map(|(n, _)| n.clone())
            .filter(|n| table.get(n).is_none() && topics::valid_topic_name(n).is_ok())
            .collect();
        if !missing.is_empty() {
            let results = invoke_on(0, move || async move {
                let new = missing
                    .into_iter()
                    .map(|name| NewTopic { name, partitions: -1, replication_factor: -1, configs: Default::default() })
                    .collect();
                crate::admin::create_topics(new, false)
                    .await
                    .into_iter()
                    .map(|r| r.map(|_| ()).map_err(|e| e.1))
                    .collect::<Vec<_>>()
            })
            .await;
            for r in results {
                if let Err(e) = r {
                    tracing::debug!(%e, "auto-create skipped");
                }
            }
            table = shard.topics();
        }
    }
    let v = frame.version;
    let describe = |meta: &TopicMeta| {
        let partitions = meta
            .partitions
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let pv = super::partition_view(&shard, p);
                let ids = |v: Vec<i32>| v.into_iter().map(BrokerId).collect::<Vec<_>>();
                let error = if pv.leader < 0 { ResponseError::LeaderNotAvailable.code() } else { 0 };
                MetadataResponsePartition::default()
                    .with_error_code(error)
                    .with_partition_index(i as i32)
                    .with_leader_id(BrokerId(pv.leader))
                    .with_leader_epoch(if v >= 7 { p.leader_epoch } else { -1 })
                    .with_replica_nodes(ids(pv.replicas))
                    .with_isr_nodes(ids(pv.isr))
                    .with_offline_replicas(if v >= 5 { ids(pv.offline) } else { vec![] })
            })
            .collect();
        MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(meta.name.clone()))))
            .with_topic_id(if v >= 10 { meta.id } else { uuid::Uuid::nil() })
            .with_is_internal(v >= 1 && meta.internal)
            .with_partitions(partitions)
    };
    let topics = match wanted {
        None => table.topics.values().map(|m| describe(m)).collect(),
        Some(w) => w
            .into_iter()
            .map(|(name, id)| {
                let meta = match &name {
                    Some(n) => table.get(n),
                    None => table.by_id(&id),
                };
                match meta {
                    Some(m) => describe(m),
                    None => {
                        let code = match &name {
                            Some(n) if topics::valid_topic_name(n).is_err() => ResponseError::InvalidTopicException,
                            Some(_) => ResponseError::UnknownTopicOrPartition,
                            None => ResponseError::UnknownTopicId,
                        };
                        MetadataResponseTopic::default()
                            .with_error_code(code.code())
                            .with_name(name.map(|n| TopicName(StrBytes::from_string(n))))
                            .with_topic_id(if v >= 10 { id } else { uuid::Uuid::nil() })
                    }
                }
            })
            .collect(),
    };
    let brokers = super::cluster_brokers(&shard);
    let brokers = brokers
        .into_iter()
        .map(|b| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.id))
                .with_host(StrBytes::from_string(b.host))
                .with_port(b.port as i32)
                .with_rack(b.rack.map(StrBytes::from_string))
        })
        .collect();
    let cluster_id = super::cluster_id(&shard, &table);
    let resp = MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id((v >= 2).then(|| StrBytes::from_string(cluster_id)))
        .with_controller_id(if v >= 1 { BrokerId(super::controller_id(&shard)) } else { BrokerId(-1) })
        .with_topics(topics);
    respond(frame, &resp)
}
