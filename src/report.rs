//! What the binary prints: the progress display, the run summary, the plan and the format
//! list. Standard output carries results (the last line of `filex run` is
//! `manifest: <url>`); progress and logs go to standard error.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use filex::driver::RunReport;
use filex::formats::{builtin_formats, Format, FormatSpec, ParseContext, Renderer};
use filex::job::{time, Job};
use filex::plan::Plan;
use filex::task::Progress;

/// Interval of progress log lines when no terminal is attached.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// A running progress display; [`Shown::stop`] ends it.
pub struct Shown {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Shown {
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// Shows progress: a bar on a terminal, else a log line every ten seconds.
pub fn show_progress(progress: Arc<Progress>, bar: bool) -> Shown {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let handle = std::thread::spawn(move || {
        let started = Instant::now();
        let pb = bar.then(|| {
            let pb = indicatif::ProgressBar::new(0);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{prefix:>7} [{bar:30}] {pos}/{len} tasks  {msg}",
            ) {
                pb.set_style(style.progress_chars("=> "));
            }
            pb
        });
        let mut last_log = Instant::now();
        while !flag.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
            let phase = *progress.phase.lock();
            let done = Progress::get(&progress.tasks_done);
            let total = Progress::get(&progress.tasks_total);
            let bytes = Progress::get(&progress.input_bytes);
            let lines = Progress::get(&progress.lines);
            let secs = started.elapsed().as_secs_f64().max(0.001);
            let msg = format!(
                "{:.0} MB read, {} lines, {:.0} MB/s",
                mb(bytes),
                lines,
                mb(bytes) / secs
            );
            match &pb {
                Some(pb) => {
                    pb.set_prefix(phase);
                    pb.set_length(total);
                    pb.set_position(done);
                    pb.set_message(msg);
                }
                None if last_log.elapsed() >= LOG_EVERY => {
                    last_log = Instant::now();
                    tracing::info!("{phase}: {done}/{total} tasks, {msg}");
                }
                None => {}
            }
        }
        if let Some(pb) = pb {
            pb.finish_and_clear();
        }
    });
    Shown {
        stop,
        handle: Some(handle),
    }
}

/// The end-of-run summary; its last line is `manifest: <url>`.
pub fn print_summary(report: &RunReport, elapsed: Duration) {
    let m = &report.manifest;
    let c = &m.counters;
    let shards: u64 = m.sources.iter().map(|s| s.shards).sum();
    let shard_bytes: u64 = m.sources.iter().map(|s| s.shard_bytes).sum();
    let out_bytes: u64 = m.partitions.iter().map(|p| p.bytes).sum();
    let secs = elapsed.as_secs_f64().max(0.001);
    println!(
        "job {}  window {} .. {}",
        m.job, m.window.start, m.window.end
    );
    for s in &m.sources {
        println!(
            "  source {:<14} {:>5} shards {:>10.1} MB  in {:>10}  out {:>10}  rejected {:>6}  outside window {:>6}",
            s.name,
            s.shards,
            mb(s.shard_bytes),
            s.counters.lines_in,
            s.counters.lines_out,
            s.counters.rejected,
            s.counters.out_of_window
        );
    }
    println!(
        "  total  {} shards ({:.1} MB): lines in {}, out {}, rejected {}, outside window {}",
        shards,
        mb(shard_bytes),
        c.lines_in,
        c.lines_out,
        c.rejected,
        c.out_of_window
    );
    println!(
        "  output {} files, {:.1} MB under {}",
        m.partitions.len(),
        mb(out_bytes),
        m.output_root
    );
    if let Some(i) = m
        .incremental
        .as_ref()
        .filter(|i| i.previous_run_id.is_some())
    {
        println!(
            "  re-run recomputed {} files and kept {} as published; read {} of {} shards ({} new, {} changed, {} gone)",
            i.partitions_recomputed,
            i.partitions_kept,
            i.shards_read,
            m.shards.len(),
            i.shards_new,
            i.shards_changed,
            i.shards_vanished.len()
        );
    }
    if !m.skipped_shards.is_empty() {
        println!(
            "  skipped {} corrupt shards (listed in the manifest)",
            m.skipped_shards.len()
        );
    }
    if !m.duplicate_shards.is_empty() {
        println!(
            "  skipped {} duplicate shards (same bytes as another; listed in the manifest)",
            m.duplicate_shards.len()
        );
    }
    for w in &m.warnings {
        println!("  warning: {w}");
    }
    println!(
        "  time   {:.2} s (plan {} ms, map {} ms, reduce {} ms, commit {} ms), {:.0} lines/s",
        secs,
        m.timeline.plan_ms,
        m.timeline.map_ms,
        m.timeline.reduce_ms,
        m.timeline.commit_ms,
        c.lines_in as f64 / secs
    );
    println!("manifest: {}", report.manifest_url);
}

