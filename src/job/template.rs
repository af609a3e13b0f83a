//! Path templates: strftime fields (`%Y %m %d %H %M`), `{domain}` and globs (`*`, `?`).
//!
//! A shard template is matched against listed names one path segment at a time, so shard
//! discovery lists directories instead of probing every 5-minute slot; an output template is
//! rendered once per partition.

use super::time::{DAY_MS, HOUR_MS, MINUTE_MS};
use super::JobError;
use crate::calendar::Civil;

/// The time fields a template may use, coarsest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    Year,
    Month,
    Day,
    Hour,
    Minute,
}

impl Field {
    fn width(self) -> usize {
        match self {
            Field::Year => 4,
            _ => 2,
        }
    }
    fn index(self) -> usize {
        self as usize
    }
    fn from_code(c: char) -> Option<Field> {
        Some(match c {
            'Y' => Field::Year,
            'm' => Field::Month,
            'd' => Field::Day,
            'H' => Field::Hour,
            'M' => Field::Minute,
            _ => return None,
        })
    }
}

/// One piece of a path segment pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Literal(String),
    Time(Field),
    Domain,
    /// `{part}`: the number of a part, [`PART_DIGITS`] digits (only in `output.part_name`).
    Part,
    /// `*`: any run of characters within a segment.
    Star,
    /// `?`: one character.
    One,
}

/// A path segment pattern.
pub type SegmentPattern = Vec<Token>;

/// Digits of a rendered `{part}` (zero-padded, as Hadoop's `part-r-00000`).
pub const PART_DIGITS: usize = 5;

/// Splits `pattern` into tokens. Globs are allowed only when `globs` is true.
pub fn tokenize(key: &str, pattern: &str, globs: bool) -> Result<SegmentPattern, JobError> {
    tokenize_with(key, pattern, globs, false)
}

/// As [`tokenize`]; `{part}` is allowed when `part` is true.
fn tokenize_with(
    key: &str,
    pattern: &str,
    globs: bool,
    part: bool,
) -> Result<SegmentPattern, JobError> {
    let invalid = |reason: String| JobError::Invalid {
        key: key.to_string(),
        value: pattern.to_string(),
        reason,
    };
    let mut tokens = Vec::new();
    let mut lit = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        let token = match c {
            '%' => match chars.next() {
                Some('%') => {
                    lit.push('%');
                    continue;
                }
                Some(code) => match Field::from_code(code) {
                    Some(f) => Token::Time(f),
                    None => {
                        return Err(invalid(format!(
                            "unsupported strftime field %{code} (use %Y %m %d %H %M)"
                        )))
                    }
                },
                None => return Err(invalid("a lone % at the end".into())),
            },
            '{' => {
                let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
                match name.as_str() {
                    "domain" => Token::Domain,
                    "part" if part => Token::Part,
                    _ => return Err(invalid(format!("unknown placeholder {{{name}}}"))),
                }
            }
            '*' | '?' if globs => {
                if c == '*' {
                    Token::Star
                } else {
                    Token::One
                }
            }
            '*' | '?' | '[' => {
                return Err(invalid(format!("'{c}' is not allowed in this template")));
            }
            _ => {
                lit.push(c);
                continue;
            }
        };
        if !lit.is_empty() {
            tokens.push(Token::Literal(std::mem::take(&mut lit)));
        }
        tokens.push(token);
    }
    if !lit.is_empty() {
        tokens.push(Token::Literal(lit));
    }
    Ok(tokens)
}

/// Values captured while matching a path against a template.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captures {
    fields: [Option<u32>; 5],
    pub domain: Option<String>,
}

impl Captures {
    fn set(&mut self, f: Field, v: u32) -> bool {
        match self.fields[f.index()] {
            Some(old) => old == v,
            None => {
                self.fields[f.index()] = Some(v);
                true
            }
        }
    }

    /// Whether the captured time fields are the coarsest ones without a gap (`%Y`, `%Y %m`,
    /// …): only then does [`Captures::span`] describe all of them.
    fn coarsest_first(&self) -> bool {
        let set = self.fields.iter().take_while(|f| f.is_some()).count();
        self.fields[set..].iter().all(Option::is_none)
    }

