//! SDES-SRTP keys for the two ends of a loopback stream, drawn from a seed.

use callisto_media::rtp::{SrtpKeyMaterial, SrtpProfile};
use callisto_media::session::SrtpKeys;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Matching keys (AES_CM_128_HMAC_SHA1_80) for two ends: each one's local key is the other's
/// remote key.
#[allow(dead_code)]
pub fn srtp_pair(seed: u64) -> (SrtpKeys, SrtpKeys) {
    srtp_pair_with(SrtpProfile::AesCm128HmacSha1_80, seed)
}

/// Matching keys for two ends with the given suite.
pub fn srtp_pair_with(profile: SrtpProfile, seed: u64) -> (SrtpKeys, SrtpKeys) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let a = SrtpKeyMaterial::from_bytes(&rng.gen::<[u8; 30]>()).unwrap();
    let b = SrtpKeyMaterial::from_bytes(&rng.gen::<[u8; 30]>()).unwrap();
    (
        SrtpKeys {
            profile,
            local: a.clone(),
            remote: b.clone(),
        },
        SrtpKeys {
            profile,
            local: b,
            remote: a,
        },
    )
}
