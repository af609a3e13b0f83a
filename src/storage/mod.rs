//! Where filex's bytes live: input listing and reading, scratch space for sorted runs, and the
//! output sink with atomic publication.
//!
//! Every backend (`file://` here; `hdfs://` and object stores behind the same traits) keeps the
//! same promises, written on the traits: a published object is complete or absent, scratch is
//! private to one run.

pub mod hdfs;
pub mod held;
pub mod lease;
pub mod local;
pub mod location;
pub mod memory;
pub mod object;

use std::io::{self, Read, Write};
use std::path::PathBuf;

/// A file being written to scratch. Bytes are durable once [`ScratchFile::close`] returns.
pub trait ScratchFile: Write + Send {
    /// Flushes and closes the file; returns the number of bytes written.
    fn close(self: Box<Self>) -> io::Result<u64>;
}

/// Private working space of one run: sorted-run files written by map tasks and read by range
/// by reduce tasks. Names are relative, `/`-separated, chosen by the caller.
pub trait Scratch: Send + Sync {
    /// Creates (or truncates) the scratch file `name`, creating parent directories.
    fn create(&self, name: &str) -> io::Result<Box<dyn ScratchFile>>;
    /// Opens `len` bytes of `name` starting at `offset`; the reader ends after `len` bytes.
    fn open_range(&self, name: &str, offset: u64, len: u64) -> io::Result<Box<dyn Read + Send>>;
    /// Removes `name`; missing files are not an error.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Removes the whole scratch space.
    fn remove_all(&self) -> io::Result<()>;
    /// The size of the closed file `name` (`NotFound` when there is none): what a recovering
    /// application master checks before it keeps a sorted run an earlier one accepted.
    fn size(&self, name: &str) -> io::Result<u64> {
        let _ = name;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{}: no file sizes", self.describe()),
        ))
    }
    /// Reads the byte ranges `(offset, len)` of `name`, given in increasing offset order,
    /// each in full (a range past the end is an `UnexpectedEof` error naming the file).
    /// Backends where opening a file costs a round trip (HDFS) open it once for all of them;
    /// by default each range is read through [`Scratch::open_range`].
    fn read_ranges(&self, name: &str, ranges: &[(u64, u64)]) -> io::Result<Vec<bytes::Bytes>> {
        ranges
            .iter()
            .map(|&(offset, len)| {
                let mut buf = Vec::with_capacity(len as usize);
                self.open_range(name, offset, len)?.read_to_end(&mut buf)?;
                if buf.len() as u64 != len {
                    return Err(short_range(&self.describe(), name, offset, len, buf.len()));
                }
                Ok(bytes::Bytes::from(buf))
            })
            .collect()
    }
    /// Human-readable location, for messages.
    fn describe(&self) -> String;
    /// Creates `name` in memory if `bytes` more fit the scratch's memory budget (see
    /// [`held::HeldScratch`]); `None` when they do not, or when this scratch keeps nothing in
    /// memory. Such a file is read like any other and needs no compression.
    fn create_in_memory(&self, name: &str, bytes: usize) -> Option<Box<dyn ScratchFile>> {
        let _ = (name, bytes);
        None
    }
}

/// The error of a range read that ended before the range did.
pub(crate) fn short_range(
    scratch: &str,
    name: &str,
    offset: u64,
    len: u64,
    got: usize,
) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("{scratch}/{name}: bytes {offset}+{len} asked, {got} read"),
    )
}

use std::sync::Arc;

use location::Location;
use sha2::{Digest, Sha256};

/// Errors from any backend; every variant names the location involved.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot {op} {location}")]
    Io {
        op: &'static str,
        location: String,
        #[source]
        source: io::Error,
    },
    #[error("{location}: {what} is not supported by this build of filex")]
    Unsupported { location: String, what: String },
    #[error("{location}: {message}")]
    Backend { location: String, message: String },
    /// A publication step found neither the staged bytes nor the object they make (a
    /// commit being finished after a crash, whose staging was removed meanwhile).
    #[error(
        "cannot publish {location}: its staged bytes ({staged}) are gone and {location} {found}"
    )]
    StagedGone {
        location: String,
        staged: String,
        found: String,
    },
}

impl StorageError {
    pub fn io(op: &'static str, location: impl ToString, source: io::Error) -> Self {
        StorageError::Io {
            op,
            location: location.to_string(),
            source,
        }
    }
}

/// One name in a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub is_dir: bool,
    pub size: u64,
    /// Last modification, milliseconds since the epoch, where the store keeps one: with the
    /// size, what tells a re-run that a shard changed (incremental re-fusion).
    pub modified_ms: Option<i64>,
    /// A file's block hosts, best first, when the listing brought them (HDFS lists with
    /// block locations); `None`: ask [`InputStore::block_hosts`].
    pub hosts: Option<Vec<String>>,
}

