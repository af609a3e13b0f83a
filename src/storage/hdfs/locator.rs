//! Block locations of a file, for task placement: first over NameNode RPC with the `yarn`
//! crate's [`yarn::NameNodeClient`] (`getBlockLocations`, which `hdfs-native` 0.14 fetches
//! but does not expose), else over WebHDFS ([`super::webhdfs`]) when the RPC client cannot be
//! built or its call fails. The RPC client speaks Kerberos on a secure cluster, with the
//! credentials of [`super::client::kerberos_credentials`] (WebHDFS: simple authentication
//! only). One [`Locator`] per NameNode for the process ([`of`]), beside the client cache of
//! [`super::client`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use super::client::{self, block_on, NameNode, RPC_TIMEOUT};
use super::locality::BlockHosts;
use super::webhdfs;

/// Asks the NameNode for whole files (`getBlockLocations(path, 0, length)`).
const WHOLE_FILE: u64 = i64::MAX as u64;

/// One entry of a located listing, with its blocks' hosts (none for a directory).
pub type LocatedFile = (yarn::LocatedEntry, Vec<BlockHosts>);

/// Why a located listing gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListFailure {
    /// The client's own configuration rules this NameNode out (none of the protection levels
    /// of `hadoop.rpc.protection` is offered). Java clients fail the same way; falling back to
    /// hdfs-native, which takes the strongest level offered whatever the setting, would
    /// ignore it, so callers report this.
    Refused(String),
    /// Anything else (no RPC client, a failed call): callers list without locations.
    Failed(String),
}

/// The locator of `nn` (created on first use, kept for the process).
pub fn of(nn: &NameNode) -> Arc<Locator> {
    static LOCATORS: OnceLock<Mutex<HashMap<String, Arc<Locator>>>> = OnceLock::new();
    LOCATORS
        .get_or_init(Default::default)
        .lock()
        .entry(nn.base_url.clone())
        .or_default()
        .clone()
}

/// The RPC client for block locations of one NameNode, built on first use.
#[derive(Default)]
pub struct Locator {
    rpc: OnceLock<Result<yarn::NameNodeClient, String>>,
    /// Set when an RPC exchange failed as a whole (not one file's answer): WebHDFS only from
    /// then on, instead of waiting for a broken client on every file.
    rpc_broken: AtomicBool,
}

impl Locator {
    fn rpc(&self, nn: &NameNode) -> Result<&yarn::NameNodeClient, String> {
        if self.rpc_broken.load(Ordering::Relaxed) {
            return Err("an earlier getBlockLocations exchange failed".into());
        }
        self.rpc
            .get_or_init(|| {
                let options = yarn::IpcOptions::from_config(&nn.config)
                    .map_err(|e| e.to_string())?
                    .with_kerberos(client::kerberos_credentials());
                yarn::NameNodeClient::with_options(&nn.config, Some(&nn.base_url), options)
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn over_rpc(&self, nn: &NameNode, path: &str) -> Result<Vec<BlockHosts>, String> {
        let mut one = self.blocks_many(nn, &[path.to_string()])?;
        one.pop().unwrap_or_else(|| Err("no answer".into()))
    }

    /// The blocks of each of `paths` over RPC, asked concurrently on the NameNode client's
    /// one connection, within one [`RPC_TIMEOUT`]. The outer error means no RPC at all.
    pub fn blocks_many(
        &self,
        nn: &NameNode,
        paths: &[String],
    ) -> Result<Vec<Result<Vec<BlockHosts>, String>>, String> {
        let rpc = self.rpc(nn)?;
        let calls = paths
            .iter()
            .map(|p| rpc.get_block_locations(p, 0, WHOLE_FILE));
        let answers = match block_on(RPC_TIMEOUT, futures::future::join_all(calls)) {
            Ok(Some(a)) => a,
            Ok(None) => {
                self.rpc_broken.store(true, Ordering::Relaxed);
                return Err(format!(
                    "getBlockLocations: no answer within {} s",
                    RPC_TIMEOUT.as_secs()
                ));
            }
            Err(f) => return Err(f.to_string()),
        };
        Ok(answers
            .into_iter()
            .map(|a| {
                a.map(|located| {
                    located
                        .blocks
                        .into_iter()
                        .filter(|b| !b.corrupt)
                        .map(|b| BlockHosts {
                            length: b.length,
                            hosts: b.hosts,
                        })
                        .collect()
                })
                .map_err(|e| e.to_string())
            })
            .collect())
    }

    /// The entries of the directory `path`, each file with its blocks, in one exchange
    /// per page (`getListing` with locations) instead of a listing plus one
    /// `getBlockLocations` per file. `Ok(None)`: no such path. See [`ListFailure`] for
    /// which failures the caller answers by listing without locations.
    pub fn list_located(
        &self,
        nn: &NameNode,
        path: &str,
    ) -> Result<Option<Vec<LocatedFile>>, ListFailure> {
        let rpc = self.rpc(nn).map_err(ListFailure::Failed)?;
        let listing = match block_on(RPC_TIMEOUT, rpc.list_located(path)) {
            Ok(Some(Ok(listing))) => listing,
            Ok(Some(Err(e))) if e.is_protection_mismatch() => {
                return Err(ListFailure::Refused(e.to_string()))
            }
            Ok(Some(Err(e))) => return Err(ListFailure::Failed(e.to_string())),
            Ok(None) => {
                self.rpc_broken.store(true, Ordering::Relaxed);
                return Err(ListFailure::Failed(format!(
                    "getListing: no answer within {} s",
                    RPC_TIMEOUT.as_secs()
                )));
            }
            Err(f) => return Err(ListFailure::Failed(f.to_string())),
        };
        Ok(listing.map(|entries| {
            entries
                .into_iter()
                .map(|mut e| {
                    let blocks = std::mem::take(&mut e.blocks)
                        .into_iter()
                        .filter(|b| !b.corrupt)
                        .map(|b| BlockHosts {
                            length: b.length,
                            hosts: b.hosts,
                        })
                        .collect();
                    (e, blocks)
                })
                .collect()
        }))
    }

    /// The blocks of `path` with their hosts; the error names both attempts.
    pub fn blocks(&self, nn: &NameNode, path: &str, user: &str) -> Result<Vec<BlockHosts>, String> {
        let rpc_error = match self.over_rpc(nn, path) {
            Ok(blocks) => return Ok(blocks),
            Err(e) => e,
        };
        tracing::debug!(path, error = %rpc_error, "getBlockLocations over RPC failed; trying WebHDFS");
        webhdfs::block_locations(&nn.webhdfs, path, user)
            .map_err(|e| format!("RPC: {rpc_error}; WebHDFS: {e}"))
    }
}
