//! Hadoop `Writable` primitives: `WritableUtils` vints/vlongs and `Text`.
//! Used by the token storage format ([`crate::credentials`]).

use crate::error::{Error, Result};

/// Appends a Hadoop vlong (`WritableUtils.writeVLong`).
pub(crate) fn write_vlong(out: &mut Vec<u8>, value: i64) {
    if (-112..=127).contains(&value) {
        out.push(value as i8 as u8);
        return;
    }
    let mut len: i64 = -112;
    let mut v = value;
    if v < 0 {
        v = !v; // one's complement
        len = -120;
    }
    let mut tmp = v;
    while tmp != 0 {
        tmp >>= 8;
        len -= 1;
    }
    out.push(len as i8 as u8);
    let n = if len < -120 {
        -(len + 120)
    } else {
        -(len + 112)
    };
    for idx in (0..n).rev() {
        let shift = idx * 8;
        out.push(((v >> shift) & 0xff) as u8);
    }
}

/// A cursor over bytes being decoded.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'a str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'a str) -> Reader<'a> {
        Reader { buf, pos: 0, what }
    }

    fn err(&self, message: String) -> Error {
        Error::Credentials {
            source_name: self.what.to_string(),
            message,
        }
    }

    pub(crate) fn remaining(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| {
                self.err(format!(
                    "needs {n} bytes at offset {}, only {} left",
                    self.pos,
                    self.buf.len() - self.pos
                ))
            })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.bytes(1)?[0])
    }

    /// `WritableUtils.readVLong`.
    pub(crate) fn vlong(&mut self) -> Result<i64> {
        let first = self.u8()? as i8;
        if first >= -112 {
            return Ok(i64::from(first));
        }
        let negative = first < -120;
        let n = if negative {
            -(i32::from(first) + 120)
        } else {
            -(i32::from(first) + 112)
        };
        let mut v: i64 = 0;
        for _ in 0..n {
            v = (v << 8) | i64::from(self.u8()?);
        }
        Ok(if negative { !v } else { v })
    }

    /// A vint that must be a non-negative length.
    pub(crate) fn len(&mut self) -> Result<usize> {
        let v = self.vlong()?;
        usize::try_from(v).map_err(|_| self.err(format!("negative length {v}")))
    }

    /// Length-prefixed bytes.
    pub(crate) fn vbytes(&mut self) -> Result<Vec<u8>> {
        let n = self.len()?;
        Ok(self.bytes(n)?.to_vec())
    }

    /// `Text`: vint length + UTF-8.
    pub(crate) fn text(&mut self) -> Result<String> {
        let b = self.vbytes()?;
        String::from_utf8(b).map_err(|_| self.err("Text is not UTF-8".into()))
    }
}

/// Appends length-prefixed bytes.
pub(crate) fn write_vbytes(out: &mut Vec<u8>, data: &[u8]) {
    write_vlong(out, data.len() as i64);
    out.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlong_known_encodings() {
        let cases: &[(i64, &[u8])] = &[
            (0, &[0]),
            (127, &[127]),
            (-112, &[0x90]),
            (128, &[0x8f, 0x80]),
            (255, &[0x8f, 0xff]),
            (256, &[0x8e, 0x01, 0x00]),
            (-113, &[0x87, 0x70]),
            (-256, &[0x87, 0xff]),
        ];
        for (v, bytes) in cases {
            let mut out = Vec::new();
            write_vlong(&mut out, *v);
            assert_eq!(&out[..], *bytes, "encode {v}");
            let mut r = Reader::new(bytes, "t");
            assert_eq!(r.vlong().expect("decode"), *v);
        }
    }

    #[test]
    fn vlong_round_trip_extremes() {
        for v in [i64::MIN, i64::MAX, -1, 1, 1 << 40, -(1 << 33), 65535] {
            let mut out = Vec::new();
            write_vlong(&mut out, v);
            assert_eq!(Reader::new(&out, "t").vlong().expect("decode"), v);
        }
    }

    #[test]
    fn truncated_is_error() {
        let mut r = Reader::new(&[0x8e, 0x01], "t");
        assert!(r.vlong().is_err());
        let mut r = Reader::new(&[5, b'a'], "t");
        assert!(r.text().is_err());
    }
}
