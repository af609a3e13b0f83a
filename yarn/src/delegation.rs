//! Delegation tokens: who may renew them (the renewer a client names when it asks for one)
//! and under which service names a token must be stored so that both Hadoop's clients and
//! hdfs-native find it (KERBEROS.md, "Gotchas"), what a token's identifier says of its
//! lifetime, and when a keytab holder should get new ones. The RPCs themselves are
//! [`crate::NameNodeClient::get_delegation_token`] and
//! [`crate::ApplicationClient::get_delegation_token`]; nothing here talks to a server.

use std::net::ToSocketAddrs;

use crate::config::{self, Config};
use crate::credentials::Token;
use crate::error::{Error, Result};
use crate::kerberos::resolve_principal;
use crate::writable::Reader;

/// Token kind of ResourceManager delegation tokens.
pub const RM_DELEGATION_TOKEN_KIND: &str = "RM_DELEGATION_TOKEN";
/// Prefix of the service of a token for an HA name service (`ha-hdfs:<ns>`).
pub const HA_HDFS_SERVICE_PREFIX: &str = "ha-hdfs:";

/// The renewer to name in `getDelegationToken`: `yarn.resourcemanager.principal` with
/// `_HOST` resolved against the (first) RM address, as Hadoop's `Master.getMasterPrincipal`.
/// The full principal: the server keeps its short name.
pub fn renewer(config: &Config) -> Result<String> {
    let principal = config
        .get(config::RM_PRINCIPAL)
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .ok_or_else(|| Error::Config {
            key: config::RM_PRINCIPAL.into(),
            message: "cannot name the ResourceManager as the renewer of delegation tokens".into(),
        })?;
    let rm = config.rm_address()?;
    let host = rm.rsplit_once(':').map_or(rm.as_str(), |(h, _)| h);
    Ok(resolve_principal(&principal, host))
}

/// `ip:port` of `host:port`, as Hadoop's `SecurityUtil.buildTokenService` writes it
/// (`hadoop.security.token.service.use_ip`, the default); the address itself when it does
/// not resolve. An IPv4 address is preferred, as Java's resolver does by default.
pub fn token_service(addr: &str) -> String {
    let resolved: Vec<_> = addr
        .to_socket_addrs()
        .map(|a| a.collect())
        .unwrap_or_default();
    match resolved
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| resolved.first())
    {
        Some(sa) => sa.to_string(),
        None => addr.to_string(),
    }
}

/// The services an HDFS delegation token of `authority` (`host:port`, `host`, or an HA name
/// service) is stored under: `ha-hdfs:<ns>` for a name service; else `ip:port` (Java's
/// lookup) and, when it differs, the literal `host:port` of the URL (hdfs-native's lookup).
pub fn hdfs_services(config: &Config, authority: &str) -> Result<Vec<String>> {
    let addrs = config.namenode_addresses(Some(&format!("hdfs://{authority}")))?;
    let is_ns = !config
        .get_list(&format!("{}.{authority}", config::DFS_HA_NAMENODES_PREFIX))
        .is_empty();
    if is_ns {
        return Ok(vec![format!("{HA_HDFS_SERVICE_PREFIX}{authority}")]);
    }
    let literal = addrs
        .into_iter()
        .next()
        .unwrap_or_else(|| authority.to_string());
    let mut out = vec![token_service(&literal)];
    if !out.contains(&literal) {
        out.push(literal);
    }
    Ok(out)
}

/// The service of an RM delegation token: the `ip:port` of every RM address, comma-joined
/// (Hadoop's `ClientRMProxy.getRMDelegationTokenService`).
pub fn rm_service(config: &Config) -> Result<String> {
    Ok(config
        .rm_addresses()?
        .iter()
        .map(|a| token_service(a))
        .collect::<Vec<_>>()
        .join(","))
}

/// The owner a delegation token was issued to (the authenticated principal, e.g.
/// `filex@EXAMPLE.COM`), read from its identifier (Hadoop's
/// `AbstractDelegationTokenIdentifier`: a version byte 0, then the owner as Text); `None`
/// for an identifier of another shape.
pub fn owner(token: &Token) -> Option<String> {
    let mut r = Reader::new(&token.identifier, "token identifier");
    match r.u8() {
        Ok(0) => r.text().ok().filter(|o| !o.is_empty()),
        _ => None,
    }
}

/// When a delegation token was issued and the latest it can be renewed to (ms since the
/// epoch), from its identifier (`AbstractDelegationTokenIdentifier`: version 0, owner,
/// renewer and real user as Text, then the issue date and the max date as vlongs); `None`
/// for an identifier of another shape.
pub fn dates(token: &Token) -> Option<TokenDates> {
    let mut r = Reader::new(&token.identifier, "token identifier");
    if r.u8().ok()? != 0 {
        return None;
    }
    for _ in 0..3 {
        r.text().ok()?;
    }
    let issued_ms = r.vlong().ok()?;
    let max_ms = r.vlong().ok()?;
    Some(TokenDates { issued_ms, max_ms })
}

/// [`dates`] of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenDates {
    /// When the token was issued, ms since the epoch.
    pub issued_ms: i64,
    /// The latest it can be renewed to, ms since the epoch.
    pub max_ms: i64,
}

