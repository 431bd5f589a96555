//! `sluice-bench` as a library, so that tests can drive the load generator
//! in-process. `load` is the Kafka load generator (`produce`, `consume`,
//! `e2e`); `storage` measures the partition log against raw O_DIRECT writes.

pub mod load;
pub mod storage;
