//! `viewfs://` (Hadoop's client-side mount table, used on federated clusters): which
//! NameNode and path a view path stands for. Pure: the mount table comes from the Hadoop
//! configuration, as Hadoop's `ViewFileSystem` reads it:
//!
//! * `fs.viewfs.mounttable.<table>.link.<view path>` = `hdfs://<authority>/<path>`: the view
//!   path and everything below it live there (the longest matching link wins, matched whole
//!   path components at a time);
//! * `fs.viewfs.mounttable.<table>.linkFallback` = `hdfs://<authority>/<path>`: where paths
//!   below no link live; without it such paths do not exist.
//!
//! `viewfs://<table>/…` names the table; `viewfs:///…` means the table of `fs.defaultFS`
//! when that is `viewfs://<table>`, else the table called `default`, as in Hadoop.
//!
//! The directories above the links (the mount table's "internal" directories) exist only in
//! the view: listing one shows the links below it as subdirectories, beside whatever the
//! fallback holds there.

use std::collections::BTreeSet;

use yarn::config::FS_DEFAULT_FS;
use yarn::Config;

/// Prefix of every mount-table key.
pub const MOUNTTABLE_PREFIX: &str = "fs.viewfs.mounttable";
/// The table `viewfs:///` means when `fs.defaultFS` is not a `viewfs://` URL.
pub const DEFAULT_TABLE: &str = "default";

/// A view path that the mount table cannot serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewFsError {
    #[error(
        "no mount table '{table}' (set {MOUNTTABLE_PREFIX}.{table}.link.<path> = hdfs://… in \
         core-site.xml or with -D)"
    )]
    NoTable { table: String },
    #[error("{key} = {value:?}: a mount link must be an hdfs://<authority>/<path> URL")]
    BadLink { key: String, value: String },
    #[error(
        "no link of mount table '{table}' covers {path} and the table has no linkFallback \
         (links: {links})"
    )]
    NotMounted {
        table: String,
        path: String,
        links: String,
    },
}

/// Where a view path lives: the NameNode's authority and the path there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub authority: String,
    pub path: String,
}

/// One link of the table: a view path (no trailing slash; `/` only for the fallback) and
/// its target directory.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Link {
    view: String,
    target: Target,
}

/// The mount table of one view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountTable {
    table: String,
    /// Longest view path first.
    links: Vec<Link>,
    fallback: Option<Target>,
}

/// The table `viewfs://<authority>/` uses (`None`: as `viewfs:///`).
pub fn table_name(conf: &Config, authority: Option<&str>) -> String {
    if let Some(a) = authority.filter(|a| !a.is_empty()) {
        return a.to_string();
    }
    conf.get(FS_DEFAULT_FS)
        .and_then(|fs| {
            let rest = fs.strip_prefix("viewfs://")?;
            let table = rest.split('/').next().unwrap_or("");
            (!table.is_empty()).then(|| table.to_string())
        })
        .unwrap_or_else(|| DEFAULT_TABLE.to_string())
}

/// Whether `fs.defaultFS` is a `viewfs://` URL.
pub fn default_fs_is_view(conf: &Config) -> bool {
    conf.get(FS_DEFAULT_FS)
        .is_some_and(|fs| fs.starts_with("viewfs://"))
}

/// `/a/b` without trailing slashes, `/` for the root.
fn clean(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_string()
    } else if trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        format!("/{trimmed}")
    }
}

/// The part of `path` below `dir`, if `path` is `dir` or below it (whole components).
fn below<'a>(path: &'a str, dir: &str) -> Option<&'a str> {
    if dir == "/" {
        return Some(path.trim_start_matches('/'));
    }
    let rest = path.strip_prefix(dir)?;
    if rest.is_empty() {
        Some("")
    } else {
        rest.strip_prefix('/')
    }
}

fn join(dir: &str, rel: &str) -> String {
    if rel.is_empty() {
        dir.to_string()
    } else if dir == "/" {
        format!("/{rel}")
    } else {
        format!("{dir}/{rel}")
    }
}

