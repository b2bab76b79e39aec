//! What baresip reports about its calls, parsed from its log.
//!
//! baresip 1.0 (Debian bookworm's `baresip-core` 1.0.0) prints one line per call event on
//! stdout; warnings are wrapped in ANSI colour codes (`ESC[31m … ESC[;m`, the reset landing at
//! the start of the next line), which [`strip_ansi`] removes before parsing. The lines, as
//! verified against that version:
//!
//! | line                                                                   | event          |
//! |------------------------------------------------------------------------|----------------|
//! | `call: connecting to 'sip:bob@127.0.0.1:5060'..`                       | `Connecting`   |
//! | `call: SIP Progress: 180 Ringing (/)`                                  | `Progress`     |
//! | `sip:bob@…: Incoming call from:  sip:alice@… - (press 'a' to accept)`  | `Incoming`     |
//! | `call: answering call on line 1 from sip:alice@… with 200`             | `Answering`    |
//! | `call: rejecting incoming call from sip:alice@… (486 Rejected)`        | `Rejecting`    |
//! | `alice@127.0.0.1: Call established: sip:bob@…`                         | `Established`  |
//! | `sip:bob@…: session closed: Connection reset by peer` (peer's BYE or CANCEL) | `Closed` |
//! | `sip:bob@…: session closed: 486 Rejected` (a final error response)     | `Closed`       |
//! | `call: terminate call '<id>' with sip:bob@…` (local hang-up)           | `HungUp`       |
//! | `sip:alice@…: Call with sip:bob@… terminated (duration: 3 secs)`       | `Terminated`   |
//! | `call: hold sip:bob@…` / `call: resume sip:bob@…`                      | `Hold`/`Resume`|
//! | `call: got re-INVITE (SDP Offer)`                                      | `Reinvited`    |
//! | `audio: send DTMF digit: '1'`                                          | `DtmfSent`     |
//! | `received event: '1' (end=0)` / `(end=1)` (RFC 4733 key down / up)     | `DtmfReceived` |
//! | `audio: Set audio encoder: PCMU 8000Hz 1ch` (and `decoder`)            | `Codec`        |
//! | `srtp: audio: SRTP is Enabled (cryptosuite=AES_CM_128_HMAC_SHA1_80)`   | `SrtpEnabled`  |
//! | `sndfile: dumping decode audio to /dir/dump-…-dec.wav` (and `encode`)  | `Recording`    |
//! | `stream: incoming rtp for 'audio' established, receiving from 127.0.0.1:4000` | `RtpReceived` |
//! | `alice@127.0.0.1: {0/UDP/v4} 200 OK (…) [1 binding]`                   | `Registered`   |
//!
//! Two facts a reader of these events needs: the held side of a hold logs nothing but
//! `Reinvited` (its hold state shows in the proxy's SDP direction, see
//! [`super::kamailio_calls`]), and a peer's BYE and CANCEL both read `Connection reset by peer`.

use std::path::PathBuf;
use std::time::Instant;

/// Which way audio flows through a codec or a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioDirection {
    /// Sent: the encoder, or the recording of what this side sends.
    Encode,
    /// Received: the decoder, or the recording of what this side hears.
    Decode,
}

/// One call event from baresip's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaresipEvent {
    /// An outgoing call starts towards `uri`.
    Connecting { uri: String },
    /// A provisional response arrived for an outgoing call (180 Ringing, 183 …).
    Progress { status: u16, reason: String },
    /// An incoming call waits to be answered (manual answer mode).
    Incoming { peer: String },
    /// An incoming call is being answered with 200.
    Answering { peer: String },
    /// An incoming call is being rejected.
    Rejecting { peer: String, status: u16 },
    /// The call is established.
    Established { peer: String },
    /// The call closed for `reason` (a peer's BYE or CANCEL, an error response, a timeout).
    Closed { peer: String, reason: String },
    /// This side hung up (BYE, CANCEL or rejection).
    HungUp { peer: String },
    /// An established call ended after `duration` (as baresip prints it, e.g. `3 secs`).
    Terminated { peer: String, duration: String },
    /// This side put the call on hold.
    Hold { peer: String },
    /// This side resumed the call.
    Resume { peer: String },
    /// The peer sent a re-INVITE with an SDP offer (hold, resume, media update).
    Reinvited,
    /// This side sent a DTMF digit (RFC 4733).
    DtmfSent { digit: char },
    /// A DTMF event arrived: key down (`end == false`) or key up.
    DtmfReceived { digit: char, end: bool },
    /// The audio encoder or decoder in use.
    Codec {
        direction: AudioDirection,
        name: String,
        sample_rate: u32,
        channels: u8,
    },
    /// SRTP protects the audio stream with `suite`.
    SrtpEnabled { suite: String },
    /// `sndfile` records this side's sent or heard audio into `path`.
    Recording {
        direction: AudioDirection,
        path: PathBuf,
    },
    /// The first RTP packet of the call arrived from `from`.
    RtpReceived { from: String },
    /// A registration succeeded.
    Registered,
}

/// A [`BaresipEvent`] and when the harness read its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedEvent {
    /// When the harness read the line.
    pub at: Instant,
    /// The event.
    pub event: BaresipEvent,
}

/// Removes ANSI escape sequences (`ESC [ … letter`).
pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(character) = chars.next() {
        if character == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for next in chars.by_ref() {
                    if next.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(character);
    }
    out
}

