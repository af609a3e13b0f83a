//! A reconnecting, failing-over RPC client for one protocol: keeps one
//! [`Connection`], reopens it when it died, and on "connection refused" or
//! `StandbyException` moves to the next address of an HA set.

use std::sync::Mutex;
use std::time::Duration;

use prost::Message;

use super::connection::{Auth, ConnectOptions, Connection};
use crate::error::{Error, Result};

/// Pause between full rounds over every HA address.
const FAILOVER_ROUND_PAUSE: Duration = Duration::from_millis(500);
/// Rounds over the HA addresses before giving up.
const FAILOVER_ROUNDS: usize = 2;

struct State {
    current: usize,
    conn: Option<Connection>,
}

/// One protocol's client side: addresses, auth, one live connection.
pub(crate) struct RpcClient {
    addrs: Vec<String>,
    protocol: &'static str,
    auth: Mutex<Auth>,
    options: ConnectOptions,
    state: tokio::sync::Mutex<State>,
}

impl RpcClient {
    pub(crate) fn new(
        addrs: Vec<String>,
        protocol: &'static str,
        auth: Auth,
        options: ConnectOptions,
    ) -> RpcClient {
        RpcClient {
            addrs,
            protocol,
            auth: Mutex::new(auth),
            options,
            state: tokio::sync::Mutex::new(State {
                current: 0,
                conn: None,
            }),
        }
    }

    /// The address in use (or to be tried next).
    pub(crate) async fn current_addr(&self) -> String {
        let s = self.state.lock().await;
        self.addrs.get(s.current).cloned().unwrap_or_default()
    }

    /// Every configured address.
    pub(crate) fn addrs(&self) -> &[String] {
        &self.addrs
    }

    /// Replaces the credentials used for *new* connections (AMRMToken roll).
    pub(crate) fn set_auth(&self, auth: Auth) {
        if let Ok(mut a) = self.auth.lock() {
            *a = auth;
        }
    }

    fn auth(&self) -> Auth {
        match self.auth.lock() {
            Ok(a) => a.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    async fn connection(&self) -> Result<Connection> {
        let mut s = self.state.lock().await;
        if let Some(c) = &s.conn {
            if c.is_alive() {
                return Ok(c.clone());
            }
            tracing::debug!(addr = c.addr(), "reconnecting dead IPC connection");
        }
        let addr = self
            .addrs
            .get(s.current)
            .cloned()
            .ok_or_else(|| Error::Config {
                key: self.protocol.to_string(),
                message: "no server address configured".into(),
            })?;
        let c = Connection::connect(&addr, self.protocol, &self.auth(), &self.options).await?;
        s.conn = Some(c.clone());
        Ok(c)
    }

    async fn fail_over(&self, from: &str) {
        let mut s = self.state.lock().await;
        if self.addrs.get(s.current).map(String::as_str) == Some(from) {
            s.current = (s.current + 1) % self.addrs.len().max(1);
            s.conn = None;
            tracing::info!(from, to = %self.addrs[s.current], protocol = self.protocol, "failing over");
        }
    }

    /// Calls `method`, reconnecting and failing over as needed. A call that
    /// was sent but lost with its connection is not repeated.
    pub(crate) async fn call<Req: Message, Res: Message + Default>(
        &self,
        method: &str,
        request: &Req,
    ) -> Result<Res> {
        self.call_with(method, request, false).await
    }

    /// As [`RpcClient::call`] for a method that may safely run twice: when
    /// the connection dies under the call (an idle server closing it, say),
    /// it is sent once more on a fresh connection.
    pub(crate) async fn call_idempotent<Req: Message, Res: Message + Default>(
        &self,
        method: &str,
        request: &Req,
    ) -> Result<Res> {
        self.call_with(method, request, true).await
    }

    async fn call_with<Req: Message, Res: Message + Default>(
        &self,
        method: &str,
        request: &Req,
        idempotent: bool,
    ) -> Result<Res> {
        let mut resent = false;
        let attempts = if self.addrs.len() > 1 {
            self.addrs.len() * FAILOVER_ROUNDS
        } else {
            1
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let addr = self.current_addr().await;
            let result = match self.connection().await {
                Ok(c) => c.call(method, request).await,
                Err(e) => Err(e),
            };
            match result {
                Err(Error::Disconnected { .. }) if idempotent && !resent => {
                    tracing::debug!(%addr, method, "connection lost under the call; resending");
                    resent = true;
                }
                Err(e) if e.is_failover_candidate() && attempt < attempts => {
                    tracing::debug!(%addr, method, error = %e, "trying the next server");
                    self.fail_over(&addr).await;
                    if attempt % self.addrs.len().max(1) == 0 {
                        tokio::time::sleep(FAILOVER_ROUND_PAUSE).await;
                    }
                }
                other => return other,
            }
        }
    }
}
