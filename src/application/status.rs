//! The application master's status page, registered as the application's tracking URL:
//! JSON at `/status` (what `filex submit` polls for progress), a readable page at `/`, the
//! published manifest at `/manifest`. The page is [`page`], a pure function of the
//! [`StatusDoc`]; the server answers one request per connection and holds no state of its own.
//!
//! `/status` only ever gains fields: `filex submit` and scripts parse it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;

use super::fleet_state::explain_exit;
use crate::calendar::{format_elapsed, format_readable_utc, now_ms};
use crate::cluster::remote::Coordinator;
use crate::cluster::uber::UberCluster;
use crate::task::Progress;

/// How long the server waits for a request line.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// Seconds between reloads of the readable page.
const REFRESH_SECS: u32 = 5;

/// A worker container the fleet started, and where its logs are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRow {
    /// The NodeManager it runs on (`host:port`).
    pub node: String,
    /// Its container logs on the NodeManager's web UI.
    pub logs_url: String,
    /// Exit status and the ResourceManager's diagnostics once it ended.
    pub ended: Option<(i32, String)>,
}

/// What the AM knows about its run, shared with the status page.
pub struct StatusBoard {
    pub application_id: String,
    pub job: String,
    /// The application's user, in the container log links.
    pub user: String,
    pub progress: Arc<Progress>,
    /// Worker containers running now.
    pub workers: AtomicU64,
    /// This application master's attempt (1 for the first).
    pub am_attempt: AtomicU64,
    /// Finished tasks earlier AM attempts journaled, found when this one started.
    pub journaled: AtomicU64,
    /// Data-local map tasks / map tasks with a preference.
    pub locality: Mutex<(u64, u64)>,
    pub manifest: Mutex<Option<String>>,
    /// The published manifest, served at `/manifest`.
    pub manifest_json: Mutex<Option<Vec<u8>>>,
    pub diagnostics: Mutex<Vec<String>>,
    /// Worker containers started, by container id (the worker id the coordinator knows).
    pub containers: Mutex<BTreeMap<String, ContainerRow>>,
    /// Set once the coordinator runs: tasks per worker and failed attempts come from it.
    coordinator: OnceLock<Arc<Coordinator>>,
    /// Set when the tasks run in the AM (uber mode): its failed attempts come from it.
    uber: OnceLock<Arc<UberCluster>>,
}

/// The `/status` document.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatusDoc {
    pub application_id: String,
    pub job: String,
    pub phase: String,
    pub tasks_done: u64,
    pub tasks_total: u64,
    pub input_bytes: u64,
    pub lines: u64,
    /// Worker containers running now.
    pub workers: u64,
    /// The application master's attempt (1 for the first).
    pub am_attempt: u64,
    /// Finished tasks earlier AM attempts journaled, found when this one started.
    pub journaled_tasks: u64,
    /// Of those, tasks kept instead of run again so far.
    pub tasks_recovered: u64,
    pub data_local_maps: u64,
    pub maps_with_locality: u64,
    /// The tasks run in the AM's container (uber mode).
    pub uber: bool,
    /// Where the tasks ran, in words (uber mode, worker containers, or both).
    pub mode: String,
    /// `(event, ms since the epoch)`, in order.
    pub timeline: Vec<(String, i64)>,
    pub manifest: Option<String>,
    pub diagnostics: Vec<String>,
    /// The first milestone (submission), readable UTC.
    pub started: Option<String>,
    /// Since the first milestone, readable.
    pub elapsed: String,
    pub elapsed_ms: i64,
    /// The timeline for people.
    pub events: Vec<EventDoc>,
    /// Every worker container started, with what it did.
    pub containers: Vec<WorkerDoc>,
    /// The run's first failed task attempts.
    pub failed_attempts: Vec<FailedAttemptDoc>,
}

/// One milestone, readable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventDoc {
    pub event: String,
    /// Readable UTC.
    pub at: String,
    /// Since the first milestone, readable (`+12.3 s`).
    pub after: String,
}

