//! One synthetic HTTP request, drawn field by field from the seeded generator.
//!
//! Values look like real CDN traffic (images, static assets, pages, APIs, video segments,
//! downloads; browser and app user agents; mostly 200s) but only use documentation address
//! ranges and `example.com` / `example.net` hosts. Vendor layouts live in `vendor.rs`.

use super::rng::{Chance, Rng};
use super::text::{push_hex, push_u64};

/// Documentation IPv4 networks (RFC 5737), as their first three octets.
const V4_NETS: [[u8; 3]; 3] = [[192, 0, 2], [198, 51, 100], [203, 0, 113]];

/// User agents of ordinary traffic.
const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800323a) NetType/WIFI Language/zh_CN",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
    "Mozilla/5.0 (compatible; ExampleBot/2.1; +https://www.example.com/bot.html)",
    "Dalvik/2.1.0 (Linux; U; Android 13; M2102J2SC Build/TKQ1.220829.002)",
    "okhttp/4.12.0",
    "curl/8.5.0",
    "python-requests/2.32.3",
];

/// User agents that exercise the quoting traps of docs/FORMATS.md: a `"` inside, a backslash,
/// raw UTF-8 (escaped by nginx as `\xE4\xB8…`).
const TRAP_USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (compatible; \"Example Crawler\" 1.0; +https://www.example.net/crawler)",
    "Mozilla/5.0 (Linux; Android 13; 小米 13 Build/TKQ1.221114.001) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0) Tool\\Agent \"quoted\" 中文/1.0",
];

/// Referers; `-` stands for none.
const REFERERS: &[&str] = &[
    "-",
    "-",
    "-",
    "https://www.example.com/",
    "https://www.example.com/news/2026/11/cdn-log-fusion-explained.html",
    "https://m.example.net/s?wd=cdn+logs&ie=utf-8",
    "https://www.example.net/forum/thread-88231-1-1.html",
    "https://api.example.net/docs/v2/index.html",
    "https://shop.example.com/products/1024?utm_source=newsletter&utm_medium=email",
];

const WORDS: &[&str] = &[
    "spring", "sale", "guide", "review", "cdn", "edge", "release", "notes", "travel", "photo",
    "weekly", "report", "video", "music", "market", "city", "design", "update", "launch", "tips",
];

/// What kind of object is requested; drives path, size and content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Image,
    Static,
    Page,
    Api,
    Video,
    Download,
}

const KINDS: [Kind; 6] = [
    Kind::Image,
    Kind::Static,
    Kind::Page,
    Kind::Api,
    Kind::Video,
    Kind::Download,
];

/// The traffic mix of a site, guessed from its host name's first label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `img.`, `static.`, `cdn.`…: mostly images and assets.
    Assets,
    /// `api.`: mostly API calls.
    Api,
    /// `video.`, `vod.`, `media.`: mostly video segments.
    Video,
    /// Anything else: a web site.
    Site,
}

impl Profile {
    /// The profile of a host name.
    pub fn of_host(host: &str) -> Profile {
        match host.split('.').next().unwrap_or("") {
            "img" | "image" | "images" | "static" | "cdn" | "assets" => Profile::Assets,
            "api" | "gateway" => Profile::Api,
            "video" | "vod" | "media" | "live" => Profile::Video,
            _ => Profile::Site,
        }
    }

    /// Weights of [`KINDS`] for this profile.
    fn kind_weights(self) -> &'static [u32; 6] {
        match self {
            Profile::Assets => &[70, 25, 0, 0, 3, 2],
            Profile::Api => &[3, 2, 0, 95, 0, 0],
            Profile::Video => &[5, 5, 2, 3, 85, 0],
            Profile::Site => &[35, 30, 25, 8, 1, 1],
        }
    }
}

const STATUSES: [u16; 11] = [200, 206, 304, 301, 302, 404, 403, 499, 500, 502, 504];
const STATUS_WEIGHTS: [u32; 11] = [780, 50, 80, 10, 10, 40, 10, 5, 5, 5, 5];

/// A client address: IPv4 from the documentation ranges or IPv6 in 2001:db8::/32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientIp {
    V4([u8; 4]),
    /// `2001:db8:a:b::c` — the three groups a, b, c.
    V6([u16; 3]),
}

