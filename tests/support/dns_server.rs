//! A tiny authoritative DNS server on 127.0.0.1 for tests of server location (RFC 3263):
//! the resolver's unit tests and the registrar failover test share it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use hickory_resolver::proto::rr::{DNSClass, Name, RData, Record};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// Serves a fixed set of records; names it does not know get NXDOMAIN.
pub struct TestDnsServer {
    pub addr: SocketAddr,
    queries: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl TestDnsServer {
    /// Starts serving `records` on a random UDP port of 127.0.0.1.
    pub async fn start(records: Vec<Record>) -> TestDnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind a UDP port");
        let addr = socket.local_addr().expect("local address");
        let queries = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&queries);
        let task = tokio::spawn(async move {
            let mut buffer = vec![0u8; 4096];
            loop {
                let Ok((count, peer)) = socket.recv_from(&mut buffer).await else {
                    continue;
                };
                let Ok(request) = Message::from_vec(&buffer[..count]) else {
                    continue;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let response = answer(&request, &records);
                if let Ok(bytes) = response.to_vec() {
                    let _ = socket.send_to(&bytes, peer).await;
                }
            }
        });
        TestDnsServer {
            addr,
            queries,
            task,
        }
    }

    /// How many queries arrived so far.
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

impl Drop for TestDnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(request: &Message, records: &[Record]) -> Message {
    let mut response = Message::new();
    response
        .set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_recursion_desired(request.recursion_desired())
        .set_recursion_available(true)
        .set_authoritative(true);
    let mut known_name = false;
    for query in request.queries() {
        response.add_query(query.clone());
        for record in records {
            if record.name() == query.name() {
                known_name = true;
                if record.record_type() == query.query_type() {
                    response.add_answer(record.clone());
                }
            }
        }
    }
    if !known_name {
        response.set_response_code(ResponseCode::NXDomain);
    }
    response
}

/// Builds a record for `name` (a fully qualified name with its trailing dot).
pub fn record(name: &str, data: RData) -> Record {
    let name = Name::from_ascii(name).expect("valid test name");
    let mut record = Record::from_rdata(name, 60, data);
    record.set_dns_class(DNSClass::IN);
    record
}

/// A fully qualified name for test data.
pub fn name(text: &str) -> Name {
    Name::from_ascii(text).expect("valid test name")
}
