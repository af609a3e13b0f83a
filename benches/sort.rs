//! Throughput of the sort module: `SortBuffer` push + spill, `merge_segments` at k = 8 and
//! k = 200, and `GzipMembersWriter` against a single-stream `flate2` encoder.
//!
//! Run with `cargo bench --bench sort` (release profile); `SORT_BENCH_RECORDS` changes the
//! record count (default 1.5 M lines of about 300 bytes), `SORT_BENCH_ONLY=spill,merge,gzip`
//! picks parts. Prints one line per measurement, the best of a few repetitions, with the
//! process CPU time of that repetition (the steadier figure on a shared machine).

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use filex::sort::{merge_segments, GzipMembersWriter, SegmentRef, SortBuffer, SortKey};
use filex::storage::memory::MemoryScratch;
use filex::storage::Scratch;

const DEFAULT_RECORDS: usize = 1_500_000;
const PARTITIONS: u32 = 8;
const SHARDS: u32 = 24;
const WINDOW_MS: u64 = 5 * 60 * 1000;
const REPEAT: usize = 3;

fn main() {
    let n = std::env::var("SORT_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_RECORDS);
    let data = Corpus::generate(n);
    println!(
        "corpus: {} records, {:.1} MB of lines, {:.0} bytes/line",
        n,
        mb(data.bytes()),
        data.bytes() as f64 / n as f64
    );
    let only = std::env::var("SORT_BENCH_ONLY").unwrap_or_default();
    let run = |part: &str| only.is_empty() || only.split(',').any(|p| p == part);
    if run("spill") {
        bench_spill(&data, usize::MAX / 2, "one spill");
        bench_spill(&data, 64 << 20, "64 MiB budget");
    }
    if run("merge") {
        for k in [8, 200] {
            bench_merge(&data, k, k);
        }
        bench_merge(&data, 200, 16);
    }
    if run("gzip") {
        bench_gzip(&data);
    }
}

/// Generated access-log lines, stored back to back.
struct Corpus {
    text: Vec<u8>,
    ends: Vec<usize>,
    keys: Vec<(u32, SortKey)>,
}

impl Corpus {
    fn generate(n: usize) -> Self {
        let mut rng = 0x1234_5678_9abc_def0u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        const PATHS: [&str; 6] = [
            "/static/app.js",
            "/img/banner-large.webp",
            "/video/seg-000123.ts",
            "/api/v2/items?page=3&sort=desc",
            "/index.html",
            "/fonts/inter-var.woff2",
        ];
        const AGENTS: [&str; 3] = [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
            "okhttp/4.12.0",
        ];
        let mut text = Vec::with_capacity(n * 310);
        let mut ends = Vec::with_capacity(n);
        let mut keys = Vec::with_capacity(n);
        let mut lines = vec![0u64; SHARDS as usize];
        let base = 1_760_000_000_000i64;
        for i in 0..n {
            let r = next();
            let shard = (i as u64 * u64::from(SHARDS) / n as u64) as u32;
            // Shards cover the window in order, with lines up to 2 s out of order.
            let t = base + (i as u64 * WINDOW_MS / n as u64) as i64 + (r % 2000) as i64;
            let partition = ((r >> 12) % u64::from(PARTITIONS)) as u32;
            let line = lines[shard as usize];
            lines[shard as usize] += 1;
            writeln!(
                text,
                "{}.{}.{}.{} - - [{}] \"GET https://d{}.example.com{} HTTP/1.1\" {} {} {:.3} \"https://ref.example.com/{:x}\" \"{}\" HIT {:016x} edge-{}.pop{}.cdn.example.net tls1.3 h2 up=10.0.{}.{}:8080",
                r >> 56,
                (r >> 48) & 255,
                (r >> 40) & 255,
                (r >> 32) & 255,
                t,
                partition,
                PATHS[(r >> 20) as usize % PATHS.len()],
                [200, 200, 206, 304, 404][(r >> 24) as usize % 5],
                (r >> 8) % 5_000_000,
                (r % 9973) as f64 / 1000.0,
                (r >> 30) % 4096,
                AGENTS[(r >> 28) as usize % AGENTS.len()],
                next(),
                (r >> 36) % 64,
                (r >> 42) % 32,
                (r >> 50) % 256,
                (r >> 3) % 256,
            )
            .unwrap();
            ends.push(text.len());
            keys.push((
                partition,
                SortKey {
                    time_ms: t,
                    shard,
                    line,
                },
            ));
        }
        Corpus { text, ends, keys }
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn bytes(&self) -> usize {
        self.text.len()
    }

    fn line(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1e6
}

/// Best (lowest wall time) of [`REPEAT`] runs of `f`, which returns its own wall time. Also
/// prints the process CPU time of that run, which on a busy machine is the steadier figure.
fn best<T>(mut f: impl FnMut() -> (Duration, T)) -> (Duration, T) {
    let mut best: Option<(Duration, T, Option<Duration>)> = None;
    for _ in 0..REPEAT {
        let cpu0 = cpu_time();
        let (d, r) = f();
        let cpu = cpu_time().zip(cpu0).map(|(b, a)| b.saturating_sub(a));
        if best.as_ref().is_none_or(|b| d < b.0) {
            best = Some((d, r, cpu));
        }
    }
    let Some((d, r, cpu)) = best else {
        unreachable!("REPEAT > 0")
    };
    if let Some(cpu) = cpu {
        print!("[cpu {:>6.0} ms] ", cpu.as_secs_f64() * 1e3);
    }
    (d, r)
}

/// User plus system CPU time of this process, from `/proc/self/stat` (Linux; 100 Hz ticks).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn report(what: &str, d: Duration, records: usize, bytes: usize) {
    let s = d.as_secs_f64();
    println!(
        "{what:<44} {:>8.1} ms {:>8.0} MB/s {:>7.2} M records/s",
        s * 1e3,
        mb(bytes) / s,
        records as f64 / s / 1e6
    );
}

fn bench_spill(data: &Corpus, budget: usize, label: &str) {
    let (total, (push_time, spill_time, runs, run_bytes)) = best(|| {
        let mut buf = SortBuffer::new(budget);
        let mut out = Vec::with_capacity(data.bytes() / 2);
        let mut push_time = Duration::ZERO;
        let mut spill_time = Duration::ZERO;
        let mut runs = 0;
        let mut run_bytes = 0u64;
        let start = Instant::now();
        let mut mark = start;
        for (i, (p, k)) in data.keys.iter().enumerate() {
            buf.push(*p, *k, data.line(i));
            if buf.is_full() {
                let t = Instant::now();
                push_time += t - mark;
                out.clear();
                run_bytes += buf.spill(&mut out).unwrap().file_bytes;
                runs += 1;
                mark = Instant::now();
                spill_time += mark - t;
            }
        }
        let t = Instant::now();
        push_time += t - mark;
        out.clear();
        run_bytes += buf.spill(&mut out).unwrap().file_bytes;
        runs += 1;
        spill_time += t.elapsed();
        black_box(&out);
        (start.elapsed(), (push_time, spill_time, runs, run_bytes))
    });
    let (n, bytes) = (data.len(), data.bytes());
    report(
        &format!("push+spill ({label}, {runs} runs)"),
        total,
        n,
        bytes,
    );
    report(&format!("  of which push ({label})"), push_time, n, bytes);
    report(
        &format!("  of which sort+lz4 spill ({label})"),
        spill_time,
        n,
        bytes,
    );
    println!(
        "{:<44} {:.2}x lz4 (run bytes {:.1} MB)",
        "",
        bytes as f64 / run_bytes as f64,
        mb(run_bytes as usize)
    );
}

/// Spreads the records over `k` runs at random (the worst case for the merge: every step
/// may switch input), spills them, and merges all of one partition's segments.
fn bench_merge(data: &Corpus, k: usize, fan_in: usize) {
    let scratch = MemoryScratch::default();
    let mut buffers: Vec<SortBuffer> = (0..k).map(|_| SortBuffer::new(usize::MAX / 2)).collect();
    for (i, (_, key)) in data.keys.iter().enumerate() {
        let run = (key.line.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize % k;
        buffers[run].push(0, *key, data.line(i));
    }
    let mut inputs = Vec::new();
    for (i, buf) in buffers.iter_mut().enumerate() {
        let name = format!("run-{i}");
        let mut file = scratch.create(&name).unwrap();
        let index = buf.spill(&mut file).unwrap();
        file.close().unwrap();
        for s in index.segments {
            inputs.push(SegmentRef {
                file: name.clone(),
                offset: s.offset,
                len: s.len,
            });
        }
    }
    drop(buffers);
    let (d, (records, bytes)) = best(|| {
        let mut bytes = 0usize;
        let mut last = None;
        let start = Instant::now();
        let records = merge_segments(&scratch, &inputs, fan_in, "tmp", &mut |key, line| {
            bytes += line.len();
            last = Some(*key);
            Ok(())
        })
        .unwrap();
        black_box(last);
        (start.elapsed(), (records as usize, bytes))
    });
    assert_eq!(records, data.len());
    report(&format!("merge k={k} fan-in={fan_in}"), d, records, bytes);
}

fn bench_gzip(data: &Corpus) {
    let input = &data.text;
    let member = 8 << 20;
    for threads in [1, 2] {
        let (d, out) = best(|| {
            let start = Instant::now();
            let mut w = GzipMembersWriter::new(Vec::new(), 6, member, threads);
            for piece in input.chunks(64 << 10) {
                w.write_all(piece).unwrap();
            }
            let out = w.finish().unwrap();
            (start.elapsed(), out.len())
        });
        report(
            &format!("gzip members L6 8 MiB threads={threads}"),
            d,
            data.len(),
            input.len(),
        );
        println!("{:<44} {:.2}x", "", input.len() as f64 / out as f64);
    }
    let (d, out) = best(|| {
        let start = Instant::now();
        let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        for piece in input.chunks(64 << 10) {
            w.write_all(piece).unwrap();
        }
        let out = w.finish().unwrap();
        (start.elapsed(), out.len())
    });
    report("flate2 GzEncoder L6 one stream", d, data.len(), input.len());
    println!("{:<44} {:.2}x", "", input.len() as f64 / out as f64);
}
