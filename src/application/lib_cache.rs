//! The content-addressed cache of the filex executable on HDFS, `<lib dir>/<sha256>/filex`,
//! where the lib dir is `filex.yarn.lib-dir` or `/user/<user>/.filex/lib` (what Flink's
//! `yarn.provided.lib.dirs` and Spark's `spark.yarn.archive` are for their jars). A submit
//! uploads the executable only when its digest is absent — to a temporary name, then renamed,
//! so that a concurrent submit never localizes half a file — and registers it PUBLIC when
//! the path is world-readable, as Hadoop's `ClientDistributedCacheManager` decides, else
//! PRIVATE: either way a NodeManager keeps one copy across applications instead of
//! downloading it for each. Not here: pruning old versions (an operator removes the digest
//! directories no running application uses).

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use hdfs_native::HdfsError;
use sha2::{Digest, Sha256};

use super::spec::Visibility;
use super::staging::{answer, user_name, wait, write_file, Uploaded};
use super::BINARY;
use crate::cluster::remote::wire::random_hex;
use crate::storage::hdfs::client::NameNode;

/// Permission of the directories the cache creates: others may traverse them.
const DIR_PERMISSION: u32 = 0o755;
/// Permission of a cached executable: others may read it (it holds no secret).
const FILE_PERMISSION: u32 = 0o644;
/// The "others may read" bit of a permission.
const OTHER_READ: u16 = 0o004;
/// The "others may traverse" bit of a directory's permission.
const OTHER_EXECUTE: u16 = 0o001;
/// Read size while hashing.
const HASH_BUFFER: usize = 1 << 20;

/// The cache directory when `filex.yarn.lib-dir` is not set: the user's own.
pub fn user_lib_dir() -> String {
    format!("/user/{}/.filex/lib", user_name())
}

/// The executable as the containers localize it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedExecutable {
    pub file: Uploaded,
    pub visibility: Visibility,
    /// Whether this call uploaded it (false: it was in the cache already).
    pub uploaded: bool,
}

/// The SHA-256 of a local file, as lower-case hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let what = || format!("cannot read {}", path.display());
    let mut file = std::fs::File::open(path).with_context(what)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; HASH_BUFFER];
    loop {
        let n = file.read(&mut buf).with_context(what)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Hadoop's rule for a shared cache entry: PUBLIC when others may read the file and traverse
/// every directory above it (`ancestors`: their permissions), else PRIVATE.
pub fn visibility(file: u16, ancestors: &[u16]) -> Visibility {
    if file & OTHER_READ != 0 && ancestors.iter().all(|p| p & OTHER_EXECUTE != 0) {
        Visibility::Public
    } else {
        Visibility::Private
    }
}

/// The directories above an absolute path, root first: `/a/b/f` → `/`, `/a`, `/a/b`.
fn ancestors(path: &str) -> Vec<String> {
    let mut out = vec!["/".to_string()];
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for i in 1..parts.len() {
        out.push(format!("/{}", parts[..i].join("/")));
    }
    out
}

/// Makes sure `exe` is cached under `lib_dir` on `nn`, uploading it when its digest is
/// absent, and says how YARN may share it.
pub fn ensure(nn: &NameNode, lib_dir: &str, exe: &Path) -> Result<CachedExecutable> {
    let hashing = std::time::Instant::now();
    let digest = sha256_file(exe)?;
    tracing::debug!(
        ms = hashing.elapsed().as_millis() as u64,
        %digest,
        "hashed the executable"
    );
    let size = std::fs::metadata(exe)
        .with_context(|| format!("cannot read {}", exe.display()))?
        .len();
    let dir = format!("{lib_dir}/{digest}");
    let path = format!("{dir}/{BINARY}");
    let url = nn.url(&path);
    let look_up = format!("cannot look up {url}");
    let client = &nn.client;
    let (status, uploaded) = match answer(&look_up, client.get_file_info(&path))? {
        Ok(status) => (status, false),
        Err(HdfsError::FileNotFound(_)) => {
            let uploaded = upload(nn, &dir, &path, exe)?;
            (wait(&look_up, client.get_file_info(&path))?, uploaded)
        }
        Err(e) => return Err(e).context(look_up),
    };
    if status.isdir || status.length as u64 != size {
        bail!(
            "{url} is not {} ({} bytes): remove it, or name another filex.yarn.lib-dir",
            exe.display(),
            size
        );
    }
    let mut above = Vec::new();
    for a in ancestors(&path) {
        let st = wait(
            &format!("cannot look up {}", nn.url(&a)),
            client.get_file_info(&a),
        )?;
        above.push(st.permission);
    }
    Ok(CachedExecutable {
        file: Uploaded {
            path,
            size,
            timestamp: status.modification_time,
        },
        visibility: visibility(status.permission, &above),
        uploaded,
    })
}

/// Uploads `exe` to a temporary name in `dir` and renames it to `path`. Returns false when
/// another submit renamed the same bytes there first.
fn upload(nn: &NameNode, dir: &str, path: &str, exe: &Path) -> Result<bool> {
    let client = &nn.client;
    wait(
        &format!("cannot create {}", nn.url(dir)),
        client.mkdirs(dir, DIR_PERMISSION, true),
    )?;
    let bytes = std::fs::read(exe).with_context(|| format!("cannot read {}", exe.display()))?;
    let tmp = format!("{dir}/.{BINARY}.{}.tmp", random_hex(8)?);
    let renamed = write_file(nn, &tmp, Bytes::from(bytes), FILE_PERMISSION).and_then(|_| {
        let what = format!("cannot rename {} to {}", nn.url(&tmp), nn.url(path));
        match answer(&what, client.rename(&tmp, path, false))? {
            Ok(()) => Ok(true),
            Err(HdfsError::AlreadyExists(_)) => Ok(false),
            Err(e) => Err(e).context(what),
        }
    });
    if !matches!(renamed, Ok(true)) {
        if let Err(e) = answer("remove", client.delete(&tmp, false)) {
            tracing::debug!(error = %e, path = tmp, "temporary executable not removed");
        }
    }
    renamed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_needs_a_readable_file_below_traversable_directories() {
        assert_eq!(visibility(0o644, &[0o755, 0o755]), Visibility::Public);
        assert_eq!(visibility(0o755, &[0o711, 0o751]), Visibility::Public);
        // The file is not readable by others.
        assert_eq!(visibility(0o640, &[0o755, 0o755]), Visibility::Private);
        // One directory on the way cannot be traversed by others (a 700 home directory).
        assert_eq!(
            visibility(0o644, &[0o755, 0o700, 0o755]),
            Visibility::Private
        );
        // Readable but not traversable is not enough.
        assert_eq!(visibility(0o644, &[0o755, 0o754]), Visibility::Private);
    }

    #[test]
    fn ancestors_run_from_the_root_to_the_parent() {
        assert_eq!(
            ancestors("/apps/filex/lib/ab12/filex"),
            [
                "/",
                "/apps",
                "/apps/filex",
                "/apps/filex/lib",
                "/apps/filex/lib/ab12"
            ]
        );
        assert_eq!(ancestors("/filex"), ["/"]);
    }

    #[test]
    fn the_digest_is_the_files_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("exe");
        std::fs::write(&f, b"abc").unwrap();
        assert_eq!(
            sha256_file(&f).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(sha256_file(&dir.path().join("missing")).is_err());
    }
}
