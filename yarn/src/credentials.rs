//! Hadoop token storage ("HDTS") files: read and write both serialisations
//! (Writable and protobuf), look tokens up by kind and service
//! (PROTOCOL.md section 6.2). YARN hands an AM its AMRMToken in such a
//! file, named by `HADOOP_TOKEN_FILE_LOCATION`.

use std::path::Path;

use prost::Message;

use crate::error::{Error, Result};
use crate::proto::common::{CredentialsKvProto, CredentialsProto, TokenProto};
use crate::writable::{write_vbytes, write_vlong, Reader};

/// `HDTS`, the file magic.
pub const MAGIC: &[u8; 4] = b"HDTS";
/// Environment variable YARN sets to the container's token file.
pub const TOKEN_FILE_ENV: &str = "HADOOP_TOKEN_FILE_LOCATION";
/// Token kind of the AM → RM token.
pub const AM_RM_TOKEN_KIND: &str = "YARN_AM_RM_TOKEN";
/// Token kind of NodeManager tokens.
pub const NM_TOKEN_KIND: &str = "NMToken";
/// Token kind of HDFS delegation tokens.
pub const HDFS_DELEGATION_TOKEN_KIND: &str = "HDFS_DELEGATION_TOKEN";

/// A Hadoop security token.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// Serialised token identifier (becomes the SASL user name).
    pub identifier: Vec<u8>,
    /// The secret (becomes the SASL password).
    pub password: Vec<u8>,
    /// Kind, e.g. `YARN_AM_RM_TOKEN`.
    pub kind: String,
    /// Service, e.g. `host:port` (may be empty).
    pub service: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password.
        f.debug_struct("Token")
            .field("kind", &self.kind)
            .field("service", &self.service)
            .field("identifier_len", &self.identifier.len())
            .finish()
    }
}

impl Token {
    pub(crate) fn from_proto(p: TokenProto) -> Token {
        Token {
            identifier: p.identifier,
            password: p.password,
            kind: p.kind,
            service: p.service,
        }
    }

    pub(crate) fn to_proto(&self) -> TokenProto {
        TokenProto {
            identifier: self.identifier.clone(),
            password: self.password.clone(),
            kind: self.kind.clone(),
            service: self.service.clone(),
        }
    }
}

/// Which serialisation to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Format byte 0: Hadoop Writable (what YARN itself writes).
    Writable,
    /// Format byte 1: a delimited `CredentialsProto`.
    Protobuf,
}

/// A set of tokens and secrets, each under an alias.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// `(alias, token)` in file order.
    pub tokens: Vec<(String, Token)>,
    /// `(alias, secret bytes)` in file order.
    pub secrets: Vec<(String, Vec<u8>)>,
}

impl Credentials {
    /// Reads a token storage file.
    pub fn read_file(path: impl AsRef<Path>) -> Result<Credentials> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::Credentials {
            source_name: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::decode_named(&bytes, &path.display().to_string())
    }

    /// Reads the file named by `HADOOP_TOKEN_FILE_LOCATION`, if set.
    pub fn from_env() -> Result<Option<Credentials>> {
        match std::env::var_os(TOKEN_FILE_ENV) {
            Some(p) => Self::read_file(p).map(Some),
            None => Ok(None),
        }
    }

    /// Decodes a token storage blob (either format).
    pub fn decode(bytes: &[u8]) -> Result<Credentials> {
        Self::decode_named(bytes, "bytes")
    }

    fn decode_named(bytes: &[u8], name: &str) -> Result<Credentials> {
        let err = |message: String| Error::Credentials {
            source_name: name.to_string(),
            message,
        };
        let mut r = Reader::new(bytes, name);
        if r.bytes(4).ok() != Some(&MAGIC[..]) {
            return Err(err("missing HDTS magic".into()));
        }
        match r.u8()? {
            0 => Self::decode_writable(&mut r),
            1 => {
                let p = CredentialsProto::decode_length_delimited(r.remaining())
                    .map_err(|e| err(format!("bad CredentialsProto: {e}")))?;
                let mut c = Credentials::default();
                for kv in p.tokens {
                    if let Some(t) = kv.token {
                        c.tokens.push((kv.alias, Token::from_proto(t)));
                    }
                }
                for kv in p.secrets {
                    c.secrets.push((kv.alias, kv.secret.unwrap_or_default()));
                }
                Ok(c)
            }
            other => Err(err(format!("unknown format byte {other}"))),
        }
    }

