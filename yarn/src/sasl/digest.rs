//! DIGEST-MD5 client (RFC 2831) as used by Hadoop TOKEN authentication,
//! with the auth-int and auth-conf security layers (3DES and RC4).
//!
//! A sans-IO state enum: `Pending` → (challenge) → `Stepped` → (rspauth) →
//! `Completed`, or `Errored`. Helper names follow the RFC (`h`, `kd`, `a1`).

use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};

use super::SaslMechanism;
use crate::error::{Error, Result};

type HmacMd5 = Hmac<Md5>;
type Des3CbcEnc = cbc::Encryptor<des::TdesEde3>;
type Des3CbcDec = cbc::Decryptor<des::TdesEde3>;
type Rc4 = rc4::Rc4<rc4::consts::U16>;

const NC: &str = "00000001";
const MAXBUF: u32 = 65536;
const AUTH_INT_SUFFIX: &str = ":00000000000000000000000000000000";
const KIC_MAGIC: &[u8] = b"Digest session key to client-to-server signing key magic constant";
const KIS_MAGIC: &[u8] = b"Digest session key to server-to-client signing key magic constant";
const KCC_MAGIC: &[u8] = b"Digest H(A1) to client-to-server sealing key magic constant";
const KCS_MAGIC: &[u8] = b"Digest H(A1) to server-to-client sealing key magic constant";

/// Quality of protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Qop {
    Auth,
    AuthInt,
    AuthConf,
}

impl Qop {
    fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
            Qop::AuthConf => "auth-conf",
        }
    }
}

impl TryFrom<&str> for Qop {
    type Error = Error;
    fn try_from(s: &str) -> Result<Qop> {
        match s.trim() {
            "auth" => Ok(Qop::Auth),
            "auth-int" => Ok(Qop::AuthInt),
            "auth-conf" => Ok(Qop::AuthConf),
            other => Err(Error::sasl(format!("unknown qop {other:?}"))),
        }
    }
}

/// Confidentiality cipher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CipherKind {
    TripleDes,
    Rc4,
}

impl CipherKind {
    fn as_str(self) -> &'static str {
        match self {
            CipherKind::TripleDes => "3des",
            CipherKind::Rc4 => "rc4",
        }
    }
}

/// The parsed directives of a digest challenge.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub realm: Option<String>,
    pub nonce: String,
    pub qops: Vec<String>,
    pub ciphers: Vec<String>,
    pub charset_utf8: bool,
}

/// Parses `key=value,key="quoted, value"` lists.
pub(crate) fn parse_directives(input: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i] == b',' || bytes[i].is_ascii_whitespace()) {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let key_start = i;
        while i < bytes.len() && bytes[i] != b'=' {
            i += 1;
        }
        if i >= bytes.len() {
            return Err(Error::sasl(format!("directive without '=' in {input:?}")));
        }
        let key = input[key_start..i].trim().to_ascii_lowercase();
        i += 1;
        let mut value = String::new();
        if i < bytes.len() && bytes[i] == b'"' {
            i += 1;
            loop {
                match bytes.get(i) {
                    None => return Err(Error::sasl(format!("unterminated quote in {input:?}"))),
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        // Escaped character: copy the next whole UTF-8 character.
                        i += 1;
                        if let Some(ch) = input.get(i..).and_then(|r| r.chars().next()) {
                            value.push(ch);
                            i += ch.len_utf8();
                        }
                    }
                    Some(_) => {
                        // Copy one UTF-8 character.
                        let ch = input[i..].chars().next().unwrap_or('\u{fffd}');
                        value.push(ch);
                        i += ch.len_utf8();
                    }
                }
            }
        } else {
            let start = i;
            while i < bytes.len() && bytes[i] != b',' {
                i += 1;
            }
            value = input[start..i].trim().to_string();
        }
        out.push((key, value));
    }
    Ok(out)
}

