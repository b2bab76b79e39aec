//! The classic video transport core in virtual time: numbering, hold, garbage, latching and
//! keyframe requests, NACK and resending.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::SeedableRng;

use super::session_core::LocalSocket;
use super::video_core::{VideoDelivery, VideoTransportConfig, VideoTransportCore};
use super::MediaDirection;
use crate::rtp::{KeyframeRequest, NtpTime, RtpHeader, RtpPacket};

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn core(ssrc: u32, remote: &str, now: Instant) -> VideoTransportCore {
    let config = VideoTransportConfig {
        remote_rtp: addr(remote),
        remote_rtcp: None,
        rtcp_socket: false,
        payload_type: 96,
        srtp: None,
        direction: MediaDirection::SENDRECV,
        cname: "test@callisto".into(),
        nack: false,
    };
    VideoTransportCore::new(config, ssrc, now, &mut SmallRng::seed_from_u64(ssrc.into())).unwrap()
}

fn packet(timestamp: u32, marker: bool) -> RtpPacket {
    RtpPacket {
        header: RtpHeader {
            version: 2,
            marker,
            payload_type: 96,
            timestamp,
            ..RtpHeader::default()
        },
        payload: Bytes::from_static(&[0x65, 1, 2, 3]),
    }
}

fn ntp() -> NtpTime {
    NtpTime::from_unix(Duration::from_secs(1_700_000_000))
}

