//! One Hadoop IPC connection over one TCP socket.
//!
//! [`Connection::connect`] writes the preamble, runs SASL when asked (the
//! exchange itself is [`crate::sasl::Negotiation`]), sends the connection
//! context and spawns two tasks: a writer fed by an mpsc queue (it also
//! sends pings while calls are outstanding) and a reader that routes each
//! response to the oneshot sender registered under its call id. Many calls
//! are in flight at once. When the socket dies every pending call gets
//! [`Error::Disconnected`]; every call has a timeout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use super::frame::{self, Response, Status};
use crate::credentials::Token;
use crate::error::{Error, RemoteException, Result};
use crate::kerberos::{resolve_principal, KerberosCredentials, Qop};
use crate::proto::common::{
    rpc_sasl_proto::SaslState, IpcConnectionContextProto, RpcSaslProto, UserInformationProto,
};
use crate::sasl::{KerberosSetup, Negotiated, Negotiation, Next, SaslMechanism};

/// How to authenticate a connection.
#[derive(Debug, Clone)]
pub(crate) enum Auth {
    /// Auth byte NONE; the context names this user (insecure RM/NameNode).
    Simple { user: String },
    /// SASL with this token (DIGEST-MD5); the context's user info stays empty.
    Token(Token),
    /// SASL GSSAPI with the credentials of [`ConnectOptions::kerberos`]; the
    /// context's user info stays empty (the server takes the authenticated
    /// principal).
    Kerberos {
        /// The key `principal` came from, e.g. `yarn.resourcemanager.principal`.
        principal_key: String,
        /// The server's principal as configured (`_HOST` allowed).
        principal: String,
        /// `hadoop.rpc.protection`, in order.
        protection: Vec<Qop>,
    },
}

/// Timeouts, intervals and Kerberos credentials of IPC connections
/// (re-exported as `IpcOptions`).
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Where a Kerberos ticket comes from, on a cluster with
    /// `hadoop.security.authentication=kerberos`. Default: the ticket cache.
    pub kerberos: KerberosCredentials,
    /// TCP connect plus SASL handshake. Default 20 s (`ipc.client.connect.timeout`).
    pub connect_timeout: Duration,
    /// One RPC call. Default 120 s.
    pub call_timeout: Duration,
    /// Ping while calls are outstanding and nothing was written for this
    /// long. Default 60 s (`ipc.ping.interval`).
    pub ping_interval: Duration,
}

impl ConnectOptions {
    /// Defaults, with the connect timeout and ping interval from `config`.
    pub fn from_config(config: &crate::config::Config) -> Result<ConnectOptions> {
        let d = ConnectOptions::default();
        let ms = |key, def: Duration| -> Result<Duration> {
            let v = config.get_i64(key, def.as_millis() as i64)?;
            Ok(Duration::from_millis(v.max(1) as u64))
        };
        Ok(ConnectOptions {
            kerberos: d.kerberos,
            connect_timeout: ms(crate::config::IPC_CONNECT_TIMEOUT, d.connect_timeout)?,
            call_timeout: d.call_timeout,
            ping_interval: ms(crate::config::IPC_PING_INTERVAL, d.ping_interval)?,
        })
    }

    /// Sets the connect timeout.
    pub fn with_connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Sets where Kerberos tickets come from.
    pub fn with_kerberos(mut self, credentials: KerberosCredentials) -> Self {
        self.kerberos = credentials;
        self
    }

    /// Sets the per-call timeout.
    pub fn with_call_timeout(mut self, t: Duration) -> Self {
        self.call_timeout = t;
        self
    }
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            kerberos: KerberosCredentials::default(),
            connect_timeout: Duration::from_secs(20),
            call_timeout: Duration::from_secs(120),
            ping_interval: Duration::from_secs(60),
        }
    }
}

type Pending = Arc<Mutex<HashMap<i32, oneshot::Sender<Result<Vec<u8>>>>>>;
type Layer = Arc<Mutex<Box<dyn SaslMechanism>>>;

