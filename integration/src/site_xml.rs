//! Reads Hadoop `*-site.xml` files (`<configuration><property><name>…</name><value>…</value>`)
//! into a key/value map, so tests can check what the harness wrote.
//!
//! This is a reader for the flat format Hadoop's `Configuration.writeXml` produces, not a
//! general XML parser: comments are skipped and the five predefined entities plus numeric
//! character references are decoded; CDATA, includes and `${var}` expansion are not handled.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Why a site file could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum SiteXmlError {
    /// The file could not be read.
    Io { path: PathBuf, source: io::Error },
    /// The file is not a `<configuration>` document of `<property>` elements.
    Malformed { path: PathBuf, reason: String },
}

impl fmt::Display for SiteXmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SiteXmlError::Io { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            SiteXmlError::Malformed { path, reason } => {
                write!(f, "{} is not a Hadoop site file: {reason}", path.display())
            }
        }
    }
}

impl std::error::Error for SiteXmlError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SiteXmlError::Io { source, .. } => Some(source),
            SiteXmlError::Malformed { .. } => None,
        }
    }
}

/// Reads one site file. Later duplicates of a key win, as in Hadoop.
pub fn read_site_xml(path: &Path) -> Result<BTreeMap<String, String>, SiteXmlError> {
    let text = std::fs::read_to_string(path).map_err(|source| SiteXmlError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_site_xml(&text).map_err(|reason| SiteXmlError::Malformed {
        path: path.to_path_buf(),
        reason,
    })
}

/// Parses the text of a site file.
pub fn parse_site_xml(text: &str) -> Result<BTreeMap<String, String>, String> {
    let text = strip_comments(text);
    if !text.contains("<configuration") {
        return Err("no <configuration> element".into());
    }
    let mut props = BTreeMap::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("<property>") {
        let body_start = start + "<property>".len();
        let end = rest[body_start..]
            .find("</property>")
            .ok_or("<property> without </property>")?;
        let body = &rest[body_start..body_start + end];
        let name = element_text(body, "name").ok_or("<property> without <name>")?;
        let value = element_text(body, "value").unwrap_or_default();
        props.insert(unescape(name.trim())?, unescape(&value)?);
        rest = &rest[body_start + end + "</property>".len()..];
    }
    Ok(props)
}

fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<!--") {
        out.push_str(&rest[..start]);
        match rest[start..].find("-->") {
            Some(end) => rest = &rest[start + end + 3..],
            None => {
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Text of `<tag>…</tag>`, or `Some("")` for `<tag/>`; `None` if absent.
fn element_text(body: &str, tag: &str) -> Option<String> {
    let empty = format!("<{tag}/>");
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    match (body.find(&open), body.find(&empty)) {
        (Some(start), _) => {
            let from = start + open.len();
            let len = body[from..].find(&close)?;
            Some(body[from..from + len].to_string())
        }
        (None, Some(_)) => Some(String::new()),
        (None, None) => None,
    }
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let semi = rest[amp..]
            .find(';')
            .ok_or_else(|| format!("unterminated entity in {s:?}"))?;
        let entity = &rest[amp + 1..amp + semi];
        let ch = match entity {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = entity.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = entity.strip_prefix('#') {
                    dec.parse().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .ok_or_else(|| format!("unknown entity &{entity}; in {s:?}"))?
            }
        };
        out.push(ch);
        rest = &rest[amp + semi + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hadoop_writexml_output() {
        let text = r#"<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<configuration>
<!-- a comment with <property> inside -->
<property><name>yarn.resourcemanager.address</name><value>127.0.0.1:41234</value><final>false</final><source>filex-cluster</source></property>
<property><name>empty.value</name><value/></property>
<property><name>escaped</name><value>a&lt;b&amp;c&#65;&#x42;</value></property>
<property><name>dup</name><value>1</value></property>
<property><name>dup</name><value>2</value></property>
</configuration>"#;
        let props = parse_site_xml(text).unwrap();
        assert_eq!(props["yarn.resourcemanager.address"], "127.0.0.1:41234");
        assert_eq!(props["empty.value"], "");
        assert_eq!(props["escaped"], "a<b&cAB");
        assert_eq!(props["dup"], "2");
        assert_eq!(props.len(), 4);
    }

    #[test]
    fn rejects_non_configuration() {
        assert!(parse_site_xml("<html></html>").is_err());
        assert!(parse_site_xml("<configuration><property><name>x</name>").is_err());
    }
}
