//! Object-store options of the job file (`[output.store]`), the environment users already
//! set for S3 tools, Hadoop's S3A keys, and credentials.
//!
//! Precedence, most specific first:
//! * endpoint: `output.store.endpoint`, `fs.s3a.bucket.<b>.endpoint`, `fs.s3a.endpoint`,
//!   `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, else AWS (`https://s3.<region>.amazonaws.com`);
//! * region: `output.store.region`, `fs.s3a[.bucket.<b>].endpoint.region`, `AWS_REGION`,
//!   `AWS_DEFAULT_REGION`, else `us-east-1`;
//! * path style: `output.store.path_style`, `fs.s3a[.bucket.<b>].path.style.access = true`,
//!   else path style for an IP address or `localhost` endpoint;
//! * credentials: those handed to this process by whoever started it (the YARN container's
//!   credentials, the token file of `filex run --workers`: [`Provided::handed`]), else
//!   `output.store.credentials_file` (an AWS-style INI file; profile `output.store.profile`,
//!   `AWS_PROFILE` or `default`), else `fs.s3a.bucket.<b>.access.key`/`secret.key`/
//!   `session.token`, else `fs.s3a.access.key`/…, else `AWS_ACCESS_KEY_ID` /
//!   `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, else the shared credentials file
//!   (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`) with the same profile.
//!
//! The secret never appears in the job file, argv, logs or the manifest: [`Secret`] prints
//! as `***`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ObjectError;
use crate::percent;

/// S3 limits on a multipart upload's parts.
pub const MIN_PART_SIZE: u64 = 5 << 20;
pub const MAX_PART_SIZE: u64 = 5 << 30;
pub const MAX_PARTS: u32 = 10_000;
/// Defaults.
pub const DEFAULT_PART_SIZE: u64 = 16 << 20;
pub const DEFAULT_CONCURRENCY: usize = 4;
pub const DEFAULT_TIMEOUT_SECS: u64 = 120;
pub const DEFAULT_MAX_ATTEMPTS: u32 = 6;

/// A size in bytes, written as a number or as `16M`, `64MiB`, `1.5G` ([`crate::size`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ByteSize {
    Bytes(u64),
    Text(String),
}

impl ByteSize {
    /// The size in bytes.
    pub fn bytes(&self) -> Result<u64, String> {
        match self {
            ByteSize::Bytes(n) => Ok(*n),
            ByteSize::Text(s) => crate::size::parse_size(s).map_err(|e| e.to_string()),
        }
    }
}

/// What is checked once an object is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerifyMode {
    /// HeadObject: size, and the ETag against the one computed while writing (md5 of the
    /// part md5s + `-N`) when the server reports one of that form.
    #[default]
    Etag,
    /// As `etag`, then GetObject and compare the SHA-256 of the bytes read back.
    ReadBack,
    /// Nothing after completion (per-part checks still apply).
    None,
}

/// Integrity header sent with each part and each single PUT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartChecksum {
    /// `Content-MD5` (accepted by AWS and every S3-compatible service we know).
    #[default]
    Md5,
    /// No integrity header (the payload SHA-256 of the signature still covers the bytes).
    None,
}

/// `[output.store]` in the job file: how to reach an object store and how to upload.
/// Never holds a secret: credentials come from the environment or a named file.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectStoreOptions {
    /// `https://host[:port]` of an S3-compatible service (MinIO, Ceph, OSS/COS/OBS S3
    /// endpoints, UpYun's S3 API…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// `true`: `endpoint/bucket/key`; `false`: `bucket.endpoint/key`. Default: path style
    /// for an IP address or `localhost` endpoint, virtual-hosted otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_style: Option<bool>,
    /// Multipart part size (5 MiB – 5 GiB; default 16 MiB). Memory per object being
    /// written is about `part_size × (concurrency + 1)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_size: Option<ByteSize>,
    /// Parts uploaded at once per object (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// Upload parts strictly one after another, in order (for services that reject
    /// parallel or out-of-order parts). Implies concurrency 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequential: Option<bool>,
    /// An AWS-style credentials file (INI, `[profile]` sections); relative to the job file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<String>,
    /// Profile in the credentials file (default `AWS_PROFILE`, else `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Per-part integrity header: `md5` (default) or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<PartChecksum>,
    /// Whole-object check after completion: `etag` (default), `read-back` or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyMode>,
    /// Per-request timeout in seconds (default 120).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// Attempts per request on transient faults (default 6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
}

