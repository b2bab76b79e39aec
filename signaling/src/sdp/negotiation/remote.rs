//! Reading the peer's side of an audio m-line: addresses, direction, packet time, codec.

use std::net::SocketAddr;

use super::policy::AudioCodec;
use super::NegotiationError;
use crate::sdp::attributes::Direction;
use crate::sdp::model::{MediaDescription, Protocol, SessionDescription};

/// Where and how the peer receives, as its description says.
pub(super) struct RemoteEnd {
    /// Its RTP address.
    pub rtp: SocketAddr,
    /// Its RTCP address if RTCP is not multiplexed.
    pub rtcp: Option<SocketAddr>,
    /// Whether it wrote `a=rtcp-mux`.
    pub rtcp_mux: bool,
    /// Its direction, with an RFC 2543 hold address taken as "does not receive".
    pub direction: Direction,
    /// Its `a=ptime`.
    pub ptime: Option<u32>,
    /// Its `a=maxptime`.
    pub maxptime: Option<u32>,
}

impl RemoteEnd {
    /// Reads the peer's end of `media` within `sdp`.
    pub fn read(
        sdp: &SessionDescription,
        media: &MediaDescription,
    ) -> Result<Self, NegotiationError> {
        let connection = sdp
            .connection_for(media)
            .ok_or(NegotiationError::NoConnectionAddress)?;
        let ip = connection
            .ip()
            .ok_or(NegotiationError::NoConnectionAddress)?;
        let rtp = SocketAddr::new(ip, media.port);
        let rtcp = match media.rtcp() {
            Some(attr) => Some(SocketAddr::new(attr.ip().unwrap_or(ip), attr.port)),
            None => media
                .port
                .checked_add(1)
                .map(|port| SocketAddr::new(ip, port)),
        };
        let mut direction = sdp.direction_of(media);
        if connection.is_hold_address() {
            direction = Direction::from_flags(direction.sends(), false);
        }
        Ok(RemoteEnd {
            rtp,
            rtcp,
            rtcp_mux: media.rtcp_mux(),
            direction,
            ptime: media.ptime(),
            maxptime: media.maxptime(),
        })
    }

    /// The packet time we send with: the peer's `a=ptime` when sensible, else `ours`, capped
    /// by the peer's `a=maxptime`.
    pub fn sending_ptime(&self, ours: u32) -> u32 {
        let ptime = self
            .ptime
            .filter(|p| (10..=120).contains(p))
            .unwrap_or(ours);
        match self.maxptime.filter(|m| *m >= 10) {
            Some(max) => ptime.min(max),
            None => ptime,
        }
    }
}

/// Whether the classic path runs this profile: RTP over UDP, plain or SDES-keyed.
pub(super) fn classic_profile(protocol: &Protocol) -> Result<(), NegotiationError> {
    match protocol {
        Protocol::RtpAvp | Protocol::RtpSavp | Protocol::RtpAvpf | Protocol::RtpSavpf => Ok(()),
        other => Err(NegotiationError::UnsupportedProfile(
            other.as_str().to_owned(),
        )),
    }
}

/// The first payload type of `media`, in its order, that names one of `codecs`.
pub(super) fn first_common_codec<'a>(
    media: &MediaDescription,
    codecs: &'a [AudioCodec],
) -> Option<(u8, &'a AudioCodec)> {
    media.payload_types().find_map(|pt| {
        let map = media.codec(pt)?;
        codecs.iter().find(|c| c.matches(&map)).map(|c| (pt, c))
    })
}

/// The payload type of `telephone-event` at `clock_rate` in `media`.
pub(super) fn telephone_event(media: &MediaDescription, clock_rate: u32) -> Option<u8> {
    media.payload_types().find(|pt| {
        media.rtpmap(*pt).is_some_and(|map| {
            map.encoding.eq_ignore_ascii_case("telephone-event") && map.clock_rate == clock_rate
        })
    })
}
