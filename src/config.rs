//! Broker settings: built-in defaults, then a Kafka-style properties file
//! (`--config`), then `SLUICE_*` environment variables, then flags.
//! Property names are Apache Kafka's wherever Kafka has one.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sluice_storage::{CompactionConfig, FlushPolicy, LogConfig};

pub mod synonyms;

#[derive(Clone, Debug)]
pub struct BrokerConfig {
    pub node_id: i32,
    pub data_dir: PathBuf,
    pub listener: SocketAddr,
    /// Host and port clients are told to connect to.
    pub advertised: (String, u16),
    pub cores: usize,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics: bool,
    /// `socket.request.max.bytes`: the largest request frame accepted.
    pub socket_request_max_bytes: usize,
    /// Broker-wide defaults of the topic-level settings (`log.*` names).
    pub log_defaults: TopicDefaults,
    /// `log.retention.check.interval.ms`
    pub retention_check_interval: Duration,
    /// `producer.id.expiration.ms`: idempotent-producer state kept this long
    /// after a producer's last batch.
    pub producer_id_expiration_ms: i64,
    /// Settings given explicitly (file, environment, flags), with their
    /// values: DescribeConfigs reports them as STATIC_BROKER_CONFIG.
    pub explicit: BTreeMap<String, String>,
    /// `group.initial.rebalance.delay.ms`: how long a group that was empty
    /// waits for more members before its first generation.
    pub group_initial_rebalance_delay: Duration,
    /// `group.min.session.timeout.ms` / `group.max.session.timeout.ms`:
    /// JoinGroup session timeouts outside get INVALID_SESSION_TIMEOUT.
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    /// `offset.metadata.max.bytes`: longest metadata string of a commit.
    pub offset_metadata_max_bytes: usize,
    /// `offsets.topic.num.partitions`: partitions of `__consumer_offsets`,
    /// fixed once the topic exists (a group's partition must not move).
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.replication.factor` (Kafka default 3): replicas of
    /// each `__consumer_offsets` partition in a cluster, capped at the
    /// number of controller voters; the topic is made once that many
    /// brokers are registered.
    pub offsets_topic_replication_factor: i16,
    /// `offsets.topic.segment.bytes`: that topic's segment size.
    pub offsets_topic_segment_bytes: u64,
    /// `group.consumer.session.timeout.ms` (KIP-848 groups): a member not
    /// heard from for this long is removed.
    pub group_consumer_session_timeout_ms: u64,
    /// `group.consumer.heartbeat.interval.ms`: how often members heartbeat;
    /// new assignments reach them at this pace.
    pub group_consumer_heartbeat_interval_ms: i32,
    /// `group.consumer.{min,max}.{session.timeout,heartbeat.interval}.ms`:
    /// the bounds Kafka checks the two settings above against at start-up.
    pub group_consumer_min_session_timeout_ms: u64,
    pub group_consumer_max_session_timeout_ms: u64,
    pub group_consumer_min_heartbeat_interval_ms: i32,
    pub group_consumer_max_heartbeat_interval_ms: i32,
    /// `log.cleaner.enable`: compact topics whose policy says so.
    pub cleaner_enable: bool,
    /// `log.cleaner.backoff.ms`: how often each partition checks whether a
    /// compaction pass is due.
    pub cleaner_backoff: Duration,
    /// `log.cleaner.dedupe.buffer.size`: memory for one pass's offset map
    /// (24 bytes a key, as Kafka counts it).
    pub cleaner_dedupe_buffer_size: u64,
    /// `broker.rack`
    pub rack: Option<String>,
    /// Set when `controller.quorum.voters` is: this node is one of the
    /// voters of the cluster's metadata quorum (combined mode,
    /// `process.roles=broker,controller`).
    pub quorum: Option<QuorumConfig>,
    /// `broker.session.timeout.ms` (Kafka default 9000): a broker not heard
    /// from this long is fenced.
    pub broker_session_timeout_ms: u64,
    /// `broker.heartbeat.interval.ms` (Kafka default 2000).
    pub broker_heartbeat_interval_ms: u64,
    /// `replica.lag.time.max.ms` (Kafka default 30000): a follower that has
    /// not had its leader's whole log for this long leaves the ISR.
    pub replica_lag_time_max_ms: u64,
    /// `auto.leader.rebalance.enable` (Kafka default true): a partition's
    /// leader hands leadership back to its preferred replica (the first)
    /// once that one is in sync and its broker leads too few of the
    /// partitions it prefers.
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.check.interval.seconds` (Kafka default 300).
    pub leader_imbalance_check_interval: Duration,
    /// `leader.imbalance.per.broker.percentage` (Kafka default 10): above
    /// this share of a broker's preferred partitions led elsewhere, they
    /// move back.
    pub leader_imbalance_per_broker_percentage: u32,
    /// The listener and quorum settings as given, resolved together after
    /// each `apply` (they may come in any order).
    listener_settings: ListenerSettings,
}

/// This node's part in the metadata quorum.
#[derive(Clone, Debug, PartialEq)]
pub struct QuorumConfig {
    /// `controller.quorum.voters`, in the order given.
    pub voters: Vec<Voter>,
    /// The first name of `controller.listener.names` and where it binds
    /// (resolved from `listeners`).
    pub listener_name: String,
    pub listener: SocketAddr,
}

/// One `ID@HOST:PORT` of `controller.quorum.voters`; an IPv6 host is kept
/// without its brackets (add them back to make `HOST:PORT`).
#[derive(Clone, Debug, PartialEq)]
pub struct Voter {
    pub id: i32,
    pub host: String,
    pub port: u16,
}

#[derive(Clone, Debug, Default)]
struct ListenerSettings {
    listeners: Option<String>,
    advertised: Option<String>,
    protocol_map: Option<String>,
    inter_broker: Option<String>,
    controller_names: Option<String>,
    roles: Option<String>,
    voters: Option<String>,
}

/// Topic-level settings as broker defaults; a topic's own configs override.
#[derive(Clone, Debug)]
pub struct TopicDefaults {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub retention_bytes: i64,
    pub retention_ms: i64,
    pub index_interval_bytes: u64,
    pub message_max_bytes: usize,
    pub log_append_time: bool,
    pub flush_messages: i64,
    pub flush_ms: i64,
    pub cleanup_policy: String,
    pub delete_retention_ms: i64,
    pub min_compaction_lag_ms: i64,
    pub max_compaction_lag_ms: i64,
    pub min_cleanable_ratio: f64,
}

impl Default for TopicDefaults {
    fn default() -> Self {
        TopicDefaults {
            segment_bytes: 1 << 30,
            segment_ms: 604_800_000,
            retention_bytes: -1,
            retention_ms: 604_800_000,
            index_interval_bytes: 4096,
            message_max_bytes: 1_048_588,
            log_append_time: false,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            cleanup_policy: "delete".into(),
            delete_retention_ms: 86_400_000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_ratio: 0.5,
        }
    }
}

/// Topic-level config names a topic may set (CreateTopics, later AlterConfigs).
pub const TOPIC_CONFIGS: &[&str] = &[
    "cleanup.policy",
    "retention.ms",
    "retention.bytes",
    "segment.bytes",
    "segment.ms",
    "max.message.bytes",
    "message.timestamp.type",
    "flush.messages",
    "flush.ms",
    "index.interval.bytes",
    "min.insync.replicas",
    "compression.type",
    "delete.retention.ms",
    "min.compaction.lag.ms",
    "max.compaction.lag.ms",
    "min.cleanable.dirty.ratio",
    "message.timestamp.before.max.ms",
    "message.timestamp.after.max.ms",
    "unclean.leader.election.enable",
    "preallocate",
    "segment.index.bytes",
    "segment.jitter.ms",
    "file.delete.delay.ms",
];

fn parse_num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String> {
    v.trim().parse().map_err(|_| format!("{key}={v}: not a valid number"))
}

fn parse_bool(key: &str, v: &str) -> Result<bool, String> {
    match v.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{key}={v}: expected true or false")),
    }
}

