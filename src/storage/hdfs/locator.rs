//! Block locations of a file, for task placement: first over NameNode RPC with the `yarn`
//! crate's [`yarn::NameNodeClient`] (`getBlockLocations`, which `hdfs-native` 0.14 fetches
//! but does not expose), else over WebHDFS ([`super::webhdfs`]) when the RPC client cannot be
//! built or its call fails. Both speak simple authentication only.

use std::sync::OnceLock;

use super::client::{block_on, NameNode, RPC_TIMEOUT};
use super::locality::BlockHosts;
use super::webhdfs;

/// Asks the NameNode for whole files (`getBlockLocations(path, 0, length)`).
const WHOLE_FILE: u64 = i64::MAX as u64;

/// The RPC client for block locations of one NameNode, built on first use.
#[derive(Default)]
pub struct Locator {
    rpc: OnceLock<Result<yarn::NameNodeClient, String>>,
}

impl Locator {
    fn rpc(&self, nn: &NameNode) -> Result<&yarn::NameNodeClient, String> {
        self.rpc
            .get_or_init(|| {
                let config = yarn::Config::load(None).map_err(|e| e.to_string())?;
                yarn::NameNodeClient::for_uri(&config, Some(&nn.base_url))
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn over_rpc(&self, nn: &NameNode, path: &str) -> Result<Vec<BlockHosts>, String> {
        let rpc = self.rpc(nn)?;
        let located = match block_on(RPC_TIMEOUT, rpc.get_block_locations(path, 0, WHOLE_FILE)) {
            Ok(Some(Ok(l))) => l,
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(None) => {
                return Err(format!(
                    "getBlockLocations: no answer within {} s",
                    RPC_TIMEOUT.as_secs()
                ))
            }
            Err(f) => return Err(f.to_string()),
        };
        Ok(located
            .blocks
            .into_iter()
            .filter(|b| !b.corrupt)
            .map(|b| BlockHosts {
                length: b.length,
                hosts: b.hosts,
            })
            .collect())
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
