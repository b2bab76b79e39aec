//! Hurrying a relayed setup along: `webrtc` 0.21.1's driver loop sends relayed handshake
//! packets late, and a session that may set up over a TURN server wakes it often while ICE
//! checks and DTLS shakes hands. The reasons, the costs and the rules are below.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ::webrtc::peer_connection::{PeerConnection, RTCPeerConnectionState};
use tokio::sync::watch;
use tracing::debug;

use super::session::{lock, WebRtcSession};
use super::{IceServer, WebRtcConfig};

impl WebRtcSession {
    /// Starts waking the peer connection's driver often while ICE checks and DTLS shakes
    /// hands over the relay ([`nudge_ice_checks`], [`nudge_dtls`]), when
    /// [`nudges_relayed_setup`] allows it for the configuration; once per session.
    /// Returns whether it did. Called when ICE starts checking: the offerer once the answer is
    /// applied, the answerer as soon as the offer is (its own gathering and first checks go
    /// on meanwhile), each then confirming with [`Self::keep_relay_nudges`].
    pub(super) fn start_relay_nudges(&self) -> bool {
        let mut started = lock(&self.relay_nudges);
        if started.is_some() || !nudges_relayed_setup(&self.config) || settled(*self.state.borrow())
        {
            return false;
        }
        let nudges = started.insert(Vec::new());
        if self.ice_connected.borrow().is_none() {
            nudges.push(self.spawn(nudge_ice_checks(
                Arc::clone(&self.pc),
                self.state.clone(),
                self.ice_connected.clone(),
            )));
        }
        nudges.push(self.spawn(nudge_dtls(
            Arc::clone(&self.pc),
            self.state.clone(),
            self.ice_connected.clone(),
            self.config.dtls_timeout,
        )));
        true
    }

    /// Stops the nudges unless our description `local_sdp` offers a relay candidate: without
    /// one the allocation failed, and there is no relayed path to hurry (see
    /// [`nudges_relayed_setup`]). Returns whether they go on.
    pub(super) fn keep_relay_nudges(&self, local_sdp: &str) -> bool {
        let mut started = lock(&self.relay_nudges);
        let Some(nudges) = started.as_mut() else {
            return false;
        };
        if offers_relay_candidate(local_sdp) {
            return !nudges.is_empty();
        }
        for nudge in nudges.drain(..) {
            nudge.abort();
        }
        false
    }
}

/// How often [`nudge_ice_checks`] and [`nudge_dtls`] wake the peer connection's driver.
pub(crate) const RELAY_NUDGE_INTERVAL: Duration = Duration::from_millis(5);

/// How long [`nudge_ice_checks`] nudges at most: ICE over a relay connects well within it
/// (a relay pair beside host pairs waits 2 s before it is nominated).
pub(crate) const ICE_NUDGE_WINDOW: Duration = Duration::from_secs(3);

// A session that may carry its media through a TURN server wakes its peer connection's
// driver often while it connects: `webrtc` 0.21.1's driver loop (`peer_connection/driver.rs`)
// sends a relayed packet that the core wrote after the loop had drained the TURN relayer's
// queue, and hands the core what the relayer decapsulated after it collected the core's
// writes, only on its next wake-up. While ICE checks, its check timer wakes the loop every
// few tens of milliseconds; once ICE is connected and until media flows, the next wake-up is a
// timer some hundreds of milliseconds away, and each DTLS flight over a relay waits for two
// of them (a relayed call's first frame came ~1.6 s after the INVITE on loopback, ~0.19 s
// with DTLS nudged, ~0.13 s with the ICE checks nudged as well, the answerer's from the
// moment it applies the offer). An application request wakes the loop: setting the
// configuration it already has is the one with the least effect. The core keeps identical
// values; the driver keeps the ICE servers and policy as pending until the next ICE
// gathering (any later local description: a hold, a re-offer), where its TURN relayer
// compares them with its own. If every allocation it holds is established it only
// refreshes them; otherwise (an allocation failed, or none was made) it tears all of them
// down and allocates anew. So a session is nudged only when it has a single allocation
// ([`nudges_relayed_setup`]), and the nudges stop when its description offers no relay
// candidate ([`offers_relay_candidate`]): the allocation failed, and the next local
// description makes one more attempt at it, which is all the pending configuration costs.
//
// What nudging cannot shorten: in about a third of relayed setups the first frame comes
// ~180 ms later (~310 ms instead of ~130 ms after the INVITE), because the DTLS client's
// ClientHello leaves ~200 ms after it was made. `rtc` 0.21.1 starts the client handshake
// when ICE selects a pair (`DtlsHandler::handle_event`, `ICESelectedCandidatePairChange` →
// `dtls_endpoint.connect`) but, unlike its read, write and timeout paths, does not move the
// endpoint's transmits to its write queue there; they go out at the core's next
// `handle_timeout`. That is the ICE agent's tick, `last_checking_time` plus an interval that
// is the check interval (20 ms, see `peer.rs`) while the agent last counted itself as
// checking and the library's 200 ms once it counted itself as connected (`rtc-ice` 0.21.1,
// `agent_proto.rs` `poll_timeout`, `mod.rs` `get_timeout_interval`): whether the selection
// happened inside the agent's own tick decides which. A nudge wakes the driver, which drains
// the core's write queue, but the driver calls `handle_timeout` only when a deadline is due,
// and the interceptors' deadlines (where a timer of ours could sit) are polled only once DTLS
// is up. Direct calls were not seen to wait (16 of 16 first frames within 32–46 ms). The fix
// belongs in `rtc`: drain `poll_transmit` after `connect` as the other paths do.

