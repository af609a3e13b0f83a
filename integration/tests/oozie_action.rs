//! The Oozie shell action of `scripts/oozie/` against the mini cluster (needs
//! `scripts/cluster.sh start` and `target/debug/filex`): `filex-action.sh` is run the way
//! Oozie's ShellMain runs it, with `OOZIE_ACTION_CONF_XML` naming an action configuration
//! of the launcher's shape. The YARN application must carry Oozie's child tag (so Oozie can
//! kill it, and `filex yarn apps --tag` finds it), and stdout, which `<capture-output/>`
//! reads, must be Java properties under 2 KB with the application id and counters. The
//! example `workflow.xml` and `coordinator.xml` are validated against Oozie's own schemas.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use filex_integration::cli::{filex_bin, unique, user};
use filex_integration::cluster::{project_root, require_cluster};
use filex_integration::files::upload_tree;
use filex_integration::http;
use filex_integration::webhdfs::{json_field, WebHdfs};

const WINDOW_START: &str = "2026-09-01T08:00:00+08:00";
const WINDOW_END: &str = "2026-09-01T09:00:00+08:00";

/// A tag of the shape Oozie gives child applications: `oozie-` + 32 hex digits.
fn oozie_tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("oozie-{nanos:032x}")
}

/// A small corpus on HDFS and a job file reading it, under a job name of its own (filex
/// re-attaches to a running application of the same job and window; others share the cluster).
struct Corpus {
    dir: tempfile::TempDir,
    name: String,
}

impl Corpus {
    fn new(conf: &Path, webhdfs: &WebHdfs) -> Corpus {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(filex_bin())
            .args(["gen", "--out"])
            .arg(dir.path())
            .args(["--seed", "5", "--hours", "1", "--rate", "3"])
            .args(["--start", WINDOW_START, "--platforms", "upyun,nginx"])
            .env("HADOOP_CONF_DIR", conf)
            .output()
            .expect("run filex gen");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let name = unique("oozie-it");
        let root = format!("/filex-it/{name}");
        upload_tree(
            webhdfs,
            &dir.path().join("shards"),
            &format!("{root}/shards"),
        );
        let job = fs::read_to_string(dir.path().join("job.toml")).unwrap();
        let hdfs_job = job
            .replace(
                "shards = \"shards/",
                &format!("shards = \"hdfs://{root}/shards/"),
            )
            .replace(
                "root = \"output\"",
                &format!("root = \"hdfs://{root}/out\""),
            )
            .replace("name = \"demo-hourly\"", &format!("name = \"{name}\""));
        assert!(hdfs_job.contains(&name) && hdfs_job.contains("hdfs://"));
        fs::write(dir.path().join("job-hdfs.toml"), hdfs_job).unwrap();
        Corpus { dir, name }
    }

    fn job(&self) -> PathBuf {
        self.dir.path().join("job-hdfs.toml")
    }
}

/// An action configuration as Oozie's launcher writes it (a Hadoop configuration file) with
/// the child tag Oozie derives from the action id (`oozie-` + 32 hex digits).
fn action_conf(dir: &Path, tag: &str) -> PathBuf {
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<configuration>
<property><name>oozie.action.id</name><value>0000042-261125101010101-oozie-oozi-W@fuse</value><source>programmatically</source></property>
<property><name>oozie.job.id</name><value>0000042-261125101010101-oozie-oozi-W</value></property>
<property><name>oozie.action.type</name><value>shell</value></property>
<property><name>mapreduce.job.tags</name><value>{tag}</value></property>
<property><name>oozie.child.mapreduce.job.tags</name><value>{tag}</value></property>
<property><name>oozie.action.rootlogger.log.level</name><value>INFO</value></property>
<property><name>mapred.job.queue.name</name><value>default</value></property>
</configuration>
"#
    );
    let path = dir.join("action.xml");
    fs::write(&path, xml).unwrap();
    path
}

/// Runs `scripts/oozie/filex-action.sh` as Oozie's ShellMain would.
fn action(conf_dir: &Path, action_xml: &Path, job: &Path, extra: &[&str]) -> Output {
    Command::new("bash")
        .arg(project_root().join("scripts/oozie/filex-action.sh"))
        .arg(job)
        .args([WINDOW_START, WINDOW_END])
        .args(extra)
        .env("FILEX_BIN", filex_bin())
        .env("HADOOP_CONF_DIR", conf_dir)
        .env("YARN_CONF_DIR", conf_dir)
        .env("OOZIE_ACTION_CONF_XML", action_xml)
        .env("FILEX_LOG", "warn")
        .env_remove("OOZIE_ACTION_OUTPUT_PROPERTIES")
        .output()
        .expect("run filex-action.sh")
}

