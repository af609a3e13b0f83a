//! Blocking `Read` and `Write` over `hdfs-native`'s async file reader and writer.
//!
//! Both move data in chunks of a few MiB per runtime round trip, never per caller `read` or
//! `write` call (those are often one line). Reading pulls DataNode packets from one ranged
//! stream, which `hdfs-native` fills ahead in the background. Writing buffers a chunk, hands
//! it to the block pipeline, and on [`FileSink::close`] awaits the file's completion at the
//! NameNode and reports its error: a file is only whole once `close` has returned `Ok`.

use std::collections::VecDeque;
use std::io::{self, Read, Write};

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use hdfs_native::file::{FileReader, FileWriter};

use super::client::{block_on, HdfsFailure, DATA_TIMEOUT};

/// Bytes pulled from a reader per runtime round trip when streaming whole shards.
pub const READ_CHUNK: usize = 4 << 20;
/// Bytes pulled per round trip from scratch ranges: many are open at once in a merge, and
/// the merge reads them in small blocks.
pub const RANGE_CHUNK: usize = 1 << 20;
/// Bytes buffered before they are handed to the write pipeline.
pub const WRITE_CHUNK: usize = 4 << 20;

/// A `Read` over `[offset, offset + len)` of one HDFS file.
///
/// Two ways to fetch: one stream over the whole range ([`RangeReader::streaming`]), which
/// `hdfs-native` fills ahead in the background (up to about 6 MiB per block being read), for
/// the one shard a map task reads at a time; or one bounded stream per chunk
/// ([`RangeReader::windowed`]), for the many scratch segments a merge holds open at once,
/// where read-ahead per input would multiply memory by the fan-in.
pub struct RangeReader {
    url: String,
    /// The packets of the current stream, in order; `None` between windows, once the range
    /// ended, or after a failure.
    stream: Option<BoxStream<'static, hdfs_native::Result<Bytes>>>,
    /// Kept to open the next window (windowed mode only).
    reader: Option<FileReader>,
    /// Next offset to open a window at, and the end of the range.
    next: u64,
    end: u64,
    /// Received and not yet read.
    packets: VecDeque<Bytes>,
    /// Bytes of the current stream not yet received.
    expected: u64,
    chunk: usize,
    /// Set once a transfer failed: the stream's position is then unknown, so every later
    /// read repeats the error.
    failed: Option<(io::ErrorKind, String)>,
}

impl RangeReader {
    /// Reads `len` bytes from `offset` (both clamped to the file) as one stream; pulls
    /// `chunk` bytes per runtime round trip.
    pub fn streaming(
        reader: &FileReader,
        url: String,
        offset: u64,
        len: u64,
        chunk: usize,
    ) -> Self {
        let (start, end) = clamp(reader, offset, len);
        let stream = (end > start).then(|| {
            reader
                .read_range_stream(start as usize, (end - start) as usize)
                .boxed()
        });
        RangeReader {
            url,
            stream,
            reader: None,
            next: end,
            end,
            packets: VecDeque::new(),
            expected: end - start,
            chunk: chunk.max(64 << 10),
            failed: None,
        }
    }

    /// Reads `len` bytes from `offset` (both clamped to the file), opening one stream of at
    /// most `chunk` bytes at a time and draining it before the next.
    pub fn windowed(reader: FileReader, url: String, offset: u64, len: u64, chunk: usize) -> Self {
        let (start, end) = clamp(&reader, offset, len);
        RangeReader {
            url,
            stream: None,
            reader: Some(reader),
            next: start,
            end,
            packets: VecDeque::new(),
            expected: 0,
            chunk: chunk.max(64 << 10),
            failed: None,
        }
    }

    /// Whether more bytes are to be received.
    fn more(&self) -> bool {
        self.stream.is_some() || (self.reader.is_some() && self.next < self.end)
    }

    fn fail(&mut self, kind: io::ErrorKind, message: String) -> io::Error {
        self.stream = None;
        self.reader = None;
        self.packets.clear();
        self.failed = Some((kind, message.clone()));
        io::Error::new(kind, message)
    }