    /// The time span the captured fields pin down, if they start with the year:
    /// `[start, start + length)` at `offset_secs`, and the finest field known.
    pub fn span(&self, offset_secs: i32) -> Option<(i64, i64, Field)> {
        let year = self.fields[0]?;
        let mut finest = Field::Year;
        let mut c = Civil {
            year: i64::from(year),
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
        };
        for f in [Field::Month, Field::Day, Field::Hour, Field::Minute] {
            let Some(v) = self.fields[f.index()] else {
                break;
            };
            match f {
                Field::Month => c.month = v,
                Field::Day => c.day = v,
                Field::Hour => c.hour = v,
                Field::Minute => c.minute = v,
                Field::Year => {}
            }
            finest = f;
        }
        if !(1..=12).contains(&c.month)
            || !(1..=31).contains(&c.day)
            || c.hour > 23
            || c.minute > 59
        {
            return None;
        }
        let start = c.to_ms(offset_secs);
        let end = match finest {
            Field::Year => {
                let next = Civil {
                    year: c.year + 1,
                    ..c
                };
                next.to_ms(offset_secs)
            }
            Field::Month => {
                let (y, m) = if c.month == 12 {
                    (c.year + 1, 1)
                } else {
                    (c.year, c.month + 1)
                };
                Civil {
                    year: y,
                    month: m,
                    ..c
                }
                .to_ms(offset_secs)
            }
            Field::Day => start + DAY_MS,
            Field::Hour => start + HOUR_MS,
            Field::Minute => start + MINUTE_MS,
        };
        Some((start, end, finest))
    }
}

/// Matches one path segment `name` against `pattern`, extending `caps` on success.
pub fn match_segment(pattern: &[Token], name: &str, caps: &Captures) -> Option<Captures> {
    let mut out = caps.clone();
    if match_from(pattern, name.as_bytes(), &mut out) {
        Some(out)
    } else {
        None
    }
}

fn match_from(pattern: &[Token], name: &[u8], caps: &mut Captures) -> bool {
    let Some((first, rest)) = pattern.split_first() else {
        return name.is_empty();
    };
    match first {
        Token::Literal(l) => {
            name.starts_with(l.as_bytes()) && match_from(rest, &name[l.len()..], caps)
        }
        Token::Time(f) => {
            let w = f.width();
            if name.len() < w || !name[..w].iter().all(u8::is_ascii_digit) {
                return false;
            }
            let v = name[..w]
                .iter()
                .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'));
            let saved = caps.clone();
            if caps.set(*f, v) && match_from(rest, &name[w..], caps) {
                return true;
            }
            *caps = saved;
            false
        }
        Token::Domain | Token::Star => {
            // Shortest first; a domain needs at least one character.
            let min = usize::from(matches!(first, Token::Domain));
            for split in min..=name.len() {
                let saved = caps.clone();
                if let Token::Domain = first {
                    match std::str::from_utf8(&name[..split]) {
                        Ok(d) => caps.domain = Some(d.to_string()),
                        Err(_) => continue,
                    }
                }
                if match_from(rest, &name[split..], caps) {
                    return true;
                }
                *caps = saved;
            }
            false
        }
        Token::One => !name.is_empty() && match_from(rest, &name[1..], caps),
        // Shard templates never hold `{part}`.
        Token::Part => false,
    }
}

/// A compiled output path template: one file per (domain, bucket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputTemplate {
    segments: Vec<SegmentPattern>,
    /// Length of one partition's time bucket (an hour or a day).
    pub bucket_ms: i64,
    pub offset_secs: i32,
}

impl OutputTemplate {
    pub fn parse(key: &str, path: &str, offset_secs: i32) -> Result<OutputTemplate, JobError> {
        Self::parse_with(key, path, offset_secs, false)
    }

    /// A template of numbered parts (`output.part_name`): as [`OutputTemplate::parse`], with
    /// `{part}` required exactly once.
    pub fn parse_parts(
        key: &str,
        path: &str,
        offset_secs: i32,
    ) -> Result<OutputTemplate, JobError> {
        let t = Self::parse_with(key, path, offset_secs, true)?;
        let parts = t.segments.iter().flatten().filter(|t| **t == Token::Part);
        if parts.count() != 1 {
            return Err(JobError::Invalid {
                key: key.to_string(),
                value: path.to_string(),
                reason: "must contain {part} exactly once".into(),
            });
        }
        Ok(t)
    }

