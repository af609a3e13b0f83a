//! Multipart uploads: the open uploads of one output root (created, aborted, completed here),
//! and the staged writer: the reducer's gzip stream cut into parts of `part_size` bytes and
//! uploaded as one S3 multipart upload, whose completion is left to `commit`.
//!
//! Memory: the part being filled plus at most `concurrency` parts in flight, each held
//! until its UploadPart succeeded (a retry re-sends exactly those bytes). Buffers are
//! reused. Parts are numbered in write order; with `sequential` (concurrency 1) part
//! `n + 1` is not sent before part `n` succeeded.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::sync::mpsc;
use std::sync::Arc;

use md5::{Digest as _, Md5};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::client::{digests, xml_escape, xml_tag, Call, Fault, S3Client};
use super::config::MAX_PARTS;
use super::marker::{self, Marker};
use super::ObjectError;
use crate::storage::{StagedObject, StagedWriter, StorageError};

/// One uploaded part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartDone {
    #[serde(rename = "n")]
    pub number: u32,
    /// The ETag the server answered, as sent back in CompleteMultipartUpload.
    pub etag: String,
    /// Hex MD5 of the part's bytes, computed here.
    pub md5: String,
}

/// What `commit` needs of a staged object (serialized into `StagedObject::handle`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handle {
    pub key: String,
    pub upload_id: String,
    pub parts: Vec<PartDone>,
    /// The ETag S3 gives the completed object: md5 of the parts' md5s, `-N`.
    pub etag: String,
    /// The key of the upload's [`marker`], which whoever ends the upload deletes (absent
    /// in handles of builds before markers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker: Option<String>,
}

/// What CompleteMultipartUpload of a staged upload found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// Completed now: the object is visible under its key.
    Completed,
    /// S3 no longer knows the upload id (`NoSuchUpload`).
    Gone,
}

/// The multipart uploads of one output root opened for one run, shared by the store and
/// its writers' part threads.
pub struct Uploads {
    pub client: S3Client,
    pub prefix: String,
    /// The run the uploads are opened for: their [`marker`]s live under its staging area.
    pub run_id: String,
    /// Uploads created here and neither completed nor aborted: upload id → key.
    pub(super) open: Mutex<HashMap<String, String>>,
}

impl Uploads {
    pub fn new(client: S3Client, prefix: &str, run_id: &str) -> Uploads {
        Uploads {
            client,
            prefix: prefix.trim_matches('/').to_string(),
            run_id: run_id.to_string(),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The key of the marker of this run's upload `upload_id`.
    pub fn marker_key(&self, upload_id: &str) -> String {
        marker::marker_key(&self.prefix, &self.run_id, upload_id)
    }

    /// The object key of `rel`.
    pub fn key(&self, rel: &str) -> String {
        let rel = rel.trim_start_matches('/');
        if self.prefix.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.prefix)
        }
    }