/// Checks one topic-level config value; used by CreateTopics.
pub fn validate_topic_config(key: &str, value: &str) -> Result<(), String> {
    if !TOPIC_CONFIGS.contains(&key) {
        return Err(format!("Unknown topic config name: {key}"));
    }
    match key {
        "cleanup.policy" => {
            if value.split(',').all(|p| matches!(p.trim(), "delete" | "compact")) {
                Ok(())
            } else {
                Err(format!("{key}={value}: expected delete, compact or both"))
            }
        }
        "message.timestamp.type" => match value {
            "CreateTime" | "LogAppendTime" => Ok(()),
            _ => Err(format!("{key}={value}: expected CreateTime or LogAppendTime")),
        },
        "unclean.leader.election.enable" | "preallocate" => parse_bool(key, value).map(drop),
        "min.cleanable.dirty.ratio" => match parse_num::<f64>(key, value)? {
            v if (0.0..=1.0).contains(&v) => Ok(()),
            _ => Err(format!("{key}={value}: must be between 0 and 1")),
        },
        "delete.retention.ms" | "min.compaction.lag.ms" => match parse_num::<i64>(key, value)? {
            v if v >= 0 => Ok(()),
            _ => Err(format!("{key}={value}: must not be negative")),
        },
        "max.compaction.lag.ms" => match parse_num::<i64>(key, value)? {
            v if v >= 1 => Ok(()),
            _ => Err(format!("{key}={value}: must be at least 1")),
        },
        "compression.type" => match value {
            "producer" | "uncompressed" | "gzip" | "snappy" | "lz4" | "zstd" => Ok(()),
            _ => Err(format!("{key}={value}: unknown compression type")),
        },
        // Kafka's minimum: an index holds at least one entry.
        "segment.index.bytes" => match parse_num::<i64>(key, value)? {
            v if v >= 4 => Ok(()),
            _ => Err(format!("Invalid value {value} for configuration {key}: Value must be at least 4")),
        },
        "segment.bytes" => match parse_num::<i64>(key, value)? {
            v if v >= 14 => Ok(()),
            _ => Err(format!("{key}={value}: must be at least 14")),
        },
        _ => parse_num::<i64>(key, value).map(drop),
    }
}

impl TopicDefaults {
    /// The log settings for a topic with these defaults and its own configs.
    pub fn log_config(&self, topic: &BTreeMap<String, String>) -> LogConfig {
        let get = |k: &str| topic.get(k).and_then(|v| v.trim().parse::<i64>().ok());
        let ms = |v: i64| (0..i64::MAX).contains(&v).then(|| Duration::from_millis(v as u64));
        let retention_ms = get("retention.ms").unwrap_or(self.retention_ms);
        let retention_bytes = get("retention.bytes").unwrap_or(self.retention_bytes);
        let flush_messages = get("flush.messages").unwrap_or(self.flush_messages);
        let flush_ms = get("flush.ms").unwrap_or(self.flush_ms);
        let policy = topic.get("cleanup.policy").unwrap_or(&self.cleanup_policy);
        let flush = if flush_messages == 1 {
            FlushPolicy::EveryAppend
        } else {
            FlushPolicy::Interval {
                messages: (flush_messages > 0 && flush_messages < i64::MAX).then_some(flush_messages as u64),
                interval: ms(flush_ms),
            }
        };
        LogConfig {
            segment_bytes: get("segment.bytes").map_or(self.segment_bytes, |v| v.max(14) as u64),
            segment_ms: ms(get("segment.ms").unwrap_or(self.segment_ms)),
            retention_bytes: (retention_bytes >= 0).then_some(retention_bytes as u64),
            retention_ms: ms(retention_ms),
            index_interval_bytes: get("index.interval.bytes").map_or(self.index_interval_bytes, |v| v.max(0) as u64),
            max_batch_bytes: get("max.message.bytes").map_or(self.message_max_bytes, |v| v.max(0) as usize),
            log_append_time: topic.get("message.timestamp.type").map_or(self.log_append_time, |v| v == "LogAppendTime"),
            flush,
            cleanup_delete: policy.split(',').any(|p| p.trim() == "delete"),
            cleanup_compact: policy.split(',').any(|p| p.trim() == "compact"),
            compaction: CompactionConfig {
                delete_retention_ms: get("delete.retention.ms").unwrap_or(self.delete_retention_ms).max(0),
                min_compaction_lag_ms: get("min.compaction.lag.ms").unwrap_or(self.min_compaction_lag_ms).max(0),
                max_compaction_lag_ms: get("max.compaction.lag.ms").unwrap_or(self.max_compaction_lag_ms).max(1),
                min_cleanable_ratio: topic
                    .get("min.cleanable.dirty.ratio")
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .unwrap_or(self.min_cleanable_ratio)
                    .clamp(0.0, 1.0),
                ..CompactionConfig::default()
            },
        }
    }

    /// A topic's effective value of a config, as DescribeConfigs would show it.
    pub fn default_value(&self, key: &str) -> Option<String> {
        Some(match key {
            "cleanup.policy" => self.cleanup_policy.clone(),
            "retention.ms" => self.retention_ms.to_string(),
            "retention.bytes" => self.retention_bytes.to_string(),
            "segment.bytes" => self.segment_bytes.to_string(),
            "segment.ms" => self.segment_ms.to_string(),
            "max.message.bytes" => self.message_max_bytes.to_string(),
            "message.timestamp.type" => if self.log_append_time { "LogAppendTime" } else { "CreateTime" }.to_string(),
            "flush.messages" => self.flush_messages.to_string(),
            "flush.ms" => self.flush_ms.to_string(),
            "index.interval.bytes" => self.index_interval_bytes.to_string(),
            // Settings accepted and reported, with Apache Kafka 4.0's defaults.
            "min.insync.replicas" => "1".into(),
            "compression.type" => "producer".into(),
            "delete.retention.ms" => self.delete_retention_ms.to_string(),
            "min.compaction.lag.ms" => self.min_compaction_lag_ms.to_string(),
            "max.compaction.lag.ms" => self.max_compaction_lag_ms.to_string(),
            "min.cleanable.dirty.ratio" => self.min_cleanable_ratio.to_string(),
            "message.timestamp.before.max.ms" => i64::MAX.to_string(),
            "message.timestamp.after.max.ms" => "3600000".into(),
            "unclean.leader.election.enable" => "false".into(),
            "preallocate" => "false".into(),
            "segment.index.bytes" => "10485760".into(),
            "segment.jitter.ms" => "0".into(),
            "file.delete.delay.ms" => "60000".into(),
            _ => return None,
        })
    }

    /// Kafka's ConfigType code of a topic config (DescribeConfigs v3+).
    pub fn config_type(key: &str) -> i8 {
        const BOOLEAN: i8 = 1;
        const STRING: i8 = 2;
        const INT: i8 = 3;
        const LONG: i8 = 5;
        const DOUBLE: i8 = 6;
        const LIST: i8 = 7;
        match key {
            "cleanup.policy" => LIST,
            "message.timestamp.type" | "compression.type" => STRING,
            "unclean.leader.election.enable" | "preallocate" => BOOLEAN,
            "min.cleanable.dirty.ratio" => DOUBLE,
            "segment.bytes"
            | "max.message.bytes"
            | "index.interval.bytes"
            | "min.insync.replicas"
            | "segment.index.bytes" => INT,
            _ => LONG,
        }
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            node_id: 1,
            data_dir: PathBuf::from("./data"),
            listener: "0.0.0.0:9092".parse().unwrap(),
            advertised: ("localhost".into(), 9092),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics: true,
            socket_request_max_bytes: 104_857_600,
            log_defaults: TopicDefaults::default(),
            retention_check_interval: Duration::from_millis(300_000),
            producer_id_expiration_ms: 86_400_000,
            explicit: BTreeMap::new(),
            group_initial_rebalance_delay: Duration::from_millis(3000),
            group_min_session_timeout_ms: 6000,
            group_max_session_timeout_ms: 1_800_000,
            offset_metadata_max_bytes: 4096,
            offsets_topic_num_partitions: 50,
            offsets_topic_replication_factor: 3,
            offsets_topic_segment_bytes: 104_857_600,
            group_consumer_session_timeout_ms: 45_000,
            group_consumer_heartbeat_interval_ms: 5_000,
            group_consumer_min_session_timeout_ms: 45_000,
            group_consumer_max_session_timeout_ms: 60_000,
            group_consumer_min_heartbeat_interval_ms: 5_000,
            group_consumer_max_heartbeat_interval_ms: 15_000,
            cleaner_enable: true,
            cleaner_backoff: Duration::from_millis(15_000),
            cleaner_dedupe_buffer_size: 128 << 20,
            rack: None,
            quorum: None,
            broker_session_timeout_ms: 9000,
            broker_heartbeat_interval_ms: 2000,
            replica_lag_time_max_ms: 30_000,
            auto_leader_rebalance_enable: true,
            leader_imbalance_check_interval: Duration::from_secs(300),
            leader_imbalance_per_broker_percentage: 10,
            listener_settings: ListenerSettings::default(),
        }
    }
}

