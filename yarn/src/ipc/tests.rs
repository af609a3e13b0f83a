//! Connection and client tests against fake servers on 127.0.0.1 that speak
//! raw Hadoop IPC bytes: multiplexing with out-of-order replies, remote
//! errors, disconnects, timeouts, SASL TOKEN with and without a security
//! layer, FATAL during SASL, and HA failover.

use std::time::Duration;

use base64::Engine;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::connection::{Auth, ConnectOptions, Connection};
use super::frame;
use super::RpcClient;
use crate::credentials::Token;
use crate::error::Error;
use crate::proto::common::{
    rpc_response_header_proto::RpcStatusProto, rpc_sasl_proto::SaslAuth, rpc_sasl_proto::SaslState,
    IpcConnectionContextProto, RequestHeaderProto, RpcRequestHeaderProto, RpcResponseHeaderProto,
    RpcSaslProto,
};
use crate::proto::yarn::ApplicationIdProto;
use crate::sasl::digest::fake_server::{FakeDigestServer, ServerLayer};

const PROTOCOL: &str = "test.ProtocolPB";

fn options() -> ConnectOptions {
    ConnectOptions {
        connect_timeout: Duration::from_secs(5),
        call_timeout: Duration::from_secs(5),
        ping_interval: Duration::from_secs(60),
    }
}

/// The server's view of one connection.
struct Peer {
    stream: TcpStream,
    buf: Vec<u8>,
    layer: Option<ServerLayer>,
    plain: Vec<u8>,
}

impl Peer {
    async fn accept(listener: &TcpListener) -> Peer {
        let (stream, _) = listener.accept().await.expect("accept");
        Peer {
            stream,
            buf: Vec::new(),
            layer: None,
            plain: Vec::new(),
        }
    }

    async fn preamble(&mut self) -> [u8; 7] {
        let mut p = [0u8; 7];
        self.stream.read_exact(&mut p).await.expect("preamble");
        p
    }

