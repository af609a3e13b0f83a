//! SASL for Hadoop IPC (PROTOCOL.md section 2).
//!
//! A mechanism is a small sans-IO trait, [`SaslMechanism`]: `step` turns a
//! server challenge into a response, `complete` checks the server's final
//! token, and `wrap`/`unwrap` apply the negotiated security layer. DIGEST-MD5
//! with a Hadoop token lives in [`digest`], Kerberos GSSAPI in [`gssapi`];
//! SIMPLE needs no mechanism (the server "switches to simple").
//!
//! [`Negotiation`] is the one place that runs the Hadoop exchange
//! (NEGOTIATE → INITIATE → CHALLENGE/RESPONSE… → SUCCESS). It is sans-IO too:
//! the connection feeds it each `RpcSaslProto` the server sends and writes
//! whatever it returns.

pub(crate) mod digest;
pub(crate) mod gssapi;

use base64::Engine;

use crate::credentials::Token;
use crate::error::{Error, Result};
use crate::kerberos::{without_realm, KerberosCredentials, Qop};
use crate::proto::common::{rpc_sasl_proto::SaslAuth, rpc_sasl_proto::SaslState, RpcSaslProto};

/// SASL method name for Hadoop token authentication.
pub(crate) const METHOD_TOKEN: &str = "TOKEN";
/// SASL method name for SIMPLE.
pub(crate) const METHOD_SIMPLE: &str = "SIMPLE";
/// SASL method name for Kerberos.
pub(crate) const METHOD_KERBEROS: &str = "KERBEROS";
/// The mechanism used for KERBEROS.
pub(crate) const MECHANISM_GSSAPI: &str = "GSSAPI";
/// The mechanism used for TOKEN.
pub(crate) const MECHANISM_DIGEST_MD5: &str = "DIGEST-MD5";

/// One SASL mechanism, without I/O.
pub(crate) trait SaslMechanism: Send {
    /// Computes the response to a server challenge (`None`: no challenge yet).
    fn step(&mut self, challenge: Option<&[u8]>) -> Result<Vec<u8>>;
    /// Checks the token that came with the server's SUCCESS.
    fn complete(&mut self, token: Option<&[u8]>) -> Result<()>;
    /// True when `wrap`/`unwrap` must be applied to all further traffic.
    fn has_security_layer(&self) -> bool;
    /// Protects one outgoing buffer.
    fn wrap(&mut self, data: &[u8]) -> Result<Vec<u8>>;
    /// Checks (and decrypts) one incoming buffer.
    fn unwrap(&mut self, data: &[u8]) -> Result<Vec<u8>>;
    /// The largest buffer one `wrap` may take (`None`: any); longer data is
    /// wrapped in pieces.
    fn max_wrap_input(&self) -> Option<usize> {
        None
    }
}

/// What a Kerberos client needs to authenticate one connection.
#[derive(Debug, Clone)]
pub(crate) struct KerberosSetup {
    /// Where the ticket comes from.
    pub(crate) credentials: KerberosCredentials,
    /// The configuration key the principal came from (for messages).
    pub(crate) principal_key: String,
    /// The server's principal, `_HOST` resolved.
    pub(crate) principal: String,
    /// `hadoop.rpc.protection`, in the client's order.
    pub(crate) protection: Vec<Qop>,
}

/// How a connection ended up authenticated.
pub(crate) enum Negotiated {
    /// The server switched us to SIMPLE: send a context with the user name.
    Simple,
    /// Authenticated by a mechanism (a token's DIGEST-MD5, or GSSAPI), which
    /// carries any security layer.
    Mechanism(Box<dyn SaslMechanism>),
}

/// What the connection must do next.
pub(crate) enum Next {
    /// Send this message and wait for the server's reply.
    Send(RpcSaslProto),
    /// Send this message; negotiation is then over (no reply follows).
    SendThenDone(RpcSaslProto, Negotiated),
    /// Negotiation is over.
    Done(Negotiated),
}

enum State {
    Start,
    AwaitNegotiate,
    AwaitChallenge(Box<dyn SaslMechanism>),
    Finished,
}

/// The Hadoop SASL exchange as a state machine.
pub(crate) struct Negotiation {
    state: State,
    token: Option<Token>,
    allow_simple: bool,
    kerberos: Option<KerberosSetup>,
    cnonce: Option<String>,
}

impl Negotiation {
    /// A negotiation that may use `token` (for TOKEN) and, if `allow_simple`,
    /// accept a switch to SIMPLE.
    pub(crate) fn new(token: Option<Token>, allow_simple: bool) -> Negotiation {
        Negotiation {
            state: State::Start,
            token,
            allow_simple,
            kerberos: None,
            cnonce: None,
        }
    }

