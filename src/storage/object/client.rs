//! A small blocking S3 client: the handful of calls filex needs, each signed with SigV4,
//! with a per-request timeout and retries (exponential backoff, full jitter) on transient
//! faults only. A retried request re-sends the same buffered bytes, so a retry can never
//! produce different content.

use std::io::Read;
use std::time::Duration;

use md5::{Digest as _, Md5};
use ureq::http;

use super::config::{PartChecksum, ResolvedConfig};
use super::sigv4::{self, SignRequest, EMPTY_SHA256};
use super::ObjectError;

/// First backoff and its cap.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(8);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest XML answer we read into memory.
const MAX_XML_BYTES: u64 = 8 << 20;

/// One request: method, key (empty: the bucket), raw query pairs, body.
pub struct Call<'a> {
    pub op: &'static str,
    pub method: &'static str,
    pub key: &'a str,
    pub query: Vec<(String, String)>,
    pub body: &'a [u8],
    /// Hex SHA-256 of `body` when already known.
    pub body_sha256: Option<String>,
    /// Base64 MD5 of `body` for `Content-MD5`, when wanted.
    pub content_md5: Option<String>,
    /// Extra headers, signed.
    pub headers: Vec<(String, String)>,
}

impl<'a> Call<'a> {
    pub fn new(op: &'static str, method: &'static str, key: &'a str) -> Self {
        Call {
            op,
            method,
            key,
            query: Vec::new(),
            body: &[],
            body_sha256: None,
            content_md5: None,
            headers: Vec::new(),
        }
    }
    pub fn query(mut self, k: &str, v: &str) -> Self {
        self.query.push((k.to_string(), v.to_string()));
        self
    }
}

/// A successful (2xx) response with its body read (except for streaming reads).
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What one attempt ended in.
#[derive(Debug)]
pub enum Fault {
    /// No HTTP answer: connection refused or reset, timeout, broken framing.
    Transport(String),
    /// An HTTP error answer, with S3's error code when the body had one.
    Status {
        status: u16,
        code: String,
        message: String,
    },
}

impl Fault {
    /// Whether trying the same request again may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Fault::Transport(_) => true,
            Fault::Status { status, code, .. } => is_transient_status(*status, code),
        }
    }
}

/// Retry classification of an S3 error answer.
pub fn is_transient_status(status: u16, code: &str) -> bool {
    const TRANSIENT_CODES: &[&str] = &[
        "SlowDown",
        "RequestTimeout",
        "InternalError",
        "ServiceUnavailable",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequests",
        // The bytes arrived damaged: sending the same buffered bytes again is the cure.
        "BadDigest",
        "XAmzContentSHA256Mismatch",
    ];
    if TRANSIENT_CODES.contains(&code) {
        return true;
    }
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

fn transport_is_transient(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::Protocol(_)
            | ureq::Error::ConnectionFailed
    )
}

/// The text between `<tag>` and `</tag>` (first occurrence), XML entities decoded.
pub fn xml_tag(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    Some(xml_unescape(&xml[start..end]))
}

/// Every `<tag>…</tag>` block's inner text.
pub fn xml_blocks<'x>(xml: &'x str, tag: &str) -> Vec<&'x str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(s) = rest.find(&open) {
        let after = &rest[s + open.len()..];
        match after.find(&close) {
            Some(e) => {
                out.push(&after[..e]);
                rest = &after[e + close.len()..];
            }
            None => break,
        }
    }
    out
}

fn xml_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#34;", "\"")
        .replace("&amp;", "&")
}

/// Escapes text for an XML element.
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Base64 MD5 and hex SHA-256 of `data`.
pub fn digests(data: &[u8]) -> ([u8; 16], String) {
    let md5: [u8; 16] = Md5::digest(data).into();
    (md5, sigv4::sha256_hex(data))
}

