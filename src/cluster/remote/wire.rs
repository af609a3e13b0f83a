//! The task protocol between the coordinator (the application master, or `filex run
//! --workers`) and its workers: length-prefixed JSON messages over TCP.
//!
//! A worker connects, receives a challenge, answers with an HMAC of it under the run's shared
//! secret (the secret never crosses the wire), then pulls tasks: `Next` → `Assign` | `Idle` |
//! `Shutdown`, and reports each attempt with `Done` or `Failed`. While an attempt runs, the
//! worker sends a `Heartbeat` every [`WorkerSetup::heartbeat_ms`] with its work count, which
//! the coordinator's task timeout watches.
//!
//! On a Kerberized cluster, an application master holding the submitter's keytab sends
//! `Tokens` whenever it has fetched new delegation tokens, at any point of the conversation
//! (the worker reads on a thread of its own): the tokens sealed with AES-256-GCM under a key
//! derived from the shared secret ([`seal`], [`open`]), so they never cross the wire in clear.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::storage::location::Location;
use crate::task::{Task, TaskOutput};

/// Largest message accepted (a map output lists a few thousand segments at most).
pub const MAX_FRAME: usize = 64 << 20;

/// Messages from a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToCoordinator {
    /// Answer to the challenge: who the worker is and the proof that it holds the secret.
    Hello {
        worker: String,
        host: String,
        proof: String,
    },
    /// Ready for a task.
    Next,
    Done {
        task: usize,
        attempt: u32,
        output: TaskOutput,
    },
    Failed {
        task: usize,
        attempt: u32,
        error: String,
    },
    /// `attempt` of `task` still runs; `progress` is the worker's work count (bytes read,
    /// lines parsed and merged, bytes written), which grows while the task gets anywhere.
    Heartbeat {
        task: usize,
        attempt: u32,
        progress: u64,
    },
}

/// Messages to a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToWorker {
    Challenge {
        nonce: String,
    },
    Welcome {
        setup: WorkerSetup,
    },
    Rejected {
        reason: String,
    },
    Assign {
        task: usize,
        attempt: u32,
        spec: Task,
    },
    /// Nothing to do right now; ask again after this many milliseconds.
    Idle {
        wait_ms: u64,
    },
    Shutdown,
    /// New delegation tokens (generation `generation`, counted from 1): Hadoop Writable
    /// credentials holding tokens only, [`seal`]ed; the worker switches its HDFS clients to
    /// them.
    Tokens {
        generation: u64,
        nonce: String,
        sealed: String,
    },
}

/// What a worker needs to build the same task context as the coordinator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerSetup {
    /// The resolved job file (after `--set`), as TOML.
    pub job_toml: String,
    /// Directory relative paths of the job file resolve against.
    pub base_dir: PathBuf,
    pub run_id: String,
    pub scratch: Option<Location>,
    pub memory_per_task: usize,
    /// How often a worker running a task sends a heartbeat, ms (set by the coordinator).
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u64,
}

/// The heartbeat interval when the coordinator has no task timeout.
pub const DEFAULT_HEARTBEAT_MS: u64 = 3000;

fn default_heartbeat_ms() -> u64 {
    DEFAULT_HEARTBEAT_MS
}

/// Writes one message: a 4-byte big-endian length, then JSON.
pub fn write_msg<T: Serialize>(w: &mut impl Write, msg: &T) -> io::Result<()> {
    let body = serde_json::to_vec(msg).map_err(io::Error::other)?;
    if body.len() > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("message of {} bytes exceeds {MAX_FRAME}", body.len()),
        ));
    }
    w.write_all(&(body.len() as u32).to_be_bytes())?;
    w.write_all(&body)?;
    w.flush()
}

/// Reads one message; `Ok(None)` when the peer closed the connection cleanly.
pub fn read_msg<T: DeserializeOwned>(r: &mut impl Read) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message of {len} bytes exceeds {MAX_FRAME}"),
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// HMAC-SHA256 (RFC 2104), hex encoded.
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            hex::encode(mac.finalize().into_bytes())
        }
        // HMAC takes keys of any length; an empty proof never matches a real one.
        Err(_) => String::new(),
    }
}

/// What [`seal`] binds a sealed message to besides its generation.
const SEAL_CONTEXT: &[u8] = b"filex worker tokens v1";