impl ClientIp {
    /// Appends the textual address.
    pub fn push(&self, out: &mut Vec<u8>) {
        match *self {
            ClientIp::V4(o) => push_v4(out, o),
            ClientIp::V6([a, b, c]) => {
                out.extend_from_slice(b"2001:db8:");
                super::text::push_hex_short(out, a);
                out.push(b':');
                super::text::push_hex_short(out, b);
                out.extend_from_slice(b"::");
                super::text::push_hex_short(out, c);
            }
        }
    }
}

/// Appends a dotted IPv4 address.
pub fn push_v4(out: &mut Vec<u8>, o: [u8; 4]) {
    for (i, b) in o.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        push_u64(out, u64::from(*b));
    }
}

/// A random documentation-range IPv4 address (edge servers, proxies).
pub fn doc_v4(rng: &mut Rng) -> [u8; 4] {
    let n = rng.pick(&V4_NETS);
    [n[0], n[1], n[2], rng.range(1, 254) as u8]
}

/// Knobs for [`Request::fill`].
#[derive(Debug, Clone, Copy)]
pub struct RequestStyle {
    /// Probability of an IPv6 client.
    pub ipv6: Chance,
    /// Use a user agent from the quoting-trap list.
    pub trap_user_agent: bool,
    /// The site's traffic mix.
    pub profile: Profile,
}

/// One request; reused across lines (its buffers keep their capacity).
#[derive(Debug, Clone)]
pub struct Request {
    pub client: ClientIp,
    pub method: &'static str,
    pub kind: Kind,
    /// Path, starting with `/`, without the query.
    pub path: Vec<u8>,
    /// Query without `?`; empty for none.
    pub query: Vec<u8>,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub protocol: &'static str,
    pub https: bool,
    pub status: u16,
    /// Response bytes.
    pub bytes: u64,
    /// Request bytes.
    pub request_bytes: u64,
    pub request_time_ms: u64,
    pub hit: bool,
    pub referer: &'static str,
    pub user_agent: &'static str,
    pub content_type: &'static str,
    /// `bytes=a-b` for 206 responses.
    pub range: Option<(u64, u64)>,
}

impl Default for Request {
    fn default() -> Request {
        Request {
            client: ClientIp::V4([192, 0, 2, 1]),
            method: "GET",
            kind: Kind::Image,
            path: Vec::with_capacity(96),
            query: Vec::with_capacity(64),
            protocol: "HTTP/1.1",
            https: true,
            status: 200,
            bytes: 0,
            request_bytes: 0,
            request_time_ms: 0,
            hit: true,
            referer: "-",
            user_agent: USER_AGENTS[0],
            content_type: "image/jpeg",
            range: None,
        }
    }
}

