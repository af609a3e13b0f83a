//! Object-store output: `s3://bucket/prefix` on AWS and any S3-compatible service (MinIO,
//! Ceph RGW, the S3 endpoints of Aliyun OSS, Tencent COS, Huawei OBS, UpYun's S3 API), with
//! verified, atomic, streaming uploads.
//!
//! # How the [`OutputStore`] contract maps onto S3
//!
//! * `stage(rel)` starts a writer that cuts the reducer's gzip stream into parts of
//!   `part_size` and sends each as an UploadPart of one multipart upload (created at the
//!   first part). Nothing is visible under the final key yet: S3 shows a multipart upload's
//!   object only once CompleteMultipartUpload succeeds.
//! * `finish()` sends the last (short) part, waits for every part and returns the upload id
//!   and the part list (number, ETag, MD5) as the staged object's handle, with the byte
//!   count and SHA-256 computed while writing.
//! * `commit` (`publish` of each object, one commit step) completes the uploads in the
//!   given order, then checks each object: size
//!   (HeadObject), ETag against the multipart ETag computed here (MD5 of the parts' MD5s,
//!   `-N`), and with `verify = "read-back"` the SHA-256 of the bytes read back. An object
//!   that fails its check is deleted and the job fails. An upload the server no longer
//!   knows (NoSuchUpload; AccessDenied from s3s-fs) was completed before when the object
//!   under its key has its size and multipart ETag: the step is done (a commit finished by
//!   the next run, `crate::commit`).
//! * Each upload has a [`marker`] under the run's staging area,
//!   `<prefix>/_temporary/<run>/_uploads/<upload id>`, written right after
//!   CreateMultipartUpload and deleted when the upload ends (completed, aborted, discarded).
//! * `abort` (the store opened for one run) aborts every multipart upload of that run not
//!   completed: those this process created, and those the run's markers name — the uploads
//!   of its processes killed outright (a worker, the AM), found by whoever cleans up after
//!   the run (its own end, the AM's SIGTERM handler, `filex submit` after a kill or before
//!   a re-run of the window). A writer dropped without `finish` (a failed task) aborts its
//!   own upload. A failed or killed job therefore leaves no object and no open upload
//!   behind; only a process killed between CreateMultipartUpload and its marker's
//!   PutObject leaves an upload without a part (see [`marker`]), which a bucket lifecycle
//!   rule `AbortIncompleteMultipartUpload` cleans up.
//! * A staged upload adopted by a recovering AM is checked with ListParts: still open, with
//!   the parts its handle lists (`check_staged`).
//! * `put_atomic` (manifest, rejects index) is one PutObject, atomic by itself.
//! * A rerun writes the same keys with the same bytes: completing an upload replaces the
//!   object whole.
//!
//! Each part is sent with `Content-MD5` (the server rejects damaged bytes) and its answered
//! ETag is compared with the MD5 computed here; every request also signs the payload's
//! SHA-256. Transient faults (5xx, SlowDown/throttling, RequestTimeout, BadDigest,
//! connection reset, timeout) are retried with exponential backoff and full jitter, each
//! retry re-sending the same buffered bytes; wrong credentials, a missing bucket or denied
//! access fail at once with a message naming bucket, key and what to check.
//!
//! Memory per object being written: `part_size × (concurrency + 1)` plus a small constant,
//! whatever the object's size. `sequential = true` sends one part at a time, in order, for
//! services that reject parallel or out-of-order parts.
//!
//! # Why hand-written SigV4 over a small HTTP client rather than OpenDAL or an SDK
//!
//! * OpenDAL's writer completes the multipart upload in `close()`: the object becomes
//!   visible when the reducer finishes, not when the driver publishes the whole window, and
//!   there is no way to keep an upload open across processes and complete it later. The
//!   contract here needs exactly that deferral (and the handle to travel to the driver).
//!   OpenDAL also rejects `Content-MD5` on multipart parts (CRC32C only).
//! * `object_store` and `aws-sdk-s3` could defer completion (MultipartStore / raw calls),
//!   but both are async (tokio, hyper) and pull aws-lc-sys, a C build, for the handful of
//!   calls we need; the SDK also sends CRC32 checksums by default that several
//!   S3-compatible vendors reject.
//! * The calls are few and stable (CreateMultipartUpload, UploadPart,
//!   CompleteMultipartUpload, AbortMultipartUpload, ListParts, PutObject, HeadObject,
//!   GetObject, DeleteObject, ListObjectsV2), SigV4 is ~100 lines checked against AWS's published
//!   example, and blocking std threads fit the synchronous `Write` the reducer feeds.
//!   The HTTP client is `ureq` (blocking, rustls with ring, no async runtime).
//!
//! # Configuration
//!
//! ```toml
//! [output]
//! root = "s3://logs-bucket/fused"
//! path = "{domain}/%Y%m%d/{domain}_%Y%m%d%H.log.gz"
//!
//! [output.store]                 # all optional
//! endpoint = "https://oss-cn-hangzhou.aliyuncs.com"   # default: AWS_ENDPOINT_URL, else AWS
//! region = "cn-hangzhou"         # default: AWS_REGION, else us-east-1
//! path_style = false             # default: true for IP/localhost endpoints
//! part_size = "64M"              # 5 MiB – 5 GiB, default 16 MiB
//! concurrency = 4                # parts in flight per object
//! sequential = false             # true: one part at a time, in order
//! credentials_file = "s3.ini"    # AWS INI format; default: environment, ~/.aws/credentials
//! profile = "cdn"                # default: AWS_PROFILE, else default
//! checksum = "md5"               # per-part Content-MD5, or "none"
//! verify = "etag"                # or "read-back" (GET + SHA-256), or "none"
//! timeout_secs = 120             # per request
//! max_attempts = 6               # per request, transient faults only
//! ```
//!
//! Any key can be given on the command line too: `--set output.store.endpoint=…`.
//! A large object (tens of GB) needs `part_size × 10 000` above its size: 64 MiB parts
//! reach 625 GiB. Memory is about `part_size × (concurrency + 1)` per reduce task.
//!
//! Native `oss://`, `cos://`, `obs://` and `upyun://` APIs are not implemented: those roots
//! fail with a message pointing to the vendor's S3-compatible endpoint.

