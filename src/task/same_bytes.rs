//! The map side of duplicate deliveries (`plan::duplicates`): a map task hashes the bytes of
//! each shard of a same-size group as it reads them, and reports the digest. The bytes hashed
//! are those the task parses next (its read-ahead bytes, or one read of the whole shard), so
//! the shard is read once — only a shard too big to hold is read twice, once to hash it and
//! once to parse it.

use std::io;

use sha2::{Digest, Sha256};

use super::read_ahead::read_whole;
use super::shard::ShardError;
use crate::plan::Shard;
use crate::storage::{HashingWriter, InputStore};

/// The SHA-256 of a shard's bytes as stored, and those bytes when they are held: `ahead`
/// (read ahead) when given, else the whole shard read once if it has at most `hold_limit`
/// bytes; a bigger one is hashed as a stream, and the caller opens it again (`None`).
pub fn digest(
    ahead: Option<Vec<u8>>,
    store: &dyn InputStore,
    shard: &Shard,
    hold_limit: usize,
) -> Result<([u8; 32], Option<Vec<u8>>), ShardError> {
    let bytes = match ahead {
        Some(bytes) => bytes,
        None if shard.size <= hold_limit as u64 => read_whole(shard)?,
        None => {
            let mut hasher = HashingWriter::new(io::sink());
            io::copy(&mut store.open(&shard.location)?, &mut hasher).map_err(|source| {
                ShardError::Corrupt {
                    url: shard.location.to_string(),
                    line: 0,
                    source,
                }
            })?;
            return Ok((hasher.into_digest(), None));
        }
    };
    Ok((Sha256::digest(&bytes).into(), Some(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::local::LocalInput;
    use crate::storage::location::Location;

    #[test]
    fn held_and_streamed_shards_have_the_digest_of_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = (0..5000u32).flat_map(|i| i.to_le_bytes()).collect();
        let path = dir.path().join("s.gz");
        std::fs::write(&path, &bytes).unwrap();
        let shard = Shard {
            ordinal: 0,
            source: 0,
            location: Location::Local(path),
            size: bytes.len() as u64,
            modified_ms: None,
            domain: None,
            slot_start_ms: None,
            hosts: Vec::new(),
            same_size: Some(0),
        };
        let want: [u8; 32] = Sha256::digest(&bytes).into();
        let store = LocalInput;
        // Read ahead: those bytes, handed back.
        let (d, held) = digest(Some(bytes.clone()), &store, &shard, 0).unwrap();
        assert_eq!((d, held.as_deref()), (want, Some(&bytes[..])));
        // Small enough to hold: read once and handed back.
        let (d, held) = digest(None, &store, &shard, bytes.len()).unwrap();
        assert_eq!((d, held.as_deref()), (want, Some(&bytes[..])));
        // Too big to hold: streamed, nothing handed back.
        let (d, held) = digest(None, &store, &shard, bytes.len() - 1).unwrap();
        assert_eq!((d, held), (want, None));
        // Another shard's bytes, another digest.
        let (other, _) = digest(Some(bytes[1..].to_vec()), &store, &shard, 0).unwrap();
        assert_ne!(other, want);
    }
}