    /// CreateMultipartUpload, then the upload's [`marker`] (before any part: see there for
    /// the window this leaves); the upload is tracked until completed or aborted. When the
    /// marker cannot be written the upload is aborted: one nobody could find after a crash
    /// is not started.
    pub fn create_upload(&self, key: &str) -> Result<String, ObjectError> {
        let call = Call::new("CreateMultipartUpload", "POST", key).query("uploads", "");
        let reply = self.client.execute(&call)?;
        let text = String::from_utf8_lossy(&reply.body);
        let id = xml_tag(&text, "UploadId")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ObjectError::Internal {
                url: self.client.url(key),
                what: "CreateMultipartUpload answered without an UploadId".into(),
            })?;
        self.open.lock().insert(id.clone(), key.to_string());
        let m = Marker {
            key: key.to_string(),
            upload_id: id.clone(),
        };
        let marker_key = self.marker_key(&id);
        if let Err(e) = marker::put(&self.client, &marker_key, &m) {
            // The PutObject may have gone through with its answer lost: the marker goes too.
            self.abort_upload(key, &id, Some(&marker_key));
            return Err(e);
        }
        tracing::debug!(key, upload_id = %id, "multipart upload created");
        Ok(id)
    }

    /// AbortMultipartUpload, best effort (logged); an upload already gone is fine. Its
    /// marker (at `marker_key`) goes once the upload has.
    pub fn abort_upload(&self, key: &str, upload_id: &str, marker_key: Option<&str>) {
        match self.try_abort(key, upload_id) {
            Ok(()) => {
                self.open.lock().remove(upload_id);
                if let Some(m) = marker_key {
                    self.forget_marker(m);
                }
            }
            Err(e) => tracing::warn!(key, error = %e, "could not abort a multipart upload"),
        }
    }

    /// Deletes the marker of an upload that has ended, best effort (logged): a marker left
    /// only makes a later clean-up try to abort an upload S3 no longer knows.
    pub fn forget_marker(&self, marker_key: &str) {
        if let Err(e) = marker::delete(&self.client, marker_key) {
            tracing::warn!(marker = marker_key, error = %e, "could not delete an upload marker");
        }
    }

    pub(super) fn try_abort(&self, key: &str, upload_id: &str) -> Result<(), ObjectError> {
        let call = Call::new("AbortMultipartUpload", "DELETE", key).query("uploadId", upload_id);
        match self.client.execute(&call) {
            Ok(_) => Ok(()),
            Err(ObjectError::Request { code, .. }) if code == "NoSuchUpload" => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// CompleteMultipartUpload of a staged object; the upload is no longer tracked.
    /// `Completion::Gone` when S3 no longer knows the upload (completed before: by a commit
    /// cut short, or by the first try of a retried request; or aborted): the caller checks
    /// the object under the key.
    pub fn complete(&self, h: &Handle) -> Result<Completion, ObjectError> {
        let mut xml = String::from("<CompleteMultipartUpload>");
        for p in &h.parts {
            xml.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
                p.number,
                xml_escape(&p.etag)
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let mut call =
            Call::new("CompleteMultipartUpload", "POST", &h.key).query("uploadId", &h.upload_id);
        call.body = xml.as_bytes();
        let (md5, sha) = digests(call.body);
        call.body_sha256 = Some(sha);
        call.content_md5 = self.client.content_md5(&md5);
        let result = self.client.execute_with(&call, |reply| {
            // S3 may answer 200 and report the failure in the body.
            let text = String::from_utf8_lossy(&reply.body);
            if text.contains("<Error>") {
                return Err(Fault::Status {
                    status: reply.status,
                    code: xml_tag(&text, "Code").unwrap_or_else(|| "InternalError".into()),
                    message: xml_tag(&text, "Message").unwrap_or_default(),
                });
            }
            Ok(())
        });
        let done = match result {
            Ok(_) => Completion::Completed,
            Err(ObjectError::Request { code, .. }) if code == "NoSuchUpload" => Completion::Gone,
            Err(e) => return Err(e),
        };
        self.open.lock().remove(&h.upload_id);
        Ok(done)
    }

    /// The part numbers S3 holds for the open upload of `h` (ListParts, every page); `None`
    /// when S3 no longer knows the upload.
    pub fn listed_parts(&self, h: &Handle) -> Result<Option<Vec<u32>>, ObjectError> {
        let mut numbers = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut call = Call::new("ListParts", "GET", &h.key).query("uploadId", &h.upload_id);
            if let Some(m) = &after {
                call = call.query("part-number-marker", m);
            }
            let reply = match self.client.execute(&call) {
                Ok(r) => r,
                Err(ObjectError::Request { code, .. }) if code == "NoSuchUpload" => {
                    return Ok(None)
                }
                Err(e) => return Err(e),
            };
            let text = String::from_utf8_lossy(&reply.body);
            let (page, next) = parse_parts(&text);
            numbers.extend(page);
            match next {
                Some(m) if !m.is_empty() => after = Some(m),
                _ => break,
            }
        }
        numbers.sort_unstable();
        Ok(Some(numbers))
    }
}

/// The part numbers of one ListParts page, and the marker of the next page when truncated.
fn parse_parts(xml: &str) -> (Vec<u32>, Option<String>) {
    let numbers = super::client::xml_blocks(xml, "Part")
        .iter()
        .filter_map(|b| xml_tag(b, "PartNumber")?.trim().parse().ok())
        .collect();
    let truncated = xml_tag(xml, "IsTruncated").is_some_and(|v| v.trim() == "true");
    let next = truncated
        .then(|| xml_tag(xml, "NextPartNumberMarker"))
        .flatten();
    (numbers, next)
}

/// The multipart ETag of parts with these (hex) MD5s: md5 of their concatenated binary
/// digests, hex, then `-<number of parts>`.
pub fn multipart_etag<'a>(part_md5s: impl IntoIterator<Item = &'a str>) -> String {
    let mut h = Md5::new();
    let mut n = 0;
    for m in part_md5s {
        // Our own hex digests: decoding cannot fail; a bad one only spoils the comparison.
        h.update(hex::decode(m).unwrap_or_default());
        n += 1;
    }
    format!("{}-{n}", hex::encode(h.finalize()))
}

