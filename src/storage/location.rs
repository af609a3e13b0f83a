//! Locations: the URLs of the job file (`file:///…`, a plain path, `hdfs://nn:8020/…`,
//! `hdfs:///…`, `viewfs://cluster/…`, `s3://bucket/prefix`) parsed once into a typed value. Hadoop's `s3a://` is an
//! alias of `s3://`: both parse to the same [`Location::Object`] with scheme `s3`.

use std::fmt;
use std::path::{Path, PathBuf};

/// The object-store schemes a location may have.
const OBJECT_SCHEMES: &[&str] = &["s3", "oss", "cos", "obs", "upyun"];
/// Other spellings of a scheme: `(alias, scheme)`. Hadoop's S3A connector writes `s3a://`.
const SCHEME_ALIASES: &[(&str, &str)] = &[("s3a", "s3")];

/// Where a tree of files lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Location {
    /// A local directory or file. Plain paths in the job file are relative to its directory.
    Local(PathBuf),
    /// HDFS; `authority` is `host:port` or a name service, `None` means `fs.defaultFS`.
    Hdfs {
        authority: Option<String>,
        path: String,
    },
    /// A path in a federated cluster's view (`viewfs://<table>/path`): the mount table of
    /// the Hadoop configuration says which NameNode serves it
    /// ([`crate::storage::hdfs::viewfs`]); `table` `None` means `viewfs:///`.
    ViewFs { table: Option<String>, path: String },
    /// An object store (`s3://`, `oss://`, …): bucket and key prefix.
    Object {
        scheme: String,
        bucket: String,
        prefix: String,
    },
}

/// A location that cannot be parsed.
#[derive(Debug, thiserror::Error)]
#[error("invalid location '{url}': {reason}")]
pub struct LocationError {
    pub url: String,
    pub reason: String,
}

impl Location {
    /// Parses `url`; a path without a scheme is taken relative to `base_dir`.
    pub fn parse(url: &str, base_dir: &Path) -> Result<Location, LocationError> {
        let err = |reason: &str| LocationError {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        if let Some(rest) = url.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(err("file:// URLs must be absolute (file:///path)"));
            }
            return Ok(Location::Local(PathBuf::from(rest)));
        }
        if let Some(rest) = url.strip_prefix("hdfs://") {
            let (authority, path) = split_authority(rest);
            return Ok(Location::Hdfs { authority, path });
        }
        if let Some(rest) = url.strip_prefix("viewfs://") {
            let (table, path) = split_authority(rest);
            return Ok(Location::ViewFs { table, path });
        }
        if let Some((scheme, rest)) = url.split_once("://") {
            let scheme = SCHEME_ALIASES
                .iter()
                .find(|(alias, _)| *alias == scheme)
                .map_or(scheme, |(_, s)| *s);
            if !OBJECT_SCHEMES.contains(&scheme) {
                return Err(err(
                    "unsupported scheme (file, hdfs, viewfs, s3 or s3a, oss, cos, obs, upyun)",
                ));
            }
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(err("missing bucket"));
            }
            return Ok(Location::Object {
                scheme: scheme.to_string(),
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
            });
        }
        if url.is_empty() {
            return Err(err("empty"));
        }
        Ok(Location::Local(base_dir.join(url)))
    }

    /// The location of `rel` (a `/`-separated relative path) below this one.
    pub fn join(&self, rel: &str) -> Location {
        let rel = rel.trim_start_matches('/');
        match self {
            Location::Local(p) => Location::Local(p.join(rel)),
            Location::Hdfs { authority, path } => Location::Hdfs {
                authority: authority.clone(),
                path: format!("{}/{}", path.trim_end_matches('/'), rel),
            },
            Location::ViewFs { table, path } => Location::ViewFs {
                table: table.clone(),
                path: format!("{}/{}", path.trim_end_matches('/'), rel),
            },
            Location::Object {
                scheme,
                bucket,
                prefix,
            } => Location::Object {
                scheme: scheme.clone(),
                bucket: bucket.clone(),
                prefix: if prefix.is_empty() {
                    rel.to_string()
                } else {
                    format!("{prefix}/{rel}")
                },
            },
        }
    }

    /// The path part, `/`-separated (local paths as given).
    pub fn path_str(&self) -> String {
        match self {
            Location::Local(p) => p.to_string_lossy().into_owned(),
            Location::Hdfs { path, .. } | Location::ViewFs { path, .. } => path.clone(),
            Location::Object { prefix, .. } => prefix.clone(),
        }
    }
}

/// `authority/path` (after `scheme://`) as (authority, absolute path); `None` for `///`.
fn split_authority(rest: &str) -> (Option<String>, String) {
    match rest.find('/') {
        Some(0) => (None, rest.to_string()),
        Some(i) => (Some(rest[..i].to_string()), rest[i..].to_string()),
        None => (Some(rest.to_string()), "/".to_string()),
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(p) => {
                let abs = if p.is_absolute() {
                    p.clone()
                } else {
                    std::env::current_dir().unwrap_or_default().join(p)
                };
                write!(f, "file://{}", abs.display())
            }
            Location::Hdfs { authority, path } => {
                write!(f, "hdfs://{}{}", authority.as_deref().unwrap_or(""), path)
            }
            Location::ViewFs { table, path } => {
                write!(f, "viewfs://{}{}", table.as_deref().unwrap_or(""), path)
            }
            Location::Object {
                scheme,
                bucket,
                prefix,
            } => write!(f, "{scheme}://{bucket}/{prefix}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_schemes_and_relative_paths() {
        let base = Path::new("/jobs");
        assert_eq!(
            Location::parse("file:///data/x", base).unwrap(),
            Location::Local("/data/x".into())
        );
        assert_eq!(
            Location::parse("shards/x", base).unwrap(),
            Location::Local("/jobs/shards/x".into())
        );
        assert_eq!(
            Location::parse("hdfs://nn:8020/logs", base).unwrap(),
            Location::Hdfs {
                authority: Some("nn:8020".into()),
                path: "/logs".into()
            }
        );
        assert_eq!(
            Location::parse("hdfs:///logs", base).unwrap(),
            Location::Hdfs {
                authority: None,
                path: "/logs".into()
            }
        );
        let s3 = Location::parse("s3://bkt/fused/", base).unwrap();
        assert_eq!(s3.join("a/b.gz").to_string(), "s3://bkt/fused/a/b.gz");
        assert_eq!(
            Location::parse("s3a://bkt/fused", base).unwrap(),
            s3,
            "s3a:// is an alias of s3://"
        );
        assert_eq!(
            Location::parse("s3a://bkt/fused", base)
                .unwrap()
                .to_string(),
            "s3://bkt/fused"
        );
        let view = Location::parse("viewfs://fed/logs/", base).unwrap();
        assert_eq!(
            view,
            Location::ViewFs {
                table: Some("fed".into()),
                path: "/logs/".into()
            }
        );
        assert_eq!(view.join("a.gz").to_string(), "viewfs://fed/logs/a.gz");
        assert_eq!(
            Location::parse("viewfs:///logs", base).unwrap().to_string(),
            "viewfs:///logs"
        );
        assert!(Location::parse("ftp://x/y", base).is_err());
        assert!(Location::parse("file://relative", base).is_err());
    }
}
