//! The job file: what to fuse (sources and their shard templates), which window, and where
//! the fused files go. [`JobFile`] is exactly what the user wrote (serde, unknown keys are
//! errors); [`JobFile::validate`] turns it into a [`Job`], with templates compiled, formats
//! resolved and times parsed. Only `Job` travels further.

pub mod digest;
pub mod overrides;
pub mod template;
pub mod time;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::formats::{Format, FormatError, FormatSpec, OutputFormat};
use crate::storage::location::{Location, LocationError};
use crate::storage::object::config::ByteSize;
use crate::storage::object::ObjectStoreOptions;
use crate::storage::{self, OutputStore, StorageError};
use template::{OutputTemplate, SegmentPattern};

/// Default `window.slack`: read shards whose slot starts up to this far outside the window.
pub const DEFAULT_SLACK: &str = "5m";
/// Default gzip level of the fused files.
pub const DEFAULT_GZIP_LEVEL: u32 = 6;
/// Default `output.success_marker`: downstream jobs wait for the done-flag.
pub const DEFAULT_SUCCESS_MARKER: bool = true;
/// The done-flag's name, Hadoop's (what Oozie datasets' `<done-flag>` and Hive/Spark jobs
/// wait for); written last, empty.
pub const SUCCESS_MARKER: &str = "_SUCCESS";
/// Smallest `output.max_file_size`: one gzip member's input is sized to fit a part whatever
/// the data, and members much below a mebibyte cost compression ratio and parallelism.
pub const MIN_MAX_FILE_SIZE: u64 = 1 << 20;

/// Errors in a job file.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("cannot read job file {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("job file {path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("job key '{key}' = '{value}': {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
    #[error("--set {arg}: {reason}")]
    Override { arg: String, reason: String },
    #[error("job key '{key}' (source '{source_name}'): {error}")]
    Format {
        key: String,
        source_name: String,
        error: FormatError,
    },
    /// `detail` follows the key: `" = 1M: must be …"`.
    #[error("job key '{key}'{detail}")]
    Store { key: &'static str, detail: String },
    #[error("cannot write the job as TOML: {0}")]
    ToToml(#[from] toml::ser::Error),
}

/// A time as written in the job file: a string, or a bare TOML date-time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TimeText {
    Text(String),
    Datetime(toml::value::Datetime),
}

impl TimeText {
    fn as_string(&self) -> String {
        match self {
            TimeText::Text(s) => s.clone(),
            TimeText::Datetime(d) => d.to_string(),
        }
    }
}

/// The job file, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobFile {
    /// Job name: in counters, manifests, application tags.
    pub name: String,
    pub window: WindowFile,
    /// The platforms, in tie-break order.
    #[serde(rename = "source")]
    pub sources: Vec<SourceFile>,
    pub output: OutputFile,
    /// What to do with a shard that is not valid gzip or is truncated (default `fail`).
    #[serde(default)]
    pub on_corrupt_shard: CorruptShardPolicy,
    /// What to do with a shard whose bytes equal another one's (default `skip`).
    #[serde(default)]
    pub on_duplicate_shard: DuplicateShardPolicy,
    /// Where sorted runs go (default: a private directory under the system temp dir).
    #[serde(default)]
    pub scratch: Option<String>,
}

/// `[window]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowFile {
    /// Inclusive start, RFC 3339.
    pub start: TimeText,
    /// Exclusive end, RFC 3339.
    pub end: TimeText,
    /// Also read shards whose slot starts this far outside the window (default 5m).
    #[serde(default)]
    pub slack: Option<String>,
}

/// One `[[source]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceFile {
    /// The platform's name in counters and in the `source` output field.
    pub name: String,
    /// A built-in format name or a custom `{ regex, time_layout }` table.
    pub format: FormatSpec,
    /// Location template: strftime fields of the 5-minute slot start, `{domain}`, globs.
    pub shards: String,
    /// Zone of the slot in the path and of line times without an offset (default: the
    /// format's own zone, +08:00 for Tencent, else UTC).
    #[serde(default)]
    pub timezone: Option<String>,
}

