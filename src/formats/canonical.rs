//! Canonical values: one spelling of the protocol and the cache status across vendors, so a
//! fused file does not say `HTTP/2.0` for one platform and `HTTP/2` for another, or `Hit`,
//! `hit` and `HIT`. [`Format::parse`](super::Format::parse) applies [`canonical`] to every
//! record, whatever the format (custom ones included); the tables are documented in
//! `docs/FORMATS.md`, section "Canonical values".
//!
//! Values are compared by a short key (ASCII letters, digits, `.` and `/`, lower-cased; `_`
//! and `-` dropped) built on the stack; a known value becomes a `&'static str`, an unknown one
//! keeps its bytes, upper-cased only if it has lower-case letters. Absent values are `""`
//! already (the lexers read `-`, `""`, `"-"`, blanks and JSON `null` as empty).

use std::borrow::Cow;

use super::Record;

/// Longest key compared; longer values are unknown.
const MAX_KEY: usize = 32;

/// The comparison key of `s` (see the module doc), or `None` when too long or containing
/// other bytes (such a value cannot be a known one).
fn key(s: &str, buf: &mut [u8; MAX_KEY]) -> Option<usize> {
    let mut n = 0;
    for c in s.bytes() {
        let c = match c {
            b'_' | b'-' => continue,
            b'A'..=b'Z' => c.to_ascii_lowercase(),
            b'a'..=b'z' | b'0'..=b'9' | b'.' | b'/' => c,
            _ => return None,
        };
        *buf.get_mut(n)? = c;
        n += 1;
    }
    Some(n)
}

