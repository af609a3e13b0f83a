//! Parallel gzip encoding as a sequence of independent gzip members.
//!
//! A gzip file may hold several members back to back (`zcat` and `MultiGzDecoder` read them
//! all), so the output stream is cut into members of about `member_bytes` input bytes, each
//! compressed on its own with libdeflate on a small pool of threads and written in order. A
//! member ends at a line boundary when one is in its second half. The bytes depend only on
//! the input, the level and the member size, never on the thread count or on how the input
//! was split into `write` calls. This module does not buffer the output beyond one member.
//! Members go to a [`MemberSink`]: any `Write` (the bytes back to back), or a sink that
//! wants each member whole with its line count (numbered parts cut at member boundaries).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::mem;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use libdeflater::{CompressionLvl, Compressor};

/// Highest libdeflate level; higher requested levels are clamped to it.
const MAX_LEVEL: u32 = 12;

/// Where compressed members go, in order, each whole.
pub trait MemberSink: Send {
    /// Whether [`MemberInfo::lines`] is wanted (asked once, when the writer is made); when
    /// false it is 0 and the members' input is not scanned for newlines.
    fn counts_lines(&self) -> bool;
    /// Takes the next complete gzip member. `info` says how many lines its input holds and
    /// whether that input ends at the end of a line (else the next member continues it).
    fn member(&mut self, gz: &[u8], info: MemberInfo) -> io::Result<()>;
    /// Flushes what the sink buffers.
    fn flush_members(&mut self) -> io::Result<()>;
}

/// What a member holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberInfo {
    /// Newlines in the member's input (0 unless the sink [counts
    /// lines](MemberSink::counts_lines)).
    pub lines: u64,
    /// The input ends with a newline (or is empty): a later member starts a fresh line.
    pub ends_line: bool,
}

impl MemberInfo {
    fn of(input: &[u8], count_lines: bool) -> MemberInfo {
        MemberInfo {
            lines: if count_lines {
                memchr::memchr_iter(b'\n', input).count() as u64
            } else {
                0
            },
            ends_line: input.last().is_none_or(|b| *b == b'\n'),
        }
    }
}

/// Any writer is a sink of the members' bytes back to back.
impl<W: Write + Send> MemberSink for W {
    fn counts_lines(&self) -> bool {
        false
    }
    fn member(&mut self, gz: &[u8], _info: MemberInfo) -> io::Result<()> {
        self.write_all(gz)
    }
    fn flush_members(&mut self) -> io::Result<()> {
        self.flush()
    }
}

/// The largest member input whose compressed size can never pass `limit` bytes, whatever
/// the data (libdeflate's bound for `level`); 0 when even an empty member would not fit.
pub fn max_member_input(limit: u64, level: u32) -> usize {
    let mut c = Compressor::new(compression_level(level));
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut n = limit;
    loop {
        let bound = c.gzip_compress_bound(n);
        if bound <= limit {
            return n;
        }
        if n == 0 {
            return 0;
        }
        n = n.saturating_sub((bound - limit).max(1));
    }
}

/// The most bytes `input` bytes can take written by a [`GzipMembersWriter`] with members of
/// `member_bytes`, whatever the data: members end in their second half or at the end, so
/// there are at most `2 × input / member_bytes + 1` of them.
pub fn gzip_bound(input: u64, member_bytes: usize) -> u64 {
    let mut c = Compressor::new(CompressionLvl::default());
    let member_bytes = member_bytes.max(1);
    let members = (2 * input).div_ceil(member_bytes as u64) + 1;
    let overhead = c.gzip_compress_bound(member_bytes) - member_bytes;
    input + members * overhead as u64
}

/// Writes gzip output as a sequence of independent gzip members of `member_bytes` input bytes
/// each (a valid gzip file), compressing members on `threads` threads at `level`.
/// Deterministic: the same input gives the same bytes whatever the thread count.
///
/// [`finish`](Self::finish) must be called: dropping the writer stops its threads but discards
/// the member being filled (and any member still being compressed).
pub struct GzipMembersWriter<W: MemberSink> {
    inner: W,
    /// Input of the member being filled; at most `member_bytes` long.
    pending: Vec<u8>,
    member_bytes: usize,
    engine: Engine,
    /// Members handed to the engine so far.
    members: u64,
    /// The sink wants line counts.
    count_lines: bool,
    /// Set after an error: the output is incomplete and every later call fails.
    failed: bool,
}

