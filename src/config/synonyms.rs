//! Kafka's config synonyms: the broker settings a topic config falls back
//! to, and the synonym lists DescribeConfigs and CreateTopics report, as
//! Apache Kafka 4.3 answers them (its ServerTopicConfigSynonyms,
//! DynamicBrokerConfig.brokerConfigSynonyms and ConfigHelper.configSynonyms;
//! checked against a running Kafka 4.3.0 by tests/java_client.rs).

use std::collections::BTreeMap;

use super::source;

/// (name, value, source), most specific first.
pub type Synonym = (String, String, i8);

/// The broker setting a topic config falls back to (the first of Kafka's
/// synonyms for it; the others are `group`'s).
pub fn topic_fallback(key: &str) -> Option<&'static str> {
    Some(match key {
        "cleanup.policy" => "log.cleanup.policy",
        "retention.ms" => "log.retention.ms",
        "retention.bytes" => "log.retention.bytes",
        "segment.bytes" => "log.segment.bytes",
        "segment.ms" => "log.roll.ms",
        "max.message.bytes" => "message.max.bytes",
        "message.timestamp.type" => "log.message.timestamp.type",
        "flush.messages" => "log.flush.interval.messages",
        "flush.ms" => "log.flush.interval.ms",
        "index.interval.bytes" => "log.index.interval.bytes",
        "min.insync.replicas" => "min.insync.replicas",
        "compression.type" => "compression.type",
        "delete.retention.ms" => "log.cleaner.delete.retention.ms",
        "min.compaction.lag.ms" => "log.cleaner.min.compaction.lag.ms",
        "max.compaction.lag.ms" => "log.cleaner.max.compaction.lag.ms",
        "min.cleanable.dirty.ratio" => "log.cleaner.min.cleanable.ratio",
        "unclean.leader.election.enable" => "unclean.leader.election.enable",
        "preallocate" => "log.preallocate",
        "segment.index.bytes" => "log.index.size.max.bytes",
        "segment.jitter.ms" => "log.roll.jitter.ms",
        "file.delete.delay.ms" => "log.segment.delete.delay.ms",
        "message.timestamp.before.max.ms" => "log.message.timestamp.before.max.ms",
        "message.timestamp.after.max.ms" => "log.message.timestamp.after.max.ms",
        _ => return None,
    })
}

/// The broker settings that set the same value as `name`, the one that wins
/// first (log.retention.ms over .minutes over .hours).
pub fn group(name: &str) -> Vec<&str> {
    match name {
        "log.retention.ms" | "log.retention.minutes" | "log.retention.hours" => {
            vec!["log.retention.ms", "log.retention.minutes", "log.retention.hours"]
        }
        "log.roll.ms" | "log.roll.hours" => vec!["log.roll.ms", "log.roll.hours"],
        "log.roll.jitter.ms" | "log.roll.jitter.hours" => vec!["log.roll.jitter.ms", "log.roll.jitter.hours"],
        // The scheduler interval is what an unset flush interval means.
        "log.flush.interval.ms" => vec!["log.flush.interval.ms", "log.flush.scheduler.interval.ms"],
        _ => vec![name],
    }
}

/// Kafka's built-in default of a broker setting behind a topic config, as
/// DescribeConfigs prints it; None where Kafka has none (log.retention.ms:
/// log.retention.hours' default applies).
pub fn kafka_default(name: &str) -> Option<&'static str> {
    const MAX: &str = "9223372036854775807";
    Some(match name {
        "log.cleanup.policy" => "delete",
        "log.retention.hours" | "log.roll.hours" => "168",
        "log.retention.bytes" => "-1",
        "log.segment.bytes" => "1073741824",
        "log.roll.jitter.hours" => "0",
        "message.max.bytes" => "1048588",
        "log.message.timestamp.type" => "CreateTime",
        "log.flush.interval.messages" | "log.flush.scheduler.interval.ms" => MAX,
        "log.index.interval.bytes" => "4096",
        "min.insync.replicas" => "1",
        "compression.type" => "producer",
        "log.cleaner.delete.retention.ms" => "86400000",
        "log.cleaner.min.compaction.lag.ms" => "0",
        "log.cleaner.max.compaction.lag.ms" => MAX,
        "log.cleaner.min.cleanable.ratio" => "0.5",
        "unclean.leader.election.enable" | "log.preallocate" => "false",
        "log.index.size.max.bytes" => "10485760",
        "log.segment.delete.delay.ms" => "60000",
        "log.message.timestamp.before.max.ms" => MAX,
        "log.message.timestamp.after.max.ms" => "3600000",
        _ => return None,
    })
}

/// Cluster-wide dynamic defaults a fresh Kafka 4.3 cluster has: with
/// eligible leader replicas on (the default for new clusters since 4.1,
/// KIP-966), the controller writes a cluster-level min.insync.replicas equal
/// to the static one (KAFKA-16540, apache/kafka#17952).
fn cluster_default(name: &str) -> Option<&'static str> {
    (name == "min.insync.replicas").then_some("1")
}

