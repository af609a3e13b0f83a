//! Sans-IO encoding and decoding of Hadoop IPC packets (PROTOCOL.md
//! section 1): the 7-byte preamble, 4-byte big-endian length framing, and the
//! varint-delimited headers inside a frame. Decoding is check-then-parse:
//! [`check`] says whether a whole frame is buffered (`Ok(None)` means "not
//! yet"), [`parse_response`] then builds the value.

use prost::Message;

use crate::error::{Error, Result};
use crate::proto::common::{
    rpc_request_header_proto::OperationProto, rpc_response_header_proto::RpcStatusProto,
    RequestHeaderProto, RpcKindProto, RpcRequestHeaderProto, RpcResponseHeaderProto, RpcSaslProto,
};

/// `hrpc`, the first four bytes of every connection.
pub(crate) const MAGIC: &[u8; 4] = b"hrpc";
/// `RpcConstants.CURRENT_VERSION`.
pub(crate) const IPC_VERSION: u8 = 9;
/// Default service class.
pub(crate) const SERVICE_CLASS: u8 = 0;
/// Auth byte: plain SIMPLE, no SASL.
pub(crate) const AUTH_NONE: u8 = 0x00;
/// Auth byte: SASL (-33).
pub(crate) const AUTH_SASL: u8 = 0xDF;

/// Call id of the connection context packet.
pub(crate) const CONNECTION_CONTEXT_CALL_ID: i32 = -3;
/// Call id of a ping.
pub(crate) const PING_CALL_ID: i32 = -4;
/// Call id of every SASL packet.
pub(crate) const SASL_CALL_ID: i32 = -33;
/// Retry count sent on out-of-band packets.
pub(crate) const INVALID_RETRY_COUNT: i32 = -1;
/// Largest frame we accept (`ipc.maximum.response.length`, 128 MiB).
pub(crate) const MAX_FRAME_LEN: usize = 128 * 1024 * 1024;
/// `clientProtocolVersion` of every YARN/HDFS PB protocol.
pub(crate) const PROTOCOL_VERSION: u64 = 1;

/// The connection preamble: `hrpc`, version, service class, auth byte.
pub(crate) fn preamble(sasl: bool) -> [u8; 7] {
    let auth = if sasl { AUTH_SASL } else { AUTH_NONE };
    [
        MAGIC[0],
        MAGIC[1],
        MAGIC[2],
        MAGIC[3],
        IPC_VERSION,
        SERVICE_CLASS,
        auth,
    ]
}

/// An `RpcRequestHeaderProto` for `call_id`.
pub(crate) fn request_header(call_id: i32, client_id: &[u8], retry: i32) -> RpcRequestHeaderProto {
    RpcRequestHeaderProto {
        rpc_kind: Some(RpcKindProto::RpcProtocolBuffer as i32),
        rpc_op: Some(OperationProto::RpcFinalPacket as i32),
        call_id,
        client_id: client_id.to_vec(),
        retry_count: Some(retry),
    }
}

/// Frames delimited messages: `u32 BE total | delim(m1) | delim(m2) …`.
pub(crate) fn encode_frame(messages: &[&dyn DelimitedEncode]) -> Vec<u8> {
    let body_len: usize = messages.iter().map(|m| m.delimited_len()).sum();
    let mut out = Vec::with_capacity(4 + body_len);
    out.extend_from_slice(&(body_len as u32).to_be_bytes());
    for m in messages {
        m.encode_delimited_into(&mut out);
    }
    out
}

/// Object-safe "encode me length-delimited" so frames can mix message types.
pub(crate) trait DelimitedEncode {
    fn delimited_len(&self) -> usize;
    fn encode_delimited_into(&self, out: &mut Vec<u8>);
}

impl<M: Message> DelimitedEncode for M {
    fn delimited_len(&self) -> usize {
        let len = self.encoded_len();
        prost::length_delimiter_len(len) + len
    }
    fn encode_delimited_into(&self, out: &mut Vec<u8>) {
        // Encoding into a Vec cannot run out of space.
        let _ = self.encode_length_delimited(out);
    }
}

