//! Hadoop configuration: `core-site.xml`, `hdfs-site.xml` and
//! `yarn-site.xml`, with `${var}` substitution and Hadoop's defaults for the
//! keys this crate reads.
//!
//! Precedence, lowest first:
//! 1. built-in defaults ([`DEFAULTS`], Hadoop's `*-default.xml` values);
//! 2. the site files of the first directory found among: the explicit
//!    directory given to [`Config::load`], `$HADOOP_CONF_DIR`,
//!    `$YARN_CONF_DIR`, `$HADOOP_HOME/etc/hadoop` (files are read in the
//!    order core, hdfs, yarn; a later file overrides an earlier one, except
//!    for properties marked `<final>`);
//! 3. `-D key=value` overrides given to [`Config::set`].
//!
//! `${name}` expands to another key, `${env.NAME}` to an environment
//! variable, `${user.name}` to the current user; unresolved references are
//! left as they are (as Hadoop does).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// `fs.defaultFS`.
pub const FS_DEFAULT_FS: &str = "fs.defaultFS";
/// `hadoop.security.authentication` (`simple` or `kerberos`).
pub const SECURITY_AUTHENTICATION: &str = "hadoop.security.authentication";
/// `yarn.resourcemanager.principal`: the RM's Kerberos principal (`_HOST` allowed).
pub const RM_PRINCIPAL: &str = "yarn.resourcemanager.principal";
/// `dfs.namenode.kerberos.principal`: the NameNode's Kerberos principal.
pub const DFS_NAMENODE_PRINCIPAL: &str = "dfs.namenode.kerberos.principal";
/// `hadoop.rpc.protection`.
pub const RPC_PROTECTION: &str = "hadoop.rpc.protection";
/// `ipc.client.connect.timeout` (ms).
pub const IPC_CONNECT_TIMEOUT: &str = "ipc.client.connect.timeout";
/// `ipc.ping.interval` (ms).
pub const IPC_PING_INTERVAL: &str = "ipc.ping.interval";
/// `dfs.nameservices`.
pub const DFS_NAMESERVICES: &str = "dfs.nameservices";
/// `dfs.ha.namenodes.<ns>` prefix.
pub const DFS_HA_NAMENODES_PREFIX: &str = "dfs.ha.namenodes";
/// `dfs.namenode.rpc-address[.<ns>.<nn>]` prefix.
pub const DFS_NAMENODE_RPC_ADDRESS: &str = "dfs.namenode.rpc-address";
/// `yarn.resourcemanager.hostname`.
pub const RM_HOSTNAME: &str = "yarn.resourcemanager.hostname";
/// `yarn.resourcemanager.address` (client → RM).
pub const RM_ADDRESS: &str = "yarn.resourcemanager.address";
/// `yarn.resourcemanager.scheduler.address` (AM → RM).
pub const RM_SCHEDULER_ADDRESS: &str = "yarn.resourcemanager.scheduler.address";
/// `yarn.resourcemanager.webapp.address`.
pub const RM_WEBAPP_ADDRESS: &str = "yarn.resourcemanager.webapp.address";
/// `yarn.resourcemanager.ha.enabled`.
pub const RM_HA_ENABLED: &str = "yarn.resourcemanager.ha.enabled";
/// `yarn.resourcemanager.ha.rm-ids`.
pub const RM_HA_IDS: &str = "yarn.resourcemanager.ha.rm-ids";
/// Default client → RM port.
pub const DEFAULT_RM_PORT: u16 = 8032;
/// Default AM → RM port.
pub const DEFAULT_RM_SCHEDULER_PORT: u16 = 8030;
/// Default NameNode RPC port.
pub const DEFAULT_NAMENODE_PORT: u16 = 8020;

/// Hadoop's defaults for the keys we read.
pub const DEFAULTS: &[(&str, &str)] = &[
    (FS_DEFAULT_FS, "file:///"),
    (SECURITY_AUTHENTICATION, "simple"),
    (RPC_PROTECTION, "authentication"),
    (IPC_CONNECT_TIMEOUT, "20000"),
    (IPC_PING_INTERVAL, "60000"),
    (RM_HOSTNAME, "0.0.0.0"),
    (RM_ADDRESS, "${yarn.resourcemanager.hostname}:8032"),
    (
        RM_SCHEDULER_ADDRESS,
        "${yarn.resourcemanager.hostname}:8030",
    ),
    (RM_WEBAPP_ADDRESS, "${yarn.resourcemanager.hostname}:8088"),
    (RM_HA_ENABLED, "false"),
];

