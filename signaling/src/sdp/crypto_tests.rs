//! `a=crypto` (RFC 4568) parsing, writing and key generation.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;

/// The example of RFC 4568 §4 (its key is 30 bytes of base64 text).
const RFC4568: &str =
    "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32";

#[test]
fn reads_and_writes_the_rfc_example() {
    let c = CryptoAttribute::parse(RFC4568).unwrap();
    assert_eq!(c.tag, 1);
    assert_eq!(c.suite, SrtpSuite::AesCm128HmacSha1_80);
    assert_eq!(
        c.key.to_base64(),
        "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
    );
    assert_eq!(c.lifetime, Some(KeyLifetime::PowerOfTwo(20)));
    assert_eq!(c.lifetime.unwrap().packets(), 1 << 20);
    assert_eq!(
        c.mki,
        Some(Mki {
            value: 1,
            length: 32
        })
    );
    assert!(c.session_params.is_empty());
    assert_eq!(c.to_string(), RFC4568);
    // An MKI would have to be carried in every packet: not usable by our SRTP.
    assert!(!c.is_usable());
}

#[test]
fn key_splits_into_master_key_and_salt() {
    let c = CryptoAttribute::parse(RFC4568).unwrap();
    let bytes = c.key.as_bytes();
    assert_eq!(c.key.key(), &bytes[..16]);
    assert_eq!(c.key.salt(), &bytes[16..]);
    assert_eq!((c.key.key().len(), c.key.salt().len()), (16, 14));
    assert_eq!(SrtpMasterKey::from_bytes(*bytes), c.key);
}

#[test]
fn lifetimes_mki_and_session_params() {
    let key = "0aWsmgFfrC73s0FnNjVRKhUR9B/jfREbJn8Dnuxd";
    let c =
        CryptoAttribute::parse(&format!("7 AES_CM_128_HMAC_SHA1_32 inline:{key}|1048576")).unwrap();
    assert_eq!(c.suite, SrtpSuite::AesCm128HmacSha1_32);
    assert_eq!(c.lifetime, Some(KeyLifetime::Packets(1_048_576)));
    assert!(c.is_usable());

    let c = CryptoAttribute::parse(&format!("2 AES_CM_128_HMAC_SHA1_80 inline:{key}|5:4")).unwrap();
    assert_eq!(
        (c.lifetime, c.mki),
        (
            None,
            Some(Mki {
                value: 5,
                length: 4
            })
        )
    );

    let line = format!("3 AES_CM_128_HMAC_SHA1_80 inline:{key} KDR=0 WSH=128");
    let c = CryptoAttribute::parse(&line).unwrap();
    assert_eq!(c.session_params, ["KDR=0", "WSH=128"]);
    assert!(c.is_usable());
    assert_eq!(c.to_string(), line);

    for param in [
        "UNENCRYPTED_SRTP",
        "UNAUTHENTICATED_SRTP",
        "KDR=24",
        "FEC_ORDER=SRTP_FEC",
    ] {
        let c = CryptoAttribute::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key} {param}"))
            .unwrap();
        assert!(!c.is_usable(), "{param}");
    }
    assert_eq!(KeyLifetime::PowerOfTwo(64).packets(), u64::MAX);
}

#[test]
fn suite_names_read_in_any_case_and_padding_is_optional() {
    let c = CryptoAttribute::parse(
        "1 aes_cm_128_hmac_sha1_80 INLINE:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ",
    )
    .unwrap();
    assert_eq!(c.suite, SrtpSuite::AesCm128HmacSha1_80);
    assert!(c
        .to_string()
        .starts_with("1 AES_CM_128_HMAC_SHA1_80 inline:"));
}

#[test]
fn malformed_and_unsupported_values_fail_with_reasons() {
    let key = "WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ";
    let cases = [
        (String::new(), "has a bad tag"),
        (
            format!("x AES_CM_128_HMAC_SHA1_80 inline:{key}"),
            "has a bad tag",
        ),
        (
            format!("1234567890 AES_CM_128_HMAC_SHA1_80 inline:{key}"),
            "has a bad tag",
        ),
        ("1".to_owned(), "has no suite"),
        (
            format!("1 AES_256_CM_HMAC_SHA1_80 inline:{key}"),
            "has an unsupported suite",
        ),
        (
            format!("1 AEAD_AES_128_GCM inline:{key}"),
            "has an unsupported suite",
        ),
        (
            format!("1 F8_128_HMAC_SHA1_80 inline:{key}"),
            "has an unsupported suite",
        ),
        (
            "1 AES_CM_128_HMAC_SHA1_80".to_owned(),
            "has no key parameters",
        ),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 uri:{key}"),
            "has no inline key",
        ),
        (
            "1 AES_CM_128_HMAC_SHA1_80 inline:".to_owned(),
            "has a bad key",
        ),
        (
            "1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=".to_owned(),
            "has a bad key",
        ),
        (
            "1 AES_CM_128_HMAC_SHA1_80 inline:!!!notbase64!!!".to_owned(),
            "has a bad key",
        ),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key};inline:{key}"),
            "has several keys",
        ),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^99"),
            "has a bad lifetime",
        ),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^20|2^20"),
            "has a bad lifetime",
        ),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key}|1:4|2^20"),
            "has a bad lifetime",
        ),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key}|1:0"),
            "has a bad MKI",
        ),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key}|1:200"),
            "has a bad MKI",
        ),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key}|1:4|2:4"),
            "has a bad MKI",
        ),
    ];
    for (value, reason) in cases {
        let err = CryptoAttribute::parse(&value).expect_err(&value);
        assert_eq!(err, SdpError::BadCrypto(reason), "{value:?}");
        assert_eq!(
            err.to_string(),
            format!("Bad SDP: crypto attribute {reason}")
        );
    }
}

#[test]
fn media_crypto_accessor_skips_lines_it_cannot_use() {
    let sdp = parse(include_str!("../../tests/sdp_samples/snom_mki_offer.sdp")).unwrap();
    let lines: Vec<CryptoAttribute> = sdp.media[0].crypto().collect();
    // The AES-256 line does not parse; the MKI line parses but is not usable.
    assert_eq!(lines.iter().map(|c| c.tag).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(
        lines
            .iter()
            .map(CryptoAttribute::is_usable)
            .collect::<Vec<_>>(),
        [false, true]
    );
}

#[test]
fn generated_keys_come_from_the_given_source() {
    let mut a = ChaCha8Rng::seed_from_u64(7);
    let mut b = ChaCha8Rng::seed_from_u64(7);
    let first = SrtpMasterKey::generate(&mut a);
    assert_eq!(first, SrtpMasterKey::generate(&mut b));
    let second = SrtpMasterKey::generate(&mut a);
    assert_ne!(first, second);
    let text = first.to_base64();
    assert_eq!(text.len(), 40);
    assert_eq!(SrtpMasterKey::from_base64(&text), Some(first.clone()));
    // Keys never reach a log.
    assert_eq!(format!("{first:?}"), "SrtpMasterKey(..)");
    let line = CryptoAttribute::new(1, SrtpSuite::AesCm128HmacSha1_32, first);
    assert!(!format!("{line:?}").contains(&text));
    assert_eq!(CryptoAttribute::parse(&line.to_string()), Ok(line));
}
