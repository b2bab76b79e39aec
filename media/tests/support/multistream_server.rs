//! The conference server of the multistream tests: a bare `webrtc` peer on loopback that
//! sends each participant's stamped test pattern as an `m=video` of its own, labelled by
//! `a=msid`, and offers again as participants come and go.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use callisto_media::codec::AudioCodecKind;
use callisto_media::rtp::{RtpHeader, RtpPacket};
use callisto_media::video::h264::{
    H264Encoder, H264EncoderConfig, H264Packetizer, PacketizationMode,
};
use callisto_media::video::{TestPattern, VideoFormat, VideoSource};
use callisto_media::webrtc::peer::{
    audio_codec, build_configuration, build_setting_engine, h264_codec, keyframe_requests_only,
    media_track, H264_PAYLOAD_TYPE,
};
use callisto_media::webrtc::{WebRtcConfig, WebRtcSession};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodecParameters, RtpCodecKind};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::watch;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceGatheringState, RTCSessionDescription,
};
use webrtc::rtp_transceiver::{RtpSender, RtpTransceiver};

/// The server's event handler: gathering done, and Callisto's video packets counted.
pub struct Server {
    pub gathered: watch::Sender<bool>,
    pub video_packets: Arc<AtomicU64>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Server {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        self.gathered
            .send_replace(state == RTCIceGatheringState::Complete);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let video = track.kind().await == RtpCodecKind::Video;
        let packets = Arc::clone(&self.video_packets);
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                if video && matches!(event, TrackRemoteEvent::OnRtpPacket(_)) {
                    packets.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
}

/// A server on loopback speaking Opus and H.264 as Callisto does, sending audio of its own:
/// the peer, and whether its candidates are gathered. Callisto's video packets are counted in
/// `video_packets`.
pub async fn server(
    config: &WebRtcConfig,
    video_packets: Arc<AtomicU64>,
) -> (impl PeerConnection, watch::Receiver<bool>) {
    let mut engine = MediaEngine::default();
    engine
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: audio_codec(AudioCodecKind::Opus),
                payload_type: 111,
            },
            RtpCodecKind::Audio,
        )
        .unwrap();
    engine
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: h264_codec(),
                payload_type: H264_PAYLOAD_TYPE,
            },
            RtpCodecKind::Video,
        )
        .unwrap();
    let (gathered_tx, gathered) = watch::channel(false);
    let server = PeerConnectionBuilder::new()
        .with_configuration(build_configuration(config))
        .with_media_engine(engine)
        .with_interceptor_registry(keyframe_requests_only())
        .with_setting_engine(build_setting_engine(config))
        .with_handler(Arc::new(Server {
            gathered: gathered_tx,
            video_packets,
        }))
        .with_udp_addrs(config.udp_addrs.clone())
        .build()
        .await
        .unwrap();
    server
        .add_track(server_track("server", RtpCodecKind::Audio, 0x5e_0000))
        .await
        .unwrap();
    (server, gathered)
}

/// The server's first offer, its candidates gathered.
pub async fn server_offer(
    server: &impl PeerConnection,
    gathered: &mut watch::Receiver<bool>,
) -> String {
    let offer = server.create_offer(None).await.unwrap();
    server.set_local_description(offer).await.unwrap();
    gathered.wait_for(|done| *done).await.unwrap();
    server.local_description().await.unwrap().sdp
}

pub fn server_track(name: &str, kind: RtpCodecKind, ssrc: u32) -> Arc<TrackLocalStaticRTP> {
    labelled_track(name, &format!("{name}-{kind}"), kind, ssrc)
}

/// A track of the server in stream `stream_id`, named `track_id`.
pub fn labelled_track(
    stream_id: &str,
    track_id: &str,
    kind: RtpCodecKind,
    ssrc: u32,
) -> Arc<TrackLocalStaticRTP> {
    let codec = match kind {
        RtpCodecKind::Video => h264_codec(),
        _ => audio_codec(AudioCodecKind::Opus),
    };
    Arc::new(TrackLocalStaticRTP::new(media_track(
        stream_id, track_id, stream_id, kind, codec, ssrc,
    )))
}

/// Adds `track` to the server as a stream it only sends.
pub async fn add_send_only(
    server: &impl PeerConnection,
    track: Arc<dyn TrackLocal>,
) -> Arc<dyn RtpTransceiver> {
    server
        .add_transceiver_from_track(
            track,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Sendonly,
                streams: vec![],
                send_encodings: vec![],
            }),
        )
        .await
        .unwrap()
}

/// The server's transceiver that sends with `sender`.
pub async fn first_transceiver(
    server: &impl PeerConnection,
    sender: &Arc<dyn RtpSender>,
) -> Arc<dyn RtpTransceiver> {
    for transceiver in server.get_transceivers().await {
        if let Ok(Some(its)) = transceiver.sender().await {
            if its.id() == sender.id() {
                return transceiver;
            }
        }
    }
    panic!("no transceiver sends with the sender")
}