#[test]
fn packets_are_renumbered_keep_timestamp_and_marker_and_reach_the_peer() {
    let now = Instant::now();
    let mut a = core(0xa, "127.0.0.1:6002", now);
    let mut b = core(0xb, "127.0.0.1:6000", now);
    let mut delivered = Vec::new();
    for i in 0..4u32 {
        let t = a.send_rtp(now, &packet(3000 * i, i % 2 == 1)).unwrap();
        assert_eq!(t.destination, addr("127.0.0.1:6002"));
        delivered.extend(b.handle_datagram(
            now,
            ntp(),
            LocalSocket::Rtp,
            addr("127.0.0.1:6000"),
            &t.payload,
        ));
    }
    let got: Vec<(u32, bool, u32)> = delivered
        .iter()
        .map(|d| match d {
            VideoDelivery::Rtp(p) => (p.header.timestamp, p.header.marker, p.header.ssrc),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        [
            (0, false, 0xa),
            (3000, true, 0xa),
            (6000, false, 0xa),
            (9000, true, 0xa)
        ]
    );
    assert_eq!(b.remote_ssrc(), Some(0xa));
    assert_eq!(b.counters().discarded, 0);
}

#[test]
fn garbage_other_payload_types_and_hold_are_handled() {
    let now = Instant::now();
    let mut a = core(0xa, "127.0.0.1:6002", now);
    let mut b = core(0xb, "127.0.0.1:6000", now);
    let from = addr("127.0.0.1:6000");
    assert!(b
        .handle_datagram(now, ntp(), LocalSocket::Rtp, from, &[0x80, 1])
        .is_empty());
    let mut other = packet(0, true);
    other.header.payload_type = 97;
    let t = core(0xc, "127.0.0.1:6002", now)
        .send_rtp(now, &other)
        .unwrap();
    // A sender of PT 96 always writes its own PT; forge PT 97 on the wire.
    let mut forged = t.payload.to_vec();
    forged[1] = (forged[1] & 0x80) | 97;
    assert!(b
        .handle_datagram(now, ntp(), LocalSocket::Rtp, from, &forged)
        .is_empty());
    assert_eq!(b.counters().discarded, 2);

    a.update(addr("127.0.0.1:6002"), None, MediaDirection::RECVONLY, None)
        .unwrap();
    assert!(a.send_rtp(now, &packet(0, true)).is_none());
    a.update(addr("0.0.0.0:6002"), None, MediaDirection::SENDRECV, None)
        .unwrap();
    assert!(
        a.send_rtp(now, &packet(0, true)).is_none(),
        "never to 0.0.0.0"
    );
}

#[test]
fn latching_moves_rtp_to_where_the_peer_sends_from() {
    let now = Instant::now();
    let mut a = core(0xa, "127.0.0.1:6002", now);
    let mut b = core(0xb, "192.0.2.1:9999", now);
    for i in 0..3u32 {
        let t = a.send_rtp(now, &packet(3000 * i, true)).unwrap();
        b.handle_datagram(
            now,
            ntp(),
            LocalSocket::Rtp,
            addr("127.0.0.1:6000"),
            &t.payload,
        );
    }
    assert_eq!(b.rtp_destination(), addr("127.0.0.1:6000"));
    assert_eq!(b.counters().latches, 1);
}

#[test]
fn pli_and_fir_become_keyframe_requests_and_reports_flow() {
    let now = Instant::now();
    let mut a = core(0xa, "127.0.0.1:6002", now);
    let mut b = core(0xb, "127.0.0.1:6000", now);
    assert!(b.pli().is_none(), "no PLI before the peer's SSRC is known");
    let t = a.send_rtp(now, &packet(0, true)).unwrap();
    b.handle_datagram(
        now,
        ntp(),
        LocalSocket::Rtp,
        addr("127.0.0.1:6000"),
        &t.payload,
    );
    let pli = b.pli().unwrap();
    // A compound packet, as RFC 3550 wants without `a=rtcp-rsize`: an empty RR, b's CNAME,
    // then the PLI.
    let parts = crate::rtp::rtcp_packet::parse_compound(&pli.payload).unwrap();
    let kinds: Vec<&str> = parts
        .iter()
        .map(|p| match p {
            crate::rtp::rtcp_packet::RtcpPacket::ReceiverReport(rr) if rr.reports.is_empty() => {
                "rr"
            }
            crate::rtp::rtcp_packet::RtcpPacket::SourceDescription(_) => "sdes",
            crate::rtp::rtcp_packet::RtcpPacket::PictureLossIndication(_) => "pli",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["rr", "sdes", "pli"]);
    let got = a.handle_datagram(
        now,
        ntp(),
        LocalSocket::Rtp,
        addr("127.0.0.1:6002"),
        &pli.payload,
    );
    assert_eq!(got, [VideoDelivery::KeyframeRequested]);
    let fir = KeyframeRequest::Fir { sequence: 1 }
        .build(0xb, 0xa)
        .unwrap();
    let got = a.handle_datagram(now, ntp(), LocalSocket::Rtp, addr("127.0.0.1:6002"), &fir);
    assert_eq!(got, [VideoDelivery::KeyframeRequested]);

    let due = a.poll_timeout().unwrap();
    let report = a.poll_transmit(due, ntp()).unwrap();
    assert!(b
        .handle_datagram(
            due,
            ntp(),
            LocalSocket::Rtp,
            addr("127.0.0.1:6000"),
            &report.payload
        )
        .is_empty());
    assert_eq!(b.counters().rtcp_received, 1);
    // b's report about a's stream (a few more of its packets first, past probation), sent
    // some time after a's SR and 10 ms on the way each way: a learns the round trip, 20 ms,
    // and hands it on.
    for i in 1..4u32 {
        let t = a.send_rtp(due, &packet(3000 * i, true)).unwrap();
        b.handle_datagram(
            due,
            ntp(),
            LocalSocket::Rtp,
            addr("127.0.0.1:6000"),
            &t.payload,
        );
    }
    let b_due = b.poll_timeout().unwrap().max(due);
    let answer = b.poll_transmit(b_due, ntp()).unwrap();
    let arrival = b_due + Duration::from_millis(20);
    let base = Duration::from_secs(1_700_000_000);
    let at_a = NtpTime::from_unix(base + (arrival - due));
    // The report and a PLI in one compound packet, as peers that always send compound RTCP
    // ask: both are handed on.
    let with_pli = [
        answer.payload.to_vec(),
        KeyframeRequest::Pli.build(0xb, 0xa).unwrap().to_vec(),
    ]
    .concat();
    let got = a.handle_datagram(
        arrival,
        at_a,
        LocalSocket::Rtp,
        addr("127.0.0.1:6002"),
        &with_pli,
    );
    match got.as_slice() {
        [VideoDelivery::Rtt(rtt), VideoDelivery::KeyframeRequested] => {
            assert!(rtt.as_millis().abs_diff(20) <= 1, "{rtt:?}")
        }
        other => panic!("{other:?}"),
    }
    assert!(a.close(due, ntp()).is_some());
    assert!(a.close(due, ntp()).is_none());
}

#[test]
fn reports_leave_from_the_rtcp_socket_only_while_rtcp_is_not_multiplexed() {
    let now = Instant::now();
    let config = VideoTransportConfig {
        remote_rtp: addr("127.0.0.1:6002"),
        remote_rtcp: None,
        rtcp_socket: true,
        payload_type: 96,
        srtp: None,
        direction: MediaDirection::SENDRECV,
        cname: "test@callisto".into(),
        nack: false,
    };
    let mut a =
        VideoTransportCore::new(config, 0xa, now, &mut SmallRng::seed_from_u64(10)).unwrap();
    // The next report's socket and destination.
    let next_report = |a: &mut VideoTransportCore| {
        let due = a.poll_timeout().unwrap();
        let report = a.poll_transmit(due, ntp()).unwrap();
        (report.socket, report.destination)
    };
    // Multiplexed: the RTP socket, to the RTP address (RFC 5761 §4).
    assert_eq!(
        next_report(&mut a),
        (LocalSocket::Rtp, addr("127.0.0.1:6002"))
    );
    // A renegotiation without rtcp-mux: the RTCP socket, to the peer's RTCP address; and back.
    let rtcp = Some(addr("127.0.0.1:6003"));
    a.update(addr("127.0.0.1:6002"), rtcp, MediaDirection::SENDRECV, None)
        .unwrap();
    assert_eq!(
        next_report(&mut a),
        (LocalSocket::Rtcp, addr("127.0.0.1:6003"))
    );
    a.update(addr("127.0.0.1:6002"), None, MediaDirection::SENDRECV, None)
        .unwrap();
    assert_eq!(
        next_report(&mut a),
        (LocalSocket::Rtp, addr("127.0.0.1:6002"))
    );
}

/// Two cores with NACK (and SDES-SRTP) or without, a at 6000 and b at 6002.
fn nack_pair(nack: bool, now: Instant) -> (VideoTransportCore, VideoTransportCore) {
    use crate::rtp::{SrtpKeyMaterial, SrtpProfile};
    use crate::session::SrtpKeys;
    let (x, y) = (
        SrtpKeyMaterial::from_bytes(&[7; 30]).unwrap(),
        SrtpKeyMaterial::from_bytes(&[9; 30]).unwrap(),
    );
    let keys = |local: &SrtpKeyMaterial, remote: &SrtpKeyMaterial| SrtpKeys {
        profile: SrtpProfile::AesCm128HmacSha1_80,
        local: local.clone(),
        remote: remote.clone(),
    };
    let config = |remote: &str, srtp| VideoTransportConfig {
        remote_rtp: addr(remote),
        remote_rtcp: None,
        rtcp_socket: false,
        payload_type: 96,
        srtp: Some(srtp),
        direction: MediaDirection::SENDRECV,
        cname: "test@callisto".into(),
        nack,
    };
    let mut rng = SmallRng::seed_from_u64(3);
    let a = VideoTransportCore::new(config("127.0.0.1:6002", keys(&x, &y)), 0xa, now, &mut rng);
    let b = VideoTransportCore::new(config("127.0.0.1:6000", keys(&y, &x)), 0xb, now, &mut rng);
    (a.unwrap(), b.unwrap())
}

/// a sends five packets; the third is lost on the way. b's NACK for it reaches a, which
/// resends the very datagram it sent (SRTP protected once), and b takes it; a NACK for a
/// packet a never sent resends nothing. Without NACK negotiated b builds no NACK, and a
/// resends nothing even when asked.
#[test]
fn a_nacked_packet_is_resent_as_it_was_sent() {
    let now = Instant::now();
    let (a_at, b_at) = (addr("127.0.0.1:6000"), addr("127.0.0.1:6002"));
    for nack in [true, false] {
        let (mut a, mut b) = nack_pair(nack, now);
        let mut sent = Vec::new();
        for i in 0..5u32 {
            let t = a.send_rtp(now, &packet(3000 * i, true)).unwrap();
            if i != 2 {
                b.handle_datagram(now, ntp(), LocalSocket::Rtp, a_at, &t.payload);
            }
            sent.push(t.payload);
        }
        let lost = u16::from_be_bytes([sent[2][2], sent[2][3]]);
        let Some(request) = b.nack(&[lost, lost.wrapping_add(100)]) else {
            assert!(!nack, "with NACK negotiated, b asks");
            // A peer that asks anyway (it has the same keys and saw a's packets) gets nothing.
            let (_, mut asker) = nack_pair(true, now);
            asker.handle_datagram(now, ntp(), LocalSocket::Rtp, a_at, &sent[0]);
            let request = asker.nack(&[lost]).expect("a NACK-enabled peer asks");
            a.handle_datagram(now, ntp(), LocalSocket::Rtp, b_at, &request.payload);
            assert_eq!(a.counters().nacks_received, 1, "the NACK arrived");
            assert!(a.poll_resend().is_none(), "nothing kept, nothing resent");
            continue;
        };
        assert!(nack, "without NACK negotiated, b does not ask");
        assert_eq!(request.destination, a_at);
        let delivered = a.handle_datagram(now, ntp(), LocalSocket::Rtp, b_at, &request.payload);
        assert!(delivered.is_empty(), "{delivered:?}");
        let resent = a.poll_resend().expect("the lost packet again");
        assert_eq!(resent.destination, b_at);
        assert_eq!(resent.payload, sent[2], "the same datagram");
        assert!(a.poll_resend().is_none(), "nothing for a packet never sent");
        assert_eq!((a.counters().nacks_received, a.counters().resent), (1, 1));
        let got = b.handle_datagram(now, ntp(), LocalSocket::Rtp, a_at, &resent.payload);
        match got.as_slice() {
            [VideoDelivery::Rtp(p)] => assert_eq!(p.header.sequence_number, lost),
            other => panic!("{other:?}"),
        }
    }
}

/// What was kept is forgotten when NACK is renegotiated away or our keys change (the peer
/// could not read datagrams protected with the old ones); what is sent afterwards is kept.
#[test]
fn renegotiation_forgets_what_was_kept() {
    let now = Instant::now();
    let (a_at, b_at) = (addr("127.0.0.1:6000"), addr("127.0.0.1:6002"));
    let (mut a, mut b) = nack_pair(true, now);
    let send = |a: &mut VideoTransportCore, b: &mut VideoTransportCore| {
        let t = a.send_rtp(now, &packet(0, true)).unwrap();
        b.handle_datagram(now, ntp(), LocalSocket::Rtp, a_at, &t.payload);
        u16::from_be_bytes([t.payload[2], t.payload[3]])
    };
    let asked_again = |a: &mut VideoTransportCore, b: &mut VideoTransportCore, seq: u16| {
        let request = b.nack(&[seq]).unwrap();
        a.handle_datagram(now, ntp(), LocalSocket::Rtp, b_at, &request.payload);
        a.poll_resend().is_some()
    };
    let first = send(&mut a, &mut b);
    a.set_nack(false);
    a.set_nack(true);
    assert!(
        !asked_again(&mut a, &mut b, first),
        "forgotten with NACK off"
    );
    let second = send(&mut a, &mut b);
    // New keys of ours; the peer's stay, so its NACK still reads.
    let rekeyed = {
        use crate::rtp::{SrtpKeyMaterial, SrtpProfile};
        crate::session::SrtpKeys {
            profile: SrtpProfile::AesCm128HmacSha1_80,
            local: SrtpKeyMaterial::from_bytes(&[8; 30]).unwrap(),
            remote: SrtpKeyMaterial::from_bytes(&[9; 30]).unwrap(),
        }
    };
    a.update(b_at, None, MediaDirection::SENDRECV, Some(rekeyed))
        .unwrap();
    assert!(
        !asked_again(&mut a, &mut b, second),
        "forgotten with new keys"
    );
    let t = a.send_rtp(now, &packet(3000, true)).unwrap();
    let third = u16::from_be_bytes([t.payload[2], t.payload[3]]);
    assert!(asked_again(&mut a, &mut b, third), "kept after the change");
}