/// Read access to shards.
pub trait InputStore: Send + Sync {
    /// Lists `dir`; `Ok(None)` when it does not exist (a slot without traffic is normal).
    fn list(&self, dir: &Location) -> Result<Option<Vec<Entry>>, StorageError>;
    /// Opens `file` for sequential reading.
    fn open(&self, file: &Location) -> Result<Box<dyn Read + Send>, StorageError>;
    /// Hosts holding the file's blocks, best first (empty where locality means nothing).
    fn block_hosts(&self, _file: &Location) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }
}

/// The directory of a run's staging area holding one directory per task attempt.
pub const ATTEMPTS_DIR: &str = "_attempts";

/// An object written to the output but not yet visible under its final name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StagedObject {
    /// Final path relative to the output root.
    pub rel: String,
    pub bytes: u64,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    /// Backend-specific handle of the staged bytes (a temp path, an upload id…).
    pub handle: String,
}

/// What [`OutputStore::publish`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Published by this call.
    Now,
    /// Published before (by a commit that died after this step, or a retried request whose
    /// first try went through): the staged bytes were gone and the object under the final
    /// name is the one they made.
    Already,
}

/// The idempotency check of a rename-based [`OutputStore::publish`] whose source is gone:
/// `Already` when the final object (`found`: its size, `None` when there is none) has the
/// staged size, else [`StorageError::StagedGone`] naming both.
pub fn published_before(
    url: &str,
    staged: &StagedObject,
    found: Option<u64>,
) -> Result<Published, StorageError> {
    let found = match found {
        Some(n) if n == staged.bytes => return Ok(Published::Already),
        Some(n) => format!("has {n} bytes, not the {} staged", staged.bytes),
        None => "does not exist".to_string(),
    };
    Err(StorageError::StagedGone {
        location: url.to_string(),
        staged: staged.handle.clone(),
        found,
    })
}

/// An object being written. Dropping it without [`StagedWriter::finish`] leaves nothing
/// visible.
pub trait StagedWriter: Write + Send {
    /// Makes the bytes durable in staging and returns what [`OutputStore::commit`] needs.
    fn finish(self: Box<Self>) -> Result<StagedObject, StorageError>;
}

/// The output root. Contract: objects become visible only through `commit` (or
/// `put_atomic`), complete or not at all; `abort` leaves no staged bytes behind; a second run
/// writing the same paths replaces them.
pub trait OutputStore: Send + Sync {
    /// Starts writing the object `rel` (relative, `/`-separated) in staging.
    fn stage(&self, rel: &str) -> Result<Box<dyn StagedWriter>, StorageError>;
    /// As [`OutputStore::stage`], for one task attempt (`attempt`, e.g. `r00003.1`): its
    /// bytes are staged where no other attempt writes (a directory of the attempt's own under
    /// [`ATTEMPTS_DIR`], or an upload id of its own), so a late or zombie attempt can never
    /// overwrite the output of the attempt that was accepted.
    fn stage_attempt(
        &self,
        rel: &str,
        attempt: &str,
    ) -> Result<Box<dyn StagedWriter>, StorageError>;
    /// Discards one staged object that will not be committed (the output of a superseded
    /// attempt); one already gone is not an error.
    fn discard(&self, staged: &StagedObject) -> Result<(), StorageError>;
    /// Whether `staged`, staged by another process (a worker of an application master that
    /// died since), is still there with its bytes, so that it can be committed: `Err` says
    /// why not. Stores that cannot tell (object stores: an open upload) trust it; completing
    /// it then fails if it is gone.
    fn check_staged(&self, staged: &StagedObject) -> Result<(), String> {
        let _ = staged;
        Ok(())
    }
    /// Publishes one staged object under its final name: one step of a commit (a rename on
    /// file systems, CompleteMultipartUpload on object stores). Idempotent, so that a commit
    /// cut short can be finished by another process: when the staged bytes are gone and the
    /// object under the final name is the one they made (the staged size; on object stores
    /// the multipart ETag too), the step was done before and this is
    /// [`Published::Already`]; when they are gone and it is not,
    /// [`StorageError::StagedGone`].
    fn publish(&self, staged: &StagedObject) -> Result<Published, StorageError>;
    /// Publishes staged objects under their final names, in order ([`OutputStore::publish`]
    /// each).
    fn commit(&self, staged: &[StagedObject]) -> Result<(), StorageError> {
        for obj in staged {
            self.publish(obj)?;
        }
        Ok(())
    }
    /// Whether `commit` publishes a staged object under its [`StagedObject::rel`] even when
    /// that was changed after `stage` (a rename, as on file systems). When false (the
    /// default: object stores, where the name given to `stage` is the upload's key) the
    /// caller must know the final name before staging.
    fn renames_staged(&self) -> bool {
        false
    }
    /// Discards everything staged by this run and not committed.
    fn abort(&self) -> Result<(), StorageError>;
    /// Whether anything this run staged is there (its directory under `_temporary`, a marker
    /// of an upload it opened): what the clean-up of a run whose last processes may still be
    /// stopping looks for after [`OutputStore::abort`].
    fn staged_left(&self) -> Result<bool, StorageError>;
    /// Writes a small object (manifest, rejects index) atomically.
    fn put_atomic(&self, rel: &str, bytes: &[u8]) -> Result<(), StorageError>;
    /// Removes the published object `rel` (the done-flag, before a run replaces what it
    /// vouched for); once this returns, readers no longer see it. A missing object is not
    /// an error.
    fn remove(&self, rel: &str) -> Result<(), StorageError>;
    /// The URL of `rel`, for messages and the manifest.
    fn url(&self, rel: &str) -> String;
    /// Reads the published object `rel` whole; `Ok(None)` when there is none. For the small
    /// records a re-run reads back (the previous manifest, the rejects file), not for
    /// partitions.
    fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, StorageError>;
    /// The size of the published object `rel`, `Ok(None)` when there is none (a re-run checks
    /// that a partition it keeps is still there, as published).
    fn size(&self, rel: &str) -> Result<Option<u64>, StorageError>;
}