/// DescribeConfigs' synonyms of broker setting `name`: for each setting of
/// its group, the cluster default, then the static setting (`explicit`),
/// then Kafka's default; and, as Kafka's ConfigHelper does, none before the
/// first entry named `name` itself. So retention.ms lists nothing unless
/// log.retention.ms itself is set: log.retention.hours=24 alone still
/// reports DEFAULT_CONFIG with no synonyms, however odd.
pub fn describe_chain(name: &str, explicit: &BTreeMap<String, String>) -> Vec<Synonym> {
    let names = group(name);
    let mut chain: Vec<Synonym> = Vec::new();
    let mut add = |n: &str, v: Option<&str>, s: i8| {
        if let Some(v) = v {
            chain.push((n.to_string(), v.to_string(), s));
        }
    };
    for &n in &names {
        add(n, cluster_default(n), source::DYNAMIC_DEFAULT_BROKER_CONFIG);
    }
    for &n in &names {
        add(n, explicit.get(n).map(String::as_str), source::STATIC_BROKER_CONFIG);
    }
    for &n in &names {
        add(n, kafka_default(n), source::DEFAULT_CONFIG);
    }
    match chain.iter().position(|s| s.0 == name) {
        Some(first) => chain.split_off(first),
        None => Vec::new(),
    }
}

/// The source CreateTopics reports for a topic config falling back to broker
/// setting `name`: Kafka's controller resolves the whole group without
/// DescribeConfigs' pruning (log.retention.hours=24 alone: STATIC_BROKER_CONFIG).
pub fn create_source(name: &str, explicit: &BTreeMap<String, String>) -> i8 {
    let names = group(name);
    if names.iter().any(|n| cluster_default(n).is_some()) {
        source::DYNAMIC_DEFAULT_BROKER_CONFIG
    } else if names.iter().any(|n| explicit.contains_key(*n)) {
        source::STATIC_BROKER_CONFIG
    } else {
        source::DEFAULT_CONFIG
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{TopicDefaults, TOPIC_CONFIGS};

    fn explicit(lines: &[(&str, &str)]) -> BTreeMap<String, String> {
        lines.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn brief(chain: &[Synonym]) -> Vec<String> {
        chain.iter().map(|(n, v, s)| format!("{n}={v}/{s}")).collect()
    }

    #[test]
    fn chains_as_kafka_4_3_answers() {
        let none = explicit(&[]);
        assert!(describe_chain("log.retention.ms", &none).is_empty());
        assert!(describe_chain("log.roll.ms", &none).is_empty());
        assert!(describe_chain("log.flush.interval.ms", &none).is_empty());
        assert_eq!(brief(&describe_chain("log.cleanup.policy", &none)), ["log.cleanup.policy=delete/5"]);
        assert_eq!(
            brief(&describe_chain("min.insync.replicas", &none)),
            ["min.insync.replicas=1/3", "min.insync.replicas=1/5"]
        );
        let set = explicit(&[
            ("log.segment.bytes", "536870912"),
            ("log.retention.hours", "24"),
            ("log.roll.ms", "7200000"),
            ("log.roll.hours", "5"),
        ]);
        assert_eq!(
            brief(&describe_chain("log.segment.bytes", &set)),
            ["log.segment.bytes=536870912/4", "log.segment.bytes=1073741824/5"]
        );
        assert!(describe_chain("log.retention.ms", &set).is_empty());
        assert_eq!(
            brief(&describe_chain("log.retention.hours", &set)),
            ["log.retention.hours=24/4", "log.retention.hours=168/5"]
        );
        assert_eq!(
            brief(&describe_chain("log.roll.ms", &set)),
            ["log.roll.ms=7200000/4", "log.roll.hours=5/4", "log.roll.hours=168/5"]
        );
        assert_eq!(create_source("log.retention.ms", &set), source::STATIC_BROKER_CONFIG);
        assert_eq!(create_source("log.retention.bytes", &set), source::DEFAULT_CONFIG);
    }

    #[test]
    fn kafka_defaults_are_sluices() {
        let d = TopicDefaults::default();
        for key in TOPIC_CONFIGS {
            let Some(name) = topic_fallback(key) else { continue };
            let Some(ours) = d.default_value(key) else { continue };
            // The default of the group's last (coarsest) setting, in its unit.
            let names = group(name);
            let (n, kafka) = names.iter().find_map(|n| kafka_default(n).map(|v| (*n, v))).expect(name);
            let kafka = match n {
                "log.retention.hours" | "log.roll.hours" => (kafka.parse::<i64>().unwrap() * 3_600_000).to_string(),
                _ => kafka.to_string(),
            };
            assert_eq!(ours, kafka, "{key}'s default vs Kafka's {n}");
        }
    }
}