/// `filex plan` in text form.
pub fn print_plan(job: &Job, plan: &Plan) {
    let tz = job.output.tz_offset_secs;
    println!(
        "job {}  window {} .. {} (slack {} s)",
        job.name,
        time::format_rfc3339(job.window.start_ms, tz),
        time::format_rfc3339(job.window.end_ms, tz),
        job.window.slack_ms / 1000
    );
    for s in &plan.sources {
        println!(
            "source {}: {} shards, {:.1} MB in {} slots  ({})",
            s.name,
            s.shards,
            mb(s.bytes),
            s.slots.len(),
            s.template
        );
        for slot in &s.slots {
            let when = slot
                .start_ms
                .map(|ms| time::format_rfc3339(ms, tz))
                .unwrap_or_else(|| "(no slot in path)".into());
            println!(
                "  {when}  {:>4} shards {:>10} bytes",
                slot.shards, slot.bytes
            );
        }
    }
    println!(
        "map tasks: {} ({} shards, {:.1} MB)",
        plan.map_tasks.len(),
        plan.total_shards(),
        mb(plan.total_bytes())
    );
    for t in &plan.map_tasks {
        let hosts = if t.preferred_hosts.is_empty() {
            "-".to_string()
        } else {
            t.preferred_hosts.join(",")
        };
        println!(
            "  map {:>4}: {:>4} shards {:>10} bytes  hosts {}",
            t.id,
            t.shards.len(),
            t.bytes,
            hosts
        );
    }
    println!(
        "output: {}/{}  ({}, one file per {})",
        job.output.spec.root,
        job.output.path,
        format!("{:?}", job.output.format).to_lowercase(),
        if job.output.template.bucket_ms == time::HOUR_MS {
            "domain and hour"
        } else {
            "domain and day"
        }
    );
    if plan.same_size_shards > 0 {
        println!(
            "{} shards share their size and domain with another: the map tasks hash them and parse each set of equal bytes once",
            plan.same_size_shards
        );
    }
    for w in &plan.warnings {
        println!("warning: {w}");
    }
}

/// `filex formats`: each built-in format, a sample and what it becomes.
pub fn print_formats() {
    let renderer = Renderer {
        format: filex::formats::OutputFormat::Json,
        tz_offset_secs: 8 * 3600,
    };
    for info in builtin_formats() {
        println!(
            "{}\n  {}\n  sample: {}",
            info.name, info.description, info.sample
        );
        let parsed = Format::from_spec(&FormatSpec::Named(info.name.to_string()))
            .ok()
            .and_then(|f| {
                let ctx = ParseContext {
                    domain: Some("img.example.com"),
                    tz_offset_secs: f.default_tz_offset_secs().unwrap_or(0),
                };
                let mut out = Vec::new();
                let rec = f.parse(info.sample.as_bytes(), &ctx).ok()??;
                renderer.render(&rec, info.name, info.sample.as_bytes(), &mut out);
                Some(String::from_utf8_lossy(&out).trim_end().to_string())
            });
        if let Some(json) = parsed {
            println!("  becomes: {json}");
        }
        println!();
    }
}
