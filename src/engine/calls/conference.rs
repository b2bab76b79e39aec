//! Merging calls into a conference this app hosts ("merge calls" in a softphone): each
//! established call's audio ends are swapped, while it runs, for a seat at one
//! [`ConferenceBridge`]; the ends of the first merged call (the microphone and speakers, or
//! the input and recording) become the bridge's local participant, the host. Held calls are
//! resumed. The bridge goes when the last merged call has ended.
//!
//! Every call in a conference we host (merged here, or seated at a bridge from the start by
//! `callisto conference --host`) is told the roster (RFC 4575): the host and every established
//! leg, by name and address. The endpoint then marks our Contact `isfocus` in those calls and
//! serves the roster to participants that subscribe; [`Calls::publish_roster`] runs whenever a
//! leg is answered, merged or gone.

use std::time::Instant;

use callisto_media::audio::{AudioSink, MutableSource};
use callisto_media::conference::{BridgeEvent, ConferenceBridge, MixerConfig, MosaicBridge};
use callisto_media::video::{CameraSwitch, VideoFormat, VideoSource};
use callisto_signaling::conference_info::{ConferenceInfo, ConferenceMedia, ConferenceUser};
use callisto_signaling::endpoint::Endpoint;
use tokio::sync::mpsc;

use super::media::{CallMediaEvent, ConferenceSeat};
use super::{Call, CallKey, CallUpdate, Calls};
use crate::engine::EngineEvent;

impl Calls {
    /// Puts the established calls among `keys` into the conference (started when there is
    /// none). Each merged call reports [`CallUpdate::Merged`]; once all are seated, the one
    /// whose input became the host's picture reports [`CallUpdate::HostsPicture`].
    pub(in crate::engine) fn merge(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        keys: &[CallKey],
        events: &mpsc::UnboundedSender<EngineEvent>,
    ) {
        let mut keys: Vec<CallKey> = keys
            .iter()
            .copied()
            .filter(|k| {
                self.calls.get(k).is_some_and(|c| {
                    c.established.is_some() && c.media.options.conference.is_none()
                })
            })
            .collect();
        keys.sort();
        keys.dedup();
        let bridge = match &self.conference {
            Some(bridge) => bridge.clone(),
            None if keys.len() >= 2 => match self.start_bridge() {
                Ok(bridge) => bridge,
                Err(error) => {
                    tracing::warn!(%error, "cannot start a conference");
                    return;
                }
            },
            None => {
                tracing::info!("a conference needs two established calls");
                return;
            }
        };
        let mut host_seated = self.conference.is_some();
        // The inputs the host's picture may be taken from, while the conference has none.
        let mut inputs = Vec::new();
        for key in keys {
            let Some(call) = self.calls.get_mut(&key) else {
                continue;
            };
            let switch = call.media.options.controls.audio.clone();
            let Some((format, _)) = switch.formats() else {
                tracing::warn!(?key, "the call has no audio to merge");
                continue;
            };
            let (source, sink) = match bridge.join(key.0, &call.peer, format.sample_rate) {
                Ok(ends) => ends,
                Err(error) => {
                    tracing::warn!(?key, %error, "cannot join the conference");
                    continue;
                }
            };
            let source = MutableSource::new(source, call.media.options.controls.mute.clone());
            let (old_source, mut old_sink) = match switch.replace(Box::new(source), Box::new(sink))
            {
                Ok(old) => old,
                Err(error) => {
                    tracing::warn!(?key, %error, "cannot merge the call");
                    continue;
                }
            };
            // The host goes by its own address (this call's identity) in the roster.
            let host = call
                .identity
                .as_ref()
                .map_or_else(|| "host".to_owned(), |us| peer_label(None, &us.to_string()));
            if host_seated {
                let _ = old_sink.finish();
            } else if let Err(error) = bridge.set_local(&host, old_source, old_sink) {
                tracing::warn!(%error, "the host's audio cannot take part");
            } else {
                host_seated = true;
            }
            call.media.options.conference = Some(ConferenceSeat {
                bridge: bridge.clone(),
                label: call.peer.clone(),
            });
            match seat_video(call, &bridge) {
                Ok(Some(input)) => {
                    let camera = call.media.options.controls.camera.clone();
                    inputs.push((key, camera, input));
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(?key, %error, "the call's video stays out of the conference");
                }
            }
            // Held, or being held (a call waiting's answer holds the others): resumed.
            let held = call.local_hold || call.pending_hold == Some(true);
            let _ = events.send(EngineEvent::Call {
                key,
                update: CallUpdate::Merged,
            });
            if held {
                self.set_hold(endpoint, now, key, false);
            }
        }
        if let Some((key, camera)) = take_host_picture(inputs) {
            self.conference_camera = Some(camera);
            let _ = events.send(EngineEvent::Call {
                key,
                update: CallUpdate::HostsPicture,
            });
        }
        self.conference = Some(bridge);
        self.publish_roster(endpoint, now);
    }

