//! Opening a shard: gzip (one or several concatenated members) or plain text, told apart by
//! the gzip magic bytes, so that a `.gz` file that is not gzip is an error naming the file
//! rather than a million rejected lines.
//!
//! A gzip shard that fits the caller's bound (compressed plus decompressed bytes) is inflated
//! in one call by libdeflate, about 2.5× faster than a streaming inflater. That one-shot call
//! reads one member, so it is used only when the shard is provably a single member (see
//! [`inflate_whole`]); multi-member, damaged and oversized shards are streamed through
//! flate2's `MultiGzDecoder` exactly as before, so they read and fail the same way.

use std::io::{self, BufReader, Read};

use flate2::bufread::MultiGzDecoder;
use libdeflater::Decompressor;

use super::lines::LineReader;
use crate::storage::location::Location;
use crate::storage::{InputStore, StorageError};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const READ_BUFFER: usize = 1 << 20;

/// Why a shard cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("corrupt shard {url}: not gzip although named .gz")]
    NotGzip { url: String },
    #[error("corrupt shard {url} near line {line}")]
    Corrupt {
        url: String,
        line: u64,
        #[source]
        source: io::Error,
    },
}

/// A shard's decompressed bytes: all of them in memory, or a stream.
pub enum Shard {
    Whole(Vec<u8>),
    Stream(Box<dyn Read + Send>),
}

impl Shard {
    /// Its lines; a whole shard is split in place, without copying into a read buffer.
    pub fn lines(self) -> LineReader<Box<dyn Read + Send>> {
        match self {
            Shard::Whole(bytes) => LineReader::with_contents(Box::new(io::empty()), bytes),
            Shard::Stream(r) => LineReader::new(r),
        }
    }
}

/// Opens `location` for reading its decompressed bytes. A gzip shard whose compressed plus
/// decompressed size is at most `whole_limit` bytes is inflated in memory in one call, into
/// `spare`'s allocation (see [`inflate_whole`]); any other is streamed.
pub fn open_shard(
    store: &dyn InputStore,
    location: &Location,
    whole_limit: usize,
    spare: &mut Vec<u8>,
) -> Result<Shard, ShardError> {
    let corrupt = |source| ShardError::Corrupt {
        url: location.to_string(),
        line: 0,
        source,
    };
    let raw = store.open(location)?;
    let mut reader = BufReader::with_capacity(READ_BUFFER, raw);
    let mut head = [0u8; 2];
    let n = read_up_to(&mut reader, &mut head).map_err(corrupt)?;
    if n == 2 && head == GZIP_MAGIC {
        // Read up to the bound; a shard that ends within it may be inflated whole.
        let mut gz = head.to_vec();
        (&mut reader)
            .take(whole_limit as u64)
            .read_to_end(&mut gz)
            .map_err(corrupt)?;
        let ended = gz.len() <= whole_limit
            && read_up_to(&mut reader, &mut [0u8; 1]).map_err(corrupt)? == 0;
        if ended {
            if let Some(plain) = inflate_whole(&gz, whole_limit - gz.len(), spare) {
                return Ok(Shard::Whole(plain));
            }
            return Ok(Shard::Stream(Box::new(MultiGzDecoder::new(
                io::Cursor::new(gz),
            ))));
        }
        let rest = io::Cursor::new(gz).chain(reader);
        Ok(Shard::Stream(Box::new(MultiGzDecoder::new(
            BufReader::with_capacity(READ_BUFFER, rest),
        ))))
    } else if n > 0 && location.path_str().ends_with(".gz") {
        Err(ShardError::NotGzip {
            url: location.to_string(),
        })
    } else {
        let prefix = io::Cursor::new(head[..n].to_vec());
        Ok(Shard::Stream(Box::new(prefix.chain(reader))))
    }
}

/// Opens a shard whose bytes were read whole (the map task's read-ahead): as
/// [`open_shard`] would open them, without a read buffer.
pub fn shard_from_bytes(
    bytes: Vec<u8>,
    location: &Location,
    whole_limit: usize,
    spare: &mut Vec<u8>,
) -> Result<Shard, ShardError> {
    match whole_from_bytes(bytes, whole_limit, spare) {
        Ok(whole) => Ok(whole),
        Err(bytes) => Ok(Shard::Stream(stream_from_bytes(bytes, location)?)),
    }
}

