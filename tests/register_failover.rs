//! RFC 3263 failover: a registrar whose SRV records list a dead address first. Callisto tries
//! the next address by itself and registers there, without reporting a failure.

mod support;

use std::error::Error;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hickory_resolver::proto::rr::rdata::{A, SRV};
use hickory_resolver::proto::rr::RData;
use support::dns_server::{name, record, TestDnsServer};
use support::kamailio::{Kamailio, KamailioConfig};

type TestResult = Result<(), Box<dyn Error>>;

const CALLISTO: &str = env!("CARGO_BIN_EXE_callisto");

/// Serves `records` from a thread of its own until the test ends; returns the server's address.
fn serve_dns(records: Vec<hickory_resolver::proto::rr::Record>) -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        runtime.block_on(async move {
            let server = TestDnsServer::start(records).await;
            let _ = tx.send(server.addr);
            std::future::pending::<()>().await;
        });
    });
    rx.recv_timeout(Duration::from_secs(5))
        .expect("the DNS server starts")
}

#[test]
fn a_dead_first_address_gives_way_to_the_next_one() -> TestResult {
    let kamailio = Kamailio::start(KamailioConfig {
        users: vec![("alice".into(), "secret".into())],
        ..KamailioConfig::default()
    })?;
    // A port nobody listens on: connecting to it is refused at once.
    let dead_port = support::free_port();
    let loopback = RData::A(A(Ipv4Addr::LOCALHOST));
    let dns = serve_dns(vec![
        record(
            "_sip._tcp.failover.test.",
            RData::SRV(SRV::new(10, 0, dead_port, name("dead.failover.test."))),
        ),
        record(
            "_sip._tcp.failover.test.",
            RData::SRV(SRV::new(
                20,
                0,
                kamailio.config().tcp_port,
                name("live.failover.test."),
            )),
        ),
        record("dead.failover.test.", loopback.clone()),
        record("live.failover.test.", loopback),
    ]);
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("callisto.toml");
    std::fs::write(&config, format!("[transport]\ndns_servers = [\"{dns}\"]\n"))?;

    let started = Instant::now();
    let output = Command::new(CALLISTO)
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["register", "--listen", "127.0.0.1:0"])
        .args(["--user", "sip:alice@127.0.0.1", "--password", "secret"])
        .args(["--registrar", "sip:failover.test;transport=tcp"])
        .args(["--once", "--json"])
        .env("CALLISTO_LOG", "callisto_signaling=info")
        .output()?;
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let describe = format!(
        "status {:?}\nstdout:\n{stdout}\nstderr:\n{}\nkamailio:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        kamailio.log_tail(20)
    );
    assert!(output.status.success(), "{describe}");
    let events: Vec<String> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["event"].as_str().map(String::from))
        .collect();
    assert_eq!(events, ["registered", "unregistered"], "{describe}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("trying the registrar's next address")
            && stderr.contains(&format!("127.0.0.1:{dead_port}")),
        "the dead address was tried first: {describe}"
    );
    // The refused connection costs no backoff: the whole run stays short.
    assert!(
        elapsed < Duration::from_secs(5),
        "took {elapsed:?}\n{describe}"
    );
    let registers = kamailio.registers();
    assert!(registers.iter().all(|r| r.proto == "tcp"), "{registers:?}");
    assert!(!registers.is_empty(), "{describe}");
    Ok(())
}