/// One `NAME://HOST:PORT` entry of `listeners` / `advertised.listeners`: the
/// name upper-cased (as Kafka's ListenerName.normalised does), an IPv6 host
/// without its brackets, an empty host for every interface.
#[derive(Clone, Debug, PartialEq)]
pub struct ListenerSpec {
    pub name: String,
    pub host: String,
    pub port: u16,
}

/// Kafka's built-in `listeners` (its own is `PLAINTEXT://:9092`, the same).
const DEFAULT_LISTENERS: &str = "PLAINTEXT://0.0.0.0:9092";
/// Kafka's built-in `listener.security.protocol.map`.
const DEFAULT_PROTOCOL_MAP: &str = "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL";
const SECURITY_PROTOCOLS: [&str; 4] = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];

/// `HOST:PORT`, HOST a name, an IPv4 address, `[v6]` (or a bare IPv6
/// address: the port follows its last colon) or empty.
fn parse_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.trim().rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = match host.strip_prefix('[') {
        Some(h) => h.strip_suffix(']')?,
        None => host,
    };
    if host.chars().any(|c| c.is_whitespace() || matches!(c, '[' | ']' | '/' | '@' | ',')) {
        return None;
    }
    Some((host.to_string(), port))
}

/// `NAME://HOST:PORT,...` (Kafka's `listeners` and `advertised.listeners`);
/// `key` names the setting in errors. Each name once, as Kafka requires.
pub fn parse_listeners(key: &str, s: &str) -> Result<Vec<ListenerSpec>, String> {
    let mut out: Vec<ListenerSpec> = Vec::new();
    for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = || format!("{key}={s}: {entry:?} is not NAME://HOST:PORT");
        let (name, hostport) = entry.split_once("://").ok_or_else(bad)?;
        let name = name.trim().to_ascii_uppercase();
        if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == ':') {
            return Err(bad());
        }
        let (host, port) = parse_host_port(hostport).ok_or_else(bad)?;
        if out.iter().any(|l| l.name == name) {
            return Err(format!("{key}={s}: Each listener must have a different name ({name} is there twice)"));
        }
        out.push(ListenerSpec { name, host, port });
    }
    if out.is_empty() {
        return Err(format!("{key}={s:?}: no listener"));
    }
    Ok(out)
}

/// `ID@HOST:PORT,...` (Kafka's `controller.quorum.voters`): ids unique and
/// not negative, each voter at an address the others can connect to.
pub fn parse_voters(s: &str) -> Result<Vec<Voter>, String> {
    let mut out: Vec<Voter> = Vec::new();
    for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = || format!("controller.quorum.voters={s}: {entry:?} is not ID@HOST:PORT");
        let (id, hostport) = entry.split_once('@').ok_or_else(bad)?;
        let id: i32 = id.trim().parse().map_err(|_| bad())?;
        let (host, port) = parse_host_port(hostport).ok_or_else(bad)?;
        if id < 0 {
            return Err(format!("controller.quorum.voters={s}: voter id {id} is negative"));
        }
        if out.iter().any(|v| v.id == id) {
            return Err(format!("controller.quorum.voters={s}: voter id {id} is there twice (ids must be unique)"));
        }
        if host.is_empty() || host == "0.0.0.0" || host == "::" || port == 0 {
            return Err(format!(
                "controller.quorum.voters={s}: {entry:?} is not an address the other voters can reach"
            ));
        }
        out.push(Voter { id, host, port });
    }
    if out.is_empty() {
        return Err(format!("controller.quorum.voters={s:?}: no voter"));
    }
    Ok(out)
}

/// `process.roles`: (broker, controller).
fn parse_roles(s: &str) -> Result<(bool, bool), String> {
    let (mut broker, mut controller) = (false, false);
    for role in s.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        let seen = match role {
            "broker" => std::mem::replace(&mut broker, true),
            "controller" => std::mem::replace(&mut controller, true),
            _ => return Err(format!("process.roles={s}: unknown role {role:?} (expected broker, controller or both)")),
        };
        if seen {
            return Err(format!("process.roles={s}: Duplicate role names found ({role})"));
        }
    }
    Ok((broker, controller))
}

/// `listener.security.protocol.map`: `NAME:PROTOCOL,...`, names upper-cased.
fn parse_protocol_map(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, proto) = pair
            .split_once(':')
            .ok_or_else(|| format!("listener.security.protocol.map={s}: {pair:?} is not NAME:PROTOCOL"))?;
        let proto = proto.trim().to_ascii_uppercase();
        if !SECURITY_PROTOCOLS.contains(&proto.as_str()) {
            return Err(format!(
                "listener.security.protocol.map={s}: {proto} is not a security protocol (expected one of {})",
                SECURITY_PROTOCOLS.join(", ")
            ));
        }
        let name = name.trim().to_ascii_uppercase();
        if map.insert(name.clone(), proto).is_some() {
            return Err(format!("listener.security.protocol.map={s}: {name} is there twice"));
        }
    }
    Ok(map)
}

/// `host:port`, an IPv6 host in brackets.
fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .map_err(|e| format!("{host}:{port}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}:{port}: no address"))
}

impl BrokerConfig {
    /// A topic's log settings: the topic's configs over the broker's.
    pub fn log_config(&self, topic: &BTreeMap<String, String>) -> LogConfig {
        let mut c = self.log_defaults.log_config(topic);
        // Kafka's cleaner counts 24 bytes an entry of its offset map.
        c.compaction.max_map_keys = (self.cleaner_dedupe_buffer_size / 24).clamp(1024, usize::MAX as u64) as usize;
        c
    }

