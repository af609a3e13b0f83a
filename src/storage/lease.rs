//! A process's claim on a local directory of its own — a run's scratch, the worker
//! credentials folder: a lock file (`flock`) held for as long as the process lives.
//!
//! A run removes its directories when it ends, but a process that is killed (SIGKILL, the
//! OOM killer, a scheduler timing the job out, a host's reboot) removes nothing. The lock
//! goes with the process, so the next run on the host [`Lease::sweep_siblings`] and removes
//! every `filex-*` directory beside its own whose lock nobody holds, as a NodeManager
//! deletes the directories of applications that are gone. A directory without a lock file
//! (one being created, or left by an older filex) is never touched.

use std::fs::{self, DirBuilder, File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The lock file in a leased directory.
pub const LOCK_FILE: &str = ".lock";

/// The names of the directories a sweep considers.
const PREFIX: &str = "filex-";

/// Held while a directory is in use; dropping it releases the claim (the directory itself is
/// removed by its owner, not here).
#[derive(Debug)]
pub struct Lease {
    dir: PathBuf,
    lock: File,
}

impl Lease {
    /// Creates `dir` (with `mode`, parents as needed) and claims it. The lock is taken on a
    /// file under another name and then renamed into place, so a sweep never finds an
    /// unheld lock in a directory whose owner lives.
    pub fn take(dir: &Path, mode: u32) -> io::Result<Lease> {
        DirBuilder::new().recursive(true).mode(mode).create(dir)?;
        let staged = dir.join(".lock.new");
        let lock = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&staged)?;
        lock.lock()?;
        fs::rename(&staged, dir.join(LOCK_FILE))?;
        Ok(Lease {
            dir: dir.to_path_buf(),
            lock,
        })
    }

    /// The directory claimed.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Removes the `filex-*` directories beside this one, owned by this user, whose lock
    /// nobody holds: what killed processes left. Returns the directories removed. Failures
    /// are logged and skipped: the sweep is housekeeping, never a reason to fail a run.
    pub fn sweep_siblings(&self) -> Vec<PathBuf> {
        let Some(base) = self.dir.parent() else {
            return Vec::new();
        };
        let uid = match self.lock.metadata() {
            Ok(m) => m.uid(),
            Err(_) => return Vec::new(),
        };
        let entries = match fs::read_dir(base) {
            Ok(entries) => entries,
            Err(e) => {
                tracing::debug!(dir = %base.display(), error = %e, "cannot list for leftovers");
                return Vec::new();
            }
        };
        let mut removed = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let ours = entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(PREFIX));
            if !ours || path == self.dir {
                continue;
            }
            match remove_if_abandoned(&path, uid) {
                Ok(true) => removed.push(path),
                Ok(false) => {}
                Err(e) => {
                    tracing::debug!(dir = %path.display(), error = %e, "left as it is")
                }
            }
        }
        if !removed.is_empty() {
            tracing::info!(
                count = removed.len(),
                dir = %base.display(),
                "removed directories that killed runs left"
            );
        }
        removed
    }
}

/// Removes `dir` if it is a directory owned by `uid` holding a lock file nobody holds;
/// `Ok(false)` when it is not (or someone else removes it first).
fn remove_if_abandoned(dir: &Path, uid: u32) -> io::Result<bool> {
    let meta = fs::symlink_metadata(dir)?;
    if !meta.is_dir() || meta.uid() != uid {
        return Ok(false);
    }
    let lock = match File::open(dir.join(LOCK_FILE)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(false),
        Err(TryLockError::Error(e)) => return Err(e),
    }
    // Held now by this process: another sweeper finds it taken and moves on.
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_created_with_its_mode_and_a_held_lock() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("filex-a").join("deeper");
        let lease = Lease::take(&dir, 0o700).unwrap();
        assert_eq!(lease.dir(), dir);
        let mode = fs::metadata(&dir).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(!dir.join(".lock.new").exists());
        let other = File::open(dir.join(LOCK_FILE)).unwrap();
        assert!(matches!(other.try_lock(), Err(TryLockError::WouldBlock)));
        drop(lease);
        other.try_lock().unwrap();
    }

    #[test]
    fn a_sweep_removes_only_unheld_filex_directories() {
        let base = tempfile::tempdir().unwrap();
        let at = |name: &str| base.path().join(name);
        let live = Lease::take(&at("filex-live"), 0o755).unwrap();
        // A process that died: its lease is gone, its directory and files stay.
        let dead = Lease::take(&at("filex-dead"), 0o755).unwrap();
        fs::write(at("filex-dead").join("spill-0000.run"), b"runs").unwrap();
        drop(dead);
        let dead_secret = Lease::take(&at("filex-dead-secret"), 0o700).unwrap();
        drop(dead_secret);
        // No lock file: being created, or not ours to judge.
        fs::create_dir(at("filex-unlocked")).unwrap();
        // Not a filex directory, even with a free lock.
        let foreign = Lease::take(&at("other-dir"), 0o755).unwrap();
        drop(foreign);
        fs::write(at("filex-file"), b"a file").unwrap();

        let me = Lease::take(&at("filex-me"), 0o755).unwrap();
        let mut removed = me.sweep_siblings();
        removed.sort();
        assert_eq!(removed, vec![at("filex-dead"), at("filex-dead-secret")]);
        for kept in [
            "filex-live",
            "filex-unlocked",
            "other-dir",
            "filex-file",
            "filex-me",
        ] {
            assert!(at(kept).exists(), "{kept} was removed");
        }
        // The live one still holds its lock after the sweep looked at it.
        let probe = File::open(at("filex-live").join(LOCK_FILE)).unwrap();
        assert!(matches!(probe.try_lock(), Err(TryLockError::WouldBlock)));
        drop(live);
        assert_eq!(me.sweep_siblings(), vec![at("filex-live")]);
    }
}
