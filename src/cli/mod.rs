//! The command-line tools (`sluice topic|produce|consume|group|cluster`):
//! what kafka-topics.sh, kafka-console-producer.sh,
//! kafka-console-consumer.sh and kafka-consumer-groups.sh do, against Sluice
//! or any Kafka-compatible broker. Each command group has its own file; they
//! share the blocking client in `client.rs`.
//!
//! Every failure ends as one line on stderr and exit code 1 (2 for usage
//! errors, as clap's own), never a panic message or backtrace.

mod client;
mod cluster;
mod consume;
mod format;
mod group;
mod kafka_error;
mod membership;
mod offsets;
mod partitioner;
mod produce;
mod topic;

use std::io::Write;

use clap::Subcommand;

/// Where the tools connect. `global` lets the flag come before or after a
/// subcommand (`sluice topic --bootstrap-server X list` or `... list --bootstrap-server X`).
#[derive(clap::Args, Clone, Debug)]
pub struct Server {
    /// Broker(s) to connect to first: HOST:PORT[,HOST:PORT...].
    #[arg(
        long = "bootstrap-server",
        visible_alias = "bootstrap-servers",
        short = 'b',
        env = "SLUICE_BOOTSTRAP_SERVER",
        default_value = "localhost:9092",
        global = true,
        value_name = "HOST:PORT"
    )]
    pub bootstrap_server: String,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create, list, describe, alter and delete topics (kafka-topics).
    Topic(topic::TopicArgs),
    /// Send one record per input line (kafka-console-producer).
    Produce(produce::ProduceArgs),
    /// Print records as they arrive (kafka-console-consumer).
    Consume(consume::ConsumeArgs),
    /// List, describe, delete consumer groups and reset their offsets (kafka-consumer-groups).
    Group(group::GroupArgs),
    /// The cluster's id, controller and brokers.
    Cluster(cluster::ClusterArgs),
}

/// A mistake in how the tool was called (exit code 2), as opposed to a
/// failure of the request (exit code 1).
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Usage(msg.into()))
}

/// Runs a tool and exits the process with its status.
pub fn run(cmd: Command) -> ! {
    // A bug must still end as one line and a non-zero status, not a
    // backtrace; the broker keeps the default hook (it catches decoder
    // panics itself).
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("error: internal error: {}{at}", kafka_error::one_line(&msg));
        std::process::exit(1);
    }));
    let result = match cmd {
        Command::Topic(a) => topic::run(a),
        Command::Produce(a) => produce::run(a),
        Command::Consume(a) => consume::run(a),
        Command::Group(a) => group::run(a),
        Command::Cluster(a) => cluster::run(a),
    };
    let code = match result {
        Ok(()) => 0,
        // The reader went away (`| head`): that is how such pipes end.
        Err(e) if broken_pipe(&e) => 0,
        Err(e) => {
            let code = if e.downcast_ref::<Usage>().is_some() { 2 } else { 1 };
            eprintln!("error: {}", kafka_error::one_line(&format!("{e:#}")));
            code
        }
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code)
}

fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// `k=v` → (k, v); the value may contain `=`.
pub fn key_value(s: &str, flag: &str) -> anyhow::Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(usage(format!("{flag} {s}: expected KEY=VALUE"))),
    }
}