    /// The default part template of the output path `path`: `.part-{part}` before its
    /// trailing `.gz` (`{domain}/%Y%m%d%H.log.gz` → `{domain}/%Y%m%d%H.log.part-{part}.gz`),
    /// or after it when it has none.
    pub fn default_part_name(path: &str) -> String {
        match path.strip_suffix(".gz") {
            Some(stem) => format!("{stem}.part-{{part}}.gz"),
            None => format!("{path}.part-{{part}}"),
        }
    }

    fn parse_with(
        key: &str,
        path: &str,
        offset_secs: i32,
        part: bool,
    ) -> Result<OutputTemplate, JobError> {
        let invalid = |reason: &str| JobError::Invalid {
            key: key.to_string(),
            value: path.to_string(),
            reason: reason.to_string(),
        };
        if path.starts_with('/') || path.is_empty() {
            return Err(invalid("must be a relative path under output.root"));
        }
        let mut segments = Vec::new();
        for seg in path.split('/') {
            if seg.is_empty() || seg == "." || seg == ".." {
                return Err(invalid("empty, '.' or '..' path segments are not allowed"));
            }
            if seg.starts_with('_') {
                return Err(invalid(
                    "segments starting with '_' are reserved for filex's own files",
                ));
            }
            segments.push(tokenize_with(key, seg, false, part)?);
        }
        let all: Vec<&Token> = segments.iter().flatten().collect();
        if !all.contains(&&Token::Domain) {
            return Err(invalid("must contain {domain}: one file per domain"));
        }
        let finest = all
            .iter()
            .filter_map(|t| match t {
                Token::Time(f) => Some(*f),
                _ => None,
            })
            .max();
        let has = |f: Field| all.contains(&&Token::Time(f));
        let needs: &[Field] = match finest {
            Some(Field::Hour) => &[Field::Year, Field::Month, Field::Day],
            Some(Field::Day) => &[Field::Year, Field::Month],
            _ => &[],
        };
        if let Some(missing) = needs.iter().find(|f| !has(**f)) {
            return Err(invalid(&format!(
                "the finest time field needs the coarser ones too (missing {missing:?}), or two periods would share one file"
            )));
        }
        let bucket_ms = match finest {
            Some(Field::Hour) => HOUR_MS,
            Some(Field::Day) => DAY_MS,
            Some(Field::Minute) => return Err(invalid("%M is finer than filex's hourly files")),
            _ => {
                return Err(invalid(
                    "must contain %H (hourly files) or %d (daily files)",
                ))
            }
        };
        Ok(OutputTemplate {
            segments,
            bucket_ms,
            offset_secs,
        })
    }

    /// Start of the bucket holding `time_ms`.
    pub fn bucket_of(&self, time_ms: i64) -> i64 {
        let off = i64::from(self.offset_secs) * 1000;
        (time_ms + off).div_euclid(self.bucket_ms) * self.bucket_ms - off
    }

    /// The relative path of the partition (`domain`, bucket starting at `bucket_start`).
    pub fn render(&self, domain: &str, bucket_start: i64) -> String {
        self.render_part(domain, bucket_start, 0)
    }

    /// The relative path of part `part` (1-based) of the partition; `{part}` renders as
    /// [`PART_DIGITS`] digits (more when the number needs them).
    pub fn render_part(&self, domain: &str, bucket_start: i64, part: u32) -> String {
        let c = Civil::at_ms(bucket_start, self.offset_secs);
        let mut out = String::new();
        for (i, seg) in self.segments.iter().enumerate() {
            if i > 0 {
                out.push('/');
            }
            render_segment(seg, domain, part, &c, &mut out);
        }
        out
    }

