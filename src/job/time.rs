//! Time values of the job file: RFC 3339 instants, fixed UTC offsets and short durations.
//!
//! filex works with fixed offsets (`+08:00`, `UTC`): CDN vendors and their customers name
//! their zones that way, and a fixed offset keeps every hour exactly 3 600 000 ms long.

use super::JobError;
pub use crate::calendar::{format_compact_utc, format_rfc3339};

/// Milliseconds in one minute, hour and day.
pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Parses an RFC 3339 instant (`2026-11-05T00:00:00+08:00`) into epoch milliseconds.
pub fn parse_instant(key: &str, value: &str) -> Result<i64, JobError> {
    let ts: jiff::Timestamp = value.trim().parse().map_err(|e| JobError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        reason: format!("not an RFC 3339 time with offset ({e})"),
    })?;
    Ok(ts.as_millisecond())
}

/// Parses a fixed UTC offset: `+08:00`, `+0800`, `-05:00`, `UTC`, `Z`. Returns seconds east.
pub fn parse_offset(key: &str, value: &str) -> Result<i32, JobError> {
    let v = value.trim();
    let invalid = |reason: &str| JobError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    };
    if v.eq_ignore_ascii_case("utc") || v == "Z" || v.eq_ignore_ascii_case("gmt") {
        return Ok(0);
    }
    let (sign, rest) = match v.as_bytes().first() {
        Some(b'+') => (1, &v[1..]),
        Some(b'-') => (-1, &v[1..]),
        _ => return Err(invalid("expected a fixed offset such as +08:00 or UTC")),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("expected a fixed offset such as +08:00 or UTC"));
    }
    let hours: i32 = digits[..2].parse().map_err(|_| invalid("bad hours"))?;
    let minutes: i32 = digits[2..].parse().map_err(|_| invalid("bad minutes"))?;
    if hours > 18 || minutes > 59 {
        return Err(invalid("offset out of range"));
    }
    Ok(sign * (hours * 3600 + minutes * 60))
}

/// Parses a duration such as `5m`, `90s`, `1h`, `2d`, `0`. Returns milliseconds.
pub fn parse_duration(key: &str, value: &str) -> Result<i64, JobError> {
    let v = value.trim();
    let invalid = || JobError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        reason: "expected a duration such as 30s, 5m, 1h or 2d".to_string(),
    };
    if v == "0" {
        return Ok(0);
    }
    let split = v.find(|c: char| !c.is_ascii_digit()).ok_or_else(invalid)?;
    let (num, unit) = v.split_at(split);
    let n: i64 = num.parse().map_err(|_| invalid())?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" | "min" => MINUTE_MS,
        "h" => HOUR_MS,
        "d" => DAY_MS,
        _ => return Err(invalid()),
    };
    n.checked_mul(unit_ms).ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("k", "+08:00").unwrap(), 8 * 3600);
        assert_eq!(parse_offset("k", "+0530").unwrap(), 5 * 3600 + 1800);
        assert_eq!(parse_offset("k", "-05:00").unwrap(), -5 * 3600);
        assert_eq!(parse_offset("k", "UTC").unwrap(), 0);
        assert!(parse_offset("k", "Asia/Shanghai").is_err());
        assert!(parse_offset("k", "+25:00").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("k", "5m").unwrap(), 300_000);
        assert_eq!(parse_duration("k", "1h").unwrap(), 3_600_000);
        assert_eq!(parse_duration("k", "0").unwrap(), 0);
        assert!(parse_duration("k", "5 minutes").is_err());
        assert!(parse_duration("k", "m").is_err());
    }

    #[test]
    fn instants() {
        assert_eq!(
            parse_instant("k", "2026-11-05T00:00:00+08:00").unwrap(),
            parse_instant("k", "2026-11-04T16:00:00Z").unwrap()
        );
    }
}
