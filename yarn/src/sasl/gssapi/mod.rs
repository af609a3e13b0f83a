//! The SASL GSSAPI mechanism (RFC 4752) over MIT Kerberos, as Hadoop's
//! `SaslRpcClient` runs it (KERBEROS.md section 3): security-context tokens
//! until the context is established (the client's last one may be empty),
//! then the server's wrapped 4-octet offer of security layers and maximum
//! size, answered with one chosen layer; after SUCCESS, `integrity` and
//! `privacy` wrap every message.
//!
//! The layer choice is the first of the client's `hadoop.rpc.protection`
//! levels that the server offers, as Java's client does.

mod ffi;

use std::ffi::CString;
use std::ptr;

use super::SaslMechanism;
use crate::error::{Error, Result};
use crate::kerberos::{KerberosCredentials, Qop};
use ffi::{Buffer, Gss, OmUint32};

/// The receive size announced for `integrity`/`privacy` (Java's default
/// `javax.security.sasl.maxbuffer`).
const CLIENT_MAX_RECEIVE: u32 = 65_536;

/// What to tell a user who has no usable ticket.
pub(crate) const NO_TICKET_HINT: &str =
    "run kinit (or point KRB5CCNAME at a ticket cache), or give a principal and keytab (--principal P --keytab K)";

/// The layer octet and maximum size of a security-layer message (RFC 4752 §3.1).
pub(crate) fn parse_layers(msg: &[u8]) -> Result<(u8, u32)> {
    match msg {
        [layers, a, b, c, ..] => Ok((*layers, u32::from_be_bytes([0, *a, *b, *c]))),
        _ => Err(Error::sasl(format!(
            "GSSAPI security-layer message of {} bytes (expected 4)",
            msg.len()
        ))),
    }
}

/// The first of `wanted` that `offered` (a layer bitmask) allows.
pub(crate) fn choose_layer(offered: u8, wanted: &[Qop]) -> Result<Qop> {
    wanted
        .iter()
        .copied()
        .find(|q| offered & q.layer_bit() != 0)
        .ok_or_else(|| {
            let offers: Vec<&str> = [Qop::Authentication, Qop::Integrity, Qop::Privacy]
                .into_iter()
                .filter(|q| offered & q.layer_bit() != 0)
                .map(Qop::name)
                .collect();
            let ours: Vec<&str> = wanted.iter().map(|q| q.name()).collect();
            Error::Protection {
                addr: String::new(),
                offered: offers.join(","),
                allowed: ours.join(","),
            }
        })
}

/// The client's answer to the server's offer: the chosen layer and our maximum receive size
/// (0 without a layer, as RFC 4752 requires); no authorization id (Hadoop sends none).
pub(crate) fn layer_reply(chosen: Qop) -> [u8; 4] {
    let max = if chosen == Qop::Authentication {
        0
    } else {
        CLIENT_MAX_RECEIVE
    };
    let m = max.to_be_bytes();
    [chosen.layer_bit(), m[1], m[2], m[3]]
}

/// A GSSAPI client for one connection.
pub(crate) struct GssapiClient {
    gss: &'static Gss,
    cred: ffi::Cred,
    target: ffi::Name,
    ctx: ffi::Ctx,
    target_text: String,
    established: bool,
    wanted: Vec<Qop>,
    chosen: Option<Qop>,
    max_input: Option<usize>,
}

// SAFETY: the GSS-API handles are owned by this value alone and used by one thread at a time
// (the connection keeps the mechanism behind a mutex); MIT's library is thread-safe across
// distinct handles.
unsafe impl Send for GssapiClient {}

impl GssapiClient {
    /// Acquires credentials and names the target `principal` (e.g. `hdfs/nn1@REALM`).
    pub(crate) fn new(
        credentials: &KerberosCredentials,
        principal: &str,
        wanted: Vec<Qop>,
    ) -> Result<GssapiClient> {
        let gss = ffi::gss().map_err(Error::sasl)?;
        let target = import_principal(gss, principal)?;
        let mut client = GssapiClient {
            gss,
            cred: ptr::null_mut(),
            target,
            ctx: ptr::null_mut(),
            target_text: principal.to_string(),
            established: false,
            wanted,
            chosen: None,
            max_input: None,
        };
        client.cred = acquire(gss, credentials)?;
        Ok(client)
    }