pub mod client;
pub mod config;
pub mod hadoop;
pub mod handed;
pub mod marker;
pub mod multipart;
pub mod sigv4;
pub mod store;

use std::path::Path;
use std::sync::Arc;

pub use config::{Credentials, ObjectStoreOptions, ResolvedConfig};
pub use store::S3Output;

use super::location::Location;
use super::{OutputStore, StorageError};

/// Errors of the object-store backend; each names what it concerns.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("object store configuration: {0}")]
    Config(String),
    #[error("object store credentials: {0}")]
    Credentials(String),
    #[error("{op} {url} failed after {attempts} attempt(s): {}", request_detail(*.status, .code, .message, .hint))]
    Request {
        op: &'static str,
        url: String,
        status: Option<u16>,
        code: String,
        message: String,
        hint: String,
        attempts: u32,
    },
    #[error("integrity check of {url} failed: {what}")]
    Integrity { url: String, what: String },
    #[error("{url}: {what}")]
    Internal { url: String, what: String },
}

fn request_detail(status: Option<u16>, code: &str, message: &str, hint: &str) -> String {
    let mut s = String::new();
    if let Some(st) = status {
        s.push_str(&format!("HTTP {st} "));
    }
    s.push_str(code);
    if !message.is_empty() {
        s.push_str(&format!(" ({message})"));
    }
    if !hint.is_empty() {
        s.push_str(&format!(": {hint}"));
    }
    s
}

impl ObjectError {
    /// As a [`StorageError`] located at `url`.
    pub fn into_storage(self, url: &str) -> StorageError {
        StorageError::Backend {
            location: url.to_string(),
            message: self.to_string(),
        }
    }
}

/// A hint for the object-store schemes without a native implementation.
fn native_scheme_hint(scheme: &str) -> &'static str {
    match scheme {
        "oss" => "use s3:// with endpoint https://oss-<region>.aliyuncs.com (Aliyun OSS's S3-compatible API)",
        "cos" => "use s3:// with endpoint https://cos.<region>.myqcloud.com (Tencent COS's S3-compatible API)",
        "obs" => "use s3:// with endpoint https://obs.<region>.myhuaweicloud.com (Huawei OBS's S3-compatible API)",
        "upyun" => "use s3:// with endpoint https://s3.api.upyun.com (UpYun's S3-compatible API)",
        _ => "use s3:// with the vendor's S3-compatible endpoint",
    }
}

/// Refuses an object-store root filex cannot write to: the native APIs of `oss://`, `cos://`,
/// `obs://` and `upyun://`, with the S3-compatible endpoint to use instead. Other roots pass.
pub fn check_root(root: &Location) -> Result<(), StorageError> {
    match root {
        Location::Object { scheme, .. } if scheme != "s3" => Err(StorageError::Unsupported {
            location: root.to_string(),
            what: format!(
                "the native {scheme}:// API ({})",
                native_scheme_hint(scheme)
            ),
        }),
        _ => Ok(()),
    }
}

