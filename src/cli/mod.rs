//! Command-line types: exactly what the user typed, validated by clap, no I/O.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use filex::gen::GenArgs;
use filex::ops::KerberosArgs;
use filex::settings::ConfArgs;
use filex::size::parse_size;

/// `filex --version`: the version, the commit it was built from (`build.rs`; absent outside
/// a git checkout), and ` +fault-injection` for a build with the test hooks (the integration
/// tests check it).
const VERSION: &str = if cfg!(feature = "fault-injection") {
    concat!(
        env!("CARGO_PKG_VERSION"),
        env!("FILEX_COMMIT_SUFFIX"),
        " +fault-injection"
    )
} else {
    concat!(env!("CARGO_PKG_VERSION"), env!("FILEX_COMMIT_SUFFIX"))
};

/// filex: fuse multi-platform CDN access logs into one time-ordered log per domain and hour.
#[derive(Debug, Parser)]
#[command(name = "filex", version = VERSION, about, propagate_version = true)]
pub struct Cli {
    /// Log filter (tracing env-filter syntax); also read from FILEX_LOG.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log: Option<String>,
    /// How log lines on stderr are written: `text` (colours only on a terminal) or `json`
    /// (one object per line, for log shippers).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "FILEX_LOG_FORMAT",
        default_value_t = LogFormat::Text
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a job in this process (embedded mode).
    Run(RunArgs),
    /// Run a job on YARN, like `yarn jar`: exit 0 only when the application SUCCEEDED.
    Submit(SubmitArgs),
    /// The application master (started by YARN, not for direct use).
    #[command(hide = true)]
    Am(AmArgs),
    /// Show what a job would read and how it would split, without reading any line.
    Plan(PlanArgs),
    /// Write synthetic multi-platform shards and a matching job file.
    Gen(GenArgs),
    /// Check a job file without touching HDFS, S3 or YARN: every problem on its own line,
    /// naming the key; exit 0 when there is none, else 2.
    Validate(JobArgs),
    /// List the built-in input formats with a sample line each.
    Formats,
    /// Print a shell completion script: `filex completions bash > /etc/bash_completion.d/filex`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `filex man | man -l -`.
    Man,
    #[command(flatten)]
    Ops(filex::ops::OpsCommand),
    /// Run tasks for a coordinator (started by `filex run --workers` or the application
    /// master; not for direct use).
    #[command(hide = true)]
    Worker(WorkerArgs),
}

/// The job file and its overrides.
#[derive(Debug, Args)]
pub struct JobArgs {
    /// The job file (TOML).
    pub job: PathBuf,
    /// Override a key of the job file, e.g. --set window.start=2026-11-05T00:00:00+08:00
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub job: JobArgs,
    /// Worker threads (default: the number of cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Memory budget for sort buffers, merges and compression, e.g. 512M, 2G.
    #[arg(long, default_value = "1G", value_parser = parse_size)]
    pub memory: u64,
    /// Compressed input per map task; small shards are combined up to it.
    #[arg(long, default_value = "64M", value_parser = parse_size)]
    pub task_size: u64,
    /// Run tasks in this many worker processes instead of threads (a crashed task is
    /// retried in another process).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Never draw a progress bar (periodic log lines instead).
    #[arg(long)]
    pub no_progress: bool,
    /// Recompute every partition. By default a re-run of a window recomputes only the
    /// partitions fed by new, changed or vanished shards and keeps the others as the previous
    /// run published them.
    #[arg(long)]
    pub full: bool,
    #[command(flatten)]
    pub conf: ConfArgs,
    #[command(flatten)]
    pub kerberos: KerberosArgs,
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub job: JobArgs,
    #[command(flatten)]
    pub conf: ConfArgs,
    /// YARN queue.
    #[arg(long)]
    pub queue: Option<String>,
    /// Application name (default: "filex <job name>").
    #[arg(long)]
    pub name: Option<String>,
    /// Extra application tag (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Return once the application is accepted.
    #[arg(long)]
    pub detach: bool,
    /// Start a new application even if one of the same job and window is running.
    #[arg(long)]
    pub force_new: bool,
    /// Recompute every partition (as `filex run --full`).
    #[arg(long)]
    pub full: bool,
    /// On a Kerberized cluster: who submits (default: the ticket cache).
    #[command(flatten)]
    pub kerberos: filex::ops::KerberosArgs,
}

#[derive(Debug, Args)]
pub struct AmArgs {
    /// The application spec written by `filex submit`.
    #[arg(long)]
    pub spec: PathBuf,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The coordinator's host:port.
    #[arg(long)]
    pub connect: String,
    /// Hadoop credentials file holding the shared secret and the output's object-store
    /// credentials (read, never logged), as `filex run --workers` writes it.
    #[arg(long, required_unless_present = "secret_from_credentials")]
    pub credentials_file: Option<PathBuf>,
    /// Read them from the YARN container credentials (`HADOOP_TOKEN_FILE_LOCATION`).
    #[arg(long)]
    pub secret_from_credentials: bool,
    /// This worker's id.
    #[arg(long)]
    pub id: String,
    /// The host name used for locality (default: this machine's).
    #[arg(long)]
    pub host: Option<String>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub job: JobArgs,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
    /// Plan for this many parallel tasks, as `run --threads` (default: the number of cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Compressed input per map task.
    #[arg(long, default_value = "64M", value_parser = parse_size)]
    pub task_size: u64,
    #[command(flatten)]
    pub conf: ConfArgs,
    #[command(flatten)]
    pub kerberos: KerberosArgs,
}
