//! Civil time for the generator: epoch seconds to calendar fields in a fixed UTC offset, and
//! the few time layouts the vendors write (CLF, 14 digits, CloudFront's date + time, RFC 3339).
//!
//! Hand-written (days-from-civil arithmetic) because it runs once per generated line; only
//! fixed offsets are needed, as every vendor writes a fixed offset.

use super::text::{push_2, push_4, push_u64};
use crate::formats::time::civil_from_days;

/// English month abbreviations, as CLF writes them.
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Calendar fields of one instant in some fixed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    /// 1..=12
    pub month: u32,
    /// 1..=31
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl Civil {
    /// The calendar fields of `epoch_s` seen at UTC offset `offset_s`.
    pub fn at(epoch_s: i64, offset_s: i32) -> Civil {
        let local = epoch_s + i64::from(offset_s);
        let days = local.div_euclid(86_400);
        let secs = local.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: secs / 3600,
            minute: secs / 60 % 60,
            second: secs % 60,
        }
    }
}

/// Writes `+0800` / `-0500` (CLF style) or `+08:00` (RFC 3339 style, `colon`).
pub fn push_offset(out: &mut Vec<u8>, offset_s: i32, colon: bool) {
    out.push(if offset_s < 0 { b'-' } else { b'+' });
    let m = offset_s.unsigned_abs() / 60;
    push_2(out, m / 60);
    if colon {
        out.push(b':');
    }
    push_2(out, m % 60);
}

/// `[05/Nov/2026:00:00:01 +0800]`; with `one_digit_day`, `[5/Nov/…` for days below 10.
pub fn push_clf(out: &mut Vec<u8>, epoch_s: i64, offset_s: i32, one_digit_day: bool) {
    let c = Civil::at(epoch_s, offset_s);
    out.push(b'[');
    if one_digit_day && c.day < 10 {
        out.push(b'0' + c.day as u8);
    } else {
        push_2(out, c.day);
    }
    out.push(b'/');
    out.extend_from_slice(MONTHS[(c.month - 1) as usize].as_bytes());
    out.push(b'/');
    push_4(out, c.year);
    out.push(b':');
    push_hms(out, &c, b':');
    out.push(b' ');
    push_offset(out, offset_s, false);
    out.push(b']');
}

/// `20261105000001`: Tencent's 14 digits, local time, no offset.
pub fn push_digits14(out: &mut Vec<u8>, epoch_s: i64, offset_s: i32) {
    let c = Civil::at(epoch_s, offset_s);
    push_4(out, c.year);
    push_2(out, c.month);
    push_2(out, c.day);
    push_2(out, c.hour);
    push_2(out, c.minute);
    push_2(out, c.second);
}

/// `2026-11-04` then `sep` then `16:00:01` (CloudFront writes a tab between them).
pub fn push_date_time(out: &mut Vec<u8>, epoch_s: i64, offset_s: i32, sep: u8) {
    let c = Civil::at(epoch_s, offset_s);
    push_ymd(out, &c, b'-');
    out.push(sep);
    push_hms(out, &c, b':');
}

/// RFC 3339 with milliseconds: `2026-11-04T16:00:01.123Z` (offset 0) or `…+08:00`.
pub fn push_rfc3339_ms(out: &mut Vec<u8>, epoch_ms: i64, offset_s: i32) {
    let c = Civil::at(epoch_ms.div_euclid(1000), offset_s);
    push_ymd(out, &c, b'-');
    out.push(b'T');
    push_hms(out, &c, b':');
    out.push(b'.');
    let ms = epoch_ms.rem_euclid(1000) as u32;
    push_2(out, ms / 10);
    out.push(b'0' + (ms % 10) as u8);
    if offset_s == 0 {
        out.push(b'Z');
    } else {
        push_offset(out, offset_s, true);
    }
}

/// RFC 3339 to the second with a numeric offset: `2026-11-05T00:00:00+08:00`.
pub fn rfc3339(epoch_s: i64, offset_s: i32) -> String {
    let c = Civil::at(epoch_s, offset_s);
    let mut out = Vec::with_capacity(25);
    push_ymd(&mut out, &c, b'-');
    out.push(b'T');
    push_hms(&mut out, &c, b':');
    push_offset(&mut out, offset_s, true);
    String::from_utf8_lossy(&out).into_owned()
}

