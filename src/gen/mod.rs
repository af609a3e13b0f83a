//! `filex gen`: realistic synthetic 5-minute gzip shards from several CDN platforms and
//! domains, plus the job file that fuses them and a ground-truth file (`_gen.json`).
//!
//! The corpus feeds the README demo, the end-to-end test and the benchmark. Output is a pure
//! function of the options (same seed, same bytes), written on several threads. It imitates
//! vendor behaviour that matters to the engine: disorder within a shard, late delivery into
//! later shards, lines outside the window, and with `--traps` the traps of docs/FORMATS.md.
//!
//! Layout: [`rng`] (seeded generator), [`clock`] (civil time, vendor time layouts), `text`
//! (number and escape writers), `request` (one synthetic request), [`vendor`] (platforms and
//! their line layouts), `shard` (what goes into which shard), `truth` (job file, `_gen.json`).

pub mod clock;
mod request;
pub mod rng;
mod shard;
mod text;
mod truth;
pub mod vendor;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use parking_lot::Mutex;

use rng::Chance;
use shard::{Corpus, ShardStats, Workspace, SLOT_MS};
use vendor::Platform;

/// The job file written next to the shards.
pub const JOB_FILE: &str = "job.toml";
/// The ground-truth file written next to the shards.
pub const TRUTH_FILE: &str = "_gen.json";
/// The directory (under `--out`) that holds the shards.
pub const SHARDS_DIR: &str = "shards";
/// Time zone of the window and of the output files: most customers are in UTC+8.
const OUTPUT_OFFSET_S: i32 = 8 * 3600;
/// gzip level of the shards, as vendors typically use.
const GZIP_LEVEL: i32 = 6;
/// Traffic share of the n-th domain (the first domains are the busiest); cycled.
const DOMAIN_WEIGHTS: [u32; 5] = [50, 30, 20, 12, 8];

/// `filex gen` options.
#[derive(Debug, Clone, clap::Args)]
pub struct GenArgs {
    /// Directory to write the shards, `job.toml` and `_gen.json` into.
    #[arg(long)]
    pub out: PathBuf,
    /// Window start (RFC 3339, on a 5-minute boundary).
    #[arg(long, default_value = "2026-11-05T00:00:00+08:00")]
    pub start: String,
    /// Window length in hours.
    #[arg(long, default_value_t = 2)]
    pub hours: u32,
    /// Platforms, in job (tie-break) order: upyun, aliyun, tencent, nginx, cloudfront,
    /// cloudflare, apache, huawei, qiniu.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "upyun,aliyun,tencent,nginx,cloudfront,cloudflare"
    )]
    pub platforms: Vec<String>,
    /// Domains (host names), the first the busiest.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "img.example.com,www.example.com,api.example.net"
    )]
    pub domains: Vec<String>,
    /// Lines per second per platform, over all domains.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Fraction of lines whose time is moved a few seconds against the shard's order.
    #[arg(long, default_value_t = 0.05)]
    pub disorder: f64,
    /// Fraction of lines delivered in a later slot's shard (5 to 15 minutes late).
    #[arg(long, default_value_t = 0.02)]
    pub late: f64,
    /// Inject traps: garbage and cut lines (counted rejects) in every shard, and lines that
    /// must still parse (IPv6, 1-digit days, escaped quotes, CRLF, extra fields, …),
    /// multi-member gzip shards and blank last lines.
    #[arg(long)]
    pub traps: bool,
    /// Seed: the same options and seed give the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output format written into the job file.
    #[arg(long, default_value = "json", value_parser = ["json", "combined", "raw"])]
    pub output_format: String,
    /// Writer threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Replace an existing `shards/` directory under `--out`.
    #[arg(long)]
    pub force: bool,
}

impl GenArgs {
    /// The options with every default, writing into `out`.
    pub fn with_defaults(out: PathBuf) -> GenArgs {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: GenArgs,
        }
        use clap::Parser as _;
        let mut args = match Wrapper::try_parse_from(["gen", "--out", "."]) {
            Ok(w) => w.args,
            // The defaults are static and covered by a test; this arm is unreachable.
            Err(e) => unreachable!("gen defaults do not parse: {e}"),
        };
        args.out = out;
        args
    }
}

/// What was generated.
#[derive(Debug, Clone, Default)]
pub struct GenSummary {
    pub shards: u64,
    /// Log lines written (trap lines included; headers and blank lines not).
    pub lines: u64,
    /// Uncompressed bytes of all shards.
    pub bytes_raw: u64,
    /// Compressed bytes of all shards.
    pub bytes_gz: u64,
    /// Lines that a correct run rejects.
    pub rejects: u64,
    /// Parseable lines whose event time falls outside the window.
    pub out_of_window: u64,
    pub job_file: PathBuf,
    pub truth_file: PathBuf,
    pub elapsed: Duration,
}

impl std::fmt::Display for GenSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mb = |b: u64| b as f64 / 1e6;
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        writeln!(
            f,
            "generated {} shards, {} lines, {:.1} MB raw ({:.1} MB gzip) in {:.2} s ({:.0} MB/s raw)",
            self.shards,
            self.lines,
            mb(self.bytes_raw),
            mb(self.bytes_gz),
            secs,
            mb(self.bytes_raw) / secs
        )?;
        writeln!(
            f,
            "expected: {} rejects, {} out of window, {} lines out",
            self.rejects,
            self.out_of_window,
            self.lines - self.rejects - self.out_of_window
        )?;
        writeln!(f, "ground truth: {}", self.truth_file.display())?;
        write!(f, "job: {}", self.job_file.display())
    }
}

