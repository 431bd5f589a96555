//! Durability across restarts: after SIGTERM every acknowledged record is
//! there; after SIGKILL every record whose delivery report succeeded is
//! there; either way new records continue at the next offsets. A restart
//! right away on the same port works even with the old connections' sockets
//! in TIME_WAIT. A second broker on the same data dir refuses to start.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::records::{assert_contiguous, assert_round_trip, assert_subset};
use common::{
    acked_ends, broker_bin, ck_consume, ck_create, ck_parse_produced, ck_produce, end_args, free_port, json_result,
    run, spawn_python, unique_name, Broker, Rec,
};

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Produces `count` more records and checks they land right after
/// `log_end` (per partition), then that the whole topic reads back as
/// `before` + the new records.
fn produce_more_and_check(broker: &Broker, topic: &str, before: &[Rec], log_end: &BTreeMap<i32, i64>, start: usize) {
    let boot = broker.bootstrap();
    let start_s = start.to_string();
    let more = ck_produce(&boot, topic, 1000, &["--seed", "after-restart", "--start", &start_s]);
    let first: HashMap<i32, i64> = log_end.iter().map(|(p, e)| (*p, *e)).collect();
    assert_contiguous("records produced after the restart", &more, &first);
    let mut all: Vec<Rec> = before.to_vec();
    all.extend(more);
    let c = ck_consume(&boot, topic, &strs(&end_args(&all)));
    assert_round_trip("everything after the restart", &all, &c.records);
}

#[test]
fn sigterm_keeps_every_acknowledged_record() {
    let mut broker = Broker::start();
    let boot = broker.bootstrap();
    let topic = unique_name("restart-term");
    ck_create(&boot, &topic, 3);
    let delivered = ck_produce(&boot, &topic, 4000, &["--seed", "before-term", "--compression", "lz4"]);

    let status = broker.sigterm_and_wait();
    assert!(status.success(), "SIGTERM should flush and exit 0, got {status}; log tail:\n{}", broker.log_tail());
    broker.restart();

    let c = ck_consume(&boot, &topic, &strs(&end_args(&delivered)));
    assert_round_trip("after SIGTERM and restart", &delivered, &c.records);
    let ends = acked_ends(&delivered);
    assert_eq!(c.high, ends, "high watermarks after the restart");
    produce_more_and_check(&broker, &topic, &delivered, &ends, 4000);
}

#[test]
fn sigkill_keeps_every_delivered_record() {
    let mut broker = Broker::start();
    let boot = broker.bootstrap();
    let topic = unique_name("restart-kill");
    ck_create(&boot, &topic, 3);

    // A producer that keeps sending (paced) while the broker is killed and
    // restarted under it; its queued records are retried after the restart.
    let mut producer = spawn_python(
        "ck.py",
        &[
            "produce",
            &boot,
            &topic,
            "--count",
            "20000",
            "--chunk",
            "200",
            "--pace-ms",
            "20",
            "--progress-every",
            "500",
            "--message-timeout-ms",
            "20000",
            "--allow-failures",
            "--seed",
            "before-kill",
        ],
    );
    let started = producer.wait_for_stderr(Duration::from_secs(60), |s| s.contains("progress delivered=3000"));
    assert!(started, "the producer did not get 3000 acknowledgements:\n{}", producer.stderr_so_far());
    broker.kill9();
    std::thread::sleep(Duration::from_millis(200));
    broker.restart();
    let out = producer.wait();
    let produced = ck_parse_produced(&json_result(&out, "ck.py produce (broker killed under it)"));
    assert!(produced.delivered.len() >= 3000, "only {} records acknowledged", produced.delivered.len());
    eprintln!(
        "sigkill test: {} acknowledged, {} failed (e.g. {:?})",
        produced.delivered.len(),
        produced.failed.len(),
        produced.failed.first()
    );

    let c = ck_consume(&boot, &topic, &strs(&end_args(&produced.delivered)));
    assert_subset("after SIGKILL and restart", &produced.delivered, &c.records);
    // No holes: each partition reads back as offsets 0, 1, 2, ...
    assert_contiguous("after SIGKILL and restart", &c.records, &HashMap::new());
    let log_end: BTreeMap<i32, i64> = acked_ends(&c.records);
    for (p, end) in &log_end {
        assert_eq!(c.high.get(p), Some(end), "high watermark of partition {p} vs the records read");
    }
    produce_more_and_check(&broker, &topic, &c.records, &log_end, 20000);
}

#[test]
fn second_broker_on_the_same_data_dir_refuses_to_start() {
    let broker = Broker::start();
    assert!(!broker.is_external(), "needs a sluice broker");
    let port = free_port();
    let mut cmd = Command::new(broker_bin());
    cmd.arg("serve")
        .arg("--listeners")
        .arg(format!("PLAINTEXT://127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(broker.data_dir())
        .arg("--cores")
        .arg("1");
    let out = run(cmd, None, Duration::from_secs(20), "a second sluice on the same data dir");
    assert!(!out.status.success(), "the second broker should refuse to start");
    // The first one still serves.
    let topic = unique_name("still-serving");
    ck_create(&broker.bootstrap(), &topic, 1);
    let delivered = ck_produce(&broker.bootstrap(), &topic, 10, &[]);
    assert_eq!(delivered.len(), 10);
}

/// Opens a connection, completes an ApiVersions v0 exchange on it (so it is
/// established and idle), and returns it.
fn idle_connection(broker: &Broker) -> TcpStream {
    let mut s = TcpStream::connect_timeout(&broker.addr(), Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let client_id = b"sluice-restart-test";
    let mut req = Vec::new();
    req.extend_from_slice(&18i16.to_be_bytes());
    req.extend_from_slice(&0i16.to_be_bytes());
    req.extend_from_slice(&1i32.to_be_bytes());
    req.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    req.extend_from_slice(client_id);
    let mut frame = (req.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&req);
    s.write_all(&frame).expect("writing ApiVersions");
    let mut size = [0u8; 4];
    s.read_exact(&mut size).expect("reading the ApiVersions response size");
    let mut resp = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut resp).expect("reading the ApiVersions response");
    assert_eq!(&resp[..4], &1i32.to_be_bytes(), "correlation id");
    s
}

/// The broker's side of idle connections closes first (the process goes
/// away), so those sockets end in TIME_WAIT on the broker's port; a broker
/// started again at once on that port (as systemd would) must still bind it.
fn restart_with_sockets_in_time_wait(stop: impl FnOnce(&mut Broker)) {
    let mut broker = Broker::start_with(&[], 1);
    let conns: Vec<TcpStream> = (0..3).map(|_| idle_connection(&broker)).collect();
    stop(&mut broker);
    // Our ends see the close; closing them completes the handshake, which
    // leaves the broker's ends in TIME_WAIT.
    for mut c in conns {
        let mut buf = [0u8; 16];
        let _ = c.read(&mut buf);
        drop(c);
    }
    std::thread::sleep(Duration::from_millis(100));
    broker.restart();
    drop(idle_connection(&broker));
}

#[test]
fn restart_right_after_sigkill_on_the_same_port() {
    restart_with_sockets_in_time_wait(|b| b.kill9());
}

#[test]
fn restart_right_after_sigterm_on_the_same_port() {
    restart_with_sockets_in_time_wait(|b| {
        let status = b.sigterm_and_wait();
        assert!(status.success(), "SIGTERM should exit 0, got {status}");
    });
}
