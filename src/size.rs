//! Byte sizes as people write them, the way Hadoop reads them (`getLongBytes`): a number with
//! an optional binary prefix `k`, `m`, `g`, `t`, `p`, `e` (any case, powers of 1024), an
//! optional `b`/`ib` after it, and a decimal fraction allowed (`1.5g`). The one parser of
//! `--memory`, `--task-size`, `-D filex.*-bytes` and the job file's `part_size`.

/// A text that is not a byte size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("'{text}' is not a size such as 4096, 256m or 1.5G")]
    NotASize { text: String },
    #[error("'{text}': unknown unit '{unit}' (use k, m, g, t, p or e)")]
    UnknownUnit { text: String, unit: String },
    #[error("'{text}' is too large")]
    TooLarge { text: String },
}

/// The bytes `text` means: `4096`, `256m`, `1.5G`, `64MiB`, `2gb`.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let prefix = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let shift = match prefix {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        "e" => 60,
        _ => {
            return Err(SizeError::UnknownUnit {
                text: text.to_string(),
                unit: unit.to_string(),
            })
        }
    };
    let not_a_size = || SizeError::NotASize {
        text: text.to_string(),
    };
    let too_large = || SizeError::TooLarge {
        text: text.to_string(),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return Err(not_a_size());
    }
    let whole: u64 = match whole {
        "" => 0,
        w => w.parse().map_err(|_| too_large())?,
    };
    let mut bytes = whole.checked_shl(shift).filter(|b| b >> shift == whole);
    if !fraction.is_empty() {
        let f: f64 = format!("0.{fraction}").parse().map_err(|_| not_a_size())?;
        let extra = (f * (1u64 << shift) as f64) as u64;
        bytes = bytes.and_then(|b| b.checked_add(extra));
    }
    bytes.ok_or_else(too_large)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let ok = [
            ("0", 0),
            ("4096", 4096),
            (" 16M ", 16 << 20),
            ("256m", 256 << 20),
            ("256M", 256 << 20),
            ("8m", 8 << 20),
            ("1k", 1 << 10),
            ("1.5g", 3 << 29),
            ("1.5G", 3 << 29),
            ("2GiB", 2 << 30),
            ("64MiB", 64 << 20),
            ("2gb", 2 << 30),
            ("512M", 512 << 20),
            ("512 M", 512 << 20),
            ("1t", 1 << 40),
            ("1p", 1 << 50),
            ("1e", 1 << 60),
            (".5k", 512),
            ("1.", 1),
        ];
        for (text, bytes) in ok {
            assert_eq!(parse_size(text), Ok(bytes), "{text:?}");
        }
        let bad = [
            "",
            "lots",
            "m",
            "5X",
            "-1",
            "1.2.3",
            ".",
            "16 MB MB",
            "99999e",
            "18446744073709551616",
        ];
        for text in bad {
            assert!(parse_size(text).is_err(), "{text:?} must be rejected");
        }
        assert_eq!(
            parse_size("5X").unwrap_err().to_string(),
            "'5X': unknown unit 'x' (use k, m, g, t, p or e)"
        );
    }
}
