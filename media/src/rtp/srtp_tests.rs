use super::*;
use crate::rtp::sender::RtpSender;
use aes::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::time::Instant;

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// AES-CM keystream (RFC 3711 §4.1.1): AES-CTR with a 128-bit big-endian counter from `iv`.
fn aes_cm_keystream(key: &[u8], iv: &[u8], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut cipher = Aes128Ctr::new(key.into(), iv.into());
    cipher.apply_keystream(&mut out);
    out
}

/// RFC 3711 Appendix B.3 master key and salt.
fn rfc3711_b3_key() -> SrtpKeyMaterial {
    let mut bytes = hex("E1F97A0D3E018BE0D64FA32C06DE4139");
    bytes.extend(hex("0EC675AD498AFEEBB6960B3AABE6"));
    SrtpKeyMaterial::from_bytes(&bytes).unwrap()
}

fn keys(seed: u64) -> (SrtpKeyMaterial, SrtpKeyMaterial) {
    let mut rng = StdRng::seed_from_u64(seed);
    (
        SrtpKeyMaterial::generate(&mut rng),
        SrtpKeyMaterial::generate(&mut rng),
    )
}

fn pair(profile: SrtpProfile, seed: u64) -> (SrtpSession, SrtpSession) {
    let (a, b) = keys(seed);
    (
        SrtpSession::new(profile, &a, &b).unwrap(),
        SrtpSession::new(profile, &b, &a).unwrap(),
    )
}

fn rtp(sender: &mut RtpSender, payload: &[u8]) -> Bytes {
    sender.audio_packet(Instant::now(), payload, 160)
}

#[test]
fn reference_aes_cm_matches_rfc3711_b2() {
    // RFC 3711 B.2: session key and salt given directly, SSRC 0, index 0.
    let key = hex("2B7E151628AED2A6ABF7158809CF4F3C");
    let iv = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000");
    let stream = aes_cm_keystream(&key, &iv, 16 * 0xff02);
    let block = |n: usize| stream[16 * n..16 * (n + 1)].to_vec();
    assert_eq!(block(0), hex("E03EAD0935C95E80E166B16DD92B4EB4"));
    assert_eq!(block(1), hex("D23513162B02D0F72A43A2FE4A5F97AB"));
    assert_eq!(block(2), hex("41E95B3BB0A2E8DD477901E4FCA894C0"));
    assert_eq!(block(0xfeff), hex("EC8CDF7398607CB0F2D21675EA9EA1E4"));
    assert_eq!(block(0xff00), hex("362B7C3C6773516318A077D7FC5073AE"));
    assert_eq!(block(0xff01), hex("6A2CC3787889374FBEB4C81B17BA6C44"));
}

#[test]
fn protect_matches_rfc3711_b3_session_keys() {
    // RFC 3711 B.3 derives from the master key and salt:
    let session_key = hex("C61E7A93744F39EE10734AFE3FF7A087");
    let session_salt = hex("30CBBC08863D8C85D49DB34A9AE1");
    let auth_key = hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4");

    let (_, other) = keys(1);
    let mut session =
        SrtpSession::new(SrtpProfile::AesCm128HmacSha1_80, &rfc3711_b3_key(), &other).unwrap();
    let ssrc = 0xCAFE_BABE;
    let seq = 0x1234u16;
    let mut sender = RtpSender::with_start(ssrc, seq, 0x0102_0304, 0, 8_000);
    let payload = [0u8; 160];
    let plain = rtp(&mut sender, &payload);
    let protected = session.protect_rtp(&plain).unwrap();

    // IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (index * 2^16), index = ROC || SEQ with ROC 0.
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(&session_salt);
    for (i, b) in ssrc.to_be_bytes().iter().enumerate() {
        iv[4 + i] ^= b;
    }
    for (i, b) in u64::from(seq).to_be_bytes()[2..].iter().enumerate() {
        iv[8 + i] ^= b;
    }
    let keystream = aes_cm_keystream(&session_key, &iv, payload.len());
    let mut expected = plain[..12].to_vec();
    expected.extend(payload.iter().zip(&keystream).map(|(p, k)| p ^ k));
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&auth_key).unwrap();
    mac.update(&expected);
    mac.update(&0u32.to_be_bytes());
    let tag = mac.finalize().into_bytes();
    expected.extend_from_slice(&tag[..10]);
    assert_eq!(protected.as_ref(), expected.as_slice());

    // The receiving side, keyed with the same material as its remote key, recovers the packet.
    let mut receiver =
        SrtpSession::new(SrtpProfile::AesCm128HmacSha1_80, &other, &rfc3711_b3_key()).unwrap();
    assert_eq!(receiver.unprotect_rtp(&protected).unwrap(), plain);
}

