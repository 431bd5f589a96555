//! The official Java client (kafka-clients 4.3.0, from scripts/test-deps.sh)
//! against Sluice, with its defaults, doing what Apache Spark's Kafka source
//! and sink do. The programs are tests/java/*.java (compiled by the harness):
//!
//! - `AdminCheck`: the Admin API call by call (topics and cluster, offsets by
//!   time and deleteRecords, configs, createPartitions, log dirs), each a
//!   named check printing `OK`/`FAIL` with the exception and error code;
//! - `IdemProducer`: the default producer (idempotent, acks=all) in a paced
//!   send loop; the tests SIGKILL and restart the broker under it, or cut its
//!   connections through a proxy after letting requests through with their
//!   responses swallowed, and then check that every acknowledged record is in
//!   the log exactly once, at the offset its acknowledgement named;
//! - `RangeConsumer`: a Spark executor's reads: Admin lists earliest/latest,
//!   then assign + seek + poll of exactly [start, end) per partition.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use common::idem::{unhex, IdemRun};
use common::records::{assert_contiguous, assert_round_trip};
use common::{
    acked_ends, ck_create, ck_produce, java, java_json, spawn_java, unique_name, Broker, Json, Rec, RunningClient,
};

// ---------------------------------------------------------------------------
// Admin

/// Runs `AdminCheck COMMAND BOOTSTRAP TOPIC extra...`; every check must pass.
/// Its OK/FAIL lines are printed either way (see them with --nocapture).
fn admin_check(broker: &Broker, command: &str, extra: &[&str]) {
    let topic = unique_name(&format!("java-{command}"));
    let boot = broker.bootstrap();
    let mut args = vec![command, boot.as_str(), topic.as_str()];
    args.extend_from_slice(extra);
    let out = java("AdminCheck", &args);
    expect_checks_passed(&out, &format!("AdminCheck {command}"));
}

fn expect_checks_passed(out: &Output, what: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("--- {what} ---\n{stdout}");
    if !out.status.success() {
        let failed: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stderr_tail: Vec<&str> = stderr.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect();
        panic!(
            "{what}: {} check(s) failed ({}):\n{}\n--- stderr (tail) ---\n{}",
            failed.len(),
            out.status,
            failed.join("\n"),
            stderr_tail.join("\n")
        );
    }
}

#[test]
fn admin_cluster_and_topics() {
    let broker = Broker::start();
    admin_check(&broker, "topics", &[]);
}

#[test]
fn admin_list_offsets_by_time_and_delete_records() {
    let broker = Broker::start();
    admin_check(&broker, "offsets", &[]);
}

/// A static broker setting (log.segment.bytes) must show up in both the
/// broker's and the topic's DescribeConfigs with source STATIC_BROKER_CONFIG;
/// the short retention check interval lets retention.ms act within seconds.
#[test]
fn admin_describe_and_alter_configs() {
    let broker = Broker::start_with(&["log.segment.bytes=536870912", "log.retention.check.interval.ms=200"], 2);
    let static_segment_bytes: &[&str] =
        if broker.is_external() { &[] } else { &["--static-segment-bytes", "536870912"] };
    admin_check(&broker, "configs", static_segment_bytes);
}

#[test]
fn admin_create_partitions() {
    let broker = Broker::start();
    admin_check(&broker, "partitions", &[]);
}

#[test]
fn admin_describe_log_dirs() {
    let broker = Broker::start();
    admin_check(&broker, "logdirs", &[]);
}

// ---------------------------------------------------------------------------
// Idempotent producer: exactly once across retries

const IDEM_COUNT: usize = 20_000;

fn spawn_idem_producer(boot: &str, topic: &str, seed: &str) -> RunningClient {
    let count = IDEM_COUNT.to_string();
    spawn_java(
        "IdemProducer",
        &[
            boot,
            topic,
            "--count",
            &count,
            "--seed",
            seed,
            "--chunk",
            "200",
            "--pace-ms",
            "20",
            "--progress-every",
            "500",
        ],
    )
}

