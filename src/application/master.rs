//! `filex am`: the application master. Registers with the ResourceManager, serves the status
//! page (the tracking URL), plans exactly as `filex run` does, sizes the worker fleet to the
//! data, runs the same driver with the coordinator as its cluster, writes the manifest last,
//! and unregisters with the right final status and diagnostics. Scratch goes to HDFS under
//! the staging directory, so a lost container costs only its running task.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use yarn::{AmRmClient, Config, Credentials, FinalApplicationStatus, NmClient, Resource};

use super::fleet::{Fleet, FleetConfig};
use super::journal::Journal;
use super::spec::AppSpec;
use super::staging::Staging;
use super::status::{serve, StatusBoard};
use super::tokens::Renewal;
use crate::cluster::handoff;
use crate::cluster::remote::schedule::ATTEMPTS_PER_AM_ATTEMPT;
use crate::cluster::remote::{Coordinator, CoordinatorConfig};
use crate::cluster::uber::UberCluster;
use crate::cluster::Cluster;
use crate::driver::{self, Run};
use crate::job::Job;
use crate::storage::location::Location;
use crate::task::Progress;

/// The exit status of a process ended by SIGTERM.
const SIGTERM_EXIT: i32 = 143;
/// The tracking URL given at unregister: none, so the RM points at its own application page.
const FINAL_TRACKING_URL: &str = "";

/// Runs the application master with the spec file localized in the container.
pub fn run_am(spec_path: &Path) -> Result<()> {
    // The secret and the object-store credentials the client put in the AM's credentials;
    // from here on the output store is opened with those.
    let handed = handoff::read(None).context("cannot read the container credentials")?;
    let secret = handoff::accept(&handed)?;
    let spec: AppSpec = serde_json::from_slice(
        &std::fs::read(spec_path)
            .with_context(|| format!("cannot read {}", spec_path.display()))?,
    )
    .with_context(|| format!("invalid {}", spec_path.display()))?;
    // The effective configuration `filex submit` shipped (the container's HADOOP_CONF_DIR).
    let conf = crate::settings::effective().context("cannot load the cluster configuration")?;
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("cannot start the AM runtime")?,
    );
    let amrm = Arc::new(AmRmClient::from_env(&conf).context("cannot create the scheduler client")?);
    let progress = Arc::new(Progress::default());
    let origin = Path::new("(job from the client)");
    let job = Arc::new(Job::from_toml(&spec.job_toml, origin, Path::new("/"))?);
    // With the submitter's keytab (`filex submit --keytab`): this AM logs in from it, before
    // any HDFS client, and keeps the workers' delegation tokens fresh.
    let renewal = match &spec.keytab {
        Some(login) => Some(Renewal::start(&conf, &job, login, &runtime)?),
        None => None,
    };
    // The NodeManager sets USER to the application's user in every container.
    let user = std::env::var("USER").unwrap_or_default();
    let board = Arc::new(StatusBoard::new(
        spec.application_id.clone(),
        job.name.clone(),
        user,
        progress.clone(),
    ));
    board.mark("submitted", Some(spec.submitted_ms));
    let am_attempt = am_attempt();
    board
        .am_attempt
        .store(u64::from(am_attempt), Ordering::Relaxed);
    if am_attempt > 1 {
        board.mark(&format!("am attempt {am_attempt} started"), None);
    }
    board.mark("am started", None);

    let host = std::env::var("NM_HOST").unwrap_or_else(|_| "localhost".to_string());
    let status_addr = serve(board.clone(), SocketAddr::from(([0, 0, 0, 0], 0)))?;
    let tracking_url = format!("http://{host}:{}/", status_addr.port());
    runtime
        // The status server's port stands in for the AM's RPC port: it is what clients
        // (filex submit) poll, also where the RM's proxy URL is not reachable.
        .block_on(amrm.register_application_master(
            &host,
            i32::from(status_addr.port()),
            &tracking_url,
        ))
        .context("cannot register with the ResourceManager")?;
    board.mark("am registered", None);

    // The workers get the same credentials without the AM's AMRMToken: the secrets and, on
    // a Kerberized cluster, the delegation tokens the client fetched (the workers' hdfs-native
    // reads and writes with those; they have no Kerberos ticket).
    let mut worker_creds: Credentials = handed.without_am_rm_token();
    if let Some(r) = &renewal {
        worker_creds = r.with_current(&worker_creds);
    }
    tracing::info!(tokens = %worker_creds.token_summary(), "credentials for the workers");
    let ctx = JobContext {
        am_attempt,
        spec: &spec,
        job: &job,
        conf: &conf,
        runtime: &runtime,
        amrm: &amrm,
        board: &board,
        host: &host,
        renewal: renewal.as_ref(),
    };
    let outcome = run_job(&ctx, &secret, &worker_creds);
    if let Some(r) = renewal {
        r.finish();
    }
    board.mark("finished", None);
    let timeline = progress.timeline_text();
    let (local, with_prefs) = *board.locality.lock();
    let mode = board.mode();
    let (status, diagnostics) = match &outcome {
        Ok(manifest) => (
            FinalApplicationStatus::Succeeded,
            format!(
                "timeline: {timeline}\nmode: {mode}\ndata-local map tasks: {local} of {with_prefs} with block hosts\nmanifest: {manifest}"
            ),
        ),
        Err(e) => {
            let mut d = format!(
                "filex job '{}' failed: {e:#}\ntimeline: {timeline}\nmode: {mode}",
                job.name
            );
            for line in board.diagnostics.lock().iter() {
                d.push_str("\n  ");
                d.push_str(line);
            }
            (FinalApplicationStatus::Failed, d)
        }
    };
    tracing::info!(%timeline, "done");
    if let Err(e) = Staging::open(&spec.staging).and_then(|s| s.remove()) {
        tracing::warn!(error = %e, "could not remove the staging directory");
    }
    // No final tracking URL: this AM and its status page are about to go. Given an empty
    // one, the ResourceManager records `N/A` and its web proxy sends the application's
    // tracking link to the RM's application page (or the history server's), where the
    // final status, the diagnostics above and the container logs stay.
    runtime
        .block_on(amrm.finish_application_master(status, &diagnostics, FINAL_TRACKING_URL))
        .context("cannot unregister from the ResourceManager")?;
    outcome.map(|_| ())
}