    /// Lets the negotiation use Kerberos (GSSAPI) when the server offers it.
    pub(crate) fn with_kerberos(mut self, setup: KerberosSetup) -> Negotiation {
        self.kerberos = Some(setup);
        self
    }

    /// Pins the DIGEST-MD5 client nonce (tests only).
    #[cfg(test)]
    pub(crate) fn with_cnonce(mut self, cnonce: &str) -> Negotiation {
        self.cnonce = Some(cnonce.to_string());
        self
    }

    /// The first message: NEGOTIATE.
    pub(crate) fn start(&mut self) -> RpcSaslProto {
        self.state = State::AwaitNegotiate;
        sasl_message(SaslState::Negotiate, None, vec![])
    }

    /// Feeds one server message.
    pub(crate) fn receive(&mut self, msg: RpcSaslProto) -> Result<Next> {
        let state = std::mem::replace(&mut self.state, State::Finished);
        let server_state = SaslState::try_from(msg.state)
            .map_err(|_| Error::sasl(format!("unknown SASL state {}", msg.state)))?;
        match (state, server_state) {
            (State::AwaitNegotiate, SaslState::Success) => {
                if self.allow_simple {
                    Ok(Next::Done(Negotiated::Simple))
                } else {
                    Err(Error::sasl(
                        "server switched to SIMPLE but this connection needs a token",
                    ))
                }
            }
            (State::AwaitNegotiate, SaslState::Negotiate) => self.choose(msg.auths),
            (State::AwaitChallenge(mut mech), SaslState::Challenge) => {
                let response = mech.step(msg.token.as_deref())?;
                self.state = State::AwaitChallenge(mech);
                Ok(Next::Send(sasl_message(
                    SaslState::Response,
                    Some(response),
                    vec![],
                )))
            }
            (State::AwaitChallenge(mut mech), SaslState::Success) => {
                mech.complete(msg.token.as_deref())?;
                Ok(Next::Done(Negotiated::Mechanism(mech)))
            }
            (_, other) => Err(Error::sasl(format!(
                "unexpected SASL message {other:?} during negotiation"
            ))),
        }
    }

    fn choose(&mut self, auths: Vec<SaslAuth>) -> Result<Next> {
        let offered: Vec<String> = auths.iter().map(|a| a.method.clone()).collect();
        for auth in auths {
            match auth.method.as_str() {
                METHOD_TOKEN if auth.mechanism == MECHANISM_DIGEST_MD5 => {
                    let Some(token) = &self.token else { continue };
                    let b64 = base64::engine::general_purpose::STANDARD;
                    let mut mech = digest::DigestMd5Client::new(
                        b64.encode(&token.identifier),
                        b64.encode(&token.password),
                        auth.protocol.clone().unwrap_or_default(),
                        auth.server_id.clone().unwrap_or_default(),
                    );
                    if let Some(c) = &self.cnonce {
                        mech = mech.with_cnonce(c);
                    }
                    let mut mech: Box<dyn SaslMechanism> = Box::new(mech);
                    let response = match auth.challenge.as_deref() {
                        Some(challenge) => mech.step(Some(challenge))?,
                        None => Vec::new(),
                    };
                    let echo = SaslAuth {
                        challenge: None,
                        ..auth
                    };
                    self.state = State::AwaitChallenge(mech);
                    return Ok(Next::Send(sasl_message(
                        SaslState::Initiate,
                        Some(response),
                        vec![echo],
                    )));
                }
                METHOD_KERBEROS if auth.mechanism == MECHANISM_GSSAPI => {
                    let Some(setup) = &self.kerberos else {
                        continue;
                    };
                    let advertised = format!(
                        "{}/{}",
                        auth.protocol.as_deref().unwrap_or_default(),
                        auth.server_id.as_deref().unwrap_or_default()
                    );
                    if without_realm(&setup.principal) != advertised {
                        return Err(Error::sasl(format!(
                            "the server's Kerberos principal is {advertised}, but {} expects {}",
                            setup.principal_key, setup.principal
                        )));
                    }
                    let mut mech: Box<dyn SaslMechanism> = Box::new(gssapi::GssapiClient::new(
                        &setup.credentials,
                        &setup.principal,
                        setup.protection.clone(),
                    )?);
                    let response = mech.step(None)?;
                    let echo = SaslAuth {
                        challenge: None,
                        ..auth
                    };
                    self.state = State::AwaitChallenge(mech);
                    return Ok(Next::Send(sasl_message(
                        SaslState::Initiate,
                        Some(response),
                        vec![echo],
                    )));
                }
                METHOD_SIMPLE if self.allow_simple => {
                    let echo = SaslAuth {
                        challenge: None,
                        ..auth
                    };
                    return Ok(Next::SendThenDone(
                        sasl_message(SaslState::Initiate, None, vec![echo]),
                        Negotiated::Simple,
                    ));
                }
                _ => {}
            }
        }
        if self.kerberos.is_none()
            && self.token.is_none()
            && offered.iter().any(|m| m == METHOD_KERBEROS)
        {
            return Err(Error::sasl(format!(
                "the server requires Kerberos (it offers {offered:?}); set hadoop.security.authentication=kerberos in the client's core-site.xml"
            )));
        }
        Err(Error::sasl(format!(
            "client cannot authenticate via {offered:?} (token available: {}, simple allowed: {})",
            self.token.is_some(),
            self.allow_simple
        )))
    }
}

