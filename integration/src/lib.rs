//! Shared helpers of the filex integration suite, which runs against the Hadoop mini cluster
//! (a MiniDFSCluster and a MiniYARNCluster in one JVM, see `integration/harness/`).
//!
//! The cluster is started outside the tests, once, by `scripts/cluster.sh start`; it writes
//! `core-site.xml`, `hdfs-site.xml`, `yarn-site.xml` and `cluster.env` into
//! `$FILEX_CLUSTER_DIR/conf` (default `<project>/target/cluster/conf`). Tests call
//! [`require_cluster`], which fails loudly when the cluster is not up rather than skipping.
//!
//! This crate does not start or stop the cluster; it depends on std and, to read the site
//! files, on `filex-yarn`'s `Config`.
//!
//! # Layout
//!
//! * [`cluster`]: where the cluster's files are, `cluster.env`, [`require_cluster`].
//! * [`cli`]: the `filex` binary as the tests run it (hooks, user, unique names, app ids).
//! * [`files`]: local trees of files read whole, and copied to HDFS.
//! * [`http`]: a minimal blocking HTTP/1.1 client over `std::net::TcpStream`.
//! * [`webhdfs`]: the few WebHDFS operations the tests need (follows DataNode redirects).
//! * [`procs`]: an application's AM and worker processes on this machine, and signals to them.
//! * [`s3_proxy`]: a fault-injecting HTTP proxy in front of the local S3 server.
//! * [`secure`]: the Kerberized cluster's tests: `filex` with a ticket cache, `kinit`,
//!   Hadoop's shell as either user, container logs.
//! * [`secrets`]: looking for secrets in container processes, files and pages.
//!
//! # Example
//!
//! ```no_run
//! let cluster = filex_integration::require_cluster();
//! let fs = filex_integration::webhdfs::WebHdfs::new(&cluster.env.webhdfs, "filex").unwrap();
//! fs.mkdirs("/tmp/example").unwrap();
//! ```

pub mod cli;
pub mod cluster;
pub mod files;
pub mod http;
pub mod procs;
pub mod s3_proxy;
pub mod secrets;
pub mod secure;
pub mod webhdfs;

pub use cluster::{
    cluster_dir, conf_dir, require_cluster, Cluster, ClusterEnv, ClusterError, CLUSTER_DIR_ENV,
    START_HINT,
};
