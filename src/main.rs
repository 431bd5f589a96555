//! `sluice`: the broker and its command-line tools.

mod lock;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use glommio::{LocalExecutorPoolBuilder, PoolPlacement};

#[derive(Parser)]
#[command(name = "sluice", version, about = "A Kafka-compatible streaming broker")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the broker.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Where partitions are kept (Kafka's `log.dirs`).
    #[arg(long, default_value = "./data", env = "SLUICE_DATA_DIR")]
    data_dir: PathBuf,
    /// `PLAINTEXT://HOST:PORT` (Kafka's `listeners`).
    #[arg(long, default_value = "PLAINTEXT://0.0.0.0:9092", env = "SLUICE_LISTENERS")]
    listeners: String,
    /// Shards (cores) to run; default all.
    #[arg(long, env = "SLUICE_CORES")]
    cores: Option<usize>,
}

fn parse_listener(s: &str) -> Result<SocketAddr, String> {
    let hostport =
        s.strip_prefix("PLAINTEXT://").ok_or_else(|| format!("listener {s:?}: only PLAINTEXT:// is supported"))?;
    let hostport = if hostport.starts_with(':') { format!("0.0.0.0{hostport}") } else { hostport.to_string() };
    std::net::ToSocketAddrs::to_socket_addrs(&hostport)
        .map_err(|e| format!("listener {s:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("listener {s:?}: no address"))
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let addr = parse_listener(&args.listeners)?;
    std::fs::create_dir_all(&args.data_dir).map_err(|e| format!("data dir {}: {e}", args.data_dir.display()))?;
    let _lock = lock::DataDirLock::acquire(&args.data_dir)?;
    // Bind once here so a port in use fails loudly (SO_REUSEPORT would hide it).
    let probe = std::net::TcpListener::bind(addr).map_err(|e| format!("listen on {addr}: {e}"))?;
    drop(probe);
    let cores = args.cores.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    tracing::info!(%addr, cores, data_dir = %args.data_dir.display(), "sluice starting");
    std::thread::spawn(|| {
        let mut signals = signal_hook::iterator::Signals::new([libc::SIGTERM, libc::SIGINT]).expect("signals");
        if let Some(sig) = signals.forever().next() {
            tracing::info!(sig, "shutting down");
            std::process::exit(0);
        }
    });
    let pool = LocalExecutorPoolBuilder::new(PoolPlacement::Unbound(cores))
        .on_all_shards(move || async move {
            let listener = glommio::net::TcpListener::bind(addr).expect("bind");
            loop {
                match listener.accept().await {
                    // The Kafka protocol is served from issue 3 on; until then
                    // a connection is accepted and closed.
                    Ok(conn) => drop(conn),
                    Err(e) => tracing::warn!(%e, "accept failed"),
                }
            }
        })
        .map_err(|e| format!("starting shards: {e}"))?;
    pool.join_all();
    Ok(())
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Cmd::Serve(args) => serve(args),
    };
    if let Err(e) = result {
        eprintln!("sluice: {e}");
        std::process::exit(1);
    }
}