/// `[output]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputFile {
    /// Where the fused files go: a path, `file://`, `hdfs://`, object stores.
    pub root: String,
    /// One file per partition; `%H` → hourly files, `%d` → daily files; `{domain}` required.
    pub path: String,
    /// `json` (default), `combined` or `raw`.
    #[serde(default)]
    pub format: OutputFormat,
    /// Zone of the time fields in `path` and of output times (default UTC).
    #[serde(default)]
    pub timezone: Option<String>,
    /// gzip level 1–9 of the fused files (default 6).
    #[serde(default)]
    pub gzip_level: Option<u32>,
    /// Write the done-flag `_SUCCESS` once the window is published (default true); where it
    /// goes is [`Job::success_marker`]'s rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_marker: Option<bool>,
    /// Largest size of one published (gzip) file, e.g. `"5G"` (default: no limit). A
    /// partition whose output would be larger is written as numbered parts, each a complete
    /// gzip file within the limit, in time order; at least [`MIN_MAX_FILE_SIZE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_file_size: Option<ByteSize>,
    /// Path template of a part: `output.path`'s tokens plus `{part}` (1-based, 5 digits).
    /// Default: `output.path` with `.part-{part}` before its `.gz`
    /// ([`OutputTemplate::default_part_name`]). Only with `max_file_size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_name: Option<String>,
    /// Object-store options (`[output.store]`: endpoint, region, part size…) for `s3://`
    /// roots. Never a secret: credentials come from the environment or a named file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<ObjectStoreOptions>,
}

/// What to do with a corrupt shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CorruptShardPolicy {
    /// Fail the job with a message naming the shard; nothing is published.
    #[default]
    Fail,
    /// Skip the whole shard and list it in the manifest.
    Skip,
}

/// What to do with a shard delivered twice (same bytes under another name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DuplicateShardPolicy {
    /// Read the first (source order, then path) and list the others in the manifest.
    #[default]
    Skip,
    /// Read every shard as listed, without comparing them.
    Keep,
}

/// The validated job.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub window: Window,
    pub sources: Vec<Source>,
    pub output: Output,
    pub on_corrupt_shard: CorruptShardPolicy,
    pub on_duplicate_shard: DuplicateShardPolicy,
    pub scratch: Option<Location>,
    /// The job file after `--set` overrides: what [`Job::to_toml`] ships to workers.
    file: JobFile,
    /// Directory that relative paths of the job file are resolved against.
    pub base_dir: PathBuf,
}

/// The logical window `[start_ms, end_ms)` and the read slack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
    pub slack_ms: i64,
}

impl Window {
    pub fn contains(&self, t: i64) -> bool {
        t >= self.start_ms && t < self.end_ms
    }
}

/// One validated source.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub format: Format,
    pub shards: ShardTemplate,
    pub tz_offset_secs: i32,
}

/// A compiled shard template: a literal root, then one pattern per path segment.
#[derive(Debug, Clone)]
pub struct ShardTemplate {
    /// As written.
    pub text: String,
    pub root: Location,
    pub segments: Vec<SegmentPattern>,
}

/// The validated `[output]`.
#[derive(Debug, Clone)]
pub struct Output {
    /// Where the fused files go and how to open that store.
    pub spec: OutputSpec,
    /// `output.path` as written.
    pub path: String,
    pub template: OutputTemplate,
    pub format: OutputFormat,
    pub tz_offset_secs: i32,
    pub gzip_level: u32,
    /// `output.success_marker`: write [`SUCCESS_MARKER`] at the end of each run.
    pub success_marker: bool,
    /// `output.max_file_size` with its part template: `None` without a limit.
    pub parts: Option<PartLimit>,
}

