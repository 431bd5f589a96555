//! Topic metadata: the table every shard reads, and the controller that
//! changes it. The controller runs on shard 0 only; it persists the table in
//! `DATA_DIR/topics.json`, opens or deletes partitions on their shards, then
//! sends every shard the new table.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use serde::{Deserialize, Serialize};

use crate::config::{validate_topic_config, BrokerConfig};
use crate::shard::{self, invoke_on};

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: Arc<str>,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition { topic: Arc::from(topic), partition }
    }

    /// The partition's directory, named as Kafka names it.
    pub fn dir(&self, data_dir: &Path) -> PathBuf {
        data_dir.join(format!("{}-{}", self.topic, self.partition))
    }
}

/// Where committed offsets are kept (Kafka's name, internal and compacted).
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PartitionMeta {
    /// The shard that owns the partition's log on this broker; None when
    /// this broker holds no replica of it (a cluster).
    pub shard: Option<usize>,
    pub leader_epoch: i32,
    /// The brokers that hold it, the preferred leader first.
    #[serde(default)]
    pub replicas: Vec<i32>,
    /// With more than one replica: the leader and ISR its leader last
    /// reported (None: none elected yet).
    #[serde(default)]
    pub leader: Option<i32>,
    #[serde(default)]
    pub isr: Vec<i32>,
    /// The replicas its Raft group began with (empty: `replicas`); a
    /// reassignment changes the group, which keeps its changes in its log.
    #[serde(default)]
    pub origin: Vec<i32>,
    /// While its replicas are being reassigned (KIP-455).
    #[serde(default)]
    pub moving: Option<Moving>,
}

/// A reassignment in progress: `replicas` is then every broker that holds
/// a replica (the target first), as Kafka shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moving {
    pub target: Vec<i32>,
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

