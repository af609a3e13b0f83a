//! Looking for secrets where they must not be: the argv and environment of an application's
//! container processes (`/proc`), the container credential files the NodeManager writes
//! (where secrets belong), the key blocks of a keytab, and a byte search that also finds a
//! secret spelled in hex or base64.

use std::fs;
use std::path::Path;

/// The NodeManager's copy of a container's credentials in `nmPrivate` ends so.
const TOKEN_FILE_SUFFIX: &str = ".tokens";
/// The container's own copy (`HADOOP_TOKEN_FILE_LOCATION`) is named so.
pub const CONTAINER_TOKENS: &str = "container_tokens";

/// Whether `hay` holds `needle` (an empty needle is never found).
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Whether `p` is a container credentials file the NodeManager wrote.
pub fn is_token_file(p: &Path) -> bool {
    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
        n == CONTAINER_TOKENS || (n.starts_with("container_") && n.ends_with(TOKEN_FILE_SUFFIX))
    })
}

/// Processes whose argv starts with `./filex <role>` (the containers' commands), as
/// `(pid, argv, environment)` (NUL-separated, as `/proc` has them).
pub fn container_processes(role: &str) -> Vec<(u32, Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let mut args = cmdline.split(|b| *b == 0);
        if args.next() == Some(b"./filex") && args.next() == Some(role.as_bytes()) {
            if let Ok(environ) = fs::read(format!("/proc/{pid}/environ")) {
                out.push((pid, cmdline, environ));
            }
        }
    }
    out
}

/// The value of `name` in a NUL-separated environment block, if set.
pub fn env_var(environ: &[u8], name: &str) -> Option<String> {
    environ.split(|b| *b == 0).find_map(|var| {
        let var = String::from_utf8_lossy(var);
        var.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('='))
            .map(str::to_string)
    })
}

/// The key blocks of an MIT keytab (format 0x0502; 0x0501 uses host byte order and is not
/// read): the secret part of every entry. An unreadable keytab yields what was read so far.
pub fn keytab_keys(keytab: &[u8]) -> Vec<Vec<u8>> {
    fn u16_at(b: &[u8], at: usize) -> Option<usize> {
        Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]) as usize)
    }
    let mut keys = Vec::new();
    if keytab.get(..2) != Some(&[5, 2][..]) {
        return keys;
    }
    let mut at = 2;
    while let Some(size) = keytab.get(at..at + 4) {
        let size = i32::from_be_bytes([size[0], size[1], size[2], size[3]]);
        at += 4;
        let len = size.unsigned_abs() as usize;
        let Some(entry) = keytab.get(at..at + len) else {
            break;
        };
        at += len;
        if size < 0 {
            continue; // a hole
        }
        // components, realm, each component, name type, timestamp, vno8, key type, key.
        let parse = || -> Option<Vec<u8>> {
            let components = u16_at(entry, 0)?;
            let mut p = 2;
            for _ in 0..=components {
                p += 2 + u16_at(entry, p)?;
            }
            p += 4 + 4 + 1 + 2;
            let key_len = u16_at(entry, p)?;
            entry.get(p + 2..p + 2 + key_len).map(<[u8]>::to_vec)
        };
        if let Some(key) = parse() {
            keys.push(key);
        }
    }
    keys
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(B64[((n >> (18 - 6 * i)) & 63) as usize]);
        }
    }
    out
}

/// How `secret` may be spelled where it leaks: its bytes, lower- and upper-case hex, and
/// base64 (standard and URL-safe alphabets) at each of the three alignments it may have
/// inside a longer encoded value — the characters that depend on the secret alone. A
/// secret shorter than 8 bytes is too likely to occur by chance and yields nothing.
pub fn spellings(secret: &[u8]) -> Vec<Vec<u8>> {
    if secret.len() < 8 {
        return Vec::new();
    }
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let mut out = vec![
        secret.to_vec(),
        hex.clone().into_bytes(),
        hex.to_uppercase().into_bytes(),
    ];
    for offset in 0..3 {
        let mut padded = vec![0u8; offset];
        padded.extend_from_slice(secret);
        let enc = base64(&padded);
        // The first quantum mixes in the bytes before the secret, the last the bytes after.
        let skip = if offset == 0 { 0 } else { 4 };
        let Some(core) = enc.get(skip..enc.len().saturating_sub(4)) else {
            continue;
        };
        if core.len() < 8 {
            continue;
        }
        let url: Vec<u8> = core
            .iter()
            .map(|c| match c {
                b'+' => b'-',
                b'/' => b'_',
                c => *c,
            })
            .collect();
        out.push(core.to_vec());
        out.push(url);
    }
    out.sort();
    out.dedup();
    out
}

/// Which of the named `secrets` occur, in any of their [`spellings`], in which of the named
/// `places`: one `"<secret> in <place>"` line each.
pub fn leaks(secrets: &[(String, Vec<u8>)], places: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut out = Vec::new();
    for (name, secret) in secrets {
        let forms = spellings(secret);
        for (place, bytes) in places {
            if forms.iter().any(|f| contains(bytes, f)) {
                out.push(format!("{name} in {place}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_examples() {
        assert_eq!(base64(b"foobar"), b"Zm9vYmFy");
        assert_eq!(base64(b"fooba"), b"Zm9vYmE");
        assert_eq!(base64(b"f"), b"Zg");
    }

    #[test]
    fn a_secret_is_found_in_hex_and_in_base64_inside_longer_values() {
        let secret = b"\x01\x02secret-bytes\xff\xfe".to_vec();
        let named = [("s".to_string(), secret.clone())];
        for prefix in [&b""[..], b"x", b"xy", b"xyz"] {
            let mut value = prefix.to_vec();
            value.extend_from_slice(&secret);
            value.extend_from_slice(b"tail");
            let place = format!("export T={}", String::from_utf8_lossy(&base64(&value)));
            assert_eq!(
                leaks(&named, &[("env".into(), place.into_bytes())]),
                ["s in env"],
                "prefix {prefix:?}"
            );
        }
        let hex: String = secret.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(leaks(&named, &[("log".into(), hex.into_bytes())]).len(), 1);
        assert!(leaks(&named, &[("log".into(), b"secret-bytes".to_vec())]).is_empty());
    }

    #[test]
    fn keytab_key_blocks_are_read() {
        // One entry: 1 component "filex", realm "R", name type 1, timestamp, vno 1,
        // key type 17 (aes128), a 16-byte key, then a hole.
        let key = [7u8; 16];
        let mut entry = vec![0, 1, 0, 1, b'R', 0, 5];
        entry.extend_from_slice(b"filex");
        entry.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 9, 1, 0, 17, 0, 16]);
        entry.extend_from_slice(&key);
        let mut keytab = vec![5, 2];
        keytab.extend_from_slice(&(entry.len() as i32).to_be_bytes());
        keytab.extend_from_slice(&entry);
        keytab.extend_from_slice(&(-4i32).to_be_bytes());
        keytab.extend_from_slice(&[0; 4]);
        assert_eq!(keytab_keys(&keytab), vec![key.to_vec()]);
        assert!(keytab_keys(b"\x05\x01").is_empty());
    }

    #[test]
    fn env_var_reads_one_variable() {
        let env = b"A=1\0KRB5CCNAME=FILE:/x\0B=2\0";
        assert_eq!(env_var(env, "KRB5CCNAME").as_deref(), Some("FILE:/x"));
        assert_eq!(env_var(env, "KRB5"), None);
    }
}