    /// Tells every call in a conference we host who is in it now: the host, then each
    /// established leg in the order the calls were made. A call whose roster did not change
    /// is left alone.
    pub(super) fn publish_roster(&mut self, endpoint: &mut Endpoint, now: Instant) {
        // Each leg's video goes by its stream label (the one it is forwarded under).
        let video_legs = self.video_legs();
        self.name_streams(&video_legs);
        let mut legs: Vec<&Call> = self
            .calls
            .values()
            .filter(|c| c.media.options.conference.is_some())
            .collect();
        if legs.is_empty() {
            return;
        }
        legs.sort_by_key(|c| c.key);
        let host_label = legs[0]
            .media
            .options
            .conference
            .as_ref()
            .and_then(|seat| seat.bridge.roster().into_iter().find(|e| e.tag == 0))
            .map_or_else(|| "host".to_owned(), |e| e.label);
        let host_uri = legs[0]
            .identity
            .as_ref()
            .map_or_else(String::new, ToString::to_string);
        let mut users = vec![ConferenceUser {
            entity: host_uri.clone(),
            display: Some(host_label),
            status: Some("connected".into()),
            media: media_of(legs[0].shows_video(), None),
        }];
        users.extend(legs.iter().filter(|c| c.established.is_some()).map(|c| {
            let held = c.local_hold || c.remote_hold;
            ConferenceUser {
                entity: c.peer_uri.clone(),
                display: Some(c.peer.clone()),
                status: Some(if held { "on-hold" } else { "connected" }.into()),
                media: media_of(c.shows_video(), c.streams.label.clone()),
            }
        }));
        let info = ConferenceInfo {
            entity: host_uri,
            subject: None,
            users,
        };
        let keys: Vec<CallKey> = legs.iter().map(|c| c.key).collect();
        for key in keys {
            let Some(call) = self.calls.get_mut(&key) else {
                continue;
            };
            if call.roster_sent.as_ref() == Some(&info) {
                continue;
            }
            match endpoint.set_conference_info(now, call.id, Some(info.clone())) {
                Ok(()) => call.roster_sent = Some(info.clone()),
                Err(error) => tracing::debug!(?key, %error, "roster not given"),
            }
        }
    }

    fn start_bridge(&self) -> std::io::Result<ConferenceBridge> {
        let events = self.media_events.clone();
        ConferenceBridge::start(MixerConfig::default(), move |event| {
            let tag = match &event {
                BridgeEvent::Speaker { tag, .. } | BridgeEvent::Silent { tag, .. } => *tag,
            };
            let _ = events.send((CallKey(tag), CallMediaEvent::Conference(event)));
        })
    }

    /// What the bridge reported: a participant that went silent is hung up.
    pub(super) fn on_bridge_event(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        key: CallKey,
        event: BridgeEvent,
    ) {
        match event {
            BridgeEvent::Speaker { label, .. } => tracing::debug!(%label, "speaking"),
            BridgeEvent::Silent { label, .. } => {
                if self.calls.contains_key(&key) {
                    tracing::warn!(?key, %label, "no audio from a participant; hanging up");
                    self.hang_up(endpoint, now, key);
                }
            }
        }
    }

    /// `key`'s input became the host's picture after the merge (its video started later):
    /// the conference's camera is its camera.
    pub(super) fn picture_taken(&mut self, key: CallKey) -> CallUpdate {
        if let Some(call) = self.calls.get(&key) {
            self.conference_camera = Some(call.media.options.controls.camera.clone());
        }
        CallUpdate::HostsPicture
    }

