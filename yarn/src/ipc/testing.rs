//! Test support: a fake Hadoop IPC server peer that speaks raw bytes
//! (preamble, SASL with the in-crate DIGEST-MD5 server, context, calls).

use base64::Engine;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::frame;
use crate::credentials::Token;
use crate::proto::common::{
    rpc_response_header_proto::RpcStatusProto, rpc_sasl_proto::SaslAuth, rpc_sasl_proto::SaslState,
    IpcConnectionContextProto, RequestHeaderProto, RpcRequestHeaderProto, RpcResponseHeaderProto,
    RpcSaslProto,
};
use crate::proto::yarn::ApplicationIdProto;
use crate::sasl::digest::fake_server::{FakeDigestServer, ServerLayer};

/// The server's view of one connection.
pub(crate) struct Peer {
    stream: TcpStream,
    buf: Vec<u8>,
    layer: Option<ServerLayer>,
    plain: Vec<u8>,
}

impl Peer {
    pub(crate) async fn accept(listener: &TcpListener) -> Peer {
        let (stream, _) = listener.accept().await.expect("accept");
        Peer {
            stream,
            buf: Vec::new(),
            layer: None,
            plain: Vec::new(),
        }
    }

    pub(crate) async fn preamble(&mut self) -> [u8; 7] {
        let mut p = [0u8; 7];
        self.stream.read_exact(&mut p).await.expect("preamble");
        p
    }

    pub(crate) async fn raw_frame(&mut self) -> Option<Vec<u8>> {
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
    pub(crate) async fn frame(&mut self) -> Option<(RpcRequestHeaderProto, Vec<u8>)> {
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

    pub(crate) async fn send(&mut self, bytes: Vec<u8>) {
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
    pub(crate) async fn context(&mut self) -> IpcConnectionContextProto {
        let (h, body) = self.frame().await.expect("context frame");
        assert_eq!(h.call_id, frame::CONNECTION_CONTEXT_CALL_ID);
        assert_eq!(h.retry_count, Some(-1));
        assert_eq!(h.client_id.len(), 16);
        frame::decode_delimited::<IpcConnectionContextProto>(&body, "ctx")
            .expect("context")
            .0
    }

    /// Reads one call: (call id, method).
    pub(crate) async fn call(&mut self, protocol: &str) -> Option<(i32, String, Vec<u8>)> {
        let (h, body) = self.frame().await?;
        let (rh, used) = frame::decode_delimited::<RequestHeaderProto>(&body, "rh").expect("rh");
        assert_eq!(rh.declaring_class_protocol_name, protocol);
        assert_eq!(rh.client_protocol_version, 1);
        Some((h.call_id, rh.method_name, body[used..].to_vec()))
    }
}

pub(crate) fn split_request(f: &[u8]) -> (RpcRequestHeaderProto, Vec<u8>) {
    let (h, used) =
        frame::decode_delimited::<RpcRequestHeaderProto>(&f[4..], "req header").expect("header");
    (h, f[4 + used..].to_vec())
}

pub(crate) fn header(call_id: i32, status: RpcStatusProto) -> RpcResponseHeaderProto {
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

pub(crate) fn success(call_id: i32, id: i32) -> Vec<u8> {
    let body = ApplicationIdProto {
        id: Some(id),
        cluster_timestamp: Some(7),
    };
    frame::encode_frame(&[&header(call_id, RpcStatusProto::Success), &body])
}

pub(crate) fn failure(call_id: i32, status: RpcStatusProto, class: &str) -> Vec<u8> {
    let mut h = header(call_id, status);
    h.exception_class_name = Some(class.to_string());
    h.error_msg = Some(format!("{class}: boom\n\tat Some.frame"));
    frame::encode_frame(&[&h])
}

pub(crate) fn sasl_reply(
    state: SaslState,
    token: Option<Vec<u8>>,
    auths: Vec<SaslAuth>,
) -> Vec<u8> {
    let msg = RpcSaslProto {
        version: None,
        state: state as i32,
        token,
        auths,
    };
    frame::encode_frame(&[&header(frame::SASL_CALL_ID, RpcStatusProto::Success), &msg])
}

pub(crate) async fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    (l, addr)
}

pub(crate) fn test_token() -> Token {
    Token {
        identifier: b"appattempt-identifier".to_vec(),
        password: vec![1, 2, 3, 4, 250],
        kind: "YARN_AM_RM_TOKEN".into(),
        service: String::new(),
    }
}

pub(crate) fn token_auth(challenge: Vec<u8>) -> SaslAuth {
    SaslAuth {
        method: "TOKEN".into(),
        mechanism: "DIGEST-MD5".into(),
        protocol: Some(String::new()),
        server_id: Some("default".into()),
        challenge: Some(challenge),
    }
}

/// Encodes a SUCCESS reply carrying `body`.
pub(crate) fn reply<M: Message>(call_id: i32, body: &M) -> Vec<u8> {
    frame::encode_frame(&[&header(call_id, RpcStatusProto::Success), body])
}

impl Peer {
    /// Server side of TOKEN/DIGEST-MD5 authentication with `qops`, then the
    /// connection context (which must carry an empty user info).
    pub(crate) async fn token_handshake(&mut self, token: &Token, qops: &str) {
        assert_eq!(self.preamble().await[6], 0xDF, "SASL auth byte");
        let (h, body) = self.frame().await.expect("negotiate");
        assert_eq!(h.call_id, frame::SASL_CALL_ID);
        assert!(h.client_id.is_empty());
        let (m, _) = frame::decode_delimited::<RpcSaslProto>(&body, "sasl").expect("sasl");
        assert_eq!(m.state, SaslState::Negotiate as i32);
        let b64 = base64::engine::general_purpose::STANDARD;
        let server = FakeDigestServer {
            username: b64.encode(&token.identifier),
            password: b64.encode(&token.password),
            nonce: "n0nce".into(),
            qops: qops.into(),
        };
        let advertised = token_auth(server.challenge());
        self.send(sasl_reply(
            SaslState::Negotiate,
            None,
            vec![advertised.clone()],
        ))
        .await;
        let (_, body) = self.frame().await.expect("initiate");
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
        self.send(sasl_reply(SaslState::Success, Some(rspauth), vec![]))
            .await;
        self.layer = layer;
        let ctx = self.context().await;
        let ui = ctx.user_info.expect("user info present");
        assert_eq!(
            ui,
            Default::default(),
            "TOKEN auth sends an empty user info"
        );
    }
}