/// A whole RPC call packet: header, `RequestHeaderProto`, request.
pub(crate) fn encode_call(
    call_id: i32,
    client_id: &[u8],
    method: &str,
    protocol: &str,
    request: &dyn DelimitedEncode,
) -> Vec<u8> {
    let header = request_header(call_id, client_id, 0);
    let req_header = RequestHeaderProto {
        method_name: method.to_string(),
        declaring_class_protocol_name: protocol.to_string(),
        client_protocol_version: PROTOCOL_VERSION,
    };
    encode_frame(&[&header, &req_header, request])
}

/// A SASL packet (call id -33, empty client id).
pub(crate) fn encode_sasl(message: &RpcSaslProto) -> Vec<u8> {
    let header = request_header(SASL_CALL_ID, &[], INVALID_RETRY_COUNT);
    encode_frame(&[&header, message])
}

/// A ping packet: only a header with call id -4.
pub(crate) fn encode_ping(client_id: &[u8]) -> Vec<u8> {
    let header = request_header(PING_CALL_ID, client_id, INVALID_RETRY_COUNT);
    encode_frame(&[&header])
}

/// Is a whole frame buffered? `Ok(Some(n))` gives its size including the
/// 4-byte length, `Ok(None)` means "not yet", `Err` means the length is absurd.
pub(crate) fn check(buf: &[u8]) -> Result<Option<usize>> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > MAX_FRAME_LEN {
        return Err(Error::protocol(
            "",
            format!("frame of {len} bytes exceeds the {MAX_FRAME_LEN} byte limit"),
        ));
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    Ok(Some(4 + len))
}

/// Outcome of a response header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Success,
    Error,
    Fatal,
}

/// A decoded server → client frame.
#[derive(Debug)]
pub(crate) struct Response {
    /// Call id, already cast from the wire's u32 to i32.
    pub call_id: i32,
    pub status: Status,
    pub exception_class: String,
    pub error_message: String,
    /// The bytes after the header (a delimited message on SUCCESS).
    pub body: Vec<u8>,
}

/// Splits one delimited message off the front of `buf`.
pub(crate) fn decode_delimited<M: Message + Default>(
    buf: &[u8],
    what: &'static str,
) -> Result<(M, usize)> {
    let mut slice = buf;
    let len = prost::decode_length_delimiter(&mut slice).map_err(|e| Error::decode(what, e))?;
    let prefix = buf.len() - slice.len();
    if slice.len() < len {
        return Err(Error::protocol(
            "",
            format!(
                "{what}: delimited length {len} exceeds the {} bytes left",
                slice.len()
            ),
        ));
    }
    let msg = M::decode(&slice[..len]).map_err(|e| Error::decode(what, e))?;
    Ok((msg, prefix + len))
}

/// Parses one complete frame (as sized by [`check`]).
pub(crate) fn parse_response(frame: &[u8]) -> Result<Response> {
    let payload = frame
        .get(4..)
        .ok_or_else(|| Error::protocol("", "frame shorter than its length prefix"))?;
    let (header, used): (RpcResponseHeaderProto, usize) =
        decode_delimited(payload, "RpcResponseHeaderProto")?;
    let status = match RpcStatusProto::try_from(header.status) {
        Ok(RpcStatusProto::Success) => Status::Success,
        Ok(RpcStatusProto::Error) => Status::Error,
        Ok(RpcStatusProto::Fatal) => Status::Fatal,
        Err(_) => {
            return Err(Error::protocol(
                "",
                format!("unknown RPC status {}", header.status),
            ))
        }
    };
    Ok(Response {
        call_id: header.call_id as i32,
        status,
        exception_class: header.exception_class_name.unwrap_or_default(),
        error_message: header.error_msg.unwrap_or_default(),
        body: payload[used..].to_vec(),
    })
}