fn sasl_message(state: SaslState, token: Option<Vec<u8>>, auths: Vec<SaslAuth>) -> RpcSaslProto {
    RpcSaslProto {
        version: None,
        state: state as i32,
        token,
        auths,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> Token {
        Token {
            identifier: b"id".to_vec(),
            password: b"pw".to_vec(),
            kind: "YARN_AM_RM_TOKEN".into(),
            service: String::new(),
        }
    }

    fn token_auth(challenge: Option<&str>) -> SaslAuth {
        SaslAuth {
            method: METHOD_TOKEN.into(),
            mechanism: MECHANISM_DIGEST_MD5.into(),
            protocol: Some(String::new()),
            server_id: Some("default".into()),
            challenge: challenge.map(|c| c.as_bytes().to_vec()),
        }
    }

    #[test]
    fn simple_only_server_switches() {
        let mut n = Negotiation::new(None, true);
        let first = n.start();
        assert_eq!(first.state, SaslState::Negotiate as i32);
        let next = n
            .receive(sasl_message(SaslState::Success, None, vec![]))
            .expect("switch");
        assert!(matches!(next, Next::Done(Negotiated::Simple)));
    }

    #[test]
    fn token_only_server_without_token_fails() {
        let mut n = Negotiation::new(None, true);
        n.start();
        let err = n
            .receive(sasl_message(
                SaslState::Negotiate,
                None,
                vec![token_auth(Some("nonce=\"x\""))],
            ))
            .err()
            .expect("must fail");
        assert!(err.to_string().contains("cannot authenticate"));
    }

    #[test]
    fn token_then_simple_prefers_token_and_echoes_exactly() {
        let mut n = Negotiation::new(Some(token()), true).with_cnonce("cn");
        n.start();
        let simple = SaslAuth {
            method: METHOD_SIMPLE.into(),
            mechanism: String::new(),
            protocol: None,
            server_id: None,
            challenge: None,
        };
        let challenge =
            "realm=\"default\",nonce=\"abc\",qop=\"auth\",charset=utf-8,algorithm=md5-sess";
        let next = n
            .receive(sasl_message(
                SaslState::Negotiate,
                None,
                vec![token_auth(Some(challenge)), simple],
            ))
            .expect("initiate");
        let Next::Send(init) = next else {
            panic!("expected INITIATE")
        };
        assert_eq!(init.state, SaslState::Initiate as i32);
        assert_eq!(init.auths, vec![token_auth(None)]);
        let resp = String::from_utf8(init.token.expect("response")).expect("utf8");
        assert!(resp.contains("digest-uri=\"/default\""), "{resp}");
        assert!(resp.contains("username=\"aWQ=\""), "{resp}");
        // A wrong rspauth must be rejected.
        let err = n.receive(sasl_message(
            SaslState::Success,
            Some(b"rspauth=00000000000000000000000000000000".to_vec()),
            vec![],
        ));
        assert!(err.is_err());
    }

    #[test]
    fn simple_in_list_without_token() {
        let mut n = Negotiation::new(None, true);
        n.start();
        let simple = SaslAuth {
            method: METHOD_SIMPLE.into(),
            mechanism: String::new(),
            protocol: None,
            server_id: None,
            challenge: None,
        };
        let next = n
            .receive(sasl_message(
                SaslState::Negotiate,
                None,
                vec![token_auth(Some("nonce=\"x\"")), simple.clone()],
            ))
            .expect("simple");
        let Next::SendThenDone(init, Negotiated::Simple) = next else {
            panic!("expected SIMPLE initiate")
        };
        assert_eq!(init.auths, vec![simple]);
    }
}
