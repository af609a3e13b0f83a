//! Where filex's bytes live: input listing and reading, scratch space for sorted runs, and the
//! output sink with atomic publication.
//!
//! Every backend (`file://` here; `hdfs://` and object stores behind the same traits) keeps the
//! same promises, written on the traits: a published object is complete or absent, scratch is
//! private to one run.

pub mod local;
pub mod location;

use std::io::{self, Read, Write};

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
    /// Human-readable location, for messages.
    fn describe(&self) -> String;
}
