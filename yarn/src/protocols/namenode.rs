//! The slice of HDFS `ClientNamenodeProtocol` the filex planner needs for
//! locality: `getBlockLocations` and `getListing` with block locations (which
//! hdfs-native does not expose), and `getFileInfo`; and `getDelegationToken`
//! for `filex submit` on a Kerberized cluster, `renewDelegationToken` and
//! `cancelDelegationToken` for the application master that refreshes tokens. SIMPLE auth, Kerberos, or (in a
//! container) the HDFS delegation token of `HADOOP_TOKEN_FILE_LOCATION`; fails
//! over across `dfs.ha.namenodes.*`.

use prost::Message;

use super::CLIENT_NAMENODE_PROTOCOL;
use crate::config::{self, Config};
use crate::credentials::{Credentials, Token, HDFS_DELEGATION_TOKEN_KIND};
use crate::error::{Error, Result};
use crate::ipc::{Auth, ConnectOptions, RpcClient};
use crate::kerberos::KerberosCredentials;
use crate::proto::common as common_pb;
use crate::proto::hdfs as pb;

/// Methods that may safely be sent twice (resent once if the connection
/// dies under them).
const IDEMPOTENT: &[&str] = &["getBlockLocations", "getFileInfo", "getListing"];

/// Where one block of a file lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockLocation {
    /// Offset of the block's first byte in the file.
    pub offset: u64,
    /// Block length in bytes.
    pub length: u64,
    /// DataNode host names (as YARN NodeManagers usually register).
    pub hosts: Vec<String>,
    /// DataNode transfer addresses, `host:port`.
    pub names: Vec<String>,
    /// DataNode IP addresses.
    pub ip_addrs: Vec<String>,
    /// Network locations (racks), e.g. `/default-rack`, one per host.
    pub racks: Vec<String>,
    /// Storage ids, one per host when the NameNode sends them.
    pub storage_ids: Vec<String>,
    /// True if every replica is corrupt.
    pub corrupt: bool,
}

/// `getBlockLocations` result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedBlocks {
    /// File length.
    pub file_length: u64,
    /// Blocks overlapping the requested range, in file order.
    pub blocks: Vec<BlockLocation>,
    /// The file is still being written.
    pub under_construction: bool,
}

/// `getFileInfo` result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStatus {
    /// Length in bytes.
    pub length: u64,
    /// Directory?
    pub is_dir: bool,
    /// Modification time, ms.
    pub modification_time: u64,
    /// Block size.
    pub block_size: u64,
    /// Replication.
    pub replication: u32,
    /// Owner.
    pub owner: String,
    /// Group.
    pub group: String,
}

/// One entry of a located listing (`getListing` with `needLocation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedEntry {
    /// The entry's name in the directory (empty when the listed path is a file).
    pub name: String,
    /// Directory?
    pub is_dir: bool,
    /// Length in bytes (0 for directories).
    pub length: u64,
    /// Modification time, ms since the epoch.
    pub modification_time: u64,
    /// The file's blocks, in file order (none for directories).
    pub blocks: Vec<PlacedBlock>,
}

/// A block as a located listing gives it: what placing a task beside it needs (the
/// listing is decoded without the rest, see `PlacementStatusProto`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedBlock {
    /// Offset of the block's first byte in the file.
    pub offset: u64,
    /// Block length in bytes.
    pub length: u64,
    /// DataNode host names, in the NameNode's order.
    pub hosts: Vec<String>,
    /// DataNode transfer ports, one per host (they tell DataNodes on one host apart).
    pub xfer_ports: Vec<u32>,
    /// True if every replica is corrupt.
    pub corrupt: bool,
}

/// A client of the NameNode's RPC port.
///
/// Methods take `&self` and share one multiplexed connection, so a planner
/// can ask for many files' block locations concurrently (e.g. join a batch
/// of `get_block_locations` futures) without opening more sockets.
pub struct NameNodeClient {
    rpc: RpcClient,
}

impl NameNodeClient {
    /// A client for `fs.defaultFS` (or its HA NameNodes), as the current user.
    pub fn new(config: &Config) -> Result<NameNodeClient> {
        Self::for_uri(config, None)
    }

    /// A client for an explicit `hdfs://authority` URI.
    ///
    /// With `hadoop.security.authentication=kerberos` it authenticates with
    /// Kerberos from the ticket cache, checking `dfs.namenode.kerberos.principal`.
    /// In a container of a Kerberized cluster (no ticket, a token file holding an HDFS
    /// delegation token for this NameNode), it authenticates with that token instead.
    pub fn for_uri(config: &Config, uri: Option<&str>) -> Result<NameNodeClient> {
        Self::with_options(config, uri, crate::IpcOptions::from_config(config)?)
    }

