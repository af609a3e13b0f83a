//! End-to-end tests of the yarn crate against the Hadoop mini cluster
//! started by `scripts/cluster.sh start` (conf in `$FILEX_CLUSTER_DIR/conf`,
//! default `<repo>/target/cluster/conf`). Compiled only with the
//! `integration-test` feature:
//!
//! ```text
//! cargo test -p filex-yarn --features integration-test --test cluster
//! ```
//!
//! Every test fails (never skips) when the cluster is down or misbehaves.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use yarn::{
    AmRmClient, ApplicationClient, ApplicationFilter, ApplicationId, ApplicationReport,
    ApplicationState, ApplicationSubmissionContext, Config, ContainerLaunchContext,
    ContainerRequest, FinalApplicationStatus, IpcOptions, NameNodeClient, NmClient, NodeState,
    Resource,
};

const MIB: u64 = 1024 * 1024;
/// The harness's `dfs.blocksize`.
const BLOCK_SIZE: u64 = 16 * MIB;
const APP_TIMEOUT: Duration = Duration::from_secs(180);

fn cluster_dir() -> PathBuf {
    match std::env::var("FILEX_CLUSTER_DIR") {
        Ok(d) if !d.is_empty() => {
            let p = PathBuf::from(d);
            if p.is_absolute() {
                p
            } else {
                repo_root().join(p)
            }
        }
        _ => repo_root().join("target").join("cluster"),
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("yarn/ has a parent")
        .to_path_buf()
}

fn cluster_env() -> BTreeMap<String, String> {
    let path = cluster_dir().join("conf").join("cluster.env");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "mini cluster not running ({}: {e}); start it with scripts/cluster.sh start",
            path.display()
        )
    });
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("export ").or(Some(l.trim())))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect()
}

fn config() -> Config {
    let _ = cluster_env(); // fail loudly when the cluster is down
    Config::load(Some(&cluster_dir().join("conf"))).expect("cluster conf loads")
}

fn user() -> String {
    yarn::config::current_user().unwrap_or_else(|| "filex".into())
}

fn options() -> IpcOptions {
    IpcOptions::default()
        .with_connect_timeout(Duration::from_secs(10))
        .with_call_timeout(Duration::from_secs(60))
}

fn rm(config: &Config) -> ApplicationClient {
    ApplicationClient::with_options(config, options()).expect("RM client")
}

fn unique(label: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{label}-{}-{nanos}", std::process::id())
}

