//! Hadoop's S3A keys, as users of Hadoop already set them in the site files or with `-D`:
//! `fs.s3a.access.key`, `fs.s3a.secret.key`, `fs.s3a.session.token`, `fs.s3a.endpoint`,
//! `fs.s3a.endpoint.region` and `fs.s3a.path.style.access`, each of them also per bucket as
//! `fs.s3a.bucket.<bucket>.<key>` (which wins, as in S3A). They are read from the effective
//! [`yarn::Config`]; the precedence against the job file and the environment is in
//! `config.rs`. S3A's other keys (credential providers, encryption, committers) mean nothing
//! here and are ignored.

use yarn::Config;

use super::config::{Credentials, HadoopDefaults, Secret};
use super::ObjectError;

/// Every S3A key starts with this.
pub const PREFIX: &str = "fs.s3a.";
/// Per-bucket keys: `fs.s3a.bucket.<bucket>.<key>`.
pub const BUCKET_PREFIX: &str = "fs.s3a.bucket.";
/// The keys read, without [`PREFIX`].
pub const ACCESS_KEY: &str = "access.key";
pub const SECRET_KEY: &str = "secret.key";
pub const SESSION_TOKEN: &str = "session.token";
pub const ENDPOINT: &str = "endpoint";
pub const ENDPOINT_REGION: &str = "endpoint.region";
pub const PATH_STYLE_ACCESS: &str = "path.style.access";
/// Whether an endpoint written without a scheme means `https` (S3A's default) or `http`.
pub const SSL_ENABLED: &str = "connection.ssl.enabled";
/// S3A keys that hold secrets besides the credentials (server-side encryption keys).
const OTHER_SECRETS: &[&str] = &["encryption.key", "server-side-encryption.key"];

/// Whether `key` is an S3A key holding a secret (credentials, encryption keys, anything
/// named like a secret or a password), for any bucket. Such keys never leave this process
/// in a configuration file: the credentials travel as secrets of the container credentials.
pub fn is_secret_key(key: &str) -> bool {
    let Some(rest) = key.strip_prefix(PREFIX) else {
        return false;
    };
    let name = match rest.strip_prefix("bucket.") {
        // `bucket.<b>.<name>`: bucket names have no dots in S3A's per-bucket syntax, but be
        // generous and test the name against every suffix.
        Some(per_bucket) => per_bucket,
        None => rest,
    };
    let lower = name.to_ascii_lowercase();
    [ACCESS_KEY, SECRET_KEY, SESSION_TOKEN]
        .iter()
        .chain(OTHER_SECRETS)
        .any(|s| lower == *s || lower.ends_with(&format!(".{s}")))
        || lower.contains("secret")
        || lower.contains("password")
}

/// `conf` without the keys [`is_secret_key`] selects: what may be written to a file other
/// processes read (the staged `core-site.xml`, the worker processes' `HADOOP_CONF_DIR`).
pub fn without_secrets(conf: &Config) -> Config {
    conf.without(is_secret_key)
}

/// The most specific non-empty value of `name` for `bucket`, with the key it came from.
fn lookup(conf: &Config, bucket: &str, name: &str) -> Option<(String, String)> {
    [
        format!("{BUCKET_PREFIX}{bucket}.{name}"),
        format!("{PREFIX}{name}"),
    ]
    .into_iter()
    .find_map(|key| {
        let v = conf.get(&key)?.trim().to_string();
        (!v.is_empty()).then_some((key, v))
    })
}