/// Renders the strftime subset used by shard and output templates: `%Y %m %d %H %M %S %%`.
/// Other characters are copied.
pub fn strftime(template: &str, epoch_s: i64, offset_s: i32) -> String {
    let c = Civil::at(epoch_s, offset_s);
    let mut out = Vec::with_capacity(template.len() + 8);
    let mut chars = template.bytes();
    while let Some(b) = chars.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        match chars.next() {
            Some(b'Y') => push_4(&mut out, c.year),
            Some(b'm') => push_2(&mut out, c.month),
            Some(b'd') => push_2(&mut out, c.day),
            Some(b'H') => push_2(&mut out, c.hour),
            Some(b'M') => push_2(&mut out, c.minute),
            Some(b'S') => push_2(&mut out, c.second),
            Some(other) => {
                out.push(b'%');
                if other != b'%' {
                    out.push(other);
                }
            }
            None => out.push(b'%'),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn push_ymd(out: &mut Vec<u8>, c: &Civil, sep: u8) {
    push_4(out, c.year);
    out.push(sep);
    push_2(out, c.month);
    out.push(sep);
    push_2(out, c.day);
}

fn push_hms(out: &mut Vec<u8>, c: &Civil, sep: u8) {
    push_2(out, c.hour);
    out.push(sep);
    push_2(out, c.minute);
    out.push(sep);
    push_2(out, c.second);
}

/// Milliseconds to whole seconds (floor), then back to milliseconds.
pub fn floor_s_ms(ms: i64) -> i64 {
    ms.div_euclid(1000) * 1000
}

/// Writes a decimal count of seconds with three decimals from milliseconds: `0.012`.
pub fn push_seconds_3(out: &mut Vec<u8>, ms: u64) {
    push_u64(out, ms / 1000);
    out.push(b'.');
    let f = (ms % 1000) as u32;
    push_2(out, f / 10);
    out.push(b'0' + (f % 10) as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap_or_default()
    }

    // 2021-03-05T10:15:32Z, the docs/FORMATS.md example instant (18:15:32 +0800).
    const EXAMPLE: i64 = 1_614_939_332;

    #[test]
    fn clf_matches_the_formats_example() {
        assert_eq!(
            s(|v| push_clf(v, EXAMPLE, 8 * 3600, false)),
            "[05/Mar/2021:18:15:32 +0800]"
        );
        assert_eq!(
            s(|v| push_clf(v, EXAMPLE, 8 * 3600, true)),
            "[5/Mar/2021:18:15:32 +0800]"
        );
        assert_eq!(
            s(|v| push_clf(v, EXAMPLE, -5 * 3600, false)),
            "[05/Mar/2021:05:15:32 -0500]"
        );
    }

    #[test]
    fn other_layouts() {
        assert_eq!(s(|v| push_digits14(v, EXAMPLE, 8 * 3600)), "20210305181532");
        assert_eq!(
            s(|v| push_date_time(v, EXAMPLE, 0, b'\t')),
            "2021-03-05\t10:15:32"
        );
        assert_eq!(
            s(|v| push_rfc3339_ms(v, EXAMPLE * 1000 + 7, 0)),
            "2021-03-05T10:15:32.007Z"
        );
        assert_eq!(rfc3339(EXAMPLE, 8 * 3600), "2021-03-05T18:15:32+08:00");
        assert_eq!(s(|v| push_seconds_3(v, 12)), "0.012");
        assert_eq!(s(|v| push_seconds_3(v, 1234)), "1.234");
    }

    #[test]
    fn strftime_subset_and_day_boundaries() {
        // 2026-11-04T16:00:00Z is midnight of the 5th in +08:00.
        let t = 1_793_808_000;
        assert_eq!(strftime("%Y%m%d/%H%M", t, 8 * 3600), "20261105/0000");
        assert_eq!(
            strftime("%Y-%m-%d-%H-%M.*.gz", t, 0),
            "2026-11-04-16-00.*.gz"
        );
        assert_eq!(strftime("100%%", t, 0), "100%");
        assert_eq!(Civil::at(-1, 0).year, 1969);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