/// Site files read, in order.
pub const SITE_FILES: [&str; 3] = ["core-site.xml", "hdfs-site.xml", "yarn-site.xml"];

const MAX_SUBST_DEPTH: usize = 20;

/// A loaded Hadoop configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    props: HashMap<String, String>,
    finals: HashSet<String>,
    overrides: HashMap<String, String>,
    dir: Option<PathBuf>,
}

impl Config {
    /// Defaults only, no files.
    pub fn defaults() -> Config {
        let mut c = Config::default();
        for (k, v) in DEFAULTS {
            c.props.insert(k.to_string(), v.to_string());
        }
        c
    }

    /// Loads from `dir`, or else the first of `$HADOOP_CONF_DIR`,
    /// `$YARN_CONF_DIR`, `$HADOOP_HOME/etc/hadoop` that exists. With none,
    /// only the defaults are present.
    pub fn load(dir: Option<&Path>) -> Result<Config> {
        let mut c = Config::defaults();
        if let Some(d) = dir.map(Path::to_path_buf).or_else(Self::find_conf_dir) {
            c.add_dir(&d)?;
        }
        Ok(c)
    }

    /// The directory the environment points at, if any.
    pub fn find_conf_dir() -> Option<PathBuf> {
        let candidates = [
            std::env::var_os("HADOOP_CONF_DIR").map(PathBuf::from),
            std::env::var_os("YARN_CONF_DIR").map(PathBuf::from),
            std::env::var_os("HADOOP_HOME").map(|h| PathBuf::from(h).join("etc").join("hadoop")),
        ];
        candidates.into_iter().flatten().find(|p| p.is_dir())
    }

    /// The directory the site files came from.
    pub fn conf_dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Reads every site file present in `dir`.
    pub fn add_dir(&mut self, dir: &Path) -> Result<()> {
        if !dir.is_dir() {
            return Err(Error::ConfigFile {
                path: dir.display().to_string(),
                message: "not a directory".into(),
            });
        }
        for f in SITE_FILES {
            let p = dir.join(f);
            if p.is_file() {
                self.add_file(&p)?;
            }
        }
        self.dir = Some(dir.to_path_buf());
        Ok(())
    }

