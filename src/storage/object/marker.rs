//! Markers of open multipart uploads: what lets a later process abort the uploads of a run
//! whose processes died (a worker SIGKILLed, an AM killed, `yarn application -kill`).
//!
//! S3 keeps an upload nobody completes or aborts open (and billed) forever, and nothing in
//! the upload says which run opened it. So the process that opens one writes, right after
//! CreateMultipartUpload answered and before the first UploadPart, a small object
//! `<prefix>/_temporary/<run>/_uploads/<upload id>` holding the upload's key and id (JSON);
//! whoever ends the upload (completes, aborts or discards it) deletes the marker after. The
//! clean-up of a run ([`crate::storage::OutputStore::abort`] of the store opened for it: the
//! run's own end, the AM's SIGTERM handler, `filex submit` after a kill and before a re-run
//! of the window) lists the run's markers, aborts each upload (one S3 no longer knows is
//! gone already) and deletes the marker.
//!
//! The marker comes after CreateMultipartUpload because its name is the upload id, which
//! only the answer gives; a process killed in that one PutObject round trip leaves an open
//! upload without a marker, but one holding no part (no bytes) — the window the bucket's
//! `AbortIncompleteMultipartUpload` lifecycle rule covers. ListMultipartUploads cannot
//! close that window either: it lists the uploads of every application writing under the
//! prefix, a concurrently running one's included, and nothing in its answer (key, id,
//! initiator: the same credentials) tells whose an upload is, so aborting from it could
//! destroy a live run's output.
//!
//! A marker belongs to its run: cleaning up run A never lists run B's. An upload a decided
//! commit publishes keeps its marker until the commit's step completes it (a commit cut
//! short is rolled forward, never aborted, and the clean-up of a run whose commit is
//! unfinished keeps its staging: `crate::application::cleanup`, `crate::commit`).

use serde::{Deserialize, Serialize};

use super::client::{digests, xml_blocks, xml_tag, Call, S3Client};
use super::ObjectError;
use crate::storage::local::STAGING_DIR;

/// The directory of a run's staging area holding its upload markers.
pub const UPLOADS_DIR: &str = "_uploads";

/// What a marker holds: enough to abort the upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Marker {
    /// The object key the upload writes.
    pub key: String,
    pub upload_id: String,
}

/// Why a marker's bytes are not a marker.
#[derive(Debug, thiserror::Error)]
#[error("{url} is not an upload marker: {what}")]
pub struct MarkerError {
    pub url: String,
    pub what: String,
}