/// One worker container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerDoc {
    pub container_id: String,
    /// NodeManager `host:port` (empty if the fleet did not report it).
    pub node: String,
    /// `running`, or `exited <status>: <meaning>`.
    pub state: String,
    /// The ResourceManager's diagnostics for an ended container.
    pub diagnostics: String,
    pub tasks_done: u64,
    /// Task attempts that failed on it.
    pub task_failures: u64,
    /// Its logs on the NodeManager.
    pub logs_url: String,
}

/// One failed task attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedAttemptDoc {
    pub task: String,
    /// 0 for the first attempt.
    pub attempt: u32,
    /// The worker (container id) it failed on.
    pub worker: String,
    pub reason: String,
}

/// The NodeManager page of a container's logs: `http://<nm http address>/node/containerlogs/
/// <container id>/<user>`, as the ResourceManager links them.
pub fn container_logs_url(node_http_address: &str, container_id: &str, user: &str) -> String {
    format!("http://{node_http_address}/node/containerlogs/{container_id}/{user}")
}

impl StatusBoard {
    pub fn new(
        application_id: String,
        job: String,
        user: String,
        progress: Arc<Progress>,
    ) -> StatusBoard {
        StatusBoard {
            application_id,
            job,
            user,
            progress,
            workers: AtomicU64::new(0),
            am_attempt: AtomicU64::new(1),
            journaled: AtomicU64::new(0),
            locality: Mutex::new((0, 0)),
            manifest: Mutex::new(None),
            manifest_json: Mutex::new(None),
            diagnostics: Mutex::new(Vec::new()),
            containers: Mutex::new(BTreeMap::new()),
            coordinator: OnceLock::new(),
            uber: OnceLock::new(),
        }
    }

    /// Records that `event` happened now (or at `at_ms`), in the run's timeline.
    pub fn mark(&self, event: &str, at_ms: Option<i64>) {
        tracing::info!(event, "timeline");
        self.progress.event(event, at_ms);
    }

    /// Records `event` only the first time.
    pub fn mark_once(&self, event: &str) {
        self.progress.event_once(event);
    }

    /// Reads per-worker tasks and failed attempts from `coordinator` from now on.
    pub fn attach(&self, coordinator: Arc<Coordinator>) {
        let _ = self.coordinator.set(coordinator);
    }

    /// The run's tasks run in the AM, on `uber` (its failed attempts shown from now on).
    pub fn ran_uber(&self, uber: Arc<UberCluster>) {
        let _ = self.uber.set(uber);
    }

    /// Where the tasks ran (or run), in words: the status page's and the diagnostics' mode.
    pub fn mode(&self) -> String {
        let containers = self.containers.lock().len();
        match self.uber.get() {
            Some(u) if u.on_workers() => format!(
                "uber mode, then workers: tasks ran in the application master until an attempt failed there, then on {containers} worker containers"
            ),
            Some(_) => "uber mode: tasks ran in the application master, no worker container".into(),
            None => format!("workers: tasks ran on {containers} worker containers"),
        }
    }

    /// A worker container started on `node`, its NodeManager's web UI at `node_http_address`.
    pub fn container_started(&self, container_id: &str, node: &str, node_http_address: &str) {
        self.containers.lock().insert(
            container_id.to_string(),
            ContainerRow {
                node: node.to_string(),
                logs_url: container_logs_url(node_http_address, container_id, &self.user),
                ended: None,
            },
        );
    }

    /// A container ended (ignored unless it is one of the workers started).
    pub fn container_ended(&self, container_id: &str, exit_status: i32, diagnostics: &str) {
        if let Some(row) = self.containers.lock().get_mut(container_id) {
            row.ended = Some((exit_status, diagnostics.trim().to_string()));
        }
    }

    /// The document as of now.
    pub fn doc(&self) -> StatusDoc {
        self.doc_at(now_ms())
    }

