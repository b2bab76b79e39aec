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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use rtc::interceptor::{AttributedPacket, RTPHeaderExtension};
    use rtc::rtcp::transport_feedbacks::transport_layer_cc::{
        PacketStatusChunk, RecvDelta, RunLengthChunk, StatusChunkTypeTcc, SymbolTypeTcc,
    };
    use rtc::rtcp::transport_feedbacks::transport_layer_nack::NackPair;
    use rtc::shared::marshal::Marshal;
    use rtc::shared::TransportContext;

    use super::*;

    const VIDEO: u32 = 0x1234;
    const AUDIO: u32 = 0x5678;
    const EXT_ID: u8 = 3;

    fn feed() -> (CongestionFeed, SharedController) {
        let controller = SharedController::new(CongestionConfig {
            max_bps: 1_000_000,
            start_bps: 500_000,
            ..CongestionConfig::default()
        });
        let mut feed = CongestionFeed::new(controller.clone(), RttTable::default());
        for (ssrc, mime) in [(VIDEO, "video/H264"), (AUDIO, "audio/opus")] {
            feed.bind_local_stream(&StreamInfo {
                ssrc,
                mime_type: mime.to_owned(),
                rtp_header_extensions: vec![RTPHeaderExtension {
                    uri: TRANSPORT_CC_URI.to_owned(),
                    id: u16::from(EXT_ID),
                }],
                ..Default::default()
            });
        }
        (feed, controller)
    }

    fn tagged(packet: Packet, now: Instant) -> TaggedPacket {
        TaggedPacket {
            now,
            transport: TransportContext::default(),
            message: AttributedPacket::new(packet),
        }
    }

    fn rtp(ssrc: u32, transport_sequence: u16) -> Packet {
        let mut packet = rtc::rtp::Packet::default();
        packet.header.version = 2;
        packet.header.ssrc = ssrc;
        let extension = TransportCcExtension { transport_sequence }
            .marshal()
            .unwrap();
        packet
            .header
            .set_extension(EXT_ID, Bytes::from(extension))
            .unwrap();
        packet.payload = Bytes::from(vec![0u8; 1_000]);
        Packet::Rtp(packet)
    }

    /// Every packet of `count` from `base` received, 5 ms apart.
    fn twcc(base: u16, count: u16) -> Box<dyn rtc::rtcp::Packet> {
        Box::new(TransportLayerCc {
            media_ssrc: VIDEO,
            base_sequence_number: base,
            packet_status_count: count,
            reference_time: 1,
            packet_chunks: vec![PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                type_tcc: StatusChunkTypeTcc::RunLengthChunk,
                packet_status_symbol: SymbolTypeTcc::PacketReceivedSmallDelta,
                run_length: count,
            })],
            recv_deltas: (0..count)
                .map(|_| RecvDelta {
                    type_tcc_packet: SymbolTypeTcc::PacketReceivedSmallDelta,
                    delta: 5_000,
                })
                .collect(),
            ..Default::default()
        })
    }

    #[test]
    fn video_departures_and_feedback_reach_the_controller_audio_is_left_out() {
        let (mut feed, controller) = feed();
        let start = Instant::now();
        for i in 0..100u16 {
            let now = start + Duration::from_millis(5 * u64::from(i));
            // Every fourth transport-wide number is an audio packet.
            let ssrc = if i % 4 == 3 { AUDIO } else { VIDEO };
            feed.handle_write(tagged(rtp(ssrc, i), now)).unwrap();
            assert!(feed.poll_write().is_some(), "packets pass through");
        }
        let now = start + Duration::from_millis(520);
        feed.handle_read(tagged(Packet::Rtcp(vec![twcc(0, 100)]), now))
            .unwrap();
        assert!(feed.poll_read().is_some());
        let stats = controller.lock().stats();
        assert_eq!(stats.feedback_reports, 1);
        assert_eq!(stats.acked, 75, "the video packets");
        assert_eq!(stats.unknown, 25, "the audio packets");
        assert!(controller.lock().acknowledged_bitrate().is_some());
    }

    #[test]
    fn remb_caps_the_target_and_nacks_about_our_video_are_counted() {
        let (mut feed, controller) = feed();
        let now = Instant::now();
        let remb = ReceiverEstimatedMaximumBitrate {
            sender_ssrc: 9,
            bitrate: 200_000.0,
            ssrcs: vec![VIDEO],
        };
        let nack = |media_ssrc| TransportLayerNack {
            sender_ssrc: 9,
            media_ssrc,
            nacks: vec![NackPair::new(7)],
        };
        let packets: Vec<Box<dyn rtc::rtcp::Packet>> =
            vec![Box::new(remb), Box::new(nack(VIDEO)), Box::new(nack(AUDIO))];
        feed.handle_read(tagged(Packet::Rtcp(packets), now))
            .unwrap();
        assert_eq!(controller.lock().target_bitrate(), 200_000);
        assert_eq!(controller.nacks_received(), 1);
        // A REMB about another stream only is not ours.
        let other = ReceiverEstimatedMaximumBitrate {
            sender_ssrc: 9,
            bitrate: 60_000.0,
            ssrcs: vec![AUDIO],
        };
        feed.handle_read(tagged(Packet::Rtcp(vec![Box::new(other)]), now))
            .unwrap();
        assert_eq!(controller.lock().target_bitrate(), 200_000);
    }

    #[test]
    fn receiver_reports_about_our_video_report_loss() {
        let (mut feed, controller) = feed();
        let start = Instant::now();
        let rr = |fraction_lost| ReceiverReport {
            ssrc: 9,
            reports: vec![rtc::rtcp::reception_report::ReceptionReport {
                ssrc: VIDEO,
                fraction_lost,
                ..Default::default()
            }],
            ..Default::default()
        };
        // 40 % loss without transport feedback: the loss-based bound comes down.
        feed.handle_read(tagged(Packet::Rtcp(vec![Box::new(rr(102))]), start))
            .unwrap();
        assert!(controller.lock().target_bitrate() < 500_000);
        assert_eq!(controller.lock().stats().loss_decreases, 1);
    }
}
