//! A cluster of brokers (KRaft-style combined mode): every node is a voter
//! of the metadata quorum and a broker. `controller` runs this node's
//! member of the quorum; `image` is what the metadata log says. Shards get
//! a read-only copy of the image (`ClusterView`) on every change.
//!
//! Without `controller.quorum.voters` none of this runs and the broker is
//! a cluster of one, as before.

pub mod admin;
pub mod balance;
pub mod controller;
pub mod image;
pub mod reconcile;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sluice_consensus::transport::{Frame, GroupId, Transport};

use crate::config::BrokerConfig;
use crate::shard::Router;
pub use controller::QuorumState;
use image::{BrokerInfo, MetadataImage};

/// Where the metadata log is kept in the data dir (Kafka's name).
pub const METADATA_DIR: &str = "__cluster_metadata-0";
/// The metadata log's topic name, which no user topic may take.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// What a shard knows of the cluster.
#[derive(Debug)]
pub struct ClusterView {
    /// Increases with every change this process publishes.
    pub version: u64,
    pub image: Arc<MetadataImage>,
}

impl ClusterView {
    /// Brokers clients may use: registered and not fenced.
    pub fn live_brokers(&self) -> Vec<&BrokerInfo> {
        self.image.unfenced().collect()
    }
}

static EVENTS: OnceLock<flume::Sender<controller::Event>> = OnceLock::new();
static TRANSPORT: OnceLock<Arc<Transport>> = OnceLock::new();

/// A partition's name on the wire between brokers: its topic id and index.
pub fn group_id(topic: uuid::Uuid, partition: i32) -> GroupId {
    let mut g = [0u8; 20];
    g[..16].copy_from_slice(topic.as_bytes());
    g[16..].copy_from_slice(&partition.to_be_bytes());
    g
}

/// Sends a partition group's message to the broker it is for (dropped
/// when the link is down or full: Raft sends again).
pub fn send_group(group: GroupId, msg: sluice_consensus::Message) {
    if let Some(t) = TRANSPORT.get() {
        let to = msg.to;
        t.send(to, Frame::Group(group, msg));
    }
}

/// Asks replica `to` of a replicated partition to take over its leadership
/// (ElectLeaders; see `replica::transfer_request`): over the transport, or
/// straight to the partition's shard when `to` is on this broker.
pub fn request_leader_transfer(topic: uuid::Uuid, partition: i32, to: i32) {
    let me = crate::shard::current().config.node_id;
    let m = sluice_consensus::replica::transfer_request(controller::raft_id(to), controller::raft_id(me));
    let group = group_id(topic, partition);
    if to == me {
        route_group(controller::raft_id(me), group, m);
    } else {
        send_group(group, m);
    }
}

/// On shard 0: hands a partition group's message to the shard that owns
/// the partition here.
fn route_group(from: u64, group: GroupId, msg: sluice_consensus::Message) {
    let shard = crate::shard::current();
    let table = shard.topics();
    let topic = uuid::Uuid::from_bytes(group[..16].try_into().expect("16 bytes"));
    let partition = i32::from_be_bytes(group[16..].try_into().expect("4 bytes"));
    let Some(meta) = table.by_id(&topic) else {
        tracing::debug!(from, %topic, partition, "raft message for a topic not known here; dropped");
        return;
    };
    let Some(owner) = meta.partitions.get(partition.max(0) as usize).and_then(|p| p.shard) else { return };
    let tp = crate::topics::TopicPartition::new(&meta.name, partition);
    shard.router.post(owner, move || {
        if let Some(p) = crate::shard::current().partition(&tp) {
            p.raft_message(msg);
        }
    });
}

/// Starts this node's controller when a quorum is configured. `listener`
/// is the controller listener, bound by the caller so that a port in use
/// fails start-up.
pub fn start(
    config: &BrokerConfig,
    data_dir: &Path,
    listener: std::net::TcpListener,
    router: Router,
) -> Result<(), String> {
    let q = config.quorum.as_ref().ok_or("no controller.quorum.voters")?;
    let settings = controller::Settings {
        node: config.node_id,
        voters: q.voters.iter().map(|v| (v.id, format!("{}:{}", v.host, v.port))).collect(),
        host: config.advertised.0.clone(),
        port: config.advertised.1,
        rack: config.rack.clone(),
        session_timeout: Duration::from_millis(config.broker_session_timeout_ms),
        heartbeat_interval: Duration::from_millis(config.broker_heartbeat_interval_ms),
        config: Arc::new(config.clone()),
    };
    let (tx, rx) = flume::bounded(16 * 1024);
    let group_router = router.clone();
    let publish = Box::new(move |view: Arc<ClusterView>| {
        for s in 0..router.shards() {
            let view = view.clone();
            router.post(s, move || {
                crate::shard::current().set_cluster(view);
                // Shard 0 keeps this broker's topic table true to the image.
                if s == 0 {
                    glommio::spawn_local(reconcile::run()).detach();
                }
            });
        }
    });
    let groups = move |from: u64, group: GroupId, msg: sluice_consensus::Message| {
        // Shard 0 knows where each partition is; it passes the message on.
        group_router.post(0, move || route_group(from, group, msg));
    };
    let ctl =
        controller::Controller::new(settings, &data_dir.join(METADATA_DIR), listener, tx.clone(), publish, groups)?;
    let _ = TRANSPORT.set(ctl.transport());
    let _ = EVENTS.set(tx);
    std::thread::Builder::new()
        .name("controller".into())
        .spawn(move || ctl.run(rx))
        .map_err(|e| format!("starting the controller thread: {e}"))?;
    Ok(())
}

fn events() -> Option<&'static flume::Sender<controller::Event>> {
    EVENTS.get()
}

/// The quorum as its leader describes it (None: no quorum configured).
pub async fn quorum() -> Option<Result<QuorumState, String>> {
    let events = EVENTS.get()?;
    let (tx, rx) = flume::bounded(1);
    if events.send_async(controller::Event::Quorum(tx)).await.is_err() {
        return Some(Err("the controller has stopped".into()));
    }
    Some(rx.recv_async().await.unwrap_or_else(|_| Err("the controller has stopped".into())))
}