/// Numbered parts: the size limit of a published file and how parts are named.
#[derive(Debug, Clone)]
pub struct PartLimit {
    /// Largest size of one file, bytes (at least [`MIN_MAX_FILE_SIZE`]).
    pub max_file_size: u64,
    /// `output.part_name` (or its default), compiled; same partitions as `output.path`.
    pub template: OutputTemplate,
}

/// The output root with everything needed to open it: resolved once, at validation, and
/// opened by [`OutputSpec::open`] alone — in the driver, the application master and every
/// worker.
#[derive(Debug, Clone)]
pub struct OutputSpec {
    pub root: Location,
    /// `[output.store]`: object-store options for `s3://` roots.
    pub store: Option<ObjectStoreOptions>,
    /// Directory that relative paths in `store` resolve against.
    pub base_dir: PathBuf,
}

impl OutputSpec {
    /// Opens the output store for the run `run_id` (which names its staging area).
    pub fn open(&self, run_id: &str) -> Result<Arc<dyn OutputStore>, StorageError> {
        storage::object::output_store(&self.root, run_id, self.store.as_ref(), &self.base_dir)
    }

    /// The credentials [`OutputSpec::open`] would use here, for an object-store root (`None`
    /// for the others): resolved by the process that has them, to be handed to the processes
    /// that open the output elsewhere (AM, workers) through their credentials files.
    pub fn object_credentials(&self) -> Result<Option<storage::object::Credentials>, StorageError> {
        match &self.root {
            Location::Object { .. } => Ok(Some(
                storage::object::resolve(&self.root, self.store.as_ref(), &self.base_dir)?
                    .credentials,
            )),
            _ => Ok(None),
        }
    }
}

impl JobFile {
    /// Reads `path` and applies `--set key=value` overrides.
    pub fn load(path: &Path, overrides: &[String]) -> Result<JobFile, JobError> {
        let text = std::fs::read_to_string(path).map_err(|source| JobError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, path, overrides)
    }

    /// Parses TOML text (named `path` in messages) and applies overrides.
    pub fn from_toml(text: &str, path: &Path, overrides: &[String]) -> Result<JobFile, JobError> {
        let syntax = |message: String| JobError::Syntax {
            path: path.to_path_buf(),
            message,
        };
        let mut table: toml::Table = toml::from_str(text).map_err(|e| syntax(e.to_string()))?;
        for arg in overrides {
            overrides::apply(&mut table, arg)?;
        }
        JobFile::deserialize(toml::Value::Table(table)).map_err(|e| syntax(e.to_string()))
    }

    /// Checks every value and compiles templates. `base_dir` resolves relative paths. Fails
    /// with the first problem [`JobFile::check`] finds.
    pub fn validate(self, base_dir: &Path) -> Result<Job, JobError> {
        self.check(base_dir).map_err(|problems| {
            problems
                .into_iter()
                .next()
                .expect("check fails with a problem")
        })
    }

