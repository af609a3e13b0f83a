//! Event-time decoding for the input formats.
//!
//! The hot encodings (CLF `[d/Mon/yyyy:HH:MM:SS ±zzzz]`, 14-digit `yyyyMMddHHmmss`, RFC 3339,
//! epoch integers) are hand-rolled on bytes with the [`calendar`](crate::calendar)'s
//! arithmetic and never allocate. Only custom strftime layouts go through jiff (the slow path).
//! Nothing here knows about lines or fields: callers hand in the exact bytes of the time value.
//! The renderers write times with the calendar's writers.

use std::cell::Cell;

use crate::calendar::{checked_days, MONTHS};

const MS_PER_SEC: i64 = 1_000;
const MS_PER_DAY: i64 = 86_400_000;
/// Largest accepted UTC offset (±23:59), as in RFC 3339.
const MAX_OFFSET_SECS: i32 = 23 * 3600 + 59 * 60;

fn checked_time_of_day_ms(h: u32, m: u32, s: u32) -> Option<i64> {
    // Accept a leap second (`:60`) as the last second of the minute's successor, like most tools.
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    Some((h as i64 * 3600 + m as i64 * 60 + s as i64) * MS_PER_SEC)
}

#[inline]
fn digit(b: u8) -> Option<u32> {
    let d = b.wrapping_sub(b'0');
    (d < 10).then_some(d as u32)
}

/// Fixed-width decimal number; `None` unless every byte is a digit.
#[inline]
fn num(bytes: &[u8]) -> Option<u32> {
    let mut n = 0u32;
    for &b in bytes {
        n = n * 10 + digit(b)?;
    }
    Some(n)
}

fn month_from_abbrev(m: &[u8]) -> Option<u32> {
    let m = [
        m[0].to_ascii_uppercase(),
        m[1].to_ascii_lowercase(),
        m[2].to_ascii_lowercase(),
    ];
    MONTHS.iter().position(|x| **x == m).map(|i| i as u32 + 1)
}

/// `±hhmm` or `±hh:mm` → seconds east of UTC.
fn parse_offset(b: &[u8]) -> Option<i32> {
    let (sign, rest) = match b.first()? {
        b'+' => (1, &b[1..]),
        b'-' => (-1, &b[1..]),
        _ => return None,
    };
    let (h, m) = match rest.len() {
        4 => (num(&rest[..2])?, num(&rest[2..])?),
        5 if rest[2] == b':' => (num(&rest[..2])?, num(&rest[3..])?),
        _ => return None,
    };
    if m > 59 {
        return None;
    }
    let secs = (h * 3600 + m * 60) as i32;
    (secs <= MAX_OFFSET_SECS).then_some(sign * secs)
}

/// The last CLF date prefix (`dd/Mon/yyyy`) seen on this thread and its day number: consecutive
/// lines of a shard share it, so month lookup and date arithmetic run once per day, not per line.
#[derive(Clone, Copy)]
struct DatePrefixCache {
    len: u8,
    prefix: [u8; 11],
    days: i64,
}

thread_local! {
    static CLF_DATE_CACHE: Cell<DatePrefixCache> =
        const { Cell::new(DatePrefixCache { len: 0, prefix: [0; 11], days: 0 }) };
}

/// Days since the epoch of a CLF date `d/Mon/yyyy` or `dd/Mon/yyyy`.
fn clf_date_days(prefix: &[u8]) -> Option<i64> {
    let cached = CLF_DATE_CACHE.with(Cell::get);
    if cached.len as usize == prefix.len() && &cached.prefix[..prefix.len()] == prefix {
        return Some(cached.days);
    }
    let day_len = prefix.len() - 9; // 1 or 2, checked by the caller
    let day = num(&prefix[..day_len])?;
    if prefix[day_len] != b'/' || prefix[day_len + 4] != b'/' {
        return None;
    }
    let month = month_from_abbrev(&prefix[day_len + 1..day_len + 4])?;
    let year = num(&prefix[day_len + 5..])? as i64;
    let days = checked_days(year, month, day)?;
    let mut entry = DatePrefixCache {
        len: prefix.len() as u8,
        prefix: [0; 11],
        days,
    };
    entry.prefix[..prefix.len()].copy_from_slice(prefix);
    CLF_DATE_CACHE.with(|c| c.set(entry));
    Some(days)
}