    /// Reads one `*-site.xml` file.
    pub fn add_file(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::ConfigFile {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        self.add_xml(&text, &path.display().to_string())
    }

    /// Parses Hadoop configuration XML; `origin` names it in errors.
    pub fn add_xml(&mut self, xml: &str, origin: &str) -> Result<()> {
        let doc = roxmltree::Document::parse(xml).map_err(|e| Error::ConfigFile {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        for prop in doc
            .root_element()
            .children()
            .filter(|n| n.has_tag_name("property"))
        {
            let child = |name: &str| {
                prop.children()
                    .find(|n| n.has_tag_name(name))
                    .map(|n| n.text().unwrap_or("").trim().to_string())
            };
            let (Some(name), Some(value)) = (child("name"), child("value")) else {
                continue;
            };
            if self.finals.contains(&name) {
                continue;
            }
            if child("final").as_deref() == Some("true") {
                self.finals.insert(name.clone());
            }
            self.props.insert(name, value);
        }
        Ok(())
    }

    /// A `-D key=value` override (highest precedence).
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.overrides.insert(key.into(), value.into());
    }

    /// Parses `key=value` and applies it with [`Config::set`].
    pub fn set_pair(&mut self, pair: &str) -> Result<()> {
        let (k, v) = pair.split_once('=').ok_or_else(|| Error::Parse {
            what: "-D key=value",
            value: pair.to_string(),
        })?;
        self.set(k.trim(), v.trim());
        Ok(())
    }

    fn raw(&self, key: &str) -> Option<&str> {
        self.overrides
            .get(key)
            .or_else(|| self.props.get(key))
            .map(String::as_str)
    }

    /// The value of `key` with `${…}` substituted.
    pub fn get(&self, key: &str) -> Option<String> {
        self.raw(key).map(|v| self.substitute(v))
    }

    /// `get`, or an error naming the key.
    pub fn require(&self, key: &str) -> Result<String> {
        self.get(key).ok_or_else(|| Error::Config {
            key: key.to_string(),
            message: "not set".into(),
        })
    }

    /// A boolean key (`true`/`false`), with a default.
    pub fn get_bool(&self, key: &str, default: bool) -> bool {
        match self.get(key).map(|v| v.to_ascii_lowercase()) {
            Some(v) if v == "true" => true,
            Some(v) if v == "false" => false,
            _ => default,
        }
    }

    /// An integer key, with a default; malformed values are an error.
    pub fn get_i64(&self, key: &str, default: i64) -> Result<i64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| Error::Config {
                key: key.to_string(),
                message: format!("{v:?} is not an integer"),
            }),
        }
    }

    /// A comma-separated list key.
    pub fn get_list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Expands `${…}` references in `value`.
    pub fn substitute(&self, value: &str) -> String {
        let mut out = value.to_string();
        for _ in 0..MAX_SUBST_DEPTH {
            let Some(next) = self.substitute_once(&out) else {
                break;
            };
            out = next;
        }
        out
    }

    /// One pass; `None` when nothing changed.
    fn substitute_once(&self, value: &str) -> Option<String> {
        let mut out = String::with_capacity(value.len());
        let mut rest = value;
        let mut changed = false;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[start..]);
                rest = "";
                break;
            };
            let name = &after[..end];
            let resolved = if let Some(env) = name.strip_prefix("env.") {
                std::env::var(env).ok()
            } else if name == "user.name" {
                self.raw(name).map(str::to_string).or_else(current_user)
            } else {
                self.raw(name).map(str::to_string)
            };
            match resolved {
                Some(v) => {
                    out.push_str(&v);
                    changed = true;
                }
                None => out.push_str(&rest[start..start + 3 + end]),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        changed.then_some(out)
    }

    /// Whether Kerberos is configured.
    pub fn security_enabled(&self) -> bool {
        self.get(SECURITY_AUTHENTICATION)
            .map(|v| v.eq_ignore_ascii_case("kerberos"))
            .unwrap_or(false)
    }

    /// Whether RM HA is on.
    pub fn rm_ha_enabled(&self) -> bool {
        self.get_bool(RM_HA_ENABLED, false)
    }

    /// `yarn.resourcemanager.ha.rm-ids` (empty without HA).
    pub fn rm_ha_ids(&self) -> Vec<String> {
        if self.rm_ha_enabled() {
            self.get_list(RM_HA_IDS)
        } else {
            vec![]
        }
    }

    fn rm_addresses_for(&self, key: &str, port: u16) -> Result<Vec<String>> {
        let ids = self.rm_ha_ids();
        if ids.is_empty() {
            return Ok(vec![self.require(key)?]);
        }
        ids.iter()
            .map(|id| {
                if let Some(a) = self.get(&format!("{key}.{id}")) {
                    return Ok(a);
                }
                let host =
                    self.get(&format!("{RM_HOSTNAME}.{id}"))
                        .ok_or_else(|| Error::Config {
                            key: format!("{RM_HOSTNAME}.{id}"),
                            message: format!("RM HA id {id} has neither {key}.{id} nor a hostname"),
                        })?;
                Ok(format!("{host}:{port}"))
            })
            .collect()
    }

    /// `yarn.resourcemanager.address` of the single RM.
    pub fn rm_address(&self) -> Result<String> {
        Ok(self.rm_addresses()?.remove(0))
    }

    /// Client → RM addresses (one per HA id, else one).
    pub fn rm_addresses(&self) -> Result<Vec<String>> {
        self.rm_addresses_for(RM_ADDRESS, DEFAULT_RM_PORT)
    }

    /// `yarn.resourcemanager.scheduler.address` of the single RM.
    pub fn scheduler_address(&self) -> Result<String> {
        Ok(self.scheduler_addresses()?.remove(0))
    }

    /// AM → RM addresses (one per HA id, else one).
    pub fn scheduler_addresses(&self) -> Result<Vec<String>> {
        self.rm_addresses_for(RM_SCHEDULER_ADDRESS, DEFAULT_RM_SCHEDULER_PORT)
    }

    /// `fs.defaultFS`.
    pub fn default_fs(&self) -> String {
        self.get(FS_DEFAULT_FS).unwrap_or_else(|| "file:///".into())
    }

    /// NameNode RPC addresses for `fs.defaultFS` (or the given
    /// `hdfs://authority`): the HA list for a nameservice, else `host:port`.
    pub fn namenode_addresses(&self, uri: Option<&str>) -> Result<Vec<String>> {
        let uri = uri.map(str::to_string).unwrap_or_else(|| self.default_fs());
        let authority = uri
            .strip_prefix("hdfs://")
            .map(|r| r.split('/').next().unwrap_or(""))
            .filter(|a| !a.is_empty())
            .ok_or_else(|| Error::Config {
                key: FS_DEFAULT_FS.into(),
                message: format!("{uri:?} is not an hdfs:// URI"),
            })?;
        let nns = self.get_list(&format!("{DFS_HA_NAMENODES_PREFIX}.{authority}"));
        if !nns.is_empty() {
            return nns
                .iter()
                .map(|nn| self.require(&format!("{DFS_NAMENODE_RPC_ADDRESS}.{authority}.{nn}")))
                .collect();
        }
        if authority.contains(':') {
            Ok(vec![authority.to_string()])
        } else {
            Ok(vec![format!("{authority}:{DEFAULT_NAMENODE_PORT}")])
        }
    }

    /// A copy without the keys `drop` selects (site values and overrides alike), for
    /// shipping a configuration whose secrets travel another way.
    pub fn without(&self, drop: impl Fn(&str) -> bool) -> Config {
        let mut c = self.clone();
        c.props.retain(|k, _| !drop(k));
        c.overrides.retain(|k, _| !drop(k));
        c.finals.retain(|k| !drop(k));
        c
    }

    /// Every resolved key/value (for shipping the config to an AM).
    pub fn iter(&self) -> impl Iterator<Item = (String, String)> + '_ {
        let mut keys: Vec<&String> = self.props.keys().chain(self.overrides.keys()).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .filter_map(|k| self.get(k).map(|v| (k.clone(), v)))
    }

    /// The effective configuration as one Hadoop configuration file, as `yarn jar` ships its
    /// job configuration: every key with the value it has here (site files, then `-D`
    /// overrides), sorted; `${…}` left for the reader to expand; `<final>` kept. Read back
    /// with [`Config::add_xml`], it gives the same values.
    pub fn to_xml(&self) -> String {
        let mut keys: Vec<&String> = self.props.keys().chain(self.overrides.keys()).collect();
        keys.sort();
        keys.dedup();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<configuration>\n");
        for key in keys {
            let Some(value) = self.raw(key) else {
                continue;
            };
            out.push_str("  <property><name>");
            out.push_str(&xml_escape(key));
            out.push_str("</name><value>");
            out.push_str(&xml_escape(value));
            out.push_str("</value>");
            if self.finals.contains(key) {
                out.push_str("<final>true</final>");
            }
            out.push_str("</property>\n");
        }
        out.push_str("</configuration>\n");
        out
    }
}