impl ObjectStoreOptions {
    /// `part_size`, checked against S3's limits (default [`DEFAULT_PART_SIZE`]).
    pub fn part_size(&self) -> Result<u64, ObjectError> {
        let part_size = match &self.part_size {
            Some(p) => p
                .bytes()
                .map_err(|e| ObjectError::Config(format!("output.store.part_size: {e}")))?,
            None => DEFAULT_PART_SIZE,
        };
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&part_size) {
            return Err(ObjectError::Config(format!(
                "output.store.part_size = {part_size}: must be between 5 MiB and 5 GiB \
                 (S3's limits on a multipart upload's parts)"
            )));
        }
        Ok(part_size)
    }

    /// Parts in flight per object: 1 when `sequential`, else `concurrency` (1 to 64).
    pub fn concurrency(&self) -> Result<usize, ObjectError> {
        if self.sequential.unwrap_or(false) {
            return Ok(1);
        }
        let concurrency = self.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if concurrency == 0 || concurrency > 64 {
            return Err(ObjectError::Config(format!(
                "output.store.concurrency = {concurrency}: must be 1 to 64"
            )));
        }
        Ok(concurrency)
    }

    /// What can be checked without the environment or the network: the endpoint when one is
    /// written, the part size and the concurrency. Every problem, as `(key, what follows the
    /// key in a message)`: `" = 1048576: must be …"` or `": endpoint … must …"`.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(url) = &self.endpoint {
            if let Err(e) = Endpoint::parse(url.trim(), self.path_style) {
                out.push(("output.store.endpoint", format!(": {e}")));
            }
        }
        for (key, r) in [
            ("output.store.part_size", self.part_size().map(drop)),
            ("output.store.concurrency", self.concurrency().map(drop)),
        ] {
            let text = match r {
                Ok(()) => continue,
                Err(ObjectError::Config(e)) => e,
                Err(e) => e.to_string(),
            };
            let detail = match text.strip_prefix(key) {
                Some(rest) => rest.to_string(),
                None => format!(": {text}"),
            };
            out.push((key, detail));
        }
        out
    }
}

impl fmt::Debug for ObjectStoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No secrets in here, but keep the output short.
        f.debug_struct("ObjectStoreOptions")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("part_size", &self.part_size)
            .field("concurrency", &self.concurrency)
            .field("sequential", &self.sequential)
            .field("credentials_file", &self.credentials_file)
            .field("profile", &self.profile)
            .field("checksum", &self.checksum)
            .field("verify", &self.verify)
            .finish_non_exhaustive()
    }
}

/// A secret string: `Debug`/`Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Secret(s)
    }
    /// The secret itself, for signing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Access key, secret and optional session token.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

/// Where the credentials came from, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    /// Handed to this process with its credentials (container token file).
    Handed,
    /// Hadoop's S3A keys; `key` is the access key's name.
    Hadoop {
        key: String,
    },
    Environment,
    File {
        path: PathBuf,
        profile: String,
    },
}

/// What the Hadoop configuration says about one bucket (Hadoop's S3A keys, read by
/// `hadoop.rs`); every field optional.
#[derive(Clone, Debug, Default)]
pub struct HadoopDefaults {
    /// `http(s)://host[:port]`.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// `Some(true)` forces path-style addressing; `None` leaves the default.
    pub path_style: Option<bool>,
    /// Credentials with the name of the access key's setting.
    pub credentials: Option<(Credentials, String)>,
}

/// What comes from outside the job file and the environment.
#[derive(Clone, Debug, Default)]
pub struct Provided {
    /// Credentials handed to this process by the one that started it; when present, the
    /// only ones used.
    pub handed: Option<Credentials>,
    pub hadoop: HadoopDefaults,
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Handed => f.write_str("the credentials handed to this process"),
            CredentialSource::Hadoop { key } => write!(f, "{key} of the Hadoop configuration"),
            CredentialSource::Environment => f.write_str("AWS_ACCESS_KEY_ID from the environment"),
            CredentialSource::File { path, profile } => {
                write!(f, "profile [{profile}] of {}", path.display())
            }
        }
    }
}