struct Shared {
    addr: String,
    protocol: String,
    client_id: [u8; 16],
    next_call_id: AtomicI32,
    alive: AtomicBool,
    pending: Pending,
}

impl Shared {
    /// Marks the connection dead and fails every outstanding call.
    fn fail_all(&self, fatal: Option<RemoteException>) {
        self.alive.store(false, Ordering::SeqCst);
        let drained: Vec<_> = match self.pending.lock() {
            Ok(mut p) => p.drain().collect(),
            Err(poisoned) => poisoned.into_inner().drain().collect(),
        };
        for (_, tx) in drained {
            let err = match &fatal {
                Some(e) => Error::Remote {
                    addr: self.addr.clone(),
                    method: "connection".into(),
                    exception: e.clone(),
                },
                None => Error::Disconnected {
                    addr: self.addr.clone(),
                    method: "call".into(),
                },
            };
            let _ = tx.send(Err(err));
        }
    }

    fn take(&self, call_id: i32) -> Option<oneshot::Sender<Result<Vec<u8>>>> {
        match self.pending.lock() {
            Ok(mut p) => p.remove(&call_id),
            Err(poisoned) => poisoned.into_inner().remove(&call_id),
        }
    }
}

/// A live, multiplexed IPC connection. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Connection {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Vec<u8>>,
    options: ConnectOptions,
}