impl Challenge {
    pub(crate) fn parse(bytes: &[u8]) -> Result<Challenge> {
        let text =
            std::str::from_utf8(bytes).map_err(|_| Error::sasl("digest challenge is not UTF-8"))?;
        let mut c = Challenge::default();
        let mut nonce = None;
        for (k, v) in parse_directives(text)? {
            match k.as_str() {
                "realm" => c.realm = Some(v),
                "nonce" => nonce = Some(v),
                "qop" => c.qops = v.split(',').map(|s| s.trim().to_string()).collect(),
                "cipher" => c.ciphers = v.split(',').map(|s| s.trim().to_string()).collect(),
                "charset" => c.charset_utf8 = v.eq_ignore_ascii_case("utf-8"),
                _ => {}
            }
        }
        c.nonce = nonce.ok_or_else(|| Error::sasl("digest challenge without nonce"))?;
        if c.qops.is_empty() {
            c.qops.push("auth".into());
        }
        Ok(c)
    }
}

fn h(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

fn kd(k: &str, s: &str) -> [u8; 16] {
    h(format!("{k}:{s}").as_bytes())
}

/// Inputs of the digest computation; public for the RFC test vector.
pub(crate) struct DigestInputs<'a> {
    pub username: &'a str,
    pub realm: &'a str,
    pub password: &'a str,
    pub nonce: &'a str,
    pub cnonce: &'a str,
    pub digest_uri: &'a str,
    pub qop: Qop,
}

impl DigestInputs<'_> {
    /// `H(A1)` as raw bytes: `H( H(user:realm:pass) : nonce : cnonce )`.
    pub(crate) fn ha1(&self) -> [u8; 16] {
        let inner = h(format!("{}:{}:{}", self.username, self.realm, self.password).as_bytes());
        let mut a1 = inner.to_vec();
        a1.extend_from_slice(format!(":{}:{}", self.nonce, self.cnonce).as_bytes());
        h(&a1)
    }

    fn a2(&self, prefix: &str) -> String {
        let suffix = if self.qop == Qop::Auth {
            ""
        } else {
            AUTH_INT_SUFFIX
        };
        format!("{prefix}:{}{suffix}", self.digest_uri)
    }

    fn digest(&self, a2: &str) -> String {
        hex(&kd(
            &hex(&self.ha1()),
            &format!(
                "{}:{NC}:{}:{}:{}",
                self.nonce,
                self.cnonce,
                self.qop.as_str(),
                hex(&h(a2.as_bytes()))
            ),
        ))
    }

    /// The `response=` value the client sends.
    pub(crate) fn response(&self) -> String {
        self.digest(&self.a2("AUTHENTICATE"))
    }

    /// The `rspauth=` value the server must send back.
    pub(crate) fn rspauth(&self) -> String {
        self.digest(&self.a2(""))
    }
}

enum Sealer {
    Des3Enc(Box<Des3CbcEnc>),
    Des3Dec(Box<Des3CbcDec>),
    Rc4(Box<Rc4>),
}

/// The negotiated security layer (auth-int or auth-conf).
struct SecurityLayer {
    kic: [u8; 16],
    kis: [u8; 16],
    send_seq: u32,
    recv_seq: u32,
    /// (encrypt outgoing, decrypt incoming) for auth-conf.
    seal: Option<(Sealer, Sealer)>,
}

/// Expands 7 key bytes into 8 DES key bytes (7 bits each, low bit parity).
fn add_des_parity(raw: &[u8]) -> [u8; 8] {
    let mut v: u64 = 0;
    for b in raw.iter().take(7) {
        v = (v << 8) | u64::from(*b);
    }
    let mut out = [0u8; 8];
    for (i, o) in out.iter_mut().enumerate() {
        let seven = ((v >> (49 - 7 * i)) & 0x7f) as u8;
        let mut byte = seven << 1;
        if byte.count_ones().is_multiple_of(2) {
            byte |= 1;
        }
        *o = byte;
    }
    out
}

fn des3_key_iv(kc: &[u8; 16]) -> ([u8; 24], [u8; 8]) {
    let k1 = add_des_parity(&kc[0..7]);
    let k2 = add_des_parity(&kc[7..14]);
    let mut key = [0u8; 24];
    key[0..8].copy_from_slice(&k1);
    key[8..16].copy_from_slice(&k2);
    key[16..24].copy_from_slice(&k1);
    let mut iv = [0u8; 8];
    iv.copy_from_slice(&kc[8..16]);
    (key, iv)
}

