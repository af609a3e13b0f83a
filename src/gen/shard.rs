//! Which lines go into which shard, and writing one shard: on-time lines, lines delivered late
//! from earlier slots, trap lines, gzip members.
//!
//! Every line is a pure function of `(seed, platform, domain, slot, line number)`: its own
//! generator is seeded from that key. So shards can be written on any thread in any order,
//! and a shard that receives late lines from earlier slots regenerates exactly those lines.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use libdeflater::Compressor;

use super::request::{Profile, Request, RequestStyle};
use super::rng::{hash_key, Chance, Rng};
use super::vendor::{Event, Platform, Variant};

/// Length of a slot: vendors deliver 5-minute shards.
pub const SLOT_MS: i64 = 300_000;
/// How many slots late a late line can be delivered.
pub const MAX_LATE_SLOTS: u64 = 3;
/// Uncompressed bytes per gzip member; bigger shards become several members.
const MEMBER_BYTES: usize = 64 << 20;
/// Share of lines that carry a parse trap, with `--traps`.
const TRAP_LINE_SHARE: f64 = 0.03;
/// Share of IPv6 clients in ordinary traffic.
const IPV6_SHARE: f64 = 0.02;
/// Domain key of streams whose lines pick their own domain.
const ANY_DOMAIN: u64 = u64::MAX;
/// Salt of a shard's own generator (trap placement), distinct from line numbers.
const SHARD_SALT: u64 = 0xBAD_11E5;

/// Everything shard writing depends on, shared read-only by the writer threads.
#[derive(Debug, Clone)]
pub struct Corpus {
    pub seed: u64,
    pub platforms: Vec<Platform>,
    pub domains: Vec<String>,
    /// Relative traffic share of each domain.
    pub domain_weights: Vec<u32>,
    /// Traffic mix of each domain.
    pub profiles: Vec<Profile>,
    /// Start of slot 0 (one slot before the window), ms since the epoch.
    pub first_slot_ms: i64,
    /// Slots generated: the window's, plus one before and one after (the job's slack).
    pub slots: usize,
    /// Job window `[start, end)`, ms.
    pub window: (i64, i64),
    /// Start of the first output hour, ms, and the number of output hours.
    pub hour_base_ms: i64,
    pub hours: usize,
    /// Lines per second per platform, over all domains.
    pub rate: f64,
    pub disorder: Chance,
    pub late: Chance,
    pub traps: bool,
}

/// One shard to write: a platform's slot (and domain, for path-host platforms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardJob {
    pub platform: usize,
    pub domain: Option<usize>,
    pub slot: usize,
}

/// Ground truth of one written shard.
#[derive(Debug, Clone, Default)]
pub struct ShardStats {
    pub platform: usize,
    /// Log lines written (headers and blank lines excluded), trap lines included.
    pub lines: u64,
    /// Lines that must be rejected (garbage, cut lines).
    pub rejects: u64,
    /// Parseable lines whose event time is outside the window.
    pub out_of_window: u64,
    /// In-window lines per (domain, output hour): index `domain * hours + hour`.
    pub partitions: Vec<u64>,
    pub bytes_raw: u64,
    pub bytes_gz: u64,
    pub gzip_members: u32,
}

/// Per-thread reusable state: compressor and buffers.
pub struct Workspace {
    compressor: Compressor,
    raw: Vec<u8>,
    gz: Vec<u8>,
    req: Request,
}

impl Workspace {
    /// A workspace compressing at `level` (1..=12).
    pub fn new(level: i32) -> anyhow::Result<Workspace> {
        let lvl = libdeflater::CompressionLvl::new(level)
            .map_err(|e| anyhow::anyhow!("gzip level {level}: {e:?}"))?;
        Ok(Workspace {
            compressor: Compressor::new(lvl),
            raw: Vec::with_capacity(1 << 20),
            gz: Vec::new(),
            req: Request::default(),
        })
    }
}

