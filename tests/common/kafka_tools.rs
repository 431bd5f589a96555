//! Apache Kafka's own command-line tools (kafka-tools 4.3, from Maven): the
//! main classes behind kafka-topics.sh, kafka-console-producer.sh and the
//! rest, run against a broker with the jars test-deps.sh installs.

use std::path::Path;
use std::process::{Command, Output};
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