/// Parses the inside of a CLF time bracket, `d/Mon/yyyy:HH:MM:SS ±zzzz` (day of 1 or 2 digits,
/// optional `.fff` fraction after the seconds, offset `±hhmm` or `±hh:mm`; a missing offset
/// means `default_offset_secs`) → ms since the epoch, UTC.
pub(crate) fn parse_clf(b: &[u8], default_offset_secs: i32) -> Option<i64> {
    // Day length: position of the first '/'.
    let day_len = match b.get(1)? {
        b'/' => 1,
        _ => 2,
    };
    let date_end = day_len + 9; // "d/Mon/yyyy" is 10 bytes, "dd/Mon/yyyy" 11
    if b.len() < date_end + 9 || b[date_end] != b':' {
        return None;
    }
    let days = clf_date_days(&b[..date_end])?;
    let t = &b[date_end + 1..];
    if t[2] != b':' || t[5] != b':' {
        return None;
    }
    let tod = checked_time_of_day_ms(num(&t[..2])?, num(&t[3..5])?, num(&t[6..8])?)?;
    let mut rest = &t[8..];
    let mut frac_ms = 0;
    if rest.first() == Some(&b'.') {
        let (ms, used) = parse_fraction_ms(&rest[1..])?;
        frac_ms = ms;
        rest = &rest[1 + used..];
    }
    let offset = match rest {
        [] => default_offset_secs,
        [b' ', off @ ..] => parse_offset(off)?,
        _ => return None,
    };
    Some(days * MS_PER_DAY + tod + frac_ms - offset as i64 * MS_PER_SEC)
}

/// Digits of a decimal fraction → (milliseconds, digits consumed). At least one digit.
fn parse_fraction_ms(b: &[u8]) -> Option<(i64, usize)> {
    let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 {
        return None;
    }
    let mut ms = 0i64;
    for i in 0..3 {
        ms = ms * 10 + b.get(i).filter(|_| i < n).map_or(0, |c| (c - b'0') as i64);
    }
    Some((ms, n))
}

/// `yyyyMMddHHmmss` in a zone `offset_secs` east of UTC → ms since the epoch, UTC.
pub(crate) fn parse_compact14(b: &[u8], offset_secs: i32) -> Option<i64> {
    if b.len() != 14 {
        return None;
    }
    let days = checked_days(num(&b[..4])? as i64, num(&b[4..6])?, num(&b[6..8])?)?;
    let tod = checked_time_of_day_ms(num(&b[8..10])?, num(&b[10..12])?, num(&b[12..14])?)?;
    Some(days * MS_PER_DAY + tod - offset_secs as i64 * MS_PER_SEC)
}

/// `yyyy-mm-dd` and `HH:MM:SS` (separate fields, as CloudFront writes them), UTC.
pub(crate) fn parse_date_and_time(date: &[u8], time: &[u8]) -> Option<i64> {
    if date.len() != 10 || date[4] != b'-' || date[7] != b'-' {
        return None;
    }
    let days = checked_days(num(&date[..4])? as i64, num(&date[5..7])?, num(&date[8..])?)?;
    let (tod, rest) = parse_hms(time)?;
    let frac = match rest {
        [] => 0,
        [b'.', f @ ..] => match parse_fraction_ms(f)? {
            (ms, used) if used == f.len() => ms,
            _ => return None,
        },
        _ => return None,
    };
    Some(days * MS_PER_DAY + tod + frac)
}

/// `HH:MM:SS` at the start of `b` → (ms of the day, the rest).
fn parse_hms(b: &[u8]) -> Option<(i64, &[u8])> {
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let tod = checked_time_of_day_ms(num(&b[..2])?, num(&b[3..5])?, num(&b[6..8])?)?;
    Some((tod, &b[8..]))
}

