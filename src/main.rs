//! The `filex` binary: parses the command line, sets up logging, runs the command and owns
//! the exit codes.

mod cli;
mod report;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command, LogFormat};
use filex::application::submit::SubmitError;
use filex::driver::{self, RunOptions};
use filex::exit;
use filex::job::{Job, JobError};
use filex::settings::{self, SettingsError};
use filex::storage::object::hadoop::without_secrets;
use filex::task::Progress;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log.as_deref(), cli.log_format);
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("filex: error: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}

/// The code of a failed command ([`filex::exit`]).
fn exit_code(err: &anyhow::Error) -> u8 {
    if err.is::<JobError>() || err.is::<SettingsError>() {
        exit::USAGE
    } else if let Some(e) = err.downcast_ref::<SubmitError>() {
        e.code
    } else if err.downcast_ref::<yarn::Error>().is_some_and(|e| {
        matches!(
            e,
            yarn::Error::Connect { .. }
                | yarn::Error::Timeout { .. }
                | yarn::Error::Disconnected { .. }
        )
    }) {
        exit::UNREACHABLE
    } else {
        exit::FAILED
    }
}

/// Logs go to stderr: compact text, coloured only when stderr is a terminal (and `NO_COLOR`
/// is not set) so that container logs, Airflow task logs and files carry no escape codes;
/// or one JSON object per line (`--log-format json`) for log shippers.
fn init_logging(filter: Option<&str>, format: LogFormat) {
    let filter = filter
        .map(str::to_string)
        .or_else(|| std::env::var("FILEX_LOG").ok())
        .unwrap_or_else(|| "info".to_string());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .compact()
            .try_init(),
        LogFormat::Json => builder
            .with_ansi(false)
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

fn load_job(args: &cli::JobArgs) -> anyhow::Result<Job> {
    Ok(Job::load(&args.job, &args.set)?)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => {
            let conf = settings::install(args.conf.load()?);
            if args.workers > 0 && args.kerberos.keytab.is_some() {
                anyhow::bail!(
                    "--keytab with --workers: worker processes do not log in from a keytab yet; \
                     run kinit -kt KEYTAB PRINCIPAL first and leave out --principal/--keytab"
                );
            }
            args.kerberos.use_for_hdfs(&conf)?;
            // Worker processes read the same configuration, -D included.
            let _child_conf = (args.workers > 0 && args.conf.is_given())
                .then(|| settings::ChildConf::export(&without_secrets(&conf)))
                .transpose()
                .context("cannot write the configuration for the worker processes")?;
            let job = Arc::new(load_job(&args.job)?);
            let threads = args.threads.unwrap_or_else(default_threads);
            let opts = RunOptions {
                threads,
                memory: args.memory as usize,
                task_bytes: args.task_size,
                workers: args.workers,
                task_timeout: settings::task_timeout(&conf)?,
                full: args.full,
            };
            let progress = Arc::new(Progress::default());
            let bar = !args.no_progress && std::io::stderr().is_terminal();
            let started = std::time::Instant::now();
            let shown = report::show_progress(progress.clone(), bar);
            let result = driver::run_embedded(job.clone(), &opts, progress);
            shown.stop();
            let report = result.with_context(|| {
                format!(
                    "job '{}' failed; nothing was published under {}",
                    job.name, job.output.spec.root
                )
            })?;
            report::print_summary(&report, started.elapsed());
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan(args) => {
            let conf = settings::install(args.conf.load()?);
            args.kerberos.use_for_hdfs(&conf)?;
            let job = load_job(&args.job)?;
            let plan = driver::make_plan(
                &job,
                args.task_size,
                args.threads.unwrap_or_else(default_threads),
            )
            .with_context(|| format!("cannot plan job '{}'", job.name))?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&plan)?);
            } else {
                report::print_plan(&job, &plan);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Gen(args) => {
            let summary = filex::gen::generate(&args)?;
            println!(
                "wrote {} shards, {} lines, {} raw bytes",
                summary.shards, summary.lines, summary.bytes_raw
            );
            println!("job: {}", summary.job_file.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Submit(args) => {
            let conf = settings::install(args.conf.load()?);
            let opts = filex::application::submit::SubmitOptions {
                job: args.job.job,
                set: args.job.set,
                queue: args.queue,
                name: args.name,
                tags: args.tags,
                detach: args.detach,
                force_new: args.force_new,
                full: args.full,
                kerberos: args.kerberos.credentials()?,
            };
            Ok(ExitCode::from(filex::application::submit::submit(
                &opts, &conf,
            )?))
        }
        Command::Am(args) => {
            filex::application::master::run_am(&args.spec)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker(args) => {
            let creds = filex::cluster::handoff::read(args.credentials_file.as_deref())?;
            let secret = filex::cluster::handoff::accept(&creds)?;
            let host = args.host.unwrap_or_else(local_host_name);
            let opts = filex::cluster::remote::WorkerOptions {
                coordinator: args.connect,
                secret: secret.trim().to_string(),
                worker_id: args.id,
                host,
            };
            let ran = filex::cluster::remote::run_worker(&opts)?;
            tracing::info!(tasks = ran, "worker done");
            Ok(ExitCode::SUCCESS)
        }
        Command::Ops(cmd) => filex::ops::run(cmd),
        Command::Validate(args) => Ok(validate(&args)),
        Command::Completions { shell } => {
            // Generated into memory: the generator panics on a write error (`| head`).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "filex", &mut script);
            write_stdout(&script).context("cannot write the completion script")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut page)?;
            write_stdout(&page).context("cannot write the man page")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Formats => {
            report::print_formats();
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes `bytes` to stdout; a reader that went away (`| head`) is not an error.
fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}

/// `filex validate`: the job file's problems, one line each on stderr (exit 2), or one line
/// on stdout saying what the job is (exit 0).
fn validate(args: &cli::JobArgs) -> ExitCode {
    let file = args.job.display();
    match Job::check_file(&args.job, &args.set) {
        Ok(job) => {
            println!(
                "{file}: OK: job '{}', {} source(s), window {}, output {}",
                job.name,
                job.sources.len(),
                job.window_id(),
                job.output.spec.root
            );
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for p in &problems {
                eprintln!("{file}: {}", filex::errors::one_line(&p.to_string()));
            }
            ExitCode::from(exit::USAGE)
        }
    }
}

/// This machine's host name (as YARN NodeManagers report it), `localhost` if unknown.
fn local_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// One worker thread per core.
fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}