impl Request {
    /// Draws every field anew.
    pub fn fill(&mut self, rng: &mut Rng, style: RequestStyle) {
        self.client = if rng.chance(style.ipv6) {
            ClientIp::V6([
                rng.below(0x1_0000) as u16,
                rng.below(0x1_0000) as u16,
                rng.range(1, 0xffff) as u16,
            ])
        } else {
            let n = rng.pick(&V4_NETS);
            ClientIp::V4([n[0], n[1], n[2], rng.range(1, 254) as u8])
        };
        self.kind = KINDS[rng.weighted(style.profile.kind_weights())];
        self.method = match (self.kind, rng.below(100)) {
            (Kind::Api, 0..=34) => "POST",
            (Kind::Api, 35..=39) => "OPTIONS",
            (_, 0..=2) => "HEAD",
            _ => "GET",
        };
        self.fill_path(rng);
        self.protocol = if rng.below(10) < 6 {
            "HTTP/2.0"
        } else {
            "HTTP/1.1"
        };
        self.https = rng.below(20) != 0;
        self.status = STATUSES[rng.weighted(&STATUS_WEIGHTS)];
        let full = match self.kind {
            Kind::Image => rng.range(2_000, 400_000),
            Kind::Static => rng.range(800, 300_000),
            Kind::Page => rng.range(5_000, 80_000),
            Kind::Api => rng.range(120, 8_000),
            Kind::Video => rng.range(200_000, 2_000_000),
            Kind::Download => rng.range(1_000_000, 80_000_000),
        };
        self.range = None;
        self.bytes = match self.status {
            200 => full,
            206 => {
                let start = rng.below(full / 2);
                let len = rng.range(1, (full - start).min(1 << 20));
                self.range = Some((start, start + len - 1));
                len
            }
            304 | 301 | 302 => 0,
            _ => rng.range(150, 600),
        };
        if self.method == "HEAD" {
            self.bytes = 0;
            self.range = None;
        }
        self.request_bytes = rng.range(120, 900)
            + if self.method == "POST" {
                rng.below(4000)
            } else {
                0
            };
        self.hit = self.status < 400 && rng.below(100) < 85;
        self.request_time_ms = if self.hit {
            rng.below(25)
        } else {
            rng.range(20, 900)
        };
        self.referer = *rng.pick(REFERERS);
        self.user_agent = if style.trap_user_agent {
            *rng.pick(TRAP_USER_AGENTS)
        } else {
            *rng.pick(USER_AGENTS)
        };
        self.content_type = match self.kind {
            Kind::Image => {
                if self.path.ends_with(b".webp") {
                    "image/webp"
                } else {
                    "image/jpeg"
                }
            }
            Kind::Static => {
                if self.path.ends_with(b".js") {
                    "application/javascript"
                } else if self.path.ends_with(b".css") {
                    "text/css"
                } else {
                    "font/woff2"
                }
            }
            Kind::Page => "text/html; charset=utf-8",
            Kind::Api => "application/json",
            Kind::Video => {
                if self.path.ends_with(b".ts") {
                    "video/mp2t"
                } else {
                    "application/vnd.apple.mpegurl"
                }
            }
            Kind::Download => "application/vnd.android.package-archive",
        };
    }

    fn fill_path(&mut self, rng: &mut Rng) {
        let p = &mut self.path;
        let q = &mut self.query;
        p.clear();
        q.clear();
        match self.kind {
            Kind::Image => {
                if rng.below(2) == 0 {
                    p.extend_from_slice(b"/images/2026/");
                    push_u64(p, rng.range(1, 12));
                    p.push(b'/');
                    push_hex(p, rng.next_u64(), 16);
                    p.extend_from_slice(b".jpg");
                } else {
                    p.extend_from_slice(b"/img/products/");
                    push_u64(p, rng.range(10_000, 999_999));
                    p.push(b'/');
                    push_hex(p, rng.next_u64(), 12);
                    p.extend_from_slice(if rng.below(2) == 0 {
                        b"_800x800.webp"
                    } else {
                        b"_thumb.webp"
                    });
                }
                if rng.below(3) == 0 {
                    q.extend_from_slice(b"w=");
                    push_u64(q, *rng.pick(&[200, 400, 640, 800, 1200]));
                    q.extend_from_slice(b"&q=80");
                }
            }
            Kind::Static => {
                match rng.below(3) {
                    0 => {
                        p.extend_from_slice(b"/static/js/app.");
                        push_hex(p, rng.next_u64(), 8);
                        p.extend_from_slice(b".chunk.js");
                    }
                    1 => {
                        p.extend_from_slice(b"/static/css/main.");
                        push_hex(p, rng.next_u64(), 8);
                        p.extend_from_slice(b".css");
                    }
                    _ => p.extend_from_slice(b"/assets/fonts/inter-var-latin.woff2"),
                }
                if rng.below(4) == 0 {
                    q.extend_from_slice(b"v=");
                    push_u64(q, rng.range(100, 999));
                }
            }
            Kind::Page => match rng.below(4) {
                0 => p.push(b'/'),
                1 => {
                    p.extend_from_slice(b"/news/2026/11/");
                    p.extend_from_slice(rng.pick(WORDS).as_bytes());
                    p.push(b'-');
                    p.extend_from_slice(rng.pick(WORDS).as_bytes());
                    p.push(b'-');
                    push_u64(p, rng.range(1000, 99_999));
                    p.extend_from_slice(b".html");
                }
                2 => {
                    p.extend_from_slice(b"/search");
                    q.extend_from_slice(b"q=");
                    q.extend_from_slice(rng.pick(WORDS).as_bytes());
                    q.push(b'+');
                    q.extend_from_slice(rng.pick(WORDS).as_bytes());
                    q.extend_from_slice(b"&page=");
                    push_u64(q, rng.range(1, 20));
                }
                _ => {
                    p.extend_from_slice(b"/products/");
                    push_u64(p, rng.range(1, 50_000));
                }
            },
            Kind::Api => {
                if rng.below(2) == 0 {
                    p.extend_from_slice(b"/api/v2/items/");
                    push_u64(p, rng.range(1, 9_999_999));
                    q.extend_from_slice(b"fields=id,name,price,stock&lang=zh-CN");
                } else {
                    p.extend_from_slice(b"/api/v1/users/");
                    push_u64(p, rng.range(1, 99_999_999));
                    p.extend_from_slice(b"/feed");
                    q.extend_from_slice(b"cursor=");
                    push_hex(q, rng.next_u64(), 16);
                    q.extend_from_slice(b"&limit=20");
                }
            }
            Kind::Video => {
                p.extend_from_slice(b"/video/");
                push_u64(p, rng.range(100_000, 999_999));
                if rng.below(8) == 0 {
                    p.extend_from_slice(b"/hls/index.m3u8");
                } else {
                    p.extend_from_slice(b"/hls/720p/seg-");
                    push_u64(p, rng.range(1, 900));
                    p.extend_from_slice(b".ts");
                }
                if rng.below(2) == 0 {
                    q.extend_from_slice(b"token=");
                    push_hex(q, rng.next_u64(), 16);
                    q.extend_from_slice(b"&expires=");
                    push_u64(q, 1_793_000_000 + rng.below(2_000_000));
                }
            }
            Kind::Download => {
                p.extend_from_slice(b"/download/app-release-");
                push_u64(p, rng.range(1, 9));
                p.push(b'.');
                push_u64(p, rng.range(0, 30));
                p.push(b'.');
                push_u64(p, rng.range(0, 99));
                p.extend_from_slice(b".apk");
            }
        }
    }

