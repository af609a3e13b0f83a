//! The time layouts the generator writes besides RFC 3339 (CLF in brackets, 14 digits,
//! CloudFront's date + time, the strftime subset of path templates), on the
//! [`calendar`]'s fields and writers, from epoch seconds at a fixed offset.

use super::text::push_u64;
use crate::calendar::{self, push_2, push_date, push_time, push_year, Civil};

/// `[05/Nov/2026:00:00:01 +0800]`; with `one_digit_day`, `[5/Nov/…` for days below 10.
pub fn push_clf(out: &mut Vec<u8>, epoch_s: i64, offset_s: i32, one_digit_day: bool) {
    out.push(b'[');
    calendar::push_clf(out, epoch_s * 1000, offset_s, one_digit_day);
    out.push(b']');
}

/// `20261105000001`: Tencent's 14 digits, local time, no offset.
pub fn push_digits14(out: &mut Vec<u8>, epoch_s: i64, offset_s: i32) {
    let c = Civil::at_ms(epoch_s * 1000, offset_s);
    push_year(out, c.year);
    push_2(out, c.month);
    push_2(out, c.day);
    push_2(out, c.hour);
    push_2(out, c.minute);
    push_2(out, c.second);
}

/// `2026-11-04` then `sep` then `16:00:01` (CloudFront writes a tab between them).
pub fn push_date_time(out: &mut Vec<u8>, epoch_s: i64, offset_s: i32, sep: u8) {
    let c = Civil::at_ms(epoch_s * 1000, offset_s);
    push_date(out, &c);
    out.push(sep);
    push_time(out, &c);
}

/// Renders the strftime subset used by shard and output templates: `%Y %m %d %H %M %S %%`.
/// Other characters are copied.
pub fn strftime(template: &str, epoch_s: i64, offset_s: i32) -> String {
    let c = Civil::at_ms(epoch_s * 1000, offset_s);
    let mut out = Vec::with_capacity(template.len() + 8);
    let mut chars = template.bytes();
    while let Some(b) = chars.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        match chars.next() {
            Some(b'Y') => push_year(&mut out, c.year),
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
    }
}
