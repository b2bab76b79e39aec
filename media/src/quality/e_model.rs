//! The E-model's formulas (ITU-T G.107): delay impairment, effective equipment impairment under
//! packet loss, the R factor and its mapping to MOS.

use super::CodecImpairment;

/// R with every G.107 parameter at its default value and no delay, codec or loss impairment
/// (Ro − Is = 93.2).
pub const DEFAULT_R: f64 = 93.2;

/// What a call's statistics say about its transmission, the input of [`r_factor`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Impairments {
    /// Mouth-to-ear delay Ta in milliseconds (network one-way delay plus jitter buffer and
    /// codec delay).
    pub one_way_delay_ms: f64,
    /// Packet loss probability Ppl in percent (0 to 100), after any FEC recovery.
    pub loss_percent: f64,
    /// Burst ratio BurstR: 1 for random loss, above 1 when losses come in bursts (see
    /// [`burst_ratio`]).
    pub burst_ratio: f64,
    /// The codec's impairment values.
    pub codec: CodecImpairment,
}

/// The transmission rating R for a live call, clamped to [0, 100].
///
/// R = 93.2 − Idd(Ta) − Ie,eff(Ppl, BurstR, Ie, Bpl): G.107 with its default values for
/// everything a call cannot measure (see the module docs).
pub fn r_factor(impairments: &Impairments) -> f64 {
    let id = delay_impairment(impairments.one_way_delay_ms);
    let ie_eff = effective_equipment_impairment(
        impairments.codec,
        impairments.loss_percent,
        impairments.burst_ratio,
    );
    (DEFAULT_R - id - ie_eff).clamp(0.0, 100.0)
}

/// The conversational MOS (1 to 4.5) for a rating R (G.107 Annex B).
///
/// MOS = 1 for R < 0, 4.5 for R > 100, and 1 + 0.035 R + R (R − 60)(100 − R) · 7·10⁻⁶ between.
/// The polynomial dips a hair below 1 for R under about 6.5; the result is held at 1 there, the
/// bottom of the scale. A NaN rating maps to 1.
pub fn mos_from_r(r: f64) -> f64 {
    if r.is_nan() || r < 0.0 {
        return 1.0;
    }
    if r > 100.0 {
        return 4.5;
    }
    let mos = 1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7.0e-6;
    mos.clamp(1.0, 4.5)
}

/// The delay impairment Id for a mouth-to-ear delay Ta in milliseconds: the absolute-delay term
/// Idd of G.107 §7.4 with the default delay sensitivity (mT = 100 ms, sT = 1).
///
/// Idd = 0 for Ta ≤ 100 ms; above, with X = log₂(Ta / 100),
/// Idd = 25 · ((1 + X⁶)^(1/6) − 3 · (1 + (X/3)⁶)^(1/6) + 2).
pub fn delay_impairment(one_way_delay_ms: f64) -> f64 {
    const M_T: f64 = 100.0;
    let ta = if one_way_delay_ms.is_nan() {
        0.0
    } else {
        one_way_delay_ms
    };
    if ta <= M_T {
        return 0.0;
    }
    let x = (ta / M_T).log2();
    let sixth = 1.0 / 6.0;
    25.0 * ((1.0 + x.powi(6)).powf(sixth) - 3.0 * (1.0 + (x / 3.0).powi(6)).powf(sixth) + 2.0)
}

/// The effective equipment impairment Ie,eff under packet loss (G.107 §7.6):
/// Ie,eff = Ie + (95 − Ie) · Ppl / (Ppl / BurstR + Bpl).
///
/// `loss_percent` is clamped to [0, 100] (NaN counts as 0) and `burst_ratio` to at least 1 (NaN
/// counts as 1).
pub fn effective_equipment_impairment(
    codec: CodecImpairment,
    loss_percent: f64,
    burst_ratio: f64,
) -> f64 {
    let ppl = if loss_percent.is_nan() {
        0.0
    } else {
        loss_percent.clamp(0.0, 100.0)
    };
    let burst = if burst_ratio.is_nan() {
        1.0
    } else {
        burst_ratio.max(1.0)
    };
    let ie = codec.ie.clamp(0.0, 95.0);
    let bpl = codec.bpl.max(f64::MIN_POSITIVE);
    ie + (95.0 - ie) * ppl / (ppl / burst + bpl)
}