impl Connection {
    /// Opens and authenticates a connection for `protocol` at `addr`.
    pub(crate) async fn connect(
        addr: &str,
        protocol: &str,
        auth: &Auth,
        options: &ConnectOptions,
    ) -> Result<Connection> {
        let timeout = options.connect_timeout;
        match tokio::time::timeout(timeout, Self::connect_inner(addr, protocol, auth, options))
            .await
        {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                addr: addr.to_string(),
                method: "connect".into(),
                timeout,
            }),
        }
    }

    async fn connect_inner(
        addr: &str,
        protocol: &str,
        auth: &Auth,
        options: &ConnectOptions,
    ) -> Result<Connection> {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|error| Error::Connect {
                addr: addr.to_string(),
                error,
            })?;
        let _ = stream.set_nodelay(true);
        let io = |error| Error::Io {
            addr: addr.to_string(),
            error,
        };
        let sasl = !matches!(auth, Auth::Simple { .. });
        stream.write_all(&frame::preamble(sasl)).await.map_err(io)?;

        let mut buf = Vec::new();
        let mut layer: Option<Layer> = None;
        let user_info = match auth {
            Auth::Simple { user } => UserInformationProto {
                effective_user: Some(user.clone()),
                real_user: None,
            },
            Auth::Token(token) => {
                let negotiation = Negotiation::new(Some(token.clone()), false);
                layer = negotiate(&mut stream, &mut buf, addr, negotiation).await?;
                UserInformationProto::default()
            }
            Auth::Kerberos {
                principal_key,
                principal,
                protection,
            } => {
                let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
                let setup = KerberosSetup {
                    credentials: options.kerberos.clone(),
                    principal_key: principal_key.clone(),
                    principal: resolve_principal(principal, host),
                    protection: protection.clone(),
                };
                let negotiation = Negotiation::new(None, false).with_kerberos(setup);
                layer = negotiate(&mut stream, &mut buf, addr, negotiation).await?;
                UserInformationProto::default()
            }
        };

        let mut client_id = [0u8; 16];
        client_id.copy_from_slice(&rand::random::<[u8; 16]>());
        let context = IpcConnectionContextProto {
            user_info: Some(user_info),
            protocol: Some(protocol.to_string()),
        };
        let header = frame::request_header(
            frame::CONNECTION_CONTEXT_CALL_ID,
            &client_id,
            frame::INVALID_RETRY_COUNT,
        );
        let packet = frame::encode_frame(&[&header, &context]);
        let packet = match &layer {
            Some(l) => wrap_packet(l, &packet)?,
            None => packet,
        };
        stream.write_all(&packet).await.map_err(io)?;
        tracing::debug!(
            addr,
            protocol,
            secured = layer.is_some(),
            "IPC connection ready"
        );

        let shared = Arc::new(Shared {
            addr: addr.to_string(),
            protocol: protocol.to_string(),
            client_id,
            next_call_id: AtomicI32::new(0),
            alive: AtomicBool::new(true),
            pending: Arc::new(Mutex::new(HashMap::new())),
        });
        let (read_half, write_half) = stream.into_split();
        let (tx, rx) = mpsc::channel::<Vec<u8>>(64);
        tokio::spawn(writer_task(
            shared.clone(),
            write_half,
            rx,
            layer.clone(),
            options.ping_interval,
        ));
        tokio::spawn(reader_task(shared.clone(), read_half, buf, layer));
        Ok(Connection {
            shared,
            tx,
            options: options.clone(),
        })
    }

    /// `host:port` of the peer.
    pub(crate) fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// False once the socket failed or the server closed it.
    pub(crate) fn is_alive(&self) -> bool {
        self.shared.alive.load(Ordering::SeqCst) && !self.tx.is_closed()
    }

    /// Sends one call and waits for its response body.
    pub(crate) async fn call<Req: Message, Res: Message + Default>(
        &self,
        method: &str,
        request: &Req,
    ) -> Result<Res> {
        let body = self.call_raw(method, request).await?;
        frame::decode_body(&body, "response").map_err(|e| match e {
            Error::Decode { error, .. } => Error::Unexpected {
                addr: self.shared.addr.clone(),
                method: method.to_string(),
                message: format!("cannot decode response: {error}"),
            },
            other => other,
        })
    }

    async fn call_raw<Req: Message>(&self, method: &str, request: &Req) -> Result<Vec<u8>> {
        let shared = &self.shared;
        let disconnected = || Error::Disconnected {
            addr: shared.addr.clone(),
            method: method.to_string(),
        };
        let call_id = shared
            .next_call_id
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| {
                Some(c.wrapping_add(1) & 0x7FFF_FFFF)
            })
            .unwrap_or(0);
        let packet = frame::encode_call(
            call_id,
            &shared.client_id,
            method,
            &shared.protocol,
            request,
        );
        let (tx, rx) = oneshot::channel();
        match shared.pending.lock() {
            Ok(mut p) => p.insert(call_id, tx),
            Err(_) => return Err(disconnected()),
        };
        if !shared.alive.load(Ordering::SeqCst) {
            shared.take(call_id);
            return Err(disconnected());
        }
        tracing::trace!(addr = %shared.addr, method, call_id, "IPC call");
        if self.tx.send(packet).await.is_err() {
            shared.take(call_id);
            return Err(disconnected());
        }
        let timeout = self.options.call_timeout;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Ok(body))) => Ok(body),
            Ok(Ok(Err(e))) => Err(match e {
                Error::Remote {
                    addr, exception, ..
                } => Error::Remote {
                    addr,
                    method: method.to_string(),
                    exception,
                },
                Error::Disconnected { addr, .. } => Error::Disconnected {
                    addr,
                    method: method.to_string(),
                },
                other => other,
            }),
            Ok(Err(_)) => Err(disconnected()),
            Err(_) => {
                shared.take(call_id);
                Err(Error::Timeout {
                    addr: shared.addr.clone(),
                    method: method.to_string(),
                    timeout,
                })
            }
        }
    }
}

/// Runs a SASL negotiation to its end; returns the security layer, if any.
async fn negotiate(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    addr: &str,
    mut negotiation: Negotiation,
) -> Result<Option<Layer>> {
    let io = |error| Error::Io {
        addr: addr.to_string(),
        error,
    };
    let first = negotiation.start();
    stream
        .write_all(&frame::encode_sasl(&first))
        .await
        .map_err(io)?;
    loop {
        let msg = read_sasl(stream, buf, addr).await?;
        match negotiation.receive(msg).map_err(|e| with_addr(e, addr))? {
            Next::Send(m) => {
                stream
                    .write_all(&frame::encode_sasl(&m))
                    .await
                    .map_err(io)?;
            }
            Next::SendThenDone(m, n) => {
                stream
                    .write_all(&frame::encode_sasl(&m))
                    .await
                    .map_err(io)?;
                return Ok(into_layer(n));
            }
            Next::Done(n) => return Ok(into_layer(n)),
        }
    }
}