    /// Applies `key=value` settings in order; unknown keys are returned so
    /// the caller can warn about them.
    pub fn apply(&mut self, settings: &[(String, String)]) -> Result<Vec<String>, String> {
        let mut unknown = Vec::new();
        for (key, value) in settings {
            let v = value.trim();
            let d = &mut self.log_defaults;
            match key.as_str() {
                "node.id" | "broker.id" => self.node_id = parse_num(key, v)?,
                "log.dirs" | "log.dir" => {
                    self.data_dir = PathBuf::from(v.split(',').next().unwrap_or(v).trim());
                }
                "listeners" => self.listener_settings.listeners = Some(v.to_string()),
                "advertised.listeners" => self.listener_settings.advertised = Some(v.to_string()),
                "listener.security.protocol.map" => self.listener_settings.protocol_map = Some(v.to_string()),
                "inter.broker.listener.name" => self.listener_settings.inter_broker = Some(v.to_string()),
                "controller.listener.names" => self.listener_settings.controller_names = Some(v.to_string()),
                "process.roles" => self.listener_settings.roles = Some(v.to_string()),
                "controller.quorum.voters" => self.listener_settings.voters = Some(v.to_string()),
                "broker.rack" => self.rack = (!v.is_empty()).then(|| v.to_string()),
                "broker.session.timeout.ms" => self.broker_session_timeout_ms = parse_num::<u64>(key, v)?.max(1),
                "broker.heartbeat.interval.ms" => self.broker_heartbeat_interval_ms = parse_num::<u64>(key, v)?.max(1),
                "replica.lag.time.max.ms" => self.replica_lag_time_max_ms = parse_num::<u64>(key, v)?.max(1),
                "auto.leader.rebalance.enable" => self.auto_leader_rebalance_enable = parse_bool(key, v)?,
                "leader.imbalance.check.interval.seconds" => {
                    self.leader_imbalance_check_interval = Duration::from_secs(parse_num::<u64>(key, v)?.max(1))
                }
                "leader.imbalance.per.broker.percentage" => {
                    self.leader_imbalance_per_broker_percentage = parse_num::<u32>(key, v)?.min(100)
                }
                "num.partitions" => self.num_partitions = parse_num::<i32>(key, v)?.max(1),
                "default.replication.factor" => self.default_replication_factor = parse_num(key, v)?,
                "auto.create.topics.enable" => self.auto_create_topics = parse_bool(key, v)?,
                "socket.request.max.bytes" => self.socket_request_max_bytes = parse_num(key, v)?,
                "sluice.cores" => self.cores = parse_num::<usize>(key, v)?.max(1),
                "log.segment.bytes" => d.segment_bytes = parse_num(key, v)?,
                // Of synonyms set together the most specific wins, in any
                // order, as in Kafka (log.retention.ms over .minutes over .hours).
                "log.roll.ms" => d.segment_ms = parse_num(key, v)?,
                "log.roll.hours" => {
                    let ms = parse_num::<i64>(key, v)? * 3_600_000;
                    if !self.explicit.contains_key("log.roll.ms") {
                        d.segment_ms = ms;
                    }
                }
                "log.retention.bytes" => d.retention_bytes = parse_num(key, v)?,
                "log.retention.ms" => d.retention_ms = parse_num(key, v)?,
                "log.retention.minutes" => {
                    let ms = parse_num::<i64>(key, v)? * 60_000;
                    if !self.explicit.contains_key("log.retention.ms") {
                        d.retention_ms = ms;
                    }
                }
                "log.retention.hours" => {
                    let ms = parse_num::<i64>(key, v)? * 3_600_000;
                    if !["log.retention.ms", "log.retention.minutes"].iter().any(|k| self.explicit.contains_key(*k)) {
                        d.retention_ms = ms;
                    }
                }
                "log.index.interval.bytes" => d.index_interval_bytes = parse_num(key, v)?,
                "message.max.bytes" => d.message_max_bytes = parse_num(key, v)?,
                "log.message.timestamp.type" => d.log_append_time = v == "LogAppendTime",
                "log.flush.interval.messages" => d.flush_messages = parse_num(key, v)?,
                "log.flush.interval.ms" => d.flush_ms = parse_num(key, v)?,
                "log.cleanup.policy" => {
                    if !v.split(',').all(|p| matches!(p.trim(), "delete" | "compact")) {
                        return Err(format!("{key}={v}: expected delete, compact or both"));
                    }
                    d.cleanup_policy = v.to_string()
                }
                "log.cleaner.enable" => self.cleaner_enable = parse_bool(key, v)?,
                "log.cleaner.backoff.ms" => {
                    self.cleaner_backoff = Duration::from_millis(parse_num::<u64>(key, v)?.max(10))
                }
                "log.cleaner.dedupe.buffer.size" => self.cleaner_dedupe_buffer_size = parse_num(key, v)?,
                "log.cleaner.delete.retention.ms" => d.delete_retention_ms = parse_num::<i64>(key, v)?.max(0),
                "log.cleaner.min.compaction.lag.ms" => d.min_compaction_lag_ms = parse_num::<i64>(key, v)?.max(0),
                "log.cleaner.max.compaction.lag.ms" => d.max_compaction_lag_ms = parse_num::<i64>(key, v)?.max(1),
                "log.cleaner.min.cleanable.ratio" => {
                    d.min_cleanable_ratio = parse_num::<f64>(key, v)?;
                    if !(0.0..=1.0).contains(&d.min_cleanable_ratio) {
                        return Err(format!("{key}={v}: must be between 0 and 1"));
                    }
                }
                "producer.id.expiration.ms" => self.producer_id_expiration_ms = parse_num(key, v)?,
                "log.retention.check.interval.ms" => {
                    self.retention_check_interval = Duration::from_millis(parse_num::<u64>(key, v)?.max(10))
                }
                "group.initial.rebalance.delay.ms" => {
                    self.group_initial_rebalance_delay = Duration::from_millis(parse_num(key, v)?)
                }
                "group.min.session.timeout.ms" => self.group_min_session_timeout_ms = parse_num(key, v)?,
                "group.max.session.timeout.ms" => self.group_max_session_timeout_ms = parse_num(key, v)?,
                "offset.metadata.max.bytes" => self.offset_metadata_max_bytes = parse_num(key, v)?,
                "offsets.topic.num.partitions" => {
                    self.offsets_topic_num_partitions = parse_num::<i32>(key, v)?.clamp(1, 1000)
                }
                "offsets.topic.segment.bytes" => self.offsets_topic_segment_bytes = parse_num(key, v)?,
                "offsets.topic.replication.factor" => {
                    self.offsets_topic_replication_factor = parse_num::<i16>(key, v)?.max(1)
                }
                "group.consumer.session.timeout.ms" => {
                    self.group_consumer_session_timeout_ms = parse_num::<u64>(key, v)?.max(1)
                }
                "group.consumer.heartbeat.interval.ms" => {
                    self.group_consumer_heartbeat_interval_ms = parse_num::<i32>(key, v)?.max(1)
                }
                "group.consumer.min.session.timeout.ms" => {
                    self.group_consumer_min_session_timeout_ms = parse_num::<u64>(key, v)?.max(1)
                }
                "group.consumer.max.session.timeout.ms" => {
                    self.group_consumer_max_session_timeout_ms = parse_num::<u64>(key, v)?.max(1)
                }
                "group.consumer.min.heartbeat.interval.ms" => {
                    self.group_consumer_min_heartbeat_interval_ms = parse_num::<i32>(key, v)?.max(1)
                }
                "group.consumer.max.heartbeat.interval.ms" => {
                    self.group_consumer_max_heartbeat_interval_ms = parse_num::<i32>(key, v)?.max(1)
                }
                _ => {
                    unknown.push(key.clone());
                    continue;
                }
            }
            self.explicit.insert(key.clone(), v.to_string());
        }
        self.check_consumer_group_bounds()?;
        self.check_broker_heartbeat()?;
        self.resolve_listeners()?;
        Ok(unknown)
    }