/// A new offer from the server to `session`, answered and applied: the offer and the answer.
pub async fn server_reoffer(
    server: &impl PeerConnection,
    session: &WebRtcSession,
) -> (String, String) {
    let offer = server.create_offer(None).await.unwrap();
    server.set_local_description(offer).await.unwrap();
    let offer = server.local_description().await.unwrap().sdp;
    let answer = session.accept_reoffer(&offer).await.unwrap();
    server
        .set_remote_description(RTCSessionDescription::answer(answer.clone()).unwrap())
        .await
        .unwrap();
    (offer, answer)
}

/// How a pattern sender makes keyframes.
pub enum Keyframes {
    /// One each second.
    EverySecond,
    /// Only when asked: a PLI or FIR about the sender's SSRC reaching its track, counted
    /// here. The stream starts without one (its first keyframe is not sent), as a stream a
    /// server forwards from the middle does.
    OnRequest(Arc<AtomicU64>),
}

/// Sends `identity`'s stamped pattern on `track` at 320x240, 30 fps, a keyframe each second,
/// until `stop`.
pub async fn send_pattern(
    track: Arc<TrackLocalStaticRTP>,
    identity: u16,
    ssrc: u32,
    stop: watch::Receiver<bool>,
) {
    send_pattern_with(track, identity, ssrc, stop, Keyframes::EverySecond).await;
}

/// Sends `identity`'s stamped pattern on `track` under `ssrc` at 320x240, 30 fps, with
/// `keyframes`, until `stop`.
pub async fn send_pattern_with(
    track: Arc<TrackLocalStaticRTP>,
    identity: u16,
    ssrc: u32,
    stop: watch::Receiver<bool>,
    keyframes: Keyframes,
) {
    let format = VideoFormat::new(320, 240, 30).unwrap();
    let mut pattern = TestPattern::new(format, identity).unwrap();
    let mut config = H264EncoderConfig::new(320, 240, 30, 500_000);
    let wanted = Arc::new(AtomicBool::new(false));
    let requests = match keyframes {
        Keyframes::EverySecond => {
            config.keyframe_interval = Some(30);
            None
        }
        Keyframes::OnRequest(count) => {
            config.keyframe_interval = None;
            let watching = Arc::clone(&track);
            let wanted = Arc::clone(&wanted);
            Some(tokio::spawn(async move {
                loop {
                    let Some(TrackLocalEvent::OnRtcpPacket(packets)) = watching.poll().await else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    if packets.iter().any(|p| asks_keyframe_of(p.as_ref(), ssrc)) {
                        count.fetch_add(1, Ordering::Relaxed);
                        wanted.store(true, Ordering::Relaxed);
                    }
                }
            }))
        }
    };
    let mut encoder = H264Encoder::new(config).unwrap();
    let packetizer = H264Packetizer::new(PacketizationMode::NonInterleaved, 1_100).unwrap();
    let mut ticks = tokio::time::interval(Duration::from_millis(33));
    let mut sequence = 0u16;
    while !*stop.borrow() {
        ticks.tick().await;
        if wanted.swap(false, Ordering::Relaxed) {
            encoder.force_keyframe();
        }
        let frame = pattern.next_frame().unwrap().unwrap();
        let Some(unit) = encoder.encode(&frame).unwrap() else {
            continue;
        };
        if requests.is_some() && encoder.frames() == 1 {
            continue;
        }
        let payloads = packetizer.packetize(&unit.nalus).unwrap();
        let timestamp = (frame.timestamp().as_micros() * 90 / 1_000) as u32;
        let last = payloads.len() - 1;
        for (i, payload) in payloads.into_iter().enumerate() {
            let packet = RtpPacket {
                header: RtpHeader {
                    version: 2,
                    marker: i == last,
                    payload_type: H264_PAYLOAD_TYPE,
                    sequence_number: sequence,
                    timestamp,
                    ssrc,
                    ..RtpHeader::default()
                },
                payload: Bytes::from(payload),
            };
            sequence = sequence.wrapping_add(1);
            // Refused until the connection is up: the next keyframe follows within a second.
            let _ = track.write_rtp(packet).await;
        }
    }
    if let Some(requests) = requests {
        requests.abort();
    }
}

/// Whether `packet` is a PLI or FIR about `ssrc`.
fn asks_keyframe_of(packet: &dyn rtc::rtcp::Packet, ssrc: u32) -> bool {
    let any = packet.as_any();
    if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
        return pli.media_ssrc == ssrc;
    }
    any.downcast_ref::<FullIntraRequest>()
        .is_some_and(|fir| fir.fir.iter().any(|entry| entry.ssrc == ssrc))
}