    /// As [`JobFile::validate`], but goes on past a problem: every one found, each naming its
    /// key, in the order of the file (`filex validate` prints them all). Touches neither the
    /// network nor the file system.
    pub fn check(self, base_dir: &Path) -> Result<Job, Vec<JobError>> {
        let mut p = Problems::default();
        let invalid = |key: &str, value: &str, reason: &str| JobError::Invalid {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        if self.name.trim().is_empty() || self.name.contains('/') {
            p.push(invalid(
                "name",
                &self.name,
                "must be non-empty, without '/'",
            ));
        }
        let start_ms = p.take(time::parse_instant(
            "window.start",
            &self.window.start.as_string(),
        ));
        let end_ms = p.take(time::parse_instant(
            "window.end",
            &self.window.end.as_string(),
        ));
        if let (Some(start), Some(end)) = (start_ms, end_ms) {
            if end <= start {
                p.push(invalid(
                    "window.end",
                    &self.window.end.as_string(),
                    "must be after window.start",
                ));
            }
        }
        let slack_text = self.window.slack.as_deref().unwrap_or(DEFAULT_SLACK);
        let slack_ms = p.take(time::parse_duration("window.slack", slack_text));
        if self.sources.is_empty() {
            p.push(invalid("source", "[]", "at least one [[source]] is needed"));
        }
        let mut sources = Vec::with_capacity(self.sources.len());
        for (i, s) in self.sources.iter().enumerate() {
            let key = |k: &str| format!("source[{i}].{k}");
            if s.name.trim().is_empty() {
                p.push(invalid(&key("name"), &s.name, "must not be empty"));
            }
            if self.sources[..i].iter().any(|o| o.name == s.name) {
                p.push(invalid(&key("name"), &s.name, "duplicate source name"));
            }
            let format = p.take(
                Format::from_spec(&s.format).map_err(|error| JobError::Format {
                    key: key("format"),
                    source_name: s.name.clone(),
                    error,
                }),
            );
            let tz_offset_secs = match s.timezone.as_deref() {
                Some(tz) => p.take(time::parse_offset(&key("timezone"), tz)),
                // Formats whose times carry no offset have a documented zone (Tencent: +08:00).
                None => Some(
                    format
                        .as_ref()
                        .and_then(Format::default_tz_offset_secs)
                        .unwrap_or(0),
                ),
            };
            let shards = p.take(compile_shard_template(&key("shards"), &s.shards, base_dir));
            if let (Some(format), Some(shards)) = (&format, &shards) {
                if format.host_from_shard_path()
                    && !shards
                        .segments
                        .iter()
                        .flatten()
                        .any(|t| *t == template::Token::Domain)
                {
                    p.push(invalid(
                        &key("shards"),
                        &s.shards,
                        "this format takes the host from the shard path: the template needs {domain}",
                    ));
                }
            }
            if let (Some(format), Some(shards), Some(tz_offset_secs)) =
                (format, shards, tz_offset_secs)
            {
                sources.push(Source {
                    name: s.name.clone(),
                    format,
                    shards,
                    tz_offset_secs,
                });
            }
        }
        let o = &self.output;
        let tz = p.take(time::parse_offset(
            "output.timezone",
            o.timezone.as_deref().unwrap_or("UTC"),
        ));
        let root = p.take(located("output.root", Location::parse(&o.root, base_dir)));
        if let Some(root) = &root {
            if let Err(e) = storage::object::check_root(root) {
                p.push(invalid("output.root", &o.root, &e.to_string()));
            }
        }
        // The template is checked even when the zone is not.
        let template = p.take(OutputTemplate::parse(
            "output.path",
            &o.path,
            tz.unwrap_or(0),
        ));
        let gzip_level = o.gzip_level.unwrap_or(DEFAULT_GZIP_LEVEL);
        if !(1..=9).contains(&gzip_level) {
            p.push(invalid(
                "output.gzip_level",
                &gzip_level.to_string(),
                "must be 1 to 9",
            ));
        }
        let parts = self.check_parts(tz.unwrap_or(0), template.as_ref(), &mut p);
        if let Some(store) = &o.store {
            for (key, detail) in store.problems() {
                p.push(JobError::Store { key, detail });
            }
        }
        let scratch = match &self.scratch {
            Some(s) => p
                .take(located("scratch", Location::parse(s, base_dir)))
                .map(Some),
            None => Some(None),
        };
        let (
            Some(start_ms),
            Some(end_ms),
            Some(slack_ms),
            Some(tz),
            Some(root),
            Some(template),
            Some(scratch),
            true,
        ) = (
            start_ms,
            end_ms,
            slack_ms,
            tz,
            root,
            template,
            scratch,
            p.0.is_empty(),
        )
        else {
            return Err(p.0);
        };
        Ok(Job {
            name: self.name.clone(),
            window: Window {
                start_ms,
                end_ms,
                slack_ms,
            },
            sources,
            output: Output {
                spec: OutputSpec {
                    root,
                    store: o.store.clone(),
                    base_dir: base_dir.to_path_buf(),
                },
                path: o.path.clone(),
                template,
                format: o.format,
                tz_offset_secs: tz,
                gzip_level,
                success_marker: o.success_marker.unwrap_or(DEFAULT_SUCCESS_MARKER),
                parts,
            },
            on_corrupt_shard: self.on_corrupt_shard,
            on_duplicate_shard: self.on_duplicate_shard,
            scratch,
            base_dir: base_dir.to_path_buf(),
            file: self,
        })
    }
}

impl JobFile {
    /// `output.max_file_size` and `output.part_name`, checked against `output.path`'s
    /// compiled `template` (when it compiled).
    fn check_parts(
        &self,
        tz_offset_secs: i32,
        template: Option<&OutputTemplate>,
        p: &mut Problems,
    ) -> Option<PartLimit> {
        let o = &self.output;
        let Some(size) = &o.max_file_size else {
            if let Some(name) = &o.part_name {
                p.push(JobError::Invalid {
                    key: "output.part_name".into(),
                    value: name.clone(),
                    reason: "needs output.max_file_size".into(),
                });
            }
            return None;
        };
        let invalid = |key: &str, value: &str, reason: String| JobError::Invalid {
            key: key.to_string(),
            value: value.to_string(),
            reason,
        };
        let shown = match size {
            ByteSize::Bytes(n) => n.to_string(),
            ByteSize::Text(t) => t.clone(),
        };
        let max_file_size = match size.bytes() {
            Ok(n) if n < MIN_MAX_FILE_SIZE => {
                p.push(invalid(
                    "output.max_file_size",
                    &shown,
                    format!(
                        "must be at least {} MiB: a part holds whole gzip members, each sized \
                         to fit a part whatever the data, and smaller members compress worse",
                        MIN_MAX_FILE_SIZE >> 20
                    ),
                ));
                None
            }
            Ok(n) => Some(n),
            Err(e) => {
                p.push(invalid("output.max_file_size", &shown, e));
                None
            }
        };
        let name = o
            .part_name
            .clone()
            .unwrap_or_else(|| OutputTemplate::default_part_name(&o.path));
        let parts = p.take(OutputTemplate::parse_parts(
            "output.part_name",
            &name,
            tz_offset_secs,
        ));
        if let (Some(parts), Some(path)) = (&parts, template) {
            if parts.bucket_ms != path.bucket_ms {
                p.push(invalid(
                    "output.part_name",
                    &name,
                    "must have the same finest time field as output.path (%H or %d)".into(),
                ));
                return None;
            }
        }
        Some(PartLimit {
            max_file_size: max_file_size?,
            template: parts?,
        })
    }
}

/// The problems found so far by [`JobFile::check`].
#[derive(Debug, Default)]
struct Problems(Vec<JobError>);

impl Problems {
    fn push(&mut self, e: JobError) {
        self.0.push(e);
    }