#[test]
fn round_trip_both_directions_both_suites() {
    for profile in [
        SrtpProfile::AesCm128HmacSha1_80,
        SrtpProfile::AesCm128HmacSha1_32,
    ] {
        let (mut alice, mut bob) = pair(profile, 2);
        let mut a_tx = RtpSender::with_start(0xA, 100, 0, 0, 8_000);
        let mut b_tx = RtpSender::with_start(0xB, 200, 0, 0, 8_000);
        for i in 0..50u8 {
            let a_plain = rtp(&mut a_tx, &[i; 160]);
            let a_wire = alice.protect_rtp(&a_plain).unwrap();
            assert_eq!(a_wire.len(), a_plain.len() + profile.rtp_overhead());
            assert_ne!(&a_wire[12..172], &a_plain[12..], "payload is encrypted");
            assert_eq!(bob.unprotect_rtp(&a_wire).unwrap(), a_plain);

            let b_plain = rtp(&mut b_tx, &[i.wrapping_mul(3); 80]);
            let b_wire = bob.protect_rtp(&b_plain).unwrap();
            assert_eq!(alice.unprotect_rtp(&b_wire).unwrap(), b_plain);
        }
        // A's own key does not open what A sent: each direction has its own key.
        let a_plain = rtp(&mut a_tx, &[9; 160]);
        let a_wire = alice.protect_rtp(&a_plain).unwrap();
        assert_eq!(
            alice.unprotect_rtp(&a_wire),
            Err(SrtpError::AuthenticationFailed)
        );

        // RTCP both ways; SRTCP always carries an 80-bit tag.
        let rr = [0x80, 201, 0, 1, 0, 0, 0, 0xA];
        let wire = alice.protect_rtcp(&rr).unwrap();
        assert_eq!(wire.len(), rr.len() + profile.rtcp_overhead());
        assert_eq!(bob.unprotect_rtcp(&wire).unwrap().as_ref(), &rr);
        let rr_b = [0x80, 201, 0, 1, 0, 0, 0, 0xB];
        let wire = bob.protect_rtcp(&rr_b).unwrap();
        assert_eq!(alice.unprotect_rtcp(&wire).unwrap().as_ref(), &rr_b);
        assert_eq!(bob.counters().rtp_unprotected, 50);
        assert_eq!(bob.counters().rtcp_unprotected, 1);
    }
}

#[test]
fn replayed_packets_are_rejected() {
    let (mut alice, mut bob) = pair(SrtpProfile::AesCm128HmacSha1_80, 3);
    let mut tx = RtpSender::with_start(0xA, 1, 0, 0, 8_000);
    let wires: Vec<Bytes> = (0..1_100)
        .map(|_| alice.protect_rtp(&rtp(&mut tx, &[1; 20])).unwrap())
        .collect();
    bob.unprotect_rtp(&wires[0]).unwrap();
    assert_eq!(bob.unprotect_rtp(&wires[0]), Err(SrtpError::Replayed));
    // Reordering within the window is fine — a resend of a packet 1000 behind the newest
    // among them — and only once; further behind than the window is not.
    bob.unprotect_rtp(&wires[1_099]).unwrap();
    bob.unprotect_rtp(&wires[99]).unwrap();
    assert_eq!(bob.unprotect_rtp(&wires[99]), Err(SrtpError::Replayed));
    assert_eq!(bob.unprotect_rtp(&wires[5]), Err(SrtpError::Replayed));
    assert_eq!(bob.counters().replayed, 3);

    let rr = [0x80, 201, 0, 1, 0, 0, 0, 0xA];
    let wire = alice.protect_rtcp(&rr).unwrap();
    bob.unprotect_rtcp(&wire).unwrap();
    assert_eq!(bob.unprotect_rtcp(&wire), Err(SrtpError::Replayed));
}