/// Writes the corpus, the job file and the ground truth described by `args`.
pub fn generate(args: &GenArgs) -> anyhow::Result<GenSummary> {
    let started = Instant::now();
    let corpus = corpus_of(args)?;
    let shards_dir = args.out.join(SHARDS_DIR);
    if shards_dir.exists() {
        if !args.force {
            bail!(
                "{} already exists; pass --force to replace it",
                shards_dir.display()
            );
        }
        std::fs::remove_dir_all(&shards_dir)
            .with_context(|| format!("removing {}", shards_dir.display()))?;
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;

    let jobs = corpus.jobs();
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .clamp(1, 256)
        .min(jobs.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<ShardStats>> = Mutex::new(Vec::with_capacity(jobs.len()));
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut ws = match Workspace::new(GZIP_LEVEL) {
                    Ok(ws) => ws,
                    Err(e) => {
                        *failure.lock() = Some(e);
                        return;
                    }
                };
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&job) = jobs.get(i) else { break };
                    if failure.lock().is_some() {
                        break;
                    }
                    match corpus.write_shard(&args.out, job, &mut ws) {
                        Ok(stats) => results.lock().push(stats),
                        Err(e) => {
                            failure.lock().get_or_insert(e);
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner() {
        return Err(e);
    }
    let stats = results.into_inner();

    let job_file = args.out.join(JOB_FILE);
    std::fs::write(&job_file, truth::job_toml(&corpus, &args.output_format))
        .with_context(|| format!("writing {}", job_file.display()))?;
    let truth = truth::GroundTruth::collect(&corpus, args, &stats);
    let truth_file = args.out.join(TRUTH_FILE);
    let json = serde_json::to_vec_pretty(&truth).context("encoding the ground truth")?;
    std::fs::write(&truth_file, json)
        .with_context(|| format!("writing {}", truth_file.display()))?;

    Ok(GenSummary {
        shards: stats.len() as u64,
        lines: truth.totals.lines,
        bytes_raw: truth.totals.bytes_raw,
        bytes_gz: truth.totals.bytes_gz,
        rejects: truth.totals.rejected,
        out_of_window: truth.totals.out_of_window,
        job_file,
        truth_file,
        elapsed: started.elapsed(),
    })
}

/// Validates the options into the corpus description.
fn corpus_of(args: &GenArgs) -> anyhow::Result<Corpus> {
    let start: jiff::Timestamp = args
        .start
        .parse()
        .with_context(|| format!("--start {:?} is not an RFC 3339 time", args.start))?;
    let start_ms = start.as_millisecond();
    if start_ms.rem_euclid(SLOT_MS) != 0 {
        bail!("--start {} is not on a 5-minute boundary", args.start);
    }
    if args.hours == 0 || args.hours > 24 * 366 {
        bail!("--hours must be between 1 and 8784, not {}", args.hours);
    }
    if !(args.rate.is_finite() && args.rate >= 0.0 && args.rate <= 10_000_000.0) {
        bail!(
            "--rate must be between 0 and 1e7 lines per second, not {}",
            args.rate
        );
    }
    for (name, v) in [("--disorder", args.disorder), ("--late", args.late)] {
        if !(0.0..=1.0).contains(&v) {
            bail!("{name} must be a fraction between 0 and 1, not {v}");
        }
    }
    let mut platforms = Vec::new();
    for name in args.platforms.iter().filter(|n| !n.trim().is_empty()) {
        let p = Platform::from_name(name).with_context(|| {
            let known: Vec<&str> = Platform::ALL.iter().map(|p| p.name()).collect();
            format!("unknown platform {name:?} (known: {})", known.join(", "))
        })?;
        if platforms.contains(&p) {
            bail!("platform {name:?} given twice");
        }
        platforms.push(p);
    }
    if platforms.is_empty() {
        bail!("--platforms is empty");
    }
    let mut domains: Vec<String> = Vec::new();
    for d in args
        .domains
        .iter()
        .map(|d| d.trim().to_ascii_lowercase())
        .filter(|d| !d.is_empty())
    {
        let valid = d.len() <= 253
            && d.split('.').all(|l| {
                !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
            && d.contains('.');
        if !valid {
            bail!("--domains: {d:?} is not a host name");
        }
        if domains.contains(&d) {
            bail!("--domains: {d:?} given twice");
        }
        domains.push(d);
    }
    if domains.is_empty() {
        bail!("--domains is empty");
    }
    let end_ms = start_ms + i64::from(args.hours) * 3_600_000;
    let out_off_ms = i64::from(OUTPUT_OFFSET_S) * 1000;
    let hour_base_ms = (start_ms + out_off_ms).div_euclid(3_600_000) * 3_600_000 - out_off_ms;
    let hours = (end_ms - hour_base_ms + 3_599_999).div_euclid(3_600_000) as usize;
    Ok(Corpus {
        seed: args.seed,
        platforms,
        domain_weights: (0..domains.len())
            .map(|i| DOMAIN_WEIGHTS[i % DOMAIN_WEIGHTS.len()])
            .collect(),
        profiles: domains
            .iter()
            .map(|d| request::Profile::of_host(d))
            .collect(),
        domains,
        first_slot_ms: start_ms - SLOT_MS,
        slots: ((end_ms - start_ms) / SLOT_MS) as usize + 2,
        window: (start_ms, end_ms),
        hour_base_ms,
        hours,
        rate: args.rate,
        disorder: Chance::new(args.disorder),
        late: Chance::new(args.late),
        traps: args.traps,
    })
}

#[cfg(test)]
mod tests;