fn parse_target(key: &str, value: &str) -> Result<Target, ViewFsError> {
    let bad = || ViewFsError::BadLink {
        key: key.to_string(),
        value: value.to_string(),
    };
    let rest = value.trim().strip_prefix("hdfs://").ok_or_else(bad)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(bad());
    }
    Ok(Target {
        authority: authority.to_string(),
        path: clean(path),
    })
}

impl MountTable {
    /// The table `table` of `conf`.
    pub fn of(conf: &Config, table: &str) -> Result<MountTable, ViewFsError> {
        let link_prefix = format!("{MOUNTTABLE_PREFIX}.{table}.link.");
        let fallback_key = format!("{MOUNTTABLE_PREFIX}.{table}.linkFallback");
        let mut links = Vec::new();
        let mut fallback = None;
        for (key, value) in conf.iter() {
            if let Some(view) = key.strip_prefix(&link_prefix) {
                links.push(Link {
                    view: clean(view),
                    target: parse_target(&key, &value)?,
                });
            } else if key == fallback_key {
                fallback = Some(parse_target(&key, &value)?);
            }
        }
        if links.is_empty() && fallback.is_none() {
            return Err(ViewFsError::NoTable {
                table: table.to_string(),
            });
        }
        links.sort_by(|a, b| {
            let depth = |l: &Link| l.view.matches('/').count();
            depth(b).cmp(&depth(a)).then_with(|| a.view.cmp(&b.view))
        });
        Ok(MountTable {
            table: table.to_string(),
            links,
            fallback,
        })
    }

