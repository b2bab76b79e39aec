use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_resolver::proto::rr::rdata::{A, NAPTR, SRV};
use hickory_resolver::proto::rr::RData;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::test_server::{name, record, TestDnsServer};
use super::*;

fn query(
    host: &str,
    port: Option<u16>,
    transport: Option<TransportKind>,
    secure: bool,
) -> ServerQuery {
    ServerQuery {
        host: Host::parse(host),
        port,
        transport,
        secure,
    }
}

fn target(kind: TransportKind, addr: &str) -> Target {
    Target::new(kind, addr.parse().expect("socket address"))
}

fn srv(priority: u16, weight: u16, target: &str) -> SrvRecord {
    SrvRecord {
        priority,
        weight,
        port: 5060,
        target: target.to_owned(),
    }
}

#[test]
fn ip_literals_need_no_dns() {
    let cases = [
        (
            query("192.0.2.7", None, None, false),
            target(TransportKind::Udp, "192.0.2.7:5060"),
        ),
        (
            query("192.0.2.7", None, None, true),
            target(TransportKind::Tls, "192.0.2.7:5061"),
        ),
        (
            query("192.0.2.7", Some(5080), Some(TransportKind::Tcp), false),
            target(TransportKind::Tcp, "192.0.2.7:5080"),
        ),
        (
            query("[2001:db8::1]", None, Some(TransportKind::Tls), false),
            target(TransportKind::Tls, "[2001:db8::1]:5061"),
        ),
        (
            query("192.0.2.7", None, Some(TransportKind::Tcp), true),
            target(TransportKind::Tls, "192.0.2.7:5061"),
        ),
    ];
    for (query, expected) in cases {
        match first_step(&query) {
            Step::Done(resolution) => {
                assert_eq!(resolution.targets, vec![expected], "{query:?}");
                assert_eq!(resolution.server_name, expected.addr.ip().to_string());
            }
            other => panic!("{query:?} needed DNS: {other:?}"),
        }
    }
}

#[test]
fn an_explicit_port_means_address_records_only() {
    assert_eq!(
        first_step(&query("Example.COM.", Some(5070), None, false)),
        Step::LookupAddress {
            name: "example.com".to_owned(),
            port: 5070,
            transport: TransportKind::Udp,
        }
    );
    assert_eq!(
        first_step(&query("example.com", Some(5071), None, true)),
        Step::LookupAddress {
            name: "example.com".to_owned(),
            port: 5071,
            transport: TransportKind::Tls,
        }
    );
}

/// A WebSocket has no SRV service: the name is looked up with the transport's default port,
/// and a `sips:` URI's `transport=ws` is a secure WebSocket on 443, never cleartext on 80.
#[test]
fn a_websocket_name_without_port_uses_the_secure_default_for_sips() {
    for (secure, transport, port) in [
        (false, TransportKind::Ws, 80),
        (true, TransportKind::Wss, 443),
    ] {
        assert_eq!(
            first_step(&query(
                "ws.example.com",
                None,
                Some(TransportKind::Ws),
                secure
            )),
            Step::LookupAddress {
                name: "ws.example.com".to_owned(),
                port,
                transport,
            }
        );
    }
}

#[test]
fn a_transport_without_port_asks_srv_for_that_transport() {
    assert_eq!(
        first_step(&query("example.com", None, Some(TransportKind::Tcp), false)),
        Step::LookupSrv(vec![SrvQuery {
            name: "_sip._tcp.example.com".to_owned(),
            transport: TransportKind::Tcp,
        }])
    );
    assert_eq!(
        first_step(&query("example.com", None, Some(TransportKind::Tls), false)),
        Step::LookupSrv(vec![SrvQuery {
            name: "_sips._tcp.example.com".to_owned(),
            transport: TransportKind::Tls,
        }])
    );
    assert_eq!(
        first_step(&query("example.com", None, None, false)),
        Step::LookupNaptr {
            name: "example.com".to_owned()
        }
    );
}

