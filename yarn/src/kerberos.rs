//! Kerberos for Hadoop IPC: where a client's ticket comes from
//! ([`KerberosCredentials`]), the protection levels of `hadoop.rpc.protection`
//! ([`Qop`]), and the server principal a client expects (`_HOST` resolved as
//! Hadoop's `SecurityUtil.getServerPrincipal` does). The GSSAPI mechanism
//! itself is in the private `sasl::gssapi`.

use std::net::IpAddr;
use std::path::PathBuf;

/// Where a Kerberos client gets its ticket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KerberosCredentials {
    /// The MIT ticket cache: `KRB5CCNAME`, else the default (`kinit` fills it).
    #[default]
    TicketCache,
    /// Tickets obtained from a keytab (MIT's client keytab initiation), kept in
    /// a per-process memory cache; no `kinit` needed.
    Keytab {
        /// e.g. `filex@EXAMPLE.COM`.
        principal: String,
        /// A keytab holding `principal`'s keys.
        keytab: PathBuf,
    },
}

/// One `hadoop.rpc.protection` level (SASL QOP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qop {
    /// `authentication` (SASL `auth`): no security layer.
    Authentication,
    /// `integrity` (`auth-int`): every message signed.
    Integrity,
    /// `privacy` (`auth-conf`): every message encrypted.
    Privacy,
}

impl Qop {
    /// The bit of this level in the GSSAPI security-layer octet (RFC 4752).
    pub(crate) fn layer_bit(self) -> u8 {
        match self {
            Qop::Authentication => 1,
            Qop::Integrity => 2,
            Qop::Privacy => 4,
        }
    }

    /// The `hadoop.rpc.protection` word.
    pub fn name(self) -> &'static str {
        match self {
            Qop::Authentication => "authentication",
            Qop::Integrity => "integrity",
            Qop::Privacy => "privacy",
        }
    }

    /// Parses a comma-separated `hadoop.rpc.protection` value, in order
    /// (empty: `authentication`); `Err` says which word is wrong.
    pub fn parse_list(value: &str) -> std::result::Result<Vec<Qop>, String> {
        let mut out = Vec::new();
        for word in value.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let qop = match word.to_ascii_lowercase().as_str() {
                "authentication" => Qop::Authentication,
                "integrity" => Qop::Integrity,
                "privacy" => Qop::Privacy,
                _ => {
                    return Err(format!(
                    "unknown protection {word:?} (expected authentication, integrity or privacy)"
                ))
                }
            };
            if !out.contains(&qop) {
                out.push(qop);
            }
        }
        if out.is_empty() {
            out.push(Qop::Authentication);
        }
        Ok(out)
    }
}

/// The host name `_HOST` stands for when connecting to `host`: an IP address
/// is looked up in reverse (as Java's `getCanonicalHostName`), falling back to
/// the address itself; a name is used as given. Lower case.
pub(crate) fn principal_host(host: &str) -> String {
    let host = host.trim_matches(['[', ']']);
    match host.parse::<IpAddr>() {
        Ok(ip) => reverse_lookup(ip).unwrap_or_else(|| host.to_string()),
        Err(_) => host.to_string(),
    }
    .to_ascii_lowercase()
}

/// `configured` with `_HOST` in its host part replaced by `host`.
pub(crate) fn resolve_principal(configured: &str, host: &str) -> String {
    let (name, realm) = match configured.rsplit_once('@') {
        Some((n, r)) => (n, Some(r)),
        None => (configured, None),
    };
    let name = match name.split_once('/') {
        Some((service, "_HOST")) => format!("{service}/{}", principal_host(host)),
        _ => name.to_string(),
    };
    match realm {
        Some(r) => format!("{name}@{r}"),
        None => name,
    }
}

/// `service/host` of a principal (the realm dropped), for comparing with what
/// a server advertises.
pub(crate) fn without_realm(principal: &str) -> &str {
    principal.rsplit_once('@').map_or(principal, |(n, _)| n)
}

fn reverse_lookup(ip: IpAddr) -> Option<String> {
    let addr: std::net::SocketAddr = (ip, 0).into();
    let (storage, len) = sockaddr(&addr);
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes; `host` is writable.
    let rc = unsafe {
        libc::getnameinfo(
            &storage as *const libc::sockaddr_storage as *const libc::sockaddr,
            len,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: getnameinfo wrote a NUL-terminated string into `host`.
    let name = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
    name.to_str().ok().map(str::to_string)
}

fn sockaddr(addr: &std::net::SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        std::net::SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe {
                std::ptr::write(
                    &mut storage as *mut libc::sockaddr_storage as *mut libc::sockaddr_in,
                    sin,
                )
            };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        std::net::SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe {
                std::ptr::write(
                    &mut storage as *mut libc::sockaddr_storage as *mut libc::sockaddr_in6,
                    sin6,
                )
            };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protection_lists_parse_in_order() {
        assert_eq!(
            Qop::parse_list("privacy, authentication").unwrap(),
            vec![Qop::Privacy, Qop::Authentication]
        );
        assert_eq!(Qop::parse_list("").unwrap(), vec![Qop::Authentication]);
        let err = Qop::parse_list("integrity,secret").unwrap_err();
        assert!(err.contains("unknown protection \"secret\""), "{err}");
    }

    #[test]
    fn host_pattern_is_replaced_and_realm_kept() {
        assert_eq!(
            resolve_principal("rm/_HOST@EXAMPLE.COM", "RM1.Example.com"),
            "rm/rm1.example.com@EXAMPLE.COM"
        );
        assert_eq!(
            resolve_principal("hdfs/localhost@EXAMPLE.COM", "10.0.0.1"),
            "hdfs/localhost@EXAMPLE.COM"
        );
        assert_eq!(resolve_principal("yarn/_HOST", "nn"), "yarn/nn");
        assert_eq!(
            without_realm("hdfs/localhost@EXAMPLE.COM"),
            "hdfs/localhost"
        );
        assert_eq!(without_realm("hdfs/localhost"), "hdfs/localhost");
    }
}