/// How URLs are formed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: String,
    /// `host` or `host:port` as it goes into the Host header (default ports left out).
    pub authority: String,
    /// Path prefix of the endpoint (usually empty), without trailing `/`.
    pub base_path: String,
    pub path_style: bool,
}

impl Endpoint {
    /// Parses `url` (`http(s)://host[:port][/base]`).
    pub fn parse(url: &str, path_style: Option<bool>) -> Result<Endpoint, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("endpoint '{url}' must start with http:// or https://"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(format!("endpoint '{url}': scheme must be http or https"));
        }
        let (authority, base) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(format!(
                "endpoint '{url}': expected host[:port] (no user info)"
            ));
        }
        let authority = authority.to_ascii_lowercase();
        let authority = match (scheme.as_str(), authority.rsplit_once(':')) {
            ("http", Some((h, "80"))) | ("https", Some((h, "443"))) => h.to_string(),
            _ => authority,
        };
        let host = authority
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(&authority);
        let is_ip_or_local = host == "localhost"
            || host.parse::<std::net::Ipv4Addr>().is_ok()
            || host.starts_with('[');
        Ok(Endpoint {
            scheme,
            authority,
            base_path: base.to_string(),
            path_style: path_style.unwrap_or(is_ip_or_local),
        })
    }

    /// The AWS endpoint of `region`.
    pub fn aws(region: &str, path_style: Option<bool>) -> Endpoint {
        Endpoint {
            scheme: "https".into(),
            authority: format!("s3.{region}.amazonaws.com"),
            base_path: String::new(),
            path_style: path_style.unwrap_or(false),
        }
    }

    /// Host header value and encoded path of `key` in `bucket` (`key` empty: the bucket).
    pub fn locate(&self, bucket: &str, key: &str) -> (String, String) {
        let key_enc = percent::encode(key, percent::unreserved_or_slash);
        if self.path_style {
            (
                self.authority.clone(),
                format!("{}/{}/{}", self.base_path, bucket, key_enc),
            )
        } else {
            (
                format!("{bucket}.{}", self.authority),
                format!("{}/{}", self.base_path, key_enc),
            )
        }
    }
}

/// Everything resolved: where, who, how.
#[derive(Clone, Debug)]
pub struct ResolvedConfig {
    pub endpoint: Endpoint,
    pub region: String,
    pub credentials: Credentials,
    pub credential_source: CredentialSource,
    pub part_size: u64,
    pub concurrency: usize,
    pub sequential: bool,
    pub checksum: PartChecksum,
    pub verify: VerifyMode,
    pub timeout: Duration,
    pub max_attempts: u32,
}

/// Reads the environment through a function, so tests need not touch the process's.
pub type EnvFn<'a> = &'a dyn Fn(&str) -> Option<String>;

fn env_nonempty(env: EnvFn<'_>, key: &str) -> Option<String> {
    env(key).filter(|v| !v.trim().is_empty())
}

