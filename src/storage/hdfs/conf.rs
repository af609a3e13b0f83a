//! The few Hadoop client settings this module needs besides what `hdfs-native` reads itself:
//! which NameNode `hdfs:///` means (`fs.defaultFS`) and where each NameNode's HTTP server is
//! (for WebHDFS block locations). Pure: parses `core-site.xml` and `hdfs-site.xml` text into a
//! map and answers questions about it; no network.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Environment variable naming the Hadoop configuration directory.
pub const HADOOP_CONF_DIR: &str = "HADOOP_CONF_DIR";
/// Fallback: `$HADOOP_HOME/etc/hadoop`.
pub const HADOOP_HOME: &str = "HADOOP_HOME";
/// The site files read, in order (later ones override earlier ones).
pub const SITE_FILES: [&str; 2] = ["core-site.xml", "hdfs-site.xml"];

/// The file system `hdfs:///path` refers to.
pub const DEFAULT_FS: &str = "fs.defaultFS";
/// Logical name services (comma-separated).
pub const NAMESERVICES: &str = "dfs.nameservices";
/// `dfs.ha.namenodes.<ns>`: the NameNode ids of an HA name service.
pub const HA_NAMENODES: &str = "dfs.ha.namenodes";
/// NameNode RPC address (`host:port`), plain or suffixed `.<ns>[.<nn>]`.
pub const NAMENODE_RPC_ADDRESS: &str = "dfs.namenode.rpc-address";
/// NameNode HTTP address (`host:port`), plain or suffixed `.<ns>[.<nn>]`.
pub const NAMENODE_HTTP_ADDRESS: &str = "dfs.namenode.http-address";
/// Whether WebHDFS is served (default true).
pub const WEBHDFS_ENABLED: &str = "dfs.webhdfs.enabled";

/// Hadoop's default NameNode RPC port, for `hdfs://host/` without a port.
pub const DEFAULT_RPC_PORT: u16 = 8020;
/// Hadoop 3's default NameNode HTTP port.
pub const DEFAULT_HTTP_PORT: u16 = 9870;

/// Key/value settings from the site files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HadoopConf {
    values: HashMap<String, String>,
    /// Where the values came from, for messages (`None`: no conf directory found).
    pub dir: Option<PathBuf>,
}

