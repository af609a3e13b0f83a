//! Numbered parts (`output.max_file_size`): the sink that takes a partition's gzip members in
//! order and cuts them into parts, each a complete gzip file of at most the limit, starting
//! a fresh part before a member that would pass it, and only where a line ends (the members
//! of a line longer than half a member are held until it ends). Concatenated, the parts are
//! the unsplit partition's gzip stream.
//!
//! A partition that fits keeps its unsplit name. Whether it fits is known only at its end
//! (or when the limit is first reached), so the first part is staged under the unsplit name
//! and renamed at commit when a second part appears. Stores whose staged names are final
//! (object stores: the multipart upload's key) get the first part spooled to the run's
//! scratch until its name is known, unless the partition's uncompressed size already proves
//! that it fits.

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::job::template::OutputTemplate;
use crate::sort::{MemberInfo, MemberSink};
use crate::storage::{OutputStore, Scratch, StagedObject, StagedWriter};

/// One staged part of a partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedPart {
    pub staged: StagedObject,
    /// Lines in this part.
    pub lines: u64,
}

/// How the parts of one partition are named and bounded.
pub struct PartPlan<'a> {
    /// Largest size of one part, bytes.
    pub limit: u64,
    /// The unsplit partition's path (relative to the output root).
    pub partition: String,
    pub template: &'a OutputTemplate,
    pub domain: &'a str,
    pub bucket_ms: i64,
    /// Spool the first part to scratch under this name (see the module docs), or `None` to
    /// stage it at once.
    pub spool: Option<String>,
    /// The task attempt writing the parts (`r00003.1`): each is staged where only it
    /// writes ([`OutputStore::stage_attempt`]).
    pub attempt: &'a str,
}

impl PartPlan<'_> {
    /// The path of part `n` (1-based) when the partition has several.
    pub fn part_path(&self, n: u32) -> String {
        self.template.render_part(self.domain, self.bucket_ms, n)
    }
}

/// Where the bytes of the part being filled go.
enum Target {
    Staged(Box<dyn StagedWriter>),
    Spool(Box<dyn crate::storage::ScratchFile>),
}

struct OpenPart {
    target: Target,
    bytes: u64,
    lines: u64,
}

/// A [`MemberSink`] writing numbered parts to the output's staging area.
pub struct PartSink<'a> {
    plan: PartPlan<'a>,
    output: &'a dyn OutputStore,
    scratch: &'a dyn Scratch,
    current: Option<OpenPart>,
    done: Vec<StagedPart>,
    /// Members of a line not yet ended (lines longer than half a member), and the lines
    /// they end.
    line: Vec<u8>,
    line_lines: u64,
}

impl<'a> PartSink<'a> {
    pub fn new(plan: PartPlan<'a>, output: &'a dyn OutputStore, scratch: &'a dyn Scratch) -> Self {
        PartSink {
            plan,
            output,
            scratch,
            current: None,
            done: Vec::new(),
            line: Vec::new(),
            line_lines: 0,
        }
    }

    /// Places the held members of a line.
    fn place_line(&mut self) -> io::Result<()> {
        let line = std::mem::take(&mut self.line);
        let lines = std::mem::take(&mut self.line_lines);
        self.place(&line, lines)
    }

    /// Closes the last part and returns every part in order; a single part keeps the unsplit
    /// name, several are named by the part template.
    pub fn finish(mut self) -> io::Result<Vec<StagedPart>> {
        if !self.line.is_empty() {
            // The input ended without a newline.
            self.place_line()?;
        }
        self.close(true)?;
        if self.done.len() > 1 {
            // Staged under the unsplit name; published under its part name.
            let first = self.plan.part_path(1);
            self.done[0].staged.rel = first;
        }
        Ok(self.done)
    }

    fn stage(&self, rel: &str) -> io::Result<Box<dyn StagedWriter>> {
        self.output
            .stage_attempt(rel, self.plan.attempt)
            .map_err(io::Error::other)
    }

    fn open(&mut self) -> io::Result<()> {
        let n = self.done.len() as u32 + 1;
        let target = match (&self.plan.spool, n) {
            (Some(name), 1) => Target::Spool(self.scratch.create(name)?),
            (None, 1) => Target::Staged(self.stage(&self.plan.partition)?),
            _ => Target::Staged(self.stage(&self.plan.part_path(n))?),
        };
        self.current = Some(OpenPart {
            target,
            bytes: 0,
            lines: 0,
        });
        Ok(())
    }

    /// Finishes the part being filled; `last` says no part follows (names a spooled first
    /// part).
    fn close(&mut self, last: bool) -> io::Result<()> {
        let Some(part) = self.current.take() else {
            return Ok(());
        };
        let writer = match part.target {
            Target::Staged(w) => w,
            Target::Spool(file) => {
                file.close()?;
                let name = self.plan.spool.clone().unwrap_or_default();
                let rel = if last {
                    self.plan.partition.clone()
                } else {
                    self.plan.part_path(1)
                };
                let mut w = self.stage(&rel)?;
                let mut r = self.scratch.open_range(&name, 0, u64::MAX)?;
                let copied = io::copy(&mut r, &mut w)?;
                drop(r);
                if copied != part.bytes {
                    return Err(io::Error::other(format!(
                        "{}: spooled {} bytes of the first part, read back {copied}",
                        self.plan.partition, part.bytes
                    )));
                }
                self.scratch.remove(&name)?;
                w
            }
        };
        let staged = writer.finish().map_err(io::Error::other)?;
        self.done.push(StagedPart {
            staged,
            lines: part.lines,
        });
        Ok(())
    }
}

