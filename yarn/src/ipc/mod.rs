//! Hadoop IPC: the sans-IO wire format ([`frame`]) and one multiplexed TCP
//! connection ([`connection`]) plus the reconnecting/failover client built on
//! it ([`client`]). Nothing in here knows about YARN messages.

pub(crate) mod client;
pub(crate) mod connection;
pub(crate) mod frame;

pub(crate) use client::RpcClient;
pub(crate) use connection::Auth;
pub use connection::ConnectOptions;

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
