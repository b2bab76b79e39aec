//! The harness's loopback capture (`support::wire_capture`), which times the user agents'
//! packets in the benches: its packet parser and `/proc` reading on fixed input, and a live
//! capture of datagrams this test sends between two loopback sockets (a packet socket needs
//! root, as the suites run in their own network namespace).

mod support;

use std::collections::HashSet;
use std::net::{SocketAddrV4, UdpSocket};
use std::time::{Duration, SystemTime};

use support::wire_capture::{parse_ipv4_udp, udp_ports_in_table, udp_ports_of, WireCapture};

/// An IPv4 header (20 bytes, no options) and a UDP header around `payload`.
fn ipv4_udp(source: SocketAddrV4, destination: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    let udp_len = 8 + payload.len() as u16;
    let total = 20 + udp_len;
    let mut packet = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 17, 0, 0];
    packet[2..4].copy_from_slice(&total.to_be_bytes());
    packet.extend(source.ip().octets());
    packet.extend(destination.ip().octets());
    packet.extend(source.port().to_be_bytes());
    packet.extend(destination.port().to_be_bytes());
    packet.extend(udp_len.to_be_bytes());
    packet.extend([0, 0]);
    packet.extend(payload);
    packet
}

#[test]
fn udp_packets_parse_and_everything_else_is_skipped() {
    let (a, b) = (
        "127.0.0.1:40000".parse().unwrap(),
        "127.0.0.2:5060".parse().unwrap(),
    );
    let packet = ipv4_udp(a, b, b"\x80\x60rtp");
    assert_eq!(
        parse_ipv4_udp(&packet),
        Some((a, b, b"\x80\x60rtp".as_slice()))
    );
    // Ethernet padding after the IP packet is not payload.
    let mut padded = packet.clone();
    padded.extend([0; 6]);
    assert_eq!(
        parse_ipv4_udp(&padded).map(|(_, _, p)| p),
        Some(b"\x80\x60rtp".as_slice())
    );
    let mut tcp = packet.clone();
    tcp[9] = 6;
    assert_eq!(parse_ipv4_udp(&tcp), None);
    let mut fragment = packet.clone();
    fragment[6] = 0x20; // more fragments
    assert_eq!(parse_ipv4_udp(&fragment), None);
    let mut ipv6 = packet.clone();
    ipv6[0] = 0x60;
    assert_eq!(parse_ipv4_udp(&ipv6), None);
    assert_eq!(parse_ipv4_udp(&packet[..packet.len() - 1]), None);
    // An IP length shorter than its own headers, or than the UDP length, is not a datagram.
    for total in [0u16, 20, 27] {
        let mut short = packet.clone();
        short[2..4].copy_from_slice(&total.to_be_bytes());
        assert_eq!(parse_ipv4_udp(&short), None, "total length {total}");
    }
    assert_eq!(parse_ipv4_udp(&packet[..24]), None);
    assert_eq!(parse_ipv4_udp(&[]), None);
}

#[test]
fn a_process_ports_are_its_sockets_rows() {
    let table = "\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  123: 0100007F:13C4 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 5551 2 0000000000000000 0
  124: 0100007F:9C40 0100007F:13C4 01 00000000:00000000 00:00000000 00000000     0        0 5552 2 0000000000000000 0
  125: 0100007F:1F90 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 9999 2 0000000000000000 0
";
    let inodes: HashSet<String> = ["5551", "5552"].map(str::to_owned).into();
    assert_eq!(
        udp_ports_in_table(table, &inodes),
        HashSet::from([5060, 40000])
    );
    assert!(udp_ports_in_table(table, &HashSet::new()).is_empty());
}

#[test]
fn datagrams_sent_on_loopback_are_captured_with_their_time_and_sender() {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (a_addr, b_addr) = match (a.local_addr().unwrap(), b.local_addr().unwrap()) {
        (std::net::SocketAddr::V4(a), std::net::SocketAddr::V4(b)) => (a, b),
        other => panic!("{other:?}"),
    };
    assert!(udp_ports_of(std::process::id())
        .unwrap()
        .is_superset(&[a_addr.port(), b_addr.port()].into()));

    let mut capture = WireCapture::start().expect("a packet socket (run as root)");
    let before = SystemTime::now();
    a.send_to(b"\x80\x00first datagram, longer than the head", b_addr)
        .unwrap();
    std::thread::sleep(Duration::from_millis(20));
    b.send_to(b"reply", a_addr).unwrap();
    let mut buffer = [0; 64];
    b.recv_from(&mut buffer).unwrap();
    a.recv_from(&mut buffer).unwrap();
    let after = SystemTime::now();
    let captured = capture.stop().unwrap();

    let ours: Vec<_> = captured
        .iter()
        .filter(|d| [a_addr, b_addr].contains(&d.source))
        .collect();
    assert_eq!(ours.len(), 2, "each datagram once: {captured:?}");
    assert!(
        ours.iter().all(|d| d.kernel_time),
        "kernel timestamps: {ours:?}"
    );
    assert_eq!((ours[0].source, ours[0].destination), (a_addr, b_addr));
    assert_eq!(ours[0].head, b"\x80\x00first datagram");
    assert_eq!(
        (ours[1].source, ours[1].head.as_slice()),
        (b_addr, b"reply".as_slice())
    );
    assert!(before <= ours[0].at && ours[0].at <= ours[1].at && ours[1].at <= after);
    // 20 ms passed between the two sends; each stamp is taken as its datagram reaches the
    // capture, which a loaded machine may delay by a little more for the first.
    let gap = ours[1].at.duration_since(ours[0].at).unwrap();
    assert!(gap >= Duration::from_millis(19), "{gap:?}");
}
