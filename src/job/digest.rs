//! The digest of the job settings that change output bytes: a re-run whose digest differs
//! from the previous run's recomputes every partition (incremental re-fusion).
//!
//! The digest covers the whole job file (after `--set`) except the keys listed in
//! [`NOT_IN_DIGEST`], so that a setting added later counts by default: forgetting to list
//! one costs a recomputation, never a stale file. What the digest leaves out either cannot
//! change a byte (where the files go, the done-flag, object-store options, scratch), or is
//! checked apart (name and window name the manifest a re-run starts from).

use sha2::{Digest, Sha256};

use super::JobFile;

/// Job keys (dotted paths) that never change the bytes of a partition.
pub const NOT_IN_DIGEST: &[&str] = &[
    "name",
    "window.start",
    "window.end",
    "output.root",
    "output.store",
    "output.success_marker",
    "scratch",
];

/// Hex SHA-256 of the job file without [`NOT_IN_DIGEST`], keys sorted, unset keys left out.
/// A key set to its default digests differently from an unset one: that only costs a
/// recomputation.
pub fn settings_digest(file: &JobFile) -> String {
    let mut value = serde_json::to_value(file).unwrap_or(serde_json::Value::Null);
    for key in NOT_IN_DIGEST {
        remove_path(&mut value, key);
    }
    strip_nulls(&mut value);
    let text = serde_json::to_string(&value).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn remove_path(value: &mut serde_json::Value, path: &str) {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let Some(map) = value.as_object_mut() else {
        return;
    };
    match rest {
        None => {
            map.remove(head);
        }
        Some(rest) => {
            if let Some(child) = map.get_mut(head) {
                remove_path(child, rest);
            }
        }
    }
}

/// Removes `null` members (an `Option` left unset), recursively.
fn strip_nulls(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const JOB: &str = r#"
name = "j"
[window]
start = "2026-11-05T00:00:00Z"
end = "2026-11-05T01:00:00Z"
[[source]]
name = "up"
format = "upyun"
shards = "/in/up/%Y%m%d/%H%M/*.gz"
[[source]]
name = "qn"
format = "qiniu"
shards = "/in/qn/%Y%m%d%H/*.gz"
[output]
root = "/out"
path = "%Y/%m/%d/%H/{domain}.log.gz"
"#;

    fn digest(sets: &[&str]) -> String {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        settings_digest(&JobFile::from_toml(JOB, Path::new("j.toml"), &sets).unwrap())
    }

    #[test]
    fn settings_that_change_bytes_change_the_digest() {
        let base = digest(&[]);
        assert_eq!(base, digest(&[]), "deterministic");
        assert_eq!(base.len(), 64);
        for set in [
            "output.format=raw",
            "output.timezone=+08:00",
            "output.gzip_level=9",
            "output.path=%Y/%m/%d/{domain}.log.gz",
            "source.0.format=qiniu",
            "source.1.name=qiniu",
            "source.0.timezone=+08:00",
            "source.0.shards=/in/up2/%Y%m%d/%H%M/*.gz",
            "window.slack=10m",
            "on_corrupt_shard=skip",
            "on_duplicate_shard=keep",
        ] {
            assert_ne!(digest(&[set]), base, "{set}");
        }
    }

    #[test]
    fn settings_that_do_not_change_bytes_keep_it() {
        let base = digest(&[]);
        for set in [
            "name=other",
            "window.start=2026-11-04T00:00:00Z",
            "window.end=2026-11-06T00:00:00Z",
            "output.root=/elsewhere",
            "output.success_marker=false",
            "scratch=/tmp/s",
        ] {
            assert_eq!(digest(&[set]), base, "{set}");
        }
    }
}
