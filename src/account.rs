//! From what a user types (an address of record, a password, maybe a registrar) to what the
//! engine needs: a registration configuration and the server to send it to.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use callisto_signaling::auth::Credentials;
use callisto_signaling::registration::RegistrationConfig;
use callisto_signaling::transport::{websocket_contact_host, Target};

use crate::config::Account;
use crate::dns::{first_step, ServerQuery, SipResolver, Step, TransportKind};
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
    /// The name a TLS certificate must carry (and a WebSocket's Host).
    pub server_name: Option<String>,
    /// The HTTP resource of a WebSocket registrar; `None` for other transports.
    pub ws_path: Option<String>,
}

/// Errors turning an account into something the engine can register.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("'{0}' is not a SIP address; write it like sip:alice@example.org")]
    BadAddress(String),
    #[error(
        "'{0}' is not a registrar address; write it like sip:pbx.example.org:5060;transport=tcp \
         or wss://pbx.example.org/ws"
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

/// Reads a WebSocket URL (`ws://host[:port][/path]`, `wss://…`) as the equivalent registrar URI
/// (`sip:host[:port];transport=ws|wss`) and its path; `None` for anything else.
pub fn websocket_url(text: &str) -> Option<(String, String)> {
    let text = text.trim();
    let (transport, rest) = if let Some(rest) = text.strip_prefix("wss://") {
        ("wss", rest)
    } else {
        ("ws", text.strip_prefix("ws://")?)
    };
    let (authority, path) = match rest.find('/') {
        Some(index) => rest.split_at(index),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some((
        format!("sip:{authority};transport={transport}"),
        path.to_owned(),
    ))
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
    let url = account.registrar.as_deref().and_then(websocket_url);
    let registrar = match (&account.registrar, &url) {
        (Some(text), Some((uri, _))) => {
            parse_sip_uri(uri).ok_or_else(|| AccountError::BadRegistrar(text.clone()))?
        }
        (Some(text), None) => {
            parse_sip_uri(text).ok_or_else(|| AccountError::BadRegistrar(text.clone()))?
        }
        (None, _) => rsip::Uri {
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
    let websocket = matches!(target.transport, TransportKind::Ws | TransportKind::Wss);
    let ws_path = websocket.then(|| {
        url.map(|(_, path)| path)
            .or_else(|| account.ws_path.clone())
            .unwrap_or_else(|| "/".to_owned())
    });
    if websocket {
        // Stable per installation and account: a reconnecting client keeps its Contact.
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        config.instance_id.hash(&mut hasher);
        config.contact_host = Some(websocket_contact_host(hasher.finish()));
    }
    Ok(ResolvedAccount {
        registration: config,
        targets,
        server_name: Some(resolution.server_name),
        ws_path,
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
    fn websocket_urls_become_registrar_uris_and_paths() {
        assert_eq!(
            websocket_url("ws://127.0.0.1:8080"),
            Some(("sip:127.0.0.1:8080;transport=ws".into(), "/".into()))
        );
        assert_eq!(
            websocket_url("wss://pbx.example.org/sip/ws"),
            Some(("sip:pbx.example.org;transport=wss".into(), "/sip/ws".into()))
        );
        assert_eq!(websocket_url("sip:pbx.example.org;transport=ws"), None);
        assert_eq!(websocket_url("ws://"), None);
        assert_eq!(websocket_url("wss://user@host/"), None);
    }

    fn account(registrar: &str, ws_path: Option<&str>) -> Account {
        Account {
            name: String::new(),
            user: "sip:alice@127.0.0.1".into(),
            password: Some("secret".into()),
            auth_user: None,
            registrar: Some(registrar.into()),
            ws_path: ws_path.map(str::to_owned),
            expires: 600,
            ..Account::default()
        }
    }

    async fn resolved(account: &Account) -> ResolvedAccount {
        resolve(account, None, Duration::from_secs(5), &[])
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn websocket_registrars_resolve_to_ws_targets_with_a_path_and_an_invalid_contact() {
        let ws = resolved(&account("sip:127.0.0.1:8080;transport=ws", None)).await;
        assert_eq!(ws.targets[0].transport, TransportKind::Ws);
        assert_eq!(
            ws.targets[0].addr,
            "127.0.0.1:8080".parse::<std::net::SocketAddr>().unwrap()
        );
        assert_eq!(ws.ws_path.as_deref(), Some("/"));
        assert_eq!(ws.registration.transport, TransportKind::Ws);
        let host = ws.registration.contact_host.clone().unwrap();
        assert!(host.ends_with(".invalid"), "{host}");
        assert_eq!(ws.registration.registrar.to_string(), "sip:127.0.0.1:8080");

        let wss = resolved(&account("sip:127.0.0.1;transport=wss", Some("/sip"))).await;
        assert_eq!(wss.targets[0].transport, TransportKind::Wss);
        assert_eq!(wss.targets[0].addr.port(), 443, "RFC 7118's default");
        assert_eq!(wss.ws_path.as_deref(), Some("/sip"));
        assert_eq!(
            wss.registration.contact_host,
            Some(host),
            "stable per account"
        );

        let sips = resolved(&account("sips:127.0.0.1;transport=ws", None)).await;
        assert_eq!(sips.targets[0].transport, TransportKind::Wss);
        assert_eq!(sips.targets[0].addr.port(), 443);

        let url = resolved(&account("ws://127.0.0.1:8088/ws", Some("/other"))).await;
        assert_eq!(url.targets[0].transport, TransportKind::Ws);
        assert_eq!(url.targets[0].addr.port(), 8088);
        assert_eq!(url.ws_path.as_deref(), Some("/ws"), "the URL's path wins");

        let udp = resolved(&account("sip:127.0.0.1:5060", Some("/ws"))).await;
        assert_eq!(udp.ws_path, None);
        assert_eq!(udp.registration.contact_host, None);
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