    /// The document as of `now_ms` (ms since the epoch).
    pub fn doc_at(&self, now_ms: i64) -> StatusDoc {
        let (local, with) = *self.locality.lock();
        let timeline = self.progress.events.lock().clone();
        let (tallies, mut failed) = self
            .coordinator
            .get()
            .map(|c| c.activity())
            .unwrap_or_default();
        if let Some(u) = self.uber.get() {
            // The AM's attempts came first.
            failed.splice(0..0, u.failed_attempts());
        }
        let mut containers: Vec<WorkerDoc> = self
            .containers
            .lock()
            .iter()
            .map(|(id, row)| {
                let (state, diagnostics) = match &row.ended {
                    None => ("running".to_string(), String::new()),
                    Some((status, d)) => (
                        format!("exited {status}: {}", explain_exit(*status)),
                        d.clone(),
                    ),
                };
                let tally = tallies.get(id).copied().unwrap_or_default();
                WorkerDoc {
                    container_id: id.clone(),
                    node: row.node.clone(),
                    state,
                    diagnostics,
                    tasks_done: tally.tasks_done,
                    task_failures: tally.task_failures,
                    logs_url: row.logs_url.clone(),
                }
            })
            .collect();
        // Workers the coordinator saw but the fleet did not start (none in a healthy AM).
        let known: Vec<String> = containers.iter().map(|c| c.container_id.clone()).collect();
        for (id, tally) in tallies.iter().filter(|(id, _)| !known.contains(id)) {
            containers.push(WorkerDoc {
                container_id: id.clone(),
                node: String::new(),
                state: "unknown".into(),
                diagnostics: String::new(),
                tasks_done: tally.tasks_done,
                task_failures: tally.task_failures,
                logs_url: String::new(),
            });
        }
        let t0 = timeline.first().map(|(_, t)| *t);
        let elapsed_ms = t0.map_or(0, |t0| now_ms - t0);
        StatusDoc {
            application_id: self.application_id.clone(),
            job: self.job.clone(),
            phase: self.progress.phase.lock().to_string(),
            tasks_done: Progress::get(&self.progress.tasks_done),
            tasks_total: Progress::get(&self.progress.tasks_total),
            input_bytes: Progress::get(&self.progress.input_bytes),
            lines: Progress::get(&self.progress.lines),
            workers: self.workers.load(Ordering::Relaxed),
            am_attempt: self.am_attempt.load(Ordering::Relaxed),
            journaled_tasks: self.journaled.load(Ordering::Relaxed),
            tasks_recovered: Progress::get(&self.progress.tasks_recovered),
            data_local_maps: local,
            maps_with_locality: with,
            uber: self.uber.get().is_some(),
            mode: self.mode(),
            events: timeline
                .iter()
                .map(|(event, at)| EventDoc {
                    event: event.clone(),
                    at: format_readable_utc(*at),
                    after: format!("+{}", format_elapsed(at - t0.unwrap_or(*at))),
                })
                .collect(),
            timeline,
            manifest: self.manifest.lock().clone(),
            diagnostics: self.diagnostics.lock().clone(),
            started: t0.map(format_readable_utc),
            elapsed: format_elapsed(elapsed_ms),
            elapsed_ms,
            containers,
            failed_attempts: failed
                .into_iter()
                .map(|f| FailedAttemptDoc {
                    task: f.task,
                    attempt: f.attempt,
                    worker: f.worker,
                    reason: f.reason,
                })
                .collect(),
        }
    }
}

/// Serves the board on `bind`; returns the bound address.
pub fn serve(board: Arc<StatusBoard>, bind: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(bind)?;
    let addr = listener.local_addr()?;
    std::thread::Builder::new()
        .name("am-status".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = respond(&board, stream);
            }
        })?;
    Ok(addr)
}

fn respond(board: &StatusBoard, stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let (status, ctype, body) = if path.starts_with("/status") {
        (
            "200 OK",
            "application/json",
            serde_json::to_vec_pretty(&board.doc()).unwrap_or_default(),
        )
    } else if path.starts_with("/manifest") {
        match board.manifest_json.lock().clone() {
            Some(bytes) => ("200 OK", "application/json", bytes),
            None => (
                "404 Not Found",
                "text/plain; charset=utf-8",
                b"the manifest is not published yet\n".to_vec(),
            ),
        }
    } else {
        (
            "200 OK",
            "text/html; charset=utf-8",
            page(&board.doc()).into_bytes(),
        )
    };
    let mut out = stream;
    write!(
        out,
        "HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\r\n",
        body.len()
    )?;
    out.write_all(&body)?;
    out.flush()
}

