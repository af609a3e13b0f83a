//! [`OutputStore`] on S3: stage = multipart upload left open (with its [`marker`]), commit =
//! CompleteMultipartUpload then the whole-object check, abort = AbortMultipartUpload of
//! every upload of the run not completed (this process's, and those its markers name: the
//! run's dead processes'), put_atomic = one PutObject (atomic by itself).

use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use super::client::{digests, Call, Fault, S3Client};
use super::config::VerifyMode;
use super::marker::{self, Marker};
use super::multipart::{
    is_md5_etag, is_multipart_etag, unquote, Completion, Handle, S3Writer, Uploads,
};
use super::ObjectError;
use crate::storage::{OutputStore, Published, StagedObject, StagedWriter, StorageError};

/// The output root `s3://bucket/prefix`, opened for one run.
pub struct S3Output {
    inner: Arc<Uploads>,
}

impl S3Output {
    /// The output at `prefix` for the run `run_id` (whose markers [`OutputStore::abort`]
    /// sweeps).
    pub fn new(client: S3Client, prefix: String, run_id: &str) -> S3Output {
        S3Output {
            inner: Arc::new(Uploads::new(client, &prefix, run_id)),
        }
    }

    /// A cheap listing of the prefix: fails fast on a missing bucket or wrong
    /// credentials. Denied listing is only a warning (a write-only key is legitimate).
    pub fn preflight(&self) -> Result<(), ObjectError> {
        let call = Call::new("ListObjectsV2", "GET", "")
            .query("list-type", "2")
            .query("max-keys", "1")
            .query("prefix", &self.inner.prefix);
        match self.inner.client.execute(&call) {
            Ok(_) => Ok(()),
            Err(ObjectError::Request { code, .. }) if code == "AccessDenied" => {
                tracing::warn!(
                    bucket = %self.inner.client.bucket,
                    "listing the output prefix is denied; going on (uploads may still be allowed)"
                );
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Upload ids created by this store and still open (for tests and diagnostics).
    pub fn open_uploads(&self) -> Vec<(String, String)> {
        self.inner
            .open
            .lock()
            .iter()
            .map(|(id, key)| (key.clone(), id.clone()))
            .collect()
    }

    /// Aborts the upload each of the run's markers names, then deletes the marker; returns
    /// how many markers it swept, pushing what failed onto `failed` (those markers stay,
    /// for the next clean-up). A denied listing (a write-only key) sweeps nothing.
    fn sweep_markers(&self, failed: &mut Vec<String>) -> usize {
        let client = &self.inner.client;
        let dir = marker::run_dir(&self.inner.prefix, &self.inner.run_id);
        let keys = match marker::list(client, &dir) {
            Ok(keys) => keys,
            Err(e) if is_denied(&e) => {
                tracing::warn!(
                    markers = %client.url(&dir),
                    "listing the upload markers is denied: uploads dead processes left open \
                     stay open (a lifecycle rule AbortIncompleteMultipartUpload removes them)"
                );
                return 0;
            }
            Err(e) => {
                failed.push(format!("{}: {e}", client.url(&dir)));
                return 0;
            }
        };
        let mut swept = 0;
        for key in keys {
            match self.sweep_one(&key) {
                Ok(()) => swept += 1,
                Err(e) => failed.push(e),
            }
        }
        swept
    }

    fn sweep_one(&self, key: &str) -> Result<(), String> {
        let client = &self.inner.client;
        let url = client.url(key);
        let Some(bytes) = marker::read(client, key).map_err(|e| e.to_string())? else {
            return Ok(()); // its upload ended meanwhile
        };
        let name = key.rsplit('/').next().unwrap_or_default();
        let m = Marker::decode(&bytes, &url, name).map_err(|e| e.to_string())?;
        self.inner
            .try_abort(&m.key, &m.upload_id)
            .map_err(|e| format!("{} (marker {url}): {e}", client.url(&m.key)))?;
        self.inner.open.lock().remove(&m.upload_id);
        tracing::debug!(key = %m.key, upload_id = %m.upload_id, "aborted a dead process's upload");
        marker::delete(client, key).map_err(|e| e.to_string())
    }

    /// The upload behind a staged object.
    fn handle(&self, obj: &StagedObject) -> Result<Handle, StorageError> {
        serde_json::from_str(&obj.handle).map_err(|e| {
            self.storage_err(
                &obj.rel,
                ObjectError::Internal {
                    url: self.url(&obj.rel),
                    what: format!("not an S3 staging handle: {e}"),
                },
            )
        })
    }

    fn storage_err(&self, rel: &str, e: ObjectError) -> StorageError {
        e.into_storage(&self.url(rel))
    }

    fn head(&self, key: &str) -> Result<(u64, String), ObjectError> {
        let reply = self
            .inner
            .client
            .execute(&Call::new("HeadObject", "HEAD", key))?;
        let len = reply
            .header("content-length")
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| ObjectError::Internal {
                url: self.inner.client.url(key),
                what: "HeadObject answered without Content-Length".into(),
            })?;
        let etag = unquote(reply.header("etag").unwrap_or("")).to_string();
        Ok((len, etag))
    }

    fn delete(&self, key: &str) {
        if let Err(e) = self
            .inner
            .client
            .execute(&Call::new("DeleteObject", "DELETE", key))
        {
            tracing::warn!(key, error = %e, "could not delete an object that failed its check");
        }
    }

    /// Completes a staged object's upload, then checks the object; one that fails its check
    /// is deleted. An upload S3 no longer knows was completed before when the object under
    /// its key is the one it made ([`S3Output::completed_before`]).
    fn complete(&self, obj: &StagedObject, h: &Handle) -> Result<Published, StorageError> {
        let done = match self.inner.complete(h) {
            Ok(done) => done,
            // Servers answer the completion of an upload completed before in their own way:
            // AWS with NoSuchUpload, s3s-fs (whose record of the upload went with it) with
            // AccessDenied. If the object under the key is exactly the one the upload made
            // (size and multipart ETag), that is what happened; otherwise the answer stands.
            Err(e @ ObjectError::Request { .. }) if is_denied(&e) => {
                return match self.head(&h.key) {
                    Ok((len, etag)) if len == obj.bytes && etag.eq_ignore_ascii_case(&h.etag) => {
                        Ok(Published::Already)
                    }
                    _ => Err(self.storage_err(&obj.rel, e)),
                };
            }
            Err(e) => return Err(self.storage_err(&obj.rel, e)),
        };
        if done == Completion::Gone {
            return self.completed_before(obj, h);
        }
        if let Err(e) = self.verify(&h.key, obj.bytes, &obj.sha256, Some(&h.etag)) {
            if matches!(e, ObjectError::Integrity { .. }) {
                self.delete(&h.key);
            }
            return Err(self.storage_err(&obj.rel, e));
        }
        Ok(Published::Now)
    }

    /// Whether the object under a gone upload's key is the one the upload made: its size,
    /// and its multipart ETag where the server answers one (some compute another form; the
    /// size decides there).
    fn completed_before(&self, obj: &StagedObject, h: &Handle) -> Result<Published, StorageError> {
        let gone = |found: String| StorageError::StagedGone {
            location: self.url(&obj.rel),
            staged: format!("multipart upload {}", h.upload_id),
            found,
        };
        match self.head(&h.key) {
            Ok((len, _)) if len != obj.bytes => Err(gone(format!(
                "has {len} bytes, not the {} staged",
                obj.bytes
            ))),
            Ok((_, etag)) if is_multipart_etag(&etag) && !etag.eq_ignore_ascii_case(&h.etag) => {
                Err(gone(format!(
                    "has ETag {etag}, not the upload's {}",
                    h.etag
                )))
            }
            Ok(_) => Ok(Published::Already),
            Err(e) if is_missing(&e) => Err(gone("does not exist".into())),
            Err(e) => Err(self.storage_err(&obj.rel, e)),
        }
    }

    /// Size, ETag and (if configured) read-back SHA-256 of a completed object.
    fn verify(
        &self,
        key: &str,
        bytes: u64,
        sha256: &str,
        expected_etag: Option<&str>,
    ) -> Result<(), ObjectError> {
        let mode = self.inner.client.cfg.verify;
        if mode == VerifyMode::None {
            return Ok(());
        }
        let mismatch = |what: String| ObjectError::Integrity {
            url: self.inner.client.url(key),
            what,
        };
        let (len, etag) = self.head(key)?;
        if len != bytes {
            return Err(mismatch(format!(
                "size {len} on the server, {bytes} written"
            )));
        }
        if let Some(want) = expected_etag {
            let comparable = (is_multipart_etag(want) && is_multipart_etag(&etag))
                || (is_md5_etag(want) && is_md5_etag(&etag));
            if comparable && !etag.eq_ignore_ascii_case(want) {
                return Err(mismatch(format!(
                    "ETag {etag} on the server, {want} computed"
                )));
            }
            if !comparable {
                tracing::debug!(key, etag = %etag, "server ETag not comparable; size checked");
            }
        }
        if mode == VerifyMode::ReadBack {
            let mut h = Sha256::new();
            let n = self.inner.client.get_stream(key, |chunk| match chunk {
                Some(c) => h.update(c),
                None => h = Sha256::new(),
            })?;
            let got = hex::encode(h.finalize());
            if n != bytes || got != sha256 {
                return Err(mismatch(format!(
                    "read back {n} bytes with SHA-256 {got}, wrote {bytes} with {sha256}"
                )));
            }
        }
        Ok(())
    }
}

impl OutputStore for S3Output {
    fn stage(&self, rel: &str) -> Result<Box<dyn StagedWriter>, StorageError> {
        Ok(Box::new(S3Writer::new(self.inner.clone(), rel)))
    }

    /// Each attempt has an upload of its own: the key is the final one, the upload id is
    /// the attempt's, and only a completed upload becomes visible.
    fn stage_attempt(
        &self,
        rel: &str,
        _attempt: &str,
    ) -> Result<Box<dyn StagedWriter>, StorageError> {
        self.stage(rel)
    }

    /// AbortMultipartUpload of the object's upload.
    fn discard(&self, staged: &StagedObject) -> Result<(), StorageError> {
        let h = self.handle(staged)?;
        self.inner
            .try_abort(&h.key, &h.upload_id)
            .map_err(|e| self.storage_err(&staged.rel, e))?;
        self.inner.open.lock().remove(&h.upload_id);
        if let Some(m) = &h.marker {
            self.inner.forget_marker(m);
        }
        Ok(())
    }

    /// ListParts of the object's upload: it must still be open with the parts its handle
    /// lists (a recovering AM adopting what a dead attempt's worker staged).
    fn check_staged(&self, staged: &StagedObject) -> Result<(), String> {
        let h = self.handle(staged).map_err(|e| e.to_string())?;
        let what = || {
            format!(
                "multipart upload {} of {}",
                h.upload_id,
                self.url(&staged.rel)
            )
        };
        let want: Vec<u32> = h.parts.iter().map(|p| p.number).collect();
        match self.inner.listed_parts(&h) {
            Ok(Some(got)) if got == want => Ok(()),
            // s3s-fs lists a gone upload as one without parts.
            Ok(Some(got)) if got.is_empty() => Err(format!("{} is gone", what())),
            Ok(Some(got)) => Err(format!(
                "{} holds parts {got:?}, not the {want:?} uploaded",
                what()
            )),
            Ok(None) => Err(format!("{} is gone", what())),
            Err(e) => Err(e.to_string()),
        }
    }

    /// CompleteMultipartUpload of the object's upload, then its check. Not tracked as open
    /// here: once a commit is decided, its uploads belong to the commit record
    /// (`crate::commit`), and a commit cut short is finished, never aborted.
    fn publish(&self, obj: &StagedObject) -> Result<Published, StorageError> {
        let h = self.handle(obj)?;
        let done = self.complete(obj, &h)?;
        // The upload has ended: its marker goes (by whichever process publishes it, the
        // run's own or one finishing its commit).
        if let Some(m) = &h.marker {
            self.inner.forget_marker(m);
        }
        tracing::debug!(key = %h.key, etag = %h.etag, bytes = obj.bytes, ?done, "published");
        Ok(done)
    }

    /// Aborts the uploads of this store's run that were not completed: those this process
    /// opened, then those the run's markers name (opened by its processes that died), and
    /// deletes their markers. Only this run's: the markers of any other run, running or
    /// not, are not even listed.
    fn abort(&self) -> Result<(), StorageError> {
        let open: Vec<(String, String)> = self
            .inner
            .open
            .lock()
            .iter()
            .map(|(id, key)| (id.clone(), key.clone()))
            .collect();
        let mut failed = Vec::new();
        for (id, key) in open {
            match self.inner.try_abort(&key, &id) {
                Ok(()) => {
                    self.inner.open.lock().remove(&id);
                    self.inner.forget_marker(&self.inner.marker_key(&id));
                }
                Err(e) => failed.push(format!("{key}: {e}")),
            }
        }
        let swept = self.sweep_markers(&mut failed);
        if swept > 0 {
            tracing::info!(
                run = %self.inner.run_id,
                uploads = swept,
                "aborted the multipart uploads the run's dead processes left open"
            );
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(StorageError::Backend {
                location: self.url(""),
                message: format!(
                    "could not abort {} multipart upload(s): {}",
                    failed.len(),
                    failed.join("; ")
                ),
            })
        }
    }

    /// An upload of this process still open, or a marker of the run's (a denied listing
    /// tells nothing: false).
    fn staged_left(&self) -> Result<bool, StorageError> {
        if !self.inner.open.lock().is_empty() {
            return Ok(true);
        }
        let dir = marker::run_dir(&self.inner.prefix, &self.inner.run_id);
        match marker::list(&self.inner.client, &dir) {
            Ok(keys) => Ok(!keys.is_empty()),
            Err(e) if is_denied(&e) => Ok(false),
            Err(e) => Err(e.into_storage(&self.inner.client.url(&dir))),
        }
    }

    fn put_atomic(&self, rel: &str, bytes: &[u8]) -> Result<(), StorageError> {
        let key = self.inner.key(rel);
        let (md5, sha) = digests(bytes);
        let md5_hex = hex::encode(md5);
        let mut call = Call::new("PutObject", "PUT", &key);
        call.body = bytes;
        call.body_sha256 = Some(sha.clone());
        call.content_md5 = self.inner.client.content_md5(&md5);
        let reply = self
            .inner
            .client
            .execute_with(&call, |reply| {
                let etag = unquote(reply.header("etag").unwrap_or(""));
                if is_md5_etag(etag) && !etag.eq_ignore_ascii_case(&md5_hex) {
                    return Err(Fault::Status {
                        status: reply.status,
                        code: "BadDigest".into(),
                        message: format!("server stored md5 {etag}, sent {md5_hex}"),
                    });
                }
                Ok(())
            })
            .map_err(|e| self.storage_err(rel, e))?;
        drop(reply);
        self.verify(&key, bytes.len() as u64, &sha, Some(&md5_hex))
            .map_err(|e| self.storage_err(rel, e))
    }

    /// DeleteObject: S3 answers 204 for a missing key too; a NoSuchKey answer (some
    /// S3-compatible servers) counts as removed.
    fn remove(&self, rel: &str) -> Result<(), StorageError> {
        let key = self.inner.key(rel);
        match self
            .inner
            .client
            .execute(&Call::new("DeleteObject", "DELETE", &key))
        {
            Ok(_) => Ok(()),
            Err(ObjectError::Request { code, .. }) if code == "NoSuchKey" => Ok(()),
            Err(e) => Err(self.storage_err(rel, e)),
        }
    }

    fn url(&self, rel: &str) -> String {
        self.inner.client.url(&self.inner.key(rel))
    }

    /// GetObject; a 404 (NoSuchKey) is `None`.
    fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let key = self.inner.key(rel);
        let mut bytes = Vec::new();
        match self.inner.client.get_stream(&key, |chunk| match chunk {
            Some(c) => bytes.extend_from_slice(c),
            None => bytes.clear(),
        }) {
            Ok(_) => Ok(Some(bytes)),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(self.storage_err(rel, e)),
        }
    }

    /// HeadObject; a 404 is `None`.
    fn size(&self, rel: &str) -> Result<Option<u64>, StorageError> {
        match self.head(&self.inner.key(rel)) {
            Ok((len, _)) => Ok(Some(len)),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(self.storage_err(rel, e)),
        }
    }
}

/// Whether S3 answered AccessDenied.
fn is_denied(e: &ObjectError) -> bool {
    matches!(e, ObjectError::Request { code, .. } if code == "AccessDenied")
}

/// Whether S3 answered that the key (not the bucket) does not exist: `NoSuchKey`, or a 404
/// without a body (HEAD).
fn is_missing(e: &ObjectError) -> bool {
    matches!(e, ObjectError::Request { code, .. } if code == "NoSuchKey" || code == "NotFound")
}