    fn init_context(&mut self, input: &[u8]) -> Result<Vec<u8>> {
        let gss = self.gss;
        let mech = ffi::oid(ffi::OID_MECH_KRB5);
        let input = Buffer::borrow(input);
        let mut output = Buffer::empty();
        let mut minor: OmUint32 = 0;
        let mut ret_flags: OmUint32 = 0;
        let flags = ffi::C_MUTUAL_FLAG
            | ffi::C_REPLAY_FLAG
            | ffi::C_SEQUENCE_FLAG
            | ffi::C_CONF_FLAG
            | ffi::C_INTEG_FLAG;
        // SAFETY: handles are ours and valid; buffers live across the call; output is released
        // by take_bytes.
        let major = unsafe {
            (gss.init_sec_context)(
                &mut minor,
                self.cred,
                &mut self.ctx,
                self.target,
                &mech,
                flags,
                ffi::C_INDEFINITE,
                ptr::null(),
                &input,
                ptr::null_mut(),
                &mut output,
                &mut ret_flags,
                ptr::null_mut(),
            )
        };
        let token = ffi::take_bytes(gss, &mut output);
        if ffi::is_error(major) {
            return Err(Error::sasl(format!(
                "Kerberos authentication to {} failed: {}",
                self.target_text,
                gss.status_text(major, minor)
            )));
        }
        if major == ffi::S_COMPLETE {
            self.established = true;
        } else if major != ffi::S_CONTINUE_NEEDED {
            return Err(Error::sasl(format!(
                "unexpected GSS-API status {major:#x} from gss_init_sec_context"
            )));
        }
        Ok(token)
    }

    fn gss_wrap(&mut self, data: &[u8], conf: bool) -> Result<Vec<u8>> {
        let gss = self.gss;
        let input = Buffer::borrow(data);
        let mut output = Buffer::empty();
        let mut minor: OmUint32 = 0;
        let mut conf_state = 0;
        // SAFETY: as in init_context.
        let major = unsafe {
            (gss.wrap)(
                &mut minor,
                self.ctx,
                conf as i32,
                ffi::C_QOP_DEFAULT,
                &input,
                &mut conf_state,
                &mut output,
            )
        };
        let out = ffi::take_bytes(gss, &mut output);
        if ffi::is_error(major) {
            return Err(Error::sasl(format!(
                "gss_wrap: {}",
                gss.status_text(major, minor)
            )));
        }
        if conf && conf_state == 0 {
            return Err(Error::sasl("gss_wrap did not encrypt under privacy"));
        }
        Ok(out)
    }

    fn gss_unwrap(&mut self, data: &[u8]) -> Result<(Vec<u8>, bool)> {
        let gss = self.gss;
        let input = Buffer::borrow(data);
        let mut output = Buffer::empty();
        let mut minor: OmUint32 = 0;
        let mut conf_state = 0;
        let mut qop: OmUint32 = 0;
        // SAFETY: as in init_context.
        let major = unsafe {
            (gss.unwrap)(
                &mut minor,
                self.ctx,
                &input,
                &mut output,
                &mut conf_state,
                &mut qop,
            )
        };
        let out = ffi::take_bytes(gss, &mut output);
        if ffi::is_error(major) {
            return Err(Error::sasl(format!(
                "gss_unwrap: {}",
                gss.status_text(major, minor)
            )));
        }
        Ok((out, conf_state != 0))
    }

    /// The largest plaintext whose wrapped form fits the server's maximum.
    fn wrap_limit(&mut self, conf: bool, server_max: u32) -> Result<usize> {
        let gss = self.gss;
        let mut minor: OmUint32 = 0;
        let mut max_input: OmUint32 = 0;
        // SAFETY: as in init_context.
        let major = unsafe {
            (gss.wrap_size_limit)(
                &mut minor,
                self.ctx,
                conf as i32,
                ffi::C_QOP_DEFAULT,
                server_max,
                &mut max_input,
            )
        };
        if ffi::is_error(major) || max_input == 0 {
            return Err(Error::sasl(format!(
                "gss_wrap_size_limit: {}",
                gss.status_text(major, minor)
            )));
        }
        Ok(max_input as usize)
    }

    fn negotiate_layer(&mut self, offer: &[u8]) -> Result<Vec<u8>> {
        let (plain, _) = self.gss_unwrap(offer)?;
        let (offered, server_max) = parse_layers(&plain)?;
        let chosen = choose_layer(offered, &self.wanted)?;
        if chosen != Qop::Authentication {
            let limit = if server_max == 0 {
                CLIENT_MAX_RECEIVE
            } else {
                server_max
            };
            self.max_input = Some(self.wrap_limit(chosen == Qop::Privacy, limit)?);
        }
        self.chosen = Some(chosen);
        tracing::debug!(target = %self.target_text, protection = chosen.name(), "GSSAPI security layer negotiated");
        self.gss_wrap(&layer_reply(chosen), false)
    }
}