impl PartSink<'_> {
    /// Writes `gz` (whole lines) to the part being filled, or to a new part when it would
    /// pass the limit.
    fn place(&mut self, gz: &[u8], lines: u64) -> io::Result<()> {
        let len = gz.len() as u64;
        let limit = self.plan.limit;
        if len > limit {
            return Err(io::Error::other(format!(
                "{}: {lines} line(s) take {len} gzip bytes where no line ends, more than \
                 output.max_file_size = {limit} bytes allows in one part",
                self.plan.partition
            )));
        }
        if matches!(&self.current, Some(part) if part.bytes > 0 && part.bytes + len > limit) {
            self.close(false)?;
        }
        if self.current.is_none() {
            self.open()?;
        }
        let Some(part) = self.current.as_mut() else {
            return Err(io::Error::other("no part open"));
        };
        match &mut part.target {
            Target::Staged(w) => w.write_all(gz)?,
            Target::Spool(f) => f.write_all(gz)?,
        }
        part.bytes += len;
        part.lines += lines;
        Ok(())
    }
}

impl MemberSink for PartSink<'_> {
    fn counts_lines(&self) -> bool {
        true
    }

    fn member(&mut self, gz: &[u8], info: MemberInfo) -> io::Result<()> {
        if info.ends_line && self.line.is_empty() {
            return self.place(gz, info.lines);
        }
        // A member ending inside a line: held with the members that follow until the line
        // ends, so that one line never spans two parts.
        self.line.extend_from_slice(gz);
        self.line_lines += info.lines;
        if self.line.len() as u64 > self.plan.limit {
            return Err(io::Error::other(format!(
                "{}: a line longer than output.max_file_size = {} bytes allows (gzip'd) in \
                 one part",
                self.plan.partition, self.plan.limit
            )));
        }
        if info.ends_line {
            self.place_line()?;
        }
        Ok(())
    }

    fn flush_members(&mut self) -> io::Result<()> {
        match self.current.as_mut().map(|p| &mut p.target) {
            Some(Target::Staged(w)) => w.flush(),
            Some(Target::Spool(f)) => f.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::sort::GzipMembersWriter;
    use crate::storage::local::LocalOutput;
    use crate::storage::memory::MemoryScratch;

    const HOUR: i64 = 1_762_308_000_000;

    /// `LocalOutput` that says its staged names are final, as an object store's are.
    struct FixedNames(LocalOutput);

    impl OutputStore for FixedNames {
        fn stage(&self, rel: &str) -> Result<Box<dyn StagedWriter>, crate::storage::StorageError> {
            self.0.stage(rel)
        }
        fn stage_attempt(
            &self,
            rel: &str,
            attempt: &str,
        ) -> Result<Box<dyn StagedWriter>, crate::storage::StorageError> {
            self.0.stage_attempt(rel, attempt)
        }
        fn discard(&self, staged: &StagedObject) -> Result<(), crate::storage::StorageError> {
            self.0.discard(staged)
        }
        fn publish(
            &self,
            staged: &StagedObject,
        ) -> Result<crate::storage::Published, crate::storage::StorageError> {
            self.0.publish(staged)
        }
        fn abort(&self) -> Result<(), crate::storage::StorageError> {
            self.0.abort()
        }
        fn staged_left(&self) -> Result<bool, crate::storage::StorageError> {
            self.0.staged_left()
        }
        fn put_atomic(&self, rel: &str, bytes: &[u8]) -> Result<(), crate::storage::StorageError> {
            self.0.put_atomic(rel, bytes)
        }
        fn remove(&self, rel: &str) -> Result<(), crate::storage::StorageError> {
            self.0.remove(rel)
        }
        fn url(&self, rel: &str) -> String {
            self.0.url(rel)
        }
        fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, crate::storage::StorageError> {
            self.0.read(rel)
        }
        fn size(&self, rel: &str) -> Result<Option<u64>, crate::storage::StorageError> {
            self.0.size(rel)
        }
    }

    fn text(lines: usize) -> Vec<u8> {
        let mut x = 88172645463325252u64;
        let mut out = Vec::new();
        for i in 0..lines {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(format!("{i} GET /p/{x:x} 200 {}\n", x % 9973).as_bytes());
        }
        out
    }

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(gz)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    struct Outcome {
        parts: Vec<StagedPart>,
        /// Bytes of each published file, in part order.
        files: Vec<Vec<u8>>,
    }

    /// Writes `data` as parts of at most `limit` bytes through `store`, commits, reads back.
    fn split(data: &[u8], limit: u64, member: usize, fixed_names: bool) -> io::Result<Outcome> {
        let dir = tempfile::tempdir().unwrap();
        let local = LocalOutput::new(dir.path().to_path_buf(), "run1");
        let store: Box<dyn OutputStore> = if fixed_names {
            Box::new(FixedNames(local))
        } else {
            Box::new(local)
        };
        let scratch = MemoryScratch::default();
        let template =
            OutputTemplate::parse_parts("k", "{domain}/%Y%m%d%H.part-{part}.gz", 0).unwrap();
        let plan = PartPlan {
            limit,
            partition: "a.com/2025110502.gz".into(),
            template: &template,
            domain: "a.com",
            bucket_ms: HOUR,
            spool: fixed_names.then(|| "r1.part1.gz".to_string()),
            attempt: "r00001.1",
        };
        let sink = PartSink::new(plan, store.as_ref(), &scratch);
        let mut gz = GzipMembersWriter::new(sink, 6, member, 2);
        gz.write_all(data)?;
        let parts = gz.finish()?.finish()?;
        let staged: Vec<StagedObject> = parts.iter().map(|p| p.staged.clone()).collect();
        store.commit(&staged).unwrap();
        assert!(
            scratch.names().is_empty(),
            "spool left: {:?}",
            scratch.names()
        );
        let files = parts
            .iter()
            .map(|p| std::fs::read(dir.path().join(&p.staged.rel)).unwrap())
            .collect();
        Ok(Outcome { parts, files })
    }

    #[test]
    fn parts_are_whole_gzip_files_within_the_limit_in_order() {
        let data = text(60_000);
        let limit = 96 << 10;
        for fixed_names in [false, true] {
            let out = split(&data, limit, 24 << 10, fixed_names).unwrap();
            assert!(out.parts.len() >= 3, "{} parts", out.parts.len());
            let names: Vec<&str> = out.parts.iter().map(|p| p.staged.rel.as_str()).collect();
            let want: Vec<String> = (1..=out.parts.len())
                .map(|n| format!("a.com/2025110502.part-{n:05}.gz"))
                .collect();
            assert_eq!(names, want);
            let mut lines = 0;
            for (part, file) in out.parts.iter().zip(&out.files) {
                assert!(file.len() as u64 <= limit, "{} bytes", file.len());
                assert_eq!(part.staged.bytes, file.len() as u64);
                // Every part alone is a gzip file of whole lines.
                let plain = gunzip(file);
                assert_eq!(plain.last(), Some(&b'\n'));
                assert_eq!(
                    part.lines,
                    plain.iter().filter(|b| **b == b'\n').count() as u64
                );
                lines += part.lines;
            }
            assert_eq!(lines, 60_000);
            // All but the last part are nearly full: the next member would not fit.
            for f in &out.files[..out.files.len() - 1] {
                assert!(f.len() as u64 > limit / 2, "{} bytes", f.len());
            }
            assert_eq!(
                gunzip(&out.files.concat()),
                data,
                "fixed names {fixed_names}"
            );
        }
    }

    #[test]
    fn a_partition_that_fits_keeps_its_unsplit_name() {
        let data = text(2_000);
        for fixed_names in [false, true] {
            let out = split(&data, 1 << 20, 24 << 10, fixed_names).unwrap();
            assert_eq!(out.parts.len(), 1);
            assert_eq!(out.parts[0].staged.rel, "a.com/2025110502.gz");
            assert_eq!(out.parts[0].lines, 2_000);
            assert_eq!(gunzip(&out.files[0]), data);
        }
    }

    #[test]
    fn a_line_spanning_members_never_splits_across_parts() {
        // Lines of 40 KiB with members of 16 KiB: every member but the line's last ends
        // mid-line, so a part may only end where a line does.
        let line = |c: u8| {
            let mut l = vec![c; 40 << 10];
            l.push(b'\n');
            l
        };
        let data: Vec<u8> = (b'a'..=b'z').flat_map(line).collect();
        // Repeated bytes compress to a few dozen bytes a member: parts of 1 KiB hold several
        // lines, and each cut must wait for a member that ends one.
        let out = split(&data, 1 << 10, 16 << 10, false).unwrap();
        assert!(out.parts.len() > 1);
        for (part, file) in out.parts.iter().zip(&out.files) {
            let plain = gunzip(file);
            assert_eq!(plain.last(), Some(&b'\n'));
            assert_eq!(plain.len() % ((40 << 10) + 1), 0);
            assert!(file.len() as u64 <= 1 << 10);
            assert!(part.lines >= 1);
        }
        assert_eq!(gunzip(&out.files.concat()), data);
    }

    #[test]
    fn a_line_that_cannot_fit_a_part_is_an_error_naming_the_partition() {
        // Random-looking long lines: members spanning a line fill the part before it ends.
        let mut data = Vec::new();
        let mut x = 7u64;
        for _ in 0..(200 << 10) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data.push(b'a' + (x % 26) as u8);
        }
        data.push(b'\n');
        let err = split(&data, 64 << 10, 16 << 10, false)
            .err()
            .expect("an error");
        assert!(err.to_string().contains("a.com/2025110502.gz"), "{err}");
        assert!(err.to_string().contains("max_file_size"), "{err}");
    }
}
