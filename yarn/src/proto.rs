//! Generated prost code for our hand-written `.proto` declarations
//! (`yarn/proto/`). Nothing here is part of the public API: every module
//! that talks to the wire converts into the crate's own record types.

#![allow(missing_docs)]

/// `hadoop.common`: IPC headers, SASL, tokens, credentials.
#[allow(clippy::all)]
pub(crate) mod common {
    include!(concat!(env!("OUT_DIR"), "/hadoop.common.rs"));
}

/// `hadoop.hdfs`: the getBlockLocations/getFileInfo slice of ClientProtocol.
#[allow(clippy::all)]
pub(crate) mod hdfs {
    include!(concat!(env!("OUT_DIR"), "/hadoop.hdfs.rs"));
}

/// `hadoop.yarn`: records and the three YARN protocols' messages.
#[allow(clippy::all)]
pub(crate) mod yarn {
    include!(concat!(env!("OUT_DIR"), "/hadoop.yarn.rs"));
}
