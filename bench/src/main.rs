//! `sluice-bench`: benchmarks for Sluice. `storage` measures the partition
//! log against raw O_DIRECT writes on the same disk in the same run.
//! (The Kafka load generator modes come with the broker.)

mod storage;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "sluice-bench", version, about = "Load generator and benchmarks for Sluice")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Append and read back through sluice-storage, next to raw O_DIRECT writes.
    Storage(storage::Args),
}

fn main() {
    match Cli::parse().command {
        Cmd::Storage(args) => storage::main(args),
    }
}
