//! `sluice-bench`: the load generator for Sluice and any other
//! Kafka-compatible broker (`produce`, `consume`, `e2e`), and `storage`,
//! which measures the partition log against raw O_DIRECT writes on the same
//! disk in the same run.

use clap::{Parser, Subcommand};
use sluice_bench::{load, storage};

#[derive(Parser)]
#[command(
    name = "sluice-bench",
    version,
    about = "Load generator and benchmarks for Sluice",
    args_override_self = true
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Produce records as fast as the broker takes them, or at `--rate`.
    Produce(load::Args),
    /// Consume a topic (from `--from earliest|latest`), counting and checking batches.
    Consume(load::Args),
    /// Produce and consume at once; end-to-end latency from the send time carried in each record.
    E2e(load::Args),
    /// Append and read back through sluice-storage, next to raw O_DIRECT writes.
    Storage(storage::Args),
}

fn main() {
    let code = match Cli::parse().command {
        Cmd::Produce(args) => load::main(load::Mode::Produce, args),
        Cmd::Consume(args) => load::main(load::Mode::Consume, args),
        Cmd::E2e(args) => load::main(load::Mode::E2e, args),
        Cmd::Storage(args) => {
            storage::main(args);
            0
        }
    };
    std::process::exit(code);
}
