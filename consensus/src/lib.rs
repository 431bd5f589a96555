//! Raft for Sluice. The algorithm is the `raft` crate's (TiKV's raft-rs);
//! this crate adds what raft-rs leaves to its user:
//!
//! - [`log_store`]: a Raft log, hard state and snapshot kept on disk;
//! - [`node`]: the driver that runs a `RawNode`'s ready loop against a
//!   state machine;
//! - [`transport`]: Raft messages between nodes over TCP;
//! - [`replica`]: a partition's replica, its Raft log the segment log.
//!
//! Nothing here knows Kafka; the broker's metadata quorum (and later the
//! per-partition groups) sit on top.

pub mod log_store;
mod logger;
pub mod node;
pub mod replica;
pub mod transport;

pub use node::{NodeStatus, RaftNode, StateMachine};
pub use raft::eraftpb::Message;
pub use raft::StateRole;