    /// As [`NameNodeClient::for_uri`] with explicit options (Kerberos credentials,
    /// timeouts). Explicit Kerberos credentials (a keytab) always use Kerberos.
    pub fn with_options(
        config: &Config,
        uri: Option<&str>,
        options: ConnectOptions,
    ) -> Result<NameNodeClient> {
        let addrs = config.namenode_addresses(uri)?;
        let mut auth = super::ipc_auth(config, config::DFS_NAMENODE_PRINCIPAL)?;
        if matches!(auth, Auth::Kerberos { .. })
            && options.kerberos == KerberosCredentials::TicketCache
        {
            if let Some(token) = container_token(config, uri)? {
                tracing::debug!(service = %token.service, "NameNode: delegation token from the token file");
                auth = Auth::Token(token);
            }
        }
        Ok(NameNodeClient {
            rpc: RpcClient::new(addrs, CLIENT_NAMENODE_PROTOCOL, auth, options),
        })
    }

    /// A client for explicit NameNode addresses.
    pub fn from_parts(addrs: Vec<String>, user: String, options: ConnectOptions) -> Self {
        NameNodeClient {
            rpc: RpcClient::new(
                addrs,
                CLIENT_NAMENODE_PROTOCOL,
                Auth::Simple { user },
                options,
            ),
        }
    }

    async fn call<Req: Message, Res: Message + Default>(
        &self,
        method: &'static str,
        request: Req,
    ) -> Result<Res> {
        tracing::debug!(method, "ClientNamenodeProtocol");
        if IDEMPOTENT.contains(&method) {
            self.rpc.call_idempotent(method, &request).await
        } else {
            self.rpc.call(method, &request).await
        }
    }

    /// `getBlockLocations(path, offset, length)`. A missing file is a
    /// `FileNotFoundException` remote error.
    pub async fn get_block_locations(
        &self,
        path: &str,
        offset: u64,
        length: u64,
    ) -> Result<LocatedBlocks> {
        let r: pb::GetBlockLocationsResponseProto = self
            .call(
                "getBlockLocations",
                pb::GetBlockLocationsRequestProto {
                    src: path.to_string(),
                    offset,
                    length,
                },
            )
            .await?;
        let Some(l) = r.locations else {
            return Err(Error::Remote {
                addr: self.rpc.current_addr().await,
                method: "getBlockLocations".into(),
                exception: crate::RemoteException {
                    class: crate::exception_class::FILE_NOT_FOUND.into(),
                    message: format!("File does not exist: {path}"),
                },
            });
        };
        Ok(LocatedBlocks {
            file_length: l.file_length,
            under_construction: l.under_construction,
            blocks: l.blocks.iter().map(block_location).collect(),
        })
    }

    /// Every entry of the directory `path` with each file's block locations, as
    /// Hadoop's `listLocatedStatus` gets them: `getListing(needLocation = true)`,
    /// page after page (the NameNode answers `dfs.ls.limit` entries at a time).
    /// `None` when the path does not exist; a file lists as itself, with an empty
    /// name.
    pub async fn list_located(&self, path: &str) -> Result<Option<Vec<LocatedEntry>>> {
        let mut out = Vec::new();
        let mut start_after = Vec::new();
        loop {
            let r: pb::PlacementListingResponseProto = self
                .call(
                    "getListing",
                    pb::GetListingRequestProto {
                        src: path.to_string(),
                        start_after: start_after.clone(),
                        need_location: true,
                    },
                )
                .await?;
            let Some(page) = r.dir_list else {
                return Ok(if out.is_empty() { None } else { Some(out) });
            };
            let last = page.partial_listing.last().map(|s| s.path.clone());
            out.extend(page.partial_listing.into_iter().map(located_entry));
            match last {
                Some(name) if page.remaining_entries > 0 && !name.is_empty() => start_after = name,
                _ => return Ok(Some(out)),
            }
        }
    }

    /// `getDelegationToken(renewer)`: a new HDFS delegation token that `renewer` (a full
    /// principal, [`crate::delegation::renewer`]) may renew. The NameNode issues one only
    /// over a Kerberos-authenticated connection. Its service is the `ip:port` of the
    /// NameNode that answered ([`crate::delegation::hdfs_services`] names the others).
    pub async fn get_delegation_token(&self, renewer: &str) -> Result<Token> {
        let r: common_pb::GetDelegationTokenResponseProto = self
            .call(
                "getDelegationToken",
                common_pb::GetDelegationTokenRequestProto {
                    renewer: renewer.to_string(),
                },
            )
            .await?;
        let addr = self.rpc.current_addr().await;
        let token = r.token.ok_or_else(|| Error::Unexpected {
            addr: addr.clone(),
            method: "getDelegationToken".into(),
            message: "no token in the response (is security enabled on the NameNode?)".into(),
        })?;
        let mut token = Token::from_proto(token);
        token.service = crate::delegation::token_service(&addr);
        Ok(token)
    }