/// Waits for the producer's "progress acked=N" line.
fn wait_acked(producer: &mut RunningClient, n: usize) {
    let line = format!("progress acked={n}\n");
    let ok = producer.wait_for_stderr(Duration::from_secs(40), |s| s.contains(&line));
    assert!(ok, "the Java producer did not get {n} acknowledgements; stderr:\n{}", producer.stderr_so_far());
}

fn finish_idem_producer(producer: RunningClient, seed: &str, what: &str) -> IdemRun {
    common::idem::parse(&producer.wait(), seed, what)
}

/// Reads the whole topic as a Spark executor would and checks: every
/// acknowledged value is there exactly once, at the partition and offset its
/// acknowledgement named; no value is there twice; nothing else is there;
/// each partition's offsets run 0, 1, 2, ... without holes. Then that no
/// send failed.
fn check_exactly_once(boot: &str, topic: &str, run: &IdemRun, what: &str) {
    let j = java_json("RangeConsumer", &[boot, topic]);
    let consumed = Rec::list(j.get("records"));
    let prefix = format!("{}-", run.seed);
    // record index -> where it was found
    let mut found: HashMap<usize, Vec<(i32, i64)>> = HashMap::new();
    for r in &consumed {
        let value = String::from_utf8(unhex(r.value.as_deref().unwrap_or(""))).expect("utf-8 value");
        let i: usize = value
            .strip_prefix(&prefix)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{what}: a record no one sent: {}", r.brief()));
        found.entry(i).or_default().push((r.partition, r.offset));
    }
    let mut dups: Vec<_> = found.iter().filter(|(_, at)| at.len() > 1).collect();
    dups.sort();
    assert!(
        dups.is_empty(),
        "{what}: {} values are in the log more than once, e.g. (index, [(partition, offset)]): {:?}",
        dups.len(),
        &dups[..dups.len().min(10)]
    );
    let mut problems = Vec::new();
    for &(i, p, off, _) in &run.acked {
        match found.get(&i).map(Vec::as_slice) {
            Some([(fp, fo)]) if (*fp, *fo) == (p, off) => {}
            Some(at) => problems.push(format!("record {i} acknowledged at p{p} @{off} but found at {at:?}")),
            None => problems.push(format!("record {i} acknowledged at p{p} @{off} but not in the log")),
        }
    }
    assert!(
        problems.is_empty(),
        "{what}: {} of {} acknowledged records are wrong, e.g.:\n{}",
        problems.len(),
        run.acked.len(),
        problems[..problems.len().min(10)].join("\n")
    );
    assert_contiguous(what, &consumed, &HashMap::new());
    let latest: BTreeMap<i32, i64> =
        j.get("latest").as_obj().iter().map(|(k, v)| (k.parse().expect("partition"), v.as_i64())).collect();
    let ends = acked_ends(&consumed);
    for (p, end) in &latest {
        assert_eq!(ends.get(p).copied().unwrap_or(0), *end, "{what}: partition {p}: records read vs latest offset");
    }
    let unacked_present = found.len() - run.acked.len();
    eprintln!("{what}: {} records in the log, {unacked_present} of them sent but not acknowledged", consumed.len());
    assert!(
        run.failed.is_empty(),
        "{what}: {} sends failed (the default producer retries until delivery.timeout.ms), e.g. {:?}",
        run.failed.len(),
        &run.failed[..run.failed.len().min(5)]
    );
    assert_eq!(run.acked.len(), IDEM_COUNT, "{what}: acknowledged records");
}

#[test]
fn idempotent_producer_exactly_once_across_broker_sigkill() {
    let mut broker = Broker::start();
    let boot = broker.bootstrap();
    let topic = unique_name("java-idem-kill");
    ck_create(&boot, &topic, 3);
    let seed = "kill";
    let mut producer = spawn_idem_producer(&boot, &topic, seed);
    for at in [4000, 12_000] {
        wait_acked(&mut producer, at);
        broker.kill9();
        thread::sleep(Duration::from_millis(200));
        broker.restart();
    }
    let run = finish_idem_producer(producer, seed, "IdemProducer (broker SIGKILLed twice)");
    check_exactly_once(&boot, &topic, &run, "idempotent producer across SIGKILL + restart");
}

