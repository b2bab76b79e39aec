//! [`ClassicForwarder`]: a video stream a conference host sends on the classic path without
//! encoding it — another participant's packets, as they arrive, on a further `m=video` of a
//! participant that takes several streams.
//!
//! ```text
//!  sender's tap ─► ForwardOutlet::send ─► StreamRewriter ─► VideoTransportCore::send_forwarded ─► send_to
//!  recv_from ─► reader thread ─► VideoTransportCore::handle_datagram ─► PLI/FIR ─► the sender's keyframe request
//!                   (RTCP timer on the RTP reader)
//! ```
//!
//! The [`StreamRewriter`] gives the packets the stream's SSRC and keeps its numbering
//! continuous when the source changes (the slot passes to another participant). A new
//! source's packets wait for its keyframe (asked for at once, and again every
//! [`ASK_AGAIN`] until it comes): what came before it would decode against the previous
//! sender's pictures, or not at all. The core
//! encrypts, latches, reports (SR) and reads the receiver's RTCP as for any classic video
//! stream. Nothing is decoded; the stream sends while its direction says so.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::info_span;

use super::classic_video::{lock, say_bye, Deliver, Reader, Sockets, Transport};
use super::video_core::{VideoDelivery, VideoTransportCore};
use super::{ClassicVideoConfig, SessionError, VideoUpdate};
use crate::rtp::RtpPacket;
use crate::webrtc::StreamRewriter;

/// What asks the forwarded stream's sender for a keyframe.
pub type KeyframeSource = Arc<dyn Fn() + Send + Sync>;

/// How often a new source that has not sent its keyframe yet is asked again.
const ASK_AGAIN: Duration = Duration::from_millis(500);

/// What the packets of the stream go through before the core: the source they come from,
/// whether its keyframe is still awaited, and the renumbering.
struct Feed {
    rewriter: StreamRewriter,
    /// What asks the sender for a keyframe (none once the forwarder stopped).
    source: Option<KeyframeSource>,
    /// The SSRC of the source forwarded now.
    ssrc: Option<u32>,
    /// Its packets are dropped until its keyframe comes.
    awaiting_keyframe: bool,
    /// When it was last asked for one.
    asked: Option<Instant>,
}

impl Feed {
    /// Whether `packet` goes on; asks the sender for a keyframe (through the returned
    /// requester, called once the lock is released) while one is awaited.
    fn admit(&mut self, packet: &RtpPacket, now: Instant) -> (bool, Option<KeyframeSource>) {
        if self.ssrc != Some(packet.header.ssrc) {
            self.ssrc = Some(packet.header.ssrc);
            self.awaiting_keyframe = true;
            self.asked = None;
        }
        if !self.awaiting_keyframe {
            return (true, None);
        }
        if starts_keyframe(&packet.payload) {
            self.awaiting_keyframe = false;
            return (true, None);
        }
        let due = self
            .asked
            .is_none_or(|at| now.duration_since(at) >= ASK_AGAIN);
        if !due {
            return (false, None);
        }
        self.asked = Some(now);
        (false, self.source.clone())
    }
}

/// Whether an H.264 RTP payload (RFC 6184) begins a keyframe: an SPS or an IDR slice, alone,
/// in a STAP-A, or as the first fragment of an FU-A.
pub fn starts_keyframe(payload: &[u8]) -> bool {
    const IDR: u8 = 5;
    const SPS: u8 = 7;
    let key = |nal_type: u8| nal_type == IDR || nal_type == SPS;
    let Some(&header) = payload.first() else {
        return false;
    };
    match header & 0x1f {
        24 => {
            // STAP-A: (16-bit size, NAL unit)...
            let mut rest = &payload[1..];
            while rest.len() > 2 {
                let size = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                let Some(unit) = rest.get(2..2 + size) else {
                    return false;
                };
                if unit.first().is_some_and(|nal| key(nal & 0x1f)) {
                    return true;
                }
                rest = &rest[2 + size..];
            }
            false
        }
        28 => payload
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && key(fu & 0x1f)),
        nal_type => key(nal_type),
    }
}

/// Where the packets of the stream a [`ClassicForwarder`] carries go in: cheap to clone,
/// called on the sender's reader (it must return quickly).
#[derive(Clone)]
pub struct ForwardOutlet {
    core: Arc<Mutex<VideoTransportCore>>,
    sockets: Sockets,
    feed: Arc<Mutex<Feed>>,
}

impl std::fmt::Debug for ForwardOutlet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardOutlet").finish_non_exhaustive()
    }
}

impl ForwardOutlet {
    /// Sends one packet of the forwarded stream (nothing while the direction does not send,
    /// nor from a new source before its keyframe).
    pub fn send(&self, packet: &RtpPacket) {
        if !lock(&self.core).direction().send {
            return;
        }
        let now = Instant::now();
        let mut feed = lock(&self.feed);
        let (admitted, ask) = feed.admit(packet, now);
        let packet = admitted.then(|| feed.rewriter.rewrite(packet.clone()));
        drop(feed);
        if let Some(ask) = ask {
            ask();
        }
        if let Some(packet) = packet {
            let transmit = lock(&self.core).send_forwarded(now, &packet);
            self.sockets.send(transmit);
        }
    }
}

