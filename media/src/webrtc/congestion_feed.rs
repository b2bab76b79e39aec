//! Feeds a session's [`BitrateController`] from inside the interceptor chain.
//!
//! `rtc` 0.21 stamps our outgoing RTP with transport-wide sequence numbers (the TWCC sender
//! interceptor, slot 2 000) and hands inbound RTCP up the chain, but has no estimator wired to
//! it. [`CongestionFeed`] sits just wire-ward of the TWCC sender (so on the way out it sees the
//! number already written, at the instant the packet leaves the chain) and feeds the
//! controller shared with the video thread:
//!
//! - **out**: every RTP packet of our *video* stream with its transport-wide sequence number and
//!   size → [`BitrateController::on_packet_sent`]. Audio packets are left out on purpose: the
//!   feedback about them is then ignored, so the acknowledged rate the estimate follows is
//!   video's, and the target is what video may use beside the audio.
//!   Retransmissions of the NACK responder (slot 4 000) pass here too and are counted.
//! - **in**: transport-wide feedback ([`feedback_from_twcc`]) → `on_transport_feedback`; a REMB
//!   naming our video SSRC (or none) → `on_remb`; each report block about our video SSRC in an
//!   SR or RR → `on_receiver_report` with the RTT the [`RttMeter`](super::rtt) measured last
//!   (the meter sits further up the chain, so that is the previous report's RTT). NACKs about
//!   our video are counted (the peer connection's statistics do not count them).
//!
//! Times are the chain's own (`TransportMessage::now`); the controller reads no clock.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp::extension::transport_cc_extension::TransportCcExtension;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use rtc::shared::marshal::{MarshalSize, Unmarshal};

use super::rtt::RttTable;
use crate::congestion::{feedback_from_twcc, BitrateController, CongestionConfig};

/// Where it sits: between the congestion-control slot (1 000) and the TWCC sender (2 000).
pub(crate) const SLOT: usize = 1_500;

/// The transport-wide sequence number header extension.
const TRANSPORT_CC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// A session's bitrate controller, shared by the interceptor (inputs) and the video thread
/// (target and layer advice), with the count of NACK packets the peer sent about our video.
#[derive(Debug, Clone)]
pub(crate) struct SharedController {
    controller: Arc<Mutex<BitrateController>>,
    nacks_received: Arc<AtomicU64>,
}

impl SharedController {
    pub(crate) fn new(config: CongestionConfig) -> Self {
        SharedController {
            controller: Arc::new(Mutex::new(BitrateController::new(config))),
            nacks_received: Arc::default(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, BitrateController> {
        self.controller
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// NACK packets the peer sent about our video (the NACK responder answers them).
    pub(crate) fn nacks_received(&self) -> u64 {
        self.nacks_received.load(Ordering::Relaxed)
    }
}

/// The interceptor: see the module docs.
pub(crate) struct CongestionFeed {
    controller: SharedController,
    rtt: RttTable,
    /// Our video streams: SSRC → the header extension id of the transport-wide number.
    video: HashMap<u32, u8>,
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl CongestionFeed {
    pub(crate) fn new(controller: SharedController, rtt: RttTable) -> Self {
        CongestionFeed {
            controller,
            rtt,
            video: HashMap::new(),
            reads: VecDeque::new(),
            writes: VecDeque::new(),
        }
    }

    fn note_rtcp(&self, packet: &dyn rtc::rtcp::Packet, now: std::time::Instant) {
        let any = packet.as_any();
        if let Some(twcc) = any.downcast_ref::<TransportLayerCc>() {
            let feedback = feedback_from_twcc(twcc);
            self.controller.lock().on_transport_feedback(&feedback, now);
        } else if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
            if self.video.contains_key(&nack.media_ssrc) {
                self.controller
                    .nacks_received
                    .fetch_add(1, Ordering::Relaxed);
            }
        } else if let Some(remb) = any.downcast_ref::<ReceiverEstimatedMaximumBitrate>() {
            let ours =
                remb.ssrcs.is_empty() || remb.ssrcs.iter().any(|s| self.video.contains_key(s));
            if ours && remb.bitrate.is_finite() && remb.bitrate >= 0.0 {
                self.controller.lock().on_remb(remb.bitrate as u64, now);
            }
        } else {
            let reports = if let Some(sr) = any.downcast_ref::<SenderReport>() {
                &sr.reports
            } else if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                &rr.reports
            } else {
                return;
            };
            for report in reports.iter().filter(|r| self.video.contains_key(&r.ssrc)) {
                let rtt = self.rtt.get(report.ssrc);
                self.controller
                    .lock()
                    .on_receiver_report(report.fraction_lost, rtt, now);
            }
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for CongestionFeed {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = std::time::Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            for packet in packets {
                self.note_rtcp(packet.as_ref(), msg.now);
            }
        }
        self.reads.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtp(packet) = &msg.message.packet {
            if let Some(&id) = self.video.get(&packet.header.ssrc) {
                let sequence = packet.header.get_extension(id).and_then(|mut bytes| {
                    TransportCcExtension::unmarshal(&mut bytes)
                        .ok()
                        .map(|e| e.transport_sequence)
                });
                if let Some(sequence) = sequence {
                    self.controller
                        .lock()
                        .on_packet_sent(sequence, packet.marshal_size(), msg.now);
                }
            }
        }
        self.writes.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.writes.pop_front()
    }
}

impl Interceptor for CongestionFeed {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        if !info.mime_type.to_ascii_lowercase().starts_with("video/") {
            return;
        }
        if let Some(extension) = info
            .rtp_header_extensions
            .iter()
            .find(|e| e.uri == TRANSPORT_CC_URI)
        {
            self.video.insert(info.ssrc, extension.id as u8);
        }
    }
    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.video.remove(&info.ssrc);
    }
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