/// A TCP proxy the broker advertises, so every client connection goes
/// through it. `cut` first swallows the broker's responses for a while (the
/// requests still reach the broker and are applied), then closes every
/// connection: the producer must retry batches the broker already has.
struct Proxy {
    port: u16,
    shared: Arc<ProxyShared>,
    accept: Option<JoinHandle<()>>,
}

struct ProxyShared {
    stop: AtomicBool,
    swallow: AtomicBool,
    /// Bytes of broker responses dropped while swallowing.
    swallowed: AtomicUsize,
    conns: Mutex<Vec<TcpStream>>,
}

impl Proxy {
    fn start(listener: TcpListener, target: SocketAddr) -> Proxy {
        let port = listener.local_addr().expect("proxy address").port();
        listener.set_nonblocking(true).expect("non-blocking listener");
        let shared = Arc::new(ProxyShared {
            stop: AtomicBool::new(false),
            swallow: AtomicBool::new(false),
            swallowed: AtomicUsize::new(0),
            conns: Mutex::default(),
        });
        let sh = shared.clone();
        let accept = thread::spawn(move || {
            while !sh.stop.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                let Ok(upstream) = TcpStream::connect(target) else { continue };
                let _ = client.set_nonblocking(false);
                let _ = client.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                let clones = (client.try_clone(), upstream.try_clone(), client.try_clone(), upstream.try_clone());
                let (Ok(c1), Ok(u1), Ok(c2), Ok(u2)) = clones else { continue };
                sh.conns.lock().unwrap().extend([client, upstream]);
                pipe(c1, u1, sh.clone(), false);
                pipe(u2, c2, sh.clone(), true);
            }
        });
        Proxy { port, shared, accept: Some(accept) }
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Swallows responses for `blackhole`, then closes every connection.
    /// Returns how many connections were cut.
    fn cut(&self, blackhole: Duration) -> usize {
        self.shared.swallow.store(true, Ordering::SeqCst);
        thread::sleep(blackhole);
        let conns = std::mem::take(&mut *self.shared.conns.lock().unwrap());
        for c in &conns {
            let _ = c.shutdown(Shutdown::Both);
        }
        self.shared.swallow.store(false, Ordering::SeqCst);
        conns.len() / 2
    }
}

/// Copies `from` to `to` until either side closes; broker-to-client bytes
/// are dropped while the proxy swallows responses.
fn pipe(mut from: TcpStream, mut to: TcpStream, shared: Arc<ProxyShared>, responses: bool) {
    thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if responses && shared.swallow.load(Ordering::SeqCst) {
                shared.swallowed.fetch_add(n, Ordering::SeqCst);
                continue;
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    });
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for c in std::mem::take(&mut *self.shared.conns.lock().unwrap()) {
            let _ = c.shutdown(Shutdown::Both);
        }
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn idempotent_producer_exactly_once_across_lost_responses_and_dropped_connections() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
    let proxy_port = listener.local_addr().expect("proxy address").port();
    let advertised = format!("advertised.listeners=PLAINTEXT://127.0.0.1:{proxy_port}");
    let broker = Broker::start_with(&[&advertised], 2);
    assert!(!broker.is_external(), "this test needs a broker that advertises the test's proxy");
    let proxy = Proxy::start(listener, broker.addr());
    let boot = proxy.bootstrap();
    let topic = unique_name("java-idem-proxy");
    ck_create(&boot, &topic, 3);
    let seed = "proxy";
    let mut producer = spawn_idem_producer(&boot, &topic, seed);
    let mut cut = 0;
    for at in [3000, 9000, 15_000] {
        wait_acked(&mut producer, at);
        cut += proxy.cut(Duration::from_millis(300));
    }
    let run = finish_idem_producer(producer, seed, "IdemProducer (responses lost, connections cut 3 times)");
    let swallowed = proxy.shared.swallowed.load(Ordering::SeqCst);
    eprintln!("proxy: {cut} connections cut, {swallowed} response bytes swallowed");
    assert!(cut >= 3, "the proxy cut only {cut} connections");
    // Responses the broker sent but the producer never saw: their batches are
    // in the log, and the producer sends them again.
    assert!(swallowed > 0, "no response was swallowed: the broker answered nothing during the black-hole windows");
    assert!(
        run.retries > 0,
        "no record was retried: the cuts did not hit requests in flight (retries {})",
        run.retries
    );
    check_exactly_once(&boot, &topic, &run, "idempotent producer across lost responses and cut connections");
}

