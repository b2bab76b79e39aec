//! A WebRTC session on loopback that sends a stamped 640x480 test pattern and a tone, and
//! keeps the stamps it reads back from each decoded picture.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use callisto_media::audio::{AudioFormat, NullSink, ToneSource};
use callisto_media::video::{
    read_stamp, CallbackSink, PatternStamp, TestPattern, VideoFormat, VideoSink, VideoSource,
};
use callisto_media::webrtc::{
    VideoConfig, WebRtcConfig, WebRtcMedia, WebRtcSession, WebRtcVideoMedia,
};

/// The tone's format.
pub const AUDIO: AudioFormat = AudioFormat::MONO_48K;

/// The stamps of the pictures decoded so far, `None` where a picture had no readable stamp.
pub type Stamps = Arc<Mutex<Vec<Option<PatternStamp>>>>;

/// One video call at a time: two at once on a shared 2-core machine would measure the
/// machine, not the session.
pub static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A session sending the pattern stamped with `identity`, its encoder capped at
/// `max_bitrate` bit/s.
pub async fn video_session(identity: u16, max_bitrate: u32) -> (WebRtcSession, Stamps) {
    let format = VideoFormat::new(640, 480, 30).unwrap();
    let stamps: Stamps = Arc::default();
    let seen = Arc::clone(&stamps);
    let sink = CallbackSink::new(move |frame| {
        seen.lock().unwrap().push(read_stamp(frame));
    });
    let source = TestPattern::new(format, identity).unwrap();
    let session = session_with(Box::new(source), Box::new(sink), max_bitrate).await;
    (session, stamps)
}

/// A 640x480 session sending `source`'s pictures and a tone, its decoded pictures going to
/// `sink`, its encoder capped at `max_bitrate` bit/s.
pub async fn session_with(
    source: Box<dyn VideoSource>,
    sink: Box<dyn VideoSink>,
    max_bitrate: u32,
) -> WebRtcSession {
    let media = WebRtcMedia {
        audio_source: Box::new(ToneSource::with_dbfs(AUDIO, 440.0, -12.0)),
        audio_sink: Box::new(NullSink::new(AUDIO)),
        video: Some(WebRtcVideoMedia {
            source,
            sink,
            more_streams: None,
        }),
    };
    let config = WebRtcConfig {
        video: Some(VideoConfig {
            width: 640,
            height: 480,
            fps: 30,
            max_bitrate,
        }),
        ..WebRtcConfig::loopback()
    };
    WebRtcSession::new(config, media).await.unwrap()
}
