use std::time::{Duration, Instant, SystemTime};

use callisto_signaling::call::FailureCause;
use callisto_signaling::registration::{FailureKind, RegistrationEvent};

use super::*;
use crate::engine::{CallFailure, CallSummary, MediaProfile};

fn call_event(key: u64, update: CallUpdate) -> EngineEvent {
    EngineEvent::Call {
        key: CallKey(key),
        update,
    }
}

fn incoming(key: u64) -> EngineEvent {
    call_event(
        key,
        CallUpdate::Incoming {
            from: "sip:bob@example.org".into(),
            display_name: Some("Bob".into()),
            to: "sip:alice@example.org".into(),
        },
    )
}

fn answered() -> CallUpdate {
    CallUpdate::Answered {
        codec: "opus".into(),
        srtp: true,
        path: MediaProfile::Classic,
        video: false,
    }
}

fn ended() -> CallUpdate {
    CallUpdate::Ended {
        by_remote: true,
        reason: "the other side hung up".into(),
        summary: Box::new(CallSummary::default()),
    }
}

#[test]
fn registration_events_become_words_with_the_servers_reason() {
    let mut model = ViewModel::new();
    let (now, wall) = (Instant::now(), SystemTime::now());
    model.account_added(
        0,
        "work",
        "sip:alice@example.org",
        AccountState::Registering,
    );
    assert_eq!(model.snapshot(now).accounts[0].state, "Registering");
    model.apply(
        &EngineEvent::Registration {
            account: 0,
            event: RegistrationEvent::Registered {
                expires: 600,
                contact: String::new(),
            },
        },
        now,
        wall,
    );
    let row = &model.snapshot(now).accounts[0];
    assert_eq!(
        (row.state.as_str(), row.detail.as_str(), row.tone),
        ("Registered", "for 10 min", 1)
    );
    model.apply(
        &EngineEvent::Registration {
            account: 0,
            event: RegistrationEvent::Failed {
                kind: FailureKind::AuthenticationFailed,
                code: Some(401),
                reason: "Unauthorized".into(),
                retry_in: None,
            },
        },
        now,
        wall,
    );
    let row = &model.snapshot(now).accounts[0];
    assert_eq!(row.state, "Failed");
    assert_eq!(row.detail, "wrong user name or password (401 Unauthorized)");
    assert_eq!(row.tone, 2);
    model.apply(
        &EngineEvent::Registration {
            account: 0,
            event: RegistrationEvent::Failed {
                kind: FailureKind::Unreachable,
                code: None,
                reason: String::new(),
                retry_in: Some(Duration::from_secs(30)),
            },
        },
        now,
        wall,
    );
    let row = &model.snapshot(now).accounts[0];
    assert_eq!(row.state, "Retrying");
    assert_eq!(row.detail, "the server does not answer; again in 30 s");
}

#[test]
fn an_incoming_call_rings_then_runs_a_timer_then_lands_in_the_history() {
    let mut model = ViewModel::new();
    let (t0, wall) = (Instant::now(), SystemTime::now());
    model.apply(&incoming(7), t0, wall);
    let snapshot = model.snapshot(t0);
    assert_eq!(
        snapshot.ringing,
        Some((7, "Bob".to_string(), "sip:bob@example.org".to_string()))
    );
    assert_eq!(
        snapshot.current, None,
        "a ringing call is not shown as the current call"
    );
    assert_eq!(model.ringing(), snapshot.ringing);
    model.apply(
        &call_event(7, answered()),
        t0 + Duration::from_secs(2),
        wall,
    );
    assert_eq!(model.ringing(), None, "answered: the ringtone stops");
    let snapshot = model.snapshot(t0 + Duration::from_secs(65));
    assert_eq!(snapshot.ringing, None);
    assert_eq!(snapshot.current, Some(0));
    let row = &snapshot.calls[0];
    assert_eq!(
        (row.state.as_str(), row.timer.as_str()),
        ("Connected", "1:03")
    );
    assert!(row.secure);
    let finished = model
        .apply(&call_event(7, ended()), t0 + Duration::from_secs(92), wall)
        .expect("a finished call");
    assert_eq!(finished.direction, Direction::Incoming);
    assert_eq!(finished.duration, Some(Duration::from_secs(90)));
    assert!(model.calls().is_empty());
}

#[test]
fn an_unanswered_incoming_call_is_missed_unless_declined() {
    let mut model = ViewModel::new();
    let (now, wall) = (Instant::now(), SystemTime::now());
    model.apply(&incoming(1), now, wall);
    let missed = model.apply(&call_event(1, ended()), now, wall).unwrap();
    assert_eq!(missed.direction, Direction::Missed);
    assert_eq!(missed.duration, None);
    model.apply(&incoming(2), now, wall);
    model.declined(CallKey(2));
    let declined = model.apply(&call_event(2, ended()), now, wall).unwrap();
    assert_eq!(declined.direction, Direction::Incoming);
}