/// The bucket and key prefix of an `s3://` location.
fn s3_bucket_prefix(root: &Location) -> Result<(&str, &str), StorageError> {
    check_root(root)?;
    let Location::Object { bucket, prefix, .. } = root else {
        return Err(StorageError::Unsupported {
            location: root.to_string(),
            what: "a non-object location in the object store".into(),
        });
    };
    Ok((bucket, prefix))
}

/// Resolves how to reach the S3 output at `root` (`s3://bucket/prefix`) with `opts` and
/// everything this process has besides: the [`handed`] credentials, Hadoop's S3A keys for
/// the bucket in the effective configuration ([`crate::settings::effective`]) and the process
/// environment (precedence in [`config`]); relative paths in `opts` are taken against
/// `base_dir`.
pub fn resolve(
    root: &Location,
    opts: Option<&ObjectStoreOptions>,
    base_dir: &Path,
) -> Result<ResolvedConfig, StorageError> {
    let (bucket, _) = s3_bucket_prefix(root)?;
    let conf = crate::settings::effective().map_err(|e| StorageError::Backend {
        location: root.to_string(),
        message: crate::errors::chain(&e),
    })?;
    let provided = config::Provided {
        handed: handed::installed(),
        hadoop: hadoop::defaults_for(&conf, bucket)
            .map_err(|e| e.into_storage(&root.to_string()))?,
    };
    let default = ObjectStoreOptions::default();
    let env = |k: &str| std::env::var(k).ok();
    ResolvedConfig::resolve(opts.unwrap_or(&default), &env, &provided, base_dir)
        .map_err(|e| e.into_storage(&root.to_string()))
}

/// Opens the S3 output at `root` (`s3://bucket/prefix`) with `opts`, resolved by
/// [`resolve`]. Checks the bucket and credentials with one listing before returning.
pub fn open_output(
    root: &Location,
    run_id: &str,
    opts: Option<&ObjectStoreOptions>,
    base_dir: &Path,
) -> Result<Arc<S3Output>, StorageError> {
    let (bucket, prefix) = s3_bucket_prefix(root)?;
    let cfg = resolve(root, opts, base_dir)?;
    tracing::info!(
        root = %root,
        endpoint = %format!("{}://{}", cfg.endpoint.scheme, cfg.endpoint.authority),
        region = %cfg.region,
        path_style = cfg.endpoint.path_style,
        part_size = cfg.part_size,
        concurrency = cfg.concurrency,
        credentials = %cfg.credential_source,
        "object store output"
    );
    let out = S3Output::new(
        client::S3Client::new(cfg, bucket.to_string()),
        prefix.to_string(),
        run_id,
    );
    out.preflight()
        .map_err(|e| e.into_storage(&root.to_string()))?;
    Ok(Arc::new(out))
}

/// The output store for a job: S3 roots with the job's `[output.store]` options, every
/// other scheme through [`crate::storage::output_store`].
pub fn output_store(
    root: &Location,
    run_id: &str,
    opts: Option<&ObjectStoreOptions>,
    base_dir: &Path,
) -> Result<Arc<dyn OutputStore>, StorageError> {
    match root {
        Location::Object { .. } => Ok(open_output(root, run_id, opts, base_dir)?),
        other => super::output_store(other, run_id),
    }
}

#[cfg(test)]
mod live_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_schemes_are_unsupported_with_a_hint() {
        for scheme in ["oss", "cos", "obs", "upyun"] {
            let root = Location::parse(&format!("{scheme}://bkt/p"), Path::new("/")).unwrap();
            let err = match open_output(&root, "r", None, Path::new("/")) {
                Err(e) => e.to_string(),
                Ok(_) => panic!("{scheme} accepted"),
            };
            assert!(err.contains(&format!("{scheme}://")), "{err}");
            assert!(err.contains("s3://"), "{err}");
        }
    }

    #[test]
    fn request_errors_name_bucket_key_and_cause() {
        let e = ObjectError::Request {
            op: "UploadPart",
            url: "s3://bkt/a/b.gz".into(),
            status: Some(404),
            code: "NoSuchBucket".into(),
            message: "The specified bucket does not exist".into(),
            hint: "bucket 'bkt' does not exist at http://127.0.0.1:1".into(),
            attempts: 1,
        };
        let s = e.to_string();
        assert!(s.contains("s3://bkt/a/b.gz"), "{s}");
        assert!(s.contains("HTTP 404 NoSuchBucket"), "{s}");
        assert!(s.contains("bucket 'bkt' does not exist"), "{s}");
    }
}