    /// Works out the listeners and the quorum from the settings read so far
    /// (they come in any order, over any number of `apply` calls), with the
    /// start-up checks of Kafka 4's KafkaConfig (its validateValues, and
    /// KafkaConfigValidator's validateKraftCombinedModeConfig and
    /// validateListenerNames), so that what Kafka refuses is refused here
    /// too; and those of what Sluice supports yet: combined mode, one client
    /// and one controller listener, PLAINTEXT.
    fn resolve_listeners(&mut self) -> Result<(), String> {
        let l = self.listener_settings.clone();
        let given = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
        let listeners_text = given(&l.listeners).unwrap_or_else(|| DEFAULT_LISTENERS.to_string());
        let listeners = parse_listeners("listeners", &listeners_text)?;
        let mut controller_names: Vec<String> = Vec::new();
        for n in given(&l.controller_names).unwrap_or_default().split(',') {
            let n = n.trim().to_ascii_uppercase();
            if !n.is_empty() && !controller_names.contains(&n) {
                controller_names.push(n);
            }
        }
        let client_name = given(&l.inter_broker).map_or_else(|| "PLAINTEXT".to_string(), |n| n.to_ascii_uppercase());
        let roles = match given(&l.roles) {
            Some(r) => Some((parse_roles(&r)?, r)),
            None => None,
        };
        let voters = match given(&l.voters) {
            Some(v) => Some(parse_voters(&v)?),
            None => None,
        };

        // Kafka 4 runs KRaft only: process.roles is required, and a static
        // quorum (the only kind here) is controller.quorum.voters.
        match (&roles, &voters) {
            (None, Some(_)) => {
                return Err("controller.quorum.voters needs process.roles=broker,controller (combined mode, the \
                            only one supported yet), and process.roles is not set"
                    .into())
            }
            (Some((_, r)), None) => {
                return Err(format!(
                    "process.roles={r} needs controller.quorum.voters (controller.quorum.bootstrap.servers, \
                     Kafka 4's dynamic quorum, is not supported)"
                ))
            }
            (Some(((broker, controller), r)), Some(_)) if !(*broker && *controller) => {
                return Err(format!(
                    "process.roles={r}: only combined mode (process.roles=broker,controller) is supported yet"
                ))
            }
            _ => {}
        }
        if let Some(voters) = &voters {
            if !voters.iter().any(|v| v.id == self.node_id) {
                let ids: Vec<String> = voters.iter().map(|v| v.id.to_string()).collect();
                return Err(format!(
                    "If process.roles contains the 'controller' role, the node id {} must be included in the set \
                     of voters controller.quorum.voters=[{}]",
                    self.node_id,
                    ids.join(", ")
                ));
            }
            if controller_names.is_empty() {
                return Err("controller.listener.names must contain at least one value appearing in the \
                            'listeners' configuration when running the KRaft controller role (it is not set)"
                    .into());
            }
            if let Some(n) = controller_names.iter().find(|n| !listeners.iter().any(|x| &x.name == *n)) {
                return Err(format!(
                    "controller.listener.names must only contain values appearing in the 'listeners' \
                     configuration when running the KRaft controller role: {n} is not in listeners={listeners_text}"
                ));
            }
        }
        if controller_names.contains(&client_name) {
            return Err(format!(
                "controller.listener.names must not contain the inter-broker listener {client_name} \
                 (inter.broker.listener.name, the client listener)"
            ));
        }

        // Kafka 4's effectiveListenerSecurityProtocolMap: when the map is
        // not set, a controller listener it does not name is PLAINTEXT.
        let explicit_map = given(&l.protocol_map);
        let mut map = parse_protocol_map(explicit_map.as_deref().unwrap_or(DEFAULT_PROTOCOL_MAP))?;
        if explicit_map.is_none() {
            for n in &controller_names {
                map.entry(n.clone()).or_insert_with(|| "PLAINTEXT".to_string());
            }
        }
        for x in &listeners {
            let proto = map.get(&x.name).ok_or_else(|| {
                format!("No security protocol defined for listener {} (listener.security.protocol.map)", x.name)
            })?;
            if proto != "PLAINTEXT" {
                return Err(format!("listener {} uses {proto}: only PLAINTEXT is supported yet", x.name));
            }
        }

        let (controllers, clients): (Vec<&ListenerSpec>, Vec<&ListenerSpec>) =
            listeners.iter().partition(|x| controller_names.contains(&x.name));
        let list = |xs: &[&ListenerSpec]| xs.iter().map(|x| x.name.as_str()).collect::<Vec<_>>().join(", ");
        if voters.is_none() {
            if let Some(c) = controllers.first() {
                return Err(format!(
                    "listener {} is in controller.listener.names, but controller.quorum.voters is not set: a \
                     controller listener serves the metadata quorum",
                    c.name
                ));
            }
        }
        if controllers.len() > 1 {
            return Err(format!(
                "listeners={listeners_text}: only one controller listener is supported yet (got {})",
                list(&controllers)
            ));
        }
        let client = match clients.as_slice() {
            [one] => *one,
            [] => {
                return Err(format!(
                    "listeners={listeners_text} has no client listener ({client_name}://HOST:PORT): \
                     process.roles=broker,controller needs one besides the controller listener"
                ))
            }
            _ => {
                return Err(format!(
                    "listeners={listeners_text}: only one client listener is supported yet (got {}; a \
                     controller listener must be named in controller.listener.names)",
                    list(&clients)
                ))
            }
        };
        if client.name != client_name {
            return Err(format!(
                "inter.broker.listener.name={client_name} must be a listener name defined in \
                 listeners={listeners_text} (the client listener; PLAINTEXT unless set)"
            ));
        }

        // What clients are told: the advertised entry of the client
        // listener, else the listener itself with localhost for "anywhere".
        let routable = |h: &str| if h.is_empty() || h == "0.0.0.0" || h == "::" { "localhost" } else { h }.to_string();
        let advertised = match given(&l.advertised) {
            None => (routable(&client.host), client.port),
            Some(text) => {
                let entries = parse_listeners("advertised.listeners", &text)?;
                for a in &entries {
                    if !listeners.iter().any(|x| x.name == a.name) {
                        return Err(format!(
                            "advertised.listeners listener names must be equal to or a subset of the ones defined \
                             in listeners: {} is not in listeners={listeners_text}",
                            a.name
                        ));
                    }
                    if controller_names.contains(&a.name) {
                        return Err(format!(
                            "The advertised.listeners config must not contain KRaft controller listeners from \
                             controller.listener.names ({}): clients only talk to brokers",
                            a.name
                        ));
                    }
                    if a.host == "0.0.0.0" || a.host == "::" {
                        return Err(format!(
                            "advertised.listeners cannot use the nonroutable meta-address {}. Use a routable IP \
                             address.",
                            a.host
                        ));
                    }
                }
                let a = entries.iter().find(|a| a.name == client.name).ok_or_else(|| {
                    format!(
                        "inter.broker.listener.name must be a listener name defined in advertised.listeners: \
                         advertised.listeners={text} has no {} entry",
                        client.name
                    )
                })?;
                (routable(&a.host), a.port)
            }
        };

        let quorum = match voters {
            None => None,
            Some(voters) => {
                let cl = *controllers.first().ok_or("controller.listener.names: no controller listener")?;
                let me = voters.iter().find(|v| v.id == self.node_id).ok_or("this node is not a voter")?;
                // Kafka does not check this. But the other voters reach this
                // node at its own voter entry, and it listens for them on its
                // controller listener: with two different ports they never
                // meet, a mistake in one of the two settings.
                if me.port != cl.port {
                    return Err(format!(
                        "controller.quorum.voters has {}@{} for this node (node.id={}), but its controller \
                         listener {} is on port {}: the other voters would not reach it",
                        me.id,
                        join_host_port(&me.host, me.port),
                        self.node_id,
                        cl.name,
                        cl.port
                    ));
                }
                Some(QuorumConfig { listener_name: cl.name.clone(), listener: resolve(&cl.host, cl.port)?, voters })
            }
        };
        self.listener = resolve(&client.host, client.port)?;
        self.advertised = advertised;
        self.quorum = quorum;
        Ok(())
    }

    /// `broker.heartbeat.interval.ms` against `broker.session.timeout.ms`.
    /// Kafka only logs an error when the interval is more than half the
    /// timeout (KafkaConfig.validateValues); an interval of at least the
    /// timeout fences a live broker between two heartbeats, so it is refused.
    fn check_broker_heartbeat(&self) -> Result<(), String> {
        let (hb, st) = (self.broker_heartbeat_interval_ms, self.broker_session_timeout_ms);
        if hb >= st {
            return Err(format!("broker.heartbeat.interval.ms={hb} must be less than broker.session.timeout.ms={st}"));
        }
        Ok(())
    }

    /// The checks Kafka's GroupCoordinatorConfig makes at start-up, so that a
    /// config Kafka refuses is refused here too.
    fn check_consumer_group_bounds(&self) -> Result<(), String> {
        let (hb, min_hb, max_hb) = (
            i64::from(self.group_consumer_heartbeat_interval_ms),
            i64::from(self.group_consumer_min_heartbeat_interval_ms),
            i64::from(self.group_consumer_max_heartbeat_interval_ms),
        );
        let (st, min_st, max_st) = (
            self.group_consumer_session_timeout_ms as i64,
            self.group_consumer_min_session_timeout_ms as i64,
            self.group_consumer_max_session_timeout_ms as i64,
        );
        let checks = [
            (hb >= min_hb, "group.consumer.heartbeat.interval.ms must be greater than or equal to group.consumer.min.heartbeat.interval.ms"),
            (hb <= max_hb, "group.consumer.heartbeat.interval.ms must be less than or equal to group.consumer.max.heartbeat.interval.ms"),
            (st >= min_st, "group.consumer.session.timeout.ms must be greater than or equal to group.consumer.min.session.timeout.ms"),
            (st <= max_st, "group.consumer.session.timeout.ms must be less than or equal to group.consumer.max.session.timeout.ms"),
            (hb < st, "group.consumer.heartbeat.interval.ms must be less than group.consumer.session.timeout.ms"),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, why)) => Err(why.to_string()),
            None => Ok(()),
        }
    }
}

/// Parses Java-properties-style text: `key=value` or `key: value` lines,
/// `#`/`!` comments.
pub fn parse_properties(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| {
            let i = l.find(['=', ':'])?;
            Some((l[..i].trim().to_string(), l[i + 1..].trim().to_string()))
        })
        .collect()
}