impl SecurityLayer {
    /// The client's layer: signs with Kic, seals with Kcc.
    fn new(ha1: &[u8; 16], qop: Qop, cipher: Option<CipherKind>) -> Result<SecurityLayer> {
        Self::with_direction(ha1, qop, cipher, false)
    }

    /// `as_server` swaps the directions (the server signs with Kis and
    /// seals with Kcs); used by the in-crate fake server in tests.
    fn with_direction(
        ha1: &[u8; 16],
        qop: Qop,
        cipher: Option<CipherKind>,
        as_server: bool,
    ) -> Result<SecurityLayer> {
        let with = |magic: &[u8], key: &[u8]| {
            let mut v = key.to_vec();
            v.extend_from_slice(magic);
            h(&v)
        };
        let (mut kic, mut kis) = (with(KIC_MAGIC, ha1), with(KIS_MAGIC, ha1));
        if as_server {
            std::mem::swap(&mut kic, &mut kis);
        }
        let seal = match (qop, cipher) {
            (Qop::AuthConf, Some(kind)) => {
                let (mut kcc, mut kcs) = (with(KCC_MAGIC, ha1), with(KCS_MAGIC, ha1));
                if as_server {
                    std::mem::swap(&mut kcc, &mut kcs);
                }
                Some(match kind {
                    CipherKind::TripleDes => {
                        let (ek, eiv) = des3_key_iv(&kcc);
                        let (dk, div) = des3_key_iv(&kcs);
                        let enc = Des3CbcEnc::new_from_slices(&ek, &eiv)
                            .map_err(|_| Error::sasl("bad 3des key length"))?;
                        let dec = Des3CbcDec::new_from_slices(&dk, &div)
                            .map_err(|_| Error::sasl("bad 3des key length"))?;
                        (
                            Sealer::Des3Enc(Box::new(enc)),
                            Sealer::Des3Dec(Box::new(dec)),
                        )
                    }
                    CipherKind::Rc4 => {
                        use rc4::KeyInit;
                        let enc = Rc4::new_from_slice(&kcc)
                            .map_err(|_| Error::sasl("bad rc4 key length"))?;
                        let dec = Rc4::new_from_slice(&kcs)
                            .map_err(|_| Error::sasl("bad rc4 key length"))?;
                        (Sealer::Rc4(Box::new(enc)), Sealer::Rc4(Box::new(dec)))
                    }
                })
            }
            (Qop::AuthConf, None) => return Err(Error::sasl("auth-conf without a cipher")),
            _ => None,
        };
        Ok(SecurityLayer {
            kic,
            kis,
            send_seq: 0,
            recv_seq: 0,
            seal,
        })
    }

    fn mac(key: &[u8; 16], seq: u32, msg: &[u8]) -> Result<[u8; 10]> {
        let mut m = <HmacMd5 as Mac>::new_from_slice(key).map_err(|_| Error::sasl("hmac key"))?;
        m.update(&seq.to_be_bytes());
        m.update(msg);
        let full = m.finalize().into_bytes();
        let mut out = [0u8; 10];
        out.copy_from_slice(&full[..10]);
        Ok(out)
    }

    fn wrap(&mut self, msg: &[u8]) -> Result<Vec<u8>> {
        let seq = self.send_seq;
        self.send_seq = self.send_seq.wrapping_add(1);
        let mac = Self::mac(&self.kic, seq, msg)?;
        let mut out = match &mut self.seal {
            None => {
                let mut v = msg.to_vec();
                v.extend_from_slice(&mac);
                v
            }
            Some((Sealer::Des3Enc(enc), _)) => {
                let pad = 8 - ((msg.len() + 10) % 8);
                let mut v = msg.to_vec();
                v.extend(std::iter::repeat_n(pad as u8, pad));
                v.extend_from_slice(&mac);
                for block in v.chunks_exact_mut(8) {
                    enc.encrypt_block_mut(block.into());
                }
                v
            }
            Some((Sealer::Rc4(rc), _)) => {
                let mut v = msg.to_vec();
                v.extend_from_slice(&mac);
                rc.apply_keystream(&mut v);
                v
            }
            Some(_) => return Err(Error::sasl("security layer in a bad state")),
        };
        out.extend_from_slice(&[0, 1]);
        out.extend_from_slice(&seq.to_be_bytes());
        Ok(out)
    }

