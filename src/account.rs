//! From what a user types (an address of record, a password, maybe a registrar) to what the
//! engine needs: a registration configuration and the server to send it to.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use callisto_signaling::auth::Credentials;
use callisto_signaling::registration::RegistrationConfig;
use callisto_signaling::transport::Target;

use crate::config::Account;
use crate::dns::{first_step, ServerQuery, SipResolver, Step};
use rand::SeedableRng;

/// How long one DNS question may take when the configuration names the servers.
const DNS_TIMEOUT: Duration = Duration::from_secs(2);

/// An account whose registrar has been located.
#[derive(Debug, Clone)]
pub struct ResolvedAccount {
    pub registration: RegistrationConfig,
    /// Where the REGISTERs go, best first; the next is tried when one fails (RFC 3263 §4.3).
    /// All share the first one's transport, so the Contact stays valid across them.
    pub targets: Vec<Target>,
    /// The name a TLS certificate must carry.
    pub server_name: Option<String>,
}

/// Errors turning an account into something the engine can register.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("'{0}' is not a SIP address; write it like sip:alice@example.org")]
    BadAddress(String),
    #[error(
        "'{0}' is not a registrar address; write it like sip:pbx.example.org:5060;transport=tcp"
    )]
    BadRegistrar(String),
    #[error("cannot find the server for {uri}: {reason}")]
    NotFound { uri: String, reason: String },
}

/// Reads a `sip:`/`sips:` address, adding the scheme when it is missing.
pub fn parse_sip_uri(text: &str) -> Option<rsip::Uri> {
    let text = text.trim();
    let with_scheme = if text.starts_with("sip:") || text.starts_with("sips:") {
        text.to_string()
    } else {
        format!("sip:{text}")
    };
    rsip::Uri::try_from(with_scheme.as_str()).ok()
}

/// A stable `+sip.instance` URN for this installation, derived from where the data lives and the
/// account, so that restarts keep replacing the same binding (RFC 5626 §4.1).
pub fn instance_urn(aor: &str, data_dir: Option<&Path>) -> String {
    use std::hash::{Hash, Hasher};
    let mut high = std::collections::hash_map::DefaultHasher::new();
    aor.hash(&mut high);
    data_dir.hash(&mut high);
    let a = high.finish();
    let mut low = std::collections::hash_map::DefaultHasher::new();
    a.hash(&mut low);
    "callisto".hash(&mut low);
    let b = low.finish();
    format!(
        "urn:uuid:{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (a >> 32) as u32,
        (a >> 16) as u16,
        a as u16 & 0x0fff,
        (b >> 48) as u16 & 0x0fff,
        b & 0xffff_ffff_ffff
    )
}

/// Locates the registrar of `account` (RFC 3263) and builds its registration. DNS questions go
/// to `dns_servers` when any are given, else to the system's resolvers.
pub async fn resolve(
    account: &Account,
    data_dir: Option<&Path>,
    retry_base: Duration,
    dns_servers: &[SocketAddr],
) -> Result<ResolvedAccount, AccountError> {
    let aor = parse_sip_uri(&account.user)
        .ok_or_else(|| AccountError::BadAddress(account.user.clone()))?;
    let registrar = match &account.registrar {
        Some(text) => {
            parse_sip_uri(text).ok_or_else(|| AccountError::BadRegistrar(text.clone()))?
        }
        None => rsip::Uri {
            scheme: aor.scheme.clone(),
            host_with_port: aor.host_with_port.clone(),
            ..Default::default()
        },
    };
    let not_found = |e: crate::dns::DnsError| AccountError::NotFound {
        uri: registrar.to_string(),
        reason: e.to_string(),
    };
    let query = ServerQuery::from_uri(&registrar).map_err(not_found)?;
    // IP literals (and explicit ports with literal hosts) never touch DNS, so a machine without
    // a resolver configuration still reaches them.
    let resolution = match first_step(&query) {
        Step::Done(resolution) => resolution,
        _ => {
            let resolver = if dns_servers.is_empty() {
                SipResolver::from_system().map_err(not_found)?
            } else {
                SipResolver::with_name_servers(dns_servers, DNS_TIMEOUT)
            };
            let mut rng = rand::rngs::StdRng::from_entropy();
            resolver
                .resolve(&query, &mut rng)
                .await
                .map_err(not_found)?
        }
    };
    let target = *resolution
        .targets
        .first()
        .ok_or_else(|| AccountError::NotFound {
            uri: registrar.to_string(),
            reason: "no address".into(),
        })?;
    let targets: Vec<Target> = resolution
        .targets
        .iter()
        .filter(|t| t.transport == target.transport)
        .copied()
        .collect();
    // The Request-URI of a REGISTER names the domain, without user or parameters
    // (RFC 3261 §10.2); the transport parameter only steered where it goes.
    let request_uri = rsip::Uri {
        scheme: registrar.scheme.clone(),
        host_with_port: registrar.host_with_port.clone(),
        ..Default::default()
    };
    let mut config = RegistrationConfig::new(aor.clone(), request_uri, target.addr);
    let user = account
        .auth_user
        .clone()
        .or_else(|| aor.auth.as_ref().map(|a| a.user.clone()))
        .unwrap_or_default();
    config.credentials = account
        .password
        .as_ref()
        .map(|password| Credentials::new(user, password.clone()));
    config.expires = account.expires;
    config.transport = target.transport;
    config.instance_id = instance_urn(&account.user, data_dir);
    config.retry_base = retry_base;
    Ok(ResolvedAccount {
        registration: config,
        targets,
        server_name: Some(resolution.server_name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_without_a_scheme_get_sip() {
        let uri = parse_sip_uri("alice@example.org").unwrap();
        assert_eq!(uri.to_string(), "sip:alice@example.org");
        assert!(parse_sip_uri("sips:bob@example.org:5061").is_some());
        assert!(parse_sip_uri("sip:").is_none());
    }

    #[test]
    fn the_instance_urn_is_stable_and_per_account() {
        let a = instance_urn("sip:alice@example.org", None);
        assert_eq!(a, instance_urn("sip:alice@example.org", None));
        assert_ne!(a, instance_urn("sip:bob@example.org", None));
        assert!(a.starts_with("urn:uuid:"));
        assert_eq!(a.len(), "urn:uuid:".len() + 36, "{a}");
    }
}
