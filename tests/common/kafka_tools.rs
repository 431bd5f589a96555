//! Apache Kafka's own command-line tools (kafka-tools 4.3, from Maven): the
//! main classes behind kafka-topics.sh, kafka-console-producer.sh and the
//! rest, run against a broker with the jars test-deps.sh installs.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::thread;
use std::time::Duration;

use super::kafka_broker::kafka_libs;
use super::run;

pub const TOPICS: &str = "org.apache.kafka.tools.TopicCommand";
pub const CONSOLE_PRODUCER: &str = "org.apache.kafka.tools.ConsoleProducer";
pub const CONSOLE_CONSUMER: &str = "org.apache.kafka.tools.consumer.ConsoleConsumer";
pub const CONSUMER_GROUPS: &str = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand";
pub const PRODUCER_PERF: &str = "org.apache.kafka.tools.ProducerPerformance";
pub const CONSUMER_PERF: &str = "org.apache.kafka.tools.ConsumerPerformance";
pub const GET_OFFSETS: &str = "org.apache.kafka.tools.GetOffsetShell";
pub const METADATA_QUORUM: &str = "org.apache.kafka.tools.MetadataQuorumCommand";
pub const LEADER_ELECTION: &str = "org.apache.kafka.tools.LeaderElectionCommand";
pub const REASSIGN_PARTITIONS: &str = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand";
pub const DELETE_RECORDS: &str = "org.apache.kafka.tools.DeleteRecordsCommand";

/// How a run is named in failure messages: the class's short name and the arguments.
fn what(class: &str, args: &[&str]) -> String {
    format!("{} {}", class.rsplit('.').next().unwrap_or(class), args.join(" "))
}

/// Runs one tool (`class` with `args`, `stdin` as its input), bounded.
pub fn kafka_tool(class: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let log_config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/deps/kafka/tools-log4j2.properties");
    let mut cmd = Command::new("java");
    cmd.args(["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xmx256m"])
        .arg(format!("-Dlog4j2.configurationFile={}", log_config.display()))
        .env("CLASSPATH", kafka_libs().join("*"))
        .arg(class)
        .args(args);
    run(cmd, stdin.map(<[u8]>::to_vec), Duration::from_secs(120), &what(class, args))
}

/// `kafka_tool`, which must exit 0: its stdout.
pub fn kafka_tool_ok(class: &str, args: &[&str], stdin: Option<&[u8]>) -> String {
    let out = kafka_tool(class, args, stdin);
    super::expect_success(&out, &what(class, args));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ---------------------------------------------------------------------------
// kafka-topics, as the tests use it

pub fn with_bootstrap<'a>(boot: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    [&["--bootstrap-server", boot], args].concat()
}

pub fn topics(boot: &str, args: &[&str]) -> String {
    kafka_tool_ok(TOPICS, &with_bootstrap(boot, args), None)
}

/// kafka-topics that must exit 1: what it printed (stdout and stderr).
pub fn topics_refused(boot: &str, args: &[&str]) -> String {
    let out = kafka_tool(TOPICS, &with_bootstrap(boot, args), None);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "kafka-topics {}: {text}", args.join(" "));
    text
}

/// Calls `f` until `done` holds of its value, at most `tries` times 200 ms
/// apart (the broker may apply a change a moment after answering): the last value.
pub fn poll<T>(tries: usize, mut f: impl FnMut() -> T, done: impl Fn(&T) -> bool) -> T {
    let mut value = f();
    for _ in 1..tries {
        if done(&value) {
            break;
        }
        thread::sleep(Duration::from_millis(200));
        value = f();
    }
    value
}

pub fn listed(boot: &str) -> Vec<String> {
    topics(boot, &["--list"]).lines().map(str::to_string).collect()
}

/// `--describe` of one topic: the header's fields and one map per partition line.
pub fn describe(boot: &str, topic: &str) -> (BTreeMap<String, String>, Vec<BTreeMap<String, String>>) {
    let out = topics(boot, &["--describe", "--topic", topic]);
    let fields = |line: &str| -> BTreeMap<String, String> {
        line.trim()
            .split('\t')
            .filter_map(|f| f.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect()
    };
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let header = fields(lines.next().unwrap_or_else(|| panic!("empty describe output")));
    let parts = lines.map(fields).collect();
    (header, parts)
}