/// What kind of bad line a trap inserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BadLine {
    /// Binary bytes (starting with NUL) that no format accepts.
    Garbage,
    /// A valid line cut inside its time field.
    Cut,
}

impl Corpus {
    /// The shards to write, slot-major so that threads spread over platforms.
    pub fn jobs(&self) -> Vec<ShardJob> {
        let mut jobs = Vec::new();
        for slot in 0..self.slots {
            for (pi, p) in self.platforms.iter().enumerate() {
                if p.host_from_path() {
                    for d in 0..self.domains.len() {
                        jobs.push(ShardJob {
                            platform: pi,
                            domain: Some(d),
                            slot,
                        });
                    }
                } else {
                    jobs.push(ShardJob {
                        platform: pi,
                        domain: None,
                        slot,
                    });
                }
            }
        }
        jobs
    }

    /// Start of `slot`, ms.
    pub fn slot_ms(&self, slot: usize) -> i64 {
        self.first_slot_ms + slot as i64 * SLOT_MS
    }

    /// The shard's path relative to the corpus directory.
    pub fn shard_path(&self, job: ShardJob) -> String {
        let p = self.platforms[job.platform];
        let tag = hash_key(&[self.seed, job.platform as u64, job.slot as u64]);
        p.shard_path(
            self.slot_ms(job.slot).div_euclid(1000),
            job.domain.map(|d| self.domains[d].as_str()),
            tag,
        )
    }

    fn domain_key(job: ShardJob) -> u64 {
        job.domain.map_or(ANY_DOMAIN, |d| d as u64)
    }

    /// Number of events the vendor logged during `slot` for this stream.
    fn stream_len(&self, job: ShardJob, slot: usize) -> u64 {
        let share = match job.domain {
            Some(d) => {
                let total: u32 = self.domain_weights.iter().sum();
                f64::from(self.domain_weights[d]) / f64::from(total.max(1))
            }
            None => 1.0,
        };
        let mut rng = Rng::new(hash_key(&[
            self.seed,
            job.platform as u64,
            Self::domain_key(job),
            slot as u64,
            u64::MAX,
        ]));
        // ±15 % from slot to slot, as traffic is never flat.
        let jitter = 0.85 + 0.3 * (rng.below(1 << 20) as f64 / f64::from(1u32 << 20));
        let expected = self.rate * (SLOT_MS / 1000) as f64 * share * jitter;
        let whole = expected.floor();
        let frac = expected - whole;
        whole as u64 + u64::from((rng.below(1 << 20) as f64) < frac * f64::from(1u32 << 20))
    }

    /// The generator of line `i` of the stream of `job` at `slot`, and how many slots late
    /// that line is delivered (clamped to the last generated slot).
    fn line_rng(&self, job: ShardJob, slot: usize, i: u64) -> (Rng, usize) {
        let mut rng = Rng::new(hash_key(&[
            self.seed,
            job.platform as u64,
            Self::domain_key(job),
            slot as u64,
            i,
        ]));
        let late = if rng.chance(self.late) {
            1 + rng.below(MAX_LATE_SLOTS) as usize
        } else {
            0
        };
        let target = (slot + late).min(self.slots - 1);
        (rng, target - slot)
    }