    /// `renewDelegationToken(token)`: extends `token` by the NameNode's renew interval (up to
    /// its max date) and returns its new expiry, ms since the epoch. Only the token's renewer
    /// may renew it.
    pub async fn renew_delegation_token(&self, token: &Token) -> Result<u64> {
        let r: common_pb::RenewDelegationTokenResponseProto = self
            .call(
                "renewDelegationToken",
                common_pb::RenewDelegationTokenRequestProto {
                    token: token.to_proto(),
                },
            )
            .await?;
        Ok(r.new_expiry_time)
    }

    /// `cancelDelegationToken(token)`: the token stops working at once. Its owner or renewer
    /// may cancel it.
    pub async fn cancel_delegation_token(&self, token: &Token) -> Result<()> {
        let _: common_pb::CancelDelegationTokenResponseProto = self
            .call(
                "cancelDelegationToken",
                common_pb::CancelDelegationTokenRequestProto {
                    token: token.to_proto(),
                },
            )
            .await?;
        Ok(())
    }

    /// `getFileInfo`; `None` when the path does not exist.
    pub async fn get_file_info(&self, path: &str) -> Result<Option<FileStatus>> {
        let r: pb::GetFileInfoResponseProto = self
            .call(
                "getFileInfo",
                pb::GetFileInfoRequestProto {
                    src: path.to_string(),
                },
            )
            .await?;
        Ok(r.fs.map(|s| FileStatus {
            length: s.length,
            is_dir: s.file_type == pb::hdfs_file_status_proto::FileType::IsDir as i32,
            modification_time: s.modification_time(),
            block_size: s.blocksize(),
            replication: s.block_replication(),
            owner: s.owner().to_string(),
            group: s.group().to_string(),
        }))
    }
}

/// The HDFS delegation token for the NameNode of `uri` (`None`: `fs.defaultFS`) in the
/// token file of `HADOOP_TOKEN_FILE_LOCATION`, if there is one.
fn container_token(config: &Config, uri: Option<&str>) -> Result<Option<Token>> {
    let Some(creds) = Credentials::from_env()? else {
        return Ok(None);
    };
    let uri = uri
        .map(str::to_string)
        .unwrap_or_else(|| config.default_fs());
    let Some(authority) = uri
        .strip_prefix("hdfs://")
        .and_then(|r| r.split('/').next())
        .filter(|a| !a.is_empty())
    else {
        return Ok(None);
    };
    Ok(crate::delegation::hdfs_services(config, authority)?
        .iter()
        .find_map(|service| creds.token(HDFS_DELEGATION_TOKEN_KIND, service))
        .cloned())
}

fn located_entry(s: pb::PlacementStatusProto) -> LocatedEntry {
    let is_dir = s.file_type == pb::hdfs_file_status_proto::FileType::IsDir as i32;
    let modification_time = s.modification_time();
    LocatedEntry {
        name: String::from_utf8(s.path)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        is_dir,
        length: s.length,
        modification_time,
        blocks: s
            .locations
            .map(|l| l.blocks.into_iter().map(placed_block).collect())
            .unwrap_or_default(),
    }
}

fn placed_block(b: pb::PlacementBlockProto) -> PlacedBlock {
    let (hosts, xfer_ports) = b
        .locs
        .into_iter()
        .map(|d| (d.id.host_name, d.id.xfer_port))
        .unzip();
    PlacedBlock {
        offset: b.offset,
        length: b.b.num_bytes(),
        hosts,
        xfer_ports,
        corrupt: b.corrupt,
    }
}