impl ResolvedConfig {
    /// Resolves `opts` against what is `provided` and the environment; `base_dir` anchors a
    /// relative `credentials_file`.
    pub fn resolve(
        opts: &ObjectStoreOptions,
        env: EnvFn<'_>,
        provided: &Provided,
        base_dir: &Path,
    ) -> Result<ResolvedConfig, ObjectError> {
        let invalid = |what: String| ObjectError::Config(what);
        let hadoop = &provided.hadoop;
        let region = opts
            .region
            .clone()
            .or_else(|| hadoop.region.clone())
            .or_else(|| env_nonempty(env, "AWS_REGION"))
            .or_else(|| env_nonempty(env, "AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".to_string());
        let path_style = opts.path_style.or(hadoop.path_style);
        let endpoint = match opts
            .endpoint
            .clone()
            .or_else(|| hadoop.endpoint.clone())
            .or_else(|| env_nonempty(env, "AWS_ENDPOINT_URL_S3"))
            .or_else(|| env_nonempty(env, "AWS_ENDPOINT_URL"))
        {
            Some(url) => Endpoint::parse(url.trim(), path_style).map_err(invalid)?,
            None => Endpoint::aws(&region, path_style),
        };
        let part_size = opts.part_size()?;
        let sequential = opts.sequential.unwrap_or(false);
        let concurrency = opts.concurrency()?;
        let timeout = Duration::from_secs(opts.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS).max(1));
        let max_attempts = opts.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS).max(1);
        let profile = opts
            .profile
            .clone()
            .or_else(|| env_nonempty(env, "AWS_PROFILE"))
            .unwrap_or_else(|| "default".to_string());
        let (credentials, credential_source) = if let Some(c) = &provided.handed {
            (c.clone(), CredentialSource::Handed)
        } else if let Some(file) = &opts.credentials_file {
            let path = base_dir.join(file);
            (
                credentials_from_file(&path, &profile)?,
                CredentialSource::File { path, profile },
            )
        } else if let Some((c, key)) = &hadoop.credentials {
            (c.clone(), CredentialSource::Hadoop { key: key.clone() })
        } else if let (Some(id), Some(secret)) = (
            env_nonempty(env, "AWS_ACCESS_KEY_ID"),
            env_nonempty(env, "AWS_SECRET_ACCESS_KEY"),
        ) {
            (
                Credentials {
                    access_key_id: id,
                    secret_access_key: Secret::new(secret),
                    session_token: env_nonempty(env, "AWS_SESSION_TOKEN").map(Secret::new),
                },
                CredentialSource::Environment,
            )
        } else {
            let path = match env_nonempty(env, "AWS_SHARED_CREDENTIALS_FILE") {
                Some(p) => PathBuf::from(p),
                None => match env_nonempty(env, "HOME") {
                    Some(home) => Path::new(&home).join(".aws").join("credentials"),
                    None => {
                        return Err(ObjectError::Credentials(
                            "no AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the environment, \
                             no output.store.credentials_file and no HOME for ~/.aws/credentials"
                                .into(),
                        ))
                    }
                },
            };
            (
                credentials_from_file(&path, &profile)?,
                CredentialSource::File { path, profile },
            )
        };
        Ok(ResolvedConfig {
            endpoint,
            region,
            credentials,
            credential_source,
            part_size,
            concurrency,
            sequential,
            checksum: opts.checksum.unwrap_or_default(),
            verify: opts.verify.unwrap_or_default(),
            timeout,
            max_attempts,
        })
    }
}

/// Parses an AWS-style INI file into `section → key → value`.
pub fn parse_ini(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut out: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            // ~/.aws/config writes `[profile x]`; credentials files write `[x]`.
            section = name
                .strip_prefix("profile ")
                .unwrap_or(name)
                .trim()
                .to_string();
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    out
}