    fn decode_writable(r: &mut Reader<'_>) -> Result<Credentials> {
        let mut c = Credentials::default();
        let n = r.len()?;
        for _ in 0..n {
            let alias = r.text()?;
            let identifier = r.vbytes()?;
            let password = r.vbytes()?;
            let kind = r.text()?;
            let service = r.text()?;
            c.tokens.push((
                alias,
                Token {
                    identifier,
                    password,
                    kind,
                    service,
                },
            ));
        }
        // Some writers stop after the tokens; treat a missing section as empty.
        if !r.is_empty() {
            let n = r.len()?;
            for _ in 0..n {
                let alias = r.text()?;
                let secret = r.vbytes()?;
                c.secrets.push((alias, secret));
            }
        }
        Ok(c)
    }

    /// Encodes in the given format.
    pub fn encode(&self, format: Format) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        match format {
            Format::Writable => {
                out.push(0);
                write_vlong(&mut out, self.tokens.len() as i64);
                for (alias, t) in &self.tokens {
                    write_vbytes(&mut out, alias.as_bytes());
                    write_vbytes(&mut out, &t.identifier);
                    write_vbytes(&mut out, &t.password);
                    write_vbytes(&mut out, t.kind.as_bytes());
                    write_vbytes(&mut out, t.service.as_bytes());
                }
                write_vlong(&mut out, self.secrets.len() as i64);
                for (alias, s) in &self.secrets {
                    write_vbytes(&mut out, alias.as_bytes());
                    write_vbytes(&mut out, s);
                }
            }
            Format::Protobuf => {
                out.push(1);
                let p = CredentialsProto {
                    tokens: self
                        .tokens
                        .iter()
                        .map(|(a, t)| CredentialsKvProto {
                            alias: a.clone(),
                            token: Some(t.to_proto()),
                            secret: None,
                        })
                        .collect(),
                    secrets: self
                        .secrets
                        .iter()
                        .map(|(a, s)| CredentialsKvProto {
                            alias: a.clone(),
                            token: None,
                            secret: Some(s.clone()),
                        })
                        .collect(),
                };
                let _ = p.encode_length_delimited(&mut out);
            }
        }
        out
    }

    /// Writes a token storage file.
    pub fn write_file(&self, path: impl AsRef<Path>, format: Format) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.encode(format)).map_err(|e| Error::Credentials {
            source_name: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// Adds (or replaces) a token under `alias`.
    pub fn add_token(&mut self, alias: impl Into<String>, token: Token) {
        let alias = alias.into();
        self.tokens.retain(|(a, _)| *a != alias);
        self.tokens.push((alias, token));
    }

    /// The first token of `kind`.
    pub fn token_by_kind(&self, kind: &str) -> Option<&Token> {
        self.tokens.iter().map(|(_, t)| t).find(|t| t.kind == kind)
    }

    /// The first token of `kind` whose service is `service`.
    pub fn token(&self, kind: &str, service: &str) -> Option<&Token> {
        self.tokens
            .iter()
            .map(|(_, t)| t)
            .find(|t| t.kind == kind && t.service == service)
    }

    /// The AMRMToken (selected by kind; its service is usually empty).
    pub fn am_rm_token(&self) -> Result<&Token> {
        self.token_by_kind(AM_RM_TOKEN_KIND)
            .ok_or_else(|| Error::MissingToken {
                kind: AM_RM_TOKEN_KIND.into(),
                service: None,
            })
    }

    /// The tokens as `KIND@service` words, comma-separated (`none` without any), for logs:
    /// never a byte of an identifier or a password.
    pub fn token_summary(&self) -> String {
        let words: Vec<String> = self
            .tokens
            .iter()
            .map(|(_, t)| format!("{}@{}", t.kind, t.service))
            .collect();
        if words.is_empty() {
            "none".to_string()
        } else {
            words.join(",")
        }
    }

    /// A copy without the AMRMToken, for handing to worker containers.
    pub fn without_am_rm_token(&self) -> Credentials {
        Credentials {
            tokens: self
                .tokens
                .iter()
                .filter(|(_, t)| t.kind != AM_RM_TOKEN_KIND)
                .cloned()
                .collect(),
            secrets: self.secrets.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Credentials {
        let mut c = Credentials::default();
        c.add_token(
            "",
            Token {
                identifier: vec![0, 1, 2, 200],
                password: vec![9; 20],
                kind: AM_RM_TOKEN_KIND.into(),
                service: String::new(),
            },
        );
        c.add_token(
            "hdfs",
            Token {
                identifier: vec![5; 300],
                password: b"pw".to_vec(),
                kind: HDFS_DELEGATION_TOKEN_KIND.into(),
                service: "127.0.0.1:9000".into(),
            },
        );
        c.secrets.push(("filex.secret".into(), b"s3cr3t".to_vec()));
        c
    }

    #[test]
    fn writable_round_trip() {
        let c = sample();
        let bytes = c.encode(Format::Writable);
        assert_eq!(&bytes[..5], b"HDTS\0");
        assert_eq!(Credentials::decode(&bytes).expect("decode"), c);
    }

    #[test]
    fn protobuf_round_trip() {
        let c = sample();
        let bytes = c.encode(Format::Protobuf);
        assert_eq!(&bytes[..5], b"HDTS\x01");
        assert_eq!(Credentials::decode(&bytes).expect("decode"), c);
    }

    #[test]
    fn writable_known_bytes() {
        // One token, alias "a", id [1], pw [2], kind "K", service "S", no secrets.
        let bytes = b"HDTS\x00\x01\x01a\x01\x01\x01\x02\x01K\x01S\x00";
        let c = Credentials::decode(bytes).expect("decode");
        assert_eq!(c.tokens.len(), 1);
        let t = c.token("K", "S").expect("lookup");
        assert_eq!(t.identifier, vec![1]);
        assert_eq!(t.password, vec![2]);
        assert_eq!(c.encode(Format::Writable), bytes.to_vec());
    }

    #[test]
    fn lookup_and_strip() {
        let c = sample();
        assert!(c.am_rm_token().is_ok());
        assert!(c
            .token(HDFS_DELEGATION_TOKEN_KIND, "127.0.0.1:9000")
            .is_some());
        assert!(c.token(HDFS_DELEGATION_TOKEN_KIND, "other:1").is_none());
        assert_eq!(
            c.token_summary(),
            "YARN_AM_RM_TOKEN@,HDFS_DELEGATION_TOKEN@127.0.0.1:9000"
        );
        assert_eq!(Credentials::default().token_summary(), "none");
        let stripped = c.without_am_rm_token();
        assert!(stripped.am_rm_token().is_err());
        assert_eq!(stripped.tokens.len(), 1);
    }

    #[test]
    fn garbage_is_error_not_panic() {
        assert!(Credentials::decode(b"HDT").is_err());
        assert!(Credentials::decode(b"XXXX\0").is_err());
        assert!(Credentials::decode(b"HDTS\x07").is_err());
        assert!(Credentials::decode(b"HDTS\x00\x05\x01a").is_err());
        let full = sample().encode(Format::Writable);
        for cut in 5..full.len() - 1 {
            let _ = Credentials::decode(&full[..cut]);
        }
    }

    #[test]
    fn file_round_trip() {
        let dir = std::env::temp_dir().join(format!("filex-yarn-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("tokens");
        sample().write_file(&p, Format::Writable).expect("write");
        assert_eq!(Credentials::read_file(&p).expect("read"), sample());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
