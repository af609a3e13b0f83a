//! The calendar: proleptic Gregorian dates at fixed UTC offsets, the civil date-time type
//! [`Civil`], and the writers of the layouts filex prints (RFC 3339, CLF).
//!
//! Hand-written (Howard Hinnant's days-from-civil arithmetic) because the line parsers and the
//! renderers run it once per line; only fixed offsets exist here, as every vendor and every job
//! names its zone that way, which keeps every hour exactly 3 600 000 ms long. The parsers of the
//! vendors' time layouts live in `formats::time` and call the arithmetic here.

const MS_PER_SEC: i64 = 1_000;
const SECS_PER_DAY: i64 = 86_400;

/// English month abbreviations, as CLF writes them.
pub(crate) const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
/// `month` is 1..=12, `day` 1..=31 (not checked against the month length here).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]: `(year, month 1..=12, day 1..=31)`.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since the epoch of a date that exists; `None` for an impossible one (`2021-02-29`).
pub(crate) fn checked_days(year: i64, month: u32, day: u32) -> Option<i64> {
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// Civil date-time fields of an instant seen at a fixed offset, to the second.
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
    /// The fields of epoch milliseconds `ms` at `offset_secs` east of UTC (milliseconds are
    /// dropped: the fields are those of the second holding `ms`).
    pub fn at_ms(ms: i64, offset_secs: i32) -> Civil {
        let local = ms.div_euclid(MS_PER_SEC) + i64::from(offset_secs);
        let (year, month, day) = civil_from_days(local.div_euclid(SECS_PER_DAY));
        let secs = local.rem_euclid(SECS_PER_DAY) as u32;
        Civil {
            year,
            month,
            day,
            hour: secs / 3600,
            minute: secs / 60 % 60,
            second: secs % 60,
        }
    }

    /// Epoch milliseconds of these fields at `offset_secs`.
    pub fn to_ms(&self, offset_secs: i32) -> i64 {
        let days = days_from_civil(self.year, self.month, self.day);
        let secs = days * SECS_PER_DAY
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
            - i64::from(offset_secs);
        secs * MS_PER_SEC
    }
}

/// Appends `v % 100` as two digits.
pub(crate) fn push_2(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&[b'0' + (v / 10 % 10) as u8, b'0' + (v % 10) as u8]);
}

/// Appends a year: four digits for 0..=9999, else its decimal form.
pub(crate) fn push_year(out: &mut Vec<u8>, year: i64) {
    if (0..=9999).contains(&year) {
        let y = year as u32;
        push_2(out, y / 100);
        push_2(out, y % 100);
    } else {
        out.extend_from_slice(year.to_string().as_bytes());
    }
}

/// Appends `offset_secs` as `±hh:mm` (`colon`) or `±hhmm`.
pub(crate) fn push_offset(out: &mut Vec<u8>, offset_secs: i32, colon: bool) {
    out.push(if offset_secs < 0 { b'-' } else { b'+' });
    let a = offset_secs.unsigned_abs();
    push_2(out, a / 3600);
    if colon {
        out.push(b':');
    }
    push_2(out, a / 60 % 60);
}

/// Appends `yyyy-mm-dd`.
pub(crate) fn push_date(out: &mut Vec<u8>, c: &Civil) {
    push_year(out, c.year);
    out.push(b'-');
    push_2(out, c.month);
    out.push(b'-');
    push_2(out, c.day);
}

/// Appends `HH:MM:SS`.
pub(crate) fn push_time(out: &mut Vec<u8>, c: &Civil) {
    push_2(out, c.hour);
    out.push(b':');
    push_2(out, c.minute);
    out.push(b':');
    push_2(out, c.second);
}

/// What [`push_rfc3339`] writes after the seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rfc3339 {
    /// `2026-11-05T00:00:00+08:00`; UTC is `+00:00`.
    Seconds,
    /// `2021-03-05T18:15:32.045+08:00`; UTC is `+00:00`, so every line has the same shape.
    Millis,
    /// As `Millis`, but UTC is written `Z`.
    MillisZ,
}

/// Appends `ms` as RFC 3339 at `offset_secs`.
pub(crate) fn push_rfc3339(out: &mut Vec<u8>, ms: i64, offset_secs: i32, style: Rfc3339) {
    let c = Civil::at_ms(ms, offset_secs);
    push_date(out, &c);
    out.push(b'T');
    push_time(out, &c);
    if style != Rfc3339::Seconds {
        let millis = ms.rem_euclid(MS_PER_SEC) as u32;
        out.push(b'.');
        out.push(b'0' + (millis / 100) as u8);
        push_2(out, millis % 100);
    }
    if style == Rfc3339::MillisZ && offset_secs == 0 {
        out.push(b'Z');
    } else {
        push_offset(out, offset_secs, true);
    }
}

/// `ms` as RFC 3339 at `offset_secs` with second precision (`2026-11-05T00:00:00+08:00`).
pub fn format_rfc3339(ms: i64, offset_secs: i32) -> String {
    let mut out = Vec::with_capacity(25);
    push_rfc3339(&mut out, ms, offset_secs, Rfc3339::Seconds);
    String::from_utf8_lossy(&out).into_owned()
}