    fn unwrap(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        if data.len() < 16 {
            return Err(Error::sasl(format!(
                "wrapped message of {} bytes is too short",
                data.len()
            )));
        }
        let (body, trailer) = data.split_at(data.len() - 6);
        if trailer[0..2] != [0, 1] {
            return Err(Error::sasl("wrapped message has a bad version"));
        }
        let seq = u32::from_be_bytes([trailer[2], trailer[3], trailer[4], trailer[5]]);
        if seq != self.recv_seq {
            return Err(Error::sasl(format!(
                "wrapped message out of sequence: got {seq}, expected {}",
                self.recv_seq
            )));
        }
        self.recv_seq = self.recv_seq.wrapping_add(1);
        let plain = match &mut self.seal {
            None => body.to_vec(),
            Some((_, Sealer::Des3Dec(dec))) => {
                if body.len() % 8 != 0 {
                    return Err(Error::sasl("3des message is not a whole number of blocks"));
                }
                let mut v = body.to_vec();
                for block in v.chunks_exact_mut(8) {
                    dec.decrypt_block_mut(block.into());
                }
                v
            }
            Some((_, Sealer::Rc4(rc))) => {
                let mut v = body.to_vec();
                rc.apply_keystream(&mut v);
                v
            }
            Some(_) => return Err(Error::sasl("security layer in a bad state")),
        };
        if plain.len() < 10 {
            return Err(Error::sasl("wrapped message shorter than its MAC"));
        }
        let (content, mac) = plain.split_at(plain.len() - 10);
        let msg = if matches!(self.seal, Some((_, Sealer::Des3Dec(_)))) {
            let pad = usize::from(*content.last().unwrap_or(&0));
            if pad == 0 || pad > 8 || pad > content.len() {
                return Err(Error::sasl("bad 3des padding"));
            }
            &content[..content.len() - pad]
        } else {
            content
        };
        let expected = Self::mac(&self.kis, seq, msg)?;
        if expected != mac {
            return Err(Error::sasl("wrapped message MAC mismatch"));
        }
        Ok(msg.to_vec())
    }
}

enum DigestState {
    Pending,
    Stepped {
        expected_rspauth: String,
        layer: Option<SecurityLayer>,
    },
    Completed {
        layer: Option<SecurityLayer>,
    },
    Errored,
}

/// A DIGEST-MD5 client session.
pub(crate) struct DigestMd5Client {
    username: String,
    password: String,
    protocol: String,
    server_id: String,
    cnonce: Option<String>,
    state: DigestState,
}

impl DigestMd5Client {
    /// `username`/`password` are the already Base64-encoded token parts;
    /// `protocol`/`server_id` come from the advertised `SaslAuth`.
    pub(crate) fn new(
        username: String,
        password: String,
        protocol: String,
        server_id: String,
    ) -> DigestMd5Client {
        DigestMd5Client {
            username,
            password,
            protocol,
            server_id,
            cnonce: None,
            state: DigestState::Pending,
        }
    }

    /// Pins the client nonce (tests).
    pub(crate) fn with_cnonce(mut self, cnonce: &str) -> DigestMd5Client {
        self.cnonce = Some(cnonce.to_string());
        self
    }