    /// Shows our picture in a call, or black instead. In the conference merged here that is
    /// the host's picture, whichever merged call it came from (every merged call's input
    /// until one is named).
    pub(in crate::engine) fn set_camera(&mut self, key: CallKey, on: bool) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        match (&self.conference_camera, &call.media.options.conference) {
            (Some(camera), Some(_)) => camera.set(on),
            (None, Some(_)) => {
                for merged in self.calls.values() {
                    if merged.media.options.conference.is_some() {
                        merged.media.options.controls.camera.set(on);
                    }
                }
            }
            (_, None) => call.media.options.controls.camera.set(on),
        }
    }

    /// Lets the conference go once no call is in it.
    pub(super) fn forget_empty_conference(&mut self) {
        if !self
            .calls
            .values()
            .any(|c| c.media.options.conference.is_some())
        {
            if let Some(bridge) = self.conference.take() {
                bridge.stop();
            }
            self.conference_camera = None;
        }
    }
}

/// Of the calls just merged whose video was seated (key, camera switch on), in merge order:
/// the one whose input becomes the host's picture, while the conference has none. The first
/// with its camera on, so that a call answered without video (its camera off) does not make
/// the host black to everyone while another call shows the camera; the first of all when
/// every camera is off.
fn picture_call(running: impl Iterator<Item = (CallKey, bool)>) -> Option<CallKey> {
    let mut first = None;
    for (key, camera_on) in running {
        if camera_on {
            return Some(key);
        }
        first = first.or(Some(key));
    }
    first
}

/// Makes one of the inputs of the calls just seated (key, camera switch, input, in merge
/// order) the host's picture ([`picture_call`]) while the mosaic has none; returns that call
/// and its camera switch, which is the conference's camera from now on. The other inputs are
/// dropped.
fn take_host_picture(
    inputs: Vec<(CallKey, CameraSwitch, HostInput)>,
) -> Option<(CallKey, CameraSwitch)> {
    let picture = picture_call(inputs.iter().map(|(key, camera, _)| (*key, camera.is_on())))?;
    let (key, camera, (mosaic, input)) = inputs.into_iter().find(|(key, ..)| *key == picture)?;
    if mosaic.has_local() {
        return None;
    }
    mosaic.set_local(input);
    Some((key, camera))
}

/// A conference's mosaic without a picture of the host, and a merged call's input that may
/// become that picture.
type HostInput = (MosaicBridge, Box<dyn VideoSource>);

/// Puts a merged call's running video into the conference's picture: what it decodes becomes
/// its tile, and it sends the mosaic — or the host's picture alone once every other
/// participant's video is forwarded to it ([`Calls::update_forwarding`]). While the
/// conference has no picture of the host, returns the mosaic and the call's input (the
/// camera, with its self-view and camera switch): the host's picture may be taken from it
/// ([`picture_call`]). A call whose video has not started is left alone: its video joins the
/// mosaic when it starts (`webrtc::video_media`).
fn seat_video(call: &mut Call, bridge: &ConferenceBridge) -> Result<Option<HostInput>, String> {
    let controls = &call.media.options.controls;
    let Some(video) = &call.media.options.video else {
        return Ok(None);
    };
    if controls.video.format().is_none() {
        return Ok(None);
    }
    let format =
        VideoFormat::new(video.width, video.height, video.fps).map_err(|e| e.to_string())?;
    let single_nal = call.media.video.as_ref().is_some_and(|v| v.single_nal());
    let (mosaic, source, tile) = super::webrtc::mosaic_leg(
        bridge,
        call.key,
        format,
        controls,
        single_nal,
        video.max_bitrate,
    )?;
    let input = controls
        .video
        .replace(Box::new(source), Some(Box::new(tile)))
        .map_err(|e| e.to_string())?;
    Ok((!mosaic.has_local()).then_some((mosaic, input)))
}

/// The streams a roster lists for a participant: audio, and video when the call has it,
/// labelled `video_label` (the stream id a participant that takes several streams is sent
/// it under, RFC 4575 §5.7.1).
fn media_of(video: bool, video_label: Option<String>) -> Vec<ConferenceMedia> {
    let stream = |id: &str, kind: &str, label: Option<String>| ConferenceMedia {
        id: id.into(),
        kind: kind.into(),
        label,
        status: Some("sendrecv".into()),
    };
    let mut media = vec![stream("1", "audio", None)];
    if video {
        media.push(stream("2", "video", video_label));
    }
    media
}

/// The name a call's peer goes by in a conference roster: the display name, else the address
/// without its scheme and parameters.
pub fn peer_label(display_name: Option<&str>, uri: &str) -> String {
    if let Some(name) = display_name.map(str::trim).filter(|n| !n.is_empty()) {
        return name.trim_matches('"').to_string();
    }
    let uri = uri.trim().trim_start_matches('<');
    let bare = uri
        .strip_prefix("sips:")
        .or_else(|| uri.strip_prefix("sip:"))
        .unwrap_or(uri);
    bare.split([';', '>', '?'])
        .next()
        .unwrap_or(bare)
        .to_string()
}