/// Whether `etag` (quotes stripped) is a plain hex MD5.
pub fn is_md5_etag(etag: &str) -> bool {
    etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `etag` has the multipart form `<32 hex>-<n>`.
pub fn is_multipart_etag(etag: &str) -> bool {
    match etag.split_once('-') {
        Some((h, n)) => is_md5_etag(h) && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

pub fn unquote(etag: &str) -> &str {
    etag.trim().trim_start_matches("W/").trim_matches('"')
}

struct PartResult {
    number: u32,
    result: Result<PartDone, ObjectError>,
    buf: Vec<u8>,
}

/// Writes one object as a deferred multipart upload.
pub struct S3Writer {
    inner: Arc<Uploads>,
    rel: String,
    key: String,
    part_size: usize,
    buf: Vec<u8>,
    spare: Vec<Vec<u8>>,
    upload_id: Option<String>,
    next_part: u32,
    in_flight: usize,
    tx: mpsc::Sender<PartResult>,
    rx: mpsc::Receiver<PartResult>,
    done: BTreeMap<u32, PartDone>,
    sha256: Sha256,
    bytes: u64,
    failed: Option<String>,
    finished: bool,
}

impl S3Writer {
    pub(super) fn new(inner: Arc<Uploads>, rel: &str) -> S3Writer {
        let (tx, rx) = mpsc::channel();
        let part_size = inner.client.cfg.part_size as usize;
        let key = inner.key(rel);
        S3Writer {
            inner,
            rel: rel.to_string(),
            key,
            part_size,
            buf: Vec::new(),
            spare: Vec::new(),
            upload_id: None,
            next_part: 1,
            in_flight: 0,
            tx,
            rx,
            done: BTreeMap::new(),
            sha256: Sha256::new(),
            bytes: 0,
            failed: None,
            finished: false,
        }
    }

    fn fail(&mut self, e: ObjectError) -> io::Error {
        let msg = e.to_string();
        self.failed = Some(msg.clone());
        io::Error::other(msg)
    }

    /// Waits for one part in flight and books its result.
    fn reap_one(&mut self) -> Result<(), ObjectError> {
        let r = self.rx.recv().map_err(|_| ObjectError::Internal {
            url: self.inner.client.url(&self.key),
            what: "part uploader vanished".into(),
        })?;
        self.in_flight -= 1;
        let mut buf = r.buf;
        buf.clear();
        self.spare.push(buf);
        let part = r.result?;
        self.done.insert(r.number, part);
        Ok(())
    }

    fn ensure_upload(&mut self) -> Result<String, ObjectError> {
        if let Some(id) = &self.upload_id {
            return Ok(id.clone());
        }
        let id = self.inner.create_upload(&self.key)?;
        self.upload_id = Some(id.clone());
        Ok(id)
    }

    /// Sends the current buffer as the next part (waiting for room first).
    fn dispatch(&mut self) -> Result<(), ObjectError> {
        let upload_id = self.ensure_upload()?;
        while self.in_flight >= self.inner.client.cfg.concurrency {
            self.reap_one()?;
        }
        let number = self.next_part;
        if number > MAX_PARTS {
            return Err(ObjectError::Config(format!(
                "{}: more than {MAX_PARTS} parts of {} bytes; raise output.store.part_size",
                self.inner.client.url(&self.key),
                self.part_size
            )));
        }
        self.next_part += 1;
        let fresh = self.spare.pop().unwrap_or_default();
        let data = std::mem::replace(&mut self.buf, fresh);
        let inner = self.inner.clone();
        let key = self.key.clone();
        let tx = self.tx.clone();
        self.in_flight += 1;
        std::thread::Builder::new()
            .name(format!("s3-part-{number}"))
            .spawn(move || {
                let result = upload_part(&inner, &key, &upload_id, number, &data);
                // The writer may be gone (dropped after a failure); nothing to tell then.
                let _ = tx.send(PartResult {
                    number,
                    result,
                    buf: data,
                });
            })
            .map_err(|e| {
                self.in_flight -= 1;
                ObjectError::Internal {
                    url: self.inner.client.url(&self.key),
                    what: format!("cannot start an upload thread: {e}"),
                }
            })?;
        Ok(())
    }

    fn drain(&mut self) -> Result<(), ObjectError> {
        let mut first_err = None;
        while self.in_flight > 0 {
            if let Err(e) = self.reap_one() {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn finish_inner(&mut self) -> Result<StagedObject, ObjectError> {
        if let Some(msg) = &self.failed {
            return Err(ObjectError::Internal {
                url: self.inner.client.url(&self.key),
                what: format!("an earlier part failed: {msg}"),
            });
        }
        // The last part may be short; an empty object is one empty part.
        if !self.buf.is_empty() || self.next_part == 1 {
            self.dispatch()?;
        }
        self.drain()?;
        let upload_id = self.ensure_upload()?;
        let parts: Vec<PartDone> = self.done.values().cloned().collect();
        let expected = (1..self.next_part).collect::<Vec<_>>();
        let got: Vec<u32> = parts.iter().map(|p| p.number).collect();
        if got != expected {
            return Err(ObjectError::Internal {
                url: self.inner.client.url(&self.key),
                what: format!("parts {got:?} uploaded, {expected:?} expected"),
            });
        }
        let etag = multipart_etag(parts.iter().map(|p| p.md5.as_str()));
        let handle = Handle {
            key: self.key.clone(),
            marker: Some(self.inner.marker_key(&upload_id)),
            upload_id,
            parts,
            etag,
        };
        let handle = serde_json::to_string(&handle).map_err(|e| ObjectError::Internal {
            url: self.inner.client.url(&self.key),
            what: format!("handle to JSON: {e}"),
        })?;
        let sha256 = hex::encode(std::mem::take(&mut self.sha256).finalize());
        tracing::debug!(key = %self.key, bytes = self.bytes, parts = self.next_part - 1, "staged");
        Ok(StagedObject {
            rel: self.rel.clone(),
            bytes: self.bytes,
            sha256,
            handle,
        })
    }
}

impl Write for S3Writer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if let Some(msg) = &self.failed {
            return Err(io::Error::other(msg.clone()));
        }
        if self.buf.capacity() == 0 {
            self.buf.reserve_exact(self.part_size);
        }
        let room = self.part_size - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        self.sha256.update(&data[..n]);
        self.bytes += n as u64;
        if self.buf.len() == self.part_size {
            if let Err(e) = self.dispatch() {
                return Err(self.fail(e));
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Parts go out when full; flushing a short part would make it a non-last part
        // smaller than S3's minimum.
        Ok(())
    }
}

impl StagedWriter for S3Writer {
    fn finish(mut self: Box<Self>) -> Result<StagedObject, StorageError> {
        match self.finish_inner() {
            Ok(obj) => {
                self.finished = true;
                Ok(obj)
            }
            Err(e) => Err(e.into_storage(&self.inner.client.url(&self.key))),
        }
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // Abandoned (the task failed): wait for parts in flight, then abort the upload so
        // neither a partial object nor an open upload remains.
        let _ = self.drain();
        if let Some(id) = self.upload_id.take() {
            let marker = self.inner.marker_key(&id);
            self.inner.abort_upload(&self.key, &id, Some(&marker));
        }
    }
}

/// Uploads one part (with retries); checks the answered ETag against the part's MD5.
fn upload_part(
    inner: &Uploads,
    key: &str,
    upload_id: &str,
    number: u32,
    data: &[u8],
) -> Result<PartDone, ObjectError> {
    let client = &inner.client;
    let (md5, sha) = digests(data);
    let md5_hex = hex::encode(md5);
    let mut call = Call::new("UploadPart", "PUT", key)
        .query("partNumber", &number.to_string())
        .query("uploadId", upload_id);
    call.body = data;
    call.body_sha256 = Some(sha);
    call.content_md5 = client.content_md5(&md5);
    let reply = client.execute_with(&call, |reply| {
        let etag = reply.header("etag").map(unquote).unwrap_or("");
        if etag.is_empty() {
            return Err(Fault::Status {
                status: reply.status,
                code: "MissingETag".into(),
                message: "UploadPart answered without an ETag".into(),
            });
        }
        // A plain-MD5 ETag must be this part's MD5 (servers with SSE-KMS answer other
        // forms; those are left to the whole-object check).
        if is_md5_etag(etag) && !etag.eq_ignore_ascii_case(&md5_hex) {
            return Err(Fault::Status {
                status: reply.status,
                code: "BadDigest".into(),
                message: format!("part {number}: server stored md5 {etag}, sent {md5_hex}"),
            });
        }
        Ok(())
    })?;
    let etag = reply.header("etag").unwrap_or("").to_string();
    Ok(PartDone {
        number,
        etag,
        md5: md5_hex,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md5_hex(data: &[u8]) -> String {
        hex::encode(Md5::digest(data))
    }

    #[test]
    fn multipart_etag_is_md5_of_part_md5s() {
        // Two parts: md5(md5(a) || md5(b)) + "-2", computed independently here.
        let a = vec![b'a'; 5 << 20];
        let b = b"tail".to_vec();
        let mut cat = Vec::new();
        cat.extend_from_slice(&Md5::digest(&a));
        cat.extend_from_slice(&Md5::digest(&b));
        let want = format!("{}-2", md5_hex(&cat));
        assert_eq!(
            multipart_etag([md5_hex(&a).as_str(), md5_hex(&b).as_str()]),
            want
        );
        // One part: still the md5 of the md5, not the object's md5.
        let one = multipart_etag([md5_hex(b"x").as_str()]);
        assert!(one.ends_with("-1"));
        assert_ne!(&one[..32], md5_hex(b"x"));
        // A known value: the empty object as one empty part.
        assert_eq!(
            multipart_etag(["d41d8cd98f00b204e9800998ecf8427e"]),
            format!(
                "{}-1",
                md5_hex(&hex::decode("d41d8cd98f00b204e9800998ecf8427e").unwrap())
            )
        );
    }

    #[test]
    fn list_parts_pages() {
        let xml = "<ListPartsResult><UploadId>u</UploadId><IsTruncated>true</IsTruncated>\
            <NextPartNumberMarker>2</NextPartNumberMarker>\
            <Part><PartNumber>1</PartNumber><Size>5</Size></Part>\
            <Part><PartNumber> 2 </PartNumber></Part></ListPartsResult>";
        assert_eq!(parse_parts(xml), (vec![1, 2], Some("2".to_string())));
        // s3s-fs answers a gone upload with no parts and no truncation.
        let empty = "<ListPartsResult><UploadId>u</UploadId></ListPartsResult>";
        assert_eq!(parse_parts(empty), (vec![], None));
    }

    #[test]
    fn handles_of_builds_before_markers_still_decode() {
        let old = r#"{"key":"p/a.gz","upload_id":"u","parts":[{"n":1,"etag":"e","md5":"m"}],"etag":"x-1"}"#;
        let h: Handle = serde_json::from_str(old).unwrap();
        assert_eq!(h.marker, None);
        let with = Handle {
            marker: Some("p/_temporary/r/_uploads/u".into()),
            ..h
        };
        let back: Handle = serde_json::from_str(&serde_json::to_string(&with).unwrap()).unwrap();
        assert_eq!(back, with);
    }

    #[test]
    fn etag_forms() {
        assert!(is_md5_etag("d41d8cd98f00b204e9800998ecf8427e"));
        assert!(!is_md5_etag("d41d8cd98f00b204e9800998ecf8427e-2"));
        assert!(is_multipart_etag("d41d8cd98f00b204e9800998ecf8427e-12"));
        assert!(!is_multipart_etag("d41d8cd98f00b204e9800998ecf8427e-"));
        assert!(!is_multipart_etag("xyz-1"));
        assert_eq!(unquote("\"abc-2\""), "abc-2");
        assert_eq!(unquote("W/\"abc\""), "abc");
    }
}
