//! Smoke tests of the running test cluster (`scripts/cluster.sh start`): WebHDFS stores and
//! returns bytes through the DataNodes, the conf directory describes the live cluster, and the
//! ResourceManager sees its NodeManagers. Each test fails (never skips) when the cluster is
//! down or misbehaves.

use std::time::{SystemTime, UNIX_EPOCH};

use filex_integration::cluster::host_port;
use filex_integration::http;
use filex_integration::webhdfs::{json_field, WebHdfs, WebHdfsError};
use filex_integration::{require_cluster, Cluster};

/// Block size and replication the harness configures.
const BLOCK_SIZE: &str = "16777216";
const REPLICATION: &str = "3";
/// The harness starts three NodeManagers; fewer than two RUNNING means something is wrong.
const MIN_RUNNING_NODEMANAGERS: usize = 2;

fn user() -> String {
    ["HADOOP_USER_NAME", "USER"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "filex".to_string())
}

/// A directory under the world-writable /tmp that no other run uses.
fn unique_dir(label: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("/tmp/filex-smoke/{label}-{}-{nanos}", std::process::id())
}

/// Bytes that catch truncation, text-mode mangling and misordered chunks: every byte value,
/// with the position mixed in, over more than one 64 KiB packet.
fn sample_bytes(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8) ^ ((i >> 8) as u8).rotate_left(3))
        .collect()
}

#[test]
fn webhdfs_round_trip_through_datanodes() {
    let cluster = require_cluster();
    let fs = WebHdfs::new(&cluster.env.webhdfs, &user()).expect("FILEX_WEBHDFS is a URL");
    let dir = unique_dir("webhdfs");
    let file = format!("{dir}/shard 00.bin");
    let data = sample_bytes(200_000);

    assert!(
        fs.mkdirs(&dir).expect("MKDIRS"),
        "MKDIRS {dir} returned false"
    );
    fs.create(&file, &data, false).expect("CREATE");

    let back = fs.open(&file).expect("OPEN");
    assert_eq!(back.len(), data.len(), "length read back");
    assert!(back == data, "bytes read back differ from bytes written");

    let status = fs.file_status(&file).expect("GETFILESTATUS");
    assert_eq!(json_field(&status, "type"), Some("FILE"), "{status}");
    assert_eq!(
        json_field(&status, "length"),
        Some(data.len().to_string().as_str()),
        "{status}"
    );
    assert_eq!(
        json_field(&status, "blockSize"),
        Some(BLOCK_SIZE),
        "{status}"
    );
    assert_eq!(
        json_field(&status, "replication"),
        Some(REPLICATION),
        "{status}"
    );

    let listing = fs.list_status(&dir).expect("LISTSTATUS");
    assert!(
        listing.contains("\"pathSuffix\":\"shard 00.bin\""),
        "LISTSTATUS {dir} lacks the file: {listing}"
    );

    match fs.create(&file, b"again", false) {
        Err(WebHdfsError::Status { status, .. }) => {
            assert!(status >= 400, "CREATE over an existing file: HTTP {status}")
        }
        other => panic!("CREATE without overwrite on an existing file must fail, got {other:?}"),
    }

    assert!(fs.delete(&dir, true).expect("DELETE"), "DELETE {dir}");
    match fs.file_status(&file) {
        Err(WebHdfsError::Status { status: 404, .. }) => {}
        other => panic!("GETFILESTATUS after DELETE must be 404, got {other:?}"),
    }
}

/// One site file on its own (no defaults, no other file).
fn site(cluster: &Cluster, name: &str) -> yarn::Config {
    let mut conf = yarn::Config::default();
    conf.add_file(&cluster.site_file(name))
        .unwrap_or_else(|e| panic!("{e}"));
    conf
}

fn must_get(conf: &yarn::Config, key: &str) -> String {
    conf.get(key).unwrap_or_else(|| panic!("{key} is not set"))
}

fn port_of(key: &str, addr: &str) -> u16 {
    host_port(addr)
        .unwrap_or_else(|| panic!("{key}={addr:?} has no non-zero port"))
        .1
}

#[test]
fn conf_dir_describes_the_live_cluster() {
    let cluster = require_cluster();
    let env = &cluster.env;

    let core = site(&cluster, "core-site.xml");
    assert_eq!(core.get("fs.defaultFS").as_ref(), Some(&env.namenode));

    let hdfs = site(&cluster, "hdfs-site.xml");
    let nn_http = &must_get(&hdfs, "dfs.namenode.http-address");
    assert_eq!(
        port_of("dfs.namenode.http-address", nn_http),
        port_of("FILEX_WEBHDFS", &env.webhdfs)
    );
    let nn_rpc = &must_get(&hdfs, "dfs.namenode.rpc-address");
    assert_eq!(
        port_of("dfs.namenode.rpc-address", nn_rpc),
        port_of("FILEX_NAMENODE", &env.namenode)
    );
    assert_eq!(hdfs.get("dfs.blocksize").as_deref(), Some(BLOCK_SIZE));

    let yarn = site(&cluster, "yarn-site.xml");
    for (key, published) in [
        ("yarn.resourcemanager.address", &env.rm_address),
        (
            "yarn.resourcemanager.scheduler.address",
            &env.rm_scheduler_address,
        ),
    ] {
        let value = yarn
            .get(key)
            .unwrap_or_else(|| panic!("yarn-site.xml has no {key}"));
        assert_ne!(port_of(key, &value), 0);
        assert_eq!(&value, published, "{key} in yarn-site.xml vs cluster.env");
    }
    let webapp = &must_get(&yarn, "yarn.resourcemanager.webapp.address");
    assert_eq!(
        port_of("yarn.resourcemanager.webapp.address", webapp),
        port_of("FILEX_RM_WEBAPP", &env.rm_webapp)
    );
    assert!(
        must_get(&yarn, "yarn.scheduler.capacity.root.queues").contains("default"),
        "CapacityScheduler queues missing from yarn-site.xml"
    );
}

#[test]
fn resourcemanager_reports_running_nodemanagers() {
    let cluster = require_cluster();
    let base = cluster.env.rm_webapp.trim_end_matches('/');

    let nodes = http::request("GET", &format!("{base}/ws/v1/cluster/nodes"), None)
        .expect("GET /ws/v1/cluster/nodes");
    assert_eq!(nodes.status, 200, "{}", nodes.text());
    let compact: String = nodes.text().split_whitespace().collect();
    let running = compact.matches("\"state\":\"RUNNING\"").count();
    assert!(
        running >= MIN_RUNNING_NODEMANAGERS,
        "expected at least {MIN_RUNNING_NODEMANAGERS} RUNNING NodeManagers: {compact}"
    );

    let scheduler = http::request("GET", &format!("{base}/ws/v1/cluster/scheduler"), None)
        .expect("GET /ws/v1/cluster/scheduler");
    assert_eq!(scheduler.status, 200, "{}", scheduler.text());
    let compact: String = scheduler.text().split_whitespace().collect();
    for queue in ["default", "batch"] {
        assert!(
            compact.contains(&format!("\"queueName\":\"{queue}\"")),
            "queue {queue} missing: {compact}"
        );
    }
}
