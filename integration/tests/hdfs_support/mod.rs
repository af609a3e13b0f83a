//! Shared helpers of the `hdfs_*` tests: the filex binary, running it against the test
//! cluster's configuration, unique HDFS and local directories, uploads, recursive WebHDFS
//! listings, and gzip files written without a compression library.
//!
//! The binary is `$FILEX_BIN` if set, else `<project>/target/debug/filex`; build it first
//! with `cargo build` (these tests do not build it, so they test what you built).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use filex_integration::cluster::project_root;
use filex_integration::webhdfs::{json_field, WebHdfs};
use filex_integration::{conf_dir, http, Cluster};

/// Environment variable naming the filex binary under test.
pub const FILEX_BIN_ENV: &str = "FILEX_BIN";
/// A filex run that takes longer than this is killed and the test fails.
pub const RUN_LIMIT: Duration = Duration::from_secs(600);

/// The filex binary under test.
pub fn filex_bin() -> PathBuf {
    let bin = std::env::var_os(FILEX_BIN_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target/debug/filex"));
    assert!(
        bin.is_file(),
        "filex binary {} not found: run `cargo build` first or set {FILEX_BIN_ENV}",
        bin.display()
    );
    bin
}

/// The HDFS user of these tests (WebHDFS `user.name`, and filex's `HADOOP_USER_NAME`).
pub fn user() -> String {
    ["HADOOP_USER_NAME", "USER"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "filex".to_string())
}

fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

/// A fresh HDFS directory path under the world-writable /tmp (not created).
pub fn unique_hdfs_dir(label: &str) -> String {
    format!(
        "/tmp/filex-hdfs-it/{label}-{}-{}",
        std::process::id(),
        nanos()
    )
}

/// A fresh local directory (created); removed by [`LocalDir`]'s drop.
pub struct LocalDir(pub PathBuf);

impl LocalDir {
    pub fn new(label: &str) -> LocalDir {
        let dir = std::env::temp_dir().join(format!(
            "filex-hdfs-it-{label}-{}-{}",
            std::process::id(),
            nanos()
        ));
        std::fs::create_dir_all(&dir).expect("create local temp dir");
        LocalDir(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for LocalDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// WebHDFS as the test user.
pub fn webhdfs(cluster: &Cluster) -> WebHdfs {
    WebHdfs::new(&cluster.env.webhdfs, &user()).expect("FILEX_WEBHDFS is a URL")
}

/// Runs filex with `args`, the cluster's conf directory, [`user`] as `HADOOP_USER_NAME` and
/// `env` (which may override it); kills it after
/// [`RUN_LIMIT`]. Returns its output and how long it took.
pub fn filex(args: &[&str], env: &[(&str, &str)]) -> (Output, Duration) {
    let mut cmd = Command::new(filex_bin());
    cmd.args(args)
        .env("HADOOP_CONF_DIR", conf_dir())
        .env_remove("HADOOP_HOME")
        // Act as the same HDFS user as the tests' WebHDFS calls, so each can remove what
        // the other wrote.
        .env("HADOOP_USER_NAME", user())
        .env("FILEX_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().expect("spawn filex");
    loop {
        match child.try_wait().expect("wait for filex") {
            Some(_) => break,
            None if started.elapsed() > RUN_LIMIT => {
                let _ = child.kill();
                break;
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    let out = child.wait_with_output().expect("collect filex output");
    (out, started.elapsed())
}

/// Like [`filex`], asserting success; returns stdout.
pub fn filex_ok(args: &[&str], env: &[(&str, &str)]) -> String {
    let (out, took) = filex(args, env);
    assert!(
        out.status.success(),
        "filex {args:?} failed ({:?}, {took:?}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The manifest URL from a run's stdout, whose last line is `manifest: <url>`.
pub fn manifest_url(stdout: &str) -> String {
    let last = stdout.lines().last().unwrap_or_default();
    last.strip_prefix("manifest: ")
        .unwrap_or_else(|| panic!("last stdout line is not `manifest: <url>`: {last:?}"))
        .trim()
        .to_string()
}

/// The path of an `hdfs://authority/path` URL.
pub fn hdfs_path(url: &str) -> String {
    let rest = url
        .strip_prefix("hdfs://")
        .unwrap_or_else(|| panic!("not an hdfs:// URL: {url}"));
    match rest.find('/') {
        Some(i) => rest[i..].to_string(),
        None => "/".to_string(),
    }
}

/// Every file below `dir`, as `/`-separated paths relative to it, sorted.
pub fn local_files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).expect("below base");
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Uploads every file below `local` to `hdfs_dir`, keeping relative paths.
pub fn upload_tree(fs: &WebHdfs, local: &Path, hdfs_dir: &str) -> usize {
    let files = local_files(local);
    for rel in &files {
        let data = std::fs::read(local.join(rel)).expect("read local file");
        fs.create(&format!("{hdfs_dir}/{rel}"), &data, false)
            .unwrap_or_else(|e| panic!("upload {rel}: {e}"));
    }
    files.len()
}

/// The flat JSON objects of the array under `key` (`"FileStatus":[{…},{…}]`), as text.
pub fn json_array_objects<'a>(json: &'a str, key: &str) -> Vec<&'a str> {
    let needle = format!("\"{key}\"");
    let Some(at) = json.find(&needle) else {
        return Vec::new();
    };
    let Some(open) = json[at..].find('[').map(|i| at + i) else {
        return Vec::new();
    };
    let bytes = json.as_bytes();
    let mut out = Vec::new();
    let (mut depth, mut start, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for (i, &b) in bytes.iter().enumerate().skip(open + 1) {
        if in_str {
            match b {
                b'\\' if !esc => esc = true,
                b'"' if !esc => in_str = false,
                _ => esc = false,
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' => {
                if depth == 0 {
                    start = i;
                }
                depth += 1;
            }
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    out.push(&json[start..=i]);
                }
            }
            b']' if depth == 0 => break,
            _ => {}
        }
    }
    out
}

/// As [`hdfs_files`], but a missing `dir` has no files (sorted runs held in memory never
/// create a run's scratch directory).
pub fn hdfs_files_if_any(fs: &WebHdfs, dir: &str) -> Vec<String> {
    if fs.file_status(dir).is_err() {
        return Vec::new();
    }
    hdfs_files(fs, dir)
}

/// Every file below `dir` on HDFS (relative, sorted), by recursive `LISTSTATUS`.
pub fn hdfs_files(fs: &WebHdfs, dir: &str) -> Vec<String> {
    fn walk(fs: &WebHdfs, base: &str, rel: &str, out: &mut Vec<String>) {
        let path = if rel.is_empty() {
            base.to_string()
        } else {
            format!("{base}/{rel}")
        };
        let listing = fs
            .list_status(&path)
            .unwrap_or_else(|e| panic!("LISTSTATUS {path}: {e}"));
        for obj in json_array_objects(&listing, "FileStatus") {
            let name = json_field(obj, "pathSuffix").expect("pathSuffix");
            let child = if rel.is_empty() {
                name.to_string()
            } else {
                format!("{rel}/{name}")
            };
            match json_field(obj, "type") {
                Some("DIRECTORY") => walk(fs, base, &child, out),
                _ => out.push(child),
            }
        }
    }
    let mut out = Vec::new();
    walk(fs, dir, "", &mut out);
    out.sort();
    out
}

/// `GET` a WebHDFS operation on the NameNode as the test user; returns (status, body).
pub fn webhdfs_get(cluster: &Cluster, path: &str, op: &str) -> (u16, String) {
    let url = format!(
        "{}/webhdfs/v1{}?op={op}&user.name={}",
        cluster.env.webhdfs.trim_end_matches('/'),
        http::percent_encode(path, true),
        http::percent_encode(&user(), false)
    );
    let r = http::request("GET", &url, None).unwrap_or_else(|e| panic!("GET {url}: {e}"));
    (r.status, r.text())
}

/// `PUT` a WebHDFS operation (`extra` starts with `&`) as `as_user`; returns the status.
pub fn webhdfs_put(cluster: &Cluster, path: &str, op: &str, extra: &str, as_user: &str) -> u16 {
    let url = format!(
        "{}/webhdfs/v1{}?op={op}&user.name={}{extra}",
        cluster.env.webhdfs.trim_end_matches('/'),
        http::percent_encode(path, true),
        http::percent_encode(as_user, false)
    );
    http::request("PUT", &url, None)
        .unwrap_or_else(|e| panic!("PUT {url}: {e}"))
        .status
}

/// CRC-32 (IEEE), as gzip's trailer wants it.
pub fn crc32(data: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (i, slot) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *slot = c;
    }
    let mut crc = !0u32;
    for &b in data {
        crc = table[((crc ^ b as u32) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

/// A valid one-member gzip file of `data` using stored (uncompressed) deflate blocks, so a
/// file of a chosen size needs no compression library.
pub fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 65_535 * 5 + 32);
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    let mut chunks = data.chunks(65_535).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        out.push(u8::from(last));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

#[test]
fn support_helpers_work_offline() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    let gz = gzip_stored(b"hello");
    assert_eq!(&gz[..3], &[0x1f, 0x8b, 8]);
    assert_eq!(gz.len(), 10 + 5 + 5 + 8);
    let json = r#"{"FileStatuses":{"FileStatus":[{"pathSuffix":"a","type":"FILE"},{"pathSuffix":"b}","type":"DIRECTORY"}]}}"#;
    let objs = json_array_objects(json, "FileStatus");
    assert_eq!(objs.len(), 2);
    assert_eq!(json_field(objs[1], "pathSuffix"), Some("b}"));
    assert_eq!(hdfs_path("hdfs://127.0.0.1:1/a/b"), "/a/b");
    assert_eq!(
        manifest_url("x\nmanifest: hdfs:///m.json\n"),
        "hdfs:///m.json"
    );
}