impl Marker {
    pub fn encode(&self) -> Vec<u8> {
        // Two strings: serializing cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads the marker stored at `url`; it must name the upload its name says.
    pub fn decode(bytes: &[u8], url: &str, name: &str) -> Result<Marker, MarkerError> {
        let bad = |what: String| MarkerError {
            url: url.to_string(),
            what,
        };
        let m: Marker = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if m.key.is_empty() || m.upload_id.is_empty() {
            return Err(bad("empty key or upload id".into()));
        }
        if name_of(&m.upload_id) != name {
            return Err(bad(format!(
                "it names upload {}, its name is {name}",
                m.upload_id
            )));
        }
        Ok(m)
    }
}

/// The key prefix of run `run_id`'s markers under the output prefix `prefix` (no slashes
/// around it), ending in `/`.
pub fn run_dir(prefix: &str, run_id: &str) -> String {
    let rel = format!("{STAGING_DIR}/{run_id}/{UPLOADS_DIR}/");
    if prefix.is_empty() {
        rel
    } else {
        format!("{prefix}/{rel}")
    }
}

/// The key of the marker of upload `upload_id` of run `run_id`.
pub fn marker_key(prefix: &str, run_id: &str, upload_id: &str) -> String {
    format!("{}{}", run_dir(prefix, run_id), name_of(upload_id))
}

/// A marker's name: the upload id when it is made of characters safe in a key's last
/// segment (AWS's and s3s-fs's are), else `x` and its hex.
pub fn name_of(upload_id: &str) -> String {
    let safe = !upload_id.is_empty()
        && !upload_id.starts_with('.')
        && upload_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if safe && !upload_id.starts_with('x') {
        upload_id.to_string()
    } else {
        format!("x{}", hex::encode(upload_id))
    }
}

/// PutObject of the marker at `key` (one request, atomic by itself; no read-back: a
/// marker that went missing only loses its clean-up).
pub fn put(client: &S3Client, key: &str, marker: &Marker) -> Result<(), ObjectError> {
    let body = marker.encode();
    let (md5, sha) = digests(&body);
    let mut call = Call::new("PutObject", "PUT", key);
    call.body = &body;
    call.body_sha256 = Some(sha);
    call.content_md5 = client.content_md5(&md5);
    client.execute(&call).map(drop)
}

/// DeleteObject of the marker at `key`; one already gone is fine.
pub fn delete(client: &S3Client, key: &str) -> Result<(), ObjectError> {
    match client.execute(&Call::new("DeleteObject", "DELETE", key)) {
        Ok(_) => Ok(()),
        Err(ObjectError::Request { code, .. }) if code == "NoSuchKey" || code == "NotFound" => {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The markers' keys below `dir` (ListObjectsV2, every page).
pub fn list(client: &S3Client, dir: &str) -> Result<Vec<String>, ObjectError> {
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut call = Call::new("ListObjectsV2", "GET", "")
            .query("list-type", "2")
            .query("prefix", dir);
        if let Some(t) = &token {
            call = call.query("continuation-token", t);
        }
        let reply = client.execute(&call)?;
        let page = parse_listing(&String::from_utf8_lossy(&reply.body));
        keys.extend(page.keys.into_iter().filter(|k| is_marker_of(dir, k)));
        match page.next {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(keys),
        }
    }
}

/// Whether `key` is a marker directly below `dir`.
fn is_marker_of(dir: &str, key: &str) -> bool {
    key.strip_prefix(dir)
        .is_some_and(|name| !name.is_empty() && !name.contains('/'))
}

/// The bytes of the marker at `key`; `None` when it is gone (deleted meanwhile by the
/// process that ended its upload).
pub fn read(client: &S3Client, key: &str) -> Result<Option<Vec<u8>>, ObjectError> {
    let mut bytes = Vec::new();
    match client.get_stream(key, |chunk| match chunk {
        Some(c) => bytes.extend_from_slice(c),
        None => bytes.clear(),
    }) {
        Ok(_) => Ok(Some(bytes)),
        Err(ObjectError::Request { code, .. }) if code == "NoSuchKey" || code == "NotFound" => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// One page of a ListObjectsV2 answer.
#[derive(Debug, Default, PartialEq, Eq)]
struct Listing {
    keys: Vec<String>,
    /// The continuation token of the next page, when the listing is truncated.
    next: Option<String>,
}

fn parse_listing(xml: &str) -> Listing {
    let keys = xml_blocks(xml, "Contents")
        .iter()
        .filter_map(|b| xml_tag(b, "Key"))
        .collect();
    let truncated = xml_tag(xml, "IsTruncated").is_some_and(|v| v.trim() == "true");
    Listing {
        keys,
        next: truncated
            .then(|| xml_tag(xml, "NextContinuationToken"))
            .flatten(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_live_under_the_runs_staging_area() {
        assert_eq!(run_dir("", "app_1"), "_temporary/app_1/_uploads/");
        assert_eq!(
            run_dir("out/p", "app_1"),
            "out/p/_temporary/app_1/_uploads/"
        );
        assert_eq!(
            marker_key("out", "r", "0b6c-4f1e_9.a"),
            "out/_temporary/r/_uploads/0b6c-4f1e_9.a"
        );
    }

    #[test]
    fn unsafe_upload_ids_are_named_by_their_hex() {
        assert_eq!(name_of("abc"), "abc");
        // A slash would make a sub-directory; a leading dot a hidden name; a leading x
        // could collide with a hex name.
        assert_eq!(name_of("a/b"), format!("x{}", hex::encode("a/b")));
        assert_eq!(name_of(".."), format!("x{}", hex::encode("..")));
        assert_eq!(name_of("x12"), format!("x{}", hex::encode("x12")));
        assert_eq!(name_of("a+b="), format!("x{}", hex::encode("a+b=")));
        assert_ne!(name_of("x12"), name_of("12"));
    }

    #[test]
    fn a_marker_round_trips_and_must_name_its_own_upload() {
        let m = Marker {
            key: "p/a/00.log.gz".into(),
            upload_id: "a/b".into(),
        };
        let name = name_of(&m.upload_id);
        assert_eq!(Marker::decode(&m.encode(), "s3://b/k", &name).unwrap(), m);
        let e = Marker::decode(&m.encode(), "s3://b/k", "other").unwrap_err();
        assert!(e.to_string().contains("s3://b/k"), "{e}");
        assert!(e.to_string().contains("names upload a/b"), "{e}");
        let e = Marker::decode(b"{\"key\":\"k\"}", "s3://b/k", "x").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("s3://b/k is not an upload marker"),
            "{e}"
        );
        let empty = Marker {
            key: String::new(),
            upload_id: "u".into(),
        };
        assert!(Marker::decode(&empty.encode(), "u", "u").is_err());
    }

    #[test]
    fn listings_are_parsed_with_their_continuation() {
        let xml = "<ListBucketResult><IsTruncated>true</IsTruncated>\
            <Contents><Key>p/_temporary/r/_uploads/u1</Key><Size>30</Size></Contents>\
            <Contents><Key>p/_temporary/r/_uploads/u&amp;2</Key></Contents>\
            <NextContinuationToken>tok/=</NextContinuationToken></ListBucketResult>";
        assert_eq!(
            parse_listing(xml),
            Listing {
                keys: vec![
                    "p/_temporary/r/_uploads/u1".into(),
                    "p/_temporary/r/_uploads/u&2".into()
                ],
                next: Some("tok/=".into()),
            }
        );
        // The last page: a token without IsTruncated true is not followed.
        let last = "<ListBucketResult><IsTruncated>false</IsTruncated>\
            <NextContinuationToken>t</NextContinuationToken></ListBucketResult>";
        assert_eq!(parse_listing(last), Listing::default());
    }

    #[test]
    fn only_names_directly_below_the_runs_directory_are_markers() {
        let dir = run_dir("p", "r");
        assert!(is_marker_of(&dir, &format!("{dir}u1")));
        assert!(!is_marker_of(&dir, &dir));
        assert!(!is_marker_of(&dir, &format!("{dir}sub/u1")));
        assert!(!is_marker_of(&dir, "p/_temporary/r2/_uploads/u1"));
    }
}
