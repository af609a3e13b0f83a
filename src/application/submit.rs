//! `filex submit`: behaves like `yarn jar`. Puts the executable in its cache on HDFS unless it
//! is there ([`super::lib_cache`]), uploads the resolved job and the effective cluster
//! configuration (site files and `-D`, as one `core-site.xml`) to a private staging
//! directory, submits the application master,
//! prints the application id as soon as it has it, follows the application with progress,
//! and exits 0 only when it FINISHED with SUCCEEDED. SIGINT/SIGTERM while waiting kills the
//! application and waits for YARN to confirm. An application of the same job and window that
//! is still running is followed instead of started again (`--force-new` overrides). What a
//! dead application leaves ([`super::cleanup`]) is removed when the one followed ends KILLED
//! or FAILED, and, for every dead run of the window the RM knows, before a new one starts.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use yarn::{
    ApplicationClient, ApplicationFilter, ApplicationId, ApplicationReport, ApplicationState,
    ApplicationSubmissionContext, Config, FinalApplicationStatus, IpcOptions, KerberosCredentials,
    Resource,
};

use super::launch::am_context;
use super::lib_cache;
use super::spec::{am_resource, AppSpec, KeytabLogin, StagedFile, Visibility};
use super::staging::{ForeignStaging, Staging};
use super::tokens;
use super::{APPLICATION_TYPE, BINARY, KEYTAB_FILE, SPEC_FILE};
use crate::cluster::handoff;
use crate::cluster::remote::wire::random_hex;
use crate::exit;
use crate::job::Job;
use crate::settings::{self, Setting};
use crate::storage::hdfs::client::{on_default_fs, NameNode};
use crate::storage::location::Location;
use crate::storage::object::hadoop::without_secrets;

/// The file the effective configuration is shipped as: the containers' `HADOOP_CONF_DIR` is
/// their working directory, and every reader of site files reads `core-site.xml`.
pub const CONF_FILE: &str = "core-site.xml";

/// The environment variable Oozie's launcher sets to its action configuration.
pub const OOZIE_ACTION_CONF: &str = "OOZIE_ACTION_CONF_XML";
/// The key holding the tag Oozie kills child applications by.
pub const OOZIE_CHILD_TAGS: &str = "oozie.child.mapreduce.job.tags";
const KILL_TIMEOUT: Duration = Duration::from_secs(60);

/// `filex submit` options.
#[derive(Debug, Clone, Default)]
pub struct SubmitOptions {
    pub job: PathBuf,
    pub set: Vec<String>,
    pub queue: Option<String>,
    pub name: Option<String>,
    pub tags: Vec<String>,
    pub detach: bool,
    pub force_new: bool,
    /// Recompute every partition (`--full`), rather than only those whose inputs changed.
    pub full: bool,
    /// On a Kerberized cluster: the ticket cache, or `--principal/--keytab`.
    pub kerberos: KerberosCredentials,
}

/// An error with its exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SubmitError {
    pub code: u8,
    pub message: String,
}

fn fail(code: u8, message: impl Into<String>) -> anyhow::Error {
    SubmitError {
        code,
        message: message.into(),
    }
    .into()
}

/// Checks that every location of the job can be reached from the cluster's containers.
pub fn check_cluster_locations(job: &Job) -> Result<()> {
    let local = |l: &Location| matches!(l, Location::Local(_));
    for s in &job.sources {
        if local(&s.shards.root) {
            bail!(
                "source '{}' reads {} — in cluster mode shards must be on HDFS (hdfs://…) or an object store",
                s.name, s.shards.root
            );
        }
    }
    if local(&job.output.spec.root) {
        bail!(
            "output.root is {} — in cluster mode the output must be on HDFS or an object store",
            job.output.spec.root
        );
    }
    if let Some(s) = &job.scratch {
        if local(s) {
            bail!("scratch is {s} — in cluster mode scratch must be on HDFS");
        }
    }
    Ok(())
}