/// Decodes the delimited message that follows a SUCCESS header.
pub(crate) fn decode_body<M: Message + Default>(body: &[u8], what: &'static str) -> Result<M> {
    if body.is_empty() {
        // An empty message may legitimately be sent with no bytes at all.
        return Ok(M::default());
    }
    decode_delimited::<M>(body, what).map(|(m, _)| m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::common::rpc_sasl_proto::SaslState;

    fn response_frame(
        call_id: u32,
        status: RpcStatusProto,
        body: Option<&RpcSaslProto>,
    ) -> Vec<u8> {
        let header = RpcResponseHeaderProto {
            call_id,
            status: status as i32,
            server_ipc_version_num: Some(9),
            exception_class_name: None,
            error_msg: None,
            error_detail: None,
            client_id: None,
            retry_count: None,
        };
        match body {
            Some(b) => encode_frame(&[&header, b]),
            None => encode_frame(&[&header]),
        }
    }

    #[test]
    fn preamble_bytes() {
        assert_eq!(preamble(false), [b'h', b'r', b'p', b'c', 9, 0, 0]);
        assert_eq!(preamble(true)[6], 0xDF);
    }

    #[test]
    fn call_packet_layout() {
        let req = RpcSaslProto {
            version: None,
            state: SaslState::Negotiate as i32,
            token: None,
            auths: vec![],
        };
        let pkt = encode_call(5, &[7u8; 16], "getClusterNodes", "p.PB", &req);
        let total = u32::from_be_bytes([pkt[0], pkt[1], pkt[2], pkt[3]]) as usize;
        assert_eq!(total + 4, pkt.len());
        let (h, used): (RpcRequestHeaderProto, usize) =
            decode_delimited(&pkt[4..], "h").expect("header");
        assert_eq!(h.call_id, 5);
        assert_eq!(h.retry_count, Some(0));
        assert_eq!(h.rpc_kind, Some(2));
        let (rh, _): (RequestHeaderProto, usize) =
            decode_delimited(&pkt[4 + used..], "rh").expect("request header");
        assert_eq!(rh.method_name, "getClusterNodes");
        assert_eq!(rh.client_protocol_version, 1);
    }

    #[test]
    fn call_id_is_zigzag() {
        // sint32 -33 zigzags to 65 (0x41): field 3 varint tag 0x18 then 0x41.
        let h = request_header(SASL_CALL_ID, &[], -1);
        let bytes = h.encode_to_vec();
        assert!(bytes.windows(2).any(|w| w == [0x18, 0x41]));
    }

    #[test]
    fn check_then_parse() {
        let msg = RpcSaslProto {
            version: None,
            state: SaslState::Success as i32,
            token: Some(b"rspauth=x".to_vec()),
            auths: vec![],
        };
        let frame = response_frame(SASL_CALL_ID as u32, RpcStatusProto::Success, Some(&msg));
        for cut in 0..frame.len() {
            assert_eq!(check(&frame[..cut]).expect("check"), None, "cut {cut}");
        }
        let mut buf = frame.clone();
        buf.extend_from_slice(&[0, 0]);
        assert_eq!(check(&buf).expect("check"), Some(frame.len()));
        let r = parse_response(&frame).expect("parse");
        assert_eq!(r.call_id, -33);
        assert_eq!(r.status, Status::Success);
        let back: RpcSaslProto = decode_body(&r.body, "sasl").expect("body");
        assert_eq!(back, msg);
    }

    #[test]
    fn oversize_frame_is_error() {
        let buf = [0xFFu8, 0xFF, 0xFF, 0xFF, 0];
        assert!(check(&buf).is_err());
    }

    #[test]
    fn random_frames_never_panic() {
        for _ in 0..5000 {
            let len = rand::random::<u8>() as usize % 48;
            let mut bytes: Vec<u8> = (0..len).map(|_| rand::random::<u8>()).collect();
            if bytes.len() >= 4 {
                let body = (bytes.len() - 4) as u32;
                bytes[..4].copy_from_slice(&body.to_be_bytes());
            }
            if let Ok(Some(n)) = check(&bytes) {
                if let Ok(r) = parse_response(&bytes[..n]) {
                    let _ = decode_body::<RpcSaslProto>(&r.body, "sasl");
                }
            }
        }
    }

    #[test]
    fn truncated_body_is_error() {
        // header claims a delimited message of 100 bytes, only 2 follow
        let mut frame = vec![0, 0, 0, 3, 100, 1, 2];
        assert!(parse_response(&frame).is_err());
        frame.truncate(4);
        assert!(parse_response(&frame).is_err());
    }
}
