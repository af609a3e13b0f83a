//! Byte-level writers for generated lines: integers without allocation and the quoting
//! conventions of each vendor (nginx `\xHH`, Apache `\"`, URL encoding, JSON strings).

/// How a free-text value (user agent, referer) is escaped inside its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// nginx: `"`, `\` and bytes outside printable ASCII become `\xHH`.
    Nginx,
    /// Apache: `"` → `\"`, `\` → `\\`; other bytes as they are (UTF-8 passes through).
    Apache,
    /// CloudFront: URL encoding of spaces, quotes, `%`, `\`, controls and non-ASCII bytes.
    Url,
    /// A JSON string body: `"` and `\` escaped, controls as `\u00XX`, UTF-8 as it is.
    Json,
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` escaped with `esc`.
pub fn push_escaped(out: &mut Vec<u8>, s: &[u8], esc: Escape) {
    for &b in s {
        match esc {
            Escape::Nginx => {
                if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
                    out.extend_from_slice(&[
                        b'\\',
                        b'x',
                        HEX[(b >> 4) as usize],
                        HEX[(b & 15) as usize],
                    ]);
                } else {
                    out.push(b);
                }
            }
            Escape::Apache => {
                if b == b'"' || b == b'\\' {
                    out.push(b'\\');
                }
                out.push(b);
            }
            Escape::Url => {
                if b <= b' ' || b >= 0x7f || matches!(b, b'"' | b'%' | b'\\' | b'<' | b'>') {
                    out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
                } else {
                    out.push(b);
                }
            }
            Escape::Json => match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                0..=0x1f => {
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX_LOWER[(b >> 4) as usize]);
                    out.push(HEX_LOWER[(b & 15) as usize]);
                }
                _ => out.push(b),
            },
        }
    }
}

/// Appends `v` in decimal.
pub fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends `v` in decimal, with a leading `-` when negative.
pub fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

/// Appends `n` lower-case hex digits of `v` (the low `4n` bits).
pub fn push_hex(out: &mut Vec<u8>, v: u64, n: u32) {
    for i in (0..n).rev() {
        out.push(HEX_LOWER[((v >> (4 * i)) & 15) as usize]);
    }
}

/// Appends `v` in lower-case hex without leading zeros (IPv6 groups).
pub fn push_hex_short(out: &mut Vec<u8>, v: u16) {
    let digits = (16 - v.leading_zeros()).div_ceil(4).max(1);
    push_hex(out, u64::from(v), digits);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str, e: Escape) -> String {
        let mut v = Vec::new();
        push_escaped(&mut v, s.as_bytes(), e);
        String::from_utf8_lossy(&v).into_owned()
    }

    #[test]
    fn escapes_per_vendor() {
        let ua = "A \"b\" \\ 中";
        assert_eq!(
            esc(ua, Escape::Nginx),
            "A \\x22b\\x22 \\x5C \\xE4\\xB8\\xAD"
        );
        assert_eq!(esc(ua, Escape::Apache), "A \\\"b\\\" \\\\ 中");
        assert_eq!(esc(ua, Escape::Url), "A%20%22b%22%20%5C%20%E4%B8%AD");
        assert_eq!(esc(ua, Escape::Json), "A \\\"b\\\" \\\\ 中");
    }

    #[test]
    fn numbers() {
        let mut v = Vec::new();
        push_u64(&mut v, 0);
        v.push(b' ');
        push_u64(&mut v, u64::MAX);
        v.push(b' ');
        push_i64(&mut v, -42);
        v.push(b' ');
        push_hex(&mut v, 0xab, 4);
        v.push(b' ');
        push_hex_short(&mut v, 0xdb8);
        v.push(b' ');
        push_hex_short(&mut v, 0);
        assert_eq!(
            String::from_utf8_lossy(&v),
            "0 18446744073709551615 -42 00ab db8 0"
        );
    }
}
