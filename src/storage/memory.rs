//! [`Scratch`] in memory, for tests and benchmarks: no disk, so sort and merge tests run fast
//! and merge figures exclude disk speed. Files are shared, not copied, when read by range.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Scratch, ScratchFile};

type Files = Arc<Mutex<HashMap<String, Arc<Vec<u8>>>>>;

/// Scratch space in memory; counts the files it created.
#[derive(Default)]
pub struct MemoryScratch {
    files: Files,
    created: Mutex<usize>,
}

impl MemoryScratch {
    /// The names of the closed files, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.files.lock().keys().cloned().collect();
        names.sort();
        names
    }

    /// How many files were created (closed or not, removed or not).
    pub fn created(&self) -> usize {
        *self.created.lock()
    }

    /// Creates `name` with room for `bytes`, so that writing that much never reallocates.
    pub fn create_sized(&self, name: &str, bytes: usize) -> Box<dyn ScratchFile> {
        *self.created.lock() += 1;
        Box::new(MemoryFile {
            name: name.to_string(),
            buf: Vec::with_capacity(bytes),
            files: Arc::clone(&self.files),
        })
    }

    /// Applies `f` to the bytes of file `name`; `false` if there is no such file.
    pub fn edit(&self, name: &str, f: impl FnOnce(&mut Vec<u8>)) -> bool {
        match self.files.lock().get_mut(name) {
            Some(file) => {
                f(Arc::make_mut(file));
                true
            }
            None => false,
        }
    }
}

struct MemoryFile {
    name: String,
    buf: Vec<u8>,
    files: Files,
}

impl Write for MemoryFile {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ScratchFile for MemoryFile {
    fn close(self: Box<Self>) -> io::Result<u64> {
        let len = self.buf.len() as u64;
        self.files.lock().insert(self.name, Arc::new(self.buf));
        Ok(len)
    }
}

/// A reader over a byte range of a shared file, without copying it.
struct RangeReader {
    file: Arc<Vec<u8>>,
    pos: usize,
    end: usize,
}

impl Read for RangeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = out.len().min(self.end - self.pos);
        out[..n].copy_from_slice(&self.file[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Scratch for MemoryScratch {
    fn create(&self, name: &str) -> io::Result<Box<dyn ScratchFile>> {
        *self.created.lock() += 1;
        Ok(Box::new(MemoryFile {
            name: name.to_string(),
            buf: Vec::new(),
            files: Arc::clone(&self.files),
        }))
    }
    fn open_range(&self, name: &str, offset: u64, len: u64) -> io::Result<Box<dyn Read + Send>> {
        let file = self
            .files
            .lock()
            .get(name)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, name.to_string()))?;
        let pos = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(file.len());
        let end = pos
            .saturating_add(usize::try_from(len).unwrap_or(usize::MAX))
            .min(file.len());
        Ok(Box::new(RangeReader { file, pos, end }))
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.files.lock().remove(name);
        Ok(())
    }
    fn remove_all(&self) -> io::Result<()> {
        self.files.lock().clear();
        Ok(())
    }
    fn describe(&self) -> String {
        "memory".to_string()
    }
}
