//! Federated clusters: `viewfs://` sources, scratch and output through a mount table over
//! the mini cluster's namespace (`-D fs.viewfs.mounttable.<t>.link.<path>=hdfs://…`), with
//! `filex run` and with `filex submit` on `fs.defaultFS = viewfs://<t>`. The shards are
//! spread over two link targets, one of them mounted inside the other's tree, so that a
//! path resolved through the wrong link loses shards; the output must equal the plain
//! `file://` run byte for byte and land where its link points.
//!
//! Needs the test cluster (`scripts/cluster.sh start`) and a built binary (`FILEX_BIN`).

#[path = "hdfs_support/mod.rs"]
mod support;

use std::path::Path;

use filex_integration::require_cluster;
use filex_integration::webhdfs::{json_field, WebHdfs};

use support::*;

/// The `shards = "…"` templates of a generated job file, in source order.
fn shard_templates(job_toml: &str) -> Vec<String> {
    job_toml
        .lines()
        .filter_map(|l| l.trim().strip_prefix("shards = \""))
        .map(|rest| rest.trim_end_matches('"').to_string())
        .collect()
}

/// The sorted names of the subdirectories of `dir`.
fn subdirs(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// A generated corpus, its `file://` reference output, and the same shards on HDFS behind a
/// mount table.
struct Federated {
    _local: LocalDir,
    job: String,
    templates: Vec<String>,
    /// The reference output (`file://`).
    want_dir: std::path::PathBuf,
    want_data: Vec<String>,
    /// The HDFS directory everything of this test lives below.
    base: String,
    /// The mount table's name and its `-D` definitions.
    table: String,
    defines: Vec<String>,
}

impl Federated {
    fn new(label: &str, namenode: &str, fs: &WebHdfs) -> Federated {
        let local = LocalDir::new(label);
        let corpus = local.path().join("corpus");
        let corpus_s = corpus.to_string_lossy().into_owned();
        filex_ok(&["gen", "--out", &corpus_s, "--seed", "5"], &[]);
        let job = corpus.join("job.toml").to_string_lossy().into_owned();
        let templates = shard_templates(&std::fs::read_to_string(&job).expect("job.toml"));
        assert!(templates.len() >= 3, "gen wrote {templates:?}");

        let want_dir = local.path().join("want");
        filex_ok(
            &[
                "run",
                &job,
                "--no-progress",
                "--set",
                &format!("output.root={}", want_dir.display()),
            ],
            &[],
        );
        let want_data: Vec<String> = local_files(&want_dir)
            .into_iter()
            .filter(|f| !f.starts_with("_manifests/"))
            .collect();
        assert!(want_data.len() >= 4, "reference run wrote {want_data:?}");

        // All shards under `main`, except the fullest day directory of a vendor laid out by
        // day, which lives in `other` and is mounted back into the view's tree.
        let base = unique_hdfs_dir(label);
        let shards = corpus.join("shards");
        let (vendor, day) = subdirs(&shards)
            .into_iter()
            .flat_map(|v| {
                let days = subdirs(&shards.join(&v));
                days.into_iter().map(move |d| (v.clone(), d))
            })
            .max_by_key(|(v, d)| local_files(&shards.join(v).join(d)).len())
            .expect("a vendor with day directories");
        upload_tree(fs, &shards, &format!("{base}/main"));
        assert!(fs
            .delete(&format!("{base}/main/{vendor}/{day}"), true)
            .expect("delete the moved day"));
        let moved = upload_tree(
            fs,
            &shards.join(&vendor).join(&day),
            &format!("{base}/other"),
        );
        assert!(moved > 0, "no shards in {vendor}/{day}");

        let table = format!("fx{}", std::process::id());
        let link = |view: &str, target: &str| {
            format!("fs.viewfs.mounttable.{table}.link.{view}={namenode}{target}")
        };
        let defines = vec![
            link("/logs", &format!("{base}/main")),
            link(&format!("/logs/{vendor}/{day}"), &format!("{base}/other")),
            link("/fused", &format!("{base}/out")),
            format!("fs.viewfs.mounttable.{table}.linkFallback={namenode}/"),
        ];
        Federated {
            _local: local,
            job,
            templates,
            want_dir,
            want_data,
            base,
            table,
            defines,
        }
    }

    /// `command job -D … --set source.i.shards=viewfs://…`, scratch and output in the view;
    /// `view` is `viewfs://<table>` or `viewfs://` (the default file system's table).
    fn args(&self, command: &str, view: &str, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec![command.into(), self.job.clone()];
        for d in &self.defines {
            args.push("-D".into());
            args.push(d.clone());
        }
        for (i, t) in self.templates.iter().enumerate() {
            let tail = t.strip_prefix("shards/").expect("templates under shards/");
            args.push("--set".into());
            args.push(format!("source.{i}.shards={view}/logs/{tail}"));
        }
        args.push("--set".into());
        args.push(format!("scratch={view}{}/scratch", self.base));
        args.push("--set".into());
        args.push(format!("output.root={view}/fused"));
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// The output landed in the `/fused` link's target, equal to the reference, with no
    /// staging or scratch left; the manifest speaks of the view.
    fn check_output(&self, fs: &WebHdfs, stdout: &str, view: &str) {
        let got = hdfs_files(fs, &format!("{}/out", self.base));
        let got_data: Vec<String> = got
            .iter()
            .filter(|f| !f.starts_with("_manifests/"))
            .cloned()
            .collect();
        assert_eq!(got_data, self.want_data, "output file sets differ");
        assert!(
            got.iter().all(|f| !f.starts_with("_temporary")),
            "staging left behind: {got:?}"
        );
        for rel in &self.want_data {
            let want = std::fs::read(self.want_dir.join(rel)).expect("read reference");
            let bytes = fs
                .open(&format!("{}/out/{rel}", self.base))
                .unwrap_or_else(|e| panic!("read back {rel}: {e}"));
            assert!(bytes == want, "{rel} differs from the file:// run");
        }
        let manifest = got
            .iter()
            .find(|f| f.starts_with("_manifests/"))
            .expect("a manifest");
        let text = String::from_utf8(
            fs.open(&format!("{}/out/{manifest}", self.base))
                .expect("read manifest"),
        )
        .expect("UTF-8 manifest");
        let root = json_field(&text, "output_root").expect("output_root");
        assert!(
            root.starts_with(view) && root.trim_end_matches('/').ends_with("/fused"),
            "output_root {root} names the view"
        );
        if !stdout.is_empty() {
            assert!(
                manifest_url(stdout).starts_with(view),
                "manifest URL in the view: {stdout}"
            );
        }
        let scratch = hdfs_files_if_any(fs, &format!("{}/scratch", self.base));
        assert!(scratch.is_empty(), "scratch left behind: {scratch:?}");
    }
}

#[test]
fn viewfs_run_reads_writes_and_publishes_through_the_mount_table() {
    let cluster = require_cluster();
    let fs = webhdfs(&cluster);
    let fed = Federated::new("viewfs-run", &cluster.env.namenode, &fs);
    let view = format!("viewfs://{}", fed.table);
    let args = fed.args("run", &view, &["--no-progress", "--threads", "2"]);
    let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
    let stdout = filex_ok(&args_ref, &[]);
    fed.check_output(&fs, &stdout, &view);

    // Without the nested link the moved day is missing: the view, not luck, found it.
    let mut partial = fed.args("run", &view, &["--no-progress"]);
    let nested = partial
        .iter()
        .position(|a| a.contains("/logs/") && a.contains(".link."))
        .expect("the nested link's definition");
    partial.remove(nested);
    partial.remove(nested - 1);
    let out_dir = format!("{}/out-partial", fed.base);
    let at = partial
        .iter()
        .position(|a| a.starts_with("output.root="))
        .expect("output.root");
    partial[at] = format!("output.root={}{out_dir}", cluster.env.namenode);
    let partial_ref: Vec<&str> = partial.iter().map(String::as_str).collect();
    filex_ok(&partial_ref, &[]);
    let got: Vec<String> = hdfs_files(&fs, &out_dir)
        .into_iter()
        .filter(|f| !f.starts_with("_manifests/"))
        .collect();
    let differ = fed.want_data.iter().any(|rel| {
        !got.contains(rel)
            || fs.open(&format!("{out_dir}/{rel}")).ok()
                != std::fs::read(fed.want_dir.join(rel)).ok()
    });
    assert!(
        differ,
        "without the nested link some shards must be missing"
    );
    let _ = fs.delete(&fed.base, true);
}

#[test]
fn viewfs_default_fs_submit_matches_the_local_run() {
    let cluster = require_cluster();
    let fs = webhdfs(&cluster);
    let fed = Federated::new("viewfs-submit", &cluster.env.namenode, &fs);
    // `viewfs:///…` paths and the staging directory go through the default file system's
    // table.
    let mut args = fed.args("submit", "viewfs://", &["--force-new"]);
    args.push("-D".into());
    args.push(format!("fs.defaultFS=viewfs://{}", fed.table));
    let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
    // As the cluster's superuser, as the other `filex submit` tests: the staging directory
    // and the executable cache go under /user/<user>, which only it may create.
    let stdout = filex_ok(&args_ref, &[("HADOOP_USER_NAME", "root")]);
    let executable = stdout
        .lines()
        .find(|l| l.starts_with("Executable "))
        .unwrap_or_else(|| panic!("no Executable line: {stdout}"));
    assert!(
        executable.starts_with(&format!("Executable {}/user/", cluster.env.namenode)),
        "the cache resolves through the fallback link to the NameNode: {executable}"
    );
    fed.check_output(&fs, "", "viewfs:///");
    let superuser = WebHdfs::new(&cluster.env.webhdfs, "root").expect("WebHDFS as root");
    let _ = superuser.delete(&fed.base, true);
}