/// The client of one bucket.
pub struct S3Client {
    agent: ureq::Agent,
    pub cfg: ResolvedConfig,
    pub bucket: String,
}

impl S3Client {
    pub fn new(cfg: ResolvedConfig, bucket: String) -> S3Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_per_call(Some(cfg.timeout))
            .user_agent(concat!("filex/", env!("CARGO_PKG_VERSION")))
            .max_idle_connections_per_host(cfg.concurrency.max(2) * 2)
            .build()
            .into();
        S3Client { agent, cfg, bucket }
    }

    /// `s3://bucket/key`, for messages.
    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, key)
    }

    fn build<'a>(&self, call: &Call<'a>) -> Result<http::Request<&'a [u8]>, String> {
        let (host, path) = self.cfg.endpoint.locate(&self.bucket, call.key);
        let payload = match &call.body_sha256 {
            Some(h) => h.clone(),
            None if call.body.is_empty() => EMPTY_SHA256.to_string(),
            None => sigv4::sha256_hex(call.body),
        };
        let amz_date = sigv4::amz_date_now();
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), host),
            ("x-amz-content-sha256".into(), payload.clone()),
            ("x-amz-date".into(), amz_date.clone()),
        ];
        if let Some(md5) = &call.content_md5 {
            headers.push(("content-md5".into(), md5.clone()));
        }
        if let Some(tok) = &self.cfg.credentials.session_token {
            headers.push(("x-amz-security-token".into(), tok.expose().to_string()));
        }
        headers.extend(call.headers.iter().cloned());
        let auth = sigv4::authorization(
            &self.cfg.credentials,
            &self.cfg.region,
            &amz_date,
            &SignRequest {
                method: call.method,
                path: &path,
                query: &call.query,
                headers: &headers,
                payload_sha256: &payload,
            },
        );
        let query = sigv4::canonical_query(&call.query);
        let uri = if query.is_empty() {
            format!("{}://{}{}", self.cfg.endpoint.scheme, headers[0].1, path)
        } else {
            format!(
                "{}://{}{}?{}",
                self.cfg.endpoint.scheme, headers[0].1, path, query
            )
        };
        let mut b = http::Request::builder().method(call.method).uri(uri);
        for (k, v) in headers.iter().skip(1) {
            b = b.header(k.as_str(), v.as_str());
        }
        b = b.header("authorization", auth);
        b.body(call.body).map_err(|e| e.to_string())
    }

    fn attempt(&self, call: &Call<'_>) -> Result<http::Response<ureq::Body>, Fault> {
        let req = self.build(call).map_err(|e| Fault::Status {
            status: 0,
            code: "InvalidRequest".into(),
            message: e,
        })?;
        match self.agent.run(req) {
            Ok(resp) => Ok(resp),
            Err(e) if transport_is_transient(&e) => Err(Fault::Transport(e.to_string())),
            Err(e) => Err(Fault::Status {
                status: 0,
                code: "ClientError".into(),
                message: e.to_string(),
            }),
        }
    }

    fn status_fault(&self, resp: http::Response<ureq::Body>) -> Fault {
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        let text = body
            .with_config()
            .limit(MAX_XML_BYTES)
            .read_to_string()
            .unwrap_or_default();
        let code = xml_tag(&text, "Code").unwrap_or_else(|| match status {
            403 => "AccessDenied".into(),
            404 => "NotFound".into(),
            _ => format!("HTTP{status}"),
        });
        let message = xml_tag(&text, "Message").unwrap_or_default();
        Fault::Status {
            status,
            code,
            message,
        }
    }

    /// Sleeps the backoff before attempt `attempt + 1`.
    fn backoff(attempt: u32) {
        let exp = BACKOFF_BASE.saturating_mul(1u32 << attempt.min(16));
        let cap = exp.min(BACKOFF_CAP);
        // Full jitter, never below a tenth of the step.
        let ms = cap.as_millis() as u64;
        let sleep = fastrand::u64(ms / 10..=ms.max(1));
        std::thread::sleep(Duration::from_millis(sleep));
    }

    /// Runs `call` with retries; `check` may turn a 2xx into a fault (S3 can answer 200
    /// with an error body, e.g. CompleteMultipartUpload).
    pub fn execute(&self, call: &Call<'_>) -> Result<Reply, ObjectError> {
        self.execute_with(call, |_| Ok(()))
    }

    /// As [`execute`](Self::execute), with a check of the 2xx reply.
    pub fn execute_with(
        &self,
        call: &Call<'_>,
        check: impl Fn(&Reply) -> Result<(), Fault>,
    ) -> Result<Reply, ObjectError> {
        let max = self.cfg.max_attempts;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let fault = match self.attempt(call) {
                Ok(resp) if resp.status().is_success() => {
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    let body = if call.method == "HEAD" {
                        Ok(Vec::new())
                    } else {
                        resp.into_body()
                            .with_config()
                            .limit(MAX_XML_BYTES)
                            .read_to_vec()
                    };
                    match body {
                        Ok(body) => {
                            let reply = Reply {
                                status,
                                headers,
                                body,
                            };
                            match check(&reply) {
                                Ok(()) => return Ok(reply),
                                Err(f) => f,
                            }
                        }
                        Err(e) => Fault::Transport(format!("reading the answer: {e}")),
                    }
                }
                Ok(resp) => self.status_fault(resp),
                Err(f) => f,
            };
            if fault.is_transient() && attempt < max {
                tracing::warn!(
                    op = call.op,
                    bucket = %self.bucket,
                    key = call.key,
                    attempt,
                    fault = %describe_fault(&fault),
                    "transient fault, retrying"
                );
                Self::backoff(attempt);
                continue;
            }
            return Err(self.error(call, fault, attempt));
        }
    }

    /// Streams `key`'s bytes into `sink`; `sink(None)` starts (or, on a retry, restarts)
    /// the stream.
    pub fn get_stream(
        &self,
        key: &str,
        mut sink: impl FnMut(Option<&[u8]>),
    ) -> Result<u64, ObjectError> {
        let call = Call::new("GetObject", "GET", key);
        let mut attempt = 0;
        loop {
            attempt += 1;
            sink(None);
            let fault = match self.attempt(&call) {
                Ok(resp) if resp.status().is_success() => {
                    let mut reader = resp.into_body().into_reader();
                    let mut buf = vec![0u8; 256 << 10];
                    let mut total = 0u64;
                    let res = loop {
                        match reader.read(&mut buf) {
                            Ok(0) => break Ok(total),
                            Ok(n) => {
                                sink(Some(&buf[..n]));
                                total += n as u64;
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(e) => break Err(Fault::Transport(e.to_string())),
                        }
                    };
                    match res {
                        Ok(n) => return Ok(n),
                        Err(f) => f,
                    }
                }
                Ok(resp) => self.status_fault(resp),
                Err(f) => f,
            };
            if fault.is_transient() && attempt < self.cfg.max_attempts {
                Self::backoff(attempt);
                continue;
            }
            return Err(self.error(&call, fault, attempt));
        }
    }

    /// A clear error for a final fault, naming bucket and key and, for the usual
    /// configuration mistakes, what to check.
    pub fn error(&self, call: &Call<'_>, fault: Fault, attempts: u32) -> ObjectError {
        let creds = &self.cfg.credentials;
        let endpoint = format!(
            "{}://{}",
            self.cfg.endpoint.scheme, self.cfg.endpoint.authority
        );
        let (status, code, message) = match fault {
            Fault::Transport(m) => (None, "Transport".to_string(), m),
            Fault::Status {
                status,
                code,
                message,
            } => (Some(status).filter(|s| *s != 0), code, message),
        };
        let hint = match code.as_str() {
            "InvalidAccessKeyId" | "NotSignedUp" => format!(
                "access key id '{}' ({}) is not known to {endpoint}",
                creds.access_key_id, self.cfg.credential_source
            ),
            "SignatureDoesNotMatch" => format!(
                "the signature was rejected: wrong secret access key for '{}' ({}), \
                 or a region other than '{}' expected by {endpoint}",
                creds.access_key_id, self.cfg.credential_source, self.cfg.region
            ),
            "NoSuchBucket" => format!("bucket '{}' does not exist at {endpoint}", self.bucket),
            "AccessDenied" | "AllAccessDisabled" => format!(
                "access denied to '{}' for '{}' ({})",
                self.bucket, creds.access_key_id, self.cfg.credential_source
            ),
            "PermanentRedirect"
            | "AuthorizationHeaderMalformed"
            | "IllegalLocationConstraintException" => {
                format!(
                    "bucket '{}' is not in region '{}' at {endpoint}: set output.store.region \
                     (or AWS_REGION) and the region's endpoint",
                    self.bucket, self.cfg.region
                )
            }
            "ExpiredToken" | "InvalidToken" => {
                "the session token (AWS_SESSION_TOKEN) has expired or is invalid".to_string()
            }
            "RequestTimeTooSkewed" => "this machine's clock is off by more than 15 minutes".into(),
            _ => String::new(),
        };
        ObjectError::Request {
            op: call.op,
            url: self.url(call.key),
            status,
            code,
            message,
            hint,
            attempts,
        }
    }

    /// A part or PUT body's `Content-MD5`, if configured.
    pub fn content_md5(&self, md5: &[u8; 16]) -> Option<String> {
        use base64::Engine as _;
        match self.cfg.checksum {
            PartChecksum::Md5 => Some(base64::engine::general_purpose::STANDARD.encode(md5)),
            PartChecksum::None => None,
        }
    }
}