fn block_location(b: &pb::LocatedBlockProto) -> BlockLocation {
    let ids = b.locs.iter().map(|d| &d.id);
    BlockLocation {
        offset: b.offset,
        length: b.b.num_bytes(),
        hosts: ids.clone().map(|i| i.host_name.clone()).collect(),
        names: ids
            .clone()
            .map(|i| format!("{}:{}", i.host_name, i.xfer_port))
            .collect(),
        ip_addrs: ids.map(|i| i.ip_addr.clone()).collect(),
        racks: b
            .locs
            .iter()
            .map(|d| d.location.clone().unwrap_or_else(|| "/default-rack".into()))
            .collect(),
        storage_ids: b.storage_i_ds.clone(),
        corrupt: b.corrupt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(host: &str, xfer_port: u32) -> pb::DatanodeInfoProto {
        pb::DatanodeInfoProto {
            id: pb::DatanodeIdProto {
                ip_addr: "10.0.0.7".into(),
                host_name: host.into(),
                datanode_uuid: "8e2b-uuid".into(),
                xfer_port,
                info_port: 9864,
                ipc_port: 9867,
                info_secure_port: Some(0),
            },
            location: Some("/rack-a".into()),
        }
    }

    fn block(offset: u64, length: u64, hosts: &[(&str, u32)]) -> pb::LocatedBlockProto {
        pb::LocatedBlockProto {
            b: pb::ExtendedBlockProto {
                pool_id: "BP-1".into(),
                block_id: 1_073_741_825 + offset,
                generation_stamp: 1001,
                num_bytes: Some(length),
            },
            offset,
            locs: hosts.iter().map(|(h, p)| replica(h, *p)).collect(),
            corrupt: false,
            block_token: Some(common_pb::TokenProto {
                identifier: vec![7; 40],
                password: vec![9; 20],
                kind: "HDFS_BLOCK_TOKEN".into(),
                service: String::new(),
            }),
            storage_types: vec![pb::StorageTypeProto::Disk as i32; hosts.len()],
            storage_i_ds: hosts.iter().map(|(h, _)| format!("DS-{h}")).collect(),
        }
    }

    /// A getListing page as the NameNode sends it (full statuses, as Hadoop declares them)
    /// reads through the placement projection with every field placement uses.
    #[test]
    fn a_full_located_listing_reads_through_the_placement_projection() {
        let blocks = vec![
            block(0, 128, &[("dn-b", 9866), ("dn-a", 9866)]),
            block(128, 5, &[("dn-a", 9866), ("dn-a", 9966)]),
        ];
        let file = pb::HdfsFileStatusProto {
            file_type: pb::hdfs_file_status_proto::FileType::IsFile as i32,
            path: b"0005.log.gz".to_vec(),
            length: 133,
            permission: Some(pb::FsPermissionProto { perm: 0o644 }),
            owner: Some("cdn".into()),
            group: Some("supergroup".into()),
            modification_time: Some(1_762_300_800_000),
            access_time: Some(1_762_300_800_001),
            block_replication: Some(2),
            blocksize: Some(128),
            locations: Some(pb::LocatedBlocksProto {
                file_length: 133,
                last_block: blocks.last().cloned(),
                blocks,
                under_construction: false,
                is_last_block_complete: true,
            }),
        };
        let dir = pb::HdfsFileStatusProto {
            file_type: pb::hdfs_file_status_proto::FileType::IsDir as i32,
            path: b"20261105".to_vec(),
            length: 0,
            modification_time: Some(5),
            ..Default::default()
        };
        // DirectoryListingProto { partialListing = 1; remainingEntries = 2 } inside
        // GetListingResponseProto { dirList = 1 }.
        let mut page = Vec::new();
        for status in [&file, &dir] {
            prost::encoding::message::encode(1, status, &mut page);
        }
        prost::encoding::uint32::encode(2, &3, &mut page);
        let mut response = Vec::new();
        prost::encoding::bytes::encode(1, &page, &mut response);

        let read = pb::PlacementListingResponseProto::decode(response.as_slice())
            .expect("decodes")
            .dir_list
            .expect("a page");
        assert_eq!(read.remaining_entries, 3);
        let entries: Vec<LocatedEntry> = read
            .partial_listing
            .into_iter()
            .map(located_entry)
            .collect();
        let placed = |offset, length, hosts: &[&str], ports: &[u32]| PlacedBlock {
            offset,
            length,
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            xfer_ports: ports.to_vec(),
            corrupt: false,
        };
        assert_eq!(
            entries,
            vec![
                LocatedEntry {
                    name: "0005.log.gz".into(),
                    is_dir: false,
                    length: 133,
                    modification_time: 1_762_300_800_000,
                    blocks: vec![
                        placed(0, 128, &["dn-b", "dn-a"], &[9866, 9866]),
                        placed(128, 5, &["dn-a", "dn-a"], &[9866, 9966]),
                    ],
                },
                LocatedEntry {
                    name: "20261105".into(),
                    is_dir: true,
                    length: 0,
                    modification_time: 5,
                    blocks: Vec::new(),
                },
            ]
        );
    }
}
