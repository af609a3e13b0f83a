//! What `filex gen` writes besides the shards: the job file that fuses them and `_gen.json`,
//! the ground truth (lines per platform, expected rejects, out-of-window lines, lines per
//! output partition) that tests and benchmarks check a run against.

use serde::Serialize;

use super::clock::strftime;
use super::shard::{Corpus, ShardStats};
use super::{GenArgs, OUTPUT_OFFSET_S};
use crate::calendar::format_rfc3339;

/// Output path template of the job file: one file per domain and hour.
pub const OUTPUT_PATH: &str = "{domain}/%Y%m%d/{domain}_%Y%m%d%H.log.gz";
/// Output root of the job file, relative to the job file's directory.
pub const OUTPUT_ROOT: &str = "output";
/// The job's name.
pub const JOB_NAME: &str = "demo-hourly";
/// How far outside the window shards are still read: one slot.
pub const SLACK: &str = "5m";

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `+08:00` for an offset in seconds.
fn offset_str(offset_s: i32) -> String {
    let sign = if offset_s < 0 { '-' } else { '+' };
    let m = offset_s.unsigned_abs() / 60;
    format!("{sign}{:02}:{:02}", m / 60, m % 60)
}

/// The job file for `corpus`: window, one `[[source]]` per platform in order, output.
pub fn job_toml(corpus: &Corpus, output_format: &str) -> String {
    let mut t = String::new();
    t.push_str(
        "# Written by `filex gen`: synthetic CDN shards under shards/, one source per platform.\n",
    );
    t.push_str(&format!("name = {}\n\n", toml_str(JOB_NAME)));
    t.push_str("[window]\n");
    t.push_str(&format!(
        "start = {}\n",
        toml_str(&format_rfc3339(corpus.window.0, OUTPUT_OFFSET_S))
    ));
    t.push_str(&format!(
        "end = {}\n",
        toml_str(&format_rfc3339(corpus.window.1, OUTPUT_OFFSET_S))
    ));
    t.push_str(&format!("slack = {}\n", toml_str(SLACK)));
    for p in &corpus.platforms {
        t.push_str("\n[[source]]\n");
        t.push_str(&format!("name = {}\n", toml_str(p.name())));
        t.push_str(&format!("format = {}\n", toml_str(p.name())));
        t.push_str(&format!("shards = {}\n", toml_str(p.template())));
        t.push_str(&format!(
            "timezone = {}\n",
            toml_str(&offset_str(p.offset_s()))
        ));
    }
    t.push_str("\n[output]\n");
    t.push_str(&format!("root = {}\n", toml_str(OUTPUT_ROOT)));
    t.push_str(&format!("path = {}\n", toml_str(OUTPUT_PATH)));
    t.push_str(&format!("format = {}\n", toml_str(output_format)));
    t.push_str(&format!(
        "timezone = {}\n",
        toml_str(&offset_str(OUTPUT_OFFSET_S))
    ));
    t
}

/// `_gen.json`.
#[derive(Debug, Clone, Serialize)]
pub struct GroundTruth {
    pub seed: u64,
    pub window: WindowTruth,
    pub options: OptionsTruth,
    /// One entry per platform, in job order.
    pub platforms: Vec<PlatformTruth>,
    /// The counters a correct run reports (names as in the manifest).
    pub totals: Totals,
    /// Lines per output file, for every (domain, hour) with at least one line.
    pub partitions: Vec<PartitionTruth>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WindowTruth {
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct OptionsTruth {
    pub rate: f64,
    pub disorder: f64,
    pub late: f64,
    pub traps: bool,
    pub domains: Vec<String>,
    pub output_format: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlatformTruth {
    pub name: String,
    pub timezone: String,
    pub shards: u64,
    pub gzip_members: u64,
    /// Log lines written, trap lines included (headers and blank lines excluded).
    pub lines: u64,
    /// Lines injected as traps that must be rejected.
    pub rejected: u64,
    /// Parseable lines whose event time falls outside the window.
    pub out_of_window: u64,
    pub bytes_raw: u64,
    pub bytes_gz: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub shards: u64,
    /// Every log line of every shard: what the run must count as `lines_in`.
    pub lines_in: u64,
    pub lines_out: u64,
    pub rejected: u64,
    pub out_of_window: u64,
    pub bytes_raw: u64,
    pub bytes_gz: u64,
    /// Same as `lines_in` (kept for readers that look for `lines`).
    pub lines: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PartitionTruth {
    pub domain: String,
    /// `%Y%m%d%H` in the output time zone.
    pub hour: String,
    /// The output file, relative to the output root.
    pub path: String,
    pub lines: u64,
}

impl GroundTruth {
    /// Sums the per-shard statistics.
    pub fn collect(corpus: &Corpus, args: &GenArgs, stats: &[ShardStats]) -> GroundTruth {
        let mut platforms: Vec<PlatformTruth> = corpus
            .platforms
            .iter()
            .map(|p| PlatformTruth {
                name: p.name().to_owned(),
                timezone: offset_str(p.offset_s()),
                shards: 0,
                gzip_members: 0,
                lines: 0,
                rejected: 0,
                out_of_window: 0,
                bytes_raw: 0,
                bytes_gz: 0,
            })
            .collect();
        let mut parts = vec![0u64; corpus.domains.len() * corpus.hours];
        let mut totals = Totals::default();
        for s in stats {
            if let Some(p) = platforms.get_mut(s.platform) {
                p.shards += 1;
                p.gzip_members += u64::from(s.gzip_members);
                p.lines += s.lines;
                p.rejected += s.rejects;
                p.out_of_window += s.out_of_window;
                p.bytes_raw += s.bytes_raw;
                p.bytes_gz += s.bytes_gz;
            }
            for (acc, n) in parts.iter_mut().zip(&s.partitions) {
                *acc += n;
            }
        }
        for p in &platforms {
            totals.shards += p.shards;
            totals.lines_in += p.lines;
            totals.rejected += p.rejected;
            totals.out_of_window += p.out_of_window;
            totals.bytes_raw += p.bytes_raw;
            totals.bytes_gz += p.bytes_gz;
        }
        totals.lines = totals.lines_in;
        totals.lines_out = totals.lines_in - totals.rejected - totals.out_of_window;
        let mut partitions = Vec::new();
        for (d, domain) in corpus.domains.iter().enumerate() {
            for h in 0..corpus.hours {
                let lines = parts[d * corpus.hours + h];
                if lines == 0 {
                    continue;
                }
                let hour_s = (corpus.hour_base_ms + h as i64 * 3_600_000).div_euclid(1000);
                partitions.push(PartitionTruth {
                    domain: domain.clone(),
                    hour: strftime("%Y%m%d%H", hour_s, OUTPUT_OFFSET_S),
                    path: strftime(
                        &OUTPUT_PATH.replace("{domain}", domain),
                        hour_s,
                        OUTPUT_OFFSET_S,
                    ),
                    lines,
                });
            }
        }
        GroundTruth {
            seed: corpus.seed,
            window: WindowTruth {
                start: format_rfc3339(corpus.window.0, OUTPUT_OFFSET_S),
                end: format_rfc3339(corpus.window.1, OUTPUT_OFFSET_S),
            },
            options: OptionsTruth {
                rate: args.rate,
                disorder: args.disorder,
                late: args.late,
                traps: args.traps,
                domains: corpus.domains.clone(),
                output_format: args.output_format.clone(),
            },
            platforms,
            totals,
            partitions,
        }
    }
}