/// This application master's attempt number, from its container id (YARN's
/// `container_…_<attempt>_000001`); 1 when it cannot be told.
fn am_attempt() -> u32 {
    std::env::var(yarn::environment::CONTAINER_ID_ENV)
        .ok()
        .and_then(|id| id.parse::<yarn::ContainerId>().ok())
        .map_or(1, |id| id.attempt.attempt_id.max(1) as u32)
}

/// A kill (`yarn application -kill`, `filex kill`) reaches the AM as SIGTERM, and SIGKILL a
/// moment later (`yarn.nodemanager.sleep-delay-before-sigkill.ms`): in that moment, discard
/// what the run staged under the output root, then exit as terminated. What a SIGKILL cuts
/// short, `filex submit` removes ([`super::cleanup`]). During the commit nothing is discarded:
/// the next run of the window finishes it (`crate::commit`).
fn abort_on_sigterm(
    output: Arc<dyn crate::storage::OutputStore>,
    latch: Arc<crate::commit::CommitLatch>,
) {
    let signals = match signal_hook::iterator::Signals::new([signal_hook::consts::SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch for SIGTERM");
            return;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("am-sigterm".into())
        .spawn(move || {
            let mut signals = signals;
            if signals.forever().next().is_some() {
                let discarded = latch.discard_unless_decided(|| {
                    tracing::warn!("SIGTERM: discarding what the run staged");
                    if let Err(e) = output.abort() {
                        tracing::warn!(error = %e, "could not discard the staged output");
                    }
                });
                if !discarded {
                    tracing::warn!(
                        "SIGTERM during the commit: leaving it for the next run of the window to finish"
                    );
                }
                std::process::exit(SIGTERM_EXIT);
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot watch for SIGTERM");
    }
}

/// What the AM's run of the job works with.
struct JobContext<'a> {
    /// This AM's attempt number (1 for the first).
    am_attempt: u32,
    spec: &'a AppSpec,
    job: &'a Arc<Job>,
    conf: &'a Config,
    runtime: &'a Arc<tokio::runtime::Runtime>,
    amrm: &'a Arc<AmRmClient>,
    board: &'a Arc<StatusBoard>,
    host: &'a str,
    /// The refresh of delegation tokens, with a shipped keytab.
    renewal: Option<&'a Renewal>,
}

/// Runs the job with workers that get `worker_creds` (holding `secret`).
fn run_job(ctx: &JobContext<'_>, secret: &str, worker_creds: &Credentials) -> Result<String> {
    let JobContext {
        am_attempt,
        spec,
        job,
        conf,
        runtime,
        amrm,
        board,
        host,
        renewal,
    } = *ctx;
    let scratch_base = match &job.scratch {
        Some(s) => s.clone(),
        None => Location::parse(&format!("{}/scratch", spec.staging), Path::new("/"))?,
    };
    let run_id = spec.application_id.clone();
    let progress = board.progress.clone();
    let mut run = Run::open(job.clone(), run_id, Some(scratch_base), progress)?;
    abort_on_sigterm(run.output.clone(), run.latch.clone());
    run.full = spec.full;
    // The run's id is the application's, so every AM attempt opens the same scratch and
    // staging, where the journal's entries point.
    let staging = Staging::open(&spec.staging)?;
    let journal = Arc::new(Journal::open(
        staging.namenode().clone(),
        &staging.dir,
        am_attempt,
        run.scratch.clone(),
        run.output.clone(),
    )?);
    board
        .journaled
        .store(journal.earlier_entries() as u64, Ordering::Relaxed);
    if am_attempt > 1 {
        tracing::info!(
            am_attempt,
            finished_tasks = journal.earlier_entries(),
            "recovering the tasks earlier application masters finished"
        );
    }
    let memory_per_task = AppSpec::tasks_memory(spec.worker_memory_mb);
    let config = CoordinatorConfig {
        locality_wait: Duration::from_millis(spec.locality_wait_ms),
        task_timeout: (spec.task_timeout_ms > 0)
            .then(|| Duration::from_millis(spec.task_timeout_ms)),
        first_attempt: (am_attempt.max(1) - 1).saturating_mul(ATTEMPTS_PER_AM_ATTEMPT),
        journal: Some(journal),
        ..CoordinatorConfig::new(
            SocketAddr::from(([0, 0, 0, 0], 0)),
            secret.to_string(),
            run.worker_setup(memory_per_task)?,
            spec.workers_max.max(1),
            run.progress.clone(),
        )
    };
    let coordinator = Arc::new(Coordinator::start(config)?);
    board.attach(coordinator.clone());
    let containers_creds = Arc::new(parking_lot::Mutex::new(
        worker_creds.encode(yarn::credentials::Format::Writable),
    ));
    if let Some(r) = renewal {
        r.deliver_to(
            coordinator.clone(),
            containers_creds.clone(),
            worker_creds.clone(),
        );
    }
    let fleet = Fleet::start(FleetConfig {
        amrm: amrm.clone(),
        nm: Arc::new(NmClient::new(yarn::IpcOptions::from_config(conf)?)),
        runtime: runtime.clone(),
        capability: Resource::new(spec.worker_memory_mb, spec.worker_vcores),
        files: spec.worker_files.clone(),
        credentials: containers_creds,
        coordinator_addr: format!("{host}:{}", coordinator.addr().port()),
        board: board.clone(),
        coordinator: coordinator.clone(),
        hello_timeout: (spec.task_timeout_ms > 0)
            .then(|| Duration::from_millis(spec.task_timeout_ms)),
    });

    // Without uber mode the job needs workers whatever the plan says: ask for the fewest
    // now, so that their containers start while the input is listed and planned.
    if spec.uber_max_bytes == 0 {
        fleet.wanted.set(spec.workers_min.max(1));
    }
    let result = (|| -> Result<String> {
        let plan = run.plan(spec.task_bytes, coordinator.slots())?;
        board.mark("planned", None);
        let workers = spec.workers_for(plan.total_bytes(), plan.map_tasks.len());
        let mut hosts: Vec<String> = plan
            .map_tasks
            .iter()
            .flat_map(|t| t.preferred_hosts.first().cloned())
            .collect();
        hosts.sort();
        hosts.dedup();
        *fleet.preferred_hosts.lock() = hosts;
        let uber = spec.runs_uber(plan.total_bytes()).then(|| {
            let threads = spec.am_vcores.max(1) as usize;
            let tasks_memory = AppSpec::tasks_memory(spec.am_memory_mb);
            let (local, held) = driver::threads_cluster(&mut run, tasks_memory, threads);
            let wanted = fleet.wanted.clone();
            let start_workers = move || wanted.set(workers);
            Arc::new(UberCluster::new(
                local,
                held,
                coordinator.clone(),
                Box::new(start_workers),
            ))
        });
        let cluster: &dyn Cluster = match &uber {
            Some(u) => {
                board.ran_uber(u.clone());
                board.mark("uber: tasks run in the AM", None);
                u.as_ref()
            }
            None => {
                fleet.wanted.set(workers);
                coordinator.as_ref()
            }
        };
        tracing::info!(
            bytes = plan.total_bytes(),
            map_tasks = plan.map_tasks.len(),
            workers,
            uber = uber.is_some(),
            "fleet sized to the data"
        );
        let report = driver::execute(&run, plan, cluster)?;
        let locality = coordinator.locality();
        *board.locality.lock() = (locality.local, locality.preferring);
        *board.manifest_json.lock() = serde_json::to_vec_pretty(&report.manifest).ok();
        *board.manifest.lock() = Some(report.manifest_url.clone());
        Ok(report.manifest_url)
    })();
    fleet.wanted.set(0);
    coordinator.shutdown();
    fleet.stop();
    // With every worker gone: remove scratch, abort what is still staged.
    drop(run);
    result
}