    /// The directory that holds exactly the window `[start_ms, end_ms)`, relative to the
    /// output root: of the template's leading directories made only of literals and time
    /// fields (none after a `{domain}`), the deepest one whose time fields are the coarsest
    /// ones without a gap (`%Y`, `%Y %m`, `%Y %m %d` or `%Y %m %d %H`) and pin down, at the
    /// window's start, a span equal to the window. `None` when there is none: the template
    /// starts with `{domain}` or a literal-only path, or the window is not one whole year,
    /// month, day or hour of it.
    ///
    /// `%Y/%m/%d/%H/{domain}.gz` with the window 10:00–11:00 → `2026/11/05/10`; with the whole
    /// day → `2026/11/05`; with 10:00–12:00 → `None`. `dt=%Y-%m-%d/{domain}_%H.gz` with a day
    /// → `dt=2026-11-05`.
    pub fn window_dir(&self, start_ms: i64, end_ms: i64) -> Option<String> {
        let c = Civil::at_ms(start_ms, self.offset_secs);
        let (_file, dirs) = self.segments.split_last()?;
        let mut caps = Captures::default();
        let mut rendered: Vec<String> = Vec::new();
        let mut found = None;
        for seg in dirs {
            if seg
                .iter()
                .any(|t| matches!(t, Token::Domain | Token::Part | Token::Star | Token::One))
            {
                break;
            }
            for t in seg {
                if let Token::Time(f) = t {
                    if !caps.set(*f, field_value(&c, *f)) {
                        return found;
                    }
                }
            }
            let mut dir = String::new();
            render_segment(seg, "", 0, &c, &mut dir);
            rendered.push(dir);
            let exact = caps.coarsest_first()
                && matches!(caps.span(self.offset_secs),
                    Some((s, e, _)) if s == start_ms && e == end_ms);
            if exact {
                found = Some(rendered.join("/"));
            }
        }
        found
    }
}

/// The value of field `f` in `c`.
fn field_value(c: &Civil, f: Field) -> u32 {
    match f {
        // Years before 0 or past u32 do not occur in log windows; clamp rather than wrap.
        Field::Year => u32::try_from(c.year).unwrap_or(0),
        Field::Month => c.month,
        Field::Day => c.day,
        Field::Hour => c.hour,
        Field::Minute => c.minute,
    }
}