/// Opens the input store serving `location`.
pub fn input_store(location: &Location) -> Result<Arc<dyn InputStore>, StorageError> {
    match location {
        Location::Local(_) => Ok(Arc::new(local::LocalInput)),
        Location::Hdfs { .. } | Location::ViewFs { .. } => Ok(Arc::new(hdfs::HdfsInput::new())),
        other => Err(StorageError::Unsupported {
            location: other.to_string(),
            what: "reading shards from this scheme".into(),
        }),
    }
}

/// Opens the `file://`, `hdfs://` or `viewfs://` output store at `root` for the run `run_id` (names its
/// staging area). Object stores need the job's options: [`object::output_store`] opens those
/// and hands every other root to this function.
pub fn output_store(root: &Location, run_id: &str) -> Result<Arc<dyn OutputStore>, StorageError> {
    match root {
        Location::Local(dir) => Ok(Arc::new(local::LocalOutput::new(dir.clone(), run_id))),
        Location::Hdfs { .. } | Location::ViewFs { .. } => {
            Ok(Arc::new(hdfs::HdfsOutput::new(root.clone(), run_id)?))
        }
        other => Err(StorageError::Unsupported {
            location: other.to_string(),
            what: "writing output to this scheme".into(),
        }),
    }
}

/// The local directory of the run `run_id`'s scratch under `base` (`None`: the temp dir);
/// `None` when `base` is not local.
pub fn local_scratch_dir(base: Option<&Location>, run_id: &str) -> Option<PathBuf> {
    match base {
        None => Some(std::env::temp_dir().join(format!("filex-{run_id}"))),
        Some(Location::Local(dir)) => Some(dir.join(format!("filex-{run_id}"))),
        Some(_) => None,
    }
}

/// Opens scratch space for the run `run_id`: under `base` if given, else the temp dir.
pub fn scratch(base: Option<&Location>, run_id: &str) -> Result<Arc<dyn Scratch>, StorageError> {
    match base {
        None | Some(Location::Local(_)) => Ok(Arc::new(local::LocalScratch::new(
            local_scratch_dir(base, run_id).unwrap_or_default(),
        ))),
        Some(dir @ (Location::Hdfs { .. } | Location::ViewFs { .. })) => Ok(Arc::new(
            hdfs::HdfsScratch::new(dir.join(&format!("filex-{run_id}")))?,
        )),
        Some(other) => Err(StorageError::Unsupported {
            location: other.to_string(),
            what: "scratch on this scheme".into(),
        }),
    }
}

/// `Ok` when `len`, the size found of `staged`'s bytes, is the size it was staged with.
pub(crate) fn same_size(staged: &StagedObject, len: u64) -> Result<(), String> {
    if len == staged.bytes {
        Ok(())
    } else {
        Err(format!(
            "{}: {len} bytes staged, {} expected",
            staged.handle, staged.bytes
        ))
    }
}

/// Counts and hashes the bytes passing through to `inner`.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }
    /// Returns the inner writer, the byte count and the hex SHA-256.
    pub fn into_parts(self) -> (W, u64, String) {
        (self.inner, self.bytes, hex::encode(self.hasher.finalize()))
    }
    /// The SHA-256 of what was written.
    pub fn into_digest(self) -> [u8; 32] {
        self.hasher.finalize().into()
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A fresh id for one run: time and process id, hex.
pub fn new_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}-{:x}", nanos, std::process::id())
}
