//! Splits a byte stream into lines without copying them: a large buffer refilled from the
//! reader, lines handed out as slices. Lines longer than the buffer grow it.

use std::io::{self, Read};

/// Initial read buffer size.
pub const LINE_BUFFER: usize = 1 << 20;

/// Iterates over the lines of a reader, without their `\n` (and `\r\n`) terminators.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
}

impl<R: Read> LineReader<R> {
    pub fn new(inner: R) -> Self {
        LineReader {
            inner,
            buf: vec![0; LINE_BUFFER],
            start: 0,
            end: 0,
            eof: false,
        }
    }

    /// A reader over `contents`, already all in memory: its lines are handed out in place and
    /// `inner` is never read.
    pub fn with_contents(inner: R, contents: Vec<u8>) -> Self {
        LineReader {
            inner,
            end: contents.len(),
            buf: contents,
            start: 0,
            eof: true,
        }
    }

    /// Gives back the buffer (its allocation, to be reused for the next shard's contents).
    pub fn into_buffer(self) -> Vec<u8> {
        self.buf
    }

    /// The next line, or `None` at the end. A last line without `\n` is still a line.
    pub fn next_line(&mut self) -> io::Result<Option<&[u8]>> {
        let mut scanned = self.start;
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[scanned..self.end]) {
                let nl = scanned + i;
                let line_start = self.start;
                self.start = nl + 1;
                let mut line_end = nl;
                if line_end > line_start && self.buf[line_end - 1] == b'\r' {
                    line_end -= 1;
                }
                return Ok(Some(&self.buf[line_start..line_end]));
            }
            scanned = self.end;
            if self.eof {
                if self.start == self.end {
                    return Ok(None);
                }
                let line_start = self.start;
                let mut line_end = self.end;
                self.start = self.end;
                if self.buf[line_end - 1] == b'\r' {
                    line_end -= 1;
                }
                return Ok(Some(&self.buf[line_start..line_end]));
            }
            // Make room: move the partial line to the front, grow if it fills the buffer.
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                scanned -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                let len = self.buf.len();
                self.buf.resize(len * 2, 0);
            }
            let n = loop {
                match self.inner.read(&mut self.buf[self.end..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            if n == 0 {
                self.eof = true;
            }
            self.end += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], buf: usize) -> Vec<Vec<u8>> {
        let mut r = LineReader::new(input);
        r.buf = vec![0; buf];
        let mut out = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            out.push(l.to_vec());
        }
        out
    }

    #[test]
    fn splits_lf_crlf_and_a_last_line_without_newline() {
        for buf in [1, 3, 64] {
            let got = lines(b"a\r\nbb\n\nccc\r\nlast", buf);
            let want: Vec<Vec<u8>> = vec![
                b"a".to_vec(),
                b"bb".to_vec(),
                b"".to_vec(),
                b"ccc".to_vec(),
                b"last".to_vec(),
            ];
            assert_eq!(got, want, "buffer {buf}");
            assert_eq!(lines(b"x\n", buf), vec![b"x".to_vec()]);
            assert!(lines(b"", buf).is_empty());
        }
    }

    #[test]
    fn contents_in_memory_split_the_same() {
        let input = b"a\r\nbb\n\nccc\r\nlast".to_vec();
        let mut r = LineReader::with_contents(io::empty(), input.clone());
        let mut got = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            got.push(l.to_vec());
        }
        assert_eq!(got, lines(&input, 64));
        assert!(LineReader::with_contents(io::empty(), Vec::new())
            .next_line()
            .unwrap()
            .is_none());
    }

    #[test]
    fn long_lines_grow_the_buffer() {
        let long = vec![b'z'; 3 << 20];
        let mut input = long.clone();
        input.extend_from_slice(b"\nshort\n");
        let got = lines(&input, 1024);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], long);
    }
}