/// RFC 3339 / ISO 8601 `yyyy-mm-ddTHH:MM:SS[.fff…](Z|±hh:mm|±hhmm)`; `T` may be a space or `t`.
/// A value without an offset is read in `default_offset_secs`.
pub(crate) fn parse_rfc3339(b: &[u8], default_offset_secs: i32) -> Option<i64> {
    if b.len() < 19 || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let date = &b[..10];
    if date[4] != b'-' || date[7] != b'-' {
        return None;
    }
    let days = checked_days(num(&date[..4])? as i64, num(&date[5..7])?, num(&date[8..])?)?;
    let (tod, mut rest) = parse_hms(&b[11..])?;
    let mut frac = 0;
    if rest.first() == Some(&b'.') {
        let (ms, used) = parse_fraction_ms(&rest[1..])?;
        frac = ms;
        rest = &rest[1 + used..];
    }
    let offset = match rest {
        [] => default_offset_secs,
        [b'Z' | b'z'] => 0,
        off => parse_offset(off)?,
    };
    Some(days * MS_PER_DAY + tod + frac - offset as i64 * MS_PER_SEC)
}

/// The unit of an integer epoch time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EpochUnit {
    Seconds,
    Millis,
    Nanos,
}

/// An epoch number in `unit` → ms. Seconds may carry a fraction (`1614939332.123`); it is
/// read digit by digit, never through a float.
pub(crate) fn parse_epoch(b: &[u8], unit: EpochUnit) -> Option<i64> {
    let (neg, b) = match b.first()? {
        b'-' => (true, &b[1..]),
        _ => (false, b),
    };
    let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if int_len == 0 || int_len > 19 {
        return None;
    }
    let int: i64 = std::str::from_utf8(&b[..int_len]).ok()?.parse().ok()?;
    let frac_ms = match &b[int_len..] {
        [] => 0,
        [b'.', f @ ..] if unit == EpochUnit::Seconds => match parse_fraction_ms(f)? {
            (ms, used) if used == f.len() => ms,
            _ => return None,
        },
        _ => return None,
    };
    let ms = match unit {
        EpochUnit::Seconds => int.checked_mul(MS_PER_SEC)? + frac_ms,
        EpochUnit::Millis => int,
        EpochUnit::Nanos => int / 1_000_000,
    };
    Some(if neg { -ms } else { ms })
}

/// An integer epoch time whose unit is guessed from its magnitude (Cloudflare writes seconds,
/// milliseconds or nanoseconds depending on the job's `timestamp_format`): below 10^11 seconds,
/// below 10^14 milliseconds, below 10^17 microseconds, else nanoseconds.
pub(crate) fn epoch_any_unit_to_ms(v: i64) -> i64 {
    let a = v.unsigned_abs();
    if a < 100_000_000_000 {
        v * MS_PER_SEC
    } else if a < 100_000_000_000_000 {
        v
    } else if a < 100_000_000_000_000_000 {
        v / 1_000
    } else {
        v / 1_000_000
    }
}