/// Tags that identify a run of `job` (YARN lower-cases tags).
pub fn job_tags(job: &Job) -> Vec<String> {
    vec![
        format!("filex-job:{}", job.name).to_lowercase(),
        format!("filex-window:{}", job.window_id()).to_lowercase(),
    ]
}

/// The child tag Oozie passes in its action configuration, if any.
pub fn oozie_child_tags() -> Vec<String> {
    let Some(path) = std::env::var_os(OOZIE_ACTION_CONF) else {
        return Vec::new();
    };
    let mut conf = Config::defaults();
    if let Err(e) = conf.add_file(std::path::Path::new(&path)) {
        tracing::warn!(error = %e, "cannot read the Oozie action configuration");
        return Vec::new();
    }
    conf.get_list(OOZIE_CHILD_TAGS)
        .into_iter()
        .map(|t| t.to_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

fn setting(conf: &Config, setting: Setting) -> Result<u64> {
    setting
        .value(conf)
        .map_err(|e| fail(exit::USAGE, e.to_string()))
}

/// Runs `filex submit` with the effective configuration `conf`
/// ([`crate::settings::ConfArgs::load`]); returns the exit code.
pub fn submit(opts: &SubmitOptions, conf: &Config) -> Result<u8> {
    let job =
        Job::load(&opts.job, &opts.set).map_err(|e| fail(exit::USAGE, crate::errors::chain(&e)))?;
    check_cluster_locations(&job).map_err(|e| fail(exit::USAGE, format!("{e:#}")))?;
    let poll =
        settings::client_poll_interval(conf).map_err(|e| fail(exit::USAGE, e.to_string()))?;
    // Resolved here, where the user's environment, profile and site files are; they travel
    // only in the AM container's credentials.
    let object_creds = job
        .output
        .spec
        .object_credentials()
        .map_err(|e| fail(exit::USAGE, crate::errors::chain(&e)))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the client runtime")?;
    let ipc = IpcOptions::from_config(conf)
        .map_err(|e| fail(exit::USAGE, e.to_string()))?
        .with_kerberos(opts.kerberos.clone());
    if let KerberosCredentials::Keytab { principal, keytab } = &opts.kerberos {
        // This process's HDFS clients (staging, the executable cache, cleanup) too.
        crate::storage::hdfs::client::use_keytab(principal, keytab)
            .map_err(|e| fail(exit::USAGE, e.to_string()))?;
    }
    if conf.security_enabled() {
        // A submit always needs Kerberos (the RM, delegation tokens): no ticket, an
        // unreadable keytab or a principal the keytab or the KDC does not know is one line
        // before anything is asked of the cluster.
        yarn::check_credentials(&opts.kerberos).map_err(|e| fail(exit::USAGE, e.to_string()))?;
    }
    let rm = ApplicationClient::with_options(conf, ipc.clone())
        .map_err(|e| fail(exit::USAGE, e.to_string()))?;
    let unreachable = |e: yarn::Error| {
        fail(
            exit::UNREACHABLE,
            format!("ResourceManager {}: {e}", rm.addresses().join(",")),
        )
    };
    let mut tags = job_tags(&job);
    tags.extend(opts.tags.iter().map(|t| t.to_lowercase()));
    tags.extend(oozie_child_tags());

    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, interrupted.clone())
            .context("cannot install signal handlers")?;
    }

    if !opts.force_new {
        let filter = ApplicationFilter {
            types: vec![APPLICATION_TYPE.to_string()],
            states: vec![
                ApplicationState::New,
                ApplicationState::NewSaving,
                ApplicationState::Submitted,
                ApplicationState::Accepted,
                ApplicationState::Running,
            ],
            tags: vec![tags[1].clone()],
            ..ApplicationFilter::default()
        };
        let running = rt
            .block_on(rm.get_applications(&filter))
            .map_err(unreachable)?;
        if let Some(app) = running
            .iter()
            .find(|a| tags[..2].iter().all(|t| a.tags.contains(t)))
        {
            println!(
                "Attaching to running application {} of job {} (use --force-new to start another)",
                app.application_id, job.name
            );
            let code = follow(
                &rt,
                &rm,
                app.application_id,
                Follow {
                    detach: opts.detach,
                    poll,
                    submitted: None,
                },
                &interrupted,
            )?;
            if code == exit::KILLED || code == exit::FAILED {
                clean_after(&job, &app.application_id.to_string());
            }
            return Ok(code);
        }
    }
    // Earlier runs of this window that died: their leftovers go before this run starts.
    match rt.block_on(rm.get_applications(&ApplicationFilter {
        types: vec![APPLICATION_TYPE.to_string()],
        states: vec![
            ApplicationState::Finished,
            ApplicationState::Failed,
            ApplicationState::Killed,
        ],
        tags: vec![tags[1].clone()],
        ..ApplicationFilter::default()
    })) {
        Ok(apps) => {
            for app in apps.iter().filter(|a| {
                tags[..2].iter().all(|t| a.tags.contains(t))
                    && a.final_status != FinalApplicationStatus::Succeeded
            }) {
                // On stderr: stdout's last application id must be the one this run decides by.
                if let Err(e) =
                    super::cleanup::remove_leftovers(&job, &app.application_id.to_string())
                {
                    tracing::warn!(application = %app.application_id, error = %format!("{e:#}"), "could not remove what an earlier run left");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot list the earlier runs of the window"),
    }

    // On a Kerberized cluster: the delegation tokens the application will run with, before
    // anything is staged (the staging directory is the token owner's).
    let delegation = if conf.security_enabled() {
        let authorities = tokens::hdfs_authorities(&job, conf)
            .map_err(|e| fail(exit::USAGE, format!("{e:#}")))?;
        let creds = rt
            .block_on(tokens::fetch(conf, &authorities, &ipc, &rm))
            .map_err(|e| fail(exit::FAILED, format!("{e:#}")))?;
        if let Some(owner) = creds
            .token_by_kind(yarn::credentials::HDFS_DELEGATION_TOKEN_KIND)
            .and_then(yarn::delegation::owner)
        {
            super::staging::set_kerberos_user(yarn::delegation::short_name(&owner));
        }
        println!("Delegation tokens: {}", creds.token_summary());
        creds
    } else {
        yarn::Credentials::default()
    };

    // A staging root of someone else's fails here, before YARN gives out an application id.
    Staging::check_root().map_err(|e| {
        if e.is::<ForeignStaging>() {
            fail(exit::USAGE, e.to_string())
        } else {
            e
        }
    })?;

    let submitted_ms = jiff::Timestamp::now().as_millisecond();
    let new_app = rt.block_on(rm.get_new_application()).map_err(unreachable)?;
    let app_id = new_app.application_id;
    println!("Submitted application {app_id}");
    let _ = std::io::stdout().flush();

    let staging = Staging::create(&app_id.to_string())?;
    let result = (|| -> Result<u8> {
        let staged = |nn: &NameNode, name: &str, up: super::staging::Uploaded, visibility| {
            let (host, port) = nn.host_port();
            StagedFile {
                name: name.to_string(),
                host,
                port,
                path: up.path,
                size: up.size,
                timestamp: up.timestamp,
                visibility,
            }
        };
        let exe = std::env::current_exe().context("cannot find the filex executable")?;
        let lib_dir = settings::YARN_LIB_DIR
            .path(conf)
            .map_err(|e| fail(exit::USAGE, e.to_string()))?
            .unwrap_or_else(lib_cache::user_lib_dir);
        // On a federated default file system the cache may live on another NameNode than
        // the staging directory.
        let (lib_nn, lib_dir) = on_default_fs(&lib_dir)
            .with_context(|| format!("executable cache {lib_dir} (filex.yarn.lib-dir)"))?;
        let cached = lib_cache::ensure(&lib_nn, &lib_dir, &exe)?;
        println!(
            "Executable {}: {} ({})",
            lib_nn.url(&cached.file.path),
            if cached.uploaded {
                format!("uploaded {} bytes", cached.file.size)
            } else {
                "cached, not uploaded".to_string()
            },
            cached.visibility.as_str()
        );
        let conf_file = staging.put(CONF_FILE, without_secrets(conf).to_xml().into_bytes())?;
        let mut staged_bytes = conf_file.size;
        let mut files = vec![
            staged(&lib_nn, BINARY, cached.file, cached.visibility),
            staged(
                staging.namenode(),
                CONF_FILE,
                conf_file,
                Visibility::Application,
            ),
        ];
        let worker = Resource::new(
            setting(conf, settings::WORKER_MEMORY_MB)? as i64,
            setting(conf, settings::WORKER_VCORES)? as i32,
        );
        let uber_max_bytes = setting(conf, settings::UBER_MAX_BYTES)?;
        let am = am_resource(
            setting(conf, settings::AM_MEMORY_MB)? as i64,
            uber_max_bytes,
            worker,
            new_app.maximum_capability,
        );
        let spec = AppSpec {
            job_toml: job.to_toml()?,
            application_id: app_id.to_string(),
            staging: staging.url(&staging.dir),
            worker_memory_mb: worker.memory_mb,
            worker_vcores: worker.vcores,
            am_memory_mb: am.memory_mb,
            am_vcores: am.vcores,
            uber_max_bytes,
            workers_min: setting(conf, settings::WORKERS_MIN)? as usize,
            workers_max: setting(conf, settings::WORKERS_MAX)? as usize,
            bytes_per_worker: setting(conf, settings::BYTES_PER_WORKER)?,
            task_bytes: setting(conf, settings::TASK_BYTES)?,
            locality_wait_ms: setting(conf, settings::LOCALITY_WAIT_MS)?,
            task_timeout_ms: setting(conf, settings::TASK_TIMEOUT_MS)?,
            submitted_ms,
            worker_files: files.clone(),
            full: opts.full,
            keytab: None,
        };
        // With a keytab on a Kerberized cluster, the AM (alone) gets it, to keep the
        // workers' delegation tokens fresh past their renew interval (`tokens::Renewal`).
        let keytab = match &opts.kerberos {
            KerberosCredentials::Keytab { principal, keytab } if conf.security_enabled() => {
                Some(stage_keytab(&staging, principal, keytab)?)
            }
            _ => None,
        };
        let spec = AppSpec {
            keytab: keytab.as_ref().map(|(login, _)| login.clone()),
            ..spec
        };
        if let Some((login, up)) = keytab {
            staged_bytes += up.size;
            files.push(staged(
                staging.namenode(),
                &login.file,
                up,
                Visibility::Application,
            ));
        }
        let spec_json = serde_json::to_vec_pretty(&spec)?;
        let spec_file = staging.put(SPEC_FILE, spec_json)?;
        staged_bytes += spec_file.size;
        files.push(staged(
            staging.namenode(),
            SPEC_FILE,
            spec_file,
            Visibility::Application,
        ));
        println!(
            "Staged {staged_bytes} bytes in {}",
            staging.url(&staging.dir)
        );
        println!(
            "Application master: {} MiB, {} vcores{}",
            am.memory_mb,
            am.vcores,
            if uber_max_bytes > 0 {
                format!("; a job of at most {uber_max_bytes} bytes of input runs in it (uber mode, filex.uber.max-bytes)")
            } else {
                String::new()
            }
        );

        let mut creds = handoff::credentials(&random_hex(32)?, object_creds.as_ref());
        creds.tokens = delegation.tokens.clone();
        let mut ctx = ApplicationSubmissionContext::new(
            app_id,
            opts.name
                .clone()
                .unwrap_or_else(|| format!("filex {}", job.name)),
        );
        ctx.queue = opts.queue.clone().unwrap_or_else(|| "default".to_string());
        ctx.application_type = APPLICATION_TYPE.to_string();
        ctx.tags = tags.clone();
        ctx.am_resource = am;
        ctx.max_app_attempts = setting(conf, settings::AM_MAX_ATTEMPTS)? as i32;
        // The RM renews the delegation tokens while the application runs, then cancels them.
        ctx.cancel_tokens_when_complete = true;
        ctx.am_container = am_context(
            &files,
            creds.encode(yarn::credentials::Format::Writable),
            spec.keytab.is_some(),
        );
        rt.block_on(rm.submit_application(&ctx))
            .map_err(|e| fail(exit::FAILED, format!("submitting {app_id}: {e}")))?;
        follow(
            &rt,
            &rm,
            app_id,
            Follow {
                detach: opts.detach,
                poll,
                submitted: Some(Instant::now()),
            },
            &interrupted,
        )
    })();
    let finished = !matches!(result, Ok(exit::SUCCESS)) || !opts.detach;
    if finished {
        // The AM removes it too; this covers an AM that never ran.
        if let Err(e) = staging.remove() {
            tracing::debug!(error = %e, "staging already removed");
        }
    }
    if matches!(result, Ok(exit::KILLED | exit::FAILED)) {
        clean_after(&job, &app_id.to_string());
    }
    result
}

/// Uploads `keytab` (of `principal`) into the staging directory as [`KEYTAB_FILE`], mode
/// 600 like every staged file: only the submitter can read it, and YARN localizes it into
/// the AM's container alone.
fn stage_keytab(
    staging: &Staging,
    principal: &str,
    keytab: &std::path::Path,
) -> Result<(KeytabLogin, super::staging::Uploaded)> {
    let bytes = std::fs::read(keytab).map_err(|e| {
        fail(
            exit::USAGE,
            format!("cannot read the keytab {}: {e}", keytab.display()),
        )
    })?;
    let up = staging.put(KEYTAB_FILE, bytes)?;
    println!(
        "Keytab of {principal} staged for the application master (mode 600): it refreshes the delegation tokens"
    );
    Ok((
        KeytabLogin {
            principal: principal.to_string(),
            file: KEYTAB_FILE.to_string(),
        },
        up,
    ))
}

/// Removes what the dead application `id` left, saying so; a failure is only a warning
/// (the next run of the window tries again).
fn clean_after(job: &Job, id: &str) {
    match super::cleanup::remove_leftovers_of_just_ended(job, id) {
        Ok(super::cleanup::Removed::All) => {
            println!("Removed what {id} left under {}", job.output.spec.root)
        }
        Ok(super::cleanup::Removed::KeptUnfinishedCommit) => println!(
            "Removed what {id} left, but for the output its unfinished commit publishes: \
             the next run of the window finishes it"
        ),
        Err(e) => eprintln!("filex: could not remove what {id} left: {e:#}"),
    }
}

/// What the AM's `/status` reports.
#[derive(Debug, Clone, Default, serde::Deserialize)]
struct AmStatus {
    phase: String,
    tasks_done: u64,
    tasks_total: u64,
    input_bytes: u64,
    workers: u64,
    /// Absent from the status page of an older filex.
    #[serde(default)]
    am_attempt: u64,
    #[serde(default)]
    journaled_tasks: u64,
    #[serde(default)]
    tasks_recovered: u64,
    #[serde(default)]
    uber: bool,
}

fn fetch_status(tracking_url: &str) -> Option<AmStatus> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(1)))
        .build()
        .into();
    let url = format!("{}/status", tracking_url.trim_end_matches('/'));
    let body = agent
        .get(&url)
        .call()
        .ok()?
        .body_mut()
        .read_to_string()
        .ok()?;
    serde_json::from_str(&body).ok()
}