/// A running forwarded stream. Dropping it stops it as [`ClassicForwarder::stop`] does.
pub struct ClassicForwarder {
    core: Arc<Mutex<VideoTransportCore>>,
    sockets: Sockets,
    feed: Arc<Mutex<Feed>>,
    payload_type: u8,
    readers: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    stopped: bool,
}

impl std::fmt::Debug for ClassicForwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClassicForwarder")
            .field("counters", &lock(&self.core).counters())
            .finish_non_exhaustive()
    }
}

impl ClassicForwarder {
    /// Starts the stream on `config`'s sockets (its packetization and bitrate do not apply:
    /// packets go as they come). The receiver's keyframe requests call `source`.
    pub fn start(
        config: ClassicVideoConfig,
        source: KeyframeSource,
    ) -> Result<ClassicForwarder, SessionError> {
        let Transport {
            sockets,
            core,
            ssrc,
            payload_type,
        } = Transport::open(config)?;
        let feed = Arc::new(Mutex::new(Feed {
            rewriter: StreamRewriter::new(ssrc, payload_type),
            source: Some(source),
            ssrc: None,
            awaiting_keyframe: true,
            asked: None,
        }));
        let deliver: Deliver = {
            let feed = Arc::clone(&feed);
            Arc::new(move |_, delivery| {
                if delivery == VideoDelivery::KeyframeRequested {
                    let request = lock(&feed).source.clone();
                    if let Some(request) = request {
                        request();
                    }
                }
                true
            })
        };
        let stop = Arc::new(AtomicBool::new(false));
        let span = info_span!("classic-forward", ssrc = %format_args!("{ssrc:08x}"));
        let readers = Reader::spawn(&sockets, &core, &deliver, &stop, &span)?;
        Ok(ClassicForwarder {
            core,
            sockets,
            feed,
            payload_type,
            readers,
            stop,
            stopped: false,
        })
    }

    /// Where the forwarded stream's packets go in.
    pub fn outlet(&self) -> ForwardOutlet {
        ForwardOutlet {
            core: Arc::clone(&self.core),
            sockets: self.sockets.clone(),
            feed: Arc::clone(&self.feed),
        }
    }

    /// The stream carries another sender's packets from now on: the receiver's keyframe
    /// requests go to `source`, and the numbering goes on from the last packet sent once
    /// the new sender's keyframe comes.
    pub fn set_source(&self, source: KeyframeSource) {
        let mut feed = lock(&self.feed);
        feed.source = Some(source);
        feed.rewriter = feed.rewriter.clone().continued(self.payload_type);
    }

    /// Applies a renegotiated stream (address, direction, keys; a retired stream is
    /// inactive).
    pub fn update(&self, update: VideoUpdate) -> Result<(), SessionError> {
        let mut core = lock(&self.core);
        core.update(
            update.remote_rtp,
            update.remote_rtcp,
            update.direction,
            update.srtp,
        )?;
        core.set_nack(update.nack);
        Ok(())
    }

    /// Packets sent so far.
    pub fn packets_sent(&self) -> u64 {
        lock(&self.core).counters().rtp_sent
    }

    /// Stops the stream: the readers end and the final RTCP report with a BYE goes out.
    pub fn stop(&mut self) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        self.stop.store(true, Ordering::Release);
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        lock(&self.feed).source = None;
        say_bye(&self.core, &self.sockets);
    }
}

impl Drop for ClassicForwarder {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::starts_keyframe;

    #[test]
    fn keyframes_are_told_from_sps_idr_stap_a_and_fu_a_starts() {
        assert!(starts_keyframe(&[0x67, 0x42]), "SPS");
        assert!(starts_keyframe(&[0x65, 0x88]), "IDR slice");
        assert!(!starts_keyframe(&[0x68, 0xce]), "PPS alone");
        assert!(!starts_keyframe(&[0x41, 0x9a]), "P slice");
        // STAP-A with a PPS, then an SPS.
        assert!(starts_keyframe(&[0x78, 0, 2, 0x68, 0xce, 0, 2, 0x67, 0x42]));
        assert!(!starts_keyframe(&[
            0x78, 0, 2, 0x68, 0xce, 0, 2, 0x41, 0x9a
        ]));
        assert!(!starts_keyframe(&[0x78, 0, 9, 0x67]), "truncated STAP-A");
        // FU-A: the start of an IDR, its middle, the start of a P slice.
        assert!(starts_keyframe(&[0x7c, 0x85, 0]));
        assert!(!starts_keyframe(&[0x7c, 0x05, 0]));
        assert!(!starts_keyframe(&[0x7c, 0x81, 0]));
        assert!(!starts_keyframe(&[]));
    }
}
