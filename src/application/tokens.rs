//! Delegation tokens for an application on a Kerberized cluster
//! (`hadoop.security.authentication=kerberos`): `filex submit` asks every NameNode the job
//! touches and the ResourceManager for a token the RM may renew, and puts them in the AM
//! container's credentials; the NodeManagers localize the staged files with them and the AM
//! and workers read and write HDFS with them (hdfs-native finds them through
//! `HADOOP_TOKEN_FILE_LOCATION`). The RM renews them while the application runs, up to
//! their maximum lifetime, and cancels them when it ends.
//!
//! With `filex submit --keytab`, the keytab is shipped to the AM alone and the AM goes
//! further ([`Renewal`]), as Spark's `HadoopDelegationTokenManager` does: it logs in from the
//! keytab, gets HDFS tokens of its own at once and again after [`yarn::delegation::REFRESH_RATIO`] of their
//! life, hands each generation to the workers (new containers in their credentials, running
//! workers over the coordinator's channel) and cancels them all when the job ends. Nobody
//! renews those: each lives one renew interval, and the next generation comes before.
//! Tokens are secrets: they are only ever put in credentials (or sealed on the workers'
//! channel), and what is logged of them is their kind and service
//! ([`Credentials::token_summary`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use parking_lot::{Condvar, Mutex};
use yarn::{
    ApplicationClient, Config, Credentials, IpcOptions, KerberosCredentials, NameNodeClient, Token,
};

use super::spec::KeytabLogin;
use crate::cluster::remote::Coordinator;

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
        let (_, token) = hdfs_token(conf, authority, options, &renewer).await?;
        add_hdfs(&mut creds, conf, authority, &token)?;
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

/// A new HDFS delegation token from the NameNode of `authority` that `renewer` may renew,
/// with the client that got it.
async fn hdfs_token(
    conf: &Config,
    authority: &str,
    options: &IpcOptions,
    renewer: &str,
) -> Result<(NameNodeClient, Token)> {
    let uri = format!("hdfs://{authority}");
    let what = || format!("cannot get an HDFS delegation token from {uri}");
    let nn = NameNodeClient::with_options(conf, Some(&uri), options.clone()).with_context(what)?;
    let token = nn.get_delegation_token(renewer).await.with_context(what)?;
    Ok((nn, token))
}

/// Adds the HDFS token of `authority` under every service it is looked up by
/// ([`yarn::delegation::hdfs_services`]).
fn add_hdfs(creds: &mut Credentials, conf: &Config, authority: &str, token: &Token) -> Result<()> {
    let services = yarn::delegation::hdfs_services(conf, authority)
        .with_context(|| format!("cannot name the services of hdfs://{authority}"))?;
    for service in services {
        add(
            creds,
            Token {
                service,
                ..token.clone()
            },
        );
    }
    Ok(())
}

/// Adds `token` under its service (Hadoop's alias for delegation tokens).
fn add(creds: &mut Credentials, token: Token) {
    creds.add_token(format!("{}:{}", token.kind, token.service), token);
}

/// How long to wait after a failed refresh before trying again.
const RETRY_WAIT: Duration = Duration::from_secs(10);
/// The shortest wait between two refreshes (tokens that expire at once are refreshed no
/// faster than this).
const MIN_REFRESH: Duration = Duration::from_secs(1);