/// Whether a session with `config` may have its relayed setup nudged: its configuration
/// gives the driver exactly one TURN allocation to make (one TURN URL over UDP, one local
/// address that is not a wildcard; the driver allocates once per URL and local address, on
/// the first address the server's name resolves to).
pub(crate) fn nudges_relayed_setup(config: &WebRtcConfig) -> bool {
    let allocations: usize = config
        .ice_servers
        .iter()
        .map(IceServer::udp_turn_urls)
        .sum();
    let one_address = matches!(config.udp_addrs.as_slice(), [addr] if !addr.ip().is_unspecified());
    allocations == 1 && one_address
}

/// Whether the description `sdp` offers a relay candidate.
pub(crate) fn offers_relay_candidate(sdp: &str) -> bool {
    sdp.lines()
        .any(|line| line.starts_with("a=candidate:") && line.contains(" typ relay"))
}

/// Nudges the driver while ICE checks: from now until ICE is connected (or the connection
/// settled), at most [`ICE_NUDGE_WINDOW`]. Started when both descriptions are set; a callee
/// that answered the offer while its call rings nudges only the first seconds of the
/// ringing, and its DTLS is still nudged by [`nudge_dtls`] once ICE connects.
pub(crate) async fn nudge_ice_checks(
    pc: Arc<dyn PeerConnection>,
    mut state: watch::Receiver<RTCPeerConnectionState>,
    mut ice_connected: watch::Receiver<Option<Instant>>,
) {
    let until_connected =
        move || settled(*state.borrow_and_update()) || ice_connected.borrow_and_update().is_some();
    let _ = tokio::time::timeout(ICE_NUDGE_WINDOW, nudge_until(pc, until_connected)).await;
}

/// Waits until ICE is connected, then nudges the driver until the connection is up (or
/// failed, or closed), at most `limit` (the DTLS handshake's bound). Started with
/// [`nudge_ice_checks`]; nothing is nudged before ICE connects.
pub(crate) async fn nudge_dtls(
    pc: Arc<dyn PeerConnection>,
    mut state: watch::Receiver<RTCPeerConnectionState>,
    mut ice_connected: watch::Receiver<Option<Instant>>,
    limit: Duration,
) {
    loop {
        if settled(*state.borrow_and_update()) {
            return;
        }
        if ice_connected.borrow_and_update().is_some() {
            break;
        }
        let changed = tokio::select! {
            changed = state.changed() => changed,
            changed = ice_connected.changed() => changed,
        };
        if changed.is_err() {
            return;
        }
    }
    let until_settled = move || settled(*state.borrow_and_update());
    let _ = tokio::time::timeout(limit, nudge_until(pc, until_settled)).await;
}

/// Wakes the driver every [`RELAY_NUDGE_INTERVAL`] until `done`.
async fn nudge_until(pc: Arc<dyn PeerConnection>, mut done: impl FnMut() -> bool) {
    let mut interval = tokio::time::interval(RELAY_NUDGE_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if done() {
            return;
        }
        let configuration = pc.get_configuration().await;
        if let Err(e) = pc.set_configuration(configuration).await {
            debug!(error = %e, "relayed set-up: the driver could not be woken");
            return;
        }
    }
}

