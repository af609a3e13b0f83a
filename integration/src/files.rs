//! Trees of files: a local directory read whole, and one copied to HDFS.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::webhdfs::WebHdfs;

/// Every file below `dir`, by its path relative to `dir` (`/`-separated), with its bytes;
/// empty when `dir` does not exist.
pub fn local_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else if let Ok(rel) = p.strip_prefix(base) {
                let bytes = fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
                out.insert(rel.to_string_lossy().into_owned(), bytes);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Copies the directory `local` to `remote` on HDFS, overwriting what is there.
pub fn upload_tree(fs_: &WebHdfs, local: &Path, remote: &str) {
    let entries = fs::read_dir(local).unwrap_or_else(|e| panic!("list {}: {e}", local.display()));
    for e in entries.flatten() {
        let r = format!("{remote}/{}", e.file_name().to_string_lossy());
        if e.path().is_dir() {
            upload_tree(fs_, &e.path(), &r);
        } else {
            let bytes =
                fs::read(e.path()).unwrap_or_else(|err| panic!("read {:?}: {err}", e.path()));
            fs_.create(&r, &bytes, true)
                .unwrap_or_else(|err| panic!("upload {r}: {err}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_tree_has_relative_paths_and_bytes() {
        let dir = std::env::temp_dir().join(format!("filex-tree-{}", std::process::id()));
        fs::create_dir_all(dir.join("a/b")).unwrap();
        fs::write(dir.join("a/b/c.txt"), b"c").unwrap();
        fs::write(dir.join("top"), b"t").unwrap();
        let tree = local_tree(&dir);
        fs::remove_dir_all(&dir).unwrap();
        let got: Vec<(&str, &[u8])> = tree.iter().map(|(k, v)| (k.as_str(), &v[..])).collect();
        assert_eq!(got, vec![("a/b/c.txt", &b"c"[..]), ("top", &b"t"[..])]);
        assert!(local_tree(&dir).is_empty());
    }
}
