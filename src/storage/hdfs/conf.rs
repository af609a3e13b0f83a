//! What the HDFS client asks of the Hadoop configuration ([`yarn::Config`], loaded once per
//! process by [`crate::settings`]): which NameNode `hdfs:///` means (`fs.defaultFS`), whether
//! an authority is an HA name service and which NameNodes serve it, and where each
//! NameNode's HTTP server is (for WebHDFS block locations). Pure: no file, no network.

use yarn::config::{DFS_HA_NAMENODES_PREFIX, DFS_NAMESERVICES, FS_DEFAULT_FS};
use yarn::Config;

/// NameNode RPC address (`host:port`), plain or suffixed `.<ns>[.<nn>]`.
pub const NAMENODE_RPC_ADDRESS: &str = yarn::config::DFS_NAMENODE_RPC_ADDRESS;
/// NameNode HTTP address (`host:port`), plain or suffixed `.<ns>[.<nn>]`.
pub const NAMENODE_HTTP_ADDRESS: &str = "dfs.namenode.http-address";
/// Whether WebHDFS is served (default true).
pub const WEBHDFS_ENABLED: &str = "dfs.webhdfs.enabled";

/// Hadoop's default NameNode RPC port, for `hdfs://host/` without a port.
pub const DEFAULT_RPC_PORT: u16 = yarn::config::DEFAULT_NAMENODE_PORT;
/// Hadoop 3's default NameNode HTTP port.
pub const DEFAULT_HTTP_PORT: u16 = 9870;

/// The value of `key`, if set and not empty.
fn get(conf: &Config, key: &str) -> Option<String> {
    conf.get(key).filter(|v| !v.is_empty())
}

/// The authority (`host:port` or name service) of `fs.defaultFS` when it is an `hdfs://`
/// URL.
pub fn default_authority(conf: &Config) -> Option<String> {
    let fs = get(conf, FS_DEFAULT_FS)?;
    let rest = fs.strip_prefix("hdfs://")?;
    let authority = rest.split('/').next().unwrap_or("");
    (!authority.is_empty()).then(|| authority.to_string())
}

/// Whether `authority` names a configured logical name service rather than a host.
pub fn is_nameservice(conf: &Config, authority: &str) -> bool {
    conf.get_list(DFS_NAMESERVICES)
        .iter()
        .any(|ns| ns == authority)
        || get(conf, &format!("{DFS_HA_NAMENODES_PREFIX}.{authority}")).is_some()
}

/// The RPC addresses behind `authority`: the NameNodes of a name service, else the
/// authority itself (with the default port when it has none); empty when a name service's
/// addresses are incomplete.
pub fn rpc_addresses(conf: &Config, authority: &str) -> Vec<String> {
    conf.namenode_addresses(Some(&format!("hdfs://{authority}")))
        .unwrap_or_default()
}