fn into_layer(n: Negotiated) -> Option<Layer> {
    match n {
        Negotiated::Mechanism(mech) if mech.has_security_layer() => {
            Some(Arc::new(Mutex::new(mech)))
        }
        _ => None,
    }
}

fn with_addr(e: Error, addr: &str) -> Error {
    match e {
        Error::Sasl { message, .. } => Error::Sasl {
            addr: addr.to_string(),
            message,
        },
        Error::Protection {
            offered, allowed, ..
        } => Error::Protection {
            addr: addr.to_string(),
            offered,
            allowed,
        },
        other => other,
    }
}

/// Wraps one framed packet into SASL WRAP packets: one, or one per piece when
/// the layer limits how much one wrap may take (the server reassembles the
/// stream, so pieces need not follow RPC boundaries).
fn wrap_packet(layer: &Layer, packet: &[u8]) -> Result<Vec<u8>> {
    let mut l = layer
        .lock()
        .map_err(|_| Error::sasl("security layer poisoned"))?;
    let piece = l.max_wrap_input().unwrap_or(packet.len()).max(1);
    let mut out = Vec::with_capacity(packet.len() + 64);
    for chunk in packet.chunks(piece) {
        let wrapped = l.wrap(chunk)?;
        out.extend_from_slice(&frame::encode_sasl(&RpcSaslProto {
            version: None,
            state: SaslState::Wrap as i32,
            token: Some(wrapped),
            auths: vec![],
        }));
    }
    Ok(out)
}

/// Reads one whole frame into `buf` (which may hold extra bytes afterwards).
async fn read_frame(stream: &mut TcpStream, buf: &mut Vec<u8>, addr: &str) -> Result<Vec<u8>> {
    loop {
        if let Some(n) = frame::check(buf).map_err(|e| rewrite_addr(e, addr))? {
            let rest = buf.split_off(n);
            return Ok(std::mem::replace(buf, rest));
        }
        let mut chunk = [0u8; 8192];
        let read = stream.read(&mut chunk).await.map_err(|error| Error::Io {
            addr: addr.to_string(),
            error,
        })?;
        if read == 0 {
            return Err(Error::Disconnected {
                addr: addr.to_string(),
                method: "SASL negotiation".into(),
            });
        }
        buf.extend_from_slice(&chunk[..read]);
    }
}

fn rewrite_addr(e: Error, addr: &str) -> Error {
    match e {
        Error::Protocol { message, .. } => Error::protocol(addr, message),
        other => other,
    }
}

/// Reads the next SASL reply; a FATAL/ERROR reply becomes a remote error.
async fn read_sasl(stream: &mut TcpStream, buf: &mut Vec<u8>, addr: &str) -> Result<RpcSaslProto> {
    let f = read_frame(stream, buf, addr).await?;
    let r = frame::parse_response(&f).map_err(|e| rewrite_addr(e, addr))?;
    if r.status != Status::Success {
        return Err(Error::Remote {
            addr: addr.to_string(),
            method: "SASL negotiation".into(),
            exception: RemoteException {
                class: r.exception_class,
                message: r.error_message,
            },
        });
    }
    if r.call_id != frame::SASL_CALL_ID {
        return Err(Error::protocol(
            addr,
            format!(
                "non-SASL response (call id {}) during negotiation",
                r.call_id
            ),
        ));
    }
    frame::decode_body(&r.body, "RpcSaslProto")
}