fn describe_fault(f: &Fault) -> String {
    match f {
        Fault::Transport(m) => format!("transport: {m}"),
        Fault::Status {
            status,
            code,
            message,
        } => format!("HTTP {status} {code} {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_classification() {
        assert!(is_transient_status(500, "InternalError"));
        assert!(is_transient_status(503, "SlowDown"));
        assert!(is_transient_status(400, "RequestTimeout"));
        assert!(is_transient_status(400, "BadDigest"));
        assert!(is_transient_status(429, "Whatever"));
        assert!(is_transient_status(502, ""));
        assert!(!is_transient_status(403, "InvalidAccessKeyId"));
        assert!(!is_transient_status(403, "SignatureDoesNotMatch"));
        assert!(!is_transient_status(403, "AccessDenied"));
        assert!(!is_transient_status(404, "NoSuchBucket"));
        assert!(!is_transient_status(404, "NoSuchUpload"));
        assert!(!is_transient_status(400, "EntityTooSmall"));
        assert!(Fault::Transport("connection reset".into()).is_transient());
        assert!(!Fault::Status {
            status: 0,
            code: "ClientError".into(),
            message: "bad certificate".into()
        }
        .is_transient());
    }

    #[test]
    fn xml_helpers() {
        let x = "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code>\
                 <Message>The bucket &amp; co</Message></Error>";
        assert_eq!(xml_tag(x, "Code").as_deref(), Some("NoSuchBucket"));
        assert_eq!(xml_tag(x, "Message").as_deref(), Some("The bucket & co"));
        assert_eq!(xml_tag(x, "Key"), None);
        let l = "<R><Upload><Key>a</Key></Upload><Upload><Key>b&lt;</Key></Upload></R>";
        let keys: Vec<String> = xml_blocks(l, "Upload")
            .iter()
            .filter_map(|b| xml_tag(b, "Key"))
            .collect();
        assert_eq!(keys, vec!["a".to_string(), "b<".to_string()]);
        assert_eq!(xml_escape("a&b<c"), "a&amp;b&lt;c");
    }
}
