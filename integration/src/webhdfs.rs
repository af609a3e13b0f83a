//! The few WebHDFS operations the integration tests need, over [`crate::http`].
//!
//! Data operations (`CREATE`, `OPEN`) are two-step: the NameNode answers `307` with a
//! DataNode URL, which is then called directly. Responses are returned as JSON text; tests
//! check them with [`json_field`] (flat fields only) rather than pulling in a JSON parser.

use std::fmt;

use crate::http::{self, percent_encode, HttpError, Response};

/// The REST prefix on the NameNode HTTP port.
pub const WEBHDFS_PREFIX: &str = "/webhdfs/v1";

/// Why a WebHDFS call failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum WebHdfsError {
    /// The HTTP exchange itself failed.
    Http(HttpError),
    /// The server answered with an unexpected status (its body usually holds a
    /// `RemoteException`).
    Status {
        op: &'static str,
        path: String,
        status: u16,
        body: String,
    },
    /// A `307` without a `Location` header.
    NoRedirect { op: &'static str, path: String },
}

impl fmt::Display for WebHdfsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebHdfsError::Http(e) => write!(f, "{e}"),
            WebHdfsError::Status {
                op,
                path,
                status,
                body,
            } => write!(f, "WebHDFS {op} {path}: HTTP {status}: {body}"),
            WebHdfsError::NoRedirect { op, path } => {
                write!(f, "WebHDFS {op} {path}: 307 without Location")
            }
        }
    }
}

impl std::error::Error for WebHdfsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WebHdfsError::Http(e) => Some(e),
            _ => None,
        }
    }
}

impl From<HttpError> for WebHdfsError {
    fn from(e: HttpError) -> Self {
        WebHdfsError::Http(e)
    }
}

/// A WebHDFS endpoint acting as one user (simple authentication, `user.name=`).
#[derive(Debug, Clone)]
pub struct WebHdfs {
    base: String,
    user: String,
}

impl WebHdfs {
    /// `base` is the NameNode HTTP URL (`http://127.0.0.1:PORT`, as in `FILEX_WEBHDFS`).
    pub fn new(base: &str, user: &str) -> Result<Self, WebHdfsError> {
        http::Url::parse(base)?;
        Ok(WebHdfs {
            base: base.trim_end_matches('/').to_string(),
            user: user.to_string(),
        })
    }

    fn url(&self, path: &str, op: &str, extra: &str) -> String {
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        format!(
            "{}{WEBHDFS_PREFIX}{}?op={op}&user.name={}{extra}",
            self.base,
            percent_encode(&path, true),
            percent_encode(&self.user, false)
        )
    }

    fn expect(
        op: &'static str,
        path: &str,
        response: Response,
        want: u16,
    ) -> Result<Response, WebHdfsError> {
        if response.status == want {
            Ok(response)
        } else {
            Err(WebHdfsError::Status {
                op,
                path: path.to_string(),
                status: response.status,
                body: response.text(),
            })
        }
    }

    fn redirect(op: &'static str, path: &str, response: Response) -> Result<String, WebHdfsError> {
        let response = Self::expect(op, path, response, 307)?;
        response
            .header("Location")
            .map(str::to_string)
            .ok_or_else(|| WebHdfsError::NoRedirect {
                op,
                path: path.to_string(),
            })
    }

    /// `MKDIRS` (with parents); returns the server's `boolean`.
    pub fn mkdirs(&self, path: &str) -> Result<bool, WebHdfsError> {
        let r = http::request("PUT", &self.url(path, "MKDIRS", ""), None)?;
        let r = Self::expect("MKDIRS", path, r, 200)?;
        Ok(json_field(&r.text(), "boolean") == Some("true"))
    }

    /// `CREATE` a file holding `data` (NameNode redirect, then the DataNode write).
    pub fn create(&self, path: &str, data: &[u8], overwrite: bool) -> Result<(), WebHdfsError> {
        let extra = format!("&overwrite={overwrite}");
        let r = http::request("PUT", &self.url(path, "CREATE", &extra), None)?;
        let location = Self::redirect("CREATE", path, r)?;
        let r = http::request("PUT", &location, Some(data))?;
        Self::expect("CREATE", path, r, 201)?;
        Ok(())
    }

    /// `OPEN` and read the whole file.
    pub fn open(&self, path: &str) -> Result<Vec<u8>, WebHdfsError> {
        let r = http::request("GET", &self.url(path, "OPEN", ""), None)?;
        let location = Self::redirect("OPEN", path, r)?;
        let r = http::request("GET", &location, None)?;
        Ok(Self::expect("OPEN", path, r, 200)?.body)
    }

    /// `GETFILESTATUS` as JSON text.
    pub fn file_status(&self, path: &str) -> Result<String, WebHdfsError> {
        let r = http::request("GET", &self.url(path, "GETFILESTATUS", ""), None)?;
        Ok(Self::expect("GETFILESTATUS", path, r, 200)?.text())
    }

    /// `LISTSTATUS` as JSON text.
    pub fn list_status(&self, path: &str) -> Result<String, WebHdfsError> {
        let r = http::request("GET", &self.url(path, "LISTSTATUS", ""), None)?;
        Ok(Self::expect("LISTSTATUS", path, r, 200)?.text())
    }

    /// `DELETE`; returns the server's `boolean` (false if nothing was there).
    pub fn delete(&self, path: &str, recursive: bool) -> Result<bool, WebHdfsError> {
        let extra = format!("&recursive={recursive}");
        let r = http::request("DELETE", &self.url(path, "DELETE", &extra), None)?;
        let r = Self::expect("DELETE", path, r, 200)?;
        Ok(json_field(&r.text(), "boolean") == Some("true"))
    }
}

/// The raw value of the first `"key": value` in a JSON text: a number, `true`/`false`/`null`,
/// or a string without its quotes (escapes not decoded). Enough for flat WebHDFS fields such
/// as `length`, `replication`, `blockSize`, `type`.
pub fn json_field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let needle = format!("\"{key}\"");
    let at = json.find(&needle)?;
    let rest = json[at + needle.len()..].trim_start().strip_prefix(':')?;
    let rest = rest.trim_start();
    if let Some(s) = rest.strip_prefix('"') {
        let mut escaped = false;
        for (i, c) in s.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => return Some(&s[..i]),
                _ => escaped = false,
            }
        }
        None
    } else {
        let end = rest
            .find([',', '}', ']', ' ', '\n', '\r'])
            .unwrap_or(rest.len());
        Some(rest[..end].trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_urls() {
        let fs = WebHdfs::new("http://127.0.0.1:9870/", "a b").unwrap();
        assert_eq!(
            fs.url("tmp/x y", "OPEN", "&offset=1"),
            "http://127.0.0.1:9870/webhdfs/v1/tmp/x%20y?op=OPEN&user.name=a%20b&offset=1"
        );
    }

    #[test]
    fn reads_flat_json_fields() {
        let json = r#"{"FileStatus":{"blockSize":16777216,"length":12,"pathSuffix":"","replication":3,"type":"FILE","q":"a\"b"}}"#;
        assert_eq!(json_field(json, "length"), Some("12"));
        assert_eq!(json_field(json, "blockSize"), Some("16777216"));
        assert_eq!(json_field(json, "type"), Some("FILE"));
        assert_eq!(json_field(json, "pathSuffix"), Some(""));
        assert_eq!(json_field(json, "q"), Some(r#"a\"b"#));
        assert_eq!(json_field(json, "missing"), None);
        assert_eq!(json_field(r#"{"boolean":true}"#, "boolean"), Some("true"));
    }
}