async fn writer_task(
    shared: Arc<Shared>,
    mut out: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::Receiver<Vec<u8>>,
    layer: Option<Layer>,
    ping_interval: Duration,
) {
    let mut ticker = tokio::time::interval(ping_interval);
    ticker.tick().await;
    loop {
        let packet = tokio::select! {
            p = rx.recv() => match p {
                Some(p) => p,
                None => break, // every Connection handle dropped
            },
            _ = ticker.tick() => {
                let busy = shared.pending.lock().map(|p| !p.is_empty()).unwrap_or(false);
                if !busy {
                    continue;
                }
                frame::encode_ping(&shared.client_id)
            }
        };
        let packet = match &layer {
            Some(l) => match wrap_packet(l, &packet) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(addr = %shared.addr, error = %e, "cannot wrap packet");
                    break;
                }
            },
            None => packet,
        };
        if let Err(e) = out.write_all(&packet).await {
            tracing::debug!(addr = %shared.addr, error = %e, "IPC write failed");
            break;
        }
        ticker.reset();
    }
    shared.fail_all(None);
    let _ = out.shutdown().await;
}

async fn reader_task(
    shared: Arc<Shared>,
    mut input: tokio::net::tcp::OwnedReadHalf,
    mut raw: Vec<u8>,
    layer: Option<Layer>,
) {
    let mut plain: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let fatal = 'outer: loop {
        // With a security layer, unwrap every complete SASL WRAP frame first.
        if let Some(l) = &layer {
            loop {
                match frame::check(&raw) {
                    Ok(Some(n)) => {
                        let rest = raw.split_off(n);
                        let f = std::mem::replace(&mut raw, rest);
                        match unwrap_frame(l, &f) {
                            Ok(bytes) => plain.extend_from_slice(&bytes),
                            Err(e) => {
                                tracing::warn!(addr = %shared.addr, error = %e, "bad wrapped response");
                                break 'outer None;
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(addr = %shared.addr, error = %e, "bad wrapped frame");
                        break 'outer None;
                    }
                }
            }
        }
        let src = if layer.is_some() {
            &mut plain
        } else {
            &mut raw
        };
        loop {
            match frame::check(src) {
                Ok(Some(n)) => {
                    let rest = src.split_off(n);
                    let f = std::mem::replace(src, rest);
                    match frame::parse_response(&f) {
                        Ok(r) => {
                            if let Some(fatal) = dispatch(&shared, r) {
                                break 'outer Some(fatal);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(addr = %shared.addr, error = %e, "bad response frame");
                            break 'outer None;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(addr = %shared.addr, error = %e, "bad response frame");
                    break 'outer None;
                }
            }
        }
        match input.read(&mut chunk).await {
            Ok(0) => break None,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            Err(e) => {
                tracing::debug!(addr = %shared.addr, error = %e, "IPC read failed");
                break None;
            }
        }
    };
    if let Some(f) = &fatal {
        tracing::warn!(addr = %shared.addr, class = %f.class, "server closed the connection with a FATAL error");
    }
    shared.fail_all(fatal);
}

fn unwrap_frame(layer: &Layer, f: &[u8]) -> Result<Vec<u8>> {
    let r = frame::parse_response(f)?;
    if r.call_id != frame::SASL_CALL_ID {
        return Err(Error::protocol(
            "",
            "unwrapped response on a secured connection",
        ));
    }
    let msg: RpcSaslProto = frame::decode_body(&r.body, "RpcSaslProto")?;
    if msg.state != SaslState::Wrap as i32 {
        return Err(Error::protocol(
            "",
            "SASL message other than WRAP after negotiation",
        ));
    }
    let token = msg.token.unwrap_or_default();
    match layer.lock() {
        Ok(mut l) => l.unwrap(&token),
        Err(_) => Err(Error::sasl("security layer poisoned")),
    }
}

/// Routes one response; returns the exception if the connection must die.
fn dispatch(shared: &Shared, r: Response) -> Option<RemoteException> {
    let exception = || RemoteException {
        class: r.exception_class.clone(),
        message: r.error_message.clone(),
    };
    if r.status == Status::Fatal {
        return Some(exception());
    }
    let Some(tx) = shared.take(r.call_id) else {
        tracing::debug!(addr = %shared.addr, call_id = r.call_id, "response for unknown call id");
        return None;
    };
    let result = match r.status {
        Status::Success => Ok(r.body),
        _ => Err(Error::Remote {
            addr: shared.addr.clone(),
            method: String::new(),
            exception: exception(),
        }),
    };
    let _ = tx.send(result);
    None
}
