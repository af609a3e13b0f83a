//! The local file system: shards in directories, scratch in a private temp directory, output
//! staged under `<root>/_temporary/<run>/` and published by rename.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::location::Location;
use super::{
    published_before, Entry, HashingWriter, InputStore, OutputStore, Published, Scratch,
    ScratchFile, StagedObject, StagedWriter, StorageError, ATTEMPTS_DIR,
};

/// Name of the staging directory under the output root (as Hadoop's committers name it).
pub const STAGING_DIR: &str = "_temporary";
const WRITE_BUFFER: usize = 1 << 20;

fn local_path(loc: &Location) -> Result<&Path, StorageError> {
    match loc {
        Location::Local(p) => Ok(p),
        other => Err(StorageError::Unsupported {
            location: other.to_string(),
            what: "a non-local location in the local store".into(),
        }),
    }
}

/// Shards on the local file system.
pub struct LocalInput;

impl InputStore for LocalInput {
    fn list(&self, dir: &Location) -> Result<Option<Vec<Entry>>, StorageError> {
        let path = local_path(dir)?;
        let rd = match fs::read_dir(path) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => return Ok(None),
            Err(e) => return Err(StorageError::io("list", dir, e)),
        };
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| StorageError::io("list", dir, e))?;
            let meta = entry
                .metadata()
                .map_err(|e| StorageError::io("stat", entry.path().display(), e))?;
            out.push(Entry {
                name: entry.file_name().to_string_lossy().into_owned(),
                is_dir: meta.is_dir(),
                size: meta.len(),
                modified_ms: meta.modified().ok().and_then(epoch_ms),
                hosts: None,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Some(out))
    }

    fn open(&self, file: &Location) -> Result<Box<dyn Read + Send>, StorageError> {
        let path = local_path(file)?;
        let f = File::open(path).map_err(|e| StorageError::io("open", file, e))?;
        Ok(Box::new(f))
    }
}

/// A file time as milliseconds since the epoch.
fn epoch_ms(t: std::time::SystemTime) -> Option<i64> {
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_millis()).ok()
}

/// Scratch space in one local directory, removed at the end of the run.
pub struct LocalScratch {
    dir: PathBuf,
}