/// The canonical protocol: `HTTP/1.0`, `HTTP/1.1`, `HTTP/2`, `HTTP/3` for every spelling of
/// those versions (`HTTP/2.0`, `h2`, `h2c`, `HTTP/3.0`, `h3`, `QUIC`, any case).
pub(crate) fn protocol(v: Cow<'_, str>) -> Cow<'_, str> {
    let mut buf = [0; MAX_KEY];
    let known = key(&v, &mut buf).and_then(|n| match &buf[..n] {
        b"http/0.9" => Some("HTTP/0.9"),
        b"http/1.0" => Some("HTTP/1.0"),
        b"http/1.1" => Some("HTTP/1.1"),
        b"http/2" | b"http/2.0" | b"h2" | b"h2c" => Some("HTTP/2"),
        b"http/3" | b"http/3.0" | b"h3" | b"quic" => Some("HTTP/3"),
        _ => None,
    });
    known.map_or_else(|| upper(v), Cow::Borrowed)
}

/// The canonical cache status, upper-case with `_` between words: `HIT`, `MISS`, `EXPIRED`,
/// `STALE`, `UPDATING`, `REVALIDATED`, `REFRESH_HIT`, `BYPASS`, `DYNAMIC`, `ERROR`,
/// `REDIRECT`, … for the spellings of every vendor (nginx, Chinese CDNs, CloudFront's
/// `x-edge-result-type`, Cloudflare's `CacheCacheStatus`, Squid-style `TCP_*`).
pub(crate) fn cache(v: Cow<'_, str>) -> Cow<'_, str> {
    let mut buf = [0; MAX_KEY];
    let known = key(&v, &mut buf).and_then(|n| {
        Some(match &buf[..n] {
            b"hit" | b"tcphit" | b"tcpmemhit" => "HIT",
            b"miss" | b"tcpmiss" => "MISS",
            b"expired" | b"tcprefreshmiss" => "EXPIRED",
            b"stale" => "STALE",
            b"updating" => "UPDATING",
            b"revalidated" => "REVALIDATED",
            b"refreshhit" | b"tcprefreshhit" => "REFRESH_HIT",
            b"bypass" => "BYPASS",
            b"dynamic" => "DYNAMIC",
            b"error" => "ERROR",
            b"redirect" => "REDIRECT",
            b"none" => "NONE",
            b"ignored" => "IGNORED",
            b"deferred" => "DEFERRED",
            b"streamhit" => "STREAM_HIT",
            b"originshieldhit" => "ORIGIN_SHIELD_HIT",
            b"limitexceeded" => "LIMIT_EXCEEDED",
            b"capacityexceeded" => "CAPACITY_EXCEEDED",
            b"lambdageneratedresponse" => "LAMBDA_GENERATED_RESPONSE",
            b"functiongeneratedresponse" => "FUNCTION_GENERATED_RESPONSE",
            _ => return None,
        })
    });
    known.map_or_else(|| upper(v), Cow::Borrowed)
}

/// `v` upper-cased, borrowed when it has no lower-case letter.
fn upper(v: Cow<'_, str>) -> Cow<'_, str> {
    if v.bytes().any(|c| c.is_ascii_lowercase()) {
        Cow::Owned(v.to_ascii_uppercase())
    } else {
        v
    }
}

/// The record with its protocol and cache status in their canonical spelling.
pub(super) fn canonical(mut rec: Record<'_>) -> Record<'_> {
    if !rec.protocol.is_empty() {
        rec.protocol = protocol(rec.protocol);
    }
    if !rec.cache.is_empty() {
        rec.cache = cache(rec.cache);
    }
    rec
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every spelling the vendors write (and the generator imitates), per vendor.
    #[test]
    fn every_vendor_spelling_has_one_canonical_form() {
        let protocols: &[(&str, &[&str])] = &[
            ("nginx, apache", &["HTTP/1.0", "HTTP/1.1", "HTTP/2.0"]),
            ("upyun, qiniu, huawei, tencent", &["HTTP/1.1", "HTTP/2.0"]),
            ("aliyun", &["HTTP/1.1", "HTTP/2.0", "h2", "http/1.1"]),
            (
                "cloudfront",
                &["HTTP/1.0", "HTTP/1.1", "HTTP/2.0", "HTTP/3.0"],
            ),
            ("cloudflare", &["HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/3"]),
            ("custom", &["h2c", "h3", "QUIC", "quic", "http/2"]),
        ];
        for (vendor, spellings) in protocols {
            for s in *spellings {
                let c = protocol(Cow::Borrowed(s));
                assert!(
                    ["HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/3"].contains(&&*c),
                    "{vendor}: {s} -> {c}"
                );
                assert!(matches!(c, Cow::Borrowed(_)), "{vendor}: {s} allocates");
            }
        }
        for (spelling, want) in [
            ("HTTP/2.0", "HTTP/2"),
            ("HTTP/2", "HTTP/2"),
            ("h2", "HTTP/2"),
            ("HTTP/3.0", "HTTP/3"),
            ("http/1.0", "HTTP/1.0"),
            ("HTTP/1.1", "HTTP/1.1"),
            ("SPDY/3.1", "SPDY/3.1"),
            ("spdy/3", "SPDY/3"),
        ] {
            assert_eq!(protocol(Cow::Borrowed(spelling)), want, "{spelling}");
        }

        let caches: &[(&str, &[(&str, &str)])] = &[
            ("upyun", &[("Hit", "HIT"), ("Miss", "MISS")]),
            ("aliyun, huawei, qiniu", &[("HIT", "HIT"), ("MISS", "MISS")]),
            ("tencent", &[("hit", "HIT"), ("miss", "MISS")]),
            (
                "nginx $upstream_cache_status",
                &[
                    ("EXPIRED", "EXPIRED"),
                    ("STALE", "STALE"),
                    ("UPDATING", "UPDATING"),
                    ("REVALIDATED", "REVALIDATED"),
                    ("BYPASS", "BYPASS"),
                ],
            ),
            (
                "cloudfront",
                &[
                    ("Hit", "HIT"),
                    ("RefreshHit", "REFRESH_HIT"),
                    ("Miss", "MISS"),
                    ("Error", "ERROR"),
                    ("Redirect", "REDIRECT"),
                    ("OriginShieldHit", "ORIGIN_SHIELD_HIT"),
                    ("LimitExceeded", "LIMIT_EXCEEDED"),
                    ("CapacityExceeded", "CAPACITY_EXCEEDED"),
                    ("LambdaGeneratedResponse", "LAMBDA_GENERATED_RESPONSE"),
                    ("FunctionGeneratedResponse", "FUNCTION_GENERATED_RESPONSE"),
                ],
            ),
            (
                "cloudflare",
                &[
                    ("hit", "HIT"),
                    ("miss", "MISS"),
                    ("expired", "EXPIRED"),
                    ("stale", "STALE"),
                    ("updating", "UPDATING"),
                    ("revalidated", "REVALIDATED"),
                    ("bypass", "BYPASS"),
                    ("dynamic", "DYNAMIC"),
                    ("ignored", "IGNORED"),
                    ("deferred", "DEFERRED"),
                    ("stream_hit", "STREAM_HIT"),
                    ("none", "NONE"),
                ],
            ),
            (
                "squid style",
                &[
                    ("TCP_HIT", "HIT"),
                    ("TCP_MEM_HIT", "HIT"),
                    ("TCP_MISS", "MISS"),
                    ("TCP_REFRESH_HIT", "REFRESH_HIT"),
                    ("TCP_REFRESH_MISS", "EXPIRED"),
                    ("refresh-hit", "REFRESH_HIT"),
                    ("REFRESHHIT", "REFRESH_HIT"),
                ],
            ),
        ];
        for (vendor, pairs) in caches {
            for (spelling, want) in *pairs {
                let c = cache(Cow::Borrowed(spelling));
                assert_eq!(c, *want, "{vendor}: {spelling}");
                assert!(matches!(c, Cow::Borrowed(_)), "{vendor}: {spelling}");
            }
        }
        // Unknown values keep their bytes, upper-cased; borrowed when already upper-case.
        assert_eq!(cache(Cow::Borrowed("Cached")), "CACHED");
        assert!(matches!(
            cache(Cow::Borrowed("C/200")),
            Cow::Borrowed("C/200")
        ));
        assert_eq!(cache(Cow::Borrowed("中")), "中");
        let long = "x".repeat(40);
        assert_eq!(cache(Cow::Borrowed(&long)), long.to_ascii_uppercase());
    }

    #[test]
    fn absent_values_stay_absent() {
        let rec = canonical(Record::default());
        assert_eq!((&*rec.protocol, &*rec.cache), ("", ""));
    }
}