/// Share of a token's remaining life after which a holder of a keytab gets a new one
/// (Spark's `spark.security.credentials.renewalRatio`).
pub const REFRESH_RATIO: f64 = 0.75;

/// How long after `now_ms` to get new tokens, given the expiry (`renewDelegationToken`'s
/// answer, or a token's max date) of each token held: [`REFRESH_RATIO`] of the time left
/// until the first expires; zero when one has expired already or none is given.
pub fn refresh_delay_ms(now_ms: i64, expiries_ms: &[i64]) -> u64 {
    let Some(first) = expiries_ms.iter().min() else {
        return 0;
    };
    let left = (*first - now_ms).max(0) as f64;
    (left * REFRESH_RATIO) as u64
}

/// The short name of `principal` under Hadoop's default `auth_to_local` rule: the part
/// before the first `/` or `@` (`filex@EXAMPLE.COM` and `filex/host@EXAMPLE.COM` are `filex`).
pub fn short_name(principal: &str) -> &str {
    principal.split(['/', '@']).next().unwrap_or(principal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_and_short_name_of_an_identifier() {
        // version 0, owner "filex@EXAMPLE.COM", renewer "hdfs", …
        let mut id = vec![0u8, 17];
        id.extend_from_slice(b"filex@EXAMPLE.COM");
        id.extend_from_slice(&[4, b'h', b'd', b'f', b's', 0]);
        let t = Token {
            identifier: id,
            password: vec![],
            kind: "HDFS_DELEGATION_TOKEN".into(),
            service: String::new(),
        };
        assert_eq!(owner(&t).as_deref(), Some("filex@EXAMPLE.COM"));
        assert_eq!(short_name("filex@EXAMPLE.COM"), "filex");
        assert_eq!(short_name("filex/gw.example.com@EXAMPLE.COM"), "filex");
        assert_eq!(short_name("filex"), "filex");
        let bad = Token {
            identifier: vec![1, 2],
            ..t
        };
        assert_eq!(owner(&bad), None);
    }

    #[test]
    fn dates_of_an_identifier_and_the_refresh_delay() {
        use crate::writable::{write_vbytes, write_vlong};
        let mut id = vec![0u8];
        for text in ["filex@EXAMPLE.COM", "filex", ""] {
            write_vbytes(&mut id, text.as_bytes());
        }
        write_vlong(&mut id, 1_764_000_000_000);
        write_vlong(&mut id, 1_764_000_300_000);
        write_vlong(&mut id, 7); // sequence number
        write_vlong(&mut id, 2); // master key id
        let t = Token {
            identifier: id,
            password: vec![],
            kind: "HDFS_DELEGATION_TOKEN".into(),
            service: String::new(),
        };
        assert_eq!(
            dates(&t),
            Some(TokenDates {
                issued_ms: 1_764_000_000_000,
                max_ms: 1_764_000_300_000
            })
        );
        assert_eq!(owner(&t).as_deref(), Some("filex@EXAMPLE.COM"));
        let truncated = Token {
            identifier: t.identifier[..10].to_vec(),
            ..t
        };
        assert_eq!(dates(&truncated), None);
        // 75 % of the time left until the first expiry.
        assert_eq!(refresh_delay_ms(1_000, &[41_000, 31_000]), 22_500);
        assert_eq!(refresh_delay_ms(50_000, &[31_000]), 0, "expired already");
        assert_eq!(refresh_delay_ms(0, &[]), 0);
    }

    #[test]
    fn renewer_is_the_rm_principal_with_host_resolved() {
        let mut c = Config::defaults();
        c.set(config::RM_PRINCIPAL, "rm/_HOST@EXAMPLE.COM");
        c.set("yarn.resourcemanager.address", "RM1.example.com:8032");
        assert_eq!(renewer(&c).unwrap(), "rm/rm1.example.com@EXAMPLE.COM");
        c.set(config::RM_PRINCIPAL, "");
        let err = renewer(&c).unwrap_err().to_string();
        assert!(err.contains(config::RM_PRINCIPAL), "{err}");
    }

    #[test]
    fn hdfs_services_hold_ip_and_literal_host() {
        let c = Config::defaults();
        assert_eq!(
            hdfs_services(&c, "127.0.0.1:9000").unwrap(),
            vec!["127.0.0.1:9000"]
        );
        assert_eq!(
            hdfs_services(&c, "localhost:9000").unwrap(),
            vec!["127.0.0.1:9000", "localhost:9000"]
        );
        let mut ha = Config::defaults();
        ha.set("dfs.ha.namenodes.ns1", "nn1,nn2");
        ha.set("dfs.namenode.rpc-address.ns1.nn1", "h1:8020");
        ha.set("dfs.namenode.rpc-address.ns1.nn2", "h2:8020");
        assert_eq!(hdfs_services(&ha, "ns1").unwrap(), vec!["ha-hdfs:ns1"]);
    }

    #[test]
    fn rm_service_is_ip_port() {
        let mut c = Config::defaults();
        c.set("yarn.resourcemanager.address", "localhost:8032");
        assert_eq!(rm_service(&c).unwrap(), "127.0.0.1:8032");
    }
}