/// `SLUICE_LOG_RETENTION_MS=…` is `log.retention.ms=…`.
pub fn env_settings() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::env::vars()
        .filter_map(|(k, v)| {
            let rest = k.strip_prefix("SLUICE_")?;
            // The test suite's own knobs are not broker settings.
            if rest.starts_with("TEST_") {
                return None;
            }
            // Flags read these themselves.
            if matches!(rest, "DATA_DIR" | "LISTENERS" | "ADVERTISED_LISTENERS" | "CORES" | "CONFIG" | "LOG") {
                return None;
            }
            Some((rest.to_ascii_lowercase().replace('_', "."), v))
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<BrokerConfig, String> {
        let mut c = BrokerConfig::default();
        c.apply(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>()).map(|_| c)
    }

    const NODE2: &[(&str, &str)] = &[
        ("node.id", "2"),
        ("process.roles", "broker,controller"),
        ("controller.quorum.voters", "1@h1:9093,2@[::1]:9095,3@h3:9093"),
        ("listeners", "PLAINTEXT://127.0.0.1:9094,CONTROLLER://[::1]:9095"),
        ("controller.listener.names", "CONTROLLER"),
        ("advertised.listeners", "PLAINTEXT://b2.example.com:19094"),
        ("broker.rack", "r2"),
    ];

    #[test]
    fn the_embedded_default_is_a_broker_on_its_own_on_9092() {
        let c = with(&[]).unwrap();
        assert!(c.quorum.is_none());
        assert_eq!(c.listener, "0.0.0.0:9092".parse().unwrap());
        assert_eq!(c.advertised, ("localhost".to_string(), 9092));
        let old = with(&[("listeners", "PLAINTEXT://127.0.0.1:9093")]).unwrap();
        assert_eq!((old.listener.port(), old.advertised.0.as_str()), (9093, "127.0.0.1"));
    }

    #[test]
    fn a_combined_node_of_three_parses_with_kafkas_names() {
        let c = with(NODE2).unwrap();
        let q = c.quorum.unwrap();
        assert_eq!(
            q.voters.iter().map(|v| (v.id, v.host.as_str(), v.port)).collect::<Vec<_>>(),
            vec![(1, "h1", 9093), (2, "::1", 9095), (3, "h3", 9093)]
        );
        assert_eq!(q.listener, "[::1]:9095".parse().unwrap());
        assert_eq!(q.listener_name, "CONTROLLER");
        assert_eq!(c.listener, "127.0.0.1:9094".parse().unwrap());
        assert_eq!(c.advertised, ("b2.example.com".to_string(), 19094));
        assert_eq!(c.rack.as_deref(), Some("r2"));
    }

    #[test]
    fn cluster_settings_kafka_refuses_are_refused() {
        let but = |key: &str, value: Option<&str>| {
            let mut v: Vec<(&str, &str)> = NODE2.iter().copied().filter(|(k, _)| *k != key).collect();
            if let Some(value) = value {
                v.push((key, value));
            }
            with(&v).unwrap_err()
        };
        let two = |a: (&str, &str), b: (&str, &str)| {
            let mut v: Vec<(&str, &str)> = NODE2.iter().copied().filter(|(k, _)| *k != a.0 && *k != b.0).collect();
            v.extend([a, b]);
            with(&v).unwrap_err()
        };
        let cases = [
            (but("process.roles", Some("broker")), "only combined mode (process.roles=broker,controller) is supported"),
            (but("process.roles", Some("controller")), "only combined mode"),
            (but("process.roles", Some("broker,broker")), "Duplicate role names"),
            (but("process.roles", Some("broker,observer")), "unknown role \"observer\""),
            (but("process.roles", None), "needs process.roles=broker,controller"),
            (
                but("node.id", Some("4")),
                "If process.roles contains the 'controller' role, the node id 4 must be included in the set of \
                 voters controller.quorum.voters=[1, 2, 3]",
            ),
            (but("controller.listener.names", None), "controller.listener.names must contain at least one value"),
            (but("controller.listener.names", Some("OTHER")), "OTHER is not in listeners="),
            (but("controller.listener.names", Some("CONTROLLER,OTHER")), "must only contain values appearing"),
            (
                but("controller.quorum.voters", Some("1@h1:9093,2@h2:9999")),
                "has 2@h2:9999 for this node (node.id=2), but its controller listener CONTROLLER is on port 9095",
            ),
            (but("controller.quorum.voters", Some("1@h1:9093,1@h2:9095")), "voter id 1 is there twice"),
            (but("controller.quorum.voters", Some("-1@h1:9093,2@h2:9095")), "voter id -1 is negative"),
            (but("controller.quorum.voters", Some("2@h2")), "\"2@h2\" is not ID@HOST:PORT"),
            (but("controller.quorum.voters", Some("2@[::1:9095")), "is not ID@HOST:PORT"),
            (but("controller.quorum.voters", Some("1@0.0.0.0:9093,2@h2:9095")), "not an address the other voters"),
            (but("advertised.listeners", Some("PLAINTEXT://0.0.0.0:9094")), "nonroutable meta-address 0.0.0.0"),
            (but("advertised.listeners", Some("PLAINTEXT://[::]:9094")), "nonroutable meta-address ::"),
            (but("advertised.listeners", Some("OTHER://b2:1")), "subset of the ones defined in listeners"),
            (
                but("advertised.listeners", Some("PLAINTEXT://b2:1,CONTROLLER://b2:9095")),
                "must not contain KRaft controller listeners",
            ),
            (
                but("listeners", Some("PLAINTEXT://:1,PLAINTEXT://:2,CONTROLLER://[::1]:9095")),
                "Each listener must have a different name (PLAINTEXT is there twice)",
            ),
            (but("listeners", Some("PLAINTEXT//:1,CONTROLLER://[::1]:9095")), "is not NAME://HOST:PORT"),
            (
                but("listeners", Some("PLAINTEXT://:1,EXTERNAL://:2,CONTROLLER://[::1]:9095")),
                "No security protocol defined for listener EXTERNAL",
            ),
            (
                two(
                    ("listeners", "PLAINTEXT://:1,EXTERNAL://:2,CONTROLLER://[::1]:9095"),
                    ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"),
                ),
                "only one client listener is supported yet (got PLAINTEXT, EXTERNAL",
            ),
            (
                two(
                    ("listeners", "PLAINTEXT://:1,CONTROLLER://[::1]:9095,C2://:9096"),
                    ("controller.listener.names", "CONTROLLER,C2"),
                ),
                "only one controller listener is supported yet (got CONTROLLER, C2)",
            ),
            (but("listeners", Some("CONTROLLER://[::1]:9095")), "has no client listener (PLAINTEXT://HOST:PORT)"),
            (
                but("inter.broker.listener.name", Some("CLIENT")),
                "inter.broker.listener.name=CLIENT must be a listener name defined in listeners=",
            ),
            (
                but("inter.broker.listener.name", Some("CONTROLLER")),
                "must not contain the inter-broker listener CONTROLLER",
            ),
            (
                but("listener.security.protocol.map", Some("PLAINTEXT:SSL")),
                "listener PLAINTEXT uses SSL: only PLAINTEXT is supported yet",
            ),
            // Set, the map must name the controller listener too (as in Kafka).
            (
                but("listener.security.protocol.map", Some("PLAINTEXT:PLAINTEXT")),
                "No security protocol defined for listener CONTROLLER",
            ),
            (but("listener.security.protocol.map", Some("PLAINTEXT:TLS")), "TLS is not a security protocol"),
            (
                but("broker.heartbeat.interval.ms", Some("9000")),
                "broker.heartbeat.interval.ms=9000 must be less than broker.session.timeout.ms=9000",
            ),
        ];
        for (err, want) in cases {
            assert!(err.contains(want), "{err:?} should say {want:?}");
        }
        let err = with(&[("process.roles", "broker,controller")]).unwrap_err();
        assert!(err.contains("needs controller.quorum.voters"), "{err}");
        assert!(err.contains("controller.quorum.bootstrap.servers"), "{err}");
        let err =
            with(&[("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"), ("controller.listener.names", "CONTROLLER")])
                .unwrap_err();
        assert!(err.contains("controller.quorum.voters is not set"), "{err}");
        // On its own too, not only in a cluster.
        assert!(with(&[("broker.heartbeat.interval.ms", "10000")]).is_err());
        assert!(with(&[("listeners", "SSL://:9093")]).unwrap_err().contains("only PLAINTEXT is supported yet"));
        // controller.listener.names that no listener uses is harmless.
        assert!(with(&[("controller.listener.names", "CONTROLLER")]).unwrap().quorum.is_none());
    }

    #[test]
    fn cluster_settings_may_come_in_any_order_and_over_several_layers() {
        let reversed: Vec<(&str, &str)> = NODE2.iter().rev().copied().collect();
        assert_eq!(with(&reversed).unwrap().quorum, with(NODE2).unwrap().quorum);
        // Settings, then the --listeners flag in a later apply: the rest
        // still holds. (Each apply checks the whole: main.rs gives it all
        // layers at once.)
        let pairs = |v: &[(&str, &str)]| v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        let mut cfg = with(NODE2).unwrap();
        cfg.apply(&pairs(&[("listeners", "PLAINTEXT://127.0.0.1:7000,CONTROLLER://127.0.0.1:9095")])).unwrap();
        assert_eq!(cfg.listener, "127.0.0.1:7000".parse().unwrap());
        assert_eq!(cfg.quorum.as_ref().unwrap().listener, "127.0.0.1:9095".parse().unwrap());
        assert_eq!(cfg.advertised, ("b2.example.com".to_string(), 19094));
        let err = cfg.apply(&pairs(&[("node.id", "7")])).unwrap_err();
        assert!(err.contains("the node id 7 must be included"), "{err}");
    }

    #[test]
    fn listeners_of_any_name_and_ipv6_hosts() {
        let c = with(&[
            ("node.id", "1"),
            ("process.roles", "controller,broker"),
            ("controller.quorum.voters", "1@[::1]:9093"),
            ("listeners", "client://[::1]:9092,ctl://[::1]:9093"),
            ("listener.security.protocol.map", "CLIENT:PLAINTEXT,CTL:plaintext"),
            ("inter.broker.listener.name", "client"),
            ("controller.listener.names", "ctl"),
        ])
        .unwrap();
        assert_eq!(c.listener, "[::1]:9092".parse().unwrap());
        assert_eq!(c.advertised, ("::1".to_string(), 9092));
        let q = c.quorum.as_ref().unwrap();
        assert_eq!((q.listener_name.as_str(), q.listener), ("CTL", "[::1]:9093".parse().unwrap()));
        assert_eq!(q.voters, vec![Voter { id: 1, host: "::1".into(), port: 9093 }]);
        let described: BTreeMap<String, String> = c.broker_configs().into_iter().map(|e| (e.name, e.value)).collect();
        assert_eq!(described["advertised.listeners"], "CLIENT://[::1]:9092");
        assert_eq!(described["listeners"], "client://[::1]:9092,ctl://[::1]:9093");
        assert_eq!(described["process.roles"], "controller,broker");
        assert_eq!(described["controller.listener.names"], "ctl");
        assert_eq!(described["broker.session.timeout.ms"], "9000");
        assert!(!described.contains_key("broker.rack"));
        let single = with(&[("listeners", "PLAINTEXT://[::1]:9093")]).unwrap();
        assert_eq!((single.listener, single.advertised.0.as_str()), ("[::1]:9093".parse().unwrap(), "::1"));
        let any = with(&[("listeners", "PLAINTEXT://[::]:9093")]).unwrap();
        assert_eq!((any.listener.port(), any.advertised.0.as_str()), (9093, "localhost"));
        let d: BTreeMap<String, String> =
            BrokerConfig::default().broker_configs().into_iter().map(|e| (e.name, e.value)).collect();
        assert_eq!(d["listeners"], "PLAINTEXT://0.0.0.0:9092");
        assert_eq!(d["advertised.listeners"], "PLAINTEXT://localhost:9092");
        assert_eq!(d["listener.security.protocol.map"], DEFAULT_PROTOCOL_MAP);
        assert_eq!(d["controller.quorum.voters"], "");
    }

    #[test]
    fn consumer_group_timeouts_are_checked_against_their_bounds_as_kafka_does() {
        let set = |pairs: &[(&str, &str)]| {
            let mut c = BrokerConfig::default();
            c.apply(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>())
        };
        let err = set(&[("group.consumer.heartbeat.interval.ms", "300")]).unwrap_err();
        assert!(err.contains("group.consumer.min.heartbeat.interval.ms"), "{err}");
        assert!(set(&[("group.consumer.session.timeout.ms", "4000")]).is_err());
        assert!(set(&[("group.consumer.session.timeout.ms", "90000")]).is_err());
        let ok = [
            ("group.consumer.min.heartbeat.interval.ms", "300"),
            ("group.consumer.heartbeat.interval.ms", "300"),
            ("group.consumer.min.session.timeout.ms", "4000"),
            ("group.consumer.session.timeout.ms", "4000"),
        ];
        assert!(set(&ok).unwrap().is_empty());
    }

    #[test]
    fn layers_apply_in_order() {
        let mut c = BrokerConfig::default();
        let props = parse_properties(
            "# comment\nlisteners=PLAINTEXT://127.0.0.1:9999\nnum.partitions = 3\nlog.retention.hours=1\nbogus=1\n",
        );
        let unknown = c.apply(&props).unwrap();
        assert_eq!(unknown, vec!["bogus".to_string()]);
        assert_eq!(c.listener.port(), 9999);
        assert_eq!(c.advertised, ("127.0.0.1".to_string(), 9999));
        assert_eq!(c.num_partitions, 3);
        assert_eq!(c.log_defaults.retention_ms, 3_600_000);
        c.apply(&[("advertised.listeners".into(), "PLAINTEXT://broker:1234".into())]).unwrap();
        assert_eq!(c.advertised, ("broker".to_string(), 1234));
        assert!(c.apply(&[("num.partitions".into(), "x".into())]).is_err());
    }

    #[test]
    fn group_settings() {
        let mut c = BrokerConfig::default();
        assert_eq!(c.group_initial_rebalance_delay, Duration::from_millis(3000));
        assert_eq!((c.group_min_session_timeout_ms, c.group_max_session_timeout_ms), (6000, 1_800_000));
        let props = parse_properties(
            "group.initial.rebalance.delay.ms=0\ngroup.min.session.timeout.ms=1000\ngroup.max.session.timeout.ms=60000\n",
        );
        assert!(c.apply(&props).unwrap().is_empty());
        assert_eq!(c.group_initial_rebalance_delay, Duration::ZERO);
        assert_eq!((c.group_min_session_timeout_ms, c.group_max_session_timeout_ms), (1000, 60_000));
        assert!(c.apply(&[("group.initial.rebalance.delay.ms".into(), "-1".into())]).is_err());
    }

    #[test]
    fn topic_configs_override_defaults() {
        let d = TopicDefaults::default();
        let mut t = BTreeMap::new();
        t.insert("retention.ms".to_string(), "-1".to_string());
        t.insert("flush.messages".to_string(), "1".to_string());
        t.insert("message.timestamp.type".to_string(), "LogAppendTime".to_string());
        let lc = d.log_config(&t);
        assert_eq!(lc.retention_ms, None);
        assert_eq!(lc.flush, FlushPolicy::EveryAppend);
        assert!(lc.log_append_time);
        assert!(validate_topic_config("retention.ms", "x").is_err());
        assert!(validate_topic_config("nope", "1").is_err());
        assert!(validate_topic_config("cleanup.policy", "compact,delete").is_ok());
        assert!(!lc.cleanup_compact && lc.cleanup_delete);
    }

    #[test]
    fn the_most_specific_synonym_wins_in_any_order() {
        let mut c = BrokerConfig::default();
        let props =
            parse_properties("log.roll.ms=7200000\nlog.roll.hours=5\nlog.retention.hours=1\nlog.retention.minutes=2\n");
        assert!(c.apply(&props).unwrap().is_empty());
        assert_eq!(c.log_defaults.segment_ms, 7_200_000);
        assert_eq!(c.log_defaults.retention_ms, 120_000);
        assert!(c.apply(&[("log.retention.ms".into(), "5000".into())]).unwrap().is_empty());
        assert!(c.apply(&[("log.retention.hours".into(), "3".into())]).unwrap().is_empty());
        assert_eq!(c.log_defaults.retention_ms, 5000);
    }

    #[test]
    fn compaction_settings() {
        let mut c = BrokerConfig::default();
        let props = parse_properties(
            "log.cleaner.delete.retention.ms=1000\nlog.cleaner.min.cleanable.ratio=0.1\nlog.cleaner.backoff.ms=50\n",
        );
        assert!(c.apply(&props).unwrap().is_empty());
        assert_eq!(c.cleaner_backoff, Duration::from_millis(50));
        let mut t = BTreeMap::new();
        t.insert("cleanup.policy".to_string(), "compact, delete".to_string());
        t.insert("min.compaction.lag.ms".to_string(), "500".to_string());
        let lc = c.log_defaults.log_config(&t);
        assert!(lc.cleanup_compact && lc.cleanup_delete);
        assert_eq!(lc.compaction.delete_retention_ms, 1000);
        assert_eq!(lc.compaction.min_compaction_lag_ms, 500);
        assert_eq!(lc.compaction.min_cleanable_ratio, 0.1);
        assert!(c.apply(&[("log.cleaner.min.cleanable.ratio".into(), "2".into())]).is_err());
        assert!(c.apply(&[("log.cleanup.policy".into(), "shred".into())]).is_err());
        assert!(validate_topic_config("min.cleanable.dirty.ratio", "1.5").is_err());
        assert!(validate_topic_config("delete.retention.ms", "-5").is_err());
        assert!(validate_topic_config("max.compaction.lag.ms", "0").is_err());
    }
}

/// Where a config's value comes from (Kafka's ConfigSource codes).
pub mod source {
    pub const DYNAMIC_TOPIC_CONFIG: i8 = 1;
    pub const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
    pub const STATIC_BROKER_CONFIG: i8 = 4;
    pub const DEFAULT_CONFIG: i8 = 5;
}

/// One config as DescribeConfigs and CreateTopics report it.
pub struct ConfigEntry {
    pub name: String,
    pub value: String,
    pub source: i8,
    /// (name, value, source), most specific first.
    pub synonyms: Vec<(String, String, i8)>,
    /// The source CreateTopics reports, which Kafka works out differently
    /// (synonyms::create_source).
    pub create_source: i8,
}

impl BrokerConfig {
    /// A topic's effective configs: its own, else the broker's.
    pub fn topic_configs(&self, overrides: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
        TOPIC_CONFIGS
            .iter()
            .filter_map(|&key| {
                let default = self.log_defaults.default_value(key)?;
                let fallback = synonyms::topic_fallback(key);
                let mut chain = Vec::new();
                if let Some(v) = overrides.get(key) {
                    chain.push((key.to_string(), v.clone(), source::DYNAMIC_TOPIC_CONFIG));
                }
                chain.extend(fallback.map(|b| synonyms::describe_chain(b, &self.explicit)).unwrap_or_default());
                let create_source = match (overrides.contains_key(key), fallback) {
                    (true, _) => source::DYNAMIC_TOPIC_CONFIG,
                    (false, Some(b)) => synonyms::create_source(b, &self.explicit),
                    (false, None) => source::DEFAULT_CONFIG,
                };
                Some(ConfigEntry {
                    name: key.to_string(),
                    value: overrides.get(key).cloned().unwrap_or(default),
                    source: chain.first().map_or(source::DEFAULT_CONFIG, |s| s.2),
                    synonyms: chain,
                    create_source,
                })
            })
            .collect()
    }

    fn explicit_or(&self, key: &str, default: &str) -> String {
        self.explicit.get(key).map_or_else(|| default.to_string(), String::clone)
    }

    /// The client listener's name (`inter.broker.listener.name`).
    fn client_listener_name(&self) -> String {
        self.explicit.get("inter.broker.listener.name").map_or_else(|| "PLAINTEXT".into(), |n| n.to_ascii_uppercase())
    }

    /// `listeners` as given (with the controller listener), else the client
    /// listener's bind address.
    fn listeners_value(&self) -> String {
        match self.explicit.get("listeners") {
            Some(v) => v.clone(),
            None => format!("{}://{}", self.client_listener_name(), self.listener),
        }
    }

    /// The broker's own settings, as DescribeConfigs reports them.
    pub fn broker_configs(&self) -> Vec<ConfigEntry> {
        let d = &self.log_defaults;
        let mut all = vec![
            ("node.id", self.node_id.to_string()),
            ("log.dirs", self.data_dir.display().to_string()),
            ("listeners", self.listeners_value()),
            (
                "advertised.listeners",
                format!("{}://{}", self.client_listener_name(), join_host_port(&self.advertised.0, self.advertised.1)),
            ),
            (
                "listener.security.protocol.map",
                self.explicit_or("listener.security.protocol.map", DEFAULT_PROTOCOL_MAP),
            ),
            ("process.roles", self.explicit_or("process.roles", "")),
            ("controller.quorum.voters", self.explicit_or("controller.quorum.voters", "")),
            ("broker.session.timeout.ms", self.broker_session_timeout_ms.to_string()),
            ("broker.heartbeat.interval.ms", self.broker_heartbeat_interval_ms.to_string()),
            ("replica.lag.time.max.ms", self.replica_lag_time_max_ms.to_string()),
            ("auto.leader.rebalance.enable", self.auto_leader_rebalance_enable.to_string()),
            ("leader.imbalance.check.interval.seconds", self.leader_imbalance_check_interval.as_secs().to_string()),
            ("leader.imbalance.per.broker.percentage", self.leader_imbalance_per_broker_percentage.to_string()),
            ("num.partitions", self.num_partitions.to_string()),
            ("default.replication.factor", self.default_replication_factor.to_string()),
            ("auto.create.topics.enable", self.auto_create_topics.to_string()),
            ("socket.request.max.bytes", self.socket_request_max_bytes.to_string()),
            ("log.segment.bytes", d.segment_bytes.to_string()),
            ("log.roll.ms", d.segment_ms.to_string()),
            ("log.retention.ms", d.retention_ms.to_string()),
            ("log.retention.bytes", d.retention_bytes.to_string()),
            ("log.index.interval.bytes", d.index_interval_bytes.to_string()),
            ("message.max.bytes", d.message_max_bytes.to_string()),
            ("log.message.timestamp.type", if d.log_append_time { "LogAppendTime" } else { "CreateTime" }.into()),
            ("log.flush.interval.messages", d.flush_messages.to_string()),
            ("log.flush.interval.ms", d.flush_ms.to_string()),
            ("log.cleanup.policy", d.cleanup_policy.clone()),
            ("log.cleaner.enable", self.cleaner_enable.to_string()),
            ("log.cleaner.backoff.ms", self.cleaner_backoff.as_millis().to_string()),
            ("log.cleaner.dedupe.buffer.size", self.cleaner_dedupe_buffer_size.to_string()),
            ("log.cleaner.delete.retention.ms", d.delete_retention_ms.to_string()),
            ("log.cleaner.min.compaction.lag.ms", d.min_compaction_lag_ms.to_string()),
            ("log.cleaner.max.compaction.lag.ms", d.max_compaction_lag_ms.to_string()),
            ("log.cleaner.min.cleanable.ratio", d.min_cleanable_ratio.to_string()),
            ("log.retention.check.interval.ms", self.retention_check_interval.as_millis().to_string()),
            ("producer.id.expiration.ms", self.producer_id_expiration_ms.to_string()),
            ("offsets.topic.num.partitions", self.offsets_topic_num_partitions.to_string()),
            ("offsets.topic.segment.bytes", self.offsets_topic_segment_bytes.to_string()),
            ("offsets.topic.replication.factor", self.offsets_topic_replication_factor.to_string()),
            ("group.consumer.session.timeout.ms", self.group_consumer_session_timeout_ms.to_string()),
            ("group.consumer.heartbeat.interval.ms", self.group_consumer_heartbeat_interval_ms.to_string()),
        ];
        // Kafka's default of these is null, which this list has no way to
        // say: they are listed when set.
        for key in ["broker.rack", "controller.listener.names", "inter.broker.listener.name"] {
            if let Some(v) = self.explicit.get(key) {
                all.push((key, v.clone()));
            }
        }
        all.sort();
        all.into_iter()
            .map(|(name, value)| {
                let static_or_default = if self.explicit.contains_key(name) {
                    source::STATIC_BROKER_CONFIG
                } else {
                    source::DEFAULT_CONFIG
                };
                // A topic config's broker setting lists Kafka's synonyms
                // (its static value, then Kafka's default); the others just
                // their own value.
                let chain = if synonyms::group(name).iter().any(|n| synonyms::kafka_default(n).is_some()) {
                    synonyms::describe_chain(name, &self.explicit)
                } else {
                    vec![(name.to_string(), value.clone(), static_or_default)]
                };
                let source = chain.first().map_or(source::DEFAULT_CONFIG, |s| s.2);
                ConfigEntry { name: name.to_string(), synonyms: chain, value, source, create_source: source }
            })
            .collect()
    }
}