    /// Writes the shard of `job` under `dir` and returns its ground truth.
    pub fn write_shard(
        &self,
        dir: &Path,
        job: ShardJob,
        ws: &mut Workspace,
    ) -> anyhow::Result<ShardStats> {
        let platform = self.platforms[job.platform];
        let rel = self.shard_path(job);
        let path: PathBuf = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut sink = MemberSink {
            file,
            path: &path,
            members: 0,
            bytes_gz: 0,
        };
        let mut stats = ShardStats {
            platform: job.platform,
            partitions: vec![0; self.domains.len() * self.hours],
            ..ShardStats::default()
        };

        let mut shard_rng = Rng::new(hash_key(&[
            self.seed,
            job.platform as u64,
            Self::domain_key(job),
            job.slot as u64,
            SHARD_SALT,
        ]));
        let own = self.stream_len(job, job.slot);
        // Trap placement: bad lines before given on-time line numbers; member splits.
        let mut bad: Vec<(u64, BadLine)> = Vec::new();
        let mut splits: Vec<u64> = Vec::new();
        let mut blank_last = false;
        if self.traps {
            for _ in 0..1 + shard_rng.below(2) {
                bad.push((shard_rng.below(own + 1), BadLine::Garbage));
            }
            bad.push((shard_rng.below(own + 1), BadLine::Cut));
            bad.sort_by_key(|b| b.0);
            if shard_rng.below(3) == 0 && own >= 4 {
                splits.push(1 + shard_rng.below(own / 2));
                splits.push(own / 2 + 1 + shard_rng.below(own / 2 - 1));
            }
            blank_last = shard_rng.below(4) == 0;
        }

        ws.raw.clear();
        platform.push_header(&mut ws.raw);
        let mut bad_iter = bad.iter().peekable();
        for i in 0..own {
            while let Some(&&(at, kind)) = bad_iter.peek() {
                if at != i {
                    break;
                }
                self.push_bad_line(job, kind, &mut shard_rng, ws, &mut stats);
                bad_iter.next();
            }
            let (mut rng, late) = self.line_rng(job, job.slot, i);
            if late == 0 {
                self.push_line(job, job.slot, i, own, &mut rng, ws, &mut stats);
            }
            if splits.contains(&(i + 1)) || ws.raw.len() >= MEMBER_BYTES {
                stats.bytes_raw += ws.raw.len() as u64;
                sink.member(ws)?;
            }
        }
        for &(_, kind) in bad_iter {
            self.push_bad_line(job, kind, &mut shard_rng, ws, &mut stats);
        }
        // Lines of earlier slots that the vendor delivers with this shard.
        for k in 1..=MAX_LATE_SLOTS as usize {
            let Some(src) = job.slot.checked_sub(k) else {
                break;
            };
            let n = self.stream_len(job, src);
            for i in 0..n {
                let (mut rng, late) = self.line_rng(job, src, i);
                if late == k {
                    self.push_line(job, src, i, n, &mut rng, ws, &mut stats);
                    if ws.raw.len() >= MEMBER_BYTES {
                        stats.bytes_raw += ws.raw.len() as u64;
                        sink.member(ws)?;
                    }
                }
            }
        }
        if blank_last {
            ws.raw.push(b'\n');
        }
        stats.bytes_raw += ws.raw.len() as u64;
        if !ws.raw.is_empty() || sink.members == 0 {
            sink.member(ws)?;
        }
        sink.file
            .flush()
            .with_context(|| format!("writing {}", path.display()))?;
        stats.bytes_gz = sink.bytes_gz;
        stats.gzip_members = sink.members;
        Ok(stats)
    }