/// How [`follow`] follows an application.
#[derive(Debug, Clone, Copy)]
struct Follow {
    /// Return once the application is accepted.
    detach: bool,
    /// Pause between two reports ([`settings::CLIENT_POLL_INTERVAL_MS`]).
    poll: Duration,
    /// When this client submitted it (`None` when attaching to a running one).
    submitted: Option<Instant>,
}

/// Follows an application to its end; returns the exit code.
fn follow(
    rt: &tokio::runtime::Runtime,
    rm: &ApplicationClient,
    id: ApplicationId,
    how: Follow,
    interrupted: &AtomicBool,
) -> Result<u8> {
    let Follow {
        detach,
        poll,
        submitted,
    } = how;
    let started = submitted.unwrap_or_else(Instant::now);
    let mut last_state = None;
    let mut last_line = String::new();
    let mut last_attempt = None;
    // (AM attempt, tasks recovered) last said.
    let mut last_recovery = (1, 0);
    loop {
        if interrupted.load(Ordering::Relaxed) {
            eprintln!("filex: interrupted; killing {id}");
            rt.block_on(rm.kill_application(
                id,
                Some("killed by filex submit (signal)"),
                poll,
                KILL_TIMEOUT,
            ))
            .with_context(|| format!("could not kill {id}"))?;
            let report = rt.block_on(rm.get_application_report(id))?;
            eprintln!("filex: {id} is {}", report.state.as_str());
            print_logs_hint(id);
            return Ok(exit::KILLED);
        }
        let report: ApplicationReport = rt
            .block_on(rm.get_application_report(id))
            .map_err(|e| fail(exit::UNREACHABLE, format!("following {id}: {e}")))?;
        let attempt = report.current_attempt.map(|a| a.attempt_id);
        // The RM may report attempt 0 (an id not filled in yet) before the first attempt is
        // registered, and a first attempt that dies within one poll is never seen: any attempt
        // after the first is a restart, said once.
        if let Some(n) = attempt.filter(|&n| n >= 2 && attempt > last_attempt) {
            println!(
                "{:>7.1} s  {id}: the application master failed; YARN started AM attempt {n}, which recovers the tasks the failed one finished",
                started.elapsed().as_secs_f64()
            );
        }
        if attempt > last_attempt {
            last_attempt = attempt;
        }
        if last_state != Some(report.state) {
            println!(
                "{:>7.1} s  {id} {}{}",
                started.elapsed().as_secs_f64(),
                report.state.as_str(),
                if report.tracking_url.is_empty() {
                    String::new()
                } else {
                    format!("  tracking URL: {}", report.tracking_url)
                }
            );
            last_state = Some(report.state);
            if detach
                && report.state != ApplicationState::New
                && report.state != ApplicationState::NewSaving
                && report.state != ApplicationState::Submitted
            {
                println!("detached; follow it with: filex status {id}");
                return Ok(exit::SUCCESS);
            }
        }
        if report.state == ApplicationState::Running {
            let direct = format!("http://{}:{}/", report.host, report.rpc_port);
            if let Some(st) = fetch_status(&direct).or_else(|| fetch_status(&report.tracking_url)) {
                let secs = started.elapsed().as_secs_f64();
                let recovery = (st.am_attempt, st.tasks_recovered);
                // Once the new attempt has planned: its first batch recovers what it can.
                let planned = !st.phase.is_empty() && st.phase != "plan";
                if st.am_attempt > 1 && recovery != last_recovery && planned {
                    println!(
                        "{secs:>7.1} s  {id}: AM attempt {} started; recovering {} of {} finished tasks",
                        st.am_attempt, st.tasks_recovered, st.journaled_tasks
                    );
                    last_recovery = recovery;
                }
                let workers = match (st.uber, st.workers) {
                    (true, 0) => "in the application master (uber mode)".to_string(),
                    (true, n) => format!("{n} workers after a failure in uber mode"),
                    (false, n) => format!("{n} workers"),
                };
                let line = format!(
                    "{secs:>7.1} s  {}: {}/{} tasks, {workers}, {:.1} MB read ({:.1} MB/s)",
                    st.phase,
                    st.tasks_done,
                    st.tasks_total,
                    st.input_bytes as f64 / 1e6,
                    st.input_bytes as f64 / 1e6 / secs.max(0.001)
                );
                // Print when something but the clock and the rate changed.
                let key = |l: &str| {
                    l.get(10..)
                        .and_then(|t| t.split(" MB read").next())
                        .map(str::to_string)
                };
                if key(&line) != key(&last_line) {
                    println!("{line}");
                    last_line = line;
                }
            }
        }
        if report.state.is_terminal() {
            let ok = report.state == ApplicationState::Finished
                && report.final_status == FinalApplicationStatus::Succeeded;
            println!(
                "{id} {} {} in {:.1} s",
                report.state.as_str(),
                report.final_status.as_str(),
                started.elapsed().as_secs_f64()
            );
            if !report.diagnostics.trim().is_empty() {
                println!("diagnostics: {}", report.diagnostics.trim());
            }
            let code = match (ok, report.state) {
                (true, _) => exit::SUCCESS,
                (false, ApplicationState::Killed) => exit::KILLED,
                _ => exit::FAILED,
            };
            if code != exit::SUCCESS {
                print_logs_hint(id);
            }
            write_oozie_output(&report, code);
            return Ok(code);
        }
        std::thread::sleep(poll);
    }
}