/// Where a partition is served from, seen from this broker.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Place {
    /// On this broker, by this shard.
    Here(usize),
    /// On another broker only.
    Elsewhere,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TopicMeta {
    pub name: String,
    pub id: uuid::Uuid,
    pub partitions: Vec<PartitionMeta>,
    pub replication_factor: i16,
    /// Only the configs set on the topic; the broker's defaults fill the rest.
    pub configs: BTreeMap<String, String>,
    #[serde(default)]
    pub internal: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TopicTable {
    pub version: u64,
    pub cluster_id: String,
    pub topics: BTreeMap<String, Arc<TopicMeta>>,
    #[serde(skip)]
    by_id: HashMap<uuid::Uuid, String>,
}

impl TopicTable {
    pub fn get(&self, name: &str) -> Option<&Arc<TopicMeta>> {
        self.topics.get(name)
    }

    pub fn by_id(&self, id: &uuid::Uuid) -> Option<&Arc<TopicMeta>> {
        self.by_id.get(id).and_then(|n| self.topics.get(n))
    }

    /// Which shard owns a partition, if it exists here.
    pub fn owner(&self, topic: &str, partition: i32) -> Option<usize> {
        match self.locate(topic, partition)? {
            Place::Here(s) => Some(s),
            Place::Elsewhere => None,
        }
    }

    /// The error for a partition this broker does not serve: another
    /// broker leads it (the client refreshes its metadata), or it does not
    /// exist.
    pub fn not_here(&self, topic: &str, partition: i32) -> ResponseError {
        match self.locate(topic, partition) {
            Some(_) => ResponseError::NotLeaderOrFollower,
            None => ResponseError::UnknownTopicOrPartition,
        }
    }

    /// Where a partition is, if it exists at all.
    pub fn locate(&self, topic: &str, partition: i32) -> Option<Place> {
        let t = self.topics.get(topic)?;
        let p = t.partitions.get(usize::try_from(partition).ok()?)?;
        Some(p.shard.map_or(Place::Elsewhere, Place::Here))
    }

    pub fn reindex(&mut self) {
        self.by_id = self.topics.values().map(|t| (t.id, t.name.clone())).collect();
    }

    fn shard_loads(&self, shards: usize) -> Vec<usize> {
        let mut load = vec![0; shards];
        for t in self.topics.values() {
            for s in t.partitions.iter().filter_map(|p| p.shard) {
                if s < shards {
                    load[s] += 1;
                }
            }
        }
        load
    }

    /// Places `n` new partitions on the least loaded shards.
    pub fn place(&self, n: usize, shards: usize, extra: &mut [usize]) -> Vec<usize> {
        let base = self.shard_loads(shards);
        (0..n)
            .map(|_| {
                let s = (0..shards).min_by_key(|&s| (base[s] + extra[s], s)).unwrap();
                extra[s] += 1;
                s
            })
            .collect()
    }

    /// Adds the internal `__consumer_offsets` topic if it is missing:
    /// compacted, its partitions spread round-robin over the shards so
    /// that groups spread with them. Returns whether the table changed.
    pub fn ensure_offsets_topic(&mut self, partitions: i32, segment_bytes: u64, shards: usize, node: i32) -> bool {
        if self.topics.contains_key(OFFSETS_TOPIC) {
            return false;
        }
        let meta = TopicMeta {
            name: OFFSETS_TOPIC.to_string(),
            id: uuid::Uuid::new_v4(),
            partitions: (0..partitions.max(1) as usize)
                .map(|i| PartitionMeta {
                    shard: Some(i % shards.max(1)),
                    leader_epoch: 0,
                    replicas: vec![node],
                    leader: None,
                    isr: vec![],
                    ..Default::default()
                })
                .collect(),
            replication_factor: 1,
            configs: offsets_topic_configs(segment_bytes),
            internal: true,
        };
        self.topics.insert(meta.name.clone(), Arc::new(meta));
        self.reindex();
        true
    }

    /// Loads the table, fixing placements for a changed `--cores`. `alone`:
    /// this broker (its node id) is not part of a cluster, so it holds
    /// every partition.
    pub fn load(data_dir: &Path, shards: usize, alone: Option<i32>) -> Result<TopicTable, String> {
        let path = data_dir.join("topics.json");
        let mut table = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice::<TopicTable>(&b).map_err(|e| format!("{}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                TopicTable { cluster_id: uuid::Uuid::new_v4().simple().to_string(), ..TopicTable::default() }
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let mut extra = vec![0; shards];
        let names: Vec<String> = table.topics.keys().cloned().collect();
        let mut moved = false;
        for name in names {
            if let Some(node) = alone {
                let t = &table.topics[&name];
                if t.partitions.iter().any(|p| p.replicas != [node]) {
                    let t = Arc::make_mut(table.topics.get_mut(&name).unwrap());
                    t.partitions.iter_mut().for_each(|p| p.replicas = vec![node]);
                    t.replication_factor = 1;
                    moved = true;
                }
            }
            let misplaced: Vec<usize> = table.topics[&name]
                .partitions
                .iter()
                .enumerate()
                .filter(|(_, p)| match p.shard {
                    Some(s) => s >= shards,
                    None => alone.is_some(),
                })
                .map(|(i, _)| i)
                .collect();
            if misplaced.is_empty() {
                continue;
            }
            let places = table.place(misplaced.len(), shards, &mut extra);
            let t = Arc::make_mut(table.topics.get_mut(&name).unwrap());
            for (i, s) in misplaced.into_iter().zip(places) {
                t.partitions[i].shard = Some(s);
            }
            moved = true;
        }
        table.reindex();
        if moved || !path.exists() {
            table.save(data_dir)?;
        }
        Ok(table)
    }

    pub fn save(&self, data_dir: &Path) -> Result<(), String> {
        let path = data_dir.join("topics.json");
        let tmp = data_dir.join("topics.json.tmp");
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(data_dir)?.sync_all()
        };
        write().map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Partition directories on disk that no topic owns (left by a crash
    /// in the middle of a deletion).
    pub fn orphan_dirs(&self, data_dir: &Path) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(data_dir) else { return vec![] };
        entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_string();
                let (topic, part) = name.rsplit_once('-')?;
                let part: usize = part.parse().ok()?;
                if topic == crate::cluster::METADATA_TOPIC {
                    return None;
                }
                let known =
                    self.topics.get(topic).and_then(|t| t.partitions.get(part)).is_some_and(|p| p.shard.is_some());
                (!known && valid_topic_name(topic).is_ok()).then(|| e.path())
            })
            .collect()
    }
}

/// Kafka's rule: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn valid_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 249 {
        return Err(format!("topic name {name:?} must be 1 to 249 characters"));
    }
    if name == "." || name == ".." {
        return Err(format!("topic name {name:?} is not allowed"));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-') {
        return Err(format!("topic name {name:?} may only contain ASCII letters, digits, '.', '_' and '-'"));
    }
    Ok(())
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewTopic {
    pub name: String,
    /// -1: the broker's `num.partitions`.
    pub partitions: i32,
    /// -1: the broker's `default.replication.factor`.
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
}

pub type TopicResult = Result<Arc<TopicMeta>, (ResponseError, String)>;

thread_local! {
    // Controller operations run one at a time (shard 0 only).
    static CONTROLLER_LOCK: std::rc::Rc<glommio::sync::Semaphore> = std::rc::Rc::new(glommio::sync::Semaphore::new(1));
}