impl SaslMechanism for GssapiClient {
    fn step(&mut self, challenge: Option<&[u8]>) -> Result<Vec<u8>> {
        if !self.established {
            return self.init_context(challenge.unwrap_or_default());
        }
        if self.chosen.is_some() {
            return Err(Error::sasl(
                "GSSAPI challenge after the security layer was chosen",
            ));
        }
        let offer =
            challenge.ok_or_else(|| Error::sasl("GSSAPI: empty security-layer challenge"))?;
        self.negotiate_layer(offer)
    }

    fn complete(&mut self, token: Option<&[u8]>) -> Result<()> {
        if token.is_some_and(|t| !t.is_empty()) {
            return Err(Error::sasl("GSSAPI: unexpected token with SUCCESS"));
        }
        if !self.established || self.chosen.is_none() {
            return Err(Error::sasl(
                "server reported SUCCESS before the GSSAPI exchange finished",
            ));
        }
        Ok(())
    }

    fn has_security_layer(&self) -> bool {
        matches!(self.chosen, Some(Qop::Integrity | Qop::Privacy))
    }

    fn max_wrap_input(&self) -> Option<usize> {
        self.max_input
    }

    fn wrap(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        let conf = self.chosen == Some(Qop::Privacy);
        self.gss_wrap(data, conf)
    }

    fn unwrap(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        let (plain, encrypted) = self.gss_unwrap(data)?;
        if self.chosen == Some(Qop::Privacy) && !encrypted {
            return Err(Error::sasl("unencrypted message under privacy"));
        }
        Ok(plain)
    }
}

impl Drop for GssapiClient {
    fn drop(&mut self) {
        let gss = self.gss;
        let mut minor: OmUint32 = 0;
        // SAFETY: each handle is ours, released once, and nulls are skipped.
        unsafe {
            if !self.ctx.is_null() {
                (gss.delete_sec_context)(&mut minor, &mut self.ctx, ptr::null_mut());
            }
            if !self.target.is_null() {
                (gss.release_name)(&mut minor, &mut self.target);
            }
            if !self.cred.is_null() {
                (gss.release_cred)(&mut minor, &mut self.cred);
            }
        }
    }
}

fn import_principal(gss: &Gss, principal: &str) -> Result<ffi::Name> {
    let nt = ffi::oid(ffi::OID_NT_KRB5_PRINCIPAL);
    let buf = Buffer::borrow(principal.as_bytes());
    let mut name: ffi::Name = ptr::null_mut();
    let mut minor: OmUint32 = 0;
    // SAFETY: buffers and out-pointer valid for the call.
    let major = unsafe { (gss.import_name)(&mut minor, &buf, &nt, &mut name) };
    if ffi::is_error(major) {
        return Err(Error::sasl(format!(
            "bad Kerberos principal {principal:?}: {}",
            gss.status_text(major, minor)
        )));
    }
    Ok(name)
}

/// Acquires `credentials` once (a ticket from the cache, or from the keytab) and lets them
/// go: an early, one-line answer to "no ticket", "unreadable keytab" or "principal not in
/// the keytab" before any connection is made. Needs MIT's `libgssapi_krb5` at run time.
pub fn check_credentials(credentials: &KerberosCredentials) -> Result<()> {
    let gss = ffi::gss().map_err(Error::sasl)?;
    let mut cred = acquire(gss, credentials)?;
    let mut minor: OmUint32 = 0;
    // SAFETY: `cred` came from acquire and is released once.
    unsafe { (gss.release_cred)(&mut minor, &mut cred) };
    Ok(())
}