/// Says where the AM's and workers' logs are once an application has failed or was killed
/// (with YARN log aggregation on), as MapReduce and Spark do.
fn print_logs_hint(id: ApplicationId) {
    eprintln!("filex: the containers' logs: yarn logs -applicationId {id}");
}

/// Where Oozie's `<capture-output/>` wants the action's result (see `docs/SCHEDULING.md`).
pub const OOZIE_ACTION_OUTPUT: &str = "OOZIE_ACTION_OUTPUT_PROPERTIES";

/// When `OOZIE_ACTION_OUTPUT_PROPERTIES` names a file, writes the outcome there as Java
/// properties (well under Oozie's 2 KB limit): `application_id`, `state`, `final_status`,
/// `exit_code`, `manifest` and the manifest's counters (`lines_in`, `lines_out`, `rejected`,
/// `out_of_window`, `partitions`) when the run published one, `error` (the first line of the
/// diagnostics, 300 characters at most) when it did not. The counters are read from the
/// manifest itself (one small HDFS read), the one place that holds them after the run.
fn write_oozie_output(report: &ApplicationReport, code: u8) {
    let Some(path) = std::env::var_os(OOZIE_ACTION_OUTPUT) else {
        return;
    };
    let diagnostics = report.diagnostics.trim();
    let manifest = diagnostics
        .lines()
        .find_map(|l| l.trim().strip_prefix("manifest: "))
        .map(str::trim);
    let mut props = vec![
        ("application_id", report.application_id.to_string()),
        ("state", report.state.as_str().to_string()),
        ("final_status", report.final_status.as_str().to_string()),
        ("exit_code", code.to_string()),
    ];
    if let Some(url) = manifest {
        props.push(("manifest", url.to_string()));
        let read = || -> Result<crate::manifest::Manifest> {
            let loc = Location::parse(url, std::path::Path::new("/"))?;
            let mut bytes = Vec::new();
            crate::storage::input_store(&loc)?
                .open(&loc)?
                .read_to_end(&mut bytes)?;
            Ok(serde_json::from_slice(&bytes)?)
        };
        match read() {
            Ok(m) => {
                let c = &m.counters;
                props.push(("lines_in", c.lines_in.to_string()));
                props.push(("lines_out", c.lines_out.to_string()));
                props.push(("rejected", c.rejected.to_string()));
                props.push(("out_of_window", c.out_of_window.to_string()));
                props.push(("partitions", m.partitions.len().to_string()));
            }
            Err(e) => eprintln!("filex: cannot read the manifest {url} for Oozie: {e:#}"),
        }
    } else if let Some(first) = diagnostics.lines().next() {
        props.push(("error", first.chars().take(300).collect()));
    }
    let mut text = String::new();
    for (k, v) in props {
        // Java properties (read as ISO-8859-1): `\\`, `\n`, `\r` and `\uXXXX` escapes.
        text.push_str(k);
        text.push('=');
        for ch in v.chars() {
            match ch {
                '\\' => text.push_str("\\\\"),
                '\n' => text.push_str("\\n"),
                '\r' => text.push_str("\\r"),
                ' '..='~' => text.push(ch),
                _ => {
                    for unit in ch.encode_utf16(&mut [0; 2]) {
                        text.push_str(&format!("\\u{unit:04x}"));
                    }
                }
            }
        }
        text.push('\n');
    }
    if let Err(e) = std::fs::write(&path, text) {
        eprintln!(
            "filex: cannot write {OOZIE_ACTION_OUTPUT} file {}: {e}",
            std::path::Path::new(&path).display()
        );
    }
}
