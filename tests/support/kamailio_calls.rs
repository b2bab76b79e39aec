//! The calls Kamailio proxied, read from its `CALLISTO-CALL` and `CALLISTO-REPLY` marker lines
//! (see [`super::kamailio_cfg`]).
//!
//! Each line carries Kamailio's own receive time (`gettimeofday`, microseconds), so the time
//! between two messages of a call is measured where both pass, without the delay of the pipe
//! that brings the log to the harness. [`CallTimeline`] turns the lines of one call into the
//! moments benches and tests care about.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::kamailio::{field, marker_fields, Kamailio};
use super::kamailio_cfg::{CALL_MARKER, REPLY_MARKER};

/// What an SDP body said, as far as the proxy logs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpSummary {
    /// The first direction attribute (`sendrecv` when there is none): `sendrecv`, `sendonly`,
    /// `recvonly` or `inactive`.
    pub direction: String,
    /// Whether it carries SDES keys (`a=crypto:`, RFC 4568).
    pub crypto: bool,
    /// The audio media line without its `m=`, e.g. `audio 4000 RTP/SAVP 0 101`.
    pub audio: Option<String>,
}

impl SdpSummary {
    /// The transport protocol of the audio stream, e.g. `RTP/AVP` or `RTP/SAVP`.
    pub fn audio_protocol(&self) -> Option<&str> {
        self.audio.as_deref()?.split_whitespace().nth(2)
    }

