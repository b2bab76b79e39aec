//! SIP INFO DTMF bodies of type `application/dtmf-relay` (the Cisco format most PBXs accept):
//!
//! ```text
//! Signal=5
//! Duration=160
//! ```
//!
//! `Signal` is one key; `Duration` is in milliseconds. Parsing accepts LF or CRLF, any case of
//! the keys, spaces around `=`, unknown lines (ignored), letters A–D in either case and the
//! numeric forms `10`/`11` that some gateways send for `*`/`#`. A body without `Duration` gets
//! [`DEFAULT_RELAY_DURATION`]. Formatting writes exactly `Signal=<key>\r\nDuration=<ms>\r\n`.

use std::time::Duration;

use super::dtmf::{DtmfDigit, DtmfError};

/// The Content-Type of these bodies.
pub const DTMF_RELAY_CONTENT_TYPE: &str = "application/dtmf-relay";

/// The duration assumed when a body has no `Duration` line.
pub const DEFAULT_RELAY_DURATION: Duration = Duration::from_millis(250);

/// One key press carried in a SIP INFO body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfRelay {
    /// The key.
    pub digit: DtmfDigit,
    /// How long it was held.
    pub duration: Duration,
}

impl DtmfRelay {
    /// Parses an `application/dtmf-relay` body.
    pub fn parse(body: &str) -> Result<Self, DtmfError> {
        let mut digit = None;
        let mut duration = DEFAULT_RELAY_DURATION;
        for line in body.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim();
            match key.trim().to_ascii_lowercase().as_str() {
                "signal" => digit = Some(parse_signal(value)?),
                "duration" => {
                    let ms: u32 = value
                        .parse()
                        .map_err(|_| DtmfError::BadDuration(value.to_owned()))?;
                    duration = Duration::from_millis(u64::from(ms));
                }
                _ => {}
            }
        }
        Ok(DtmfRelay {
            digit: digit.ok_or(DtmfError::MissingSignal)?,
            duration,
        })
    }

    /// The body for this key press.
    pub fn to_body(&self) -> String {
        format!(
            "Signal={}\r\nDuration={}\r\n",
            self.digit.to_char(),
            self.duration.as_millis()
        )
    }
}

fn parse_signal(value: &str) -> Result<DtmfDigit, DtmfError> {
    let not_a_digit = || DtmfError::NotADigit(value.to_owned());
    match value {
        "10" => Ok(DtmfDigit::Star),
        "11" => Ok(DtmfDigit::Pound),
        _ => {
            let mut chars = value.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => DtmfDigit::from_char(c).ok_or_else(not_a_digit),
                _ => Err(not_a_digit()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_common_form() {
        let r = DtmfRelay::parse("Signal=5\r\nDuration=160\r\n").unwrap();
        assert_eq!(r.digit, DtmfDigit::D5);
        assert_eq!(r.duration, Duration::from_millis(160));
        assert_eq!(r.to_body(), "Signal=5\r\nDuration=160\r\n");
    }

    #[test]
    fn tolerates_variants() {
        let r = DtmfRelay::parse("signal = #\nDURATION= 250 \nX-Extra=1\n").unwrap();
        assert_eq!(
            (r.digit, r.duration),
            (DtmfDigit::Pound, Duration::from_millis(250))
        );
        assert_eq!(
            DtmfRelay::parse("Signal=10").unwrap().digit,
            DtmfDigit::Star
        );
        assert_eq!(
            DtmfRelay::parse("Signal=11").unwrap().digit,
            DtmfDigit::Pound
        );
        assert_eq!(DtmfRelay::parse("Signal=c").unwrap().digit, DtmfDigit::C);
        assert_eq!(
            DtmfRelay::parse("Signal=*").unwrap().duration,
            DEFAULT_RELAY_DURATION
        );
    }

    #[test]
    fn refuses_bad_bodies() {
        assert_eq!(DtmfRelay::parse(""), Err(DtmfError::MissingSignal));
        assert_eq!(
            DtmfRelay::parse("Duration=100"),
            Err(DtmfError::MissingSignal)
        );
        assert!(matches!(
            DtmfRelay::parse("Signal=55"),
            Err(DtmfError::NotADigit(_))
        ));
        assert!(matches!(
            DtmfRelay::parse("Signal=E"),
            Err(DtmfError::NotADigit(_))
        ));
        assert!(matches!(
            DtmfRelay::parse("Signal="),
            Err(DtmfError::NotADigit(_))
        ));
        assert!(matches!(
            DtmfRelay::parse("Signal=1\r\nDuration=-5"),
            Err(DtmfError::BadDuration(_))
        ));
        assert!(matches!(
            DtmfRelay::parse("Signal=1\r\nDuration=99999999999"),
            Err(DtmfError::BadDuration(_))
        ));
    }
}
