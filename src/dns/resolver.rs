//! The lookups of RFC 3263, performed with hickory-resolver.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{
    NameServerConfig, NameServerConfigGroup, Protocol, ResolverConfig, ResolverOpts,
};
use hickory_resolver::error::{ResolveError, ResolveErrorKind};
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioAsyncResolver;
use rand::Rng;

use super::{
    fallback_srv_queries, first_step, order_srv, srv_queries_from_naptr, targets_for, DnsError,
    NaptrRecord, Resolution, ServerQuery, SrvQuery, SrvRecord, Step, Target,
};

/// How long one DNS query may take. Short, so that a machine without a network fails fast.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// How many times a query is sent before giving up.
const ATTEMPTS: usize = 2;

/// Locates SIP servers over DNS (RFC 3263).
#[derive(Clone)]
pub struct SipResolver {
    resolver: TokioAsyncResolver,
}

impl std::fmt::Debug for SipResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipResolver").finish_non_exhaustive()
    }
}

impl SipResolver {
    /// A resolver using the system's DNS configuration (resolv.conf), with short time-outs.
    /// Fails when there is no configuration or it names no server.
    pub fn from_system() -> Result<SipResolver, DnsError> {
        let (config, mut options) = hickory_resolver::system_conf::read_system_conf()
            .map_err(|error| DnsError::NoConfig(error.to_string()))?;
        if config.name_servers().is_empty() {
            return Err(DnsError::NoConfig("no name servers configured".to_owned()));
        }
        options.timeout = options.timeout.min(QUERY_TIMEOUT);
        options.attempts = options.attempts.clamp(1, ATTEMPTS);
        Ok(SipResolver {
            resolver: TokioAsyncResolver::tokio(config, options),
        })
    }

    /// A resolver asking only the given servers over UDP (for tests and explicit configuration).
    pub fn with_name_servers(servers: &[SocketAddr], timeout: Duration) -> SipResolver {
        let mut group = NameServerConfigGroup::new();
        for server in servers {
            group.push(NameServerConfig {
                socket_addr: *server,
                protocol: Protocol::Udp,
                tls_dns_name: None,
                trust_negative_responses: true,
                bind_addr: None,
            });
        }
        let config = ResolverConfig::from_parts(None, Vec::new(), group);
        let mut options = ResolverOpts::default();
        options.timeout = timeout;
        options.attempts = 1;
        options.use_hosts_file = false;
        SipResolver {
            resolver: TokioAsyncResolver::tokio(config, options),
        }
    }

    /// Resolves a URI's host to the targets to try, in order. IP literals never touch DNS.
    pub async fn resolve<R: Rng + Send + ?Sized>(
        &self,
        query: &ServerQuery,
        rng: &mut R,
    ) -> Result<Resolution, DnsError> {
        let server_name = query.host.to_string();
        let srv_queries = match first_step(query) {
            Step::Done(resolution) => return Ok(resolution),
            Step::LookupAddress {
                name,
                port,
                transport,
            } => {
                let addresses = self.addresses(&name).await?;
                return finish(targets_for(&addresses, port, transport), server_name);
            }
            Step::LookupSrv(queries) => queries,
            Step::LookupNaptr { name } => {
                let from_naptr = srv_queries_from_naptr(&self.naptr(&name).await?, query.secure);
                if from_naptr.is_empty() {
                    fallback_srv_queries(&name, query.secure)
                } else {
                    from_naptr
                }
            }
        };
        let mut targets = self.srv_targets(&srv_queries, rng).await?;
        if targets.is_empty() {
            // No SRV records: the host itself, on the default port (RFC 3263 §4.2).
            let transport = query.default_transport();
            let addresses = self.addresses(&server_name).await?;
            targets = targets_for(&addresses, transport.default_port(), transport);
        }
        finish(targets, server_name)
    }

    async fn srv_targets<R: Rng + Send + ?Sized>(
        &self,
        queries: &[SrvQuery],
        rng: &mut R,
    ) -> Result<Vec<Target>, DnsError> {
        let mut targets = Vec::new();
        for query in queries {
            let records = self.srv(&query.name).await?;
            for record in order_srv(&records, rng) {
                let addresses = self.addresses(&record.target).await?;
                for target in targets_for(&addresses, record.port, query.transport) {
                    if !targets.contains(&target) {
                        targets.push(target);
                    }
                }
            }
        }
        Ok(targets)
    }

    async fn naptr(&self, name: &str) -> Result<Vec<NaptrRecord>, DnsError> {
        let lookup = match self.resolver.lookup(fqdn(name), RecordType::NAPTR).await {
            Ok(lookup) => lookup,
            Err(error) => return empty_or_error(name, error),
        };
        Ok(lookup
            .record_iter()
            .filter_map(|record| match record.data() {
                Some(RData::NAPTR(naptr)) => Some(NaptrRecord {
                    order: naptr.order(),
                    preference: naptr.preference(),
                    flags: String::from_utf8_lossy(naptr.flags()).into_owned(),
                    service: String::from_utf8_lossy(naptr.services()).into_owned(),
                    replacement: naptr.replacement().to_ascii(),
                }),
                _ => None,
            })
            .collect())
    }

    async fn srv(&self, name: &str) -> Result<Vec<SrvRecord>, DnsError> {
        let lookup = match self.resolver.srv_lookup(fqdn(name)).await {
            Ok(lookup) => lookup,
            Err(error) => return empty_or_error(name, error),
        };
        Ok(lookup
            .iter()
            .map(|srv| SrvRecord {
                priority: srv.priority(),
                weight: srv.weight(),
                port: srv.port(),
                target: trim_root(srv.target().to_ascii()),
            })
            .collect())
    }

    async fn addresses(&self, name: &str) -> Result<Vec<IpAddr>, DnsError> {
        match self.resolver.lookup_ip(fqdn(name)).await {
            Ok(lookup) => Ok(lookup.iter().collect()),
            Err(error) => empty_or_error(name, error),
        }
    }
}

fn finish(targets: Vec<Target>, server_name: String) -> Result<Resolution, DnsError> {
    if targets.is_empty() {
        return Err(DnsError::NotFound(server_name));
    }
    Ok(Resolution {
        targets,
        server_name,
    })
}

/// "No such records" is an empty answer; anything else (time-out, refused) is an error.
fn empty_or_error<T>(name: &str, error: ResolveError) -> Result<Vec<T>, DnsError> {
    match error.kind() {
        ResolveErrorKind::NoRecordsFound { .. } => Ok(Vec::new()),
        _ => Err(DnsError::Lookup {
            name: name.to_owned(),
            reason: error.to_string(),
        }),
    }
}

/// A fully qualified name, so that no search domain is appended.
fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    }
}

fn trim_root(name: String) -> String {
    if name == "." {
        name
    } else {
        name.trim_end_matches('.').to_owned()
    }
}