    /// The payload types offered or accepted for audio, in order.
    pub fn audio_payload_types(&self) -> Vec<u8> {
        self.audio
            .as_deref()
            .map(|line| {
                line.split_whitespace()
                    .skip(3)
                    .filter_map(|pt| pt.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A request other than REGISTER, as Kamailio received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLine {
    /// When Kamailio received it.
    pub at: SystemTime,
    /// The method (`INVITE`, `ACK`, `BYE`, `CANCEL`, …).
    pub method: String,
    /// The Request-URI.
    pub request_uri: String,
    /// The From URI.
    pub from: String,
    /// The To URI.
    pub to: String,
    /// The To tag: present on in-dialog requests.
    pub to_tag: Option<String>,
    /// The Call-ID.
    pub call_id: String,
    /// The CSeq number.
    pub cseq: u32,
    /// The sender's address, `ip:port`.
    pub source: String,
    /// The transport (`udp`, `tcp`, `tls`, `ws`).
    pub proto: String,
    /// Whether it carried a Proxy-Authorization header.
    pub authorized: bool,
    /// Its SDP body, if it had one.
    pub sdp: Option<SdpSummary>,
}

/// A reply Kamailio relayed back towards the caller or sent itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyLine {
    /// When Kamailio received it (relayed) or sent it (local).
    pub at: SystemTime,
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// The method of the CSeq (the request it answers).
    pub method: String,
    /// The Call-ID.
    pub call_id: String,
    /// The CSeq number.
    pub cseq: u32,
    /// The address it came from (relayed) or the requester's (local).
    pub source: String,
    /// Whether the proxy generated it (404, 407, …) rather than relaying it.
    pub local: bool,
    /// Its SDP body, if it had one.
    pub sdp: Option<SdpSummary>,
}

/// One line of the call log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallLogLine {
    /// A request arrived.
    Request(RequestLine),
    /// A reply was relayed or sent.
    Reply(ReplyLine),
}

impl CallLogLine {
    /// The Call-ID of the message.
    pub fn call_id(&self) -> &str {
        match self {
            CallLogLine::Request(request) => &request.call_id,
            CallLogLine::Reply(reply) => &reply.call_id,
        }
    }

    /// When Kamailio saw the message.
    pub fn at(&self) -> SystemTime {
        match self {
            CallLogLine::Request(request) => request.at,
            CallLogLine::Reply(reply) => reply.at,
        }
    }

    /// The request, if this is one with `method`.
    pub fn request(&self, method: &str) -> Option<&RequestLine> {
        match self {
            CallLogLine::Request(request) if request.method.eq_ignore_ascii_case(method) => {
                Some(request)
            }
            _ => None,
        }
    }

    /// The reply, if this is one with `status` to a `method` request.
    pub fn reply(&self, status: u16, method: &str) -> Option<&ReplyLine> {
        match self {
            CallLogLine::Reply(reply)
                if reply.status == status && reply.method.eq_ignore_ascii_case(method) =>
            {
                Some(reply)
            }
            _ => None,
        }
    }
}

/// Parses `seconds.fraction` since the Unix epoch (Kamailio's `$TV(Sn)`, strace's `-ttt`).
pub fn parse_unix_time(text: &str) -> Option<SystemTime> {
    let (seconds, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let seconds: u64 = seconds.parse().ok()?;
    let digits = fraction.get(..fraction.len().min(9))?;
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let nanos: u32 = format!("{digits:0<9}").parse().ok()?;
    UNIX_EPOCH.checked_add(Duration::new(seconds, nanos))
}

fn sdp(fields: &[(&str, &str)]) -> Option<SdpSummary> {
    let direction = field(fields, "sdp_dir").filter(|dir| *dir != "-")?;
    let audio = field(fields, "m")
        .and_then(|line| line.strip_prefix("m="))
        .map(str::to_owned);
    Some(SdpSummary {
        direction: direction.to_owned(),
        crypto: field(fields, "crypto") == Some("yes"),
        audio,
    })
}

/// Parses a `CALLISTO-CALL` line; other lines give `None`.
pub fn parse_request_line(line: &str) -> Option<RequestLine> {
    let fields = marker_fields(line, CALL_MARKER, "m")?;
    Some(RequestLine {
        at: parse_unix_time(field(&fields, "ts")?)?,
        method: field(&fields, "method")?.to_owned(),
        request_uri: field(&fields, "ruri")?.to_owned(),
        from: field(&fields, "from")?.to_owned(),
        to: field(&fields, "to")?.to_owned(),
        to_tag: field(&fields, "totag")
            .filter(|tag| !tag.is_empty() && *tag != "<null>")
            .map(str::to_owned),
        call_id: field(&fields, "callid")?.to_owned(),
        cseq: field(&fields, "cseq")?.parse().ok()?,
        source: field(&fields, "src")?.to_owned(),
        proto: field(&fields, "proto")?.to_owned(),
        authorized: field(&fields, "auth")? == "yes",
        sdp: sdp(&fields),
    })
}

/// Parses a `CALLISTO-REPLY` line; other lines give `None`.
pub fn parse_reply_line(line: &str) -> Option<ReplyLine> {
    let fields = marker_fields(line, REPLY_MARKER, "m")?;
    Some(ReplyLine {
        at: parse_unix_time(field(&fields, "ts")?)?,
        status: field(&fields, "status")?.parse().ok()?,
        reason: field(&fields, "reason")?.to_owned(),
        method: field(&fields, "method")?.to_owned(),
        call_id: field(&fields, "callid")?.to_owned(),
        cseq: field(&fields, "cseq")?.parse().ok()?,
        source: field(&fields, "src")?.to_owned(),
        local: field(&fields, "origin")? == "local",
        sdp: sdp(&fields),
    })
}

/// Parses either marker line; other lines give `None`.
pub fn parse_call_log_line(line: &str) -> Option<CallLogLine> {
    parse_request_line(line)
        .map(CallLogLine::Request)
        .or_else(|| parse_reply_line(line).map(CallLogLine::Reply))
}

impl Kamailio {
    /// The call log of the current run: every request other than REGISTER and every reply, in
    /// the order Kamailio logged them.
    pub fn call_log(&self) -> Vec<CallLogLine> {
        self.log_lines()
            .iter()
            .filter_map(|line| parse_call_log_line(line))
            .collect()
    }

    /// Waits until a call-log line of the current run satisfies `predicate` and returns the
    /// first that does, or `None` after `timeout`.
    pub fn wait_for_call_log(
        &self,
        mut predicate: impl FnMut(&CallLogLine) -> bool,
        timeout: std::time::Duration,
    ) -> Option<CallLogLine> {
        let mut found = None;
        self.wait_for(
            |lines| {
                found = lines
                    .iter()
                    .filter_map(|line| parse_call_log_line(line))
                    .find(|line| predicate(line));
                found.is_some()
            },
            timeout,
        );
        found
    }
}

/// The moments of one call as the proxy saw them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallTimeline {
    /// The Call-ID.
    pub call_id: String,
    /// The first INVITE of the call (before any authentication challenge).
    pub invite: SystemTime,
    /// The first 180 to the INVITE.
    pub ringing: Option<SystemTime>,
    /// The first 2xx to the INVITE.
    pub answered: Option<SystemTime>,
    /// The first ACK after the answer.
    pub acked: Option<SystemTime>,
    /// The first BYE, and the address it came from.
    pub bye: Option<(SystemTime, String)>,
    /// The first CANCEL.
    pub cancel: Option<SystemTime>,
    /// The final status of the INVITE (the last final reply relayed or sent for it).
    pub final_status: Option<u16>,
}

impl CallTimeline {
    /// The timeline of the first call (initial INVITE without a To tag) in `log`.
    pub fn first_call(log: &[CallLogLine]) -> Option<CallTimeline> {
        let call_id = log.iter().find_map(|line| {
            line.request("INVITE")
                .filter(|invite| invite.to_tag.is_none())
                .map(|invite| invite.call_id.clone())
        })?;
        CallTimeline::of_call(log, &call_id)
    }

    /// The timeline of the call with `call_id` in `log`, if it has an INVITE.
    pub fn of_call(log: &[CallLogLine], call_id: &str) -> Option<CallTimeline> {
        let lines: Vec<&CallLogLine> = log.iter().filter(|l| l.call_id() == call_id).collect();
        let invite = lines.iter().find_map(|l| l.request("INVITE"))?.at;
        let first_reply = |range: std::ops::RangeInclusive<u16>| {
            lines.iter().find_map(|line| match line {
                CallLogLine::Reply(reply)
                    if range.contains(&reply.status) && reply.method == "INVITE" =>
                {
                    Some(reply.at)
                }
                _ => None,
            })
        };
        let answered = first_reply(200..=299);
        let acked = answered.and_then(|answered| {
            lines
                .iter()
                .filter_map(|l| l.request("ACK"))
                .find(|ack| ack.at >= answered)
                .map(|ack| ack.at)
        });
        let final_status = lines
            .iter()
            .filter_map(|line| match line {
                CallLogLine::Reply(reply) if reply.status >= 200 && reply.method == "INVITE" => {
                    Some(reply.status)
                }
                _ => None,
            })
            .next_back();
        Some(CallTimeline {
            call_id: call_id.to_owned(),
            invite,
            ringing: first_reply(180..=180),
            answered,
            acked,
            bye: lines
                .iter()
                .find_map(|l| l.request("BYE"))
                .map(|bye| (bye.at, bye.source.clone())),
            cancel: lines.iter().find_map(|l| l.request("CANCEL")).map(|c| c.at),
            final_status,
        })
    }

    /// INVITE → 2xx, as the proxy saw it.
    pub fn setup_time(&self) -> Option<Duration> {
        self.answered?.duration_since(self.invite).ok()
    }
}
