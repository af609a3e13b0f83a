//! Block locations over WebHDFS: the fallback of [`super::locator`] when NameNode RPC cannot
//! answer. The NameNode's HTTP server answers
//! `GET /webhdfs/v1/<path>?op=GETFILEBLOCKLOCATIONS` (Hadoop ≥ 3.3; older NameNodes are asked
//! `op=GET_BLOCK_LOCATIONS`). Simple authentication only (`user.name=`); on a Kerberos
//! cluster the request is refused and placement falls back to "anywhere".
//!
//! The HTTP client is the least that works against the NameNode's Jetty: one request per
//! connection, bounded connect and read times, `Content-Length` or chunked bodies.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde::Deserialize;

use super::locality::BlockHosts;

/// Time allowed to connect to the NameNode's HTTP port.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for each read or write on the connection.
const IO_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest response accepted (a file with tens of thousands of blocks fits).
const MAX_RESPONSE: u64 = 64 << 20;
/// REST prefix on the NameNode's HTTP server.
const PREFIX: &str = "/webhdfs/v1";
/// Operation of Hadoop ≥ 3.3 (HDFS-14442); public `BlockLocation` JSON.
const OP_FILE_BLOCK_LOCATIONS: &str = "GETFILEBLOCKLOCATIONS";
/// Older, internal operation; `LocatedBlocks` JSON.
const OP_BLOCK_LOCATIONS: &str = "GET_BLOCK_LOCATIONS";

/// Why block locations could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum WebHdfsError {
    #[error("{url}: {source}")]
    Io {
        url: String,
        #[source]
        source: io::Error,
    },
    #[error("{url}: HTTP {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{url}: unexpected response: {reason}")]
    BadResponse { url: String, reason: String },
    #[error("no WebHDFS address for this NameNode (dfs.webhdfs.enabled = false?)")]
    NoAddress,
}

