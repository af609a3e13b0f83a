//! Delegation tokens for an application on a Kerberized cluster
//! (`hadoop.security.authentication=kerberos`): `filex submit` asks every NameNode the job
//! touches and the ResourceManager for a token the RM may renew, and puts them in the AM
//! container's credentials; the NodeManagers localize the staged files with them and the AM
//! and workers read and write HDFS with them (hdfs-native finds them through
//! `HADOOP_TOKEN_FILE_LOCATION`). The RM renews them while the application runs and cancels
//! them when it ends. Tokens are secrets: they are only ever put in credentials, and what is
//! logged of them is their kind and service ([`Credentials::token_summary`]).

use anyhow::{Context, Result};
use yarn::{ApplicationClient, Config, Credentials, IpcOptions, NameNodeClient, Token};

use crate::job::Job;
use crate::settings;
use crate::storage::hdfs::client::mount_table;
use crate::storage::hdfs::conf::default_authority;
use crate::storage::hdfs::viewfs::default_fs_is_view;
use crate::storage::location::Location;

/// The `hdfs://` authorities (`host:port` or name service) whose NameNodes the job touches:
/// the default file system's (staging and the executable cache live there), those of every
/// source, the output and scratch, every NameNode behind a `viewfs://` view the job uses,
/// and those of [`settings::JOB_HDFS_SERVERS`]. Sorted, once each.
pub fn hdfs_authorities(job: &Job, conf: &Config) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let default_fs = |out: &mut Vec<String>| -> Result<()> {
        if default_fs_is_view(conf) {
            out.extend(mount_table(None)?.authorities());
        } else if let Some(a) = default_authority(conf) {
            out.push(a);
        }
        Ok(())
    };
    default_fs(&mut out)?;
    let locations = job
        .sources
        .iter()
        .map(|s| &s.shards.root)
        .chain([&job.output.spec.root])
        .chain(job.scratch.as_ref());
    for location in locations {
        match location {
            Location::Hdfs {
                authority: Some(a), ..
            } => out.push(a.clone()),
            Location::Hdfs {
                authority: None, ..
            } => default_fs(&mut out)?,
            Location::ViewFs { table, .. } => {
                out.extend(mount_table(table.as_deref())?.authorities())
            }
            Location::Local(_) | Location::Object { .. } => {}
        }
    }
    out.extend(settings::hdfs_servers(conf)?);
    out.sort();
    out.dedup();
    Ok(out)
}

/// Fetches an HDFS delegation token from each NameNode of `authorities` and one from the
/// ResourceManager `rm`, all renewable by the RM ([`yarn::delegation::renewer`]), over
/// Kerberos with `options.kerberos`. Each HDFS token is stored under every service it is
/// looked up by ([`yarn::delegation::hdfs_services`]).
pub async fn fetch(
    conf: &Config,
    authorities: &[String],
    options: &IpcOptions,
    rm: &ApplicationClient,
) -> Result<Credentials> {
    let renewer = yarn::delegation::renewer(conf)
        .context("cannot get delegation tokens for the application")?;
    let mut creds = Credentials::default();
    for authority in authorities {
        let uri = format!("hdfs://{authority}");
        let what = || format!("cannot get an HDFS delegation token from {uri}");
        let nn =
            NameNodeClient::with_options(conf, Some(&uri), options.clone()).with_context(what)?;
        let token = nn.get_delegation_token(&renewer).await.with_context(what)?;
        for service in yarn::delegation::hdfs_services(conf, authority).with_context(what)? {
            add(
                &mut creds,
                Token {
                    service,
                    ..token.clone()
                },
            );
        }
    }
    let token = rm.get_delegation_token(&renewer).await.with_context(|| {
        format!(
            "cannot get a delegation token from the ResourceManager {}",
            rm.addresses().join(",")
        )
    })?;
    add(&mut creds, token);
    Ok(creds)
}

/// Adds `token` under its service (Hadoop's alias for delegation tokens).
fn add(creds: &mut Credentials, token: Token) {
    creds.add_token(format!("{}:{}", token.kind, token.service), token);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(kind: &str, service: &str) -> Token {
        Token {
            identifier: vec![1, 2, 3],
            password: b"secret-bytes".to_vec(),
            kind: kind.into(),
            service: service.into(),
        }
    }

    #[test]
    fn tokens_are_stored_by_kind_and_service() {
        let mut c = Credentials::default();
        add(&mut c, token("HDFS_DELEGATION_TOKEN", "127.0.0.1:9000"));
        add(&mut c, token("HDFS_DELEGATION_TOKEN", "nn:9000"));
        add(&mut c, token("RM_DELEGATION_TOKEN", "127.0.0.1:8032"));
        let text = c.token_summary();
        assert_eq!(
            text,
            "HDFS_DELEGATION_TOKEN@127.0.0.1:9000,HDFS_DELEGATION_TOKEN@nn:9000,RM_DELEGATION_TOKEN@127.0.0.1:8032"
        );
        assert!(!text.contains("secret-bytes"));
        // Adding again under the same kind and service replaces.
        add(&mut c, token("RM_DELEGATION_TOKEN", "127.0.0.1:8032"));
        assert_eq!(c.tokens.len(), 3);
    }
}
