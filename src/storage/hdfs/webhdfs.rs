//! Block locations over WebHDFS: the fallback of [`super::locator`] when NameNode RPC cannot
//! answer. The NameNode's HTTP server answers
//! `GET /webhdfs/v1/<path>?op=GETFILEBLOCKLOCATIONS` (Hadoop ≥ 3.3; older NameNodes are asked
//! `op=GET_BLOCK_LOCATIONS`). Simple authentication only (`user.name=`); on a Kerberos
//! cluster the request is refused and placement falls back to "anywhere".
//!
//! The HTTP client is the least that works against the NameNode's Jetty: one request per
//! connection, bounded connect and read times, `Content-Length` or chunked bodies.

use std::io;
use std::time::Duration;

use serde::Deserialize;

use super::locality::BlockHosts;
use crate::percent;

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
        percent::encode(path, percent::unreserved_or_slash),
        percent::encode(user, percent::unreserved)
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

/// `GET url`, returning the status and the body (any status: the caller reads WebHDFS's
/// RemoteException bodies).
fn get(url: &str) -> Result<(u16, Vec<u8>), WebHdfsError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_global(Some(IO_TIMEOUT))
        .user_agent("filex")
        .build()
        .into();
    let io_err = |source| WebHdfsError::Io {
        url: url.to_string(),
        source,
    };
    let mut response = agent
        .get(url)
        .header("Accept", "application/json")
        .call()
        .map_err(|e| io_err(io::Error::other(e)))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_RESPONSE)
        .read_to_vec()
        .map_err(|e| io_err(io::Error::other(e)))?;
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gets_status_and_body_over_http() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            for reply in [
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n",
                "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            ] {
                let (mut s, _) = listener.accept().unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).unwrap();
                s.write_all(reply.as_bytes()).unwrap();
            }
        });
        let url = format!("http://{addr}/webhdfs/v1/x?op=GETFILEBLOCKLOCATIONS");
        assert_eq!(get(&url).unwrap(), (200, b"{\"a\":1}".to_vec()));
        assert_eq!(get(&url).unwrap(), (404, b"{}".to_vec()));
        server.join().unwrap();
        assert!(get("http://127.0.0.1:9/x").is_err());
    }

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