// ---------------------------------------------------------------------------
// Spark executor reads

fn range_consume(boot: &str, topic: &str, extra: &[String]) -> (Json, Vec<Rec>) {
    let mut args = vec![boot, topic];
    args.extend(extra.iter().map(String::as_str));
    let j = java_json("RangeConsumer", &args);
    let recs = Rec::list(j.get("records"));
    (j, recs)
}

fn offsets_map(j: &Json) -> BTreeMap<i32, i64> {
    j.as_obj().iter().map(|(k, v)| (k.parse().expect("partition"), v.as_i64())).collect()
}

#[test]
fn spark_executor_style_consumer_reads_exactly_the_listed_ranges() {
    let broker = Broker::start();
    let boot = broker.bootstrap();
    let topic = unique_name("java-spark-exec");
    ck_create(&boot, &topic, 3);
    // librdkafka writes, with every codec the Java client must decode.
    let mut delivered = Vec::new();
    for (i, codec) in ["none", "lz4", "zstd", "snappy", "gzip"].iter().enumerate() {
        let start = (i * 600).to_string();
        delivered.extend(ck_produce(
            &boot,
            &topic,
            600,
            &["--seed", "spark", "--start", &start, "--compression", codec],
        ));
    }
    let ends = acked_ends(&delivered);

    // The whole topic: [earliest, latest) as the Admin client listed them.
    let (j, recs) = range_consume(&boot, &topic, &[]);
    assert_eq!(offsets_map(j.get("earliest")), ends.keys().map(|p| (*p, 0)).collect(), "earliest offsets");
    assert_eq!(offsets_map(j.get("latest")), ends, "latest offsets");
    assert_round_trip("Java executor read of [earliest, latest)", &delivered, &recs);

    // A micro-batch from the middle: [end/3, 2*end/3) per partition, both
    // ends likely inside batches.
    let mut extra = Vec::new();
    let mut range = BTreeMap::new();
    for (p, end) in &ends {
        let (s, e) = (end / 3, end * 2 / 3);
        range.insert(*p, (s, e));
        extra.extend(["--start".to_string(), format!("{p}:{s}"), "--end".to_string(), format!("{p}:{e}")]);
    }
    let (_, recs) = range_consume(&boot, &topic, &extra);
    let want: Vec<Rec> = delivered
        .iter()
        .filter(|r| {
            let (s, e) = range[&r.partition];
            r.offset >= s && r.offset < e
        })
        .cloned()
        .collect();
    assert_round_trip("Java executor read of a middle range", &want, &recs);
}

// ---------------------------------------------------------------------------
// Consumer-group administration, and committed offsets across kill -9

#[test]
fn java_admin_manages_groups_and_their_offsets_survive_kill9() {
    let mut broker =
        Broker::start_with(&["group.initial.rebalance.delay.ms=0", "group.min.session.timeout.ms=1000"], 2);
    let topic = unique_name("java-groups");
    let boot = broker.bootstrap();
    let out = java("GroupAdminCheck", &["before", &boot, &topic]);
    expect_checks_passed(&out, "GroupAdminCheck before");
    broker.kill9();
    broker.restart();
    let out = java("GroupAdminCheck", &["after", &boot, &topic]);
    expect_checks_passed(&out, "GroupAdminCheck after kill -9 and restart");
}