/// Now, in epoch milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Now, RFC 3339 UTC with milliseconds (`2026-11-05T00:00:00.123Z`).
pub fn now_rfc3339() -> String {
    let mut out = Vec::with_capacity(24);
    push_rfc3339(&mut out, now_ms(), 0, Rfc3339::MillisZ);
    String::from_utf8_lossy(&out).into_owned()
}

/// `ms` for people reading a page: `2026-11-04 16:00:05 UTC`.
pub fn format_readable_utc(ms: i64) -> String {
    let c = Civil::at_ms(ms, 0);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// A duration of `ms` milliseconds for people: `850 ms`, `12.3 s`, `4 min 05 s`,
/// `2 h 03 min` (negative durations read as 0).
pub fn format_elapsed(ms: i64) -> String {
    let ms = ms.max(0);
    let secs = ms / MS_PER_SEC;
    match secs {
        0 => format!("{ms} ms"),
        1..=59 => format!("{:.1} s", ms as f64 / 1000.0),
        60..=3599 => format!("{} min {:02} s", secs / 60, secs % 60),
        _ => format!("{} h {:02} min", secs / 3600, secs % 3600 / 60),
    }
}

/// The compact UTC form of file names and SigV4 dates: `20261104T160000Z`.
pub fn format_compact_utc(ms: i64) -> String {
    let c = Civil::at_ms(ms, 0);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// Appends the CLF time without brackets: `05/Mar/2021:18:15:32 +0800`; with
/// `one_digit_day`, `5/Mar/…` for days below 10.
pub(crate) fn push_clf(out: &mut Vec<u8>, ms: i64, offset_secs: i32, one_digit_day: bool) {
    let c = Civil::at_ms(ms, offset_secs);
    if one_digit_day && c.day < 10 {
        out.push(b'0' + c.day as u8);
    } else {
        push_2(out, c.day);
    }
    out.push(b'/');
    out.extend_from_slice(MONTHS[(c.month - 1) as usize]);
    out.push(b'/');
    push_year(out, c.year);
    out.push(b':');
    push_time(out, &c);
    out.push(b' ');
    push_offset(out, offset_secs, false);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jiff_ms(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn readable_times_and_durations() {
        assert_eq!(
            format_readable_utc(jiff_ms("2026-11-04T16:00:05.999Z")),
            "2026-11-04 16:00:05 UTC"
        );
        // (milliseconds, as written for people)
        let cases = [
            (-5, "0 ms"),
            (850, "850 ms"),
            (12_345, "12.3 s"),
            (245_000, "4 min 05 s"),
            (7_380_000, "2 h 03 min"),
        ];
        for (ms, text) in cases {
            assert_eq!(format_elapsed(ms), text, "{ms} ms");
        }
    }

    #[test]
    fn civil_round_trip_over_a_wide_range() {
        for days in (-800_000..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(Civil::at_ms(-1, 0).year, 1969);
        assert_eq!(checked_days(2024, 2, 29), Some(19_782));
        assert_eq!(checked_days(2021, 2, 29), None);
        assert_eq!(checked_days(2021, 13, 1), None);
    }

    #[test]
    fn civil_round_trip_matches_jiff() {
        for ms in [
            0i64,
            1_614_939_332_000,
            1_793_894_400_000,
            -86_400_000,
            951_782_400_000,
        ] {
            for off in [0, 8 * 3600, -5 * 3600] {
                let c = Civil::at_ms(ms, off);
                assert_eq!(c.to_ms(off), ms - ms.rem_euclid(1000));
                let s = format_rfc3339(ms, off);
                let back: jiff::Timestamp = s.parse().unwrap();
                assert_eq!(back.as_millisecond(), ms - ms.rem_euclid(1000), "{s}");
            }
        }
    }

    #[test]
    fn writers_match_jiff() {
        let t = jiff_ms("2021-03-05T10:15:32.045Z");
        let mut out = Vec::new();
        let mut w = |f: &dyn Fn(&mut Vec<u8>)| {
            out.clear();
            f(&mut out);
            String::from_utf8_lossy(&out).into_owned()
        };
        let at = |off| move |o: &mut Vec<u8>| push_rfc3339(o, t, off, Rfc3339::Millis);
        assert_eq!(w(&at(8 * 3600)), "2021-03-05T18:15:32.045+08:00");
        assert_eq!(w(&at(0)), "2021-03-05T10:15:32.045+00:00");
        let clf = |o: &mut Vec<u8>| push_clf(o, t, -(5 * 3600 + 30 * 60), false);
        assert_eq!(w(&clf), "05/Mar/2021:04:45:32 -0530");
        let clf = |o: &mut Vec<u8>| push_clf(o, t, 8 * 3600, true);
        assert_eq!(w(&clf), "5/Mar/2021:18:15:32 +0800");
        let early = |o: &mut Vec<u8>| push_rfc3339(o, -1, 0, Rfc3339::Millis);
        assert_eq!(w(&early), "1969-12-31T23:59:59.999+00:00");
        let z = |o: &mut Vec<u8>| push_rfc3339(o, t - 38, 0, Rfc3339::MillisZ);
        assert_eq!(w(&z), "2021-03-05T10:15:32.007Z");
        assert_eq!(format_rfc3339(t, 8 * 3600), "2021-03-05T18:15:32+08:00");
        assert_eq!(format_compact_utc(0), "19700101T000000Z");
        let now = now_rfc3339();
        assert_eq!((now.len(), now.as_bytes()[23]), (24, b'Z'), "{now}");
    }
}