#[test]
fn a_failed_outgoing_call_keeps_the_code_and_reason() {
    let mut model = ViewModel::new();
    let (now, wall) = (Instant::now(), SystemTime::now());
    model.dialing(CallKey(3), "sip:carol@example.org", true, now, wall);
    assert_eq!(model.snapshot(now).current, Some(0));
    assert_eq!(model.snapshot(now).calls[0].state, "Calling");
    model.apply(
        &call_event(3, CallUpdate::Ringing { early_media: false }),
        now,
        wall,
    );
    assert_eq!(model.snapshot(now).calls[0].state, "Ringing");
    let failed = model
        .apply(
            &call_event(
                3,
                CallUpdate::Failed {
                    code: Some(486),
                    reason: "Busy Here".into(),
                    cause: CallFailure::Remote(FailureCause::Busy),
                    warning: None,
                },
            ),
            now,
            wall,
        )
        .unwrap();
    assert_eq!(failed.direction, Direction::Outgoing);
    assert_eq!(failed.reason, "486 Busy Here");
    // A refusal that said why keeps its words.
    model.dialing(CallKey(4), "sip:desk@example.org", false, now, wall);
    let failed = model
        .apply(
            &call_event(
                4,
                CallUpdate::Failed {
                    code: Some(488),
                    reason: "Not Acceptable Here".into(),
                    cause: CallFailure::Remote(FailureCause::NotAcceptable),
                    warning: Some("no codec in common".into()),
                },
            ),
            now,
            wall,
        )
        .unwrap();
    assert_eq!(failed.reason, "488 Not Acceptable Here: no codec in common");
}

#[test]
fn the_current_call_is_the_active_one_not_the_held_one() {
    let mut model = ViewModel::new();
    let (now, wall) = (Instant::now(), SystemTime::now());
    model.apply(&incoming(1), now, wall);
    model.apply(&call_event(1, answered()), now, wall);
    model.apply(&incoming(2), now, wall);
    assert_eq!(model.snapshot(now).ringing.map(|r| r.0), Some(2));
    model.apply(
        &call_event(1, CallUpdate::Held { by_remote: false }),
        now,
        wall,
    );
    model.apply(&call_event(2, answered()), now, wall);
    let snapshot = model.snapshot(now);
    assert_eq!(snapshot.current, Some(1));
    assert_eq!(snapshot.calls[0].state, "On hold");
    model.apply(&call_event(2, ended()), now, wall);
    let snapshot = model.snapshot(now);
    assert_eq!(
        snapshot.current,
        Some(0),
        "the held call is still shown once alone"
    );
}

#[test]
fn a_refused_hold_leaves_the_call_as_it_was_and_says_why() {
    let mut model = ViewModel::new();
    let (now, wall) = (Instant::now(), SystemTime::now());
    model.apply(&incoming(1), now, wall);
    model.apply(&call_event(1, answered()), now, wall);
    let refused = CallUpdate::ChangeRefused {
        code: 488,
        warning: Some("no codec in common".into()),
    };
    model.apply(&call_event(1, refused), now, wall);
    let snapshot = model.snapshot(now);
    assert_eq!(snapshot.calls[0].state, "Connected");
    assert_eq!(
        snapshot.calls[0].note,
        "the other side refused the change (488: no codec in common)"
    );
    let refused = CallUpdate::ChangeRefused {
        code: 403,
        warning: None,
    };
    model.apply(&call_event(1, refused), now, wall);
    assert_eq!(
        model.snapshot(now).calls[0].note,
        "the other side refused the change (403)"
    );
}

