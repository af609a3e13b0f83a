//! Connection and client tests against fake servers on 127.0.0.1 that speak
//! raw Hadoop IPC bytes: multiplexing with out-of-order replies, remote
//! errors, disconnects, timeouts, SASL TOKEN with and without a security
//! layer, FATAL during SASL, and HA failover.

use std::time::Duration;

use prost::Message;
use tokio::net::TcpListener;

use super::connection::{Auth, ConnectOptions, Connection};
use super::frame;
use super::testing::{failure, listener, success, test_token, Peer};
use super::RpcClient;
use crate::error::Error;
use crate::proto::common::{rpc_response_header_proto::RpcStatusProto, RpcRequestHeaderProto};
use crate::proto::yarn::ApplicationIdProto;

const PROTOCOL: &str = "test.ProtocolPB";

fn options() -> ConnectOptions {
    ConnectOptions {
        connect_timeout: Duration::from_secs(5),
        call_timeout: Duration::from_secs(5),
        ping_interval: Duration::from_secs(60),
        ..ConnectOptions::default()
    }
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
            calls.push(p.call(PROTOCOL).await.expect("call"));
        }
        let ids: Vec<i32> = calls.iter().map(|c| c.0).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 4, "distinct call ids {ids:?}");
        assert!(ids.iter().all(|&i| i >= 0));
        // Reply in reverse order; "fail" gets a remote exception.
        for (id, method, _) in calls.into_iter().rev() {
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
        p.call(PROTOCOL).await;
        p.call(PROTOCOL).await;
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
        let (id, _, _) = p.call(PROTOCOL).await.expect("first");
        // Never answer the first; answer the second.
        let _ = id;
        let (id2, _, _) = p.call(PROTOCOL).await.expect("second");
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

/// Runs the server side of TOKEN auth with `qops`, then serves one call.
async fn token_server(l: TcpListener, qops: &'static str) {
    let mut p = Peer::accept(&l).await;
    p.token_handshake(&test_token(), qops).await;
    let (id, _, _) = p.call(PROTOCOL).await.expect("call");
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
        let (id, _, _) = p.call(PROTOCOL).await.expect("call");
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
        while let Some((id, _, _)) = p.call(PROTOCOL).await {
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
            let (id, _, _) = p.call(PROTOCOL).await.expect("call");
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

#[tokio::test]
async fn pings_while_a_call_is_outstanding() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let mut p = Peer::accept(&l).await;
        p.preamble().await;
        p.context().await;
        let (id, _, _) = p.call(PROTOCOL).await.expect("call");
        // Stay silent; the client must ping on its own.
        let (h, body) = p.frame().await.expect("ping");
        assert_eq!(h.call_id, frame::PING_CALL_ID);
        assert_eq!(h.retry_count, Some(-1));
        assert!(body.is_empty(), "a ping is a bare header");
        p.send(success(id, 9)).await;
        let _ = p.frame().await;
    });
    let mut o = options();
    o.ping_interval = Duration::from_millis(100);
    let c = Connection::connect(&addr, PROTOCOL, &simple(), &o)
        .await
        .expect("connect");
    assert_eq!(call(&c, "m").await.expect("answered after a ping"), 9);
    drop(c);
    server.await.expect("server saw a ping");
}

#[tokio::test]
async fn idempotent_calls_are_resent_after_a_lost_connection() {
    let (l, addr) = listener().await;
    tokio::spawn(async move {
        // Each connection takes one call and hangs up without answering;
        // the third connection answers.
        for round in 0..3 {
            let mut p = Peer::accept(&l).await;
            p.preamble().await;
            p.context().await;
            let (id, _, _) = p.call(PROTOCOL).await.expect("call");
            if round == 2 {
                p.send(success(id, 3)).await;
                let _ = p.frame().await;
            }
        }
    });
    let client = RpcClient::new(vec![addr], PROTOCOL, simple(), options());
    let req = ApplicationIdProto::default();
    let r: Result<ApplicationIdProto, Error> = client.call("submit", &req).await;
    assert!(
        matches!(r, Err(Error::Disconnected { .. })),
        "a non-idempotent call is not repeated: {r:?}"
    );
    // The second connection drops too, the third answers: resent once.
    let r: ApplicationIdProto = client
        .call_idempotent("report", &req)
        .await
        .expect("resent on a fresh connection");
    assert_eq!(r.id(), 3);
}
