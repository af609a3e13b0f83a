//! The two kinds of task both modes run: map (decompress, parse, route, sort, spill sorted
//! runs) and reduce (k-way merge of one partition's runs, gzip, stage for publication). The
//! task code knows nothing of who runs it: the embedded cluster calls it on threads, a YARN
//! worker in a container.

pub mod batch;
pub mod counters;
pub mod fetch;
pub mod lines;
pub mod map;
pub mod parts;
pub mod progress;
pub mod read_ahead;
pub mod reduce;
pub mod same_bytes;
pub mod shard;

use std::io;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::job::Job;
use crate::storage::{OutputStore, Scratch, StorageError};

pub use counters::Counters;
pub use fetch::RunSegment;
pub use map::{execute_map, MapOutput, PartitionKey, RunFile, ShardOutput, SkippedShard};
pub use progress::Progress;
pub use reduce::{execute_reduce, MergedPartition, ReduceOutput, ReducePartition, ReduceTask};

/// What every task needs besides its own description.
#[derive(Clone)]
pub struct TaskContext {
    pub job: Arc<Job>,
    pub scratch: Arc<dyn Scratch>,
    pub output: Arc<dyn OutputStore>,
    /// Memory one task may use for its buffers (sort buffer, merge blocks, gzip members).
    pub memory_per_task: usize,
    pub progress: Arc<Progress>,
}

/// A unit of work for a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Task {
    Map(crate::plan::MapTask),
    Reduce(ReduceTask),
}

/// What a task returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskOutput {
    Map(MapOutput),
    Reduce(ReduceOutput),
}

impl Task {
    /// Runs the task (attempt number `attempt` names its scratch files).
    pub fn execute(&self, ctx: &TaskContext, attempt: u32) -> Result<TaskOutput, TaskError> {
        match self {
            Task::Map(t) => execute_map(ctx, t, attempt).map(TaskOutput::Map),
            Task::Reduce(t) => execute_reduce(ctx, t, attempt).map(TaskOutput::Reduce),
        }
    }

    /// `map 3` / `reduce 12`, for messages.
    pub fn describe(&self) -> String {
        match self {
            Task::Map(t) => format!("map task {}", t.id),
            Task::Reduce(t) => format!("reduce task {} ({})", t.id, t.describe_partitions()),
        }
    }
}

/// Why a task failed.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error(transparent)]
    Shard(#[from] shard::ShardError),
    #[error("scratch {what}")]
    Scratch {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Output(#[from] StorageError),
    #[error("partition {partition}")]
    Merge {
        partition: String,
        #[source]
        source: io::Error,
    },
    #[error("partition {partition}: merged {got} lines, the map tasks wrote {expected}")]
    LineCount {
        partition: String,
        expected: u64,
        got: u64,
    },
    /// A failure a test asked for (`crate::fault`).
    #[cfg(feature = "fault-injection")]
    #[error("fault injection: {reason}")]
    Injected { reason: String },
}
