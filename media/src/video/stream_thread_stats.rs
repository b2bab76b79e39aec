//! [`VideoStats`]: what the video thread counts of one stream, both ways.

use std::time::Instant;

/// A snapshot of one video stream's statistics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VideoStats {
    /// The codec's encoding name ("H264").
    pub codec: String,
    /// Size of the frames we send.
    pub send_resolution: (u32, u32),
    /// Size of the latest frame we decoded.
    pub receive_resolution: Option<(u32, u32)>,
    /// Frames encoded and sent.
    pub frames_sent: u64,
    /// Keyframes (IDR) among them.
    pub keyframes_sent: u64,
    /// Frames decoded and handed to the sink.
    pub frames_decoded: u64,
    /// Decoded frames per second, between the first and the latest decoded frame.
    pub decode_fps: f64,
    /// Bitrate sent, bits per second, since the first frame.
    pub send_bitrate_bps: f64,
    /// Bitrate received, bits per second, since the first packet.
    pub receive_bitrate_bps: f64,
    /// RTP packets sent / received.
    pub tx_packets: u64,
    /// RTP packets received.
    pub rx_packets: u64,
    /// Packets missing from the sequence the depacketizer saw (after retransmissions).
    pub lost: u64,
    /// Access units dropped as damaged.
    pub dropped_frames: u64,
    /// Pictures the decoder refused.
    pub decode_errors: u64,
    /// RTP payloads of the peer's video the depacketizer refused: truncated, malformed, with
    /// the forbidden bit, of a type packetization modes 0 and 1 do not use, or growing a
    /// picture past the size limit. Payloads of a picture already being dropped are not
    /// examined, so this is a lower bound.
    pub payloads_refused: u64,
    /// PLIs we sent.
    pub keyframe_requests_sent: u64,
    /// PLIs and FIRs the peer sent us.
    pub keyframe_requests_received: u64,
    /// NACK packets we sent about the peer's video.
    pub nacks_sent: u64,
    /// Packets of the peer's video that arrived after we asked for them (retransmissions).
    pub retransmissions_received: u64,
    /// Packets that filled a hole while the reorder buffer held the packets behind it.
    pub holes_filled: u64,
    /// Packets the reorder buffer gave up waiting for (the depacketizer saw them lost).
    pub packets_given_up: u64,
    /// Packets that arrived after their hole had been given up on.
    pub packets_too_late: u64,
    /// The bitrate controller's current target for our video, bits per second (on the classic
    /// path, which has no controller, the configured bitrate the encoder keeps).
    pub target_bitrate_bps: u64,
    /// The rate the peer received our video at, from transport-wide feedback.
    pub acknowledged_bitrate_bps: Option<u64>,
    /// Transport-wide feedback reports the controller took.
    pub transport_feedback_reports: u64,
    /// Times the layer advice changed our frame size or rate.
    pub layer_changes: u64,
    /// The frame rate we send at now (halved at the lowest rung).
    pub send_fps: u32,
    /// NACK packets the peer sent about ours.
    pub nacks_received: u64,
    /// When the first frame was decoded.
    pub first_frame_decoded_at: Option<Instant>,
}
