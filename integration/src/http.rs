//! A minimal blocking HTTP/1.1 client over `std::net::TcpStream`, enough to talk to WebHDFS
//! and the ResourceManager REST API on 127.0.0.1.
//!
//! One request per connection (`Connection: close`), plain `http://` only, bodies read whole
//! into memory (`Content-Length`, chunked, or until close). Redirects are not followed here;
//! see [`crate::webhdfs`].

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Time allowed to establish a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for each read or write on an open connection.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a request failed (HTTP error statuses are not errors here; see [`Response::status`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum HttpError {
    /// Not an `http://host:port/...` URL.
    BadUrl { url: String },
    /// Connecting, sending or receiving failed.
    Io { url: String, source: io::Error },
    /// The server's answer is not a well-formed HTTP/1.x response.
    BadResponse { url: String, reason: String },
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::BadUrl { url } => write!(f, "not an http://host:port URL: {url}"),
            HttpError::Io { url, source } => write!(f, "{url}: {source}"),
            HttpError::BadResponse { url, reason } => {
                write!(f, "{url}: malformed HTTP response: {reason}")
            }
        }
    }
}

impl std::error::Error for HttpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HttpError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A parsed `http://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    /// Path plus query, starting with `/`.
    pub target: String,
}

impl Url {
    /// Parses `http://host[:port][/path][?query]` (port defaults to 80).
    pub fn parse(url: &str) -> Result<Url, HttpError> {
        let bad = || HttpError::BadUrl {
            url: url.to_string(),
        };
        let rest = url.strip_prefix("http://").ok_or_else(bad)?;
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
                (h, p.parse::<u16>().map_err(|_| bad())?)
            }
            _ => (authority, 80),
        };
        let host = host.trim_matches(['[', ']']);
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Url {
            host: host.to_string(),
            port,
            target,
        })
    }
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names as sent; look them up with [`Response::header`].
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// First header with this name, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced), for messages and JSON checks.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request and reads the whole response. `body` is sent with a `Content-Length`
/// (also for an empty body on PUT/POST) and `Content-Type: application/octet-stream`.
pub fn request(method: &str, url: &str, body: Option<&[u8]>) -> Result<Response, HttpError> {
    let parsed = Url::parse(url)?;
    let io_err = |source| HttpError::Io {
        url: url.to_string(),
        source,
    };
    let mut stream = connect(&parsed.host, parsed.port).map_err(io_err)?;
    stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(io_err)?;
    stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(io_err)?;

    let host_header = if parsed.host.contains(':') {
        format!("[{}]:{}", parsed.host, parsed.port)
    } else {
        format!("{}:{}", parsed.host, parsed.port)
    };
    let mut head = format!(
        "{method} {} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: filex-integration\r\n\
         Accept: */*\r\nConnection: close\r\n",
        parsed.target
    );
    let needs_length = body.is_some() || matches!(method, "PUT" | "POST");
    if needs_length {
        let len = body.map_or(0, <[u8]>::len);
        head.push_str(&format!(
            "Content-Type: application/octet-stream\r\nContent-Length: {len}\r\n"
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).map_err(io_err)?;
    if let Some(body) = body {
        stream.write_all(body).map_err(io_err)?;
    }
    stream.flush().map_err(io_err)?;

    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(io_err)?;
    parse_response(&raw, method == "HEAD").map_err(|reason| HttpError::BadResponse {
        url: url.to_string(),
        reason,
    })
}

fn connect(host: &str, port: u16) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "host resolved to no address");
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Parses a whole response as read until the server closed the connection.
pub fn parse_response(raw: &[u8], head_only: bool) -> Result<Response, String> {
    let mut raw = raw;
    // Interim 1xx responses (a DataNode sends "100 Continue" to PUTs unasked) precede the
    // real one; skip them.
    while raw.starts_with(b"HTTP/1.1 1") || raw.starts_with(b"HTTP/1.0 1") {
        let end = find(raw, b"\r\n\r\n").ok_or("no end of interim response")?;
        raw = &raw[end + 4..];
    }
    let head_end = find(raw, b"\r\n\r\n").ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| "headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("bad status line {status_line:?}"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    for line in lines {
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let rest = &raw[head_end + 4..];
    if head_only || status == 204 || status == 304 {
        return Ok(response);
    }
    let chunked = response
        .header("Transfer-Encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    response.body = if chunked {
        decode_chunked(rest)?
    } else if let Some(len) = response.header("Content-Length") {
        let len: usize = len
            .parse()
            .map_err(|_| format!("bad Content-Length {len:?}"))?;
        if rest.len() < len {
            return Err(format!(
                "body truncated: Content-Length {len}, got {}",
                rest.len()
            ));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(response)
}

fn decode_chunked(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n").ok_or("chunk size line without CRLF")?;
        let size_text = std::str::from_utf8(&data[..line_end]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err("chunk truncated".into());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Percent-encodes everything except RFC 3986 unreserved characters and, if `keep_slash`,
/// `/`.
pub fn percent_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let plain = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/');
        if plain {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let u = Url::parse("http://127.0.0.1:9870/webhdfs/v1/a?op=OPEN").unwrap();
        assert_eq!(
            u,
            Url {
                host: "127.0.0.1".into(),
                port: 9870,
                target: "/webhdfs/v1/a?op=OPEN".into()
            }
        );
        let u = Url::parse("http://localhost?x=1").unwrap();
        assert_eq!((u.port, u.target.as_str()), (80, "/?x=1"));
        let u = Url::parse("http://[::1]:8088").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 8088));
        assert!(Url::parse("https://x:1/").is_err());
        assert!(Url::parse("http://:1/").is_err());
    }

    #[test]
    fn parses_content_length_and_chunked_bodies() {
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: b\r\n\r\nabc",
            false,
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"abc"[..]));
        assert_eq!(r.header("x-a"), Some("b"));

        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(r.body, b"abcde");

        let r = parse_response(
            b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://x:1/\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!((r.status, r.header("location")), (307, Some("http://x:1/")));

        let r = parse_response(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!((r.status, r.body.len()), (201, 0));

        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", false).is_err());
        assert!(parse_response(b"garbage", false).is_err());
    }

    #[test]
    fn percent_encodes() {
        assert_eq!(percent_encode("/a b/ü", true), "/a%20b/%C3%BC");
        assert_eq!(percent_encode("a/b", false), "a%2Fb");
    }
}