/// Who compresses members: the caller's thread, or a pool of workers.
enum Engine {
    Inline {
        compressor: Compressor,
        /// Compressed member, reused.
        out: Vec<u8>,
        /// The previous member's input buffer, reused.
        spare: Vec<u8>,
    },
    Pool(Pool),
}

impl<W: MemberSink> GzipMembersWriter<W> {
    /// A writer to `inner`. `level` is a libdeflate level (0–12, higher is clamped to 12;
    /// 6 is gzip's default); `member_bytes` is the input size of a member (at least 1;
    /// 4–16 MiB suits parallel compression and later splitting); `threads` is the number of
    /// compressing threads (0 and 1 compress on the caller's thread, without spawning; so
    /// does any count if no thread can be spawned).
    pub fn new(inner: W, level: u32, member_bytes: usize, threads: usize) -> Self {
        let member_bytes = member_bytes.max(1);
        let lvl = compression_level(level);
        let count_lines = inner.counts_lines();
        let pool = (threads > 1)
            .then(|| Pool::new(lvl, threads, count_lines))
            .filter(|pool| !pool.workers.is_empty());
        // Without threads (asked for, or could not be spawned) members compress inline.
        let engine = match pool {
            Some(pool) => Engine::Pool(pool),
            None => Engine::Inline {
                compressor: Compressor::new(lvl),
                out: Vec::new(),
                spare: Vec::new(),
            },
        };
        GzipMembersWriter {
            inner,
            pending: Vec::with_capacity(member_bytes),
            member_bytes,
            engine,
            members: 0,
            count_lines,
            failed: false,
        }
    }

    /// Writes all pending members and returns the inner writer (flushed). An empty input
    /// still gives one (empty) member, so the output is always a valid gzip file.
    pub fn finish(mut self) -> io::Result<W> {
        self.check()?;
        if !self.pending.is_empty() || self.members == 0 {
            let member = mem::take(&mut self.pending);
            self.compress(member)?;
        }
        let GzipMembersWriter {
            mut inner, engine, ..
        } = self;
        if let Engine::Pool(mut pool) = engine {
            pool.drain(&mut inner)?;
            pool.shut_down()?;
        }
        inner.flush_members()?;
        Ok(inner)
    }

    /// Number of members started so far (including the one being filled, if it has bytes).
    pub fn members(&self) -> u64 {
        self.members + u64::from(!self.pending.is_empty())
    }

    fn check(&self) -> io::Result<()> {
        if self.failed {
            Err(io::Error::other(
                "the gzip writer failed earlier; its output is incomplete",
            ))
        } else {
            Ok(())
        }
    }

    /// Closes the full pending member, at the last line boundary in its second half if any.
    fn cut(&mut self) -> io::Result<()> {
        let at = match memchr::memrchr(b'\n', &self.pending) {
            Some(p) if p + 1 >= self.member_bytes / 2 => p + 1,
            _ => self.pending.len(),
        };
        let mut next = self.fresh_buffer();
        next.extend_from_slice(&self.pending[at..]);
        self.pending.truncate(at);
        let member = mem::replace(&mut self.pending, next);
        self.compress(member)
    }

    fn fresh_buffer(&mut self) -> Vec<u8> {
        let spare = match &mut self.engine {
            Engine::Inline { spare, .. } => mem::take(spare),
            Engine::Pool(pool) => pool.free_inputs.pop().unwrap_or_default(),
        };
        let mut buf = spare;
        buf.clear();
        buf.reserve(self.member_bytes);
        buf
    }

    fn compress(&mut self, member: Vec<u8>) -> io::Result<()> {
        self.members += 1;
        let result = match &mut self.engine {
            Engine::Inline {
                compressor,
                out,
                spare,
            } => {
                let info = MemberInfo::of(&member, self.count_lines);
                let r = gzip_member(compressor, &member, out)
                    .and_then(|()| self.inner.member(out, info));
                *spare = member;
                r
            }
            Engine::Pool(pool) => pool.submit(member, &mut self.inner),
        };
        if result.is_err() {
            self.failed = true;
        }
        result
    }
}