#[test]
fn tampering_is_detected_and_does_not_disturb_state() {
    let (mut alice, mut bob) = pair(SrtpProfile::AesCm128HmacSha1_32, 4);
    let mut tx = RtpSender::with_start(0xA, 1, 0, 0, 8_000);
    let wire = alice.protect_rtp(&rtp(&mut tx, &[7; 40])).unwrap();
    for position in [wire.len() - 1, 20, 3] {
        let mut bad = wire.to_vec();
        bad[position] ^= 0x01;
        assert_eq!(
            bob.unprotect_rtp(&bad),
            Err(SrtpError::AuthenticationFailed),
            "byte {position}"
        );
    }
    // The genuine packet still goes through after the forgeries.
    assert!(bob.unprotect_rtp(&wire).is_ok());
    assert_eq!(bob.counters().auth_failed, 3);

    let rr = [0x80, 201, 0, 1, 0, 0, 0, 0xA];
    let mut bad = alice.protect_rtcp(&rr).unwrap().to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0x80;
    assert_eq!(
        bob.unprotect_rtcp(&bad),
        Err(SrtpError::AuthenticationFailed)
    );
}

#[test]
fn unencrypted_srtcp_and_short_input_are_refused() {
    let (mut alice, mut bob) = pair(SrtpProfile::AesCm128HmacSha1_80, 5);
    let rr = [0x80, 201, 0, 1, 0, 0, 0, 0xA];
    let mut wire = alice.protect_rtcp(&rr).unwrap().to_vec();
    let e = wire.len() - 14;
    wire[e] &= 0x7f;
    assert_eq!(bob.unprotect_rtcp(&wire), Err(SrtpError::UnencryptedSrtcp));
    assert_eq!(bob.unprotect_rtcp(&wire[..10]), Err(SrtpError::TooShort));
    assert_eq!(bob.unprotect_rtcp(&[0x80]), Err(SrtpError::TooShort));
    assert_eq!(bob.unprotect_rtp(&[0x80; 11]), Err(SrtpError::TooShort));
    // A bare 12-byte header has no room for the tag.
    assert_eq!(
        bob.unprotect_rtp(&[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xA]),
        Err(SrtpError::TooShort)
    );
    assert_eq!(
        bob.unprotect_rtp(&[
            0x40, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xA, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
        ]),
        Err(SrtpError::MalformedHeader)
    );
    let c = bob.counters();
    assert_eq!((c.malformed, c.too_short), (2, 4));
}

#[test]
fn rollover_counter_follows_sequence_wrap() {
    let (mut alice, mut bob) = pair(SrtpProfile::AesCm128HmacSha1_80, 6);
    let mut tx = RtpSender::with_start(0xA, 65_500, 0, 0, 8_000);
    for i in 0..100u8 {
        let plain = rtp(&mut tx, &[i; 30]);
        let wire = alice.protect_rtp(&plain).unwrap();
        assert_eq!(bob.unprotect_rtp(&wire).unwrap(), plain, "packet {i}");
    }
}

#[test]
fn key_material_is_checked_and_redacted() {
    assert_eq!(
        SrtpKeyMaterial::from_bytes(&[0; 29]),
        Err(SrtpError::KeyLength {
            expected: 30,
            got: 29
        })
    );
    let key = rfc3711_b3_key();
    assert_eq!(format!("{key:?}"), "SrtpKeyMaterial(<redacted>)");
    assert_eq!(key.as_bytes().len(), 30);
    assert_eq!(
        SrtpProfile::from_sdes_name("AES_CM_128_HMAC_SHA1_32"),
        Some(SrtpProfile::AesCm128HmacSha1_32)
    );
    assert_eq!(SrtpProfile::from_sdes_name("F8_128_HMAC_SHA1_80"), None);
    assert_eq!(
        SrtpProfile::AesCm128HmacSha1_80.sdes_name(),
        "AES_CM_128_HMAC_SHA1_80"
    );
}