    /// The value, or `None` with the problem noted.
    fn take<T>(&mut self, r: Result<T, JobError>) -> Option<T> {
        r.map_err(|e| self.push(e)).ok()
    }
}

/// A location error as a problem of the key that holds it.
fn located<T>(key: &str, r: Result<T, LocationError>) -> Result<T, JobError> {
    r.map_err(|e| JobError::Invalid {
        key: key.to_string(),
        value: e.url,
        reason: e.reason,
    })
}

impl Job {
    /// Loads and validates a job file; relative paths resolve against its directory.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Job, JobError> {
        Self::check_file(path, overrides).map_err(|problems| {
            problems
                .into_iter()
                .next()
                .expect("check fails with a problem")
        })
    }

    /// As [`Job::load`], with every problem ([`JobFile::check`]); a file that cannot be read
    /// or parsed is one problem.
    pub fn check_file(path: &Path, overrides: &[String]) -> Result<Job, Vec<JobError>> {
        let file = JobFile::load(path, overrides).map_err(|e| vec![e])?;
        let base = path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."));
        let base = std::fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf());
        file.check(&base)
    }

    /// Parses and validates a job shipped by [`Job::to_toml`] (`origin` names it in
    /// messages; `base_dir` is the shipped [`Job::base_dir`]).
    pub fn from_toml(text: &str, origin: &Path, base_dir: &Path) -> Result<Job, JobError> {
        JobFile::from_toml(text, origin, &[])?.validate(base_dir)
    }

    /// The job file after `--set` overrides, as TOML: how a job travels to the application
    /// master and to workers.
    pub fn to_toml(&self) -> Result<String, JobError> {
        Ok(toml::to_string(&self.file)?)
    }

    /// The digest of the settings that change output bytes ([`digest::settings_digest`]).
    pub fn settings_digest(&self) -> String {
        digest::settings_digest(&self.file)
    }

    /// A short, file-name-safe id of the window: `20261104T160000Z-20261104T190000Z`.
    /// Where the run's done-flag goes, relative to the output root, or `None` with
    /// `output.success_marker = false`. It is [`SUCCESS_MARKER`] in the window's own directory
    /// when the output path starts with one ([`OutputTemplate::window_dir`]: the deepest
    /// leading directory of literals and time fields that spans exactly the window, such as
    /// `2026/11/05/10/` for `%Y/%m/%d/%H/{domain}.gz` and an hourly window), so that its
    /// presence means "this window is complete"; otherwise (a path starting with `{domain}`,
    /// or a window that is not one whole hour, day, month or year of the path) in the output
    /// root, as Hadoop's committers write it, where it means only "the last run here is
    /// complete".
    pub fn success_marker(&self) -> Option<String> {
        if !self.output.success_marker {
            return None;
        }
        Some(
            match self
                .output
                .template
                .window_dir(self.window.start_ms, self.window.end_ms)
            {
                Some(dir) => format!("{dir}/{SUCCESS_MARKER}"),
                None => SUCCESS_MARKER.to_string(),
            },
        )
    }

    pub fn window_id(&self) -> String {
        format!(
            "{}-{}",
            time::format_compact_utc(self.window.start_ms),
            time::format_compact_utc(self.window.end_ms)
        )
    }
}