    async fn raw_frame(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(n) = frame::check(&self.buf).expect("sane frame") {
                let rest = self.buf.split_off(n);
                return Some(std::mem::replace(&mut self.buf, rest));
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Next request frame, unwrapping SASL WRAP packets once a layer exists.
    async fn frame(&mut self) -> Option<(RpcRequestHeaderProto, Vec<u8>)> {
        loop {
            if self.layer.is_some() {
                if let Some(n) = frame::check(&self.plain).expect("sane") {
                    let rest = self.plain.split_off(n);
                    let f = std::mem::replace(&mut self.plain, rest);
                    return Some(split_request(&f));
                }
                let f = self.raw_frame().await?;
                let (h, body) = split_request(&f);
                assert_eq!(h.call_id, frame::SASL_CALL_ID, "secured traffic is wrapped");
                let (msg, _) =
                    frame::decode_delimited::<RpcSaslProto>(&body, "sasl").expect("sasl");
                assert_eq!(msg.state, SaslState::Wrap as i32);
                let layer = self.layer.as_mut().expect("layer");
                let plain = layer
                    .unwrap(&msg.token.unwrap_or_default())
                    .expect("unwrap");
                self.plain.extend_from_slice(&plain);
            } else {
                let f = self.raw_frame().await?;
                return Some(split_request(&f));
            }
        }
    }

    async fn send(&mut self, bytes: Vec<u8>) {
        let bytes = match &mut self.layer {
            Some(l) => {
                let wrapped = l.wrap(&bytes).expect("wrap");
                sasl_reply(SaslState::Wrap, Some(wrapped), vec![])
            }
            None => bytes,
        };
        self.stream.write_all(&bytes).await.expect("send");
    }

    /// Reads the connection context; returns it.
    async fn context(&mut self) -> IpcConnectionContextProto {
        let (h, body) = self.frame().await.expect("context frame");
        assert_eq!(h.call_id, frame::CONNECTION_CONTEXT_CALL_ID);
        assert_eq!(h.retry_count, Some(-1));
        assert_eq!(h.client_id.len(), 16);
        frame::decode_delimited::<IpcConnectionContextProto>(&body, "ctx")
            .expect("context")
            .0
    }

    /// Reads one call: (call id, method).
    async fn call(&mut self) -> Option<(i32, String)> {
        let (h, body) = self.frame().await?;
        let (rh, _) = frame::decode_delimited::<RequestHeaderProto>(&body, "rh").expect("rh");
        assert_eq!(rh.declaring_class_protocol_name, PROTOCOL);
        assert_eq!(rh.client_protocol_version, 1);
        Some((h.call_id, rh.method_name))
    }
}

fn split_request(f: &[u8]) -> (RpcRequestHeaderProto, Vec<u8>) {
    let (h, used) =
        frame::decode_delimited::<RpcRequestHeaderProto>(&f[4..], "req header").expect("header");
    (h, f[4 + used..].to_vec())
}

fn header(call_id: i32, status: RpcStatusProto) -> RpcResponseHeaderProto {
    RpcResponseHeaderProto {
        call_id: call_id as u32,
        status: status as i32,
        server_ipc_version_num: Some(9),
        exception_class_name: None,
        error_msg: None,
        error_detail: None,
        client_id: None,
        retry_count: None,
    }
}

fn success(call_id: i32, id: i32) -> Vec<u8> {
    let body = ApplicationIdProto {
        id: Some(id),
        cluster_timestamp: Some(7),
    };
    frame::encode_frame(&[&header(call_id, RpcStatusProto::Success), &body])
}

fn failure(call_id: i32, status: RpcStatusProto, class: &str) -> Vec<u8> {
    let mut h = header(call_id, status);
    h.exception_class_name = Some(class.to_string());
    h.error_msg = Some(format!("{class}: boom\n\tat Some.frame"));
    frame::encode_frame(&[&h])
}

fn sasl_reply(state: SaslState, token: Option<Vec<u8>>, auths: Vec<SaslAuth>) -> Vec<u8> {
    let msg = RpcSaslProto {
        version: None,
        state: state as i32,
        token,
        auths,
    };
    frame::encode_frame(&[&header(frame::SASL_CALL_ID, RpcStatusProto::Success), &msg])
}

async fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    (l, addr)
}

fn simple() -> Auth {
    Auth::Simple {
        user: "alice".into(),
    }
}

async fn call(c: &Connection, method: &str) -> Result<i32, Error> {
    let req = ApplicationIdProto::default();
    let r: ApplicationIdProto = c.call(method, &req).await?;
    Ok(r.id())
}

#[tokio::test]
async fn multiplexed_calls_get_their_own_out_of_order_replies() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let mut p = Peer::accept(&l).await;
        assert_eq!(p.preamble().await, *b"hrpc\x09\x00\x00");
        let ctx = p.context().await;
        assert_eq!(ctx.protocol.as_deref(), Some(PROTOCOL));
        let ui = ctx.user_info.expect("user info");
        assert_eq!(ui.effective_user.as_deref(), Some("alice"));
        let mut calls = Vec::new();
        for _ in 0..4 {
            calls.push(p.call().await.expect("call"));
        }
        let ids: Vec<i32> = calls.iter().map(|c| c.0).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 4, "distinct call ids {ids:?}");
        assert!(ids.iter().all(|&i| i >= 0));
        // Reply in reverse order; "fail" gets a remote exception.
        for (id, method) in calls.into_iter().rev() {
            if method == "fail" {
                p.send(failure(
                    id,
                    RpcStatusProto::Error,
                    crate::exception_class::STANDBY,
                ))
                .await;
            } else {
                let n: i32 = method.trim_start_matches('m').parse().expect("n");
                p.send(success(id, n)).await;
            }
        }
        // Keep the socket open until the client is done.
        let _ = p.frame().await;
    });
    let c = Connection::connect(&addr, PROTOCOL, &simple(), &options())
        .await
        .expect("connect");
    let (a, b, d, e) = tokio::join!(
        call(&c, "m1"),
        call(&c, "m2"),
        call(&c, "fail"),
        call(&c, "m3")
    );
    assert_eq!(a.expect("m1"), 1);
    assert_eq!(b.expect("m2"), 2);
    assert_eq!(e.expect("m3"), 3);
    let err = d.expect_err("remote error");
    let remote = err.remote().expect("remote");
    assert!(remote.is_standby());
    assert_eq!(
        remote.summary(),
        "org.apache.hadoop.ipc.StandbyException: boom"
    );
    assert!(err.to_string().contains("fail"), "{err}");
    assert!(c.is_alive(), "ERROR keeps the connection usable");
    drop(c);
    server.await.expect("server");
}

