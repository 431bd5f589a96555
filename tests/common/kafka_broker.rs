//! Apache Kafka as the reference broker: with `SLUICE_TEST_BROKER=kafka`,
//! `Broker::start*()` runs a single-node KRaft Apache Kafka (the jars that
//! scripts/test-deps.sh copies from Maven Central) instead of `sluice serve`,
//! on its own free ports and temp dir, so that a client test can be checked
//! against the real thing. A test that passes only against Sluice is a wrong
//! test or a wrong broker.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{cache_dir, expect_success, missing, run};

pub const BROKER_ENV: &str = "SLUICE_TEST_BROKER";

/// Kafka's version, as in tests/deps/kafka/pom.xml.
pub const KAFKA_VERSION: &str = "4.3.0";

/// The node id the reference broker runs with (Sluice's default too).
pub const KAFKA_NODE_ID: i32 = 1;

/// How long a Kafka JVM may take to start (slow on 2 busy cores).
pub const KAFKA_START_TIMEOUT: Duration = Duration::from_secs(120);

/// Whether this run's brokers are Apache Kafka (`SLUICE_TEST_BROKER=kafka`).
pub fn reference_kafka() -> bool {
    match std::env::var(BROKER_ENV).as_deref() {
        Ok("kafka") => true,
        Ok("sluice") | Ok("") | Err(_) => false,
        Ok(other) => panic!("{BROKER_ENV}={other}: expected sluice or kafka"),
    }
}

/// The broker's name for messages: "Sluice" or "Apache Kafka 4.3.0".
pub fn broker_name() -> String {
    if reference_kafka() {
        format!("Apache Kafka {KAFKA_VERSION}")
    } else {
        "Sluice".to_string()
    }
}

/// Says that a test checks Sluice itself (its files, logs or flags), not
/// client behaviour, and so does not run against the reference broker;
/// true when it should return at once.
pub fn sluice_only(why: &str) -> bool {
    if !reference_kafka() {
        return false;
    }
    let msg = format!("not run against {}: {why}", broker_name());
    eprintln!("{msg}");
    println!("{msg}");
    true
}

/// Where scripts/test-deps.sh put Kafka's broker and tools jars.
pub fn kafka_libs() -> PathBuf {
    let dir = cache_dir().join("kafka/libs");
    let jar = dir.join(format!("kafka_2.13-{KAFKA_VERSION}.jar"));
    if !jar.exists() {
        missing("Apache Kafka's jars", &jar);
    }
    dir
}

/// Kafka's server properties for one test broker: Kafka's own defaults, as a
/// single node needs them (internal topics with one replica; retention and
/// cleaner tasks from the start instead of 30 s later, as Sluice runs them),
/// then the test's lines, which win (a later key overrides an earlier one).
pub fn write_config(path: &Path, port: u16, controller_port: u16, log_dir: &Path, lines: &[&str]) {
    let mut text = format!(
        "process.roles=broker,controller\n\
         node.id={KAFKA_NODE_ID}\n\
         controller.quorum.voters={KAFKA_NODE_ID}@127.0.0.1:{controller_port}\n\
         listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}\n\
         advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
         controller.listener.names=CONTROLLER\n\
         inter.broker.listener.name=PLAINTEXT\n\
         listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n\
         log.dirs={}\n\
         offsets.topic.replication.factor=1\n\
         transaction.state.log.replication.factor=1\n\
         transaction.state.log.min.isr=1\n\
         share.coordinator.state.topic.replication.factor=1\n\
         share.coordinator.state.topic.min.isr=1\n\
         log.initial.task.delay.ms=0\n",
        log_dir.display()
    );
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    fs::write(path, text).expect("writing Kafka's server.properties");
}

/// log4j2 for the broker: warnings, plus the line that says it started
/// (which `Broker` waits for).
fn write_log_config(dir: &Path) -> PathBuf {
    let path = dir.join("kafka-log4j2.properties");
    fs::write(
        &path,
        "status = error\n\
         appender.out.type = Console\n\
         appender.out.name = OUT\n\
         appender.out.layout.type = PatternLayout\n\
         appender.out.layout.pattern = [%d] %p %m (%c)%n\n\
         rootLogger.level = warn\n\
         rootLogger.appenderRef.out.ref = OUT\n\
         logger.server.name = kafka.server.KafkaRaftServer\n\
         logger.server.level = info\n",
    )
    .expect("writing Kafka's log4j2 config");
    path
}

fn java_command(dir: &Path, class: &str) -> Command {
    let mut cmd = Command::new("java");
    cmd.args(["-Xms256m", "-Xmx768m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true"])
        .arg(format!("-Dlog4j2.configurationFile={}", write_log_config(dir).display()))
        .arg(format!("-Dkafka.logs.dir={}", dir.join("kafka-logs").display()))
        .env("CLASSPATH", kafka_libs().join("*"))
        .arg(class);
    cmd
}

/// `kafka-storage format` of the log dir named in `config` (first start only).
pub fn format_storage(dir: &Path, config: &Path) {
    format_storage_with_id(dir, config, &cluster_id());
}

/// The same, with a given cluster id (every node of a cluster shares one).
pub fn format_storage_with_id(dir: &Path, config: &Path, cluster_id: &str) {
    let mut cmd = java_command(dir, "kafka.tools.StorageTool");
    // `--cluster-id=ID` in one argument: an id may start with '-', which
    // argparse would take for an option.
    cmd.args(["format", "--ignore-formatted", &format!("--cluster-id={cluster_id}"), "-c"]).arg(config);
    let out = run(cmd, None, Duration::from_secs(120), "kafka-storage format");
    expect_success(&out, "kafka-storage format");
}

/// The broker's command line (`kafka-server-start config`).
pub fn server_command(dir: &Path, config: &Path) -> Command {
    let mut cmd = java_command(dir, "kafka.Kafka");
    cmd.arg(config);
    cmd
}

/// The line Kafka logs once it serves requests.
pub fn started(log_since_start: &str) -> bool {
    log_since_start.contains("Kafka Server started")
}

/// A random cluster id in Kafka's form (16 bytes, URL-safe base64, no padding).
pub fn cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = [0u8; 16];
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
        ^ (u128::from(std::process::id()) << 64);
    let mut x = seed | 1;
    for b in bytes.iter_mut() {
        // xorshift: any 16 bytes make a valid id.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let mut out = String::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    }
    out
}
