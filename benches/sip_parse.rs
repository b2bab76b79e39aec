//! Parse throughput: a typical INVITE with SDP and a 200 OK, parsed and read through the
//! typed accessors the transaction layer uses.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use callisto_signaling::message::{parse, HeaderAccess};

const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com;transport=udp>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, NOTIFY\r\n\
Supported: replaces, timer\r\n\
User-Agent: Callisto/0.1\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 142\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\n\
s=-\r\n\
c=IN IP4 192.0.2.101\r\n\
t=0 0\r\n\
m=audio 49172 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

const OK: &[u8] = b"SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP server10.biloxi.example.com;branch=z9hG4bK4b43c2ff8.1;received=192.0.2.3\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;received=192.0.2.1\r\n\
To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:bob@192.0.2.4>\r\n\
Content-Length: 0\r\n\
\r\n";

fn parse_and_read(bytes: &[u8]) -> usize {
    let Ok(msg) = parse(bytes) else {
        return 0;
    };
    let branch = msg.branch().map_or(0, str::len);
    let cseq = msg.cseq().map_or(0, |c| c.seq as usize);
    let call_id = msg.call_id().map_or(0, str::len);
    let tags = msg.from_tag().map_or(0, str::len) + msg.to_tag().map_or(0, str::len);
    let contacts = msg.contacts().len();
    branch + cseq + call_id + tags + contacts + msg.body().len()
}

fn bench(c: &mut Criterion) {
    assert!(parse(INVITE).is_ok() && parse(OK).is_ok());
    let mut group = c.benchmark_group("sip_parse");
    group.throughput(Throughput::Elements(2));
    group.bench_function("invite_with_sdp_and_200_ok", |b| {
        b.iter(|| {
            parse_and_read(std::hint::black_box(INVITE)) + parse_and_read(std::hint::black_box(OK))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