/// What the configuration says about `bucket`. Credentials are taken as a unit from the
/// most specific level that names an access or secret key (the bucket's, else the base
/// keys); one without the other is an error naming both keys.
pub fn defaults_for(conf: &Config, bucket: &str) -> Result<HadoopDefaults, ObjectError> {
    let endpoint = lookup(conf, bucket, ENDPOINT).map(|(_, v)| {
        if v.contains("://") {
            v
        } else {
            let ssl = lookup(conf, bucket, SSL_ENABLED)
                .map(|(_, v)| !v.eq_ignore_ascii_case("false"))
                .unwrap_or(true);
            format!("{}://{v}", if ssl { "https" } else { "http" })
        }
    });
    let region = lookup(conf, bucket, ENDPOINT_REGION).map(|(_, v)| v);
    // `false` is Hadoop's default (and spelt out in site files that list every default): it
    // leaves filex's own default, path style for IP-address and localhost endpoints.
    let path_style = lookup(conf, bucket, PATH_STYLE_ACCESS)
        .filter(|(_, v)| v.eq_ignore_ascii_case("true"))
        .map(|_| true);
    let mut credentials = None;
    for prefix in [format!("{BUCKET_PREFIX}{bucket}."), PREFIX.to_string()] {
        let get = |name: &str| {
            let key = format!("{prefix}{name}");
            let v = conf.get(&key).map(|v| v.trim().to_string());
            (key, v.filter(|v| !v.is_empty()))
        };
        let (id_key, id) = get(ACCESS_KEY);
        let (secret_key, secret) = get(SECRET_KEY);
        match (id, secret) {
            (None, None) => continue,
            (Some(id), Some(secret)) => {
                credentials = Some((
                    Credentials {
                        access_key_id: id,
                        secret_access_key: Secret::new(secret),
                        session_token: get(SESSION_TOKEN).1.map(Secret::new),
                    },
                    id_key,
                ));
                break;
            }
            _ => {
                return Err(ObjectError::Credentials(format!(
                    "{id_key} and {secret_key} must be set together"
                )))
            }
        }
    }
    Ok(HadoopDefaults {
        endpoint,
        region,
        path_style,
        credentials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(pairs: &[(&str, &str)]) -> Config {
        let mut c = Config::defaults();
        for (k, v) in pairs {
            c.set(*k, *v);
        }
        c
    }

    #[test]
    fn per_bucket_keys_win_and_credentials_come_as_a_unit() {
        let c = conf(&[
            ("fs.s3a.access.key", "BASE"),
            ("fs.s3a.secret.key", "bsecret"),
            ("fs.s3a.session.token", "btoken"),
            ("fs.s3a.endpoint", "minio.example:9000"),
            ("fs.s3a.bucket.logs.access.key", "LOGS"),
            ("fs.s3a.bucket.logs.secret.key", "lsecret"),
            ("fs.s3a.bucket.logs.endpoint", "http://127.0.0.1:9000"),
            ("fs.s3a.bucket.logs.endpoint.region", "cn-north-1"),
        ]);
        let logs = defaults_for(&c, "logs").unwrap();
        let (creds, key) = logs.credentials.unwrap();
        assert_eq!(creds.access_key_id, "LOGS");
        assert_eq!(creds.secret_access_key.expose(), "lsecret");
        assert!(
            creds.session_token.is_none(),
            "the base session token does not join the bucket's keys"
        );
        assert_eq!(key, "fs.s3a.bucket.logs.access.key");
        assert_eq!(logs.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(logs.region.as_deref(), Some("cn-north-1"));

        let other = defaults_for(&c, "other").unwrap();
        let (creds, key) = other.credentials.unwrap();
        assert_eq!(creds.access_key_id, "BASE");
        assert_eq!(creds.session_token.unwrap().expose(), "btoken");
        assert_eq!(key, "fs.s3a.access.key");
        assert_eq!(
            other.endpoint.as_deref(),
            Some("https://minio.example:9000"),
            "no scheme: https, S3A's default"
        );
        assert_eq!(other.region, None);
    }

    #[test]
    fn endpoint_scheme_path_style_and_half_credentials() {
        let c = conf(&[
            ("fs.s3a.endpoint", "10.0.0.1:9000"),
            ("fs.s3a.connection.ssl.enabled", "false"),
            ("fs.s3a.path.style.access", "false"),
        ]);
        let d = defaults_for(&c, "b").unwrap();
        assert_eq!(d.endpoint.as_deref(), Some("http://10.0.0.1:9000"));
        assert_eq!(d.path_style, None, "false is Hadoop's default: no opinion");
        assert!(d.credentials.is_none());
        let c = conf(&[("fs.s3a.bucket.b.path.style.access", "TRUE")]);
        assert_eq!(defaults_for(&c, "b").unwrap().path_style, Some(true));
        let c = conf(&[("fs.s3a.bucket.b.access.key", "ID")]);
        let err = defaults_for(&c, "b").unwrap_err().to_string();
        assert!(
            err.contains("fs.s3a.bucket.b.secret.key"),
            "names the missing key: {err}"
        );
    }

    #[test]
    fn secret_keys_are_recognised() {
        for k in [
            "fs.s3a.access.key",
            "fs.s3a.secret.key",
            "fs.s3a.session.token",
            "fs.s3a.bucket.logs.secret.key",
            "fs.s3a.bucket.logs.access.key",
            "fs.s3a.bucket.logs.session.token",
            "fs.s3a.server-side-encryption.key",
            "fs.s3a.encryption.key",
            "fs.s3a.bucket.b.encryption.key",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in [
            "fs.s3a.endpoint",
            "fs.s3a.bucket.logs.endpoint",
            "fs.s3a.path.style.access",
            "fs.s3a.delegation.token.binding",
            "fs.defaultFS",
            "hadoop.security.authentication",
        ] {
            assert!(!is_secret_key(k), "{k}");
        }
    }
}