    fn respond(&mut self, challenge: &[u8]) -> Result<(Vec<u8>, DigestState)> {
        let c = Challenge::parse(challenge)?;
        // Strongest offered qop we can do.
        let mut qop = Qop::Auth;
        let mut cipher = None;
        for q in &c.qops {
            let Ok(q) = Qop::try_from(q.as_str()) else {
                continue;
            };
            if q == Qop::AuthConf {
                let kind = if c.ciphers.iter().any(|x| x == "3des") {
                    Some(CipherKind::TripleDes)
                } else if c.ciphers.iter().any(|x| x == "rc4") {
                    Some(CipherKind::Rc4)
                } else {
                    None
                };
                if kind.is_some() && q > qop {
                    qop = q;
                    cipher = kind;
                }
            } else if q > qop {
                qop = q;
            }
        }
        if qop != Qop::AuthConf {
            cipher = None;
        }
        let cnonce = match &self.cnonce {
            Some(c) => c.clone(),
            None => {
                use base64::Engine;
                let bytes: [u8; 24] = rand::random();
                base64::engine::general_purpose::STANDARD.encode(bytes)
            }
        };
        let realm = c.realm.clone().unwrap_or_default();
        let digest_uri = format!("{}/{}", self.protocol, self.server_id);
        let inputs = DigestInputs {
            username: &self.username,
            realm: &realm,
            password: &self.password,
            nonce: &c.nonce,
            cnonce: &cnonce,
            digest_uri: &digest_uri,
            qop,
        };
        let mut resp = String::new();
        if c.charset_utf8 {
            resp.push_str("charset=utf-8,");
        }
        resp.push_str(&format!("username=\"{}\",", self.username));
        if c.realm.is_some() {
            resp.push_str(&format!("realm=\"{realm}\","));
        }
        resp.push_str(&format!(
            "nonce=\"{}\",nc={NC},cnonce=\"{cnonce}\",digest-uri=\"{digest_uri}\",maxbuf={MAXBUF},response={},qop={}",
            c.nonce,
            inputs.response(),
            qop.as_str()
        ));
        if let Some(kind) = cipher {
            resp.push_str(&format!(",cipher=\"{}\"", kind.as_str()));
        }
        let layer = if qop == Qop::Auth {
            None
        } else {
            Some(SecurityLayer::new(&inputs.ha1(), qop, cipher)?)
        };
        Ok((
            resp.into_bytes(),
            DigestState::Stepped {
                expected_rspauth: inputs.rspauth(),
                layer,
            },
        ))
    }

    fn verify(expected: &str, token: &[u8]) -> Result<()> {
        let text = std::str::from_utf8(token).map_err(|_| Error::sasl("rspauth is not UTF-8"))?;
        let got = parse_directives(text)?
            .into_iter()
            .find(|(k, _)| k == "rspauth")
            .map(|(_, v)| v)
            .ok_or_else(|| Error::sasl("server final message has no rspauth"))?;
        if got != expected {
            return Err(Error::sasl(
                "server rspauth does not match: mutual authentication failed",
            ));
        }
        Ok(())
    }
}

impl SaslMechanism for DigestMd5Client {
    fn step(&mut self, challenge: Option<&[u8]>) -> Result<Vec<u8>> {
        match std::mem::replace(&mut self.state, DigestState::Errored) {
            DigestState::Pending => {
                let challenge =
                    challenge.ok_or_else(|| Error::sasl("DIGEST-MD5 needs a server challenge"))?;
                let (resp, next) = self.respond(challenge)?;
                self.state = next;
                Ok(resp)
            }
            DigestState::Stepped {
                expected_rspauth,
                layer,
            } => {
                // Some servers send rspauth as a CHALLENGE; answer with nothing.
                Self::verify(&expected_rspauth, challenge.unwrap_or_default())?;
                self.state = DigestState::Completed { layer };
                Ok(Vec::new())
            }
            DigestState::Completed { .. } | DigestState::Errored => {
                Err(Error::sasl("DIGEST-MD5 challenge after completion"))
            }
        }
    }

    fn complete(&mut self, token: Option<&[u8]>) -> Result<()> {
        match std::mem::replace(&mut self.state, DigestState::Errored) {
            DigestState::Stepped {
                expected_rspauth,
                layer,
            } => {
                let token = token.ok_or_else(|| Error::sasl("SUCCESS without rspauth"))?;
                Self::verify(&expected_rspauth, token)?;
                self.state = DigestState::Completed { layer };
                Ok(())
            }
            done @ DigestState::Completed { .. } => {
                self.state = done;
                Ok(())
            }
            _ => Err(Error::sasl("SUCCESS before the DIGEST-MD5 exchange")),
        }
    }

    fn has_security_layer(&self) -> bool {
        matches!(self.state, DigestState::Completed { layer: Some(_) })
    }

    fn wrap(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        match &mut self.state {
            DigestState::Completed { layer: Some(l) } => l.wrap(data),
            _ => Ok(data.to_vec()),
        }
    }

    fn unwrap(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        match &mut self.state {
            DigestState::Completed { layer: Some(l) } => l.unwrap(data),
            _ => Ok(data.to_vec()),
        }
    }
}