/// The application master's refresh of delegation tokens with the submitter's keytab.
/// Dropping it stops the refresh; [`Renewal::finish`] also cancels what it got.
pub struct Renewal {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Shared {
    conf: Config,
    /// The `hdfs://` authorities the job touches ([`hdfs_authorities`]).
    authorities: Vec<String>,
    /// The AM's principal: it asks for the tokens and is their renewer.
    principal: String,
    options: IpcOptions,
    runtime: Arc<tokio::runtime::Runtime>,
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    /// The latest generation: its number (from 1) and tokens.
    generation: u64,
    current: Credentials,
    /// Every token got, with the authority of its NameNode, to cancel at the end.
    fetched: Vec<(String, Token)>,
    /// Where new generations go once the workers can be reached.
    sink: Option<Sink>,
    stopping: bool,
}

/// Where a new generation goes: the coordinator (running workers), the credentials new
/// worker containers get (`base` with the new tokens).
struct Sink {
    coordinator: Arc<Coordinator>,
    containers: Arc<Mutex<Vec<u8>>>,
    base: Credentials,
}

impl Renewal {
    /// Logs this process in from the localized keytab of `login` (its own HDFS clients too,
    /// [`crate::storage::hdfs::client::use_keytab`]: call it before any HDFS client exists),
    /// gets the first generation of tokens for the NameNodes `job` touches and starts the
    /// thread that gets the next ones.
    pub fn start(
        conf: &Config,
        job: &crate::job::Job,
        login: &KeytabLogin,
        runtime: &Arc<tokio::runtime::Runtime>,
    ) -> Result<Renewal> {
        let keytab = std::env::current_dir()
            .context("cannot find the container's working directory")?
            .join(&login.file);
        if !keytab.is_file() {
            anyhow::bail!(
                "the keytab {} shipped for {} is not in the container",
                keytab.display(),
                login.principal
            );
        }
        crate::storage::hdfs::client::use_keytab(&login.principal, &keytab)?;
        let shared = Arc::new(Shared {
            conf: conf.clone(),
            authorities: hdfs_authorities(job, conf)?,
            principal: login.principal.clone(),
            options: IpcOptions::from_config(conf)?.with_kerberos(KerberosCredentials::Keytab {
                principal: login.principal.clone(),
                keytab: PathBuf::from(&keytab),
            }),
            runtime: runtime.clone(),
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let first = shared.refresh().with_context(|| {
            format!(
                "cannot get delegation tokens as {} with the shipped keytab",
                login.principal
            )
        })?;
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("am-tokens".into())
                .spawn(move || shared.run(first))
                .context("cannot start the token refresh")?
        };
        Ok(Renewal {
            shared,
            thread: Some(thread),
        })
    }

    /// `creds` with the latest tokens in place of those of the same kind and service.
    pub fn with_current(&self, creds: &Credentials) -> Credentials {
        let mut out = creds.clone();
        for (alias, token) in &self.shared.state.lock().current.tokens {
            out.add_token(alias.clone(), token.clone());
        }
        out
    }

    /// From now on, hands every new generation to `coordinator` (the running workers) and
    /// puts it into `containers`, the credentials of new worker containers (`base` with the
    /// new tokens).
    pub fn deliver_to(
        &self,
        coordinator: Arc<Coordinator>,
        containers: Arc<Mutex<Vec<u8>>>,
        base: Credentials,
    ) {
        self.shared.state.lock().sink = Some(Sink {
            coordinator,
            containers,
            base,
        });
    }

    /// Stops the refresh and cancels every token it got (the RM cancels the client's).
    pub fn finish(mut self) {
        self.stop();
        let fetched = std::mem::take(&mut self.shared.state.lock().fetched);
        let shared = &self.shared;
        let mut cancelled = 0;
        for (authority, token) in &fetched {
            let uri = format!("hdfs://{authority}");
            let result =
                NameNodeClient::with_options(&shared.conf, Some(&uri), shared.options.clone())
                    .map_err(anyhow::Error::from)
                    .and_then(|nn| {
                        shared
                            .runtime
                            .block_on(nn.cancel_delegation_token(token))
                            .map_err(anyhow::Error::from)
                    });
            match result {
                Ok(()) => cancelled += 1,
                // One that expired already is gone anyway.
                Err(e) => {
                    tracing::debug!(namenode = %uri, error = %format!("{e:#}"), "could not cancel a delegation token")
                }
            }
        }
        tracing::info!(
            cancelled,
            of = fetched.len(),
            "delegation tokens of the AM cancelled"
        );
    }

    fn stop(&mut self) {
        self.shared.state.lock().stopping = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Renewal {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    /// Gets a new generation of tokens and hands it on; returns how long until the next.
    fn refresh(&self) -> Result<Duration> {
        let now = || jiff::Timestamp::now().as_millisecond();
        let mut tokens = Credentials::default();
        let mut expiries = Vec::new();
        let mut fetched = Vec::new();
        for authority in &self.authorities {
            let (nn, token) = self.runtime.block_on(hdfs_token(
                &self.conf,
                authority,
                &self.options,
                &self.principal,
            ))?;
            // Renewing it at once tells when it expires (the NameNode's renew interval);
            // nobody renews it later.
            let expiry = self
                .runtime
                .block_on(nn.renew_delegation_token(&token))
                .with_context(|| {
                    format!("cannot renew the delegation token of hdfs://{authority}")
                })?;
            expiries.push(expiry as i64);
            add_hdfs(&mut tokens, &self.conf, authority, &token)?;
            fetched.push((authority.clone(), token));
        }
        let delay = Duration::from_millis(yarn::delegation::refresh_delay_ms(now(), &expiries))
            .max(MIN_REFRESH);
        let mut state = self.state.lock();
        state.generation += 1;
        state.fetched.extend(fetched);
        for (alias, token) in &tokens.tokens {
            state.current.add_token(alias.clone(), token.clone());
        }
        let generation = state.generation;
        if let Some(sink) = &state.sink {
            let mut creds = sink.base.clone();
            for (alias, token) in &tokens.tokens {
                creds.add_token(alias.clone(), token.clone());
            }
            *sink.containers.lock() = creds.encode(yarn::credentials::Format::Writable);
            sink.coordinator
                .send_tokens(generation, &tokens)
                .context("cannot seal the delegation tokens for the workers")?;
        }
        drop(state);
        tracing::info!(
            generation,
            tokens = %tokens.token_summary(),
            next_in_s = delay.as_secs_f64(),
            "got delegation tokens with the keytab"
        );
        Ok(delay)
    }

    /// Refreshes after `delay`, and again after each refresh's own delay, until stopped.
    fn run(&self, mut delay: Duration) {
        loop {
            {
                let mut state = self.state.lock();
                let deadline = std::time::Instant::now() + delay;
                while !state.stopping && std::time::Instant::now() < deadline {
                    self.wake.wait_until(&mut state, deadline);
                }
                if state.stopping {
                    return;
                }
            }
            delay = match self.refresh() {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), retry_in_s = RETRY_WAIT.as_secs(), "cannot refresh the delegation tokens");
                    RETRY_WAIT
                }
            };
        }
    }
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