#[tokio::test]
async fn disconnect_fails_every_pending_call() {
    let (l, addr) = listener().await;
    tokio::spawn(async move {
        let mut p = Peer::accept(&l).await;
        p.preamble().await;
        p.context().await;
        p.call().await;
        p.call().await;
        // Drop the socket with two calls outstanding.
    });
    let c = Connection::connect(&addr, PROTOCOL, &simple(), &options())
        .await
        .expect("connect");
    let (a, b) = tokio::join!(call(&c, "m1"), call(&c, "m2"));
    for r in [a, b] {
        assert!(
            matches!(r, Err(Error::Disconnected { .. })),
            "expected Disconnected, got {r:?}"
        );
    }
    assert!(!c.is_alive());
    assert!(matches!(
        call(&c, "m3").await,
        Err(Error::Disconnected { .. })
    ));
}

#[tokio::test]
async fn calls_time_out() {
    let (l, addr) = listener().await;
    tokio::spawn(async move {
        let mut p = Peer::accept(&l).await;
        p.preamble().await;
        p.context().await;
        let (id, _) = p.call().await.expect("first");
        // Never answer the first; answer the second.
        let _ = id;
        let (id2, _) = p.call().await.expect("second");
        p.send(success(id2, 2)).await;
        let _ = p.frame().await;
    });
    let mut o = options();
    o.call_timeout = Duration::from_millis(300);
    let c = Connection::connect(&addr, PROTOCOL, &simple(), &o)
        .await
        .expect("connect");
    let r = call(&c, "slow").await;
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    assert_eq!(call(&c, "m2").await.expect("later call works"), 2);
}

#[tokio::test]
async fn connect_to_silent_server_times_out() {
    let (l, addr) = listener().await;
    tokio::spawn(async move {
        let _p = Peer::accept(&l).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    });
    let token = test_token();
    let mut o = options();
    o.connect_timeout = Duration::from_millis(300);
    let r = Connection::connect(&addr, PROTOCOL, &Auth::Token(token), &o).await;
    assert!(matches!(r, Err(Error::Timeout { .. })), "{:?}", r.err());
}

fn test_token() -> Token {
    Token {
        identifier: b"appattempt-identifier".to_vec(),
        password: vec![1, 2, 3, 4, 250],
        kind: "YARN_AM_RM_TOKEN".into(),
        service: String::new(),
    }
}

fn token_auth(challenge: Vec<u8>) -> SaslAuth {
    SaslAuth {
        method: "TOKEN".into(),
        mechanism: "DIGEST-MD5".into(),
        protocol: Some(String::new()),
        server_id: Some("default".into()),
        challenge: Some(challenge),
    }
}

/// Runs the server side of TOKEN auth with `qops`, then serves one call.
async fn token_server(l: TcpListener, qops: &'static str) {
    let mut p = Peer::accept(&l).await;
    assert_eq!(p.preamble().await[6], 0xDF, "SASL auth byte");
    let (h, body) = p.frame().await.expect("negotiate");
    assert_eq!(h.call_id, frame::SASL_CALL_ID);
    assert!(h.client_id.is_empty());
    let (m, _) = frame::decode_delimited::<RpcSaslProto>(&body, "sasl").expect("sasl");
    assert_eq!(m.state, SaslState::Negotiate as i32);
    let b64 = base64::engine::general_purpose::STANDARD;
    let t = test_token();
    let server = FakeDigestServer {
        username: b64.encode(&t.identifier),
        password: b64.encode(&t.password),
        nonce: "n0nce".into(),
        qops: qops.into(),
    };
    let advertised = token_auth(server.challenge());
    p.send(sasl_reply(
        SaslState::Negotiate,
        None,
        vec![advertised.clone()],
    ))
    .await;
    let (_, body) = p.frame().await.expect("initiate");
    let (m, _) = frame::decode_delimited::<RpcSaslProto>(&body, "sasl").expect("sasl");
    assert_eq!(m.state, SaslState::Initiate as i32);
    assert_eq!(
        m.auths,
        vec![SaslAuth {
            challenge: None,
            ..advertised
        }],
        "the chosen auth is echoed exactly, without the challenge"
    );
    let (rspauth, layer) = server
        .accept(&m.token.unwrap_or_default())
        .expect("valid digest response");
    p.send(sasl_reply(SaslState::Success, Some(rspauth), vec![]))
        .await;
    p.layer = layer;
    let ctx = p.context().await;
    let ui = ctx.user_info.expect("user info present");
    assert_eq!(
        ui,
        Default::default(),
        "TOKEN auth sends an empty user info"
    );
    let (id, _) = p.call().await.expect("call");
    p.send(success(id, 42)).await;
    let _ = p.frame().await;
}

