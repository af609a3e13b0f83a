//! AWS Signature Version 4 for S3 requests (header-based, `AWS4-HMAC-SHA256`).
//!
//! Only what S3 needs: a canonical request from method, already-encoded path, query pairs,
//! the headers to sign and the payload hash; the signing key derived per day; the
//! `Authorization` header. Encoding follows RFC 3986 (unreserved characters kept, everything
//! else `%XX` upper-case); S3 paths are encoded once, `/` kept.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::config::Credentials;
use crate::calendar;
use crate::percent::{encode, unreserved};

type HmacSha256 = Hmac<Sha256>;

/// The SHA-256 of an empty payload, hex.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The signing key for `date` (`YYYYMMDD`), `region` and `service`.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// One request to sign. `path` is already URI-encoded; `query` pairs are raw (encoded
/// here); `headers` are the ones to sign (names any case), `host` included.
pub struct SignRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a [(String, String)],
    pub headers: &'a [(String, String)],
    pub payload_sha256: &'a str,
}

/// The canonical query string: pairs encoded, sorted by key then value.
pub fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (encode(k, unreserved), encode(v, unreserved)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Canonical request and the `;`-joined signed header names.
pub fn canonical_request(req: &SignRequest<'_>) -> (String, String) {
    let mut headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(k, v)| {
            let value = v.split_whitespace().collect::<Vec<_>>().join(" ");
            (k.to_ascii_lowercase(), value)
        })
        .collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let creq = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        req.path,
        canonical_query(req.query),
        canonical_headers,
        signed,
        req.payload_sha256
    );
    (creq, signed)
}

/// The `Authorization` header value for `req` at `amz_date` (`YYYYMMDDTHHMMSSZ`).
pub fn authorization(
    creds: &Credentials,
    region: &str,
    amz_date: &str,
    req: &SignRequest<'_>,
) -> String {
    let date = &amz_date[..amz_date.len().min(8)];
    let scope = format!("{date}/{region}/s3/aws4_request");
    let (creq, signed) = canonical_request(req);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha256_hex(creq.as_bytes())
    );
    let key = signing_key(creds.secret_access_key.expose(), date, region, "s3");
    let signature = hex::encode(hmac(&key, string_to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
        creds.access_key_id
    )
}

/// `YYYYMMDDTHHMMSSZ` for now.
pub fn amz_date_now() -> String {
    calendar::format_compact_utc(calendar::now_ms())
}

#[cfg(test)]
mod tests {
    use super::super::config::Secret;
    use super::*;

    fn example_creds(secret: &str) -> Credentials {
        Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: Secret::new(secret.into()),
            session_token: None,
        }
    }

    /// The derived-key example of the SigV4 documentation (IAM, 2015-08-30).
    #[test]
    fn signing_key_matches_published_example() {
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20150830",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            hex::encode(key),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }

    /// The S3 "GET Object" example of the SigV4 documentation: examplebucket, /test.txt,
    /// Range bytes=0-9, 2013-05-24.
    #[test]
    fn s3_get_object_example_signature() {
        let creds = example_creds("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        let headers = vec![
            (
                "Host".to_string(),
                "examplebucket.s3.amazonaws.com".to_string(),
            ),
            ("Range".to_string(), "bytes=0-9".to_string()),
            ("x-amz-content-sha256".to_string(), EMPTY_SHA256.to_string()),
            ("x-amz-date".to_string(), "20130524T000000Z".to_string()),
        ];
        let req = SignRequest {
            method: "GET",
            path: "/test.txt",
            query: &[],
            headers: &headers,
            payload_sha256: EMPTY_SHA256,
        };
        let auth = authorization(&creds, "us-east-1", "20130524T000000Z", &req);
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        // A changed byte anywhere changes the signature.
        let headers2 = vec![
            headers[0].clone(),
            ("Range".to_string(), "bytes=0-8".to_string()),
            headers[2].clone(),
            headers[3].clone(),
        ];
        let req2 = SignRequest {
            headers: &headers2,
            ..req
        };
        assert_ne!(
            authorization(&creds, "us-east-1", "20130524T000000Z", &req2),
            auth
        );
    }

    #[test]
    fn query_order() {
        let q = vec![
            ("uploadId".to_string(), "x+y/z".to_string()),
            ("partNumber".to_string(), "2".to_string()),
            ("uploads".to_string(), String::new()),
        ];
        assert_eq!(
            canonical_query(&q),
            "partNumber=2&uploadId=x%2By%2Fz&uploads="
        );
    }
}
