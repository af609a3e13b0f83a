//! The application master's status page, registered as the application's tracking URL:
//! JSON at `/status` (what `filex submit` polls for progress), a readable page at `/`.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;

use crate::task::Progress;

/// What the AM knows about its run, shared with the status page.
pub struct StatusBoard {
    pub application_id: String,
    pub job: String,
    pub progress: Arc<Progress>,
    /// Worker containers running now.
    pub workers: AtomicU64,
    /// Data-local map tasks / map tasks with a preference.
    pub locality: Mutex<(u64, u64)>,
    pub manifest: Mutex<Option<String>>,
    pub diagnostics: Mutex<Vec<String>>,
}

/// The `/status` document.
#[derive(Debug, Clone, Serialize)]
pub struct StatusDoc {
    pub application_id: String,
    pub job: String,
    pub phase: String,
    pub tasks_done: u64,
    pub tasks_total: u64,
    pub input_bytes: u64,
    pub lines: u64,
    pub workers: u64,
    pub data_local_maps: u64,
    pub maps_with_locality: u64,
    pub timeline: Vec<(String, i64)>,
    pub manifest: Option<String>,
    pub diagnostics: Vec<String>,
}

impl StatusBoard {
    pub fn new(application_id: String, job: String, progress: Arc<Progress>) -> StatusBoard {
        StatusBoard {
            application_id,
            job,
            progress,
            workers: AtomicU64::new(0),
            locality: Mutex::new((0, 0)),
            manifest: Mutex::new(None),
            diagnostics: Mutex::new(Vec::new()),
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

    pub fn doc(&self) -> StatusDoc {
        let (local, with) = *self.locality.lock();
        StatusDoc {
            application_id: self.application_id.clone(),
            job: self.job.clone(),
            phase: self.progress.phase.lock().to_string(),
            tasks_done: Progress::get(&self.progress.tasks_done),
            tasks_total: Progress::get(&self.progress.tasks_total),
            input_bytes: Progress::get(&self.progress.input_bytes),
            lines: Progress::get(&self.progress.lines),
            workers: self.workers.load(Ordering::Relaxed),
            data_local_maps: local,
            maps_with_locality: with,
            timeline: self.progress.events.lock().clone(),
            manifest: self.manifest.lock().clone(),
            diagnostics: self.diagnostics.lock().clone(),
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
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let doc = board.doc();
    let (ctype, body) = if path.starts_with("/status") {
        (
            "application/json",
            serde_json::to_string_pretty(&doc).unwrap_or_default(),
        )
    } else {
        ("text/html; charset=utf-8", page(&doc))
    };
    let mut out = stream;
    write!(
        out,
        "HTTP/1.0 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn page(d: &StatusDoc) -> String {
    let mut rows = String::new();
    for (event, at) in &d.timeline {
        rows.push_str(&format!("<tr><td>{}</td><td>{at}</td></tr>", escape(event)));
    }
    format!(
        "<!doctype html><html><head><title>filex {app}</title><meta http-equiv=\"refresh\" content=\"5\"></head><body>\
<h1>filex job {job}</h1><p>{app}: <b>{phase}</b>, {done}/{total} tasks, {workers} workers, {mb:.1} MB read, {lines} lines</p>\
<p>data-local map tasks: {local}/{with}</p><p>manifest: {manifest}</p>\
<h2>timeline</h2><table>{rows}</table><h2>diagnostics</h2><pre>{diag}</pre></body></html>",
        app = escape(&d.application_id),
        job = escape(&d.job),
        phase = escape(&d.phase),
        done = d.tasks_done,
        total = d.tasks_total,
        workers = d.workers,
        mb = d.input_bytes as f64 / 1e6,
        lines = d.lines,
        local = d.data_local_maps,
        with = d.maps_with_locality,
        manifest = escape(d.manifest.as_deref().unwrap_or("-")),
        diag = escape(&d.diagnostics.join("\n")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn serves_json_and_html() {
        let board = Arc::new(StatusBoard::new(
            "application_1_0001".into(),
            "j<b>".into(),
            Arc::new(Progress::default()),
        ));
        board.progress.start_phase("map", 7);
        board.mark("registered", Some(5));
        let addr = serve(board, SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
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
        let html = get("/");
        assert!(html.contains("j&lt;b&gt;") && html.contains("registered"));
    }
}