/// The blocks of `path`, asking each base URL in turn (the first that answers wins; a
/// standby NameNode refuses and the next is tried).
pub fn block_locations(
    bases: &[String],
    path: &str,
    user: &str,
) -> Result<Vec<BlockHosts>, WebHdfsError> {
    let mut last = WebHdfsError::NoAddress;
    for base in bases {
        match locations_from(base, path, user) {
            Ok(blocks) => return Ok(blocks),
            // The file itself is wrong: no other NameNode will say otherwise.
            Err(e @ WebHdfsError::Status { status: 404, .. }) => return Err(e),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn locations_from(base: &str, path: &str, user: &str) -> Result<Vec<BlockHosts>, WebHdfsError> {
    let url = op_url(base, path, OP_FILE_BLOCK_LOCATIONS, user);
    match get(&url)? {
        (200, body) => parse_file_block_locations(&body)
            .map_err(|reason| WebHdfsError::BadResponse { url, reason }),
        // Before HDFS-14442 the op name is rejected as an invalid parameter value.
        (400, body) if String::from_utf8_lossy(&body).contains(OP_FILE_BLOCK_LOCATIONS) => {
            let url = op_url(base, path, OP_BLOCK_LOCATIONS, user);
            match get(&url)? {
                (200, body) => parse_located_blocks(&body)
                    .map_err(|reason| WebHdfsError::BadResponse { url, reason }),
                (status, body) => Err(status_error(url, status, &body)),
            }
        }
        (status, body) => Err(status_error(url, status, &body)),
    }
}

fn op_url(base: &str, path: &str, op: &str, user: &str) -> String {
    format!(
        "{}{PREFIX}{}?op={op}&user.name={}",
        base.trim_end_matches('/'),
        percent_encode(path, true),
        percent_encode(user, false)
    )
}

fn status_error(url: String, status: u16, body: &[u8]) -> WebHdfsError {
    #[derive(Deserialize)]
    struct Remote {
        #[serde(rename = "RemoteException")]
        remote: RemoteBody,
    }
    #[derive(Deserialize)]
    struct RemoteBody {
        #[serde(default)]
        exception: String,
        #[serde(default)]
        message: String,
    }
    let message = match serde_json::from_slice::<Remote>(body) {
        Ok(r) => format!("{}: {}", r.remote.exception, r.remote.message),
        Err(_) => String::from_utf8_lossy(body).chars().take(200).collect(),
    };
    WebHdfsError::Status {
        url,
        status,
        message,
    }
}

/// Parses `{"BlockLocations":{"BlockLocation":[{"hosts":[…],"length":…,"corrupt":…},…]}}`.
pub fn parse_file_block_locations(body: &[u8]) -> Result<Vec<BlockHosts>, String> {
    #[derive(Deserialize)]
    struct Root {
        #[serde(rename = "BlockLocations")]
        locations: Option<Locations>,
    }
    #[derive(Deserialize)]
    struct Locations {
        #[serde(rename = "BlockLocation", default)]
        blocks: Vec<Block>,
    }
    #[derive(Deserialize)]
    struct Block {
        #[serde(default)]
        hosts: Vec<String>,
        #[serde(default)]
        length: u64,
        #[serde(default)]
        corrupt: bool,
    }
    let root: Root = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    Ok(root
        .locations
        .map(|l| l.blocks)
        .unwrap_or_default()
        .into_iter()
        .filter(|b| !b.corrupt)
        .map(|b| BlockHosts {
            length: b.length,
            hosts: b.hosts,
        })
        .collect())
}

/// Parses `{"LocatedBlocks":{"locatedBlocks":[{"block":{"numBytes":…},"locations":[{"hostName":…}],"isCorrupt":…}]}}`.
pub fn parse_located_blocks(body: &[u8]) -> Result<Vec<BlockHosts>, String> {
    #[derive(Deserialize)]
    struct Root {
        #[serde(rename = "LocatedBlocks")]
        located: Option<Located>,
    }
    #[derive(Deserialize)]
    struct Located {
        #[serde(rename = "locatedBlocks", default)]
        blocks: Vec<LocatedBlock>,
    }
    #[derive(Deserialize)]
    struct LocatedBlock {
        block: Option<ExtendedBlock>,
        #[serde(default)]
        locations: Vec<DatanodeInfo>,
        #[serde(rename = "isCorrupt", default)]
        corrupt: bool,
    }
    #[derive(Deserialize)]
    struct ExtendedBlock {
        #[serde(rename = "numBytes", default)]
        num_bytes: u64,
    }
    #[derive(Deserialize)]
    struct DatanodeInfo {
        #[serde(rename = "hostName", default)]
        host_name: String,
        #[serde(rename = "ipAddr", default)]
        ip_addr: String,
    }
    let root: Root = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    Ok(root
        .located
        .map(|l| l.blocks)
        .unwrap_or_default()
        .into_iter()
        .filter(|b| !b.corrupt)
        .map(|b| BlockHosts {
            length: b.block.map_or(0, |x| x.num_bytes),
            hosts: b
                .locations
                .into_iter()
                .map(|d| {
                    if d.host_name.is_empty() {
                        d.ip_addr
                    } else {
                        d.host_name
                    }
                })
                .filter(|h| !h.is_empty())
                .collect(),
        })
        .collect())
}

/// Percent-encodes `s` for a URL path (`/` kept when `path`) or query value.
fn percent_encode(s: &str, path: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (path && b == b'/');
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `GET url` (plain `http://host:port/target`), returning the status and the body.
fn get(url: &str) -> Result<(u16, Vec<u8>), WebHdfsError> {
    let io_err = |source| WebHdfsError::Io {
        url: url.to_string(),
        source,
    };
    let bad = |reason: String| WebHdfsError::BadResponse {
        url: url.to_string(),
        reason,
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("not an http:// URL".into()))?;
    let (authority, target) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addrs: Vec<_> = authority.to_socket_addrs().map_err(io_err)?.collect();
    let mut stream = None;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "resolves to no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let mut stream = stream.ok_or_else(|| io_err(last))?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
        .map_err(io_err)?;
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: filex\r\n\
         Accept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(io_err)?;
    let mut raw = Vec::new();
    stream
        .take(MAX_RESPONSE)
        .read_to_end(&mut raw)
        .map_err(io_err)?;
    parse_response(&raw).map_err(bad)
}

/// Splits a whole HTTP/1.x response into status and decoded body.
pub fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let mut raw = raw;
    // Skip interim 1xx responses.
    while raw.starts_with(b"HTTP/1.1 1") || raw.starts_with(b"HTTP/1.0 1") {
        let end = find(raw, b"\r\n\r\n").ok_or("no end of interim response")?;
        raw = &raw[end + 4..];
    }
    let head_end = find(raw, b"\r\n\r\n").ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| "headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.split(' ');
    if !parts.next().unwrap_or("").starts_with("HTTP/1.") {
        return Err(format!("bad status line {status_line:?}"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
        {
            chunked = true;
        } else if k.eq_ignore_ascii_case("content-length") {
            length = Some(
                v.parse::<usize>()
                    .map_err(|_| format!("bad Content-Length {v:?}"))?,
            );
        }
    }
    let body = &raw[head_end + 4..];
    let body = if chunked {
        decode_chunked(body)?
    } else if let Some(len) = length {
        if body.len() < len {
            return Err(format!("body truncated: {} of {len} bytes", body.len()));
        }
        body[..len].to_vec()
    } else {
        body.to_vec()
    };
    Ok((status, body))
}

fn decode_chunked(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n").ok_or("chunk size line not terminated")?;
        let line = std::str::from_utf8(&data[..line_end]).map_err(|_| "chunk size not UTF-8")?;
        let size_hex = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| format!("bad chunk size {size_hex:?}"))?;
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

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_file_block_locations() {
        let body = br#"{"BlockLocations":{"BlockLocation":[
          {"cachedHosts":[],"corrupt":false,"hosts":["dn2","dn1"],"length":16777216,
           "names":["10.0.0.2:9866","10.0.0.1:9866"],"offset":0,"storageIds":["a","b"],
           "storageTypes":["DISK","DISK"],"topologyPaths":["/r/10.0.0.2:9866","/r/10.0.0.1:9866"]},
          {"corrupt":true,"hosts":["dn9"],"length":5,"offset":16777216},
          {"corrupt":false,"hosts":["dn3","dn1"],"length":100,"offset":16777221}
        ]}}"#;
        let blocks = parse_file_block_locations(body).unwrap();
        assert_eq!(blocks.len(), 2, "the corrupt block is skipped");
        assert_eq!(blocks[0].hosts, vec!["dn2", "dn1"]);
        assert_eq!(blocks[1].length, 100);
        assert_eq!(
            super::super::locality::rank_hosts(&blocks),
            vec!["dn1", "dn2", "dn3"]
        );
        assert_eq!(
            parse_file_block_locations(br#"{"BlockLocations":{"BlockLocation":[]}}"#).unwrap(),
            vec![]
        );
        assert!(parse_file_block_locations(b"<html>").is_err());
    }

    #[test]
    fn parses_located_blocks() {
        let body = br#"{"LocatedBlocks":{"fileLength":30,"isUnderConstruction":false,
          "locatedBlocks":[{"block":{"blockId":1,"numBytes":30},"isCorrupt":false,"offset":0,
            "locations":[{"hostName":"dn1","ipAddr":"10.0.0.1"},{"hostName":"","ipAddr":"10.0.0.3"}]}]}}"#;
        let blocks = parse_located_blocks(body).unwrap();
        assert_eq!(
            blocks,
            vec![BlockHosts {
                length: 30,
                hosts: vec!["dn1".into(), "10.0.0.3".into()]
            }]
        );
    }

    #[test]
    fn parses_http_responses() {
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
        assert_eq!(parse_response(raw).unwrap(), (200, b"{\"a\":1}".to_vec()));
        let raw = b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}extra";
        assert_eq!(parse_response(raw).unwrap(), (404, b"{}".to_vec()));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}").is_err());
        assert!(parse_response(b"garbage").is_err());
    }

    #[test]
    fn remote_exceptions_become_messages() {
        let body = br#"{"RemoteException":{"exception":"FileNotFoundException","javaClassName":"java.io.FileNotFoundException","message":"File does not exist: /x"}}"#;
        let e = status_error("u".into(), 404, body);
        assert_eq!(
            e.to_string(),
            "u: HTTP 404: FileNotFoundException: File does not exist: /x"
        );
    }

    #[test]
    fn urls_are_encoded() {
        assert_eq!(
            op_url("http://h:1/", "/a b/c%", "OP", "u x"),
            "http://h:1/webhdfs/v1/a%20b/c%25?op=OP&user.name=u%20x"
        );
    }
}