/// Splits a shard template into its literal root and the pattern segments after it.
fn compile_shard_template(key: &str, text: &str, base: &Path) -> Result<ShardTemplate, JobError> {
    let location = located(key, Location::parse(text, base))?;
    let path = location.path_str();
    let parts: Vec<&str> = path.split('/').collect();
    let first_pattern = parts
        .iter()
        .position(|p| p.contains(['%', '{', '*', '?']))
        .unwrap_or(parts.len().saturating_sub(1));
    let root_path = parts[..first_pattern].join("/");
    let root_path = if root_path.is_empty() {
        "/".to_string()
    } else {
        root_path
    };
    let root = match &location {
        Location::Local(_) => Location::Local(PathBuf::from(&root_path)),
        Location::Hdfs { authority, .. } => Location::Hdfs {
            authority: authority.clone(),
            path: root_path,
        },
        Location::ViewFs { table, .. } => Location::ViewFs {
            table: table.clone(),
            path: root_path,
        },
        Location::Object { scheme, bucket, .. } => Location::Object {
            scheme: scheme.clone(),
            bucket: bucket.clone(),
            prefix: root_path.trim_matches('/').to_string(),
        },
    };
    let mut segments = Vec::new();
    for seg in &parts[first_pattern..] {
        if seg.is_empty() || *seg == ".." {
            return Err(JobError::Invalid {
                key: key.to_string(),
                value: text.to_string(),
                reason: "empty or '..' segments after the first pattern".into(),
            });
        }
        segments.push(template::tokenize(key, seg, true)?);
    }
    if segments.is_empty() {
        return Err(JobError::Invalid {
            key: key.to_string(),
            value: text.to_string(),
            reason: "names no file".into(),
        });
    }
    Ok(ShardTemplate {
        text: text.to_string(),
        root,
        segments,
    })
}

#[cfg(test)]
mod tests;