    /// Receives up to one chunk of packets (in windowed mode: opens and drains the next
    /// window).
    fn fill(&mut self) -> io::Result<()> {
        if self.stream.is_none() && self.next < self.end {
            if let Some(reader) = &self.reader {
                let len = (self.end - self.next).min(self.chunk as u64);
                self.stream = Some(
                    reader
                        .read_range_stream(self.next as usize, len as usize)
                        .boxed(),
                );
                self.expected = len;
                self.next += len;
            }
        }
        let Some(stream) = self.stream.as_mut() else {
            return Ok(());
        };
        // Stop at a chunk, or once the stream delivered all it owes (no need to wait for its
        // end marker).
        let want = (self.chunk as u64).min(self.expected);
        let pulled = block_on(DATA_TIMEOUT, async {
            let mut got = Vec::new();
            let mut bytes = 0u64;
            let mut ended = false;
            while bytes < want {
                match stream.next().await {
                    Some(Ok(b)) => {
                        bytes += b.len() as u64;
                        got.push(b);
                    }
                    Some(Err(e)) => return Err(e),
                    None => {
                        ended = true;
                        break;
                    }
                }
            }
            Ok((got, ended))
        });
        let (got, ended) = match pulled {
            Ok(Some(Ok(v))) => v,
            Ok(Some(Err(e))) => {
                let f = HdfsFailure::from_data(e);
                return Err(self.fail(f.kind(), format!("{}: read: {f}", self.url)));
            }
            Ok(None) => {
                let f = HdfsFailure::DataTimeout {
                    timeout: DATA_TIMEOUT,
                };
                return Err(self.fail(f.kind(), format!("{}: read: {f}", self.url)));
            }
            Err(f) => return Err(self.fail(f.kind(), format!("{}: read: {f}", self.url))),
        };
        for b in got {
            let n = b.len() as u64;
            if n > self.expected {
                let msg = format!("{}: DataNodes sent more bytes than requested", self.url);
                return Err(self.fail(io::ErrorKind::InvalidData, msg));
            }
            self.expected -= n;
            if n > 0 {
                self.packets.push_back(b);
            }
        }
        if self.expected == 0 {
            self.stream = None;
        } else if ended {
            let msg = format!(
                "{}: read ended {} bytes short of the file's length",
                self.url, self.expected
            );
            return Err(self.fail(io::ErrorKind::UnexpectedEof, msg));
        }
        Ok(())
    }
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some((kind, message)) = &self.failed {
            return Err(io::Error::new(*kind, message.clone()));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        while self.packets.is_empty() && self.more() {
            self.fill()?;
        }
        let Some(front) = self.packets.front_mut() else {
            return Ok(0);
        };
        let n = front.len().min(buf.len());
        buf[..n].copy_from_slice(&front[..n]);
        if n == front.len() {
            self.packets.pop_front();
        } else {
            let _ = front.split_to(n);
        }
        Ok(n)
    }
}

/// `[offset, offset + len)` clamped to the file: `(start, end)`.
fn clamp(reader: &FileReader, offset: u64, len: u64) -> (u64, u64) {
    let file_len = reader.file_length() as u64;
    let start = offset.min(file_len);
    (start, start + len.min(file_len - start))
}

/// A `Write` into a new HDFS file. Must be [`close`](FileSink::close)d: dropping it leaves an
/// incomplete file under construction (removed by the caller's cleanup).
pub struct FileSink {
    url: String,
    writer: Option<FileWriter>,
    buf: Vec<u8>,
    written: u64,
    failed: Option<(io::ErrorKind, String)>,
}

impl FileSink {
    pub fn new(writer: FileWriter, url: String) -> Self {
        FileSink {
            url,
            writer: Some(writer),
            buf: Vec::with_capacity(WRITE_CHUNK),
            written: 0,
            failed: None,
        }
    }

    fn check(&self) -> io::Result<()> {
        match &self.failed {
            Some((kind, message)) => Err(io::Error::new(*kind, message.clone())),
            None => Ok(()),
        }
    }

    fn fail(&mut self, f: HdfsFailure, op: &str) -> io::Error {
        let message = format!("{}: {op}: {f}", self.url);
        self.failed = Some((f.kind(), message.clone()));
        io::Error::new(f.kind(), message)
    }

    /// Hands the buffered bytes to the block pipeline.
    fn send(&mut self) -> io::Result<()> {
        self.check()?;
        if self.buf.is_empty() {
            return Ok(());
        }
        let Some(writer) = self.writer.as_mut() else {
            return Err(io::Error::other(format!("{}: write after close", self.url)));
        };
        let data = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(WRITE_CHUNK),
        ));
        let n = data.len() as u64;
        match block_on(DATA_TIMEOUT, writer.write_bytes(data)) {
            Ok(Some(Ok(_))) => {
                self.written += n;
                Ok(())
            }
            Ok(Some(Err(e))) => Err(self.fail(HdfsFailure::from_data(e), "write")),
            Ok(None) => Err(self.fail(
                HdfsFailure::DataTimeout {
                    timeout: DATA_TIMEOUT,
                },
                "write",
            )),
            Err(f) => Err(self.fail(f, "write")),
        }
    }

    /// Sends what is buffered, waits until the DataNodes acknowledged every packet and the
    /// NameNode completed the file; returns the file's length.
    pub fn close(mut self) -> io::Result<u64> {
        self.send()?;
        let Some(mut writer) = self.writer.take() else {
            return Ok(self.written);
        };
        let closed = block_on(DATA_TIMEOUT, writer.close());
        match closed {
            Ok(Some(Ok(()))) => Ok(self.written),
            Ok(Some(Err(e))) => Err(self.fail(HdfsFailure::from_data(e), "close")),
            Ok(None) => Err(self.fail(
                HdfsFailure::DataTimeout {
                    timeout: DATA_TIMEOUT,
                },
                "close",
            )),
            Err(f) => Err(self.fail(f, "close")),
        }
    }

    /// Bytes accepted so far (buffered ones included).
    pub fn len(&self) -> u64 {
        self.written + self.buf.len() as u64
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Write for FileSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.check()?;
        if self.buf.len() >= WRITE_CHUNK {
            self.send()?;
        }
        let room = WRITE_CHUNK - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= WRITE_CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    /// Hands buffered bytes to the pipeline (no `hsync`: durability comes with `close`).
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}
