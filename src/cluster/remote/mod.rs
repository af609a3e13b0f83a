//! Tasks run by workers in other processes (or YARN containers): the wire protocol, the
//! coordinator that schedules and retries, and the worker loop.

pub mod coordinator;
pub mod schedule;
pub mod wire;
pub mod worker;

pub use coordinator::{Coordinator, CoordinatorConfig};
pub use wire::WorkerSetup;
pub use worker::{run_worker, WorkerError, WorkerOptions};