#[test]
fn forged_first_packets_cannot_poison_the_replay_window() {
    let (mut alice, mut bob) = pair(SrtpProfile::AesCm128HmacSha1_80, 7);
    let mut tx = RtpSender::with_start(0xA, 1000, 0, 0, 8_000);
    let plain = rtp(&mut tx, &[3; 40]);
    let wire = alice.protect_rtp(&plain).unwrap();
    // Before the genuine stream's first packet arrives, a forgery with its SSRC and a sequence
    // number 30 000 ahead (the tag is garbage).
    let mut forged = wire.to_vec();
    forged[2..4].copy_from_slice(&31_000u16.to_be_bytes());
    assert_eq!(
        bob.unprotect_rtp(&forged),
        Err(SrtpError::AuthenticationFailed)
    );
    assert_eq!(bob.unprotect_rtp(&wire).unwrap(), plain);

    // The same for SRTCP: a forged index far ahead first.
    let rr = [0x80, 201, 0, 1, 0, 0, 0, 0xA];
    let wire = alice.protect_rtcp(&rr).unwrap();
    let mut forged = wire.to_vec();
    let index_at = forged.len() - 14;
    forged[index_at..index_at + 4].copy_from_slice(&0x8000_7000u32.to_be_bytes());
    assert_eq!(
        bob.unprotect_rtcp(&forged),
        Err(SrtpError::AuthenticationFailed)
    );
    assert_eq!(bob.unprotect_rtcp(&wire).unwrap().as_ref(), &rr);
}

#[test]
fn a_flood_of_forged_ssrcs_leaves_the_genuine_stream_working() {
    let (mut alice, mut bob) = pair(SrtpProfile::AesCm128HmacSha1_80, 8);
    let mut tx = RtpSender::with_start(0xA, 1, 0, 0, 8_000);
    for round in 0..5u32 {
        for fake in 0..(MAX_PROBED_SSRCS as u32 * 3) {
            let mut forged = alice.protect_rtp(&rtp(&mut tx, &[0; 20])).unwrap().to_vec();
            forged[8..12].copy_from_slice(&(0xF000_0000 + round * 1000 + fake).to_be_bytes());
            assert_eq!(
                bob.unprotect_rtp(&forged),
                Err(SrtpError::AuthenticationFailed)
            );
        }
        let plain = rtp(&mut tx, &[1; 20]);
        let wire = alice.protect_rtp(&plain).unwrap();
        assert_eq!(bob.unprotect_rtp(&wire).unwrap(), plain);
        assert!(bob.inbound.probed.len() <= MAX_PROBED_SSRCS);
        assert_eq!(
            bob.inbound.rtp_ssrcs.len(),
            1,
            "only authenticated SSRCs are kept"
        );
    }
}

/// A renegotiation that changes only the peer's key keeps our outbound context: after a
/// sequence wrap the peer, whose context for our unchanged key runs on, still authenticates
/// what we send (a fresh context would restart the rollover counter at 0 and reuse
/// keystream), and what it sends under its new key is read.
#[test]
fn a_new_peer_key_keeps_our_outbound_context_across_a_wrap() {
    let profile = SrtpProfile::AesCm128HmacSha1_80;
    let (ours, theirs) = keys(61);
    let mut us = SrtpSession::new(profile, &ours, &theirs).unwrap();
    let mut peer = SrtpSession::new(profile, &theirs, &ours).unwrap();
    let mut sender = RtpSender::with_start(0x5151_0001, 65_530, 0, 0, 8_000);
    for _ in 0..12 {
        let wire = us.protect_rtp(&rtp(&mut sender, &[7; 160])).unwrap();
        peer.unprotect_rtp(&wire).unwrap();
    }
    // The peer re-offers with a new key of its own; ours stays.
    let (renewed, _) = keys(62);
    us.rekey(profile, &ours, &renewed).unwrap();
    let mut peer_sending = SrtpSession::new(profile, &renewed, &ours).unwrap();
    for _ in 0..3 {
        let wire = us.protect_rtp(&rtp(&mut sender, &[8; 160])).unwrap();
        assert!(
            peer.unprotect_rtp(&wire).is_ok(),
            "after the wrap, under our old key"
        );
    }
    let mut theirs_sender = RtpSender::with_start(0x5151_0002, 10, 0, 0, 8_000);
    let wire = peer_sending
        .protect_rtp(&rtp(&mut theirs_sender, &[9; 160]))
        .unwrap();
    assert!(us.unprotect_rtp(&wire).is_ok(), "under the peer's new key");
    // Our own new key starts a new outbound context, which the peer's new one reads.
    let (fresh, _) = keys(63);
    us.rekey(profile, &fresh, &renewed).unwrap();
    let mut peer_now = SrtpSession::new(profile, &renewed, &fresh).unwrap();
    let wire = us.protect_rtp(&rtp(&mut sender, &[10; 160])).unwrap();
    assert!(peer_now.unprotect_rtp(&wire).is_ok());
}