/// The burst ratio BurstR from the loss probability `loss_ratio` (0 to 1) and the mean length of
/// the observed loss bursts in packets (G.107 §7.6: the observed mean burst length over the one
/// random loss would give, 1 / (1 − p)).
///
/// Returns 1 (random loss) when there was no loss or no burst was observed, and at least 1.
pub fn burst_ratio(loss_ratio: f64, mean_burst_length: f64) -> f64 {
    let lossy = loss_ratio > 0.0 && loss_ratio < 1.0;
    if lossy && mean_burst_length >= 1.0 {
        (mean_burst_length * (1.0 - loss_ratio)).max(1.0)
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(delay_ms: f64, loss_percent: f64, codec: CodecImpairment) -> Impairments {
        Impairments {
            one_way_delay_ms: delay_ms,
            loss_percent,
            burst_ratio: 1.0,
            codec,
        }
    }

    fn close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "{actual} is not within {tolerance} of {expected}"
        );
    }

    #[test]
    fn the_default_rating_maps_to_mos_4_41() {
        close(mos_from_r(93.2), 4.41, 0.005);
        close(mos_from_r(DEFAULT_R), 4.409, 0.001);
    }

    #[test]
    fn annex_b_points() {
        // 1 + 0.035 R + R (R − 60)(100 − R) · 7e-6, worked by hand.
        close(mos_from_r(50.0), 2.575, 1e-9);
        close(mos_from_r(60.0), 3.1, 1e-9);
        close(mos_from_r(70.0), 3.597, 1e-9);
        close(mos_from_r(80.0), 4.024, 1e-9);
        close(mos_from_r(90.0), 4.339, 1e-9);
        close(mos_from_r(100.0), 4.5, 1e-9);
        close(mos_from_r(0.0), 1.0, 1e-9);
    }

    #[test]
    fn mos_is_clamped_outside_0_to_100() {
        assert_eq!(mos_from_r(-5.0), 1.0);
        assert_eq!(mos_from_r(-1e9), 1.0);
        assert_eq!(mos_from_r(100.5), 4.5);
        assert_eq!(mos_from_r(1e9), 4.5);
        assert_eq!(mos_from_r(f64::NAN), 1.0);
        // The polynomial's dip below 1 near R = 3 stays at the bottom of the scale.
        assert_eq!(mos_from_r(3.0), 1.0);
        for tenth in 0..=1000 {
            let mos = mos_from_r(f64::from(tenth) / 10.0);
            assert!((1.0..=4.5).contains(&mos), "{tenth}: {mos}");
        }
    }

    #[test]
    fn g711_without_loss_or_delay_is_the_best_narrowband_call() {
        for codec in [CodecImpairment::G711_PLC, CodecImpairment::G711_NO_PLC] {
            let r = r_factor(&call(0.0, 0.0, codec));
            close(r, 93.2, 1e-9);
            close(mos_from_r(r), 4.41, 0.005);
        }
        // Up to 100 ms of one-way delay costs nothing.
        close(
            r_factor(&call(100.0, 0.0, CodecImpairment::G711_PLC)),
            93.2,
            1e-9,
        );
    }

    #[test]
    fn delay_impairment_matches_worked_values() {
        assert_eq!(delay_impairment(0.0), 0.0);
        assert_eq!(delay_impairment(100.0), 0.0);
        assert_eq!(delay_impairment(-20.0), 0.0);
        assert_eq!(delay_impairment(f64::NAN), 0.0);
        // Ta = 200 ms: X = 1, 25 (2^(1/6) − 3 (1 + 3^-6)^(1/6) + 2).
        close(delay_impairment(200.0), 3.0446, 0.001);
        // Ta = 400 ms: X = 2, 25 (65^(1/6) − 3 (1 + (2/3)^6)^(1/6) + 2).
        close(delay_impairment(400.0), 24.07, 0.01);
        // Ta = 150 ms: barely noticeable.
        close(delay_impairment(150.0), 0.164, 0.005);
    }

    #[test]
    fn effective_impairment_follows_the_g107_formula() {
        let plc = CodecImpairment::G711_PLC;
        let no_plc = CodecImpairment::G711_NO_PLC;
        // 95 · 2 / (2 + 25.1) and 95 · 2 / (2 + 4.3).
        close(effective_equipment_impairment(plc, 2.0, 1.0), 7.0111, 1e-3);
        close(
            effective_equipment_impairment(no_plc, 2.0, 1.0),
            30.159,
            1e-3,
        );
        assert_eq!(effective_equipment_impairment(plc, 0.0, 1.0), 0.0);
        // Every packet lost, at random: 95 · 100 / (100 + 4.3).
        close(
            effective_equipment_impairment(no_plc, 100.0, 1.0),
            95.0 * 100.0 / 104.3,
            1e-9,
        );
        // Garbage statistics are clamped, not propagated.
        assert_eq!(effective_equipment_impairment(plc, f64::NAN, 1.0), 0.0);
        assert_eq!(effective_equipment_impairment(plc, -3.0, 1.0), 0.0);
        assert_eq!(
            effective_equipment_impairment(plc, 250.0, 1.0),
            effective_equipment_impairment(plc, 100.0, 1.0)
        );
        assert_eq!(
            effective_equipment_impairment(plc, 5.0, 0.2),
            effective_equipment_impairment(plc, 5.0, f64::NAN)
        );
    }

    #[test]
    fn a_lossy_g711_call_scores_lower_without_concealment() {
        let with_plc = r_factor(&call(0.0, 2.0, CodecImpairment::G711_PLC));
        let without = r_factor(&call(0.0, 2.0, CodecImpairment::G711_NO_PLC));
        close(with_plc, 93.2 - 7.0111, 1e-3);
        close(mos_from_r(with_plc), 4.235, 0.002);
        assert!(without < with_plc);
        close(without, 93.2 - 30.159, 1e-3);
    }

    #[test]
    fn more_loss_never_raises_the_score() {
        for codec in [
            CodecImpairment::G711_PLC,
            CodecImpairment::G711_NO_PLC,
            CodecImpairment::OPUS,
        ] {
            for burst in [1.0, 2.0, 4.0] {
                let mut previous = f64::INFINITY;
                for step in 0..=200 {
                    let loss = f64::from(step) * 0.5;
                    let r = r_factor(&Impairments {
                        burst_ratio: burst,
                        ..call(80.0, loss, codec)
                    });
                    assert!(r <= previous, "{codec:?} burst {burst} loss {loss}: {r}");
                    previous = r;
                }
                assert!(previous < 20.0, "all packets lost still scores {previous}");
            }
        }
    }

    #[test]
    fn more_delay_never_raises_the_score() {
        let mut previous = f64::INFINITY;
        let mut previous_mos = f64::INFINITY;
        for ms in (0..=1500).step_by(10) {
            let r = r_factor(&call(f64::from(ms), 1.0, CodecImpairment::OPUS));
            let mos = mos_from_r(r);
            assert!(r <= previous, "{ms} ms: {r}");
            assert!(mos <= previous_mos, "{ms} ms: {mos}");
            previous = r;
            previous_mos = mos;
        }
        // Half a second one way is a poor conversation.
        assert!(mos_from_r(r_factor(&call(500.0, 0.0, CodecImpairment::OPUS))) < 3.7);
    }

    #[test]
    fn bursty_loss_scores_lower_than_random_loss() {
        let random = r_factor(&call(0.0, 5.0, CodecImpairment::G711_PLC));
        let bursty = r_factor(&Impairments {
            burst_ratio: 3.0,
            ..call(0.0, 5.0, CodecImpairment::G711_PLC)
        });
        assert!(bursty < random, "{bursty} vs {random}");
    }

    #[test]
    fn the_rating_is_clamped_to_0_to_100() {
        let terrible = r_factor(&Impairments {
            burst_ratio: 10.0,
            ..call(3000.0, 100.0, CodecImpairment::G711_NO_PLC)
        });
        assert_eq!(terrible, 0.0);
        assert_eq!(mos_from_r(terrible), 1.0);
        let better_than_reference = r_factor(&call(
            0.0,
            0.0,
            CodecImpairment {
                ie: -20.0,
                bpl: 10.0,
            },
        ));
        assert!(better_than_reference <= 100.0);
        assert!(r_factor(&call(f64::NAN, f64::NAN, CodecImpairment::OPUS)).is_finite());
    }

    #[test]
    fn burst_ratio_from_observed_bursts() {
        assert_eq!(burst_ratio(0.0, 3.0), 1.0);
        assert_eq!(burst_ratio(0.1, 0.0), 1.0);
        assert_eq!(burst_ratio(f64::NAN, 2.0), 1.0);
        // Random loss at p = 0.2 has mean bursts of 1 / 0.8 = 1.25 packets: ratio 1.
        close(burst_ratio(0.2, 1.25), 1.0, 1e-12);
        // Bursts of 4 packets at 5 % loss: 4 · 0.95.
        close(burst_ratio(0.05, 4.0), 3.8, 1e-12);
    }
}