fn acquire(gss: &Gss, credentials: &KerberosCredentials) -> Result<ffi::Cred> {
    let mut cred: ffi::Cred = ptr::null_mut();
    let mut minor: OmUint32 = 0;
    // Seconds the credentials stay valid.
    let mut lifetime: OmUint32 = ffi::C_INDEFINITE;
    let mut mech_elems = ffi::oid(ffi::OID_MECH_KRB5);
    let mechs = ffi::OidSet {
        count: 1,
        elements: &mut mech_elems,
    };
    match credentials {
        KerberosCredentials::TicketCache => {
            // SAFETY: out-pointers valid; no name means the cache's default principal.
            let major = unsafe {
                (gss.acquire_cred)(
                    &mut minor,
                    ptr::null_mut(),
                    ffi::C_INDEFINITE,
                    &mechs,
                    ffi::C_INITIATE,
                    &mut cred,
                    ptr::null_mut(),
                    &mut lifetime,
                )
            };
            if ffi::is_error(major) {
                return Err(Error::sasl(format!(
                    "no Kerberos ticket ({}); {NO_TICKET_HINT}",
                    gss.status_text(major, minor)
                )));
            }
            if lifetime == 0 {
                // MIT hands out an expired ticket; the KDC would refuse it at the first
                // connection ("Ticket expired").
                let mut m: OmUint32 = 0;
                // SAFETY: `cred` came from acquire_cred and is released once.
                unsafe { (gss.release_cred)(&mut m, &mut cred) };
                return Err(Error::sasl(format!(
                    "the Kerberos ticket in {} has expired; {NO_TICKET_HINT}",
                    std::env::var("KRB5CCNAME")
                        .unwrap_or_else(|_| "the default ticket cache".to_string())
                )));
            }
        }
        KerberosCredentials::Keytab { principal, keytab } => {
            if let Err(e) = std::fs::File::open(keytab).and_then(|f| {
                if f.metadata()?.is_file() {
                    Ok(())
                } else {
                    Err(std::io::Error::other("not a file"))
                }
            }) {
                return Err(Error::sasl(format!(
                    "keytab {} for {principal} is not a readable file ({e}); give --keytab a keytab this user can read",
                    keytab.display()
                )));
            }
            let name = import_principal(gss, principal)?;
            let cstr = |s: String| {
                CString::new(s).map_err(|_| Error::sasl("NUL byte in a keytab path or principal"))
            };
            let key_ccache = cstr("ccache".into())?;
            let key_keytab = cstr("client_keytab".into())?;
            // One memory cache per process and principal: connections share its tickets.
            let ccache = cstr(format!(
                "MEMORY:filex-{}-{}",
                std::process::id(),
                principal.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
            ))?;
            let path = cstr(keytab.display().to_string())?;
            let elems = [
                ffi::KeyValue {
                    key: key_ccache.as_ptr(),
                    value: ccache.as_ptr(),
                },
                ffi::KeyValue {
                    key: key_keytab.as_ptr(),
                    value: path.as_ptr(),
                },
            ];
            let store = ffi::KeyValueSet {
                count: elems.len() as OmUint32,
                elements: elems.as_ptr(),
            };
            // SAFETY: the strings and arrays outlive the call; out-pointers valid.
            let major = unsafe {
                (gss.acquire_cred_from)(
                    &mut minor,
                    name,
                    ffi::C_INDEFINITE,
                    &mechs,
                    ffi::C_INITIATE,
                    &store,
                    &mut cred,
                    ptr::null_mut(),
                    ptr::null_mut(),
                )
            };
            let mut m: OmUint32 = 0;
            let mut name = name;
            // SAFETY: the name came from import_principal and is released once.
            unsafe { (gss.release_name)(&mut m, &mut name) };
            if ffi::is_error(major) {
                let status = gss.status_text(major, minor);
                let fix = if status.contains("not found in Kerberos database") {
                    format!("check --principal: the KDC knows no {principal}")
                } else {
                    format!(
                        "check that the keytab holds {principal}'s keys (klist -kt {})",
                        keytab.display()
                    )
                };
                return Err(Error::sasl(format!(
                    "cannot get Kerberos credentials for {principal} from keytab {}: {status}; {fix}",
                    keytab.display(),
                )));
            }
        }
    }
    Ok(cred)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_message_parses() {
        assert_eq!(parse_layers(&[7, 0x01, 0x00, 0x00]).unwrap(), (7, 65_536));
        assert_eq!(parse_layers(&[1, 0, 0, 0, b'x']).unwrap(), (1, 0));
        assert!(parse_layers(&[4, 0]).is_err());
    }

    #[test]
    fn first_wanted_offered_layer_wins() {
        use Qop::*;
        assert_eq!(choose_layer(7, &[Integrity, Privacy]).unwrap(), Integrity);
        assert_eq!(choose_layer(7, &[Privacy, Integrity]).unwrap(), Privacy);
        assert_eq!(choose_layer(1 | 4, &[Integrity, Privacy]).unwrap(), Privacy);
        assert_eq!(choose_layer(1, &[Authentication]).unwrap(), Authentication);
        let err = choose_layer(4, &[Authentication, Integrity])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("offers protection privacy")
                && err.contains("allows only authentication,integrity"),
            "{err}"
        );
    }

    #[test]
    fn reply_names_one_layer_and_zero_size_without_one() {
        assert_eq!(layer_reply(Qop::Authentication), [1, 0, 0, 0]);
        assert_eq!(layer_reply(Qop::Integrity), [2, 0x01, 0x00, 0x00]);
        assert_eq!(layer_reply(Qop::Privacy), [4, 0x01, 0x00, 0x00]);
    }
}