/// A minimal DIGEST-MD5 *server* for tests of the negotiation over real
/// sockets: issues a challenge, checks the client's response, answers with
/// rspauth and provides the server side of the security layer.
#[cfg(test)]
pub(crate) mod fake_server {
    use super::*;

    /// The server's side of a negotiated security layer.
    pub(crate) struct ServerLayer(SecurityLayer);

    impl ServerLayer {
        pub(crate) fn wrap(&mut self, data: &[u8]) -> Result<Vec<u8>> {
            self.0.wrap(data)
        }
        pub(crate) fn unwrap(&mut self, data: &[u8]) -> Result<Vec<u8>> {
            self.0.unwrap(data)
        }
    }

    /// Challenge parameters; `password` is the Base64 token password.
    pub(crate) struct FakeDigestServer {
        pub(crate) username: String,
        pub(crate) password: String,
        pub(crate) nonce: String,
        /// e.g. `auth` or `auth-int,auth`.
        pub(crate) qops: String,
    }

    impl FakeDigestServer {
        pub(crate) fn challenge(&self) -> Vec<u8> {
            format!(
                "realm=\"default\",nonce=\"{}\",qop=\"{}\",charset=utf-8,algorithm=md5-sess,cipher=\"3des,rc4\"",
                self.nonce, self.qops
            )
            .into_bytes()
        }

