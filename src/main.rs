//! `sluice`: the broker and its command-line tools.

mod admin;
mod alloc;
mod cli;
mod cluster;
mod codec;
mod config;
mod groups;
mod handlers;
mod lock;
mod partition;
mod producer_ids;
mod server;
mod shard;
mod sysinfo;
mod topics;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOC: alloc::GuardedAlloc = alloc::GuardedAlloc;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "A Kafka-compatible streaming broker, and tools to use it (or any Kafka-compatible broker)"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the broker.
    Serve(ServeArgs),
    #[command(flatten)]
    Tool(cli::Command),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Kafka-style properties file (`listeners`, `log.dirs`, `num.partitions`, ...).
    #[arg(long, env = "SLUICE_CONFIG")]
    config: Option<PathBuf>,
    /// Where partitions are kept (Kafka's `log.dirs`) [default: ./data].
    #[arg(long, env = "SLUICE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// `NAME://HOST:PORT,...` (Kafka's `listeners`: the client listener, and in a cluster the
    /// controller listener) [default: PLAINTEXT://0.0.0.0:9092].
    #[arg(long, env = "SLUICE_LISTENERS")]
    listeners: Option<String>,
    /// What clients are told to connect to: `NAME://HOST:PORT,...` (Kafka's `advertised.listeners`).
    #[arg(long, env = "SLUICE_ADVERTISED_LISTENERS")]
    advertised_listeners: Option<String>,
    /// Shards (cores) to run [default: all].
    #[arg(long, env = "SLUICE_CORES")]
    cores: Option<usize>,
}

fn broker_config(args: ServeArgs) -> Result<config::BrokerConfig, String> {
    let mut c = config::BrokerConfig::default();
    let mut settings = Vec::new();
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        settings.extend(config::parse_properties(&text));
    }
    settings.extend(config::env_settings());
    if let Some(d) = args.data_dir {
        settings.push(("log.dirs".into(), d.display().to_string()));
    }
    if let Some(l) = args.listeners {
        settings.push(("listeners".into(), l));
    }
    if let Some(a) = args.advertised_listeners {
        settings.push(("advertised.listeners".into(), a));
    }
    if let Some(n) = args.cores {
        settings.push(("sluice.cores".into(), n.to_string()));
    }
    for key in c.apply(&settings)? {
        tracing::warn!(key, "unknown setting ignored");
    }
    Ok(c)
}

fn main() {
    let args = match Cli::parse().command {
        Cmd::Serve(args) => args,
        Cmd::Tool(tool) => cli::run(tool),
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let result = broker_config(args).and_then(server::run);
    if let Err(e) = result {
        tracing::error!("{e}");
        eprintln!("sluice: {e}");
        std::process::exit(1);
    }
}