/// The character between the first pair of single quotes.
fn quoted_char(text: &str) -> Option<char> {
    let (_, rest) = text.split_once('\'')?;
    let mut chars = rest.chars();
    let digit = chars.next()?;
    (chars.next() == Some('\'')).then_some(digit)
}

/// Parses one log line into an event; lines that report no call event give `None`.
pub fn parse_event(line: &str) -> Option<BaresipEvent> {
    let line = strip_ansi(line);
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("call: connecting to '") {
        let uri = rest.split('\'').next()?;
        return Some(BaresipEvent::Connecting {
            uri: uri.to_owned(),
        });
    }
    if let Some(rest) = line.strip_prefix("call: SIP Progress: ") {
        let (status, reason) = rest.split_once(' ')?;
        let reason = reason
            .rsplit_once(" (")
            .map_or(reason, |(reason, _)| reason);
        return Some(BaresipEvent::Progress {
            status: status.parse().ok()?,
            reason: reason.to_owned(),
        });
    }
    if let Some((_, rest)) = line.split_once(": Incoming call from: ") {
        let peer = rest
            .split(" - (")
            .next()?
            .split_whitespace()
            .last()?
            .to_owned();
        return Some(BaresipEvent::Incoming { peer });
    }
    if let Some(rest) = line.strip_prefix("call: answering call on line ") {
        let (_, rest) = rest.split_once(" from ")?;
        let peer = rest.rsplit_once(" with ").map_or(rest, |(peer, _)| peer);
        return Some(BaresipEvent::Answering {
            peer: peer.to_owned(),
        });
    }
    if let Some(rest) = line.strip_prefix("call: rejecting incoming call from ") {
        let (peer, status) = rest.split_once(" (")?;
        return Some(BaresipEvent::Rejecting {
            peer: peer.to_owned(),
            status: status.get(..3)?.parse().ok()?,
        });
    }
    if let Some((_, peer)) = line.split_once(": Call established: ") {
        return Some(BaresipEvent::Established {
            peer: peer.to_owned(),
        });
    }
    if let Some((peer, reason)) = line.split_once(": session closed") {
        if !peer.contains(' ') {
            return Some(BaresipEvent::Closed {
                peer: peer.to_owned(),
                reason: reason.trim_start_matches(':').trim().to_owned(),
            });
        }
    }
    if let Some(rest) = line.strip_prefix("call: terminate call '") {
        let (_, peer) = rest.split_once("' with ")?;
        return Some(BaresipEvent::HungUp {
            peer: peer.to_owned(),
        });
    }
    if let Some((_, rest)) = line.split_once(": Call with ") {
        let (peer, duration) = rest.split_once(" terminated (duration: ")?;
        return Some(BaresipEvent::Terminated {
            peer: peer.to_owned(),
            duration: duration.trim_end_matches(')').to_owned(),
        });
    }
    if let Some(peer) = line.strip_prefix("call: hold ") {
        return Some(BaresipEvent::Hold {
            peer: peer.to_owned(),
        });
    }
    if let Some(peer) = line.strip_prefix("call: resume ") {
        return Some(BaresipEvent::Resume {
            peer: peer.to_owned(),
        });
    }
    if line.starts_with("call: got re-INVITE") {
        return Some(BaresipEvent::Reinvited);
    }
    if let Some(rest) = line.strip_prefix("audio: send DTMF digit: ") {
        return Some(BaresipEvent::DtmfSent {
            digit: quoted_char(rest)?,
        });
    }
    if let Some(rest) = line.strip_prefix("received event: ") {
        let end = rest.split("(end=").nth(1)?.starts_with('1');
        return Some(BaresipEvent::DtmfReceived {
            digit: quoted_char(rest)?,
            end,
        });
    }
    for (prefix, direction) in [
        ("audio: Set audio encoder: ", AudioDirection::Encode),
        ("audio: Set audio decoder: ", AudioDirection::Decode),
    ] {
        if let Some(rest) = line.strip_prefix(prefix) {
            let mut words = rest.split_whitespace();
            let name = words.next()?.to_owned();
            let sample_rate = words.next()?.strip_suffix("Hz")?.parse().ok()?;
            let channels = words.next()?.strip_suffix("ch")?.parse().ok()?;
            return Some(BaresipEvent::Codec {
                direction,
                name,
                sample_rate,
                channels,
            });
        }
    }
    if let Some(rest) = line.strip_prefix("srtp: ") {
        let (_, suite) = rest.split_once("SRTP is Enabled (cryptosuite=")?;
        return Some(BaresipEvent::SrtpEnabled {
            suite: suite.trim_end_matches(')').to_owned(),
        });
    }
    for (prefix, direction) in [
        ("sndfile: dumping encode audio to ", AudioDirection::Encode),
        ("sndfile: dumping decode audio to ", AudioDirection::Decode),
    ] {
        if let Some(path) = line.strip_prefix(prefix) {
            return Some(BaresipEvent::Recording {
                direction,
                path: PathBuf::from(path),
            });
        }
    }
    if let Some(rest) = line.strip_prefix("stream: incoming rtp for 'audio' established") {
        let from = rest.split("receiving from ").nth(1)?;
        return Some(BaresipEvent::RtpReceived {
            from: from.to_owned(),
        });
    }
    if super::baresip::is_registered_line(line) {
        return Some(BaresipEvent::Registered);
    }
    None
}