        /// Checks the client's response; returns the SUCCESS token and the layer.
        pub(crate) fn accept(&self, response: &[u8]) -> Result<(Vec<u8>, Option<ServerLayer>)> {
            let text = std::str::from_utf8(response).map_err(|_| Error::sasl("not utf-8"))?;
            let d: std::collections::HashMap<String, String> =
                parse_directives(text)?.into_iter().collect();
            let get = |k: &str| {
                d.get(k)
                    .cloned()
                    .ok_or_else(|| Error::sasl(format!("no {k}")))
            };
            if get("username")? != self.username {
                return Err(Error::sasl("wrong user"));
            }
            let qop = Qop::try_from(get("qop")?.as_str())?;
            let cipher = match d.get("cipher").map(String::as_str) {
                Some("3des") => Some(CipherKind::TripleDes),
                Some("rc4") => Some(CipherKind::Rc4),
                _ => None,
            };
            let cnonce = get("cnonce")?;
            let uri = get("digest-uri")?;
            let inputs = DigestInputs {
                username: &self.username,
                realm: "default",
                password: &self.password,
                nonce: &self.nonce,
                cnonce: &cnonce,
                digest_uri: &uri,
                qop,
            };
            if get("response")? != inputs.response() {
                return Err(Error::sasl("bad digest response"));
            }
            let layer = if qop == Qop::Auth {
                None
            } else {
                Some(ServerLayer(SecurityLayer::with_direction(
                    &inputs.ha1(),
                    qop,
                    cipher,
                    true,
                )?))
            };
            Ok((format!("rspauth={}", inputs.rspauth()).into_bytes(), layer))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2831 section 4, the IMAP example.
    #[test]
    fn rfc2831_vector() {
        let inputs = DigestInputs {
            username: "chris",
            realm: "elwood.innosoft.com",
            password: "secret",
            nonce: "OA6MG9tEQGm2hh",
            cnonce: "OA6MHXh6VqTrRk",
            digest_uri: "imap/elwood.innosoft.com",
            qop: Qop::Auth,
        };
        assert_eq!(inputs.response(), "d388dad90d4bbd760a152321f2143af7");
        assert_eq!(inputs.rspauth(), "ea40f60335c427b5527b84dbabcdfffd");
    }

    #[test]
    fn client_produces_rfc_response() {
        let mut c = DigestMd5Client::new(
            "chris".into(),
            "secret".into(),
            "imap".into(),
            "elwood.innosoft.com".into(),
        )
        .with_cnonce("OA6MHXh6VqTrRk");
        let challenge = br#"realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",qop="auth",algorithm=md5-sess,charset=utf-8"#;
        let resp = String::from_utf8(c.step(Some(challenge)).expect("step")).expect("utf8");
        assert!(
            resp.contains("response=d388dad90d4bbd760a152321f2143af7"),
            "{resp}"
        );
        assert!(resp.contains("digest-uri=\"imap/elwood.innosoft.com\""));
        assert!(!c.has_security_layer());
        assert!(c
            .complete(Some(b"rspauth=ffffffffffffffffffffffffffffffff"))
            .is_err());
    }

    #[test]
    fn client_accepts_right_rspauth() {
        let mut c = DigestMd5Client::new(
            "chris".into(),
            "secret".into(),
            "imap".into(),
            "elwood.innosoft.com".into(),
        )
        .with_cnonce("OA6MHXh6VqTrRk");
        let challenge = br#"realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",qop="auth",algorithm=md5-sess,charset=utf-8"#;
        c.step(Some(challenge)).expect("step");
        c.complete(Some(b"rspauth=ea40f60335c427b5527b84dbabcdfffd"))
            .expect("rspauth ok");
        assert_eq!(c.wrap(b"abc").expect("wrap"), b"abc");
    }

    #[test]
    fn directives_with_quotes_and_commas() {
        let d =
            parse_directives(r#"realm="default",nonce="a,b",qop="auth,auth-int",charset=utf-8"#)
                .expect("parse");
        assert_eq!(d[1], ("nonce".into(), "a,b".into()));
        assert_eq!(d[2], ("qop".into(), "auth,auth-int".into()));
        assert!(parse_directives("nonce=\"open").is_err());
        // Escapes, including of a multi-byte character, never split UTF-8.
        let d = parse_directives("realm=\"a\\\"b\\é\",x=1").expect("escapes");
        assert_eq!(d[0].1, "a\"bé");
        assert!(parse_directives("realm=\"\\").is_err());
        assert!(Challenge::parse(b"realm=\"x\"").is_err());
    }

    /// Client and a mirrored "server" layer must round-trip each other's traffic.
    fn mirrored(qop: Qop, cipher: Option<CipherKind>) -> (SecurityLayer, SecurityLayer) {
        let ha1 = h(b"session");
        let client = SecurityLayer::new(&ha1, qop, cipher).expect("client");
        let server = SecurityLayer::with_direction(&ha1, qop, cipher, true).expect("server");
        (client, server)
    }

    #[test]
    fn security_layers_round_trip() {
        for (qop, cipher) in [
            (Qop::AuthInt, None),
            (Qop::AuthConf, Some(CipherKind::TripleDes)),
            (Qop::AuthConf, Some(CipherKind::Rc4)),
        ] {
            let (mut client, mut server) = mirrored(qop, cipher);
            for msg in [&b"hello"[..], b"", &[7u8; 100]] {
                let w = client.wrap(msg).expect("wrap");
                assert_eq!(server.unwrap(&w).expect("unwrap"), msg, "{qop:?}");
                let back = server.wrap(msg).expect("wrap back");
                assert_eq!(client.unwrap(&back).expect("unwrap back"), msg);
            }
            // Tampering is detected.
            let mut w = client.wrap(b"payload").expect("wrap");
            w[0] ^= 1;
            assert!(server.unwrap(&w).is_err(), "{qop:?}");
        }
    }

    #[test]
    fn hostile_challenges_never_panic() {
        let good = "realm=\"default\",nonce=\"abc\",qop=\"auth-conf,auth\",charset=utf-8,cipher=\"3des,rc4\",x=\"é\\é\"";
        for cut in 0..=good.len() {
            if let Some(prefix) = good.get(..cut) {
                let _ = Challenge::parse(prefix.as_bytes());
            }
        }
        for _ in 0..2000 {
            let len = rand::random::<u8>() as usize % 40;
            let bytes: Vec<u8> = (0..len)
                .map(|_| b"=,\" \\aq\xc3\xa9"[rand::random::<u8>() as usize % 9])
                .collect();
            let _ = Challenge::parse(&bytes);
            let mut c =
                DigestMd5Client::new("u".into(), "p".into(), String::new(), "default".into());
            let _ = c.step(Some(&bytes));
        }
    }

    #[test]
    fn des_parity_expansion() {
        let k = add_des_parity(&[0xff; 7]);
        assert!(k.iter().all(|b| b & 0xfe == 0xfe));
        let z = add_des_parity(&[0; 7]);
        assert!(z.iter().all(|&b| b == 1));
    }
}