pub async fn controller_lock() -> glommio::sync::StaticPermit {
    let lock = CONTROLLER_LOCK.with(|l| l.clone());
    lock.acquire_static_permit(1).await.expect("controller lock is never closed")
}

/// Creates topics (on shard 0; call through `invoke_on(0, ..)`).
pub async fn create_topics(topics: Vec<NewTopic>, validate_only: bool) -> Vec<TopicResult> {
    let shard = shard::current();
    let _permit = controller_lock().await;
    let config = shard.config.clone();
    let mut table = (*shard.topics()).clone();
    let mut results = Vec::with_capacity(topics.len());
    let mut extra = vec![0; shard.router.shards()];
    let mut created = Vec::new();
    for t in topics {
        let r = check_new_topic(&config, table.topics.keys(), 1, &t).map(|(partitions, rf)| {
            let shards = table.place(partitions as usize, config.cores, &mut extra);
            Arc::new(TopicMeta {
                name: t.name.clone(),
                id: uuid::Uuid::new_v4(),
                partitions: shards
                    .into_iter()
                    .map(|shard| PartitionMeta {
                        shard: Some(shard),
                        leader_epoch: 0,
                        replicas: vec![config.node_id],
                        leader: None,
                        isr: vec![],
                        ..Default::default()
                    })
                    .collect(),
                replication_factor: rf,
                configs: t.configs,
                internal: false,
            })
        });
        if let Ok(meta) = &r {
            if !validate_only {
                table.topics.insert(meta.name.clone(), meta.clone());
                created.push(meta.clone());
            }
        }
        results.push(r);
    }
    if created.is_empty() {
        return results;
    }
    if let Err(e) = commit(&mut table, &config.data_dir) {
        return results.into_iter().map(|_| Err((ResponseError::UnknownServerError, e.clone()))).collect();
    }
    let table = Arc::new(table);
    // Open the new partitions on their shards before anyone can see them.
    let mut opens = Vec::new();
    for s in 0..shard.router.shards() {
        let topics: Vec<Arc<TopicMeta>> = created.clone();
        opens.push(invoke_on(s, move || async move { crate::partition::open_owned(&topics).await }));
    }
    for (s, open) in opens.into_iter().enumerate() {
        if let Err(e) = open.await {
            tracing::error!(shard = s, %e, "opening new partitions failed");
        }
    }
    broadcast(table).await;
    results
}

/// Kafka's checks of a new topic against the topics there are and the
/// number of brokers registered; gives its partition count and
/// replication factor with the broker's defaults filled in.
pub fn check_new_topic<'a>(
    config: &BrokerConfig,
    existing: impl Iterator<Item = &'a String> + Clone,
    brokers: usize,
    t: &NewTopic,
) -> Result<(i32, i16), (ResponseError, String)> {
    valid_topic_name(&t.name).map_err(|e| (ResponseError::InvalidTopicException, e))?;
    // Kafka's answer; here the name also holds the metadata log's directory.
    if t.name == crate::cluster::METADATA_TOPIC {
        return Err((
            ResponseError::InvalidRequest,
            format!("Creation of internal topic {} is prohibited.", crate::cluster::METADATA_TOPIC),
        ));
    }
    if existing.clone().any(|k| *k == t.name) {
        return Err((ResponseError::TopicAlreadyExists, format!("Topic '{}' already exists.", t.name)));
    }
    // Kafka refuses names that collide once '.' and '_' are equated (metrics).
    let norm = |s: &str| s.replace('.', "_");
    if let Some(other) = existing.clone().find(|k| norm(k) == norm(&t.name)) {
        return Err((
            ResponseError::InvalidTopicException,
            format!("Topic '{}' collides with existing topic '{other}'", t.name),
        ));
    }
    let partitions = if t.partitions == -1 { config.num_partitions } else { t.partitions };
    if !(1..=100_000).contains(&partitions) {
        return Err((
            ResponseError::InvalidPartitions,
            format!("Number of partitions must be 1 to 100000, not {partitions}."),
        ));
    }
    let rf = if t.replication_factor == -1 { config.default_replication_factor } else { t.replication_factor };
    if rf < 1 {
        return Err((ResponseError::InvalidReplicationFactor, "Replication factor must be larger than 0.".into()));
    }
    if rf as usize > brokers {
        return Err((
            ResponseError::InvalidReplicationFactor,
            format!("Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {brokers} broker(s) are registered."),
        ));
    }

    for (k, v) in &t.configs {
        validate_topic_config(k, v).map_err(|e| (ResponseError::InvalidConfig, e))?;
    }
    Ok((partitions, rf))
}