#[cfg(test)]
mod tests {
    use std::sync::{mpsc, Arc};

    use callisto_media::conference::{ConferenceBridge, MixerConfig};
    use callisto_media::video::{CameraSwitch, TestPattern, VideoFormat, VideoSource};

    use super::super::media::{CallControls, ConferenceSeat, VideoInput, VideoOptions};
    use super::super::webrtc::{video_media, VideoReport};
    use super::super::CallKey;
    use super::{peer_label, picture_call, take_host_picture};

    /// Legs of a merged conference whose calls had no video running: the first leg's video
    /// to start makes its input the host's picture and says so; the next finds it there.
    #[test]
    fn the_first_leg_whose_video_starts_after_the_merge_reports_the_hosts_picture() {
        let bridge = ConferenceBridge::start(MixerConfig::default(), |_| {}).unwrap();
        let seat = ConferenceSeat::at(&bridge);
        let video = VideoOptions {
            input: VideoInput::Pattern,
            record: None,
            width: 160,
            height: 120,
            fps: 10,
            max_bitrate: 200_000,
            identity: 1,
            single_stream: true,
        };
        let (sent, reports) = mpsc::channel();
        let report: VideoReport = Arc::new(move |event| {
            let _ = sent.send(format!("{event:?}"));
        });
        let legs: Vec<_> = [1, 2]
            .into_iter()
            .map(|key| {
                let leg = Some((&seat, CallKey(key)));
                video_media(&video, &CallControls::default(), leg, false, &report).unwrap()
            })
            .collect();
        assert_eq!(reports.try_iter().collect::<Vec<_>>(), ["HostsPicture"]);
        drop(legs);
    }

    /// The host's picture comes from the first merged call whose camera is on; from the
    /// first of all when every camera is off; from none when no video runs.
    #[test]
    fn the_hosts_picture_is_a_call_whose_camera_is_on() {
        fn calls(list: &[(u64, bool)]) -> impl Iterator<Item = (CallKey, bool)> + '_ {
            list.iter().map(|&(k, on)| (CallKey(k), on))
        }
        assert_eq!(
            picture_call(calls(&[(1, false), (2, true), (3, true)])),
            Some(CallKey(2))
        );
        assert_eq!(
            picture_call(calls(&[(1, true), (2, false)])),
            Some(CallKey(1))
        );
        assert_eq!(
            picture_call(calls(&[(4, false), (5, false)])),
            Some(CallKey(4))
        );
        assert_eq!(picture_call(calls(&[])), None);
    }

    /// Of the calls seated in a merge (call 2, camera on, failed to seat and is not among
    /// them), call 3's input becomes the host's picture: the first seated with its camera
    /// on. A later merge finds the picture taken and names none.
    #[test]
    fn the_host_picture_is_taken_from_the_calls_seated() {
        let bridge = ConferenceBridge::start(MixerConfig::default(), |_| {}).unwrap();
        let format = VideoFormat::new(160, 120, 10).unwrap();
        let mosaic = bridge.mosaic(format).unwrap();
        let input = |key: u64, on: bool| {
            let camera = CameraSwitch::new();
            camera.set(on);
            let pattern: Box<dyn VideoSource> = Box::new(TestPattern::new(format, 1).unwrap());
            (CallKey(key), camera, (mosaic.clone(), pattern))
        };
        let third = input(3, true);
        let camera = third.1.clone();
        let (key, taken) = take_host_picture(vec![input(1, false), third]).unwrap();
        assert_eq!((key, taken == camera), (CallKey(3), true));
        assert!(mosaic.has_local());
        assert!(take_host_picture(vec![input(4, true)]).is_none());
        assert!(take_host_picture(Vec::new()).is_none());
    }

    #[test]
    fn peers_are_named_by_display_name_else_by_bare_address() {
        assert_eq!(
            peer_label(Some("\"Carol\""), "sip:carol@example.org"),
            "Carol"
        );
        assert_eq!(
            peer_label(Some("  "), "sip:carol@example.org"),
            "carol@example.org"
        );
        assert_eq!(
            peer_label(None, "<sips:bob@pbx.example.org:5061;transport=tls>"),
            "bob@pbx.example.org:5061"
        );
        assert_eq!(
            peer_label(None, "sip:+4930123@gw;user=phone"),
            "+4930123@gw"
        );
    }
}
