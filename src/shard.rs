//! Shards: one glommio executor per core, each owning some partitions.
//! Shards share nothing; work for another shard is sent to its inbox as a
//! closure that builds the future on that shard (`invoke_on`).

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;

use crate::cluster::ClusterView;
use crate::config::BrokerConfig;
use crate::partition::Partition;
use crate::producer_ids::ProducerIds;
use crate::topics::{TopicPartition, TopicTable};

type Job = Box<dyn FnOnce() + Send>;

/// Senders to every shard's inbox; cheap to clone and `Send`.
#[derive(Clone)]
pub struct Router {
    inboxes: Arc<Vec<flume::Sender<Job>>>,
}

impl Router {
    pub fn new(shards: usize) -> (Router, Vec<flume::Receiver<Job>>) {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..shards).map(|_| flume::unbounded()).unzip();
        (Router { inboxes: Arc::new(txs) }, rxs)
    }

    pub fn shards(&self) -> usize {
        self.inboxes.len()
    }

    /// Runs `f` on the executor that `Job`s for `shard` reach, without
    /// waiting (used from outside any shard, e.g. the signal thread).
    pub fn post(&self, shard: usize, f: impl FnOnce() + Send + 'static) {
        let _ = self.inboxes[shard].send(Box::new(f));
    }
}

/// Drains a shard's inbox: each job spawns its own task.
pub async fn serve_inbox(rx: flume::Receiver<Job>) {
    while let Ok(job) = rx.recv_async().await {
        job();
    }
}

/// Runs `f` on `shard` and returns its result here. Same-shard calls run
/// inline; others cross through the target's inbox.
pub async fn invoke_on<F, Fut, T>(shard: usize, f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let here = current();
    if here.id == shard {
        return f().await;
    }
    let (tx, rx) = flume::bounded(1);
    here.router.post(shard, move || {
        glommio::spawn_local(async move {
            let _ = tx.send_async(f().await).await;
        })
        .detach();
    });
    match rx.recv_async().await {
        Ok(v) => v,
        // The target shard has stopped: only during shutdown. Never resolve.
        Err(_) => std::future::pending().await,
    }
}

/// What one shard holds. Lives in a thread-local on its executor.
pub struct Shard {
    pub id: usize,
    pub router: Router,
    pub config: Arc<BrokerConfig>,
    /// Read-only copy of the topic table; replaced whole on every change.
    topics: RefCell<Arc<TopicTable>>,
    /// Partitions this shard owns.
    pub partitions: RefCell<HashMap<TopicPartition, Rc<Partition>>>,
    pub producer_ids: Arc<ProducerIds>,
    /// The cluster as the metadata log says (None: a broker on its own).
    cluster: RefCell<Option<Arc<ClusterView>>>,
    shutdown: (flume::Sender<()>, flume::Receiver<()>),
}

thread_local! {
    static CURRENT: OnceCell<Rc<Shard>> = const { OnceCell::new() };
}

pub fn install(shard: Shard) -> Rc<Shard> {
    let rc = Rc::new(shard);
    CURRENT.with(|c| {
        let _ = c.set(rc.clone());
    });
    rc
}

/// The shard this thread runs.
pub fn current() -> Rc<Shard> {
    CURRENT.with(|c| c.get().cloned()).expect("not on a shard thread")
}

impl Shard {
    pub fn new(
        id: usize,
        router: Router,
        config: Arc<BrokerConfig>,
        topics: Arc<TopicTable>,
        producer_ids: Arc<ProducerIds>,
    ) -> Shard {
        Shard {
            id,
            router,
            config,
            topics: RefCell::new(topics),
            partitions: RefCell::new(HashMap::new()),
            producer_ids,
            cluster: RefCell::new(None),
            shutdown: flume::bounded(1),
        }
    }

    pub fn begin_shutdown(&self) {
        let _ = self.shutdown.0.try_send(());
    }

    pub fn shutdown_signal(&self) -> flume::Receiver<()> {
        self.shutdown.1.clone()
    }

    pub fn topics(&self) -> Arc<TopicTable> {
        self.topics.borrow().clone()
    }

    pub fn set_topics(&self, table: Arc<TopicTable>) {
        let mut t = self.topics.borrow_mut();
        if table.version > t.version {
            *t = table;
        }
    }

    pub fn cluster(&self) -> Option<Arc<ClusterView>> {
        self.cluster.borrow().clone()
    }

    pub fn set_cluster(&self, view: Arc<ClusterView>) {
        let mut c = self.cluster.borrow_mut();
        if c.as_ref().is_none_or(|old| view.version > old.version) {
            *c = Some(view);
        }
    }

    pub fn partition(&self, tp: &TopicPartition) -> Option<Rc<Partition>> {
        self.partitions.borrow().get(tp).cloned()
    }
}
