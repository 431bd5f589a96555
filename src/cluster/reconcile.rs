//! Keeps this broker's topic table true to the metadata image: on shard 0,
//! after every change the controller publishes, it derives the table
//! (every topic of the cluster; a shard for each partition this broker
//! holds a replica of, kept where it already was), drops the logs of
//! topics that are gone, opens the logs of partitions new here, and sends
//! the table to every shard. `topics.json` keeps the placement across
//! restarts.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::image::{MetadataImage, TopicImage};
use crate::shard::{self, invoke_on};
use crate::topics::{self, Moving, PartitionMeta, TopicMeta, TopicPartition, TopicTable};

thread_local! {
    /// The topics of the image last reconciled.
    static DONE: RefCell<Option<BTreeMap<String, TopicImage>>> = const { RefCell::new(None) };
}

/// Derives the table for `image` from the one there is (`old`), placing
/// partitions new to this broker on the least loaded shards.
pub fn derive(old: &TopicTable, image: &MetadataImage, node: i32, shards: usize) -> TopicTable {
    let mut table = TopicTable::default();
    table.version = old.version + 1;
    table.cluster_id = image.cluster_id.clone().unwrap_or_else(|| old.cluster_id.clone());
    // First what stays where it is, so that new partitions see the load.
    let mut new_here = Vec::new();
    for (name, t) in &image.topics {
        let before = old.get(name).filter(|m| m.id == t.id);
        let partitions = t
            .partitions
            .iter()
            .enumerate()
            .map(|(i, _)| {
                let replicas = t.replicas_of(i);
                let here = replicas.contains(&node);
                let shard =
                    before.and_then(|m| m.partitions.get(i)).and_then(|p| p.shard).filter(|s| here && *s < shards);
                if here && shard.is_none() {
                    new_here.push((name.clone(), i));
                }
                let state = t.states.get(&(i as i32));
                let leader_epoch = state.map_or(0, |s| s.epoch);
                let moving = t.moving.get(&(i as i32)).map(|m| Moving {
                    target: m.target.clone(),
                    adding: m.target.iter().copied().filter(|b| !t.partitions[i].contains(b)).collect(),
                    removing: m.hosts.iter().copied().filter(|b| !m.target.contains(b)).collect(),
                });
                PartitionMeta {
                    shard,
                    leader_epoch,
                    replicas,
                    leader: state.map(|s| s.leader),
                    isr: state.map(|s| s.isr.clone()).unwrap_or_default(),
                    origin: t.origin_of(i),
                    moving,
                }
            })
            .collect();
        let meta = TopicMeta {
            name: name.clone(),
            id: t.id,
            partitions,
            replication_factor: t.partitions.first().map_or(1, |r| r.len() as i16),
            configs: t.configs.clone(),
            internal: t.internal,
        };
        table.topics.insert(name.clone(), Arc::new(meta));
    }
    let mut extra = vec![0; shards];
    let places = table.place(new_here.len(), shards, &mut extra);
    for ((name, i), s) in new_here.into_iter().zip(places) {
        Arc::make_mut(table.topics.get_mut(&name).expect("derived above")).partitions[i].shard = Some(s);
    }
    table.reindex();
    table
}

/// Shards done opening the partitions of the table they started with.
static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A shard has opened its partitions; once all have, shard 0 reconciles
/// (changes published before then waited: a deletion must not run before
/// the shard opening the partition at start-up, or the log comes back).
pub fn shard_started(router: &crate::shard::Router) {
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    if n == router.shards() {
        router.post(0, || {
            glommio::spawn_local(run()).detach();
        });
    }
}