/// A custom strftime layout, parsed by jiff. Layouts with `%z`/`%:z`/`%Z`/`%s` carry their own
/// offset; the others are read in `default_offset_secs` (the source's zone).
pub(crate) fn parse_strftime(layout: &str, b: &[u8], default_offset_secs: i32) -> Option<i64> {
    let tm = jiff::fmt::strtime::parse(layout, b).ok()?;
    if let Some(ts) = tm.timestamp() {
        return Some(ts.as_millisecond());
    }
    let dt = tm.to_datetime().ok()?;
    let offset = match tm.offset() {
        Some(o) => o,
        None => jiff::tz::Offset::from_seconds(default_offset_secs).ok()?,
    };
    Some(offset.to_timestamp(dt).ok()?.as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jiff_ms(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn clf_with_offsets_and_one_digit_day() {
        let want = jiff_ms("2021-03-05T10:15:32Z");
        assert_eq!(parse_clf(b"05/Mar/2021:18:15:32 +0800", 0), Some(want));
        assert_eq!(parse_clf(b"5/Mar/2021:18:15:32 +0800", 0), Some(want));
        assert_eq!(parse_clf(b"05/Mar/2021:10:15:32 +0000", 0), Some(want));
        assert_eq!(parse_clf(b"05/Mar/2021:05:15:32 -0500", 0), Some(want));
        assert_eq!(parse_clf(b"05/Mar/2021:18:15:32 +08:00", 0), Some(want));
        assert_eq!(
            parse_clf(b"05/Mar/2021:18:15:32.250 +0800", 0),
            Some(want + 250)
        );
        // No offset: the source zone applies.
        assert_eq!(parse_clf(b"05/Mar/2021:18:15:32", 8 * 3600), Some(want));
        // The cache must not leak between different dates of different lengths.
        assert_eq!(
            parse_clf(b"15/Mar/2021:18:15:32 +0800", 0),
            Some(want + 10 * MS_PER_DAY)
        );
        assert_eq!(parse_clf(b"5/Mar/2021:18:15:32 +0800", 0), Some(want));
        assert_eq!(
            parse_clf(b"29/Feb/2024:00:00:00 +0000", 0),
            Some(jiff_ms("2024-02-29T00:00:00Z"))
        );
    }

    #[test]
    fn clf_rejects_malformed_values() {
        for bad in [
            &b""[..],
            b"05/Mar/2021",
            b"05/Mar/2021:18:15",
            b"05/Mxr/2021:18:15:32 +0800",
            b"32/Mar/2021:18:15:32 +0800",
            b"29/Feb/2021:18:15:32 +0800",
            b"05/Mar/2021:24:15:32 +0800",
            b"05/Mar/2021:18:15:32 +08",
            b"05/Mar/2021:18:15:32 0800",
            b"05/Mar/2021:18:15:32 +9999",
            b"05/Mar/2021:18:15:32  +0800",
            b"5/Mar/21:18:15:32 +0800",
            b"\xff\xfe/Mar/2021:18:15:32 +0800",
        ] {
            assert_eq!(
                parse_clf(bad, 0),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn compact_rfc3339_date_time_and_epochs() {
        let want = jiff_ms("2021-03-05T10:15:32Z");
        assert_eq!(parse_compact14(b"20210305181532", 8 * 3600), Some(want));
        assert_eq!(parse_compact14(b"2021030518153", 8 * 3600), None);
        assert_eq!(parse_compact14(b"20211305181532", 0), None);
        assert_eq!(parse_date_and_time(b"2021-03-05", b"10:15:32"), Some(want));
        assert_eq!(parse_rfc3339(b"2021-03-05T10:15:32Z", 0), Some(want));
        assert_eq!(
            parse_rfc3339(b"2021-03-05T18:15:32.123456+08:00", 0),
            Some(want + 123)
        );
        assert_eq!(parse_rfc3339(b"2021-03-05 18:15:32", 8 * 3600), Some(want));
        assert_eq!(parse_rfc3339(b"2021-03-05T10:15:32Q", 0), None);
        assert_eq!(parse_epoch(b"1614939332", EpochUnit::Seconds), Some(want));
        assert_eq!(
            parse_epoch(b"1614939332.5", EpochUnit::Seconds),
            Some(want + 500)
        );
        assert_eq!(
            parse_epoch(b"1614939332123", EpochUnit::Millis),
            Some(want + 123)
        );
        assert_eq!(
            parse_epoch(b"1614939332123456789", EpochUnit::Nanos),
            Some(want + 123)
        );
        assert_eq!(parse_epoch(b"99999999999999999999", EpochUnit::Nanos), None);
        assert_eq!(parse_epoch(b"12x", EpochUnit::Seconds), None);
        assert_eq!(epoch_any_unit_to_ms(1_614_939_332), want);
        assert_eq!(epoch_any_unit_to_ms(1_614_939_332_000), want);
        assert_eq!(epoch_any_unit_to_ms(1_614_939_332_000_000), want);
        assert_eq!(epoch_any_unit_to_ms(1_614_939_332_000_000_000), want);
    }

    #[test]
    fn strftime_through_jiff() {
        let want = jiff_ms("2021-03-05T10:15:32Z");
        assert_eq!(
            parse_strftime("%Y-%m-%d %H:%M:%S", b"2021-03-05 18:15:32", 8 * 3600),
            Some(want)
        );
        assert_eq!(
            parse_strftime("%d/%b/%Y:%H:%M:%S %z", b"05/Mar/2021:18:15:32 +0800", 0),
            Some(want)
        );
        assert_eq!(parse_strftime("%s", b"1614939332", 3600), Some(want));
        assert_eq!(parse_strftime("%Y-%m-%d", b"nope", 0), None);
    }
}