/// Deletes topics by name (on shard 0).
pub async fn delete_topics(names: Vec<String>) -> Vec<Result<Arc<TopicMeta>, (ResponseError, String)>> {
    let shard = shard::current();
    let _permit = controller_lock().await;
    let mut table = (*shard.topics()).clone();
    let mut results = Vec::new();
    let mut deleted = Vec::new();
    for name in names {
        if table.topics.get(&name).is_some_and(|t| t.internal) {
            results.push(Err(internal_topic_not_deletable(&name)));
            continue;
        }
        match table.topics.remove(&name) {
            Some(meta) => {
                deleted.push(meta.clone());
                results.push(Ok(meta));
            }
            None => results.push(Err(unknown_topic_to_delete())),
        }
    }
    if deleted.is_empty() {
        return results;
    }
    if let Err(e) = commit(&mut table, &shard.config.data_dir) {
        return results.into_iter().map(|_| Err((ResponseError::UnknownServerError, e.clone()))).collect();
    }
    // Hide the topics everywhere first, then drop their logs.
    broadcast(Arc::new(table)).await;
    for s in 0..shard.router.shards() {
        let topics = deleted.clone();
        invoke_on(s, move || async move { crate::partition::delete_owned(&topics).await }).await;
    }
    results
}

pub fn internal_topic_not_deletable(name: &str) -> (ResponseError, String) {
    (ResponseError::InvalidTopicException, format!("Topic {name} is internal and cannot be deleted."))
}

pub fn unknown_topic_to_delete() -> (ResponseError, String) {
    (ResponseError::UnknownTopicOrPartition, "This server does not host this topic-partition.".into())
}

pub async fn broadcast(table: Arc<TopicTable>) {
    let shard = shard::current();
    for s in 0..shard.router.shards() {
        let t = table.clone();
        invoke_on(s, move || async move { shard::current().set_topics(t) }).await;
    }
}

/// CreatePartitions: grows topics to `count` partitions (on shard 0).
pub async fn create_partitions(
    requests: Vec<(String, i32)>,
    validate_only: bool,
) -> Vec<Result<(), (ResponseError, String)>> {
    let shard = shard::current();
    let _permit = controller_lock().await;
    let mut table = (*shard.topics()).clone();
    let mut extra = vec![0; shard.router.shards()];
    let mut grown = Vec::new();
    let mut results = Vec::new();
    for (name, count) in requests {
        let Some(meta) = table.topics.get(&name).cloned() else {
            results.push(Err((ResponseError::UnknownTopicOrPartition, format!("The topic '{name}' does not exist."))));
            continue;
        };
        let current = meta.partitions.len() as i32;
        if let Err(e) = check_new_partitions(&name, meta.internal, current, count) {
            results.push(Err(e));
            continue;
        }
        if !validate_only {
            let places = table.place((count - current) as usize, shard.config.cores, &mut extra);
            let mut meta = (*meta).clone();
            let node = shard.config.node_id;
            meta.partitions.extend(places.into_iter().map(|shard| PartitionMeta {
                shard: Some(shard),
                leader_epoch: 0,
                replicas: vec![node],
                leader: None,
                isr: vec![],
                ..Default::default()
            }));
            let meta = Arc::new(meta);
            table.topics.insert(name, meta.clone());
            grown.push(meta);
        }
        results.push(Ok(()));
    }
    if grown.is_empty() {
        return results;
    }
    if let Err(e) = commit(&mut table, &shard.config.data_dir) {
        return results.into_iter().map(|_| Err((ResponseError::UnknownServerError, e.clone()))).collect();
    }
    for s in 0..shard.router.shards() {
        let topics = grown.clone();
        if let Err(e) = invoke_on(s, move || async move { crate::partition::open_owned(&topics).await }).await {
            tracing::error!(shard = s, %e, "opening new partitions failed");
        }
    }
    broadcast(Arc::new(table)).await;
    results
}

/// Kafka's checks of a CreatePartitions asking a topic with `current`
/// partitions for `count`.
pub fn check_new_partitions(
    name: &str,
    internal: bool,
    current: i32,
    count: i32,
) -> Result<(), (ResponseError, String)> {
    if internal {
        return Err((ResponseError::InvalidPartitions, format!("Topic {name} is internal: its partitions are fixed.")));
    }
    if count <= current || count > 100_000 {
        let msg = if count == current {
            format!("Topic already has {current} partitions.")
        } else {
            format!("Topic currently has {current} partitions, which is higher than the requested {count}.")
        };
        return Err((ResponseError::InvalidPartitions, msg));
    }
    Ok(())
}