/// Appends one rendered segment to `out`.
fn render_segment(seg: &[Token], domain: &str, part: u32, c: &Civil, out: &mut String) {
    for t in seg {
        match t {
            Token::Literal(l) => out.push_str(l),
            Token::Domain => out.push_str(domain),
            Token::Part => out.push_str(&format!("{part:0w$}", w = PART_DIGITS)),
            Token::Time(f @ Field::Year) => out.push_str(&format!("{:04}", field_value(c, *f))),
            Token::Time(f) => out.push_str(&format!("{:02}", field_value(c, *f))),
            Token::Star | Token::One => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::time;

    #[test]
    fn matches_fields_domain_and_globs() {
        let p = tokenize("k", "{domain}_%Y%m%d%H*.gz", true).unwrap();
        let c = match_segment(&p, "img.example.com_2026110503-0.gz", &Captures::default())
            .expect("matches");
        assert_eq!(c.domain.as_deref(), Some("img.example.com"));
        let (start, end, finest) = c.span(8 * 3600).unwrap();
        assert_eq!(finest, Field::Hour);
        assert_eq!(end - start, HOUR_MS);
        assert_eq!(
            start,
            time::parse_instant("t", "2026-11-05T03:00:00+08:00").unwrap()
        );
        assert!(match_segment(&p, "img_20261105.gz", &Captures::default()).is_none());
        assert!(match_segment(&p, "x_2026110503.gz.tmp", &Captures::default()).is_none());
    }

    #[test]
    fn repeated_fields_must_agree() {
        let p = tokenize("k", "%Y%m%d-%d", true).unwrap();
        assert!(match_segment(&p, "20261105-05", &Captures::default()).is_some());
        assert!(match_segment(&p, "20261105-06", &Captures::default()).is_none());
    }

    #[test]
    fn output_template_buckets_and_renders() {
        let t = OutputTemplate::parse("p", "{domain}/%Y%m%d/{domain}_%Y%m%d%H.log.gz", 8 * 3600)
            .unwrap();
        assert_eq!(t.bucket_ms, HOUR_MS);
        let ms = time::parse_instant("t", "2026-11-05T03:59:59.999+08:00").unwrap();
        let b = t.bucket_of(ms);
        assert_eq!(
            t.render("a.example.com", b),
            "a.example.com/20261105/a.example.com_2026110503.log.gz"
        );
        let daily = OutputTemplate::parse("p", "{domain}/%Y%m%d.log.gz", 8 * 3600).unwrap();
        assert_eq!(daily.bucket_ms, DAY_MS);
        let late = time::parse_instant("t", "2026-11-05T16:30:00Z").unwrap();
        assert_eq!(
            daily.render("a", daily.bucket_of(late)),
            "a/20261106.log.gz"
        );
    }

    #[test]
    fn the_window_directory_holds_exactly_the_window() {
        let at = |s: &str| time::parse_instant("t", s).unwrap();
        // (template, zone offset, window start, window end, the window's own directory)
        let cases: [(&str, i32, &str, &str, Option<&str>); 12] = [
            (
                "%Y/%m/%d/%H/{domain}.gz",
                0,
                "2026-11-05T10:00:00Z",
                "2026-11-05T11:00:00Z",
                Some("2026/11/05/10"),
            ),
            (
                "%Y/%m/%d/%H/{domain}.gz",
                0,
                "2026-11-05T00:00:00Z",
                "2026-11-06T00:00:00Z",
                Some("2026/11/05"),
            ),
            (
                "%Y/%m/%d/%H/{domain}.gz",
                0,
                "2026-11-01T00:00:00Z",
                "2026-12-01T00:00:00Z",
                Some("2026/11"),
            ),
            (
                "%Y/%m/%d/%H/{domain}.gz",
                0,
                "2026-11-05T10:00:00Z",
                "2026-11-05T12:00:00Z",
                None,
            ),
            (
                "%Y/%m/%d/%H/{domain}.gz",
                0,
                "2026-11-05T10:30:00Z",
                "2026-11-05T11:30:00Z",
                None,
            ),
            // The hour of the path is the output zone's.
            (
                "%Y/%m/%d/%H/{domain}.gz",
                8 * 3600,
                "2026-11-05T02:00:00Z",
                "2026-11-05T03:00:00Z",
                Some("2026/11/05/10"),
            ),
            (
                "fused/%Y%m%d/%H/{domain}.gz",
                0,
                "2026-11-05T10:00:00Z",
                "2026-11-05T11:00:00Z",
                Some("fused/20261105/10"),
            ),
            (
                "dt=%Y-%m-%d/{domain}_%H.gz",
                0,
                "2026-11-05T00:00:00Z",
                "2026-11-06T00:00:00Z",
                Some("dt=2026-11-05"),
            ),
            // Literals after the time fields: the deepest directory of the window.
            (
                "%Y%m%d%H/logs/{domain}.gz",
                0,
                "2026-11-05T10:00:00Z",
                "2026-11-05T11:00:00Z",
                Some("2026110510/logs"),
            ),
            // Domain first, a gap in the fields, or only the file name: no such directory.
            (
                "{domain}/%Y/%m/%d/%H.gz",
                0,
                "2026-11-05T10:00:00Z",
                "2026-11-05T11:00:00Z",
                None,
            ),
            (
                "%Y/%d/{domain}_%m%H.gz",
                0,
                "2026-11-05T00:00:00Z",
                "2026-11-06T00:00:00Z",
                None,
            ),
            (
                "{domain}_%Y%m%d%H.gz",
                0,
                "2026-11-05T10:00:00Z",
                "2026-11-05T11:00:00Z",
                None,
            ),
        ];
        for (path, offset, start, end, want) in cases {
            let t = OutputTemplate::parse("p", path, offset).unwrap();
            assert_eq!(
                t.window_dir(at(start), at(end)).as_deref(),
                want,
                "{path} at {offset}s, {start}–{end}"
            );
        }
    }

    #[test]
    fn output_template_rejects_unsafe_or_ambiguous() {
        for bad in [
            "/abs/{domain}_%H.gz",
            "../{domain}_%H.gz",
            "%Y%m%d%H.gz",
            "{domain}.gz",
            "_x/{domain}_%H.gz",
            "{domain}_*.gz",
            "{domain}_%H.gz",
        ] {
            assert!(OutputTemplate::parse("p", bad, 0).is_err(), "{bad}");
        }
    }
}