    /// Appends `path` and, when present, `?query`.
    pub fn push_uri(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.path);
        if !self.query.is_empty() {
            out.push(b'?');
            out.extend_from_slice(&self.query);
        }
    }

    /// Appends `https://host/path?query`.
    pub fn push_url(&self, out: &mut Vec<u8>, host: &str) {
        out.extend_from_slice(if self.https { b"https://" } else { b"http://" });
        out.extend_from_slice(host.as_bytes());
        self.push_uri(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_plausible_and_documentation_only() {
        let mut rng = Rng::new(11);
        let mut r = Request::default();
        let style = RequestStyle {
            ipv6: Chance::new(0.1),
            trap_user_agent: false,
            profile: Profile::Site,
        };
        let mut v6 = 0;
        for _ in 0..5000 {
            r.fill(&mut rng, style);
            assert!(r.path.starts_with(b"/"));
            assert!(!r.path.contains(&b' ') && !r.query.contains(&b' '));
            assert!(!r.user_agent.contains('"'));
            let mut ip = Vec::new();
            r.client.push(&mut ip);
            let ip = String::from_utf8_lossy(&ip).into_owned();
            if let ClientIp::V6(_) = r.client {
                v6 += 1;
                assert!(ip.starts_with("2001:db8:"), "{ip}");
            } else {
                assert!(
                    ["192.0.2.", "198.51.100.", "203.0.113."]
                        .iter()
                        .any(|p| ip.starts_with(p)),
                    "{ip}"
                );
            }
            match r.range {
                Some((a, b)) => assert_eq!(b - a + 1, r.bytes),
                None => assert!(r.status != 206 || r.method == "HEAD"),
            }
        }
        assert!((300..700).contains(&v6), "{v6}");
    }

    #[test]
    fn profiles_follow_host_names() {
        assert_eq!(Profile::of_host("img.example.com"), Profile::Assets);
        assert_eq!(Profile::of_host("api.example.net"), Profile::Api);
        assert_eq!(Profile::of_host("www.example.com"), Profile::Site);
        let mut rng = Rng::new(4);
        let mut r = Request::default();
        let style = RequestStyle {
            ipv6: Chance::NEVER,
            trap_user_agent: false,
            profile: Profile::Api,
        };
        let api = (0..1000)
            .filter(|_| {
                r.fill(&mut rng, style);
                r.kind == Kind::Api
            })
            .count();
        assert!(api > 900, "{api}");
    }
}
