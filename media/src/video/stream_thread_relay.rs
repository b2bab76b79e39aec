//! The video thread's sending side for sources that change under it: a replaced source
//! (a call merged into a conference), and a shared feed of units encoded elsewhere — relayed
//! while the sender sends, black keyframes of its own while it is paused.

use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::{coded_format, new_encoder, within_level, VideoLayerAdvice, VideoLoop};
use crate::video::h264::{H264Encoder, H264Level, PacketizationMode};
use crate::video::{EncodedFeed, VideoFormat, VideoFrame};

/// How often a paused shared feed's sender sends a black keyframe, and at what bitrate.
const BLACK_INTERVAL: Duration = Duration::from_secs(1);
const BLACK_BITRATE: u32 = 100_000;

/// A paused shared feed's sender's black pictures (see `VideoLoop::send_black`).
pub(super) struct BlackPictures {
    encoder: H264Encoder,
    picture: VideoFrame,
    started: Instant,
    pub(super) next: Instant,
}

impl VideoLoop {
    /// Takes up a source that was replaced (a call merged into a conference): one of units
    /// encoded elsewhere drops the encoder, one of pictures gets an encoder again. The new
    /// stream starts at a keyframe, and its RTP timestamps go on from the last ones sent.
    pub(super) fn follow_replacement(&mut self) {
        let Some(sender) = &mut self.sender else {
            return;
        };
        if !sender.source.replaced() {
            return;
        }
        debug!("the video source was replaced");
        if let Some(old) = sender.feed.take() {
            old.set_active(false);
        }
        self.source_ended = false;
        self.next_frame = None;
        self.black = None;
        self.rebase_timestamps = true;
        if let Some(feed) = sender.source.encoded_feed() {
            // The pictures encoded elsewhere are cut for this call's mode.
            feed.set_single_nal(self.packetization == PacketizationMode::SingleNalUnit);
            sender.encoder = None;
            self.source_fps = feed.format().fps.max(1);
            feed.set_bitrate(self.encoder_bps);
            feed.wake(thread::current());
            sender.feed = Some(feed);
            return;
        }
        let format = sender.source.format();
        self.source_fps = format.fps.max(1);
        self.interval = Duration::from_secs(1) / self.source_fps;
        if self.controller.is_none() {
            let whole = VideoLayerAdvice {
                width: format.width,
                height: format.height,
                fps: self.source_fps,
            };
            self.layer = within_level(whole, self.level);
        }
        let coded = coded_format(format, self.layer, self.level);
        match new_encoder(coded, self.encoder_bps, self.packetization, self.level) {
            Ok(encoder) => sender.encoder = Some(encoder),
            Err(e) => {
                warn!(error = %e, "no encoder for the new video source: video stops");
                self.source_ended = true;
            }
        }
    }

    /// Fits what we send to the H.264 level the peer decodes now (see
    /// [`VideoInput::Level`](super::VideoInput::Level)): the size and rate (the source's whole
    /// picture, or the controller's advice, within it), the bitrate, and a new encoder whose
    /// SPS names it, so the next picture is a keyframe. Units encoded elsewhere (a conference's
    /// mosaic) are not ours to fit.
    pub(super) fn set_level(&mut self, level: Option<H264Level>) {
        if level == self.level {
            return;
        }
        self.level = level;
        let Some(sender) = &mut self.sender else {
            return;
        };
        if sender.encoder.is_none() {
            return;
        }
        let format = sender.source.format();
        // What the controller advises now (the next advice would rebuild the encoder again),
        // or the source's whole picture; the bitrate it aims for, or the highest.
        let (layer, bps) = match &self.controller {
            Some(controller) => {
                let controller = controller.lock();
                let target = u32::try_from(controller.target_bitrate()).unwrap_or(u32::MAX);
                (controller.layer_advice(), target)
            }
            None => {
                let whole = VideoLayerAdvice {
                    width: format.width,
                    height: format.height,
                    fps: self.source_fps,
                };
                (whole, self.max_bitrate)
            }
        };
        self.layer = within_level(layer, level);
        let most = level.map_or(u32::MAX, |l| {
            u32::try_from(l.limits().max_bitrate_bps).unwrap_or(u32::MAX)
        });
        self.encoder_bps = bps.min(most);
        self.counters.send_fps = self.layer.fps;
        let coded = coded_format(format, self.layer, level);
        match new_encoder(coded, self.encoder_bps, self.packetization, level) {
            Ok(encoder) => sender.encoder = Some(encoder),
            Err(e) => warn!(error = %e, "no encoder for the peer's new level: the old one goes on"),
        }
    }

    /// Sends the access units a shared feed has for us. The feed is inactive (given nothing,
    /// its bitrate and keyframe wishes not counted) while the connection is down, the
    /// direction does not send (on hold) or the source is paused; when it comes back it starts
    /// again at a keyframe.
    pub(super) fn relay(&mut self, feed: &EncodedFeed, now: Instant) {
        let Some(sender) = &self.sender else {
            return;
        };
        let connected = self.connected.load(Ordering::Acquire);
        let sending = self.sending.load(Ordering::Acquire);
        let paused = sender.source.paused();
        feed.set_active(connected && sending && !paused);
        if !connected || !sending {
            return;
        }
        if paused {
            self.send_black(feed, now);
            return;
        }
        if self.black.take().is_some() {
            self.rebase_timestamps = true;
        }
        // The thread wakes for receiving too: the controller is read only when units came.
        let Some(first) = feed.next_unit() else {
            return;
        };
        self.adapt();
        // Units already queued may be of the layer before.
        feed.set_layer(self.layer.width, self.layer.height, self.layer.fps);
        self.counters.send_resolution = feed.size();
        self.send_unit(&first, now);
        while let Some(unit) = feed.next_unit() {
            self.send_unit(&unit, now);
        }
    }

    /// While a shared feed's sender is paused (held, camera off), the peer sees black, as from
    /// a source of pictures: a black keyframe of the feed's size every second, from an
    /// encoder of its own (made on the first pause). Its timestamps go on from the last
    /// unit's, and those of the feed from its last when the pause ends.
    fn send_black(&mut self, feed: &EncodedFeed, now: Instant) {
        if self.black.is_none() {
            let (width, height) = feed.size();
            let picture = VideoFrame::black(width, height);
            let encoder = VideoFormat::new(width, height, feed.format().fps)
                .map_err(|e| e.to_string())
                .and_then(|format| {
                    new_encoder(format, BLACK_BITRATE, self.packetization, self.level)
                        .map_err(|e| e.to_string())
                });
            match (picture, encoder) {
                (Ok(picture), Ok(encoder)) => {
                    self.black = Some(BlackPictures {
                        encoder,
                        picture,
                        started: now,
                        next: now,
                    });
                    self.rebase_timestamps = true;
                }
                (Err(e), _) => debug!(error = %e, "no black picture for a paused feed"),
                (_, Err(e)) => debug!(error = %e, "no encoder for a paused feed's black"),
            }
        }
        let Some(black) = &mut self.black else {
            return;
        };
        if now < black.next {
            return;
        }
        black.next = now + BLACK_INTERVAL;
        black.encoder.force_keyframe();
        // Stamped with the time since the pause began: a keyframe asked for early comes early.
        let picture = black.picture.clone().with_timestamp(now - black.started);
        match black.encoder.encode(&picture) {
            Ok(Some(unit)) => self.send_unit(&unit, now),
            Ok(None) => {}
            Err(e) => debug!(error = %e, "the black picture was not encoded"),
        }
    }
}
