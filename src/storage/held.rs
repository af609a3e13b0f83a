//! [`Scratch`] that keeps files in memory while a byte budget lasts, and passes the rest to
//! another scratch. Used by `filex run` on threads, where the map tasks' sorted runs are read
//! by reduce tasks of the same process: a run held in memory skips the lz4 compression and
//! the disk round trip. The budget is carved out of `--memory`, so held runs and the tasks'
//! buffers together stay within it.

use std::io::{self, Read, Write};
use std::sync::Arc;

use parking_lot::Mutex;

use super::memory::MemoryScratch;
use super::{Scratch, ScratchFile};

/// Files in memory up to a budget, the others in `inner`.
pub struct HeldScratch {
    inner: Arc<dyn Scratch>,
    memory: MemoryScratch,
    budget: Arc<Budget>,
}

/// Bytes still free, and the size charged for each held file.
struct Budget {
    state: Mutex<(usize, std::collections::HashMap<String, usize>)>,
}

impl Budget {
    fn reserve(&self, bytes: usize) -> bool {
        let mut s = self.state.lock();
        if s.0 < bytes {
            return false;
        }
        s.0 -= bytes;
        true
    }

    /// Replaces the reservation of a file by its actual size.
    fn settle(&self, name: &str, reserved: usize, actual: usize) {
        let mut s = self.state.lock();
        s.0 = (s.0 + reserved).saturating_sub(actual);
        if let Some(old) = s.1.insert(name.to_string(), actual) {
            s.0 += old;
        }
    }

    fn release(&self, name: &str) {
        let mut s = self.state.lock();
        if let Some(n) = s.1.remove(name) {
            s.0 += n;
        }
    }
}

impl HeldScratch {
    /// Holds up to `budget` bytes of files in memory; everything else goes to `inner`.
    pub fn new(inner: Arc<dyn Scratch>, budget: usize) -> Self {
        HeldScratch {
            inner,
            memory: MemoryScratch::default(),
            budget: Arc::new(Budget {
                state: Mutex::new((budget, Default::default())),
            }),
        }
    }

    /// Bytes of the budget not taken.
    pub fn free(&self) -> usize {
        self.budget.state.lock().0
    }

    /// Copies every file held in memory to the inner scratch, under its name, and frees its
    /// memory; returns how many there were. From then on a process that opens the inner
    /// scratch itself (a worker container taking tasks over from the application master)
    /// reads them as well. The bytes are copied as they are: a held run's uncompressed
    /// blocks are part of the run format every reader reads. Call it while no task writes.
    pub fn persist(&self) -> io::Result<usize> {
        let names: Vec<String> = self.budget.state.lock().1.keys().cloned().collect();
        for name in &names {
            let mut from = self.memory.open_range(name, 0, u64::MAX)?;
            let mut to = self.inner.create(name)?;
            io::copy(&mut from, &mut to)?;
            to.close()?;
            self.memory.remove(name)?;
            self.budget.release(name);
        }
        Ok(names.len())
    }

    fn holds(&self, name: &str) -> bool {
        self.budget.state.lock().1.contains_key(name)
    }
}

/// A file written to memory; on close its reservation becomes its size.
struct HeldFile {
    name: String,
    reserved: usize,
    written: usize,
    file: Option<Box<dyn ScratchFile>>,
    budget: Arc<Budget>,
}

impl Write for HeldFile {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("held file already closed"))?
            .write(b)?;
        self.written += n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ScratchFile for HeldFile {
    fn close(mut self: Box<Self>) -> io::Result<u64> {
        let file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("held file already closed"))?;
        let n = file.close()?;
        self.budget.settle(&self.name, self.reserved, self.written);
        self.reserved = 0;
        Ok(n)
    }
}

impl Drop for HeldFile {
    fn drop(&mut self) {
        if self.file.is_some() {
            // Never closed (an error on the way): give the reservation back.
            self.budget.settle(&self.name, self.reserved, 0);
            self.budget.release(&self.name);
        }
    }
}