impl HadoopConf {
    /// Reads the site files from `$HADOOP_CONF_DIR`, else `$HADOOP_HOME/etc/hadoop`; a missing
    /// directory or file gives empty settings, an unreadable or malformed file an error.
    pub fn load() -> Result<HadoopConf, String> {
        let dir = std::env::var_os(HADOOP_CONF_DIR)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os(HADOOP_HOME)
                    .filter(|d| !d.is_empty())
                    .map(|h| PathBuf::from(h).join("etc").join("hadoop"))
            });
        let Some(dir) = dir else {
            return Ok(HadoopConf::default());
        };
        let mut conf = HadoopConf {
            values: HashMap::new(),
            dir: Some(dir.clone()),
        };
        for name in SITE_FILES {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => conf
                    .merge_xml(&text)
                    .map_err(|e| format!("{}: {e}", path.display()))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
            }
        }
        Ok(conf)
    }

    /// Settings from `(key, value)` pairs (tests, overrides).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> HadoopConf {
        HadoopConf {
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            dir: None,
        }
    }

    /// Adds the `<property><name>…</name><value>…</value></property>` entries of one site file.
    pub fn merge_xml(&mut self, text: &str) -> Result<(), String> {
        let doc = roxmltree::Document::parse(text).map_err(|e| e.to_string())?;
        for prop in doc.descendants().filter(|n| n.has_tag_name("property")) {
            let child = |tag: &str| {
                prop.children()
                    .find(|c| c.has_tag_name(tag))
                    .map(|c| c.text().unwrap_or("").trim().to_string())
            };
            if let (Some(name), Some(value)) = (child("name"), child("value")) {
                self.values.insert(name, value);
            }
        }
        Ok(())
    }

    /// The value of `key`, if set and not empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The authority (`host:port` or name service) of `fs.defaultFS` when it is an `hdfs://`
    /// URL.
    pub fn default_authority(&self) -> Option<String> {
        let fs = self.get(DEFAULT_FS)?;
        let rest = fs.strip_prefix("hdfs://")?;
        let authority = rest.split('/').next().unwrap_or("");
        (!authority.is_empty()).then(|| authority.to_string())
    }

    /// Whether `authority` names a configured logical name service rather than a host.
    pub fn is_nameservice(&self, authority: &str) -> bool {
        self.get(NAMESERVICES)
            .is_some_and(|list| list.split(',').any(|ns| ns.trim() == authority))
            || self.get(&format!("{HA_NAMENODES}.{authority}")).is_some()
    }

    /// The RPC addresses behind `authority`: the NameNodes of a name service, else the
    /// authority itself (with the default port when it has none).
    pub fn rpc_addresses(&self, authority: &str) -> Vec<String> {
        if self.is_nameservice(authority) {
            let mut out = Vec::new();
            for nn in self.namenode_ids(authority) {
                if let Some(a) = self.get(&format!("{NAMENODE_RPC_ADDRESS}.{authority}.{nn}")) {
                    out.push(a.to_string());
                }
            }
            if let Some(a) = self.get(&format!("{NAMENODE_RPC_ADDRESS}.{authority}")) {
                out.push(a.to_string());
            }
            return out;
        }
        vec![with_default_port(authority, DEFAULT_RPC_PORT)]
    }

    fn namenode_ids(&self, ns: &str) -> Vec<String> {
        self.get(&format!("{HA_NAMENODES}.{ns}"))
            .map(|ids| {
                ids.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// WebHDFS base URLs (`http://host:port`) for `authority`, to be tried in order: each
    /// NameNode of a name service; else the configured HTTP address when it belongs to the
    /// same NameNode; else the authority's host on the default HTTP port. Empty when WebHDFS is
    /// switched off.
    pub fn webhdfs_bases(&self, authority: &str) -> Vec<String> {
        if self.get(WEBHDFS_ENABLED) == Some("false") {
            return Vec::new();
        }
        let mut out = Vec::new();
        if self.is_nameservice(authority) {
            for nn in self.namenode_ids(authority) {
                let rpc = self.get(&format!("{NAMENODE_RPC_ADDRESS}.{authority}.{nn}"));
                if let Some(http) = self.get(&format!("{NAMENODE_HTTP_ADDRESS}.{authority}.{nn}")) {
                    out.push(http_base(http, rpc));
                }
            }
            let rpc = self.get(&format!("{NAMENODE_RPC_ADDRESS}.{authority}"));
            if let Some(http) = self.get(&format!("{NAMENODE_HTTP_ADDRESS}.{authority}")) {
                out.push(http_base(http, rpc));
            }
            return out;
        }
        let rpc = with_default_port(authority, DEFAULT_RPC_PORT);
        let host = host_of(&rpc);
        // The unsuffixed keys describe "the" NameNode: use them when it is this one.
        let configured_rpc = self
            .get(NAMENODE_RPC_ADDRESS)
            .map(|a| with_default_port(a, DEFAULT_RPC_PORT))
            .or_else(|| {
                self.default_authority()
                    .filter(|a| !self.is_nameservice(a))
                    .map(|a| with_default_port(&a, DEFAULT_RPC_PORT))
            });
        if let (Some(http), Some(configured)) = (self.get(NAMENODE_HTTP_ADDRESS), configured_rpc) {
            if same_endpoint(&configured, &rpc) {
                out.push(http_base(http, Some(&rpc)));
            }
        }
        let guess = format!("http://{}", join_host_port(host, DEFAULT_HTTP_PORT));
        if !out.contains(&guess) {
            out.push(guess);
        }
        out
    }
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

/// The directory holding the site files, for messages.
pub fn describe_dir(dir: Option<&Path>) -> String {
    match dir {
        Some(d) => d.display().to_string(),
        None => format!("none (set {HADOOP_CONF_DIR})"),
    }
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

    fn mini() -> HadoopConf {
        let mut conf = HadoopConf::default();
        conf.merge_xml(CORE).unwrap();
        conf.merge_xml(HDFS).unwrap();
        conf
    }

    #[test]
    fn reads_site_files() {
        let conf = mini();
        assert_eq!(conf.get("fs.defaultFS"), Some("hdfs://127.0.0.1:42531"));
        assert_eq!(conf.get("hadoop.tmp.dir"), Some("/tmp/x"));
        assert_eq!(conf.default_authority().as_deref(), Some("127.0.0.1:42531"));
        assert!(HadoopConf::default().merge_xml("<configuration>").is_err());
    }

    #[test]
    fn webhdfs_of_the_configured_namenode_uses_its_http_address() {
        let conf = mini();
        assert_eq!(
            conf.webhdfs_bases("127.0.0.1:42531"),
            vec!["http://127.0.0.1:39535", "http://127.0.0.1:9870"]
        );
        assert_eq!(
            conf.webhdfs_bases("localhost:42531")[0],
            "http://127.0.0.1:39535"
        );
        // Another NameNode: only the default-port guess on its host.
        assert_eq!(conf.webhdfs_bases("nn2:8020"), vec!["http://nn2:9870"]);
        assert_eq!(conf.webhdfs_bases("nn2"), vec!["http://nn2:9870"]);
    }

    #[test]
    fn wildcard_http_address_takes_the_rpc_host() {
        let conf = HadoopConf::from_pairs([
            ("fs.defaultFS", "hdfs://nn1.example:8020"),
            ("dfs.namenode.http-address", "0.0.0.0:9871"),
        ]);
        assert_eq!(
            conf.webhdfs_bases("nn1.example:8020")[0],
            "http://nn1.example:9871"
        );
        assert_eq!(
            conf.webhdfs_bases("nn1.example")[0],
            "http://nn1.example:9871"
        );
    }

    #[test]
    fn name_services_list_every_namenode() {
        let conf = HadoopConf::from_pairs([
            ("fs.defaultFS", "hdfs://ns1"),
            ("dfs.nameservices", "ns1"),
            ("dfs.ha.namenodes.ns1", "a, b"),
            ("dfs.namenode.rpc-address.ns1.a", "h1:8020"),
            ("dfs.namenode.rpc-address.ns1.b", "h2:8020"),
            ("dfs.namenode.http-address.ns1.a", "h1:9870"),
            ("dfs.namenode.http-address.ns1.b", "0.0.0.0:9870"),
        ]);
        assert!(conf.is_nameservice("ns1"));
        assert!(!conf.is_nameservice("h1:8020"));
        assert_eq!(conf.rpc_addresses("ns1"), vec!["h1:8020", "h2:8020"]);
        assert_eq!(
            conf.webhdfs_bases("ns1"),
            vec!["http://h1:9870", "http://h2:9870"]
        );
        assert_eq!(conf.rpc_addresses("h9"), vec!["h9:8020"]);
    }

    #[test]
    fn webhdfs_can_be_off() {
        let conf = HadoopConf::from_pairs([("dfs.webhdfs.enabled", "false")]);
        assert!(conf.webhdfs_bases("h:8020").is_empty());
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