/// The configs `__consumer_offsets` is created with.
pub fn offsets_topic_configs(segment_bytes: u64) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("cleanup.policy".to_string(), "compact".to_string()),
        ("segment.bytes".to_string(), segment_bytes.to_string()),
    ])
}

/// A change to one topic config (AlterConfigs replaces all of them).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ConfigOp {
    Set(String, String),
    Delete(String),
    Append(String, String),
    Subtract(String, String),
}

/// Alters topic configs, applied live to the topics' partitions (shard 0).
/// `replace`: the ops are the topic's whole new config (AlterConfigs).
pub async fn alter_configs(
    changes: Vec<(String, Vec<ConfigOp>, bool)>,
    validate_only: bool,
) -> Vec<Result<(), (ResponseError, String)>> {
    let shard = shard::current();
    let _permit = controller_lock().await;
    let mut table = (*shard.topics()).clone();
    let mut changed = Vec::new();
    let mut results = Vec::new();
    for (name, ops, replace) in changes {
        let Some(meta) = table.topics.get(&name).cloned() else {
            results.push(Err((ResponseError::UnknownTopicOrPartition, format!("The topic '{name}' does not exist."))));
            continue;
        };
        match apply_ops(&meta.configs, &ops, replace, &shard.config) {
            Err(e) => results.push(Err((ResponseError::InvalidConfig, e))),
            Ok(configs) => {
                if !validate_only && configs != meta.configs {
                    let mut m = (*meta).clone();
                    m.configs = configs;
                    let m = Arc::new(m);
                    table.topics.insert(name, m.clone());
                    changed.push(m);
                }
                results.push(Ok(()));
            }
        }
    }
    if changed.is_empty() {
        return results;
    }
    if let Err(e) = commit(&mut table, &shard.config.data_dir) {
        return results.into_iter().map(|_| Err((ResponseError::UnknownServerError, e.clone()))).collect();
    }
    broadcast(Arc::new(table)).await;
    for s in 0..shard.router.shards() {
        let topics = changed.clone();
        invoke_on(s, move || async move {
            let shard = shard::current();
            for t in &topics {
                let config = shard.config.log_config(&t.configs);
                for i in 0..t.partitions.len() {
                    if let Some(p) = shard.partition(&TopicPartition::new(&t.name, i as i32)) {
                        p.set_config(config.clone());
                    }
                }
            }
        })
        .await;
    }
    results
}

/// The topic's configs after `ops` (Kafka's checks of each).
pub fn apply_ops(
    current: &BTreeMap<String, String>,
    ops: &[ConfigOp],
    replace: bool,
    config: &BrokerConfig,
) -> Result<BTreeMap<String, String>, String> {
    let mut configs = if replace { BTreeMap::new() } else { current.clone() };
    let list = |key: &str, configs: &BTreeMap<String, String>| -> Result<Vec<String>, String> {
        if crate::config::TopicDefaults::config_type(key) != 7 {
            return Err(format!("{key} is not a list: APPEND and SUBTRACT apply only to lists"));
        }
        let v = configs.get(key).cloned().or_else(|| config.log_defaults.default_value(key)).unwrap_or_default();
        Ok(v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
    };
    for op in ops {
        match op {
            ConfigOp::Set(k, v) => {
                validate_topic_config(k, v)?;
                configs.insert(k.clone(), v.clone());
            }
            // As Kafka: deleting a name that is not set (known or not) is a no-op.
            ConfigOp::Delete(k) => {
                configs.remove(k);
            }
            ConfigOp::Append(k, v) => {
                let mut items = list(k, &configs)?;
                for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if !items.iter().any(|i| i == item) {
                        items.push(item.to_string());
                    }
                }
                let joined = items.join(",");
                validate_topic_config(k, &joined)?;
                configs.insert(k.clone(), joined);
            }
            ConfigOp::Subtract(k, v) => {
                let drop: Vec<&str> = v.split(',').map(str::trim).collect();
                let items: Vec<String> =
                    list(k, &configs)?.into_iter().filter(|i| !drop.contains(&i.as_str())).collect();
                let joined = items.join(",");
                if !joined.is_empty() {
                    validate_topic_config(k, &joined)?;
                }
                configs.insert(k.clone(), joined);
            }
        }
    }
    Ok(configs)
}

/// Bumps the version and writes the table durably.
fn commit(table: &mut TopicTable, data_dir: &Path) -> Result<(), String> {
    table.version += 1;
    table.reindex();
    table.save(data_dir).inspect_err(|e| tracing::error!(%e, "saving topics failed"))
}