impl Scratch for HeldScratch {
    fn create(&self, name: &str) -> io::Result<Box<dyn ScratchFile>> {
        if self.holds(name) {
            self.remove(name)?;
        }
        self.inner.create(name)
    }
    fn open_range(&self, name: &str, offset: u64, len: u64) -> io::Result<Box<dyn Read + Send>> {
        if self.holds(name) {
            self.memory.open_range(name, offset, len)
        } else {
            self.inner.open_range(name, offset, len)
        }
    }
    fn read_ranges(&self, name: &str, ranges: &[(u64, u64)]) -> io::Result<Vec<bytes::Bytes>> {
        if self.holds(name) {
            self.memory.read_ranges(name, ranges)
        } else {
            self.inner.read_ranges(name, ranges)
        }
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        if self.holds(name) {
            self.memory.remove(name)?;
            self.budget.release(name);
            return Ok(());
        }
        self.inner.remove(name)
    }
    fn size(&self, name: &str) -> io::Result<u64> {
        if self.holds(name) {
            self.memory.size(name)
        } else {
            self.inner.size(name)
        }
    }
    fn remove_all(&self) -> io::Result<()> {
        self.memory.remove_all()?;
        let mut s = self.budget.state.lock();
        let held: usize = s.1.drain().map(|(_, n)| n).sum();
        s.0 += held;
        drop(s);
        self.inner.remove_all()
    }
    fn describe(&self) -> String {
        format!(
            "{} (runs held in memory while they fit)",
            self.inner.describe()
        )
    }
    fn create_in_memory(&self, name: &str, bytes: usize) -> Option<Box<dyn ScratchFile>> {
        if self.holds(name) || !self.budget.reserve(bytes) {
            return None;
        }
        let file = self.memory.create_sized(name, bytes);
        Some(Box::new(HeldFile {
            name: name.to_string(),
            reserved: bytes,
            written: 0,
            file: Some(file),
            budget: Arc::clone(&self.budget),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(s: &dyn Scratch, name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        s.open_range(name, 0, u64::MAX)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn holds_files_while_the_budget_lasts_and_passes_the_rest_on() {
        let inner = Arc::new(MemoryScratch::default());
        let held = HeldScratch::new(inner.clone(), 100);
        let mut a = held.create_in_memory("a", 60).unwrap();
        a.write_all(b"held bytes").unwrap();
        a.close().unwrap();
        assert_eq!(held.free(), 90, "the reservation became the file's size");
        assert!(held.create_in_memory("b", 95).is_none(), "over the budget");
        let mut b = held.create("b").unwrap();
        b.write_all(b"on disk").unwrap();
        b.close().unwrap();
        assert_eq!(read_all(&held, "a"), b"held bytes");
        assert_eq!(read_all(&held, "b"), b"on disk");
        assert_eq!(
            inner.names(),
            vec!["b".to_string()],
            "only b reached the inner scratch"
        );
        held.remove("a").unwrap();
        assert_eq!(held.free(), 100);
        drop(held.create_in_memory("c", 100).unwrap());
        assert_eq!(
            held.free(),
            100,
            "an abandoned file gives its reservation back"
        );
        held.remove_all().unwrap();
        assert!(inner.names().is_empty());
    }

    #[test]
    fn persisting_moves_the_held_files_to_the_inner_scratch() {
        let inner = Arc::new(MemoryScratch::default());
        let held = HeldScratch::new(inner.clone(), 100);
        let mut a = held.create_in_memory("m0/spill-0.run", 50).unwrap();
        a.write_all(b"held run").unwrap();
        a.close().unwrap();
        let mut b = held.create("m1/spill-0.run").unwrap();
        b.write_all(b"already inside").unwrap();
        b.close().unwrap();
        assert_eq!(held.persist().unwrap(), 1);
        assert_eq!(held.free(), 100, "the memory is given back");
        assert_eq!(
            inner.names(),
            vec!["m0/spill-0.run".to_string(), "m1/spill-0.run".to_string()]
        );
        assert_eq!(read_all(inner.as_ref(), "m0/spill-0.run"), b"held run");
        assert_eq!(read_all(&held, "m0/spill-0.run"), b"held run");
        assert_eq!(held.persist().unwrap(), 0, "nothing is held any more");
        held.remove("m0/spill-0.run").unwrap();
        assert_eq!(inner.names(), vec!["m1/spill-0.run".to_string()]);
    }
}