/// What `<capture-output/>` makes of stdout: Java properties (no escapes needed here).
fn properties(stdout: &str) -> BTreeMap<String, String> {
    assert!(stdout.len() < 2048, "capture-output allows 2 KB: {stdout}");
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not a property line: {l:?} in {stdout}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn app_json(rm_web: &str, id: &str) -> String {
    http::request("GET", &format!("{rm_web}/ws/v1/cluster/apps/{id}"), None)
        .unwrap()
        .text()
}

#[test]
fn the_shell_action_tags_the_application_and_captures_its_outcome() {
    let cluster = require_cluster();
    let webhdfs = WebHdfs::new(&cluster.env.webhdfs, &user()).unwrap();
    let corpus = Corpus::new(&cluster.conf_dir, &webhdfs);
    let tag = oozie_tag();
    let action_xml = action_conf(corpus.dir.path(), &tag);

    // The output laid out as the coordinator's dataset expects it: one directory per UTC hour.
    let out = action(
        &cluster.conf_dir,
        &action_xml,
        &corpus.job(),
        &[
            "--set",
            "output.path=%Y/%m/%d/%H/{domain}.log.gz",
            "--set",
            "output.timezone=UTC",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("Submitted application "),
        "progress goes to the launcher log (stderr): {stderr}"
    );
    let props = properties(&stdout);
    let id = props["application_id"].clone();
    assert!(id.starts_with("application_"), "{props:?}");
    assert_eq!(props["exit_code"], "0");
    assert_eq!(props["state"], "FINISHED");
    assert_eq!(props["final_status"], "SUCCEEDED");
    assert!(
        props["manifest"].starts_with("hdfs://")
            && props["manifest"].contains(&format!("/_manifests/{}/", corpus.name)),
        "{props:?}"
    );
    let n = |k: &str| -> u64 {
        props[k]
            .parse()
            .unwrap_or_else(|_| panic!("{k}: {props:?}"))
    };
    assert!(n("lines_out") > 0 && n("partitions") > 0, "{props:?}");
    assert_eq!(
        n("lines_in"),
        n("lines_out") + n("rejected") + n("out_of_window")
    );

    // The coordinator's dataset instance for this window is where filex put the done-flag.
    let (dir, flag) = dataset_instance(&format!("/filex-it/{}/out", corpus.name));
    let status = webhdfs
        .file_status(&format!("{dir}/{flag}"))
        .unwrap_or_else(|e| panic!("no {flag} in the dataset instance {dir}: {e}"));
    assert_eq!(json_field(&status, "length"), Some("0"), "{status}");
    let listing = webhdfs.list_status(&dir).unwrap();
    assert!(
        listing.contains(".log.gz"),
        "the hour's files are there: {listing}"
    );

    // The application carries Oozie's child tag next to filex's own tags.
    let app = app_json(&cluster.env.rm_webapp, &id);
    assert!(app.contains(&tag), "{app}");
    assert!(app.contains(&format!("filex-job:{}", corpus.name)), "{app}");
    // …and `filex yarn apps --tag` finds it (what an operator or Oozie's kill looks for).
    let listed = Command::new(filex_bin())
        .args(["yarn", "apps", "--all", "--tag", &tag])
        .env("HADOOP_CONF_DIR", &cluster.conf_dir)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains(&id), "{listed}");
    assert_eq!(
        listed
            .lines()
            .filter(|l| l.starts_with("application_"))
            .count(),
        1,
        "only this application carries the tag: {listed}"
    );
}

#[test]
fn a_failing_shell_action_exits_1_and_captures_the_error() {
    let cluster = require_cluster();
    let webhdfs = WebHdfs::new(&cluster.env.webhdfs, &user()).unwrap();
    let corpus = Corpus::new(&cluster.conf_dir, &webhdfs);
    let tag = oozie_tag();
    let action_xml = action_conf(corpus.dir.path(), &tag);
    let out = action(
        &cluster.conf_dir,
        &action_xml,
        &corpus.job(),
        &[
            "--set",
            "source.0.shards=hdfs://127.0.0.1:9/nowhere/%Y%m%d/%H%M/*.gz",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let props = properties(&stdout);
    assert_eq!(props["exit_code"], "1");
    assert_eq!(props["final_status"], "FAILED");
    assert!(props["application_id"].starts_with("application_"));
    assert!(!props.contains_key("manifest"), "{props:?}");
    assert!(props["error"].contains("failed"), "{props:?}");
}

/// The text between `<tag>` and `</tag>` in `xml` (first occurrence).
fn element<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag}> in the coordinator"))
        + open.len();
    let end = xml[start..].find(&format!("</{tag}>")).unwrap() + start;
    xml[start..end].trim()
}

/// The directory and done-flag of the coordinator's output dataset for this test's window
/// (`WINDOW_START`–`WINDOW_END`, one hour), with `${fusedRoot}` at `root`. Checks on the way
/// that the output event's `coord:current(n)` names this window's hour for the nominal time
/// of the action fusing it (`window end − windowEndOffset`, job.properties).
fn dataset_instance(root: &str) -> (String, String) {
    let examples = project_root().join("scripts/oozie");
    let xml = fs::read_to_string(examples.join("coordinator.xml")).unwrap();
    let props = fs::read_to_string(examples.join("job.properties")).unwrap();
    let offset_min: i64 = props
        .lines()
        .find_map(|l| l.strip_prefix("windowEndOffset="))
        .expect("windowEndOffset in job.properties")
        .trim()
        .parse()
        .unwrap();
    let instance = element(&xml, "instance");
    let n: i64 = instance
        .strip_prefix("${coord:current(")
        .and_then(|r| r.strip_suffix(")}"))
        .unwrap_or_else(|| panic!("instance {instance} is not coord:current(n)"))
        .parse()
        .unwrap();
    // Minutes from the window's start (on the hour): its end, the action's nominal time,
    // the dataset instance (hourly, at :00) it names.
    let end = 60;
    let nominal = end - offset_min;
    let instance_at = nominal.div_euclid(60) * 60 + 60 * n;
    assert_eq!(
        instance_at, 0,
        "coord:current({n}) with windowEndOffset={offset_min} is not the window's hour"
    );
    // 2026-09-01T08:00:00+08:00 is 00:00 UTC, the dataset's zone.
    assert_eq!(
        (WINDOW_START, WINDOW_END),
        ("2026-09-01T08:00:00+08:00", "2026-09-01T09:00:00+08:00")
    );
    let dir = element(&xml, "uri-template")
        .replace("${fusedRoot}", root)
        .replace("${YEAR}", "2026")
        .replace("${MONTH}", "09")
        .replace("${DAY}", "01")
        .replace("${HOUR}", "00");
    assert!(!dir.contains("${"), "unresolved variables in {dir}");
    (dir, element(&xml, "done-flag").to_string())
}

/// A small validator run with the JDK's source launcher (no build step, no dependency).
const VALIDATOR: &str = r#"
import java.io.File;
import java.net.URL;
import javax.xml.XMLConstants;
import javax.xml.transform.Source;
import javax.xml.transform.stream.StreamSource;
import javax.xml.validation.SchemaFactory;

public class Validate {
    // args: jar, xml, xsd names inside the jar…
    public static void main(String[] args) throws Exception {
        Source[] xsds = new Source[args.length - 2];
        for (int i = 2; i < args.length; i++) {
            URL u = new URL("jar:" + new File(args[0]).toURI() + "!/" + args[i]);
            xsds[i - 2] = new StreamSource(u.openStream(), u.toString());
        }
        SchemaFactory f = SchemaFactory.newInstance(XMLConstants.W3C_XML_SCHEMA_NS_URI);
        f.newSchema(xsds).newValidator().validate(new StreamSource(new File(args[1])));
        System.out.println("valid: " + args[1]);
    }
}
"#;

/// Oozie's schemas ship in `oozie-client`; fetched from Maven Central when missing.
fn oozie_client_jar() -> PathBuf {
    const VERSION: &str = "5.2.1";
    if let Some(p) = std::env::var_os("FILEX_OOZIE_CLIENT_JAR") {
        return PathBuf::from(p);
    }
    let home = PathBuf::from(std::env::var_os("HOME").expect("HOME"));
    let jar = home.join(format!(
        ".m2/repository/org/apache/oozie/oozie-client/{VERSION}/oozie-client-{VERSION}.jar"
    ));
    if !jar.exists() {
        let mvn = std::env::var("MVN").unwrap_or_else(|_| "mvn".into());
        let st = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{mvn} -q dependency:get -Dartifact=org.apache.oozie:oozie-client:{VERSION} -Dtransitive=false"
            ))
            .status()
            .expect("run mvn");
        assert!(st.success(), "could not fetch oozie-client {VERSION}");
    }
    jar
}