impl LocalScratch {
    pub fn new(dir: PathBuf) -> Self {
        LocalScratch { dir }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

struct LocalScratchFile {
    out: BufWriter<File>,
    bytes: u64,
}

impl Write for LocalScratchFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl ScratchFile for LocalScratchFile {
    fn close(mut self: Box<Self>) -> io::Result<u64> {
        self.out.flush()?;
        Ok(self.bytes)
    }
}

impl Scratch for LocalScratch {
    fn create(&self, name: &str) -> io::Result<Box<dyn ScratchFile>> {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let f = File::create(&path)?;
        Ok(Box::new(LocalScratchFile {
            out: BufWriter::with_capacity(WRITE_BUFFER, f),
            bytes: 0,
        }))
    }

    fn open_range(&self, name: &str, offset: u64, len: u64) -> io::Result<Box<dyn Read + Send>> {
        let mut f = File::open(self.path(name))?;
        f.seek(SeekFrom::Start(offset))?;
        Ok(Box::new(f.take(len)))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        match fs::remove_file(self.path(name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn size(&self, name: &str) -> io::Result<u64> {
        Ok(fs::metadata(self.path(name))?.len())
    }

    fn remove_all(&self) -> io::Result<()> {
        match fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn describe(&self) -> String {
        self.dir.display().to_string()
    }
}

/// Output on the local file system.
pub struct LocalOutput {
    root: PathBuf,
    staging: PathBuf,
}

impl LocalOutput {
    pub fn new(root: PathBuf, run_id: &str) -> Self {
        let staging = root.join(STAGING_DIR).join(run_id);
        LocalOutput { root, staging }
    }
    fn url_of(path: &Path) -> String {
        Location::Local(path.to_path_buf()).to_string()
    }
}

struct LocalStaged {
    rel: String,
    temp: PathBuf,
    out: HashingWriter<BufWriter<File>>,
}

impl Write for LocalStaged {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl StagedWriter for LocalStaged {
    fn finish(self: Box<Self>) -> Result<StagedObject, StorageError> {
        let this = *self;
        let (buf, bytes, sha256) = this.out.into_parts();
        let file = buf
            .into_inner()
            .map_err(|e| StorageError::io("write", this.temp.display(), e.into_error()))?;
        file.sync_all()
            .map_err(|e| StorageError::io("sync", this.temp.display(), e))?;
        Ok(StagedObject {
            rel: this.rel,
            bytes,
            sha256,
            handle: this.temp.to_string_lossy().into_owned(),
        })
    }
}

impl LocalOutput {
    fn stage_at(&self, rel: &str, temp: PathBuf) -> Result<Box<dyn StagedWriter>, StorageError> {
        if let Some(parent) = temp.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| StorageError::io("create", parent.display(), e))?;
        }
        let f = File::create(&temp).map_err(|e| StorageError::io("create", temp.display(), e))?;
        Ok(Box::new(LocalStaged {
            rel: rel.to_string(),
            temp,
            out: HashingWriter::new(BufWriter::with_capacity(WRITE_BUFFER, f)),
        }))
    }
}

impl OutputStore for LocalOutput {
    /// Staged files are published by rename, to any name.
    fn renames_staged(&self) -> bool {
        true
    }

    fn stage(&self, rel: &str) -> Result<Box<dyn StagedWriter>, StorageError> {
        self.stage_at(rel, self.staging.join(rel))
    }

    fn stage_attempt(
        &self,
        rel: &str,
        attempt: &str,
    ) -> Result<Box<dyn StagedWriter>, StorageError> {
        let temp = self.staging.join(ATTEMPTS_DIR).join(attempt).join(rel);
        self.stage_at(rel, temp)
    }

    fn check_staged(&self, staged: &StagedObject) -> Result<(), String> {
        let len = fs::metadata(&staged.handle)
            .map_err(|e| format!("{}: {e}", staged.handle))?
            .len();
        super::same_size(staged, len)
    }

    fn discard(&self, staged: &StagedObject) -> Result<(), StorageError> {
        match fs::remove_file(&staged.handle) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(StorageError::io("remove", &staged.handle, e))
            }
            _ => Ok(()),
        }
    }

    /// A rename; a missing source with the staged size at the final name is a rename done
    /// before.
    fn publish(&self, obj: &StagedObject) -> Result<Published, StorageError> {
        let dest = self.root.join(&obj.rel);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| StorageError::io("create", parent.display(), e))?;
        }
        match fs::rename(&obj.handle, &dest) {
            Ok(()) => Ok(Published::Now),
            Err(e) if e.kind() == io::ErrorKind::NotFound && !Path::new(&obj.handle).exists() => {
                let found = self.size(&obj.rel)?;
                published_before(&Self::url_of(&dest), obj, found)
            }
            Err(e) => Err(StorageError::io("publish", Self::url_of(&dest), e)),
        }
    }

    fn abort(&self) -> Result<(), StorageError> {
        match fs::remove_dir_all(&self.staging) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(StorageError::io("remove", self.staging.display(), e))
            }
            _ => {}
        }
        // Leave `_temporary` itself if another run still uses it.
        let _ = fs::remove_dir(self.root.join(STAGING_DIR));
        Ok(())
    }

    fn staged_left(&self) -> Result<bool, StorageError> {
        self.staging
            .try_exists()
            .map_err(|e| StorageError::io("look up", self.staging.display(), e))
    }

    fn put_atomic(&self, rel: &str, bytes: &[u8]) -> Result<(), StorageError> {
        let mut w = self.stage(rel)?;
        w.write_all(bytes)
            .map_err(|e| StorageError::io("write", self.url(rel), e))?;
        let obj = w.finish()?;
        self.commit(&[obj])
    }

    fn remove(&self, rel: &str) -> Result<(), StorageError> {
        let path = self.root.join(rel);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(StorageError::io("remove", Self::url_of(&path), e))
            }
            _ => Ok(()),
        }
    }

    fn url(&self, rel: &str) -> String {
        Self::url_of(&self.root.join(rel))
    }

    fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let path = self.root.join(rel);
        match fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io("read", Self::url_of(&path), e)),
        }
    }

    fn size(&self, rel: &str) -> Result<Option<u64>, StorageError> {
        let path = self.root.join(rel);
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io("stat", Self::url_of(&path), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_objects_appear_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let out = LocalOutput::new(dir.path().to_path_buf(), "run1");
        let mut w = out.stage("a/b.log.gz").unwrap();
        w.write_all(b"hello").unwrap();
        let obj = w.finish().unwrap();
        assert_eq!(obj.bytes, 5);
        assert_eq!(
            obj.sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert!(!dir.path().join("a/b.log.gz").exists());
        assert_eq!(out.size("a/b.log.gz").unwrap(), None);
        assert_eq!(out.read("a/b.log.gz").unwrap(), None);
        out.commit(&[obj]).unwrap();
        assert_eq!(fs::read(dir.path().join("a/b.log.gz")).unwrap(), b"hello");
        assert_eq!(out.size("a/b.log.gz").unwrap(), Some(5));
        assert_eq!(
            out.read("a/b.log.gz").unwrap().as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(out.size("a").unwrap(), None, "a directory is no object");
        out.abort().unwrap();
        assert!(!dir.path().join(STAGING_DIR).exists());
    }

    #[test]
    fn abort_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = LocalOutput::new(dir.path().to_path_buf(), "run2");
        assert!(!out.staged_left().unwrap());
        let mut w = out.stage("x.gz").unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert!(out.staged_left().unwrap());
        out.abort().unwrap();
        assert!(!out.staged_left().unwrap());
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn scratch_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalScratch::new(dir.path().join("s"));
        let mut f = s.create("m/0.run").unwrap();
        f.write_all(b"0123456789").unwrap();
        assert_eq!(f.close().unwrap(), 10);
        let mut buf = String::new();
        s.open_range("m/0.run", 3, 4)
            .unwrap()
            .read_to_string(&mut buf)
            .unwrap();
        assert_eq!(buf, "3456");
        s.remove_all().unwrap();
        assert!(!dir.path().join("s").exists());
    }
}