async fn wait_for(
    rm: &ApplicationClient,
    id: ApplicationId,
    done: impl Fn(&ApplicationReport) -> bool,
) -> (ApplicationReport, BTreeSet<String>) {
    let start = Instant::now();
    let mut seen = BTreeSet::new();
    loop {
        let r = rm.get_application_report(id).await.expect("report");
        seen.insert(r.state.to_string());
        if done(&r) {
            return (r, seen);
        }
        assert!(
            start.elapsed() < APP_TIMEOUT,
            "{id} stuck in {} (seen {seen:?}): {}",
            r.state,
            r.diagnostics
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn lists_nodes_metrics_and_queue() {
    let config = config();
    let rm = rm(&config);
    let nodes = rm.get_cluster_nodes(&[]).await.expect("getClusterNodes");
    let running: Vec<_> = nodes
        .iter()
        .filter(|n| n.state == NodeState::Running)
        .collect();
    assert!(running.len() >= 2, "expected NodeManagers, got {nodes:?}");
    for n in &running {
        assert!(!n.node_id.host.is_empty());
        assert!(n.node_id.port > 0);
        assert!(
            n.capability.memory_mb > 0 && n.capability.vcores > 0,
            "{n:?}"
        );
        assert!(n.rack_name.starts_with('/'), "{n:?}");
    }
    let only_running = rm
        .get_cluster_nodes(&[NodeState::Running])
        .await
        .expect("filtered");
    assert_eq!(only_running.len(), running.len());
    let metrics = rm.get_cluster_metrics().await.expect("getClusterMetrics");
    assert_eq!(metrics.num_active_nms as usize, running.len());
    let queue = rm
        .get_queue_info("default", false, false)
        .await
        .expect("getQueueInfo");
    assert_eq!(queue.name, "default");
}

#[tokio::test]
async fn unknown_application_is_a_typed_remote_error() {
    let config = config();
    let rm = rm(&config);
    let err = rm
        .get_application_report(ApplicationId {
            cluster_timestamp: 1,
            id: 4242,
        })
        .await
        .expect_err("no such application");
    let remote = err.remote().expect("remote exception");
    assert!(remote.is_application_not_found(), "{err}");
    assert!(err.to_string().contains("getApplicationReport"), "{err}");
}

#[tokio::test]
async fn block_locations_name_datanodes() {
    let env = cluster_env();
    let config = config();
    let webhdfs = env.get("FILEX_WEBHDFS").expect("FILEX_WEBHDFS");
    let path = format!("/tmp/filex-yarn/{}/three-blocks.bin", unique("blocks"));
    let len: u64 = 2 * BLOCK_SIZE + 5 * MIB;
    let local = std::env::temp_dir().join(unique("yarn-blocks"));
    std::fs::write(&local, vec![7u8; len as usize]).expect("local file");
    let url = format!(
        "{webhdfs}/webhdfs/v1{path}?op=CREATE&overwrite=true&user.name={}",
        user()
    );
    let status = Command::new("curl")
        .args(["-sS", "-f", "-L", "-X", "PUT", "-T"])
        .arg(&local)
        .arg(&url)
        .status()
        .expect("curl runs");
    let _ = std::fs::remove_file(&local);
    assert!(status.success(), "WebHDFS upload failed");

    let nn = NameNodeClient::new(&config).expect("NameNode client");
    let info = nn.get_file_info(&path).await.expect("getFileInfo");
    let info = info.expect("file exists");
    assert_eq!(info.length, len);
    assert_eq!(info.block_size, BLOCK_SIZE);

    let located = nn
        .get_block_locations(&path, 0, len)
        .await
        .expect("getBlockLocations");
    assert_eq!(located.file_length, len);
    let offsets: Vec<u64> = located.blocks.iter().map(|b| b.offset).collect();
    assert_eq!(offsets, vec![0, BLOCK_SIZE, 2 * BLOCK_SIZE]);
    let lengths: Vec<u64> = located.blocks.iter().map(|b| b.length).collect();
    assert_eq!(lengths, vec![BLOCK_SIZE, BLOCK_SIZE, 5 * MIB]);
    for b in &located.blocks {
        assert!(!b.hosts.is_empty(), "{b:?}");
        assert_eq!(b.hosts.len(), b.names.len());
        assert_eq!(b.hosts.len(), b.racks.len());
        let distinct: BTreeSet<&String> = b.names.iter().collect();
        assert_eq!(
            distinct.len(),
            b.names.len(),
            "replicas on distinct DataNodes"
        );
        for n in &b.names {
            let port: u16 = n
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("port");
            assert!(port > 0, "{n}");
        }
        assert!(b.racks.iter().all(|r| r.starts_with('/')), "{b:?}");
        assert!(!b.corrupt);
    }
    // A range inside the second block returns only that block.
    let mid = nn
        .get_block_locations(&path, BLOCK_SIZE + 1, 10)
        .await
        .expect("range");
    assert_eq!(mid.blocks.len(), 1);
    assert_eq!(mid.blocks[0].offset, BLOCK_SIZE);

    let missing = nn
        .get_block_locations("/tmp/filex-yarn/does-not-exist", 0, 1)
        .await
        .expect_err("missing file");
    assert!(
        missing.remote().is_some_and(|r| r.is_file_not_found()),
        "{missing}"
    );
    assert!(nn
        .get_file_info("/tmp/filex-yarn/does-not-exist")
        .await
        .expect("ok")
        .is_none());

    // The located listing of the file's directory carries the same blocks; a file lists
    // as itself with an empty name; a missing directory is `None`.
    let dir = path.rsplit_once('/').map(|(d, _)| d).expect("a directory");
    let listed = nn
        .list_located(dir)
        .await
        .expect("getListing")
        .expect("the directory exists");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].name, "three-blocks.bin");
    assert!(!listed[0].is_dir);
    assert_eq!(listed[0].length, len);
    // The NameNode orders each block's replicas afresh for every request.
    let listed_replicas: Vec<(u64, u64, BTreeSet<String>)> = listed[0]
        .blocks
        .iter()
        .map(|b| {
            let names = b.hosts.iter().zip(&b.xfer_ports);
            (
                b.offset,
                b.length,
                names.map(|(h, p)| format!("{h}:{p}")).collect(),
            )
        })
        .collect();
    let located_replicas: Vec<(u64, u64, BTreeSet<String>)> = located
        .blocks
        .iter()
        .map(|b| (b.offset, b.length, b.names.iter().cloned().collect()))
        .collect();
    assert_eq!(listed_replicas, located_replicas);
    let itself = nn
        .list_located(&path)
        .await
        .expect("getListing of a file")
        .expect("the file exists");
    assert_eq!(itself.len(), 1);
    assert_eq!(itself[0].name, "");
    let parent = dir.rsplit_once('/').map(|(d, _)| d).expect("a parent");
    let above = nn
        .list_located(parent)
        .await
        .expect("getListing")
        .expect("the parent exists");
    assert!(
        above.iter().any(|e| e.is_dir && e.blocks.is_empty()),
        "{above:?}"
    );
    assert!(nn
        .list_located("/tmp/filex-yarn/does-not-exist")
        .await
        .expect("ok")
        .is_none());
}

fn shell_app(
    id: ApplicationId,
    name: &str,
    command: &str,
    tag: &str,
) -> ApplicationSubmissionContext {
    let mut ctx = ApplicationSubmissionContext::new(id, name);
    ctx.am_resource = Resource::new(256, 1);
    ctx.max_app_attempts = 1;
    ctx.tags = vec![tag.to_string()];
    ctx.application_type = "FILEX-TEST".into();
    ctx.am_container = ContainerLaunchContext {
        commands: vec![
            command.to_string(),
            "1><LOG_DIR>/stdout".into(),
            "2><LOG_DIR>/stderr".into(),
        ],
        ..ContainerLaunchContext::default()
    };
    ctx
}

#[tokio::test]
async fn submit_follow_and_kill() {
    let config = config();
    let rm = rm(&config);
    let tag = unique("Tag");

    // An AM that copies its token file (so we can parse real Hadoop bytes)
    // and sleeps: it runs and exits without registering.
    let short = rm.get_new_application().await.expect("getNewApplication");
    assert!(short.maximum_capability.memory_mb > 0);
    let tokens_copy = std::env::temp_dir().join(unique("yarn-container-tokens"));
    let command = format!(
        "/bin/cp $HADOOP_TOKEN_FILE_LOCATION {} && /bin/sleep 2",
        tokens_copy.display()
    );
    rm.submit_application(&shell_app(
        short.application_id,
        "filex-yarn-sleep",
        &command,
        &tag,
    ))
    .await
    .expect("submit");

    // One that would sleep for five minutes, to kill.
    let long = rm.get_new_application().await.expect("getNewApplication");
    assert_ne!(long.application_id, short.application_id);
    rm.submit_application(&shell_app(
        long.application_id,
        "filex-yarn-kill",
        "/bin/sleep 300",
        &tag,
    ))
    .await
    .expect("submit");

    let (r, seen) = wait_for(&rm, short.application_id, |r| r.state.is_terminal()).await;
    assert_eq!(r.name, "filex-yarn-sleep");
    assert_eq!(r.user, user());
    assert_eq!(r.application_type, "FILEX-TEST");
    assert!(r.tags.contains(&tag.to_lowercase()), "{:?}", r.tags);
    // An AM process that never registers ends its (only) attempt when it
    // exits: the RM reports FINISHED or FAILED, never KILLED, and the
    // diagnostics name the exit code 0.
    assert!(
        matches!(
            r.state,
            ApplicationState::Finished | ApplicationState::Failed
        ),
        "{r:?}"
    );
    assert!(r.finish_time >= r.start_time && r.finish_time > 0);
    assert!(
        seen.contains("RUNNING") || seen.contains("ACCEPTED"),
        "never saw the app run: {seen:?}"
    );
    if r.state == ApplicationState::Failed {
        assert!(r.diagnostics.contains("exitCode: 0"), "{}", r.diagnostics);
    }
    // The NM's token file (Writable HDTS) holds the AMRMToken of this attempt.
    let creds = yarn::Credentials::read_file(&tokens_copy).expect("container_tokens parses");
    let _ = std::fs::remove_file(&tokens_copy);
    let amrm = creds
        .am_rm_token()
        .expect("AMRMToken in the AM's token file");
    assert_eq!(amrm.service, "");
    assert_eq!(
        Some(yarn::ApplicationAttemptId::of_am_rm_token(amrm).expect("identifier decodes")),
        r.current_attempt
    );

    wait_for(&rm, long.application_id, |r| {
        matches!(
            r.state,
            ApplicationState::Accepted | ApplicationState::Running
        )
    })
    .await;
    rm.kill_application(
        long.application_id,
        Some("filex-yarn test"),
        Duration::from_millis(200),
        Duration::from_secs(60),
    )
    .await
    .expect("kill");
    let (killed, _) = wait_for(&rm, long.application_id, |r| r.state.is_terminal()).await;
    assert_eq!(killed.state, ApplicationState::Killed);
    assert_eq!(killed.final_status, FinalApplicationStatus::Killed);

    // getApplications filters by tag and state.
    let by_tag = rm
        .get_applications(&ApplicationFilter {
            tags: vec![tag.clone()],
            ..ApplicationFilter::default()
        })
        .await
        .expect("getApplications");
    let ids: BTreeSet<ApplicationId> = by_tag.iter().map(|r| r.application_id).collect();
    assert_eq!(
        ids,
        BTreeSet::from([short.application_id, long.application_id])
    );
    let killed_only = rm
        .get_applications(&ApplicationFilter {
            tags: vec![tag.clone()],
            states: vec![ApplicationState::Killed],
            types: vec!["FILEX-TEST".into()],
            ..ApplicationFilter::default()
        })
        .await
        .expect("getApplications");
    let ids: Vec<ApplicationId> = killed_only.iter().map(|r| r.application_id).collect();
    assert_eq!(ids, vec![long.application_id]);
}

#[tokio::test]
async fn unmanaged_am_runs_two_containers() {
    let config = config();
    let rm = rm(&config);
    let tag = unique("uam").to_lowercase();
    let app = rm.get_new_application().await.expect("getNewApplication");
    let mut ctx = ApplicationSubmissionContext::new(app.application_id, "filex-yarn-unmanaged");
    ctx.unmanaged_am = true;
    ctx.tags = vec![tag];
    ctx.max_app_attempts = 1;
    rm.submit_application(&ctx).await.expect("submit");
    let (report, _) = wait_for(&rm, app.application_id, |r| {
        r.am_rm_token.is_some() || r.state.is_terminal()
    })
    .await;
    assert!(report.unmanaged);
    let token = report
        .am_rm_token
        .clone()
        .expect("AMRMToken for the unmanaged AM");

    let am = AmRmClient::from_parts(
        config.scheduler_addresses().expect("scheduler"),
        token,
        options(),
    );
    let reg = am
        .register_application_master("127.0.0.1", -1, "")
        .await
        .expect("registerApplicationMaster");
    assert!(reg.maximum_capability.memory_mb > 0);

    let nodes = rm
        .get_cluster_nodes(&[NodeState::Running])
        .await
        .expect("nodes");
    assert!(nodes.len() >= 2);
    for n in &nodes {
        am.set_node_rack(&n.node_id.host, &n.rack_name).await;
    }
    for n in nodes.iter().take(2) {
        am.add_container_request(ContainerRequest {
            capability: Resource::new(128, 1),
            nodes: vec![n.node_id.host.clone()],
            racks: vec![],
            priority: 1,
            allocation_request_id: 0,
            relax_locality: true,
        })
        .await;
    }

    let nm = NmClient::new(options());
    let launch = ContainerLaunchContext {
        commands: vec!["/bin/true".into()],
        ..ContainerLaunchContext::default()
    };
    let mut started = BTreeSet::new();
    let mut completed = BTreeMap::new();
    let start = Instant::now();
    while completed.len() < 2 {
        assert!(
            start.elapsed() < APP_TIMEOUT,
            "started {started:?}, completed {completed:?}"
        );
        let resp = am.allocate(0.5).await.expect("allocate");
        for a in resp.allocated {
            let c = a.container;
            assert_eq!(c.resource.vcores, 1);
            let nm_token = am.nm_token(&c.node_id).await.expect("NMToken for the node");
            let r = nm
                .start_container(&c, &nm_token, &launch)
                .await
                .expect("startContainers");
            assert!(r.failed.is_empty(), "{:?}", r.failed);
            assert_eq!(r.succeeded, vec![c.id]);
            // The NM answers for the container it started.
            let (statuses, failed) = nm
                .get_container_statuses(&c.node_id, &nm_token, &[c.id])
                .await
                .expect("getContainerStatuses");
            assert!(failed.is_empty(), "{failed:?}");
            assert_eq!(statuses.len(), 1);
            started.insert(c.id);
        }
        for s in resp.completed {
            if started.contains(&s.container_id) {
                completed.insert(s.container_id, s.exit_status);
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(started.len(), 2);
    assert!(completed.values().all(|&x| x == 0), "{completed:?}");
    assert_eq!(am.outstanding_requests().await, 0);

    am.finish_application_master(FinalApplicationStatus::Succeeded, "done", "")
        .await
        .expect("finishApplicationMaster");
    let (done, _) = wait_for(&rm, app.application_id, |r| r.state.is_terminal()).await;
    assert_eq!(
        done.state,
        ApplicationState::Finished,
        "{}",
        done.diagnostics
    );
    assert_eq!(done.final_status, FinalApplicationStatus::Succeeded);
}

#[tokio::test]
async fn rust_am_in_a_container_runs_a_container_and_succeeds() {
    let config = config();
    let rm = rm(&config);
    let app = rm.get_new_application().await.expect("getNewApplication");
    let am_binary = env!("CARGO_BIN_EXE_filex-yarn-test-am");
    let mut ctx = shell_app(
        app.application_id,
        "filex-yarn-rust-am",
        &format!("{am_binary} /bin/true"),
        &unique("rust-am").to_lowercase(),
    );
    ctx.am_container.environment.insert(
        "HADOOP_CONF_DIR".into(),
        cluster_dir().join("conf").display().to_string(),
    );
    rm.submit_application(&ctx).await.expect("submit");
    let (r, seen) = wait_for(&rm, app.application_id, |r| r.state.is_terminal()).await;
    assert!(seen.contains("RUNNING"), "{seen:?}");
    assert_eq!(r.state, ApplicationState::Finished, "{}", r.diagnostics);
    assert_eq!(
        r.final_status,
        FinalApplicationStatus::Succeeded,
        "{}",
        r.diagnostics
    );
    assert!(r.diagnostics.contains("done"), "{}", r.diagnostics);
}