#[test]
fn naptr_records_are_filtered_and_ordered() {
    let naptr = |order, preference, flags: &str, service: &str, replacement: &str| NaptrRecord {
        order,
        preference,
        flags: flags.to_owned(),
        service: service.to_owned(),
        replacement: replacement.to_owned(),
    };
    let records = vec![
        naptr(20, 10, "s", "SIP+D2U", "_sip._udp.example.com."),
        naptr(10, 20, "S", "SIP+D2T", "_sip._tcp.example.com."),
        naptr(10, 10, "S", "SIPS+D2T", "_sips._tcp.example.com."),
        naptr(5, 10, "S", "SIP+D2S", "_sip._sctp.example.com."),
        naptr(5, 10, "U", "SIP+D2U", "!.*!sip:x@y!"),
        naptr(1, 10, "S", "E2U+sip", "_x.example.com."),
    ];
    let names = |queries: Vec<SrvQuery>| -> Vec<(String, TransportKind)> {
        queries.into_iter().map(|q| (q.name, q.transport)).collect()
    };
    assert_eq!(
        names(srv_queries_from_naptr(&records, false)),
        vec![
            ("_sips._tcp.example.com".to_owned(), TransportKind::Tls),
            ("_sip._tcp.example.com".to_owned(), TransportKind::Tcp),
            ("_sip._udp.example.com".to_owned(), TransportKind::Udp),
        ]
    );
    assert_eq!(
        names(srv_queries_from_naptr(&records, true)),
        vec![("_sips._tcp.example.com".to_owned(), TransportKind::Tls)]
    );
}

#[test]
fn without_naptr_srv_is_asked_for_every_transport() {
    let names: Vec<String> = fallback_srv_queries("example.com", false)
        .into_iter()
        .map(|q| q.name)
        .collect();
    assert_eq!(
        names,
        [
            "_sip._udp.example.com",
            "_sip._tcp.example.com",
            "_sips._tcp.example.com"
        ]
    );
    let secure = fallback_srv_queries("example.com", true);
    assert_eq!(secure.len(), 1);
    assert_eq!(secure[0].transport, TransportKind::Tls);
}

#[test]
fn srv_priority_always_wins_over_weight() {
    let records = vec![
        srv(20, 100, "c.example.com"),
        srv(10, 1, "a.example.com"),
        srv(10, 0, "b.example.com"),
        srv(30, 0, "."),
    ];
    for seed in 0..200 {
        let ordered = order_srv(&records, &mut StdRng::seed_from_u64(seed));
        assert_eq!(ordered.len(), 3, "the '.' record is dropped");
        assert_eq!(ordered[2].target, "c.example.com");
        assert!(ordered[..2].iter().all(|r| r.priority == 10));
    }
}

#[test]
fn srv_weights_share_first_place_in_proportion() {
    let records = vec![
        srv(10, 300, "heavy.example.com"),
        srv(10, 100, "light.example.com"),
    ];
    let mut rng = StdRng::seed_from_u64(7);
    let runs = 4000;
    let heavy_first = (0..runs)
        .filter(|_| order_srv(&records, &mut rng)[0].target == "heavy.example.com")
        .count();
    let share = heavy_first as f64 / runs as f64;
    assert!(
        (0.70..0.80).contains(&share),
        "heavy first in {share} of runs"
    );
}

#[test]
fn uris_are_read_for_their_host_port_transport_and_scheme() {
    let uri = rsip::Uri::try_from("sips:alice@Example.com:5071;transport=tcp").expect("uri");
    let parsed = ServerQuery::from_uri(&uri).expect("sip uri");
    assert_eq!(parsed.host, Host::Name("example.com".to_owned()));
    assert_eq!(parsed.port, Some(5071));
    assert_eq!(parsed.transport, Some(TransportKind::Tcp));
    assert!(parsed.secure);
    assert_eq!(parsed.default_transport(), TransportKind::Tls);

    let uri = rsip::Uri::try_from("sip:10.1.2.3").expect("uri");
    let parsed = ServerQuery::from_uri(&uri).expect("sip uri");
    assert_eq!(
        parsed.host,
        Host::Ip(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)))
    );
    assert!(!parsed.secure);
}