fn credentials_from_file(path: &Path, profile: &str) -> Result<Credentials, ObjectError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ObjectError::Credentials(format!(
            "cannot read credentials file {}: {e} (set AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY, or output.store.credentials_file)",
            path.display()
        ))
    })?;
    let ini = parse_ini(&text);
    let section = ini.get(profile).ok_or_else(|| {
        ObjectError::Credentials(format!(
            "credentials file {} has no profile [{profile}]",
            path.display()
        ))
    })?;
    let id = section.get("aws_access_key_id").filter(|v| !v.is_empty());
    let secret = section
        .get("aws_secret_access_key")
        .filter(|v| !v.is_empty());
    match (id, secret) {
        (Some(id), Some(secret)) => Ok(Credentials {
            access_key_id: id.clone(),
            secret_access_key: Secret::new(secret.clone()),
            session_token: section
                .get("aws_session_token")
                .filter(|v| !v.is_empty())
                .map(|t| Secret::new(t.clone())),
        }),
        _ => Err(ObjectError::Credentials(format!(
            "profile [{profile}] of {} lacks aws_access_key_id or aws_secret_access_key",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn none() -> Provided {
        Provided::default()
    }

    fn creds(id: &str, secret: &str) -> Credentials {
        Credentials {
            access_key_id: id.into(),
            secret_access_key: Secret::new(secret.into()),
            session_token: None,
        }
    }

    #[test]
    fn credential_order_handed_file_hadoop_environment_shared() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("job-creds"),
            "[default]\naws_access_key_id = FILE\naws_secret_access_key = fsecret\n",
        )
        .unwrap();
        let shared = dir.path().join("shared");
        std::fs::write(
            &shared,
            "[default]\naws_access_key_id = SHARED\naws_secret_access_key = ssecret\n",
        )
        .unwrap();
        let shared = shared.to_string_lossy().into_owned();
        let env = env_of(&[
            ("AWS_ACCESS_KEY_ID", "ENV"),
            ("AWS_SECRET_ACCESS_KEY", "esecret"),
            ("AWS_SHARED_CREDENTIALS_FILE", &shared),
        ]);
        let with_file = ObjectStoreOptions {
            credentials_file: Some("job-creds".into()),
            ..Default::default()
        };
        let hadoop = HadoopDefaults {
            credentials: Some((creds("HADOOP", "hsecret"), "fs.s3a.access.key".into())),
            ..Default::default()
        };
        let all = Provided {
            handed: Some(creds("HANDED", "xsecret")),
            hadoop: hadoop.clone(),
        };
        let id = |opts: &ObjectStoreOptions, env: EnvFn<'_>, p: &Provided| {
            let c = ResolvedConfig::resolve(opts, env, p, dir.path()).unwrap();
            (c.credentials.access_key_id, c.credential_source)
        };
        assert_eq!(
            id(&with_file, &env, &all),
            ("HANDED".into(), CredentialSource::Handed)
        );
        let no_handed = Provided {
            handed: None,
            hadoop,
        };
        assert_eq!(id(&with_file, &env, &no_handed).0, "FILE");
        assert_eq!(
            id(&ObjectStoreOptions::default(), &env, &no_handed),
            (
                "HADOOP".into(),
                CredentialSource::Hadoop {
                    key: "fs.s3a.access.key".into()
                }
            )
        );
        assert_eq!(id(&ObjectStoreOptions::default(), &env, &none()).0, "ENV");
        let only_shared = env_of(&[("AWS_SHARED_CREDENTIALS_FILE", &shared)]);
        assert_eq!(
            id(&ObjectStoreOptions::default(), &only_shared, &none()).0,
            "SHARED"
        );
    }

    #[test]
    fn hadoop_defaults_yield_to_the_job_and_beat_the_environment() {
        let env = env_of(&[
            ("AWS_ACCESS_KEY_ID", "ENV"),
            ("AWS_SECRET_ACCESS_KEY", "esecret"),
            ("AWS_REGION", "env-region"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
        ]);
        let provided = Provided {
            handed: None,
            hadoop: HadoopDefaults {
                endpoint: Some("https://minio.example:9000".into()),
                region: Some("hadoop-region".into()),
                path_style: Some(true),
                credentials: None,
            },
        };
        let c = ResolvedConfig::resolve(
            &ObjectStoreOptions::default(),
            &env,
            &provided,
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(c.endpoint.authority, "minio.example:9000");
        assert!(c.endpoint.path_style, "fs.s3a.path.style.access = true");
        assert_eq!(c.region, "hadoop-region");
        let job = ObjectStoreOptions {
            endpoint: Some("https://s3.job.example".into()),
            region: Some("job-region".into()),
            path_style: Some(false),
            ..Default::default()
        };
        let c = ResolvedConfig::resolve(&job, &env, &provided, Path::new("/")).unwrap();
        assert_eq!(c.endpoint.authority, "s3.job.example");
        assert!(!c.endpoint.path_style);
        assert_eq!(c.region, "job-region");
    }

    #[test]
    fn addressing_styles() {
        let aws = Endpoint::aws("eu-west-1", None);
        assert_eq!(
            aws.locate("bkt", "a b/c.gz"),
            (
                "bkt.s3.eu-west-1.amazonaws.com".to_string(),
                "/a%20b/c.gz".to_string()
            )
        );
        let local = Endpoint::parse("http://127.0.0.1:9000", None).unwrap();
        assert!(local.path_style);
        assert_eq!(
            local.locate("bkt", "x/y"),
            ("127.0.0.1:9000".to_string(), "/bkt/x/y".to_string())
        );
        let oss = Endpoint::parse("https://oss-cn-hangzhou.aliyuncs.com:443/", None).unwrap();
        assert!(!oss.path_style);
        assert_eq!(oss.authority, "oss-cn-hangzhou.aliyuncs.com");
        assert_eq!(
            oss.locate("b", "k").0,
            "b.oss-cn-hangzhou.aliyuncs.com".to_string()
        );
        let forced = Endpoint::parse("https://minio.example:9000", Some(true)).unwrap();
        assert_eq!(forced.locate("b", "").1, "/b/");
        assert!(Endpoint::parse("ftp://x", None).is_err());
        assert!(Endpoint::parse("minio:9000", None).is_err());
    }

    #[test]
    fn environment_and_defaults() {
        let env = env_of(&[
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "topsecret"),
            ("AWS_SESSION_TOKEN", "tok"),
            ("AWS_REGION", "cn-north-1"),
            ("AWS_ENDPOINT_URL", "http://localhost:9000"),
        ]);
        let c = ResolvedConfig::resolve(
            &ObjectStoreOptions::default(),
            &env,
            &none(),
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(c.region, "cn-north-1");
        assert_eq!(c.endpoint.authority, "localhost:9000");
        assert!(c.endpoint.path_style);
        assert_eq!(c.credentials.access_key_id, "AKID");
        assert_eq!(c.credential_source, CredentialSource::Environment);
        assert_eq!(c.part_size, DEFAULT_PART_SIZE);
        assert_eq!(c.concurrency, DEFAULT_CONCURRENCY);
        let shown = format!("{c:?}");
        assert!(!shown.contains("topsecret"), "{shown}");
        assert!(!shown.contains("tok\""), "{shown}");

        let opts = ObjectStoreOptions {
            part_size: Some(ByteSize::Text("8MiB".into())),
            sequential: Some(true),
            concurrency: Some(8),
            ..Default::default()
        };
        let c = ResolvedConfig::resolve(&opts, &env, &none(), Path::new("/")).unwrap();
        assert_eq!(c.part_size, 8 << 20);
        assert_eq!(c.concurrency, 1);
        let small = ObjectStoreOptions {
            part_size: Some(ByteSize::Bytes(1 << 20)),
            ..Default::default()
        };
        assert!(ResolvedConfig::resolve(&small, &env, &none(), Path::new("/")).is_err());
    }

    #[test]
    fn credentials_file_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("creds");
        std::fs::write(
            &file,
            "[default]\naws_access_key_id = D\naws_secret_access_key = dsecret\n\n\
             [profile cdn]\naws_access_key_id=C\naws_secret_access_key=csecret\n\
             aws_session_token = ctok\n",
        )
        .unwrap();
        let env = env_of(&[("AWS_PROFILE", "cdn"), ("AWS_ACCESS_KEY_ID", "ENV")]);
        let opts = ObjectStoreOptions {
            credentials_file: Some("creds".into()),
            ..Default::default()
        };
        let c = ResolvedConfig::resolve(&opts, &env, &none(), dir.path()).unwrap();
        assert_eq!(c.credentials.access_key_id, "C");
        assert_eq!(c.credentials.secret_access_key.expose(), "csecret");
        assert!(c.credentials.session_token.is_some());
        // Shared file via AWS_SHARED_CREDENTIALS_FILE, default profile.
        let f = file.to_string_lossy().into_owned();
        let env = env_of(&[("AWS_SHARED_CREDENTIALS_FILE", f.as_str())]);
        let c = ResolvedConfig::resolve(&ObjectStoreOptions::default(), &env, &none(), dir.path())
            .unwrap();
        assert_eq!(c.credentials.access_key_id, "D");
        let opts = ObjectStoreOptions {
            profile: Some("nope".into()),
            ..Default::default()
        };
        let err = ResolvedConfig::resolve(&opts, &env, &none(), dir.path()).unwrap_err();
        assert!(err.to_string().contains("[nope]"), "{err}");
    }

    #[test]
    fn options_from_toml_reject_unknown_keys() {
        let o: ObjectStoreOptions =
            toml::from_str("endpoint = \"http://127.0.0.1:1\"\npart_size = \"8M\"\nconcurrency = 2\nverify = \"read-back\"").unwrap();
        assert_eq!(o.part_size.unwrap().bytes().unwrap(), 8 << 20);
        assert_eq!(o.verify, Some(VerifyMode::ReadBack));
        assert!(toml::from_str::<ObjectStoreOptions>("secret_access_key = \"x\"").is_err());
    }
}