/// Whether a connection in `state` is past setting up.
pub(crate) fn settled(state: RTCPeerConnectionState) -> bool {
    matches!(
        state,
        RTCPeerConnectionState::Connected
            | RTCPeerConnectionState::Failed
            | RTCPeerConnectionState::Closed
    )
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use tokio::task::{AbortHandle, JoinHandle};

    use super::*;
    use crate::audio::{AudioFormat, NullSink, SilenceSource};
    use crate::webrtc::WebRtcMedia;

    fn media() -> WebRtcMedia {
        WebRtcMedia {
            audio_source: Box::new(SilenceSource::new(AudioFormat::MONO_48K)),
            audio_sink: Box::new(NullSink::new(AudioFormat::MONO_48K)),
            video: None,
        }
    }

    fn with_servers(urls: &[&str]) -> WebRtcConfig {
        WebRtcConfig {
            ice_servers: urls
                .iter()
                .map(|url| IceServer {
                    urls: vec![(*url).to_owned()],
                    username: "user".into(),
                    credential: "secret".into(),
                })
                .collect(),
            ..WebRtcConfig::loopback()
        }
    }

    async fn turn_session() -> WebRtcSession {
        let config = with_servers(&["turn:127.0.0.1:3478?transport=udp"]);
        WebRtcSession::new(config, media()).await.expect("session")
    }

    /// Spawns `task` and checks that it is still running a while later.
    async fn spawn_running(task: impl Future<Output = ()> + Send + 'static) -> JoinHandle<()> {
        let handle = tokio::spawn(task);
        tokio::time::sleep(RELAY_NUDGE_INTERVAL * 20).await;
        assert!(!handle.is_finished(), "the task ended early");
        handle
    }

    async fn ends_soon(handle: JoinHandle<()>, what: &str) {
        tokio::time::timeout(Duration::from_secs(5), handle)
            .await
            .unwrap_or_else(|_| panic!("{what}"))
            .expect("nudge task");
    }

    const RELAYED: &str = "v=0\r\na=candidate:1 1 udp 16777215 127.0.0.1 49160 typ relay \
        raddr 127.0.0.1 rport 40000\r\n";
    const DIRECT: &str = "v=0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n";

    #[test]
    fn only_a_single_allocation_is_nudged() {
        let turn = "turn:127.0.0.1:3478?transport=udp";
        assert!(nudges_relayed_setup(&with_servers(&[turn])));
        assert!(nudges_relayed_setup(&with_servers(&[
            "turn:turn.example.org"
        ])));
        // No TURN server, or one webrtc does not allocate on.
        for urls in [
            &[][..],
            &["stun:127.0.0.1:3478"][..],
            &["turns:127.0.0.1:5349"][..],
            &["turn:127.0.0.1:3478?transport=tcp"][..],
        ] {
            assert!(!nudges_relayed_setup(&with_servers(urls)), "{urls:?}");
        }
        // Several allocations, any of which may fail while another holds the call.
        assert!(!nudges_relayed_setup(&with_servers(&[
            turn,
            "turn:127.0.0.2:3478"
        ])));
        let mut two_addresses = with_servers(&[turn]);
        two_addresses
            .udp_addrs
            .push("127.0.0.2:0".parse().expect("address"));
        assert!(!nudges_relayed_setup(&two_addresses));
        let mut wildcard = with_servers(&[turn]);
        wildcard.udp_addrs = vec!["0.0.0.0:0".parse().expect("address")];
        assert!(!nudges_relayed_setup(&wildcard));
    }

    #[test]
    fn relay_candidates_are_found_in_a_description() {
        assert!(offers_relay_candidate(RELAYED));
        assert!(!offers_relay_candidate(DIRECT));
        assert!(!offers_relay_candidate(""));
        assert!(!offers_relay_candidate(
            "a=candidate:1 1 udp 1 127.0.0.1 9 typ srflx\r\n"
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_session_nudges_once_and_stops_without_a_relay_candidate() {
        let plain = WebRtcSession::new(WebRtcConfig::loopback(), media())
            .await
            .expect("session");
        assert!(!plain.start_relay_nudges(), "no TURN server");
        plain.close().await;
        let session = turn_session().await;
        let before = lock(&session.tasks).len();
        assert!(session.start_relay_nudges());
        assert_eq!(
            lock(&session.tasks).len(),
            before + 2,
            "ICE and DTLS nudges"
        );
        assert!(!session.start_relay_nudges(), "nudged again");
        assert_eq!(lock(&session.tasks).len(), before + 2);
        assert!(session.keep_relay_nudges(RELAYED));
        let nudges = lock(&session.relay_nudges).clone().unwrap_or_default();
        assert!(nudges.iter().all(|nudge| !nudge.is_finished()));
        assert!(!session.keep_relay_nudges(DIRECT));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !nudges.iter().all(AbortHandle::is_finished) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "nudges left running"
            );
            tokio::time::sleep(RELAY_NUDGE_INTERVAL).await;
        }
        session.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_dtls_nudge_starts_with_ice_and_ends_when_the_connection_settles() {
        let session = turn_session().await;
        for settled in [
            RTCPeerConnectionState::Connected,
            RTCPeerConnectionState::Failed,
            RTCPeerConnectionState::Closed,
        ] {
            let (state, watched) = watch::channel(RTCPeerConnectionState::Connecting);
            let (ice, ice_watched) = watch::channel(None);
            let pc = Arc::clone(&session.pc);
            let limit = Duration::from_secs(60);
            let nudge = spawn_running(nudge_dtls(pc, watched, ice_watched, limit)).await;
            ice.send_replace(Some(Instant::now()));
            tokio::time::sleep(RELAY_NUDGE_INTERVAL * 20).await;
            assert!(!nudge.is_finished(), "the nudge stopped before {settled}");
            state.send_replace(settled);
            ends_soon(nudge, &format!("the nudge went on after {settled}")).await;
        }
        session.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_dtls_nudge_gives_up_at_its_limit_or_without_ice() {
        let session = turn_session().await;
        let (state, watched) = watch::channel(RTCPeerConnectionState::Connecting);
        let (_ice, ice_watched) = watch::channel(Some(Instant::now()));
        let limit = RELAY_NUDGE_INTERVAL * 10;
        let pc = Arc::clone(&session.pc);
        let nudge = tokio::spawn(nudge_dtls(pc, watched.clone(), ice_watched, limit));
        ends_soon(nudge, "the nudge outlived its limit").await;
        // A connection that settles before ICE connects is never nudged.
        let (_ice, ice_watched) = watch::channel(None);
        let pc = Arc::clone(&session.pc);
        let limit = Duration::from_secs(60);
        let nudge = spawn_running(nudge_dtls(pc, watched, ice_watched, limit)).await;
        state.send_replace(RTCPeerConnectionState::Failed);
        ends_soon(nudge, "the nudge waited on after a failure").await;
        session.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_ice_nudge_ends_when_ice_connects_or_after_its_window() {
        let session = turn_session().await;
        let (_state, watched) = watch::channel(RTCPeerConnectionState::Connecting);
        let (ice, ice_watched) = watch::channel(None);
        let pc = Arc::clone(&session.pc);
        let nudge = spawn_running(nudge_ice_checks(pc, watched.clone(), ice_watched)).await;
        ice.send_replace(Some(Instant::now()));
        ends_soon(nudge, "the ICE nudge went on after ICE connected").await;
        let (_ice, ice_watched) = watch::channel(None);
        let started = Instant::now();
        let pc = Arc::clone(&session.pc);
        let nudge = tokio::spawn(nudge_ice_checks(pc, watched, ice_watched));
        tokio::time::timeout(ICE_NUDGE_WINDOW * 2, nudge)
            .await
            .expect("the ICE nudge outlived its window")
            .expect("nudge task");
        assert!(started.elapsed() >= ICE_NUDGE_WINDOW);
        session.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_nudge_is_a_configuration_request_and_stops_once_the_connection_is_closed() {
        // A closed peer connection refuses the request that wakes its driver: a nudge that
        // makes it ends at once, long before its limit.
        let session = turn_session().await;
        session.pc.close().await.expect("close");
        let (_state, watched) = watch::channel(RTCPeerConnectionState::Connecting);
        let (_ice, ice_watched) = watch::channel(Some(Instant::now()));
        let pc = Arc::clone(&session.pc);
        let limit = Duration::from_secs(60);
        let nudge = tokio::spawn(nudge_dtls(pc, watched.clone(), ice_watched, limit));
        ends_soon(nudge, "the nudge never asked the closed connection").await;
        // Before ICE connects the DTLS nudge asks nothing, so it does not end that way.
        let (ice, ice_watched) = watch::channel(None);
        let pc = Arc::clone(&session.pc);
        let nudge = spawn_running(nudge_dtls(pc, watched, ice_watched, limit)).await;
        ice.send_replace(Some(Instant::now()));
        ends_soon(nudge, "the nudge never asked once ICE connected").await;
        session.close().await;
    }
}
