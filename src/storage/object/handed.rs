//! Object-store credentials handed to this process by the one that started it, as secrets of
//! a Hadoop credentials file: `filex submit` puts them in the AM container's credentials, the
//! AM in each worker container's, and `filex run --workers` in the token file of its worker
//! processes. Whoever reads that file [`install`]s them; from then on they are the only
//! credentials [`super::open_output`] uses (no environment, profile or site file lookup).
//! They never travel in argv, environment, configuration files or logs.

use parking_lot::Mutex;

use super::config::{Credentials, Secret};
use super::ObjectError;

/// Aliases of the secrets in the credentials file.
pub const ACCESS_KEY_ALIAS: &str = "filex.s3.access-key";
pub const SECRET_KEY_ALIAS: &str = "filex.s3.secret-key";
pub const SESSION_TOKEN_ALIAS: &str = "filex.s3.session-token";

/// `creds` as `(alias, bytes)` secrets of a credentials file.
pub fn to_secrets(creds: &Credentials) -> Vec<(String, Vec<u8>)> {
    let mut v = vec![
        (
            ACCESS_KEY_ALIAS.to_string(),
            creds.access_key_id.as_bytes().to_vec(),
        ),
        (
            SECRET_KEY_ALIAS.to_string(),
            creds.secret_access_key.expose().as_bytes().to_vec(),
        ),
    ];
    if let Some(t) = &creds.session_token {
        v.push((
            SESSION_TOKEN_ALIAS.to_string(),
            t.expose().as_bytes().to_vec(),
        ));
    }
    v
}

/// The credentials among `secrets`, if the file holds any; an access key without its secret
/// (or text that is not UTF-8) is an error.
pub fn from_secrets(secrets: &[(String, Vec<u8>)]) -> Result<Option<Credentials>, ObjectError> {
    let get = |alias: &str| -> Result<Option<String>, ObjectError> {
        secrets
            .iter()
            .find(|(a, _)| a == alias)
            .map(|(_, bytes)| {
                String::from_utf8(bytes.clone()).map_err(|_| {
                    ObjectError::Credentials(format!("the handed secret {alias} is not UTF-8 text"))
                })
            })
            .transpose()
    };
    match (get(ACCESS_KEY_ALIAS)?, get(SECRET_KEY_ALIAS)?) {
        (None, None) => Ok(None),
        (Some(id), Some(secret)) => Ok(Some(Credentials {
            access_key_id: id,
            secret_access_key: Secret::new(secret),
            session_token: get(SESSION_TOKEN_ALIAS)?.map(Secret::new),
        })),
        _ => Err(ObjectError::Credentials(format!(
            "the handed credentials hold only one of {ACCESS_KEY_ALIAS} and {SECRET_KEY_ALIAS}"
        ))),
    }
}

fn slot() -> &'static Mutex<Option<Credentials>> {
    static HANDED: Mutex<Option<Credentials>> = Mutex::new(None);
    &HANDED
}

/// Makes `creds` the credentials of every object store this process opens from now on
/// (`None` clears them).
pub fn install(creds: Option<Credentials>) {
    *slot().lock() = creds;
}

/// The installed credentials, if any.
pub fn installed() -> Option<Credentials> {
    slot().lock().clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_through_a_credentials_file() {
        let creds = Credentials {
            access_key_id: "AKID".into(),
            secret_access_key: Secret::new("s3cr3t".into()),
            session_token: Some(Secret::new("tok".into())),
        };
        let mut secrets = vec![("filex.worker.secret".to_string(), b"w".to_vec())];
        secrets.extend(to_secrets(&creds));
        for format in [
            yarn::credentials::Format::Writable,
            yarn::credentials::Format::Protobuf,
        ] {
            let file = yarn::Credentials {
                tokens: vec![],
                secrets: secrets.clone(),
            };
            let back = yarn::Credentials::decode(&file.encode(format)).unwrap();
            let got = from_secrets(&back.secrets).unwrap().unwrap();
            assert_eq!(got.access_key_id, "AKID");
            assert_eq!(got.secret_access_key.expose(), "s3cr3t");
            assert_eq!(
                got.session_token.map(|t| t.expose().to_string()),
                Some("tok".into())
            );
        }
        let no_token = Credentials {
            session_token: None,
            ..creds
        };
        let got = from_secrets(&to_secrets(&no_token)).unwrap().unwrap();
        assert!(got.session_token.is_none());
    }

    #[test]
    fn absent_half_and_garbled_secrets() {
        assert!(
            from_secrets(&[("filex.worker.secret".into(), b"w".to_vec())])
                .unwrap()
                .is_none()
        );
        assert!(from_secrets(&[(ACCESS_KEY_ALIAS.into(), b"A".to_vec())]).is_err());
        assert!(from_secrets(&[
            (ACCESS_KEY_ALIAS.into(), b"A".to_vec()),
            (SECRET_KEY_ALIAS.into(), vec![0xff, 0xfe]),
        ])
        .is_err());
    }
}