#[test]
fn live_statistics_fill_the_panel_and_the_graph() {
    use crate::engine::AudioSummary;
    let mut model = ViewModel::new();
    let (now, wall) = (Instant::now(), SystemTime::now());
    model.apply(&incoming(5), now, wall);
    model.apply(&call_event(5, answered()), now, wall);
    assert!(model.snapshot(now).stats.is_empty(), "nothing measured yet");
    let mut bitrate_at_first = None;
    for second in 0..70u64 {
        let summary = CallSummary {
            duration: Duration::from_secs(second),
            audio: Some(AudioSummary {
                codec: "opus".into(),
                srtp: true,
                tx_packets: 50 * second,
                rx_packets: 99,
                lost: 1,
                jitter_ms: second as f64,
                rtt_ms: Some(24.0),
                discarded: 0,
                concealed_frames: 0,
                // 32 kbit/s out (4000 bytes a second), 16 kbit/s in.
                tx_bytes: 4_000 * second,
                rx_bytes: 2_000 * second,
            }),
            ..CallSummary::default()
        };
        model.apply(
            &call_event(5, CallUpdate::Statistics(Box::new(summary))),
            now,
            wall,
        );
        if second == 0 {
            bitrate_at_first = model
                .snapshot(now)
                .stats
                .into_iter()
                .find(|(label, _)| label == "Audio in/out");
        }
    }
    assert_eq!(
        bitrate_at_first,
        Some(("Audio in/out".to_string(), "measuring".to_string())),
        "one reading is no rate"
    );
    let snapshot = model.snapshot(now);
    let value = |label: &str| {
        snapshot
            .stats
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {label} in {:?}", snapshot.stats))
    };
    assert_eq!(value("Audio"), "opus, SRTP");
    assert_eq!(value("Audio in/out"), "16 / 32 kbit/s");
    assert_eq!(value("Packet loss"), "1.0 %");
    assert_eq!(value("Round trip"), "24 ms");
    assert_eq!(value("Jitter"), "69.0 ms");
    assert_eq!(value("Path"), "direct RTP");
    // 1 % loss with Opus and about 170 ms mouth to ear: a good call, below the ideal 4.4.
    let mos: f64 = value("MOS (estimated)").parse().unwrap();
    assert!((3.5..4.4).contains(&mos), "{mos}");
    assert_eq!(snapshot.graph.len(), 60, "one minute, one level a second");
    assert_eq!(snapshot.graph[59], 1.0, "the newest is the highest");
    assert!(
        (snapshot.graph[0] - 10.0 / 69.0).abs() < 1e-6,
        "the oldest kept is second 10: {:?}",
        &snapshot.graph[..3]
    );
    assert!(snapshot.graph_caption.contains("jitter"));

    // A video call adds its stream's rows: what we decode, at what rate, the bitrates, and
    // the losses and NACKs.
    let video = crate::engine::VideoSummary {
        codec: "H264".into(),
        send_resolution: (640, 480),
        receive_resolution: Some((1280, 720)),
        frames_sent: 900,
        frames_decoded: 870,
        fps: 29.4,
        send_kbps: 812.4,
        receive_kbps: 1_020.6,
        keyframe_requests_sent: 1,
        keyframe_requests_received: 2,
        lost: 7,
        nacked: 3,
        payloads_refused: 0,
        first_frame: Some(Duration::from_millis(40)),
        streams: Vec::new(),
    };
    let summary = CallSummary {
        duration: Duration::from_secs(71),
        video: Some(video),
        ..CallSummary::default()
    };
    model.apply(
        &call_event(5, CallUpdate::Statistics(Box::new(summary))),
        now,
        wall,
    );
    let rows = model.snapshot(now).stats;
    let value = |label: &str| {
        rows.iter()
            .find(|(l, _)| l == label)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(value("Video"), Some("H264 1280x720 at 29 fps"), "{rows:?}");
    assert_eq!(value("Video in/out"), Some("1021 / 812 kbit/s"));
    assert_eq!(value("Video lost/NACKed"), Some("7 / 3"));
}

#[test]
fn merged_calls_show_one_tile_each_and_merge_is_offered_only_when_it_does_something() {
    let mut model = ViewModel::new();
    let (now, wall) = (Instant::now(), SystemTime::now());
    let controls = [CallControls::default(), CallControls::default()];
    for (key, controls) in [1u64, 2].into_iter().zip(&controls) {
        model.apply(&incoming(key), now, wall);
        model.apply(
            &call_event(key, CallUpdate::Controls(controls.clone())),
            now,
            wall,
        );
    }
    assert!(!model.can_merge(), "nothing is up yet");
    model.apply(&call_event(1, answered()), now, wall);
    assert!(!model.can_merge(), "one call is no conference");
    model.apply(
        &call_event(1, CallUpdate::Held { by_remote: false }),
        now,
        wall,
    );
    model.apply(&call_event(2, answered()), now, wall);
    assert!(model.snapshot(now).can_merge);
    assert_eq!(model.connected_keys(), vec![CallKey(1), CallKey(2)]);
    let shown = model.shown_videos();
    assert_eq!(shown.len(), 1, "a call shows its own picture");
    assert_eq!(shown[0].0, controls[1]);

    for key in [1, 2] {
        model.apply(&call_event(key, CallUpdate::Merged), now, wall);
    }
    model.apply(
        &call_event(1, CallUpdate::Resumed { by_remote: false }),
        now,
        wall,
    );
    let snapshot = model.snapshot(now);
    assert!(!snapshot.can_merge, "all of them are in the conference");
    assert!(snapshot.calls.iter().all(|c| c.in_conference));
    let shown = model.shown_videos();
    assert_eq!(
        shown
            .iter()
            .map(|(c, n)| (c.clone(), n.as_str()))
            .collect::<Vec<_>>(),
        vec![(controls[0].clone(), "Bob"), (controls[1].clone(), "Bob")],
        "one tile per participant, in the order they came"
    );
    model.apply(&call_event(1, ended()), now, wall);
    assert_eq!(model.shown_videos().len(), 1, "the one left");
}

/// Three calls merged into the conference we host; the first one's input became the host's
/// picture (its self-view and camera switch go with it).
#[test]
fn the_conference_camera_and_self_view_are_the_host_pictures_and_outlive_its_call() {
    let mut model = ViewModel::new();
    let (now, wall) = (Instant::now(), SystemTime::now());
    let controls = [
        CallControls::default(),
        CallControls::default(),
        CallControls::default(),
    ];
    for (key, controls) in [1u64, 2, 3].into_iter().zip(&controls) {
        model.apply(&incoming(key), now, wall);
        model.apply(
            &call_event(key, CallUpdate::Controls(controls.clone())),
            now,
            wall,
        );
        model.apply(&call_event(key, answered()), now, wall);
    }
    // The third was answered without video: its camera switch is off.
    controls[2].camera.set(false);
    for key in [1, 2, 3] {
        model.apply(&call_event(key, CallUpdate::Merged), now, wall);
    }
    // Until the engine says whose input is the host's picture: the first merged call's.
    assert_eq!(model.self_view(), Some(controls[0].local_video.clone()));
    // The camera switched before then switches every merged call's input, the picture's
    // among them.
    assert!(model.camera(CallKey(2), false));
    assert!(controls.iter().all(|c| !c.camera.is_on()));
    assert!(model.camera(CallKey(3), true));
    assert!(controls.iter().all(|c| c.camera.is_on()));
    model.apply(&call_event(1, CallUpdate::HostsPicture), now, wall);
    let camera = |model: &ViewModel| {
        model
            .snapshot(now)
            .calls
            .iter()
            .map(|c| c.camera_on)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        camera(&model),
        [true, true, true],
        "the host's camera is on"
    );
    // The camera switched in the conference's view (the newest call is shown) is the
    // host's picture's; the call's own switch is not touched.
    assert!(model.camera(CallKey(3), false));
    assert!(!controls[0].camera.is_on(), "the host's picture is black");
    assert!(controls[1].camera.is_on());
    assert_eq!(camera(&model), [false, false, false]);
    assert_eq!(model.self_view(), Some(controls[0].local_video.clone()));

    // The call whose input is the picture ends; the picture, its self-view and its switch
    // stay the conference's.
    model.apply(&call_event(1, ended()), now, wall);
    assert_eq!(model.self_view(), Some(controls[0].local_video.clone()));
    assert!(model.camera(CallKey(2), true));
    assert!(controls[0].camera.is_on());

    // Over when its last merged call ends: a new call has its own.
    model.apply(&call_event(2, ended()), now, wall);
    model.apply(&call_event(3, ended()), now, wall);
    let fourth = CallControls::default();
    model.apply(&incoming(4), now, wall);
    model.apply(
        &call_event(4, CallUpdate::Controls(fourth.clone())),
        now,
        wall,
    );
    model.apply(&call_event(4, answered()), now, wall);
    assert_eq!(model.self_view(), Some(fourth.local_video.clone()));
    model.camera(CallKey(4), false);
    assert!(!fourth.camera.is_on());
    assert!(controls[0].camera.is_on(), "another call's switch");
}

#[test]
fn a_call_into_someone_elses_conference_names_its_people_on_the_tile() {
    use callisto_signaling::conference_info::{ConferenceInfo, ConferenceUser};
    let mut model = ViewModel::new();
    let (now, wall) = (Instant::now(), SystemTime::now());
    model.apply(&incoming(1), now, wall);
    model.apply(
        &call_event(1, CallUpdate::Controls(CallControls::default())),
        now,
        wall,
    );
    model.apply(&call_event(1, answered()), now, wall);
    let person = |entity: &str, display: Option<&str>| ConferenceUser {
        entity: entity.into(),
        display: display.map(Into::into),
        ..ConferenceUser::default()
    };
    let info = ConferenceInfo {
        entity: "sip:bob@example.org".into(),
        subject: None,
        users: vec![
            person("sip:bob@example.org", Some("Bob")),
            person("sip:alice@example.org", None),
            person("sip:carol@example.org", Some("Carol")),
        ],
    };
    model.apply(
        &call_event(1, CallUpdate::Roster { info: Some(info) }),
        now,
        wall,
    );
    let title = "Bob — conference: Bob, alice, Carol";
    assert_eq!(model.shown_videos()[0].1, title);
    assert_eq!(model.snapshot(now).calls[0].remote, title);
    // The roster is no longer sent: the call is Bob's again.
    model.apply(&call_event(1, CallUpdate::Roster { info: None }), now, wall);
    assert_eq!(model.shown_videos()[0].1, "Bob");
}
