//! Merging calls into a conference this app hosts ("merge calls" in a softphone): each
//! established call's audio ends are swapped, while it runs, for a seat at one
//! [`ConferenceBridge`]; the ends of the first merged call (the microphone and speakers, or
//! the input and recording) become the bridge's local participant, the host. Held calls are
//! resumed. The bridge goes when the last merged call has ended.

use std::time::Instant;

use callisto_media::audio::{AudioSink, MutableSource};
use callisto_media::conference::{BridgeEvent, ConferenceBridge, MixerConfig};
use callisto_signaling::endpoint::Endpoint;
use tokio::sync::mpsc;

use super::media::{CallMediaEvent, ConferenceSeat};
use super::{CallKey, CallUpdate, Calls};
use crate::engine::EngineEvent;

impl Calls {
    /// Puts the established calls among `keys` into the conference (started when there is
    /// none). Each merged call reports [`CallUpdate::Merged`].
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
            if host_seated {
                let _ = old_sink.finish();
            } else if let Err(error) = bridge.set_local("host", old_source, old_sink) {
                tracing::warn!(%error, "the host's audio cannot take part");
            } else {
                host_seated = true;
            }
            call.media.options.conference = Some(ConferenceSeat {
                bridge: bridge.clone(),
                label: call.peer.clone(),
            });
            let held = call.local_hold;
            let _ = events.send(EngineEvent::Call {
                key,
                update: CallUpdate::Merged,
            });
            if held {
                self.set_hold(endpoint, now, key, false);
            }
        }
        self.conference = Some(bridge);
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

    /// Lets the conference go once no call is in it.
    pub(super) fn forget_empty_conference(&mut self) {
        if self.conference.is_some()
            && !self
                .calls
                .values()
                .any(|c| c.media.options.conference.is_some())
        {
            if let Some(bridge) = self.conference.take() {
                bridge.stop();
            }
        }
    }
}