fn zone() -> Vec<hickory_resolver::proto::rr::Record> {
    let naptr = |order, preference, service: &str, replacement: &str| {
        RData::NAPTR(NAPTR::new(
            order,
            preference,
            b"S".to_vec().into_boxed_slice(),
            service.as_bytes().to_vec().into_boxed_slice(),
            Vec::new().into_boxed_slice(),
            name(replacement),
        ))
    };
    let srv = |priority, weight, port, target: &str| {
        RData::SRV(SRV::new(priority, weight, port, name(target)))
    };
    let a = |last: u8| RData::A(A::new(127, 0, 0, last));
    vec![
        record(
            "example.test.",
            naptr(20, 10, "SIP+D2U", "_sip._udp.example.test."),
        ),
        record(
            "example.test.",
            naptr(10, 10, "SIPS+D2T", "_sips._tcp.example.test."),
        ),
        record("example.test.", a(9)),
        record(
            "_sips._tcp.example.test.",
            srv(20, 0, 5161, "backup.example.test."),
        ),
        record(
            "_sips._tcp.example.test.",
            srv(10, 0, 5061, "primary.example.test."),
        ),
        record(
            "_sip._udp.example.test.",
            srv(10, 0, 5060, "primary.example.test."),
        ),
        record("primary.example.test.", a(1)),
        record("backup.example.test.", a(2)),
        // A domain with SRV only.
        record("srv-only.test.", a(9)),
        record(
            "_sip._tcp.srv-only.test.",
            srv(10, 0, 5070, "primary.example.test."),
        ),
        // A domain with address records only.
        record("plain.test.", a(3)),
    ]
}

#[tokio::test]
async fn naptr_then_srv_then_address_records_come_out_in_order() {
    let server = TestDnsServer::start(zone()).await;
    let resolver = SipResolver::with_name_servers(&[server.addr], Duration::from_secs(2));
    let mut rng = StdRng::seed_from_u64(1);

    let resolution = resolver
        .resolve(&query("example.test", None, None, false), &mut rng)
        .await
        .expect("resolves");
    assert_eq!(
        resolution.targets,
        vec![
            target(TransportKind::Tls, "127.0.0.1:5061"),
            target(TransportKind::Tls, "127.0.0.2:5161"),
            target(TransportKind::Udp, "127.0.0.1:5060"),
        ]
    );
    assert_eq!(resolution.server_name, "example.test");

    let srv_only = resolver
        .resolve(&query("srv-only.test", None, None, false), &mut rng)
        .await
        .expect("resolves");
    assert_eq!(
        srv_only.targets,
        vec![target(TransportKind::Tcp, "127.0.0.1:5070")]
    );

    let plain = resolver
        .resolve(&query("plain.test", None, None, true), &mut rng)
        .await
        .expect("resolves");
    assert_eq!(
        plain.targets,
        vec![target(TransportKind::Tls, "127.0.0.3:5061")]
    );

    let explicit = resolver
        .resolve(
            &query("example.test", Some(6000), Some(TransportKind::Tcp), false),
            &mut rng,
        )
        .await
        .expect("resolves");
    assert_eq!(
        explicit.targets,
        vec![target(TransportKind::Tcp, "127.0.0.9:6000")]
    );

    let missing = resolver
        .resolve(&query("nowhere.test", None, None, false), &mut rng)
        .await;
    assert!(matches!(missing, Err(DnsError::NotFound(_))), "{missing:?}");
    assert!(server.queries() > 0);
}

#[tokio::test]
async fn literal_addresses_never_touch_dns() {
    let server = TestDnsServer::start(zone()).await;
    // Nothing answers on a port just released; the real server only counts queries.
    let dead: SocketAddr = {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket.local_addr().expect("address")
    };
    let resolver = SipResolver::with_name_servers(&[dead, server.addr], Duration::from_secs(5));
    let started = Instant::now();
    let resolution = resolver
        .resolve(
            &query("127.0.0.1", None, None, false),
            &mut StdRng::seed_from_u64(1),
        )
        .await
        .expect("resolves");
    assert!(started.elapsed() < Duration::from_millis(100));
    assert_eq!(
        resolution.targets,
        vec![target(TransportKind::Udp, "127.0.0.1:5060")]
    );
    assert_eq!(server.queries(), 0);
}

#[tokio::test]
async fn a_dead_name_server_fails_cleanly_and_quickly() {
    let dead: SocketAddr = {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket.local_addr().expect("address")
    };
    let resolver = SipResolver::with_name_servers(&[dead], Duration::from_millis(300));
    let started = Instant::now();
    let result = resolver
        .resolve(
            &query("example.test", None, None, false),
            &mut StdRng::seed_from_u64(1),
        )
        .await;
    assert!(matches!(result, Err(DnsError::Lookup { .. })), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}