/// The AES-256-GCM key of [`seal`]: HMAC-SHA256 of a fixed label under the shared secret.
fn seal_key(secret: &str) -> io::Result<ring::aead::LessSafeKey> {
    let key =
        hex::decode(hmac_sha256_hex(secret.as_bytes(), SEAL_CONTEXT)).map_err(io::Error::other)?;
    let unbound = ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &key)
        .map_err(|_| io::Error::other("cannot make the token key"))?;
    Ok(ring::aead::LessSafeKey::new(unbound))
}

fn generation_aad(generation: u64) -> ring::aead::Aad<[u8; 8]> {
    ring::aead::Aad::from(generation.to_be_bytes())
}

/// Encrypts and authenticates `plain` (generation `generation`) under the shared secret:
/// returns the random nonce and the sealed bytes, both hex.
pub fn seal(secret: &str, generation: u64, plain: &[u8]) -> io::Result<(String, String)> {
    let key = seal_key(secret)?;
    let mut nonce = [0u8; ring::aead::NONCE_LEN];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut nonce)?;
    let mut sealed = plain.to_vec();
    key.seal_in_place_append_tag(
        ring::aead::Nonce::assume_unique_for_key(nonce),
        generation_aad(generation),
        &mut sealed,
    )
    .map_err(|_| io::Error::other("cannot seal the tokens"))?;
    Ok((hex::encode(nonce), hex::encode(sealed)))
}

/// The plain bytes of [`seal`]'s output; an error when they were not sealed under this
/// secret for this generation, or were altered.
pub fn open(secret: &str, generation: u64, nonce: &str, sealed: &str) -> io::Result<Vec<u8>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "sealed tokens do not open");
    let key = seal_key(secret)?;
    let nonce: [u8; ring::aead::NONCE_LEN] = hex::decode(nonce)
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or_else(bad)?;
    let mut bytes = hex::decode(sealed).map_err(|_| bad())?;
    let plain = key
        .open_in_place(
            ring::aead::Nonce::assume_unique_for_key(nonce),
            generation_aad(generation),
            &mut bytes,
        )
        .map_err(|_| bad())?;
    Ok(plain.to_vec())
}

/// Compares two strings in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A fresh random token (hex), from the OS.
pub fn random_hex(bytes: usize) -> io::Result<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(hex::encode(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Case 6: a key longer than the block.
        assert_eq!(
            hmac_sha256_hex(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn sealed_tokens_open_only_with_the_secret_and_generation() {
        let (nonce, sealed) = seal("s3cret", 2, b"token bytes").unwrap();
        assert!(!sealed.contains(&hex::encode(b"token bytes")));
        assert_eq!(open("s3cret", 2, &nonce, &sealed).unwrap(), b"token bytes");
        assert!(open("other", 2, &nonce, &sealed).is_err(), "another secret");
        assert!(
            open("s3cret", 3, &nonce, &sealed).is_err(),
            "another generation"
        );
        let mut altered = hex::decode(&sealed).unwrap();
        altered[0] ^= 1;
        assert!(open("s3cret", 2, &nonce, &hex::encode(altered)).is_err());
        let (nonce2, _) = seal("s3cret", 2, b"token bytes").unwrap();
        assert_ne!(nonce, nonce2, "a fresh nonce each time");
    }

    #[test]
    fn frames_round_trip_and_bound() {
        let mut buf = Vec::new();
        write_msg(&mut buf, &ToCoordinator::Next).unwrap();
        write_msg(&mut buf, &ToWorker::Idle { wait_ms: 5 }).unwrap();
        let mut r = &buf[..];
        assert_eq!(
            read_msg::<ToCoordinator>(&mut r).unwrap(),
            Some(ToCoordinator::Next)
        );
        assert_eq!(
            read_msg::<ToWorker>(&mut r).unwrap(),
            Some(ToWorker::Idle { wait_ms: 5 })
        );
        assert_eq!(read_msg::<ToWorker>(&mut r).unwrap(), None);
        let huge = (MAX_FRAME as u32 + 1).to_be_bytes();
        assert!(read_msg::<ToWorker>(&mut &huge[..]).is_err());
        assert!(constant_time_eq("abc", "abc") && !constant_time_eq("abc", "abd"));
        assert_eq!(random_hex(16).unwrap().len(), 32);
    }
}