/// The `<name>`/`<value>` pairs of the `<property>` elements of a workflow's action
/// configuration, comments left out.
fn action_properties(xml: &str) -> BTreeMap<String, String> {
    let inner = |s: &str, tag: &str| -> Option<String> {
        let (_, rest) = s.split_once(&format!("<{tag}>"))?;
        let (value, _) = rest.split_once(&format!("</{tag}>"))?;
        Some(value.trim().to_string())
    };
    xml.split("<property>")
        .skip(1)
        .filter_map(|p| {
            let p = p.split("</property>").next()?;
            Some((inner(p, "name")?, inner(p, "value")?))
        })
        .collect()
}

#[test]
fn the_example_workflow_and_coordinator_follow_oozies_schemas() {
    let jar = oozie_client_jar();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("Validate.java");
    fs::write(&src, VALIDATOR).unwrap();
    let examples = project_root().join("scripts/oozie");
    for (file, xsds) in [
        (
            "workflow.xml",
            &["oozie-workflow-0.5.xsd", "shell-action-0.3.xsd"][..],
        ),
        ("coordinator.xml", &["oozie-coordinator-0.4.xsd"][..]),
    ] {
        let out = Command::new("java")
            .arg(&src)
            .arg(&jar)
            .arg(examples.join(file))
            .args(xsds)
            .output()
            .expect("run java");
        assert!(
            out.status.success(),
            "{file}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The launcher lands in ${launcherQueue}, the filex application in ${queueName}.
    let workflow = fs::read_to_string(examples.join("workflow.xml")).unwrap();
    let conf = action_properties(&workflow);
    for key in [
        "oozie.launcher.mapred.job.queue.name",
        "mapred.job.queue.name",
    ] {
        assert_eq!(
            conf.get(key).map(String::as_str),
            Some("${launcherQueue}"),
            "{key} in workflow.xml: {conf:?}"
        );
    }
    let args: Vec<&str> = workflow
        .split("<argument>")
        .skip(1)
        .filter_map(|a| a.split_once("</argument>").map(|(v, _)| v))
        .collect();
    assert!(
        args.windows(2).any(|w| w == ["--queue", "${queueName}"]),
        "filex submit --queue ${{queueName}}: {args:?}"
    );
    // job.properties names every parameter the two files use.
    let props = fs::read_to_string(examples.join("job.properties")).unwrap();
    let defined: Vec<&str> = props
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
        .collect();
    let from_coordinator = ["windowStart", "windowEnd"];
    // What Oozie resolves in a dataset's uri-template.
    let dataset_variables = ["YEAR", "MONTH", "DAY", "HOUR", "MINUTE"];
    for file in ["workflow.xml", "coordinator.xml"] {
        let text = fs::read_to_string(examples.join(file)).unwrap();
        // Parameters the file declares itself, with their defaults.
        let declared: Vec<&str> = text
            .split_once("<parameters>")
            .and_then(|(_, rest)| rest.split_once("</parameters>"))
            .map_or(Vec::new(), |(section, _)| {
                section
                    .split("<name>")
                    .skip(1)
                    .filter_map(|p| p.split_once("</name>").map(|(n, _)| n.trim()))
                    .collect()
            });
        for part in text.split("${").skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '_')
                .collect();
            let is_function =
                part[name.len()..].starts_with(':') || part[name.len()..].starts_with('(');
            if name.is_empty()
                || is_function
                || from_coordinator.contains(&name.as_str())
                || dataset_variables.contains(&name.as_str())
                || declared.contains(&name.as_str())
            {
                continue;
            }
            assert!(
                defined.contains(&name.as_str()),
                "{file} uses ${{{name}}}, which job.properties does not define"
            );
        }
    }
}