/// The fast path of [`shard_from_bytes`]: the shard inflated whole, or its bytes back when
/// it is not gzip, too big or not one clean member.
fn whole_from_bytes(
    bytes: Vec<u8>,
    whole_limit: usize,
    spare: &mut Vec<u8>,
) -> Result<Shard, Vec<u8>> {
    if bytes.len() >= 2 && bytes[..2] == GZIP_MAGIC && bytes.len() <= whole_limit {
        if let Some(plain) = inflate_whole(&bytes, whole_limit - bytes.len(), spare) {
            return Ok(Shard::Whole(plain));
        }
    }
    Err(bytes)
}

/// A stream of the decompressed `bytes` of a shard (gzip, or plain text when not named
/// `.gz`); owned bytes give an owned stream, borrowed ones a borrowed stream.
fn stream_from_bytes<'a, B: AsRef<[u8]> + Send + 'a>(
    bytes: B,
    location: &Location,
) -> Result<Box<dyn Read + Send + 'a>, ShardError> {
    let b = bytes.as_ref();
    if b.len() >= 2 && b[..2] == GZIP_MAGIC {
        Ok(Box::new(MultiGzDecoder::new(io::Cursor::new(bytes))))
    } else if !b.is_empty() && location.path_str().ends_with(".gz") {
        Err(ShardError::NotGzip {
            url: location.to_string(),
        })
    } else {
        Ok(Box::new(io::Cursor::new(bytes)))
    }
}

/// Opens a shard for a task that skips corrupt shards, so that no line of a bad shard is
/// ever counted: from `bytes` when they were read ahead, else from `store`. A shard inflated
/// whole was checked by that inflate (its CRC-32 and length) and is read once; a stream is
/// first read through to its end, then opened again (from the same bytes when they are in
/// memory). Any error but [`ShardError::Storage`] means the shard is corrupt.
pub fn open_checked(
    bytes: Option<Vec<u8>>,
    store: &dyn InputStore,
    location: &Location,
    whole_limit: usize,
    spare: &mut Vec<u8>,
) -> Result<Shard, ShardError> {
    match bytes {
        Some(bytes) => match whole_from_bytes(bytes, whole_limit, spare) {
            Ok(whole) => Ok(whole),
            Err(bytes) => {
                read_through(stream_from_bytes(&bytes[..], location)?, location)?;
                Ok(Shard::Stream(stream_from_bytes(bytes, location)?))
            }
        },
        None => match open_shard(store, location, whole_limit, spare)? {
            Shard::Whole(plain) => Ok(Shard::Whole(plain)),
            Shard::Stream(r) => {
                read_through(r, location)?;
                open_shard(store, location, whole_limit, spare)
            }
        },
    }
}

/// Reads a shard's stream to its end, to check that it decompresses cleanly.
fn read_through(mut r: impl Read, location: &Location) -> Result<u64, ShardError> {
    io::copy(&mut r, &mut io::sink()).map_err(|source| ShardError::Corrupt {
        url: location.to_string(),
        line: 0,
        source,
    })
}