impl<W: MemberSink> Write for GzipMembersWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check()?;
        let mut rest = buf;
        while !rest.is_empty() {
            let n = (self.member_bytes - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if self.pending.len() >= self.member_bytes {
                self.cut()?;
            }
        }
        Ok(buf.len())
    }

    /// Writes every member that has been handed to the compressors and flushes the inner
    /// writer. The member being filled is not cut: it is written when full or by `finish`.
    fn flush(&mut self) -> io::Result<()> {
        self.check()?;
        let result = match &mut self.engine {
            Engine::Inline { .. } => Ok(()),
            Engine::Pool(pool) => pool.drain(&mut self.inner),
        }
        .and_then(|()| self.inner.flush_members());
        if result.is_err() {
            self.failed = true;
        }
        result
    }
}

fn compression_level(level: u32) -> CompressionLvl {
    // Every level up to MAX_LEVEL is valid for libdeflate; the fallback is unreachable.
    CompressionLvl::new(level.min(MAX_LEVEL) as i32).unwrap_or_default()
}

/// Compresses `input` as one complete gzip member into `out`.
fn gzip_member(c: &mut Compressor, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    let bound = c.gzip_compress_bound(input.len());
    out.resize(bound, 0);
    let n = c
        .gzip_compress(input, out)
        .map_err(|e| io::Error::other(format!("gzip compression failed: {e:?}")))?;
    out.truncate(n);
    Ok(())
}

/// A member to compress, with a buffer to compress it into.
struct Job {
    seq: u64,
    input: Vec<u8>,
    output: Vec<u8>,
}

/// A compressed member (or the error compressing it), with its buffers returned for reuse.
struct Done {
    seq: u64,
    input: Vec<u8>,
    output: Vec<u8>,
    info: MemberInfo,
    result: io::Result<()>,
}

/// Worker threads and the bookkeeping that writes their members in order. At most
/// `max_in_flight` members are between submission and being written, so memory is bounded by
/// about (threads + 2) × 2 members.
struct Pool {
    /// Dropped to tell the workers to stop.
    jobs: Option<SyncSender<Job>>,
    results: Receiver<Done>,
    /// Joined by `shut_down` or on drop.
    workers: Vec<JoinHandle<()>>,
    /// Sequence number of the next member to submit, and of the next to write.
    next_submit: u64,
    next_write: u64,
    /// Compressed members that finished before their turn to be written.
    ready: BTreeMap<u64, (Vec<u8>, MemberInfo)>,
    free_inputs: Vec<Vec<u8>>,
    free_outputs: Vec<Vec<u8>>,
    max_in_flight: u64,
}

impl Pool {
    fn new(level: CompressionLvl, threads: usize, count_lines: bool) -> Self {
        let max_in_flight = threads + 1;
        let (job_tx, job_rx) = mpsc::sync_channel::<Job>(max_in_flight);
        let (done_tx, done_rx) = mpsc::sync_channel::<Done>(max_in_flight);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let workers = (0..threads)
            .map(|i| {
                let jobs = Arc::clone(&job_rx);
                let done = done_tx.clone();
                thread::Builder::new()
                    .name(format!("filex-gzip-{i}"))
                    .spawn(move || compress_jobs(level, count_lines, &jobs, &done))
            })
            .filter_map(Result::ok)
            .collect();
        Pool {
            jobs: Some(job_tx),
            results: done_rx,
            workers,
            next_submit: 0,
            next_write: 0,
            ready: BTreeMap::new(),
            free_inputs: Vec::new(),
            free_outputs: Vec::new(),
            max_in_flight: max_in_flight as u64,
        }
    }

    fn submit(&mut self, input: Vec<u8>, out: &mut dyn MemberSink) -> io::Result<()> {
        while self.next_submit - self.next_write >= self.max_in_flight {
            self.receive(out)?;
        }
        let job = Job {
            seq: self.next_submit,
            input,
            output: self.free_outputs.pop().unwrap_or_default(),
        };
        let sent = match &self.jobs {
            Some(jobs) if !self.workers.is_empty() => jobs.send(job).is_ok(),
            _ => false,
        };
        if !sent {
            return Err(stopped());
        }
        self.next_submit += 1;
        Ok(())
    }

