//! Opening a shard: gzip (one or several concatenated members) or plain text, told apart by
//! the gzip magic bytes, so that a `.gz` file that is not gzip is an error naming the file
//! rather than a million rejected lines.

use std::io::{self, BufReader, Read};

use flate2::bufread::MultiGzDecoder;

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

/// Opens `location` and returns a reader of its decompressed bytes.
pub fn open_shard(
    store: &dyn InputStore,
    location: &Location,
) -> Result<Box<dyn Read + Send>, ShardError> {
    let raw = store.open(location)?;
    let mut reader = BufReader::with_capacity(READ_BUFFER, raw);
    let mut head = [0u8; 2];
    let n = read_up_to(&mut reader, &mut head).map_err(|source| ShardError::Corrupt {
        url: location.to_string(),
        line: 0,
        source,
    })?;
    let prefix = io::Cursor::new(head[..n].to_vec());
    let rest = prefix.chain(reader);
    if n == 2 && head == GZIP_MAGIC {
        Ok(Box::new(MultiGzDecoder::new(BufReader::with_capacity(
            READ_BUFFER,
            rest,
        ))))
    } else if n > 0 && location.path_str().ends_with(".gz") {
        Err(ShardError::NotGzip {
            url: location.to_string(),
        })
    } else {
        Ok(Box::new(rest))
    }
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

/// Reads a whole shard to check it decompresses cleanly (used when corrupt shards are to
/// be skipped, so that no line of a bad shard is ever counted).
pub fn verify_shard(store: &dyn InputStore, location: &Location) -> Result<u64, ShardError> {
    let mut r = open_shard(store, location)?;
    io::copy(&mut r, &mut io::sink()).map_err(|source| ShardError::Corrupt {
        url: location.to_string(),
        line: 0,
        source,
    })
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

    fn read(dir: &std::path::Path, name: &str, bytes: &[u8]) -> Result<Vec<u8>, String> {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        let loc = Location::Local(p);
        let mut r = open_shard(&LocalInput, &loc).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        r.read_to_end(&mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }

    #[test]
    fn gzip_members_plain_empty_truncated_and_fake() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
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
}