/// Inflates `gz`, a whole gzip file, in one libdeflate call, if it is a single member that
/// decompresses cleanly to at most `max_out` bytes; `None` otherwise (the caller then streams
/// it, which handles several members and reports damage).
///
/// libdeflate inflates the first member and checks that member's CRC-32 and ISIZE; it does
/// not say where the member ended. The output is sized by the file's last ISIZE, so a first
/// member that decompresses to more does not fit. The first member is the whole file when the
/// file's last eight bytes are that member's trailer and no earlier offset could end it: a
/// member ending before the end of the file would be followed by another member, whose magic
/// (1f 8b) comes right after a copy of the first member's trailer. No such 10-byte sequence
/// in the file means one member (a spurious match only costs the fast path).
///
/// The output is written into `spare`'s allocation, which the caller hands back from the
/// previous shard ([`LineReader::into_buffer`]): its pages are already mapped, and faulting
/// in fresh zeroed pages for every shard cost more than the copy it avoids. On `None`,
/// `spare` keeps the allocation.
pub fn inflate_whole(gz: &[u8], max_out: usize, spare: &mut Vec<u8>) -> Option<Vec<u8>> {
    const TRAILER: usize = 8;
    if gz.len() < 18 {
        return None;
    }
    let tail = &gz[gz.len() - TRAILER..];
    let isize = u32::from_le_bytes([tail[4], tail[5], tail[6], tail[7]]) as usize;
    if isize > max_out {
        return None;
    }
    let mut next_member = [0u8; TRAILER + 2];
    next_member[..TRAILER].copy_from_slice(tail);
    next_member[TRAILER..].copy_from_slice(&GZIP_MAGIC);
    if memchr::memmem::find(gz, &next_member).is_some() {
        return None;
    }
    // Only bytes beyond the spare's length are zeroed; the rest are overwritten.
    let mut out = std::mem::take(spare);
    out.resize(isize, 0);
    let inflated = Decompressor::new().gzip_decompress(gz, &mut out).ok();
    if inflated != Some(isize) || libdeflater::crc32(&out).to_le_bytes() != tail[..4] {
        *spare = out;
        return None;
    }
    Some(out)
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::local::LocalInput;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// Reads a shard both ways (streamed, and whole when it fits); both must agree.
    fn read(dir: &std::path::Path, name: &str, bytes: &[u8]) -> Result<Vec<u8>, String> {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        let loc = Location::Local(p);
        let mut got = Vec::new();
        for limit in [0, 1 << 20] {
            let r = open_shard(&LocalInput, &loc, limit, &mut b"stale".to_vec())
                .map_err(|e| e.to_string())
                .and_then(|shard| {
                    let mut lines = shard.lines();
                    let mut out = Vec::new();
                    while let Some(l) = lines.next_line().map_err(|e| e.to_string())? {
                        out.extend_from_slice(l);
                        out.push(b'\n');
                    }
                    Ok(out)
                });
            got.push(r);
        }
        assert_eq!(got[0], got[1], "{name}: streamed and whole reads differ");
        got.pop().unwrap()
    }

    #[test]
    fn whole_inflate_takes_single_members_only() {
        let one = gz(&b"line\n".repeat(5000));
        assert_eq!(
            inflate_whole(&one, 1 << 20, &mut Vec::new()).as_deref(),
            Some(&b"line\n".repeat(5000)[..])
        );
        assert!(
            inflate_whole(&one, 100, &mut Vec::new()).is_none(),
            "output beyond the bound"
        );
        // Two identical members: the file's trailer is also the first member's.
        let mut twice = one.clone();
        twice.extend_from_slice(&one);
        assert!(inflate_whole(&twice, 1 << 20, &mut Vec::new()).is_none());
        let mut two = gz(b"a\n");
        two.extend(gz(b"b\n"));
        assert!(inflate_whole(&two, 1 << 20, &mut Vec::new()).is_none());
        let mut bad = one.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x55;
        assert!(inflate_whole(&bad, 1 << 20, &mut Vec::new()).is_none());
        assert_eq!(
            inflate_whole(&gz(b""), 0, &mut Vec::new()).as_deref(),
            Some(&b""[..])
        );
        // A spare from an earlier, longer shard: its allocation is reused, its bytes are not.
        let mut spare = vec![b'x'; 100_000];
        let at = spare.as_ptr();
        let plain = inflate_whole(&one, 1 << 20, &mut spare).unwrap();
        assert_eq!(plain, b"line\n".repeat(5000));
        assert_eq!(plain.as_ptr(), at, "the spare's allocation is reused");
        assert!(spare.is_empty());
        // A failed inflate leaves the allocation with the caller.
        let mut spare = plain;
        assert!(inflate_whole(&bad, 1 << 20, &mut spare).is_none());
        assert_eq!(spare.as_ptr(), at);
    }

    #[test]
    fn gzip_members_plain_empty_truncated_and_fake() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let one = gz(&b"same\n".repeat(100));
        let mut twice = one.clone();
        twice.extend_from_slice(&one);
        assert_eq!(read(d, "twice.gz", &twice).unwrap(), b"same\n".repeat(200));
        let mut two = gz(b"one\n");
        two.extend(gz(b"two\n"));
        assert_eq!(read(d, "multi.gz", &two).unwrap(), b"one\ntwo\n");
        assert_eq!(read(d, "plain.log", b"a\nb\n").unwrap(), b"a\nb\n");
        assert_eq!(read(d, "empty.gz", b"").unwrap(), b"");
        assert_eq!(read(d, "empty-member.gz", &gz(b"")).unwrap(), b"");
        let full = gz(&b"0123456789".repeat(1000));
        let truncated = &full[..full.len() / 2];
        assert!(read(d, "trunc.gz", truncated).is_err());
        let no_trailer = &full[..full.len() - 4];
        assert!(read(d, "notrailer.gz", no_trailer).is_err());
        let err = read(d, "fake.gz", b"this is not gzip\n").unwrap_err();
        assert!(err.contains("fake.gz") && err.contains("not gzip"), "{err}");
    }

    /// Counts the opens of a local store.
    #[derive(Default)]
    struct Opens(std::sync::atomic::AtomicUsize);

    impl InputStore for Opens {
        fn list(&self, dir: &Location) -> Result<Option<Vec<crate::storage::Entry>>, StorageError> {
            LocalInput.list(dir)
        }
        fn open(&self, file: &Location) -> Result<Box<dyn Read + Send>, StorageError> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            LocalInput.open(file)
        }
    }

    fn all_lines(shard: Shard) -> Vec<u8> {
        let mut lines = shard.lines();
        let mut out = Vec::new();
        while let Some(l) = lines.next_line().unwrap() {
            out.extend_from_slice(l);
            out.push(b'\n');
        }
        out
    }

    #[test]
    fn checked_opens_read_a_whole_shard_once_and_refuse_what_a_stream_would_fail_on() {
        let dir = tempfile::tempdir().unwrap();
        let one = gz(&b"same\n".repeat(100));
        let mut two = gz(b"one\n");
        two.extend(gz(b"two\n"));
        let full = gz(&b"0123456789".repeat(1000));
        let same = b"same\n".repeat(100);
        // name, bytes, the lines (None: corrupt), store opens without read-ahead
        type Case<'a> = (&'a str, Vec<u8>, Option<&'a [u8]>, usize);
        let cases: Vec<Case> = vec![
            ("one.gz", one, Some(&same), 1),
            ("multi.gz", two, Some(b"one\ntwo\n"), 2),
            ("plain.log", b"a\nb\n".to_vec(), Some(b"a\nb\n"), 2),
            ("trunc.gz", full[..full.len() / 2].to_vec(), None, 1),
            ("notrailer.gz", full[..full.len() - 4].to_vec(), None, 1),
            ("fake.gz", b"this is not gzip\n".to_vec(), None, 1),
        ];
        for (name, bytes, want, opens) in cases {
            let p = dir.path().join(name);
            std::fs::write(&p, &bytes).unwrap();
            let loc = Location::Local(p);
            let store = Opens::default();
            let from_store = open_checked(None, &store, &loc, 1 << 20, &mut Vec::new());
            let from_bytes = open_checked(Some(bytes), &store, &loc, 1 << 20, &mut Vec::new());
            assert_eq!(
                store.0.load(std::sync::atomic::Ordering::Relaxed),
                opens,
                "{name}: store opens (read-ahead bytes open nothing)"
            );
            for got in [from_store, from_bytes] {
                match (got, want) {
                    (Ok(shard), Some(w)) => assert_eq!(all_lines(shard), w, "{name}"),
                    (Err(e), None) => {
                        assert!(!matches!(e, ShardError::Storage(_)), "{name}: {e}");
                        assert!(e.to_string().contains(name), "{name}: {e}");
                    }
                    (Ok(_), None) => panic!("{name}: a corrupt shard opened"),
                    (Err(e), Some(_)) => panic!("{name}: {e}"),
                }
            }
        }
    }
}
