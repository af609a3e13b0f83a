//! The protocol clients: one private generic `call` each, one thin method
//! per RPC named after Hadoop's.

pub mod application_client;
pub mod application_master;
pub mod ask;
pub mod container_management;
pub mod namenode;

/// client → RM.
pub(crate) const APPLICATION_CLIENT_PROTOCOL: &str =
    "org.apache.hadoop.yarn.api.ApplicationClientProtocolPB";
/// AM → RM.
pub(crate) const APPLICATION_MASTER_PROTOCOL: &str =
    "org.apache.hadoop.yarn.api.ApplicationMasterProtocolPB";
/// AM → NM.
pub(crate) const CONTAINER_MANAGEMENT_PROTOCOL: &str =
    "org.apache.hadoop.yarn.api.ContainerManagementProtocolPB";
/// client → NameNode.
pub(crate) const CLIENT_NAMENODE_PROTOCOL: &str = "org.apache.hadoop.hdfs.protocol.ClientProtocol";