/// Runs on shard 0 after each published change; one at a time.
pub async fn run() {
    let shard = shard::current();
    if STARTED.load(std::sync::atomic::Ordering::SeqCst) < shard.router.shards() {
        return;
    }
    let _permit = topics::controller_lock().await;
    let Some(view) = shard.cluster() else { return };
    if DONE.with(|d| d.borrow().as_ref() == Some(&view.image.topics)) {
        return;
    }
    let old = shard.topics();
    let table = derive(&old, &view.image, shard.config.node_id, shard.router.shards());
    let removed: Vec<Arc<TopicMeta>> =
        old.topics.values().filter(|m| table.get(&m.name).is_none_or(|t| t.id != m.id)).cloned().collect();
    // Replicas a finished reassignment took from this broker.
    let mut moved_away: Vec<(usize, TopicPartition)> = Vec::new();
    for m in old.topics.values() {
        let Some(t) = table.get(&m.name).filter(|t| t.id == m.id) else { continue };
        for (i, p) in m.partitions.iter().enumerate() {
            if let (Some(s), Some(None)) = (p.shard, t.partitions.get(i).map(|n| n.shard)) {
                moved_away.push((s, TopicPartition::new(&m.name, i as i32)));
            }
        }
    }
    let is_new_here = |t: &TopicMeta, i: usize| {
        old.get(&t.name).filter(|m| m.id == t.id).and_then(|m| m.partitions.get(i)).is_none_or(|p| p.shard.is_none())
    };
    let opened: Vec<Arc<TopicMeta>> = table
        .topics
        .values()
        .filter(|t| t.partitions.iter().enumerate().any(|(i, p)| p.shard.is_some() && is_new_here(t, i)))
        .cloned()
        .collect();
    let reconfigured: Vec<Arc<TopicMeta>> = table
        .topics
        .values()
        .filter(|t| old.get(&t.name).is_some_and(|m| m.id == t.id && m.configs != t.configs))
        .cloned()
        .collect();
    // Logs of topics that are gone go first: a topic of the same name
    // created since must not find the old one's segments.
    for s in 0..shard.router.shards() {
        let topics = removed.clone();
        invoke_on(s, move || async move { crate::partition::delete_owned(&topics).await }).await;
    }
    for (s, tp) in moved_away {
        tracing::info!(partition = ?tp, "the replica here was reassigned away; deleting it");
        invoke_on(s, move || async move { crate::partition::delete_one(&tp).await }).await;
    }
    if let Err(e) = table.save(&shard.config.data_dir) {
        tracing::error!(%e, "saving the topic table failed");
    }
    for s in 0..shard.router.shards() {
        let topics = opened.clone();
        if let Err(e) = invoke_on(s, move || async move { crate::partition::open_owned(&topics).await }).await {
            tracing::error!(shard = s, %e, "opening partitions placed on this broker failed");
        }
    }
    let table = Arc::new(table);
    topics::broadcast(table.clone()).await;
    for s in 0..shard.router.shards() {
        let topics = reconfigured.clone();
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
    if !removed.is_empty() || !opened.is_empty() {
        tracing::info!(
            topics = table.topics.len(),
            removed = removed.len(),
            opened = opened.len(),
            "topic table follows the metadata log"
        );
    }
    DONE.with(|d| *d.borrow_mut() = Some(view.image.topics.clone()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_is_kept_and_new_partitions_here_get_shards() {
        let id = uuid::Uuid::new_v4();
        let mut image = MetadataImage::default();
        image.topics.insert(
            "t".into(),
            TopicImage {
                id,
                partitions: vec![vec![1], vec![2], vec![1]],
                configs: Default::default(),
                internal: false,
                states: Default::default(),
                moving: Default::default(),
                origins: Default::default(),
            },
        );
        let t1 = derive(&TopicTable::default(), &image, 1, 2);
        let shards: Vec<_> = t1.get("t").unwrap().partitions.iter().map(|p| p.shard).collect();
        assert_eq!(shards, vec![Some(0), None, Some(1)]);
        assert_eq!(t1.owner("t", 1), None);
        assert_eq!(t1.locate("t", 1), Some(topics::Place::Elsewhere));
        image.topics.get_mut("t").unwrap().partitions.push(vec![1]);
        let t2 = derive(&t1, &image, 1, 2);
        let shards: Vec<_> = t2.get("t").unwrap().partitions.iter().map(|p| p.shard).collect();
        assert_eq!(&shards[..3], &[Some(0), None, Some(1)], "placement kept");
        assert!(shards[3].is_some());
        // Recreated under a new id: placed afresh.
        image.topics.get_mut("t").unwrap().id = uuid::Uuid::new_v4();
        assert_ne!(derive(&t2, &image, 1, 2).get("t").unwrap().id, id);
    }
}