/// `text` with the five XML special characters escaped.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The user name Hadoop would use: `HADOOP_USER_NAME`, else `USER`/`LOGNAME`,
/// else the OS user of this process (looked up in `/etc/passwd`).
pub fn current_user() -> Option<String> {
    ["HADOOP_USER_NAME", "USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .or_else(os_user)
}

/// The name of this process's real uid, from `/proc/self/status` and `/etc/passwd`.
fn os_user() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let _pw = f.next()?;
        (f.next()? == uid).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: &str = r#"<?xml version="1.0"?>
<configuration>
  <property><name>yarn.resourcemanager.hostname</name><value>rm.example</value></property>
  <property><name>a</name><value>${b}-x</value></property>
  <property><name>b</name><value>${c}</value></property>
  <property><name>c</name><value>deep</value></property>
  <property><name>loop</name><value>${loop}</value></property>
  <property><name>missing</name><value>${nope}/y</value></property>
  <property><name>locked</name><value>one</value><final>true</final></property>
</configuration>"#;

    #[test]
    fn without_drops_site_values_and_overrides() {
        let mut c = Config::defaults();
        c.add_xml(
            "<configuration><property><name>a.secret</name><value>s</value><final>true</final></property>\
             <property><name>a.kept</name><value>k</value></property></configuration>",
            "test",
        )
        .unwrap();
        c.set("b.secret", "t");
        let shipped = c.without(|k| k.ends_with(".secret"));
        assert_eq!(shipped.get("a.kept").as_deref(), Some("k"));
        assert_eq!(shipped.get("a.secret"), None);
        assert_eq!(shipped.get("b.secret"), None);
        let xml = shipped.to_xml();
        assert!(!xml.contains("secret"), "{xml}");
        // The original is untouched.
        assert_eq!(c.get("b.secret").as_deref(), Some("t"));
    }

    #[test]
    fn substitution_and_defaults() {
        let mut c = Config::defaults();
        c.add_xml(SITE, "test").expect("xml");
        assert_eq!(c.get("a").as_deref(), Some("deep-x"));
        assert_eq!(c.rm_address().expect("rm"), "rm.example:8032");
        assert_eq!(c.scheduler_address().expect("sched"), "rm.example:8030");
        assert_eq!(c.get("missing").as_deref(), Some("${nope}/y"));
        // A self-reference terminates.
        assert_eq!(c.get("loop").as_deref(), Some("${loop}"));
        assert_eq!(c.default_fs(), "file:///");
    }

    #[test]
    fn env_substitution() {
        let mut c = Config::defaults();
        c.set("p", "${env.PATH}");
        assert_eq!(c.get("p"), std::env::var("PATH").ok());
    }

    #[test]
    fn overrides_and_final() {
        let mut c = Config::defaults();
        c.add_xml(SITE, "one").expect("xml");
        c.add_xml(
            "<configuration><property><name>locked</name><value>two</value></property>\
             <property><name>c</name><value>later</value></property></configuration>",
            "two",
        )
        .expect("xml");
        assert_eq!(c.get("locked").as_deref(), Some("one"));
        assert_eq!(c.get("a").as_deref(), Some("later-x"));
        c.set_pair("yarn.resourcemanager.address=h:1")
            .expect("pair");
        assert_eq!(c.rm_address().expect("rm"), "h:1");
        assert!(c.set_pair("novalue").is_err());
    }

    #[test]
    fn rm_ha_addresses() {
        let mut c = Config::defaults();
        c.set(RM_HA_ENABLED, "true");
        c.set(RM_HA_IDS, "rm1, rm2");
        c.set("yarn.resourcemanager.hostname.rm1", "a");
        c.set("yarn.resourcemanager.hostname.rm2", "b");
        c.set("yarn.resourcemanager.address.rm2", "b:9999");
        assert_eq!(c.rm_ha_ids(), vec!["rm1", "rm2"]);
        assert_eq!(c.rm_addresses().expect("ha"), vec!["a:8032", "b:9999"]);
        assert_eq!(
            c.scheduler_addresses().expect("ha"),
            vec!["a:8030", "b:8030"]
        );
    }

    #[test]
    fn namenode_addresses() {
        let mut c = Config::defaults();
        c.set(FS_DEFAULT_FS, "hdfs://127.0.0.1:9000");
        assert_eq!(
            c.namenode_addresses(None).expect("nn"),
            vec!["127.0.0.1:9000"]
        );
        c.set(FS_DEFAULT_FS, "hdfs://ns1");
        c.set("dfs.ha.namenodes.ns1", "nn1,nn2");
        c.set("dfs.namenode.rpc-address.ns1.nn1", "x:8020");
        c.set("dfs.namenode.rpc-address.ns1.nn2", "y:8020");
        assert_eq!(
            c.namenode_addresses(None).expect("ha"),
            vec!["x:8020", "y:8020"]
        );
        assert!(c.namenode_addresses(Some("file:///tmp")).is_err());
    }

    #[test]
    fn written_xml_reads_back_the_same() {
        let mut c = Config::defaults();
        c.add_xml(SITE, "site").expect("xml");
        c.set("yarn.resourcemanager.hostname", "rm2.example");
        c.set("odd", "a<b & \"c\" > 'd'");
        c.set("locked", "set by -D");
        let xml = c.to_xml();
        let mut back = Config::default();
        back.add_xml(&xml, "written").expect("reads back");
        assert_eq!(
            back.iter().collect::<Vec<_>>(),
            c.iter().collect::<Vec<_>>()
        );
        assert_eq!(back.get("a").as_deref(), Some("deep-x"));
        assert_eq!(back.rm_address().expect("rm"), "rm2.example:8032");
        assert!(xml.contains("<value>${b}-x</value>"), "{xml}");
        assert!(
            xml.contains("<name>locked</name><value>set by -D</value><final>true</final>"),
            "{xml}"
        );
        // A later file cannot change a final key.
        back.add_xml("<configuration><property><name>locked</name><value>x</value></property></configuration>", "later")
            .expect("xml");
        assert_eq!(back.get("locked"), c.get("locked"));
    }

    #[test]
    fn bad_xml_names_the_file() {
        let mut c = Config::defaults();
        let err = c.add_xml("<configuration>", "/etc/x.xml").expect_err("bad");
        assert!(err.to_string().contains("/etc/x.xml"));
    }
}