    /// Every NameNode authority the view's links and fallback point at, sorted, once each
    /// (the NameNodes a job on the view may touch).
    pub fn authorities(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .links
            .iter()
            .map(|l| &l.target)
            .chain(self.fallback.as_ref())
            .map(|t| t.authority.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Where the view path `path` lives.
    pub fn resolve(&self, path: &str) -> Result<Target, ViewFsError> {
        let path = clean(path);
        for link in &self.links {
            if let Some(rel) = below(&path, &link.view) {
                return Ok(Target {
                    authority: link.target.authority.clone(),
                    path: join(&link.target.path, rel),
                });
            }
        }
        match &self.fallback {
            Some(fb) => Ok(Target {
                authority: fb.authority.clone(),
                path: join(&fb.path, below(&path, "/").unwrap_or("")),
            }),
            None => Err(ViewFsError::NotMounted {
                table: self.table.clone(),
                path,
                links: self.link_list(),
            }),
        }
    }

    /// The names of the links directly below the view directory `dir` that do not live
    /// where `dir` itself lives (`/a` and `/a/b/c` below `/`: `a`; links equal to `dir` or
    /// above it: none). A listing of `dir` shows these as directories.
    pub fn mount_points_in(&self, dir: &str) -> BTreeSet<String> {
        let dir = clean(dir);
        self.links
            .iter()
            .filter_map(|l| below(&l.view, &dir))
            .filter(|rel| !rel.is_empty())
            .filter_map(|rel| rel.split('/').next().map(str::to_string))
            .collect()
    }

    /// The links strictly below the view directory `dir` (what a tree rooted at `dir`
    /// would spread across), as `view → hdfs://target`.
    pub fn links_below(&self, dir: &str) -> Vec<String> {
        let dir = clean(dir);
        self.links
            .iter()
            .filter(|l| below(&l.view, &dir).is_some_and(|rel| !rel.is_empty()))
            .map(|l| {
                format!(
                    "{} → hdfs://{}{}",
                    l.view, l.target.authority, l.target.path
                )
            })
            .collect()
    }

    fn link_list(&self) -> String {
        if self.links.is_empty() {
            return "none".to_string();
        }
        let mut views: Vec<&str> = self.links.iter().map(|l| l.view.as_str()).collect();
        views.sort_unstable();
        views.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(pairs: &[(&str, &str)]) -> Config {
        let mut c = Config::defaults();
        for (k, v) in pairs {
            c.set(*k, *v);
        }
        c
    }

    fn federated() -> MountTable {
        MountTable::of(
            &conf(&[
                (
                    "fs.viewfs.mounttable.fed.link./logs",
                    "hdfs://nn1:8020/data/logs",
                ),
                (
                    "fs.viewfs.mounttable.fed.link./logs/cdn",
                    "hdfs://nn2:8020/cdn/",
                ),
                ("fs.viewfs.mounttable.fed.link./out", "hdfs://ns2/fused"),
                ("fs.viewfs.mounttable.other.link./x", "hdfs://nn9:8020/x"),
            ]),
            "fed",
        )
        .unwrap()
    }

    fn target(authority: &str, path: &str) -> Target {
        Target {
            authority: authority.into(),
            path: path.into(),
        }
    }

    #[test]
    fn the_longest_link_wins_by_whole_components() {
        let t = federated();
        assert_eq!(
            t.resolve("/logs").unwrap(),
            target("nn1:8020", "/data/logs")
        );
        assert_eq!(
            t.resolve("/logs/a/b.gz").unwrap(),
            target("nn1:8020", "/data/logs/a/b.gz")
        );
        assert_eq!(
            t.resolve("/logs/cdn/x.gz").unwrap(),
            target("nn2:8020", "/cdn/x.gz")
        );
        assert_eq!(t.resolve("/logs/cdn/").unwrap(), target("nn2:8020", "/cdn"));
        // `/logs/cdnx` is not below `/logs/cdn`.
        assert_eq!(
            t.resolve("/logs/cdnx").unwrap(),
            target("nn1:8020", "/data/logs/cdnx")
        );
        assert_eq!(t.resolve("/out/a").unwrap(), target("ns2", "/fused/a"));
    }

    #[test]
    fn paths_below_no_link_need_a_fallback() {
        let err = federated().resolve("/tmp/x").unwrap_err().to_string();
        assert_eq!(
            err,
            "no link of mount table 'fed' covers /tmp/x and the table has no linkFallback \
             (links: /logs, /logs/cdn, /out)"
        );
        let with_fallback = MountTable::of(
            &conf(&[
                (
                    "fs.viewfs.mounttable.fed.link./logs",
                    "hdfs://nn1:8020/data/logs",
                ),
                (
                    "fs.viewfs.mounttable.fed.linkFallback",
                    "hdfs://nn3:8020/root",
                ),
            ]),
            "fed",
        )
        .unwrap();
        assert_eq!(
            with_fallback.resolve("/tmp/x").unwrap(),
            target("nn3:8020", "/root/tmp/x")
        );
        assert_eq!(
            with_fallback.resolve("/").unwrap(),
            target("nn3:8020", "/root")
        );
    }

    #[test]
    fn internal_directories_list_their_mount_points() {
        let t = federated();
        let names = |dir| t.mount_points_in(dir).into_iter().collect::<Vec<_>>();
        assert_eq!(names("/"), ["logs", "out"]);
        assert_eq!(names("/logs"), ["cdn"]);
        assert!(names("/logs/cdn").is_empty());
        assert!(names("/out/2026").is_empty());
        assert_eq!(t.links_below("/logs"), ["/logs/cdn → hdfs://nn2:8020/cdn"]);
        assert!(t.links_below("/out").is_empty());
    }

    #[test]
    fn tables_are_named_by_the_authority_or_fs_default_fs() {
        let c = conf(&[("fs.defaultFS", "viewfs://fed/")]);
        assert_eq!(table_name(&c, Some("other")), "other");
        assert_eq!(table_name(&c, None), "fed");
        assert!(default_fs_is_view(&c));
        let plain = conf(&[("fs.defaultFS", "hdfs://nn:8020")]);
        assert_eq!(table_name(&plain, None), DEFAULT_TABLE);
        assert!(!default_fs_is_view(&plain));
    }

    #[test]
    fn bad_tables_are_refused_with_their_key() {
        assert_eq!(
            MountTable::of(&conf(&[]), "nope").unwrap_err().to_string(),
            "no mount table 'nope' (set fs.viewfs.mounttable.nope.link.<path> = hdfs://… in \
             core-site.xml or with -D)"
        );
        let err = MountTable::of(
            &conf(&[("fs.viewfs.mounttable.t.link./a", "s3://bucket/a")]),
            "t",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "fs.viewfs.mounttable.t.link./a = \"s3://bucket/a\": a mount link must be an \
             hdfs://<authority>/<path> URL"
        );
    }
}