    /// Appends line `i` of `n` of the stream of `job` at `slot`, with its terminator.
    #[allow(clippy::too_many_arguments)]
    fn push_line(
        &self,
        job: ShardJob,
        slot: usize,
        i: u64,
        n: u64,
        rng: &mut Rng,
        ws: &mut Workspace,
        stats: &mut ShardStats,
    ) {
        let platform = self.platforms[job.platform];
        // Stratified times keep the vendor's write order (mostly increasing).
        let step = (SLOT_MS as u64 / n.max(1)).max(1);
        let mut time_ms =
            self.slot_ms(slot) + ((i * SLOT_MS as u64) / n.max(1)) as i64 + rng.below(step) as i64;
        if rng.chance(self.disorder) {
            let shift = rng.range(1000, 5000) as i64;
            time_ms += if rng.below(2) == 0 { -shift } else { shift };
        }
        let sub_ms_ns = rng.below(1_000_000) as u32;
        let domain = match job.domain {
            Some(d) => d,
            None => rng.weighted(&self.domain_weights),
        };
        let mut variant = Variant::default();
        let mut style = RequestStyle {
            ipv6: Chance::new(IPV6_SHARE),
            trap_user_agent: false,
            profile: self.profiles[domain],
        };
        let mut crlf = false;
        if self.traps && rng.chance(Chance::new(TRAP_LINE_SHARE)) {
            match rng.below(7) {
                0 => style.ipv6 = Chance::new(1.0),
                1 => variant.one_digit_day = true,
                2 => style.trap_user_agent = true,
                3 => crlf = true,
                4 => variant.extra_fields = true,
                5 => variant.alternative = true,
                _ => variant.empty_referer = true,
            }
        }
        ws.req.fill(rng, style);
        let ev = Event {
            time_ms,
            sub_ms_ns,
            host: &self.domains[domain],
        };
        let written = platform.write_line(&mut ws.raw, &ws.req, &ev, variant, rng);
        ws.raw.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        stats.lines += 1;
        let t = written.time_ms;
        if t < self.window.0 || t >= self.window.1 {
            stats.out_of_window += 1;
        } else {
            let hour = ((t - self.hour_base_ms) / 3_600_000) as usize;
            if let Some(c) = stats.partitions.get_mut(domain * self.hours + hour) {
                *c += 1;
            }
        }
    }

    /// Appends a line that every parser must reject, with its terminator.
    fn push_bad_line(
        &self,
        job: ShardJob,
        kind: BadLine,
        rng: &mut Rng,
        ws: &mut Workspace,
        stats: &mut ShardStats,
    ) {
        match kind {
            BadLine::Garbage => {
                ws.raw.push(0);
                for _ in 0..rng.range(20, 200) {
                    let b = rng.below(256) as u8;
                    ws.raw.push(if b == b'\n' || b == b'\r' { 0xFF } else { b });
                }
            }
            BadLine::Cut => {
                let platform = self.platforms[job.platform];
                let start = ws.raw.len();
                let domain = job
                    .domain
                    .unwrap_or_else(|| rng.weighted(&self.domain_weights));
                let time_ms = self.slot_ms(job.slot) + rng.below(SLOT_MS as u64) as i64;
                ws.req.fill(
                    rng,
                    RequestStyle {
                        ipv6: Chance::NEVER,
                        trap_user_agent: false,
                        profile: self.profiles[domain],
                    },
                );
                let ev = Event {
                    time_ms,
                    sub_ms_ns: 0,
                    host: &self.domains[domain],
                };
                let w = platform.write_line(&mut ws.raw, &ws.req, &ev, Variant::default(), rng);
                let (a, b) = w.time_field;
                // Keep at least the field's first byte, drop at least its last one.
                let keep = a + 1 + rng.below(b.saturating_sub(a + 1) as u64) as usize;
                ws.raw.truncate(start + keep);
            }
        }
        ws.raw.push(b'\n');
        stats.lines += 1;
        stats.rejects += 1;
    }
}

/// Appends gzip members to one shard file.
struct MemberSink<'a> {
    file: File,
    path: &'a Path,
    members: u32,
    bytes_gz: u64,
}

impl MemberSink<'_> {
    /// Compresses the workspace's raw bytes as one gzip member, appends it, clears the buffer.
    fn member(&mut self, ws: &mut Workspace) -> anyhow::Result<()> {
        let bound = ws.compressor.gzip_compress_bound(ws.raw.len());
        ws.gz.resize(bound, 0);
        let n = ws
            .compressor
            .gzip_compress(&ws.raw, &mut ws.gz)
            .map_err(|e| anyhow::anyhow!("compressing {}: {e:?}", self.path.display()))?;
        self.file
            .write_all(&ws.gz[..n])
            .with_context(|| format!("writing {}", self.path.display()))?;
        self.members += 1;
        self.bytes_gz += n as u64;
        ws.raw.clear();
        Ok(())
    }
}