/// Text made safe for HTML content and quoted attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A link to `url` reading `text`, or the text alone when there is no URL.
fn link(url: &str, text: &str) -> String {
    if url.is_empty() {
        escape(text)
    } else {
        format!("<a href=\"{}\">{}</a>", escape(url), escape(text))
    }
}

/// The readable page: the run in one line, the workers with links to their logs, failed
/// attempts with their reasons, the timeline in UTC, the manifest once published.
pub fn page(d: &StatusDoc) -> String {
    let mut workers = String::new();
    for w in &d.containers {
        workers.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&w.container_id),
            escape(&w.node),
            escape(&if w.diagnostics.is_empty() {
                w.state.clone()
            } else {
                format!("{} ({})", w.state, w.diagnostics)
            }),
            w.tasks_done,
            w.task_failures,
            link(&w.logs_url, "logs"),
        ));
    }
    let workers = if workers.is_empty() {
        "<p>no worker container started yet</p>".to_string()
    } else {
        format!(
            "<table><tr><th>container</th><th>node</th><th>state</th><th>tasks done</th>\
<th>failures</th><th>logs</th></tr>{workers}</table>"
        )
    };
    let mut failed = String::new();
    for f in &d.failed_attempts {
        failed.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&f.task),
            f.attempt,
            escape(&f.worker),
            escape(&f.reason),
        ));
    }
    let failed = if failed.is_empty() {
        "<p>none</p>".to_string()
    } else {
        format!(
            "<table><tr><th>task</th><th>attempt</th><th>worker</th><th>reason</th></tr>{failed}</table>"
        )
    };
    let mut timeline = String::new();
    for e in &d.events {
        timeline.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&e.event),
            escape(&e.at),
            escape(&e.after)
        ));
    }
    let manifest = match &d.manifest {
        Some(url) => format!("<a href=\"manifest\">{}</a>", escape(url)),
        None => "not published yet".to_string(),
    };
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>filex {app}</title>\
<meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\"></head><body>\
<h1>filex job {job}</h1><p>{app}: <b>{phase}</b>, {done}/{total} tasks, {workers_now} workers, \
{mb:.1} MB read, {lines} lines</p>\
<p>started {started}, running for {elapsed}</p>\
<p>mode: {mode}</p><p>data-local map tasks: {local}/{with}</p><p>manifest: {manifest}</p>\
<h2>workers</h2>{workers}<h2>failed attempts</h2>{failed}\
<h2>timeline</h2><table>{timeline}</table><h2>diagnostics</h2><pre>{diag}</pre></body></html>",
        app = escape(&d.application_id),
        job = escape(&d.job),
        phase = escape(&d.phase),
        done = d.tasks_done,
        total = d.tasks_total,
        workers_now = d.workers,
        mb = d.input_bytes as f64 / 1e6,
        lines = d.lines,
        started = escape(d.started.as_deref().unwrap_or("-")),
        elapsed = escape(&d.elapsed),
        mode = escape(&d.mode),
        local = d.data_local_maps,
        with = d.maps_with_locality,
        diag = escape(&d.diagnostics.join("\n")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    const T0: i64 = 1_793_836_800_000; // 2026-11-05T00:00:00Z

    fn board() -> StatusBoard {
        StatusBoard::new(
            "application_1_0001".into(),
            "j<b>".into(),
            "alice".into(),
            Arc::new(Progress::default()),
        )
    }

    #[test]
    fn the_document_reads_as_people_do() {
        let b = board();
        b.mark("submitted", Some(T0));
        b.mark("am registered", Some(T0 + 12_345));
        b.container_started("container_1_0001_01_000002", "nm1:4545", "nm1:8042");
        b.container_started("container_1_0001_01_000003", "nm2:4545", "nm2:8042");
        b.container_ended("container_1_0001_01_000003", 137, " killed \n");
        b.container_ended("container_9", 0, "not one of ours");
        let d = b.doc_at(T0 + 245_000);
        assert_eq!(d.started.as_deref(), Some("2026-11-05 00:00:00 UTC"));
        assert_eq!((d.elapsed.as_str(), d.elapsed_ms), ("4 min 05 s", 245_000));
        assert_eq!(
            d.events[1],
            EventDoc {
                event: "am registered".into(),
                at: "2026-11-05 00:00:12 UTC".into(),
                after: "+12.3 s".into(),
            }
        );
        assert_eq!(d.timeline[1], ("am registered".to_string(), T0 + 12_345));
        assert_eq!(d.containers.len(), 2);
        let (running, ended) = (&d.containers[0], &d.containers[1]);
        assert_eq!(running.state, "running");
        assert_eq!(running.node, "nm1:4545");
        assert_eq!(
            running.logs_url,
            "http://nm1:8042/node/containerlogs/container_1_0001_01_000002/alice"
        );
        assert_eq!(ended.state, format!("exited 137: {}", explain_exit(137)));
        assert_eq!(ended.diagnostics, "killed");
    }

    #[test]
    fn the_page_escapes_everything_it_shows() {
        let d = StatusDoc {
            application_id: "application_1_0001".into(),
            job: "<script>alert(1)</script>".into(),
            phase: "map".into(),
            manifest: Some("hdfs://nn/out/_manifests/j/\"w\".json".into()),
            containers: vec![WorkerDoc {
                container_id: "container_1".into(),
                node: "nm1:4545".into(),
                state: "running".into(),
                diagnostics: String::new(),
                tasks_done: 3,
                task_failures: 1,
                logs_url: "http://nm1:8042/node/containerlogs/container_1/a\"b".into(),
            }],
            failed_attempts: vec![FailedAttemptDoc {
                task: "map task 0".into(),
                attempt: 0,
                worker: "container_1".into(),
                reason: "shard <x> & 'y'".into(),
            }],
            events: vec![EventDoc {
                event: "submitted".into(),
                at: "2026-11-05 00:00:00 UTC".into(),
                after: "+0 ms".into(),
            }],
            diagnostics: vec!["</pre>".into()],
            ..StatusDoc::default()
        };
        let html = page(&d);
        for raw in ["<script>", "a\"b", "<x>", "</pre></pre>"] {
            assert!(!html.contains(raw), "{raw} is not escaped in {html}");
        }
        for shown in [
            "&lt;script&gt;alert(1)&lt;/script&gt;",
            "<a href=\"http://nm1:8042/node/containerlogs/container_1/a&quot;b\">logs</a>",
            "<td>container_1</td><td>nm1:4545</td><td>running</td><td>3</td><td>1</td>",
            "shard &lt;x&gt; &amp; &#39;y&#39;",
            "<a href=\"manifest\">hdfs://nn/out/_manifests/j/&quot;w&quot;.json</a>",
            "<td>submitted</td><td>2026-11-05 00:00:00 UTC</td><td>+0 ms</td>",
        ] {
            assert!(html.contains(shown), "{shown} missing from {html}");
        }
        let empty = page(&StatusDoc::default());
        assert!(empty.contains("no worker container started yet"));
        assert!(empty.contains("manifest: not published yet"));
    }

    #[test]
    fn serves_json_html_and_the_manifest() {
        let board = Arc::new(board());
        board.progress.start_phase("map", 7);
        board.mark("registered", Some(5));
        let addr = serve(board.clone(), SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let get = |path: &str| {
            let mut s = TcpStream::connect(addr).unwrap();
            write!(s, "GET {path} HTTP/1.0\r\n\r\n").unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        };
        let json = get("/status");
        let body = json.split_once("\r\n\r\n").unwrap().1;
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["phase"], "map");
        assert_eq!(v["tasks_total"], 7);
        assert_eq!(v["timeline"][0][0], "registered");
        assert_eq!(v["events"][0]["at"], "1970-01-01 00:00:00 UTC");
        assert!(v["containers"].as_array().unwrap().is_empty());
        let html = get("/");
        assert!(html.contains("j&lt;b&gt;") && html.contains("registered"));
        assert!(get("/manifest").starts_with("HTTP/1.0 404"));
        *board.manifest_json.lock() = Some(b"{\"job\": \"j\"}\n".to_vec());
        assert!(get("/manifest").ends_with("\r\n\r\n{\"job\": \"j\"}\n"));
    }
}