#[tokio::test]
async fn token_auth_without_security_layer() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(token_server(l, "auth"));
    let c = Connection::connect(&addr, PROTOCOL, &Auth::Token(test_token()), &options())
        .await
        .expect("connect");
    assert_eq!(call(&c, "m").await.expect("call"), 42);
    drop(c);
    server.await.expect("server");
}

#[tokio::test]
async fn token_auth_with_integrity_layer() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(token_server(l, "auth-int,auth"));
    let c = Connection::connect(&addr, PROTOCOL, &Auth::Token(test_token()), &options())
        .await
        .expect("connect");
    assert_eq!(call(&c, "m").await.expect("call"), 42);
    drop(c);
    server.await.expect("server");
}

#[tokio::test]
async fn token_auth_with_privacy_layer() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(token_server(l, "auth-conf"));
    let c = Connection::connect(&addr, PROTOCOL, &Auth::Token(test_token()), &options())
        .await
        .expect("connect");
    assert_eq!(call(&c, "m").await.expect("call"), 42);
    drop(c);
    server.await.expect("server");
}

#[tokio::test]
async fn fatal_during_sasl_is_a_typed_error() {
    let (l, addr) = listener().await;
    tokio::spawn(async move {
        let mut p = Peer::accept(&l).await;
        p.preamble().await;
        p.frame().await;
        p.send(failure(
            -1,
            RpcStatusProto::Fatal,
            crate::exception_class::ACCESS_CONTROL,
        ))
        .await;
    });
    let r = Connection::connect(&addr, PROTOCOL, &Auth::Token(test_token()), &options()).await;
    let err = r.err().expect("must fail");
    assert!(
        err.remote().is_some_and(|e| e.is_access_control()),
        "{err:?}"
    );
}

#[tokio::test]
async fn client_fails_over_on_refused_and_standby() {
    // First address: nothing listens. Second: a standby. Third: active.
    let refused = {
        let (l, addr) = listener().await;
        drop(l);
        addr
    };
    let (standby_l, standby) = listener().await;
    tokio::spawn(async move {
        let mut p = Peer::accept(&standby_l).await;
        p.preamble().await;
        p.context().await;
        let (id, _) = p.call().await.expect("call");
        p.send(failure(
            id,
            RpcStatusProto::Error,
            crate::exception_class::STANDBY,
        ))
        .await;
        let _ = p.frame().await;
    });
    let (active_l, active) = listener().await;
    tokio::spawn(async move {
        let mut p = Peer::accept(&active_l).await;
        p.preamble().await;
        p.context().await;
        while let Some((id, _)) = p.call().await {
            p.send(success(id, 5)).await;
        }
    });
    let client = RpcClient::new(
        vec![refused, standby, active.clone()],
        PROTOCOL,
        simple(),
        options(),
    );
    let req = ApplicationIdProto::default();
    let r: ApplicationIdProto = client.call("m", &req).await.expect("failed over");
    assert_eq!(r.id(), 5);
    assert_eq!(client.current_addr().await, active);
    // The live connection is reused.
    let r: ApplicationIdProto = client.call("m", &req).await.expect("again");
    assert_eq!(r.id(), 5);
}

#[tokio::test]
async fn client_reconnects_after_the_server_closed() {
    let (l, addr) = listener().await;
    tokio::spawn(async move {
        for round in 0..2 {
            let mut p = Peer::accept(&l).await;
            p.preamble().await;
            p.context().await;
            let (id, _) = p.call().await.expect("call");
            p.send(success(id, round)).await;
            // Close after one call, as an idle server would.
        }
    });
    let client = RpcClient::new(vec![addr], PROTOCOL, simple(), options());
    let req = ApplicationIdProto::default();
    let r: ApplicationIdProto = client.call("m", &req).await.expect("first");
    assert_eq!(r.id(), 0);
    // Wait until the reader noticed the close.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r: ApplicationIdProto = client.call("m", &req).await.expect("second");
    assert_eq!(r.id(), 1);
}

#[test]
fn encode_is_prost_compatible() {
    // The request header round-trips through prost.
    let h = frame::request_header(3, &[1; 16], 0);
    let back = RpcRequestHeaderProto::decode(h.encode_to_vec().as_slice()).expect("decode");
    assert_eq!(back, h);
}