    /// Waits for one member to finish, then writes every member whose turn has come.
    fn receive(&mut self, out: &mut dyn MemberSink) -> io::Result<()> {
        let done = self.results.recv().map_err(|_| stopped())?;
        self.free_inputs.push(done.input);
        done.result?;
        self.ready.insert(done.seq, (done.output, done.info));
        while let Some((member, info)) = self.ready.remove(&self.next_write) {
            out.member(&member, info)?;
            self.free_outputs.push(member);
            self.next_write += 1;
        }
        Ok(())
    }

    /// Writes every submitted member.
    fn drain(&mut self, out: &mut dyn MemberSink) -> io::Result<()> {
        while self.next_write < self.next_submit {
            self.receive(out)?;
        }
        Ok(())
    }

    /// Stops the workers and reports one that panicked.
    fn shut_down(&mut self) -> io::Result<()> {
        self.jobs = None;
        let mut result = Ok(());
        for w in self.workers.drain(..) {
            if w.join().is_err() {
                result = Err(stopped());
            }
        }
        result
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let _ = self.shut_down();
    }
}

fn stopped() -> io::Error {
    io::Error::other("a gzip compression thread stopped unexpectedly")
}

/// A worker: compresses jobs until the job channel closes or nobody takes results.
fn compress_jobs(
    level: CompressionLvl,
    count_lines: bool,
    jobs: &Mutex<Receiver<Job>>,
    done: &SyncSender<Done>,
) {
    let mut compressor = Compressor::new(level);
    loop {
        let job = match jobs.lock() {
            Ok(rx) => match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Err(_) => return,
        };
        let Job {
            seq,
            input,
            mut output,
        } = job;
        let result = gzip_member(&mut compressor, &input, &mut output);
        let info = MemberInfo::of(&input, count_lines);
        let reply = Done {
            seq,
            input,
            output,
            info,
            result,
        };
        if done.send(reply).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn text(lines: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        let mut out = Vec::new();
        for i in 0..lines {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let pad = "abcdefghij".repeat((x % 40) as usize);
            out.extend_from_slice(format!("{i} GET /p/{x:x} 200 {pad}\n").as_bytes());
        }
        out
    }

    fn gzip(data: &[u8], member: usize, threads: usize, write_size: usize) -> Vec<u8> {
        let mut w = GzipMembersWriter::new(Vec::new(), 6, member, threads);
        for piece in data.chunks(write_size.max(1)) {
            w.write_all(piece).unwrap();
        }
        w.finish().unwrap()
    }

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(gz)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// Number of members the writer makes of `data`.
    fn member_count(data: &[u8], member: usize) -> u64 {
        let mut w = GzipMembersWriter::new(io::sink(), 1, member, 1);
        w.write_all(data).unwrap();
        let n = w.members();
        w.finish().unwrap();
        n
    }

    /// Decodes each member on its own.
    fn members(gz: &[u8]) -> Vec<Vec<u8>> {
        let mut rest = gz;
        let mut members = Vec::new();
        while !rest.is_empty() {
            let mut d = flate2::bufread::GzDecoder::new(rest);
            let mut out = Vec::new();
            d.read_to_end(&mut out).unwrap();
            members.push(out);
            rest = d.into_inner();
        }
        members
    }

    #[test]
    fn output_is_identical_for_any_thread_count_and_write_size() {
        let data = text(20_000, 7);
        let reference = gzip(&data, 64 << 10, 1, data.len());
        assert_eq!(gunzip(&reference), data);
        for threads in [2, 3, 8] {
            for write_size in [1 << 20, 4096, 333] {
                assert_eq!(
                    gzip(&data, 64 << 10, threads, write_size),
                    reference,
                    "threads {threads}, writes of {write_size}"
                );
            }
        }
    }

    #[test]
    fn members_end_at_line_boundaries() {
        let data = text(5_000, 3);
        let member = 16 << 10;
        let parts = members(&gzip(&data, member, 2, 1000));
        assert!(parts.len() > 5, "only {} members", parts.len());
        assert_eq!(parts.len() as u64, member_count(&data, member));
        for (i, part) in parts.iter().enumerate() {
            assert_eq!(part.last(), Some(&b'\n'), "member {i}");
            assert!(part.len() <= member, "member {i}");
            if i + 1 < parts.len() {
                assert!(part.len() >= member / 2, "member {i}");
            }
        }
        assert_eq!(parts.concat(), data);
    }

    #[test]
    fn lines_longer_than_a_member_are_cut_at_the_size() {
        let data = vec![b'x'; 10_000];
        let gz = gzip(&data, 1000, 2, 777);
        assert_eq!(gunzip(&gz), data);
        assert_eq!(member_count(&data, 1000), 10);
    }

    #[test]
    fn empty_input_is_one_empty_member() {
        for threads in [1, 2] {
            let gz = gzip(&[], 1 << 20, threads, 1);
            assert!(!gz.is_empty());
            assert!(gunzip(&gz).is_empty());
        }
    }

    #[test]
    fn zcat_reads_every_member() {
        let data = text(3_000, 11);
        let gz = gzip(&data, 8 << 10, 2, 4096);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.gz");
        std::fs::write(&path, &gz).unwrap();
        let out = match std::process::Command::new("zcat").arg(&path).output() {
            Ok(out) => out,
            Err(_) => return, // no zcat on this machine; MultiGzDecoder is checked elsewhere
        };
        assert!(out.status.success());
        assert_eq!(out.stdout, data);
    }

    /// Keeps each member with what the writer said of it.
    #[derive(Default)]
    struct Recorder(Vec<(Vec<u8>, MemberInfo)>);
    impl MemberSink for Recorder {
        fn counts_lines(&self) -> bool {
            true
        }
        fn member(&mut self, gz: &[u8], info: MemberInfo) -> io::Result<()> {
            self.0.push((gz.to_vec(), info));
            Ok(())
        }
        fn flush_members(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_member_sink_gets_whole_members_with_their_line_counts() {
        // Short lines, then lines longer than a member, then a tail without a newline.
        let mut data = text(3_000, 5);
        for c in [b'x', b'y'] {
            data.extend(std::iter::repeat_n(c, 20 << 10));
            data.push(b'\n');
        }
        data.extend_from_slice(b"no newline at the end");
        for threads in [1, 3] {
            let mut w = GzipMembersWriter::new(Recorder::default(), 6, 8 << 10, threads);
            for piece in data.chunks(1000) {
                w.write_all(piece).unwrap();
            }
            let members = w.finish().unwrap().0;
            assert!(members.len() > 5);
            let mut plain = Vec::new();
            for (gz, info) in &members {
                let m = gunzip(gz);
                assert_eq!(info.lines, m.iter().filter(|b| **b == b'\n').count() as u64);
                assert_eq!(info.ends_line, m.last() == Some(&b'\n'));
                plain.extend_from_slice(&m);
            }
            assert_eq!(plain, data, "threads {threads}");
            assert!(members.iter().any(|(_, i)| !i.ends_line));
            assert_eq!(members.iter().map(|(_, i)| i.lines).sum::<u64>(), 3_002);
        }
    }

    #[test]
    fn max_member_input_fits_the_limit_whatever_the_data() {
        let mut c = Compressor::new(compression_level(6));
        for limit in [100u64, 4096, 1 << 20, 8 << 20] {
            let n = max_member_input(limit, 6);
            assert!(c.gzip_compress_bound(n) as u64 <= limit, "limit {limit}");
            assert!(
                c.gzip_compress_bound(n + 64) as u64 > limit,
                "limit {limit}: {n}"
            );
        }
        assert_eq!(max_member_input(10, 6), 0);
    }

    struct FailingWriter;
    impl Write for FailingWriter {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn write_errors_reach_the_caller_and_stick() {
        for threads in [1, 2] {
            let mut w = GzipMembersWriter::new(FailingWriter, 6, 100, threads);
            let data = text(200, 1);
            let first = w.write_all(&data).and_then(|()| w.flush());
            assert!(first.is_err(), "threads {threads}");
            assert!(w.write_all(b"more\n").is_err());
            assert!(w.finish().is_err());
        }
    }
}