/// WebHDFS base URLs (`http://host:port`) for `authority`, to be tried in order: each
/// NameNode of a name service; else the configured HTTP address when it belongs to the
/// same NameNode; else the authority's host on the default HTTP port. Empty when WebHDFS is
/// switched off.
pub fn webhdfs_bases(conf: &Config, authority: &str) -> Vec<String> {
    if get(conf, WEBHDFS_ENABLED).as_deref() == Some("false") {
        return Vec::new();
    }
    let mut out = Vec::new();
    if is_nameservice(conf, authority) {
        let nns = conf.get_list(&format!("{DFS_HA_NAMENODES_PREFIX}.{authority}"));
        let suffixes = nns
            .iter()
            .map(|nn| format!("{authority}.{nn}"))
            .chain([authority.to_string()]);
        for suffix in suffixes {
            let rpc = get(conf, &format!("{NAMENODE_RPC_ADDRESS}.{suffix}"));
            if let Some(http) = get(conf, &format!("{NAMENODE_HTTP_ADDRESS}.{suffix}")) {
                out.push(http_base(&http, rpc.as_deref()));
            }
        }
        return out;
    }
    let rpc = with_default_port(authority, DEFAULT_RPC_PORT);
    let host = host_of(&rpc);
    // The unsuffixed keys describe "the" NameNode: use them when it is this one.
    let configured_rpc = get(conf, NAMENODE_RPC_ADDRESS)
        .map(|a| with_default_port(&a, DEFAULT_RPC_PORT))
        .or_else(|| {
            default_authority(conf)
                .filter(|a| !is_nameservice(conf, a))
                .map(|a| with_default_port(&a, DEFAULT_RPC_PORT))
        });
    if let (Some(http), Some(configured)) = (get(conf, NAMENODE_HTTP_ADDRESS), configured_rpc) {
        if same_endpoint(&configured, &rpc) {
            out.push(http_base(&http, Some(&rpc)));
        }
    }
    let guess = format!("http://{}", join_host_port(host, DEFAULT_HTTP_PORT));
    if !out.contains(&guess) {
        out.push(guess);
    }
    out
}

/// `authority` with `port` appended when it has none.
pub fn with_default_port(authority: &str, port: u16) -> String {
    if split_host_port(authority).1.is_some() {
        authority.to_string()
    } else {
        join_host_port(authority.trim_matches(['[', ']']), port)
    }
}

/// Splits `host:port` (IPv6 hosts in brackets); the port is `None` when absent or not a number.
pub fn split_host_port(addr: &str) -> (&str, Option<u16>) {
    if let Some(rest) = addr.strip_prefix('[') {
        if let Some((host, tail)) = rest.split_once(']') {
            return (host, tail.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
    }
    match addr.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(port) => (h, Some(port)),
            Err(_) => (addr, None),
        },
        _ => (addr, None),
    }
}

