//! Start-up and shutdown: one glommio executor (shard) per core, each with
//! its own listener on the shared port (SO_REUSEPORT spreads connections),
//! its own partitions, and an inbox for work sent by the other shards.

pub mod connection;
pub mod response;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use glommio::net::TcpListener;
use glommio::{LocalExecutorPoolBuilder, PoolPlacement};

use crate::config::BrokerConfig;
use crate::lock::DataDirLock;
use crate::producer_ids::ProducerIds;
use crate::shard::{self, Router, Shard};
use crate::topics::TopicTable;

pub fn run(config: BrokerConfig) -> Result<(), String> {
    crate::sysinfo::report(&config.data_dir, config.cores)?;
    let data_dir = &config.data_dir.clone();
    std::fs::create_dir_all(data_dir).map_err(|e| format!("data dir {}: {e}", data_dir.display()))?;
    let _lock = DataDirLock::acquire(data_dir)?;
    // Bind once without SO_REUSEPORT so that a port in use fails loudly.
    drop(std::net::TcpListener::bind(config.listener).map_err(|e| format!("listen on {}: {e}", config.listener))?);
    let controller_listener = match &config.quorum {
        Some(q) => Some(std::net::TcpListener::bind(q.listener).map_err(|e| format!("listen on {}: {e}", q.listener))?),
        None => None,
    };
    let cores = config.cores;
    // In a cluster the metadata log says which topics there are (this
    // broker's copy of its last word serves until the log is replayed);
    // __consumer_offsets is created there on first use, as Kafka does.
    let alone = config.quorum.is_none().then_some(config.node_id);
    let mut table = TopicTable::load(data_dir, cores, alone)?;
    let joined = data_dir.join(crate::cluster::METADATA_DIR).exists();
    if alone.is_none() && !joined && !table.topics.is_empty() {
        // The metadata log would not know these topics and they would be
        // deleted: refuse rather than lose them.
        return Err(format!(
            "{} holds {} topic(s) of a broker that ran alone; a node joining a cluster needs a data dir of its own (moving a single broker's topics into a cluster is not supported)",
            data_dir.display(),
            table.topics.len()
        ));
    }
    if alone.is_some()
        && table.ensure_offsets_topic(
            config.offsets_topic_num_partitions,
            config.offsets_topic_segment_bytes,
            cores,
            config.node_id,
        )
    {
        table.save(data_dir)?;
    }
    for orphan in table.orphan_dirs(data_dir) {
        tracing::warn!(dir = %orphan.display(), "removing partition directory of a deleted topic");
        let _ = std::fs::remove_dir_all(&orphan);
    }
    let producer_ids = Arc::new(ProducerIds::open(data_dir)?);
    let table = Arc::new(table);
    let config = Arc::new(config);
    let (router, inboxes) = Router::new(cores);
    if let Some(listener) = controller_listener {
        crate::cluster::start(&config, data_dir, listener, router.clone())?;
    }
    tracing::info!(
        listener = %config.listener,
        advertised = %format!("{}:{}", config.advertised.0, config.advertised.1),
        cores,
        data_dir = %data_dir.display(),
        topics = table.topics.len(),
        "sluice starting"
    );
    let signal_router = router.clone();
    std::thread::spawn(move || {
        let mut signals = signal_hook::iterator::Signals::new([libc::SIGTERM, libc::SIGINT]).expect("signal handler");
        let mut seen = 0;
        for sig in signals.forever() {
            seen += 1;
            if seen > 1 {
                tracing::warn!(sig, "second signal: exiting without a clean shutdown");
                std::process::exit(1);
            }
            tracing::info!(sig, "shutting down: flushing every partition");
            for s in 0..signal_router.shards() {
                signal_router.post(s, || shard::current().begin_shutdown());
            }
        }
    });
    let inboxes = Arc::new(Mutex::new(inboxes.into_iter().map(Some).collect::<Vec<_>>()));
    let next_id = Arc::new(AtomicUsize::new(0));
    // Pin to the CPUs this process may use (systemd CPUAffinity=, taskset,
    // a container's cpuset), one shard per CPU while there are enough.
    let allowed = crate::sysinfo::allowed_cpus();
    let cpus = glommio::CpuSet::online().map(|s| s.filter(|l| allowed.contains(&l.cpu)));
    let placement = match cpus {
        Ok(set) if cores <= set.len() => PoolPlacement::MaxSpread(cores, Some(set)),
        _ => PoolPlacement::Unbound(cores),
    };
    let pool = LocalExecutorPoolBuilder::new(placement)
        .name("shard")
        .on_all_shards(move || {
            let id = next_id.fetch_add(1, Ordering::SeqCst);
            let inbox = inboxes.lock().unwrap()[id].take().expect("one inbox per shard");
            let shard = Shard::new(id, router.clone(), config.clone(), table.clone(), producer_ids.clone());
            async move { run_shard(shard, inbox).await }
        })
        .map_err(|e| format!("starting shards: {e}"))?;
    let mut failed = None;
    for r in pool.join_all() {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failed = Some(e),
            Err(e) => failed = Some(format!("shard failed: {e}")),
        }
    }
    match failed {
        Some(e) => Err(e),
        None => {
            tracing::info!("shut down cleanly");
            Ok(())
        }
    }
}

/// A listener of this shard's own on the shared port. SO_REUSEPORT lets
/// every shard bind it; SO_REUSEADDR (which glommio's `bind` does not set)
/// lets a restarted broker bind while the last one's connections linger in
/// TIME_WAIT, as Kafka's server socket allows.
fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    use std::os::fd::{FromRawFd, IntoRawFd};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    // SAFETY: a bound, listening TCP socket whose ownership passes here.
    Ok(unsafe { TcpListener::from_raw_fd(socket.into_raw_fd()) })
}

async fn run_shard(shard: Shard, inbox: flume::Receiver<Box<dyn FnOnce() + Send>>) -> Result<(), String> {
    let shard = shard::install(shard);
    glommio::spawn_local(shard::serve_inbox(inbox)).detach();
    let topics: Vec<_> = shard.topics().topics.values().cloned().collect();
    crate::partition::open_owned(&topics).await.map_err(|e| format!("shard {}: {e}", shard.id))?;
    // Committed offsets back in memory before this shard's groups serve.
    crate::groups::load_owned().await.map_err(|e| format!("shard {}: {e}", shard.id))?;
    if shard.config.quorum.is_some() {
        crate::cluster::reconcile::shard_started(&shard.router);
    }
    let listener = listen(shard.config.listener).map_err(|e| format!("listen on {}: {e}", shard.config.listener))?;
    let max_frame = shard.config.socket_request_max_bytes;
    let stop = shard.shutdown_signal();
    futures_lite::future::or(
        async {
            loop {
                match listener.accept().await {
                    Ok(conn) => {
                        glommio::spawn_local(connection::serve(conn, max_frame)).detach();
                    }
                    Err(e) => {
                        tracing::warn!(%e, "accept failed");
                        glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
                    }
                }
            }
        },
        async {
            let _ = stop.recv_async().await;
        },
    )
    .await;
    crate::partition::close_all().await;
    Ok(())
}
