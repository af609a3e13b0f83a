//! Records the commit `filex --version` shows: `git rev-parse --short=12 HEAD`, with `-dirty`
//! when tracked files differ from it, as `FILEX_COMMIT_SUFFIX` (` (abc123def456)`). Built
//! from anything but a git checkout of this project (a source tarball, a vendored copy inside
//! another repository), or without git, the suffix is empty. Re-runs when HEAD or the branch
//! it points at moves; `-dirty` is as of the last run.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `(commit, dirty, files whose change moves HEAD)`, when `root` is the top of a checkout.
fn commit(root: &Path) -> Option<(String, bool, Vec<PathBuf>)> {
    let top = PathBuf::from(git(root, &["rev-parse", "--show-toplevel"])?);
    if top.canonicalize().ok()? != root.canonicalize().ok()? {
        return None;
    }
    let hash = git(root, &["rev-parse", "--short=12", "HEAD"])?;
    let dirty = !git(root, &["status", "--porcelain", "--untracked-files=no"])?.is_empty();
    let mut watch = vec![PathBuf::from(git(
        root,
        &["rev-parse", "--git-path", "HEAD"],
    )?)];
    if let Some(branch) = git(root, &["symbolic-ref", "-q", "HEAD"]) {
        for path in [branch.as_str(), "packed-refs"] {
            if let Some(p) = git(root, &["rev-parse", "--git-path", path]) {
                watch.push(PathBuf::from(p));
            }
        }
    }
    let watch = watch
        .into_iter()
        .map(|p| if p.is_relative() { root.join(p) } else { p })
        .collect();
    Some((hash, dirty, watch))
}

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    println!("cargo:rerun-if-changed=build.rs");
    let suffix = match commit(&root) {
        Some((hash, dirty, watch)) => {
            for p in watch {
                println!("cargo:rerun-if-changed={}", p.display());
            }
            format!(" ({hash}{})", if dirty { "-dirty" } else { "" })
        }
        None => String::new(),
    };
    println!("cargo:rustc-env=FILEX_COMMIT_SUFFIX={suffix}");
}