fn host_of(addr: &str) -> &str {
    split_host_port(addr).0
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn is_wildcard(host: &str) -> bool {
    matches!(host, "0.0.0.0" | "::" | "")
}

/// Two addresses name the same endpoint: same port, and same host up to the usual loopback
/// and wildcard spellings.
fn same_endpoint(a: &str, b: &str) -> bool {
    let (ha, pa) = split_host_port(a);
    let (hb, pb) = split_host_port(b);
    let loopback = |h: &str| matches!(h, "localhost" | "127.0.0.1" | "::1");
    pa == pb
        && (ha.eq_ignore_ascii_case(hb)
            || is_wildcard(ha)
            || is_wildcard(hb)
            || (loopback(ha) && loopback(hb)))
}

/// `http://host:port` for an HTTP address; a wildcard bind host is replaced by the host of
/// the NameNode's RPC address.
fn http_base(http: &str, rpc: Option<&str>) -> String {
    let http = http.trim_start_matches("http://").trim_end_matches('/');
    let (host, port) = split_host_port(http);
    let port = port.unwrap_or(DEFAULT_HTTP_PORT);
    let host = match rpc.map(host_of) {
        Some(rpc_host) if is_wildcard(host) && !is_wildcard(rpc_host) => rpc_host,
        _ if is_wildcard(host) => "127.0.0.1",
        _ => host,
    };
    format!("http://{}", join_host_port(host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CORE: &str = r#"<?xml version="1.0"?>
<configuration>
  <property><name>fs.defaultFS</name><value>hdfs://127.0.0.1:42531</value></property>
  <property>
    <name>hadoop.tmp.dir</name>
    <value> /tmp/x </value>
  </property>
</configuration>"#;

    const HDFS: &str = r#"<configuration>
  <property><name>dfs.namenode.rpc-address</name><value>127.0.0.1:42531</value></property>
  <property><name>dfs.namenode.http-address</name><value>127.0.0.1:39535</value></property>
</configuration>"#;

    fn mini() -> Config {
        let mut conf = Config::defaults();
        conf.add_xml(CORE, "core").unwrap();
        conf.add_xml(HDFS, "hdfs").unwrap();
        conf
    }

    fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Config {
        let mut conf = Config::defaults();
        for (k, v) in pairs {
            conf.set(k, v);
        }
        conf
    }

    #[test]
    fn reads_site_files() {
        let conf = mini();
        assert_eq!(get(&conf, "hadoop.tmp.dir").as_deref(), Some("/tmp/x"));
        assert_eq!(default_authority(&conf).as_deref(), Some("127.0.0.1:42531"));
        assert_eq!(default_authority(&Config::defaults()), None);
    }

    #[test]
    fn webhdfs_of_the_configured_namenode_uses_its_http_address() {
        let conf = mini();
        assert_eq!(
            webhdfs_bases(&conf, "127.0.0.1:42531"),
            vec!["http://127.0.0.1:39535", "http://127.0.0.1:9870"]
        );
        assert_eq!(
            webhdfs_bases(&conf, "localhost:42531")[0],
            "http://127.0.0.1:39535"
        );
        // Another NameNode: only the default-port guess on its host.
        assert_eq!(webhdfs_bases(&conf, "nn2:8020"), vec!["http://nn2:9870"]);
        assert_eq!(webhdfs_bases(&conf, "nn2"), vec!["http://nn2:9870"]);
    }

    #[test]
    fn wildcard_http_address_takes_the_rpc_host() {
        let conf = from_pairs([
            ("fs.defaultFS", "hdfs://nn1.example:8020"),
            ("dfs.namenode.http-address", "0.0.0.0:9871"),
        ]);
        assert_eq!(
            webhdfs_bases(&conf, "nn1.example:8020")[0],
            "http://nn1.example:9871"
        );
        assert_eq!(
            webhdfs_bases(&conf, "nn1.example")[0],
            "http://nn1.example:9871"
        );
    }

    #[test]
    fn name_services_list_every_namenode() {
        let conf = from_pairs([
            ("fs.defaultFS", "hdfs://ns1"),
            ("dfs.nameservices", "ns1"),
            ("dfs.ha.namenodes.ns1", "a, b"),
            ("dfs.namenode.rpc-address.ns1.a", "h1:8020"),
            ("dfs.namenode.rpc-address.ns1.b", "h2:8020"),
            ("dfs.namenode.http-address.ns1.a", "h1:9870"),
            ("dfs.namenode.http-address.ns1.b", "0.0.0.0:9870"),
        ]);
        assert!(is_nameservice(&conf, "ns1"));
        assert!(!is_nameservice(&conf, "h1:8020"));
        assert_eq!(rpc_addresses(&conf, "ns1"), vec!["h1:8020", "h2:8020"]);
        assert_eq!(
            webhdfs_bases(&conf, "ns1"),
            vec!["http://h1:9870", "http://h2:9870"]
        );
        assert_eq!(rpc_addresses(&conf, "h9"), vec!["h9:8020"]);
    }

    #[test]
    fn webhdfs_can_be_off() {
        let conf = from_pairs([("dfs.webhdfs.enabled", "false")]);
        assert!(webhdfs_bases(&conf, "h:8020").is_empty());
    }

    #[test]
    fn host_port_spellings() {
        assert_eq!(split_host_port("h:1"), ("h", Some(1)));
        assert_eq!(split_host_port("h"), ("h", None));
        assert_eq!(split_host_port("[::1]:9"), ("::1", Some(9)));
        assert_eq!(split_host_port("::1"), ("::1", None));
        assert_eq!(with_default_port("h", 8020), "h:8020");
        assert_eq!(with_default_port("::1", 8020), "[::1]:8020");
        assert!(same_endpoint("localhost:1", "127.0.0.1:1"));
        assert!(!same_endpoint("localhost:1", "127.0.0.1:2"));
        assert!(!same_endpoint("a:1", "b:1"));
    }
}
