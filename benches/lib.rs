//! Shared pieces of the cacheward benchmarks: the value and stores the workloads use
//! ([`policy`]), the async measurement harness ([`harness`]), the load the fault
//! benchmark runs and reads ([`load`]) and the markdown report ([`report`]).
//!
//! The workloads themselves are the bench targets in `benches/benches/` (workloads 1-6
//! in `benches/benches/workloads/`, one module each); run them with
//! `cargo bench -p cacheward-benches` or regenerate `docs/benchmarks.md` with
//! `scripts/bench-report`. The fault table of `docs/failover.md` is the `faults` bench
//! target (`benches/benches/faults.rs`).

pub mod harness;
pub mod load;
pub mod policy;
pub mod report;
