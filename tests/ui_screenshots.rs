//! Screenshots of the window's main views, rendered headless under Xvfb with Slint's software
//! renderer, written to `target/screenshots/` and checked to show something: first run,
//! registered and idle, an incoming call, a call with two video tiles and the self-view, the
//! statistics panel, a call whose peer sends three video streams (fed through the call's
//! frame slots, one stream arriving after the call is shown: a named tile each), the
//! settings.
//!
//! One test per binary: Slint's platform is chosen once per process.

mod support;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use callisto::app::{ContactRow, HistoryRow, Screen, SettingsForm, SettingsScreen, Snapshot};
use callisto::engine::CallControls;
use callisto_media::video::{FrameSlot, TestPattern, VideoFormat, VideoSource};
use callisto_ui::video_image::frame_image;
use callisto_ui::{apply, CallAdapter, MainWindow, Nav, Page, SettingsAdapter, TileRow};
use slint::{ComponentHandle, Model, ModelRc, VecModel};
use support::ui_rows::{connected_call, registered};
use support::xvfb::Xvfb;

/// Where `make test` leaves the screenshots (the README names it).
fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("screenshots")
}

fn history() -> Vec<HistoryRow> {
    let row = |direction: &str, remote: &str, name: &str, when: &str, duration: &str| HistoryRow {
        direction: direction.into(),
        remote: remote.into(),
        name: name.into(),
        when: when.into(),
        duration: duration.into(),
    };
    vec![
        row("out", "sip:bob@example.org", "Bob", "09:12", "4 min"),
        row("missed", "sip:carol@example.org", "", "08:40", ""),
        row(
            "in",
            "sip:+4930123@example.org",
            "Front desk",
            "Thu 19 Nov 16:02",
            "12 min",
        ),
    ]
}

fn contacts() -> Vec<ContactRow> {
    let row = |id: i64, name: &str, addresses: &[&str], favourite: bool| ContactRow {
        id,
        name: name.into(),
        addresses: addresses.join(", "),
        address_list: addresses.iter().map(|a| a.to_string()).collect(),
        favourite,
    };
    vec![
        row(1, "Bob", &["sip:bob@example.org", "+49 30 1234"], true),
        row(2, "Front desk", &["sip:+4930123@example.org"], false),
    ]
}

fn pattern_tile(name: &str, identity: u16) -> TileRow {
    let format = VideoFormat::new(640, 480, 30).expect("a format");
    let mut pattern = TestPattern::new(format, identity).expect("a pattern");
    let frame = pattern.next_frame().expect("a frame").expect("a frame");
    TileRow {
        name: name.into(),
        frame: frame_image(&frame),
        has_video: true,
    }
}

/// The streams of the multistream call: who, and the picture size that tells their tiles
/// apart.
const STREAMS: [(&str, u32, u32); 3] =
    [("bob", 320, 240), ("carol", 352, 288), ("alice", 176, 144)];

/// Shows a call whose peer sends bob's, carol's and (a moment later) alice's stream: bob's
/// is the call's own, the others its further streams. A thread feeds each slot its own
/// picture size for a while, as the media threads would.
fn show_streams(window: &MainWindow, screen: &Screen) {
    let controls = CallControls::default();
    controls.more_video.name_first(STREAMS[0].0);
    let carol = controls.more_video.add(STREAMS[1].0).slot().clone();
    let mut screen = screen.clone();
    screen.video = vec![(controls.clone(), "Conference".to_string())];
    apply(window, &screen);
    std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let mut slots: Vec<(FrameSlot, TestPattern)> = Vec::new();
        let pattern = |(_, width, height): (&str, u32, u32)| {
            TestPattern::new(VideoFormat::new(width, height, 30).expect("a format"), 1)
                .expect("a pattern")
        };
        slots.push((controls.remote_video.clone(), pattern(STREAMS[0])));
        slots.push((carol, pattern(STREAMS[1])));
        while started.elapsed() < Duration::from_millis(1_500) {
            if slots.len() == 2 && started.elapsed() >= Duration::from_millis(50) {
                let alice = controls.more_video.add(STREAMS[2].0).slot().clone();
                slots.push((alice, pattern(STREAMS[2])));
            }
            for (slot, pattern) in &mut slots {
                if let Ok(Some(frame)) = pattern.next_frame() {
                    slot.put(&frame);
                }
            }
            std::thread::sleep(Duration::from_millis(30));
        }
    });
}

/// One view: how to set it up.
struct View {
    name: &'static str,
    set_up: Box<dyn Fn(&MainWindow)>,
}

fn views() -> Vec<View> {
    let idle = Screen {
        view: Snapshot {
            accounts: vec![registered()],
            ..Snapshot::default()
        },
        history: history(),
        last_dialed: "sip:bob@example.org".into(),
        ..Screen::default()
    };
    let in_call = Screen {
        view: Snapshot {
            accounts: vec![registered()],
            calls: vec![connected_call()],
            current: Some(0),
            ringing: None,
            stats: [
                ("Audio", "opus, SRTP"),
                ("Audio in/out", "41 / 41 kbit/s"),
                ("Packets in/out", "6850 / 6852"),
                ("Packet loss", "0.4 %"),
                ("Jitter", "3.1 ms"),
                ("Round trip", "24 ms"),
                ("MOS (estimated)", "4.3"),
                ("Video", "H.264 640x480 at 30 fps"),
                ("Video in/out", "1210 / 1180 kbit/s"),
                ("Path", "ICE host to host"),
            ]
            .iter()
            .map(|(l, v)| (l.to_string(), v.to_string()))
            .collect(),
            graph: (0..60)
                .map(|i| 0.55 + 0.35 * ((i as f32) / 7.0).sin())
                .collect(),
            graph_caption: "Video received, last minute (top 1300 kbit/s)".into(),
            can_merge: false,
        },
        ..idle.clone()
    };
    let set_tiles = |window: &MainWindow, stats: bool| {
        let calls = window.global::<CallAdapter>();
        calls.set_tiles(ModelRc::new(VecModel::from(vec![
            pattern_tile("Bob", 1),
            pattern_tile("Carol", 2),
        ])));
        calls.set_self_view(pattern_tile("me", 3).frame);
        calls.set_stats_open(stats);
    };
    vec![
        View {
            name: "first-run",
            set_up: Box::new(|window| {
                apply(
                    window,
                    &Screen {
                        first_run: true,
                        ..Screen::default()
                    },
                );
                window.global::<Nav>().set_page(Page::Dial);
            }),
        },
        View {
            name: "accounts",
            set_up: Box::new({
                let idle = idle.clone();
                move |window| {
                    apply(window, &idle);
                    window.global::<Nav>().set_page(Page::Accounts);
                }
            }),
        },
        View {
            name: "contacts",
            set_up: Box::new({
                let mut listed = idle.clone();
                listed.contacts = contacts();
                move |window| {
                    apply(window, &listed);
                    window.global::<Nav>().set_page(Page::Contacts);
                }
            }),
        },
        View {
            name: "registered-idle",
            set_up: Box::new({
                let idle = idle.clone();
                move |window| {
                    apply(window, &idle);
                    window.global::<Nav>().set_page(Page::History);
                }
            }),
        },
        View {
            name: "incoming-call",
            set_up: Box::new({
                let mut ringing = idle.clone();
                ringing.view.ringing =
                    Some((4, "Carol".to_string(), "sip:carol@example.org".to_string()));
                move |window| {
                    apply(window, &ringing);
                    window.global::<Nav>().set_page(Page::Dial);
                }
            }),
        },
        View {
            name: "in-call",
            set_up: Box::new({
                let in_call = in_call.clone();
                move |window| {
                    apply(window, &in_call);
                    set_tiles(window, false);
                }
            }),
        },
        View {
            name: "statistics",
            set_up: Box::new({
                let in_call = in_call.clone();
                move |window| {
                    apply(window, &in_call);
                    set_tiles(window, true);
                }
            }),
        },
        View {
            name: "in-call-streams",
            set_up: Box::new({
                let in_call = in_call.clone();
                move |window| show_streams(window, &in_call)
            }),
        },
        View {
            name: "settings",
            set_up: Box::new({
                let idle = idle.clone();
                move |window| {
                    let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect();
                    let page = SettingsScreen {
                        inputs: names(&["System default", "Built-in Microphone", "USB Headset"]),
                        outputs: names(&["System default", "Speakers", "USB Headset"]),
                        ringers: names(&["Same as the speakers", "Speakers", "USB Headset"]),
                        cameras: names(&["System default"]),
                        chosen: SettingsForm {
                            input: 2,
                            output: 2,
                            ringer: 1,
                            camera: 0,
                            video_size: "640x480".into(),
                            video_fps: "30".into(),
                            codecs: "opus, pcmu, pcma".into(),
                            echo_cancellation: true,
                            noise_suppression: true,
                            gain_control: false,
                        },
                        error: String::new(),
                        notice: "No camera preview: no camera found.".into(),
                    };
                    apply(
                        window,
                        &Screen {
                            settings: page,
                            ..idle.clone()
                        },
                    );
                    let settings = window.global::<SettingsAdapter>();
                    settings.set_mic_level(0.4);
                    window.global::<Nav>().set_page(Page::Settings);
                }
            }),
        },
    ]
}

/// A view's name, what its screenshot showed (colours, share off the background) and its
/// video tiles (name, picture size, whether it has a picture).
type Shot = (String, Result<(usize, f64), String>, Vec<TileSeen>);

/// A tile as shown: its name, its picture's size, whether it has a picture.
type TileSeen = (String, (u32, u32), bool);

fn tiles_seen(window: &MainWindow) -> Vec<TileSeen> {
    window
        .global::<CallAdapter>()
        .get_tiles()
        .iter()
        .map(|t| {
            let size = t.frame.size();
            (t.name.to_string(), (size.width, size.height), t.has_video)
        })
        .collect()
}

/// How much a screenshot shows: the number of distinct colours and the share of pixels that
/// differ from the most common one.
fn content(pixels: &[u8]) -> (usize, f64) {
    use std::collections::HashMap;
    let mut counts: HashMap<[u8; 3], usize> = HashMap::new();
    for p in pixels.chunks_exact(4) {
        *counts.entry([p[0], p[1], p[2]]).or_default() += 1;
    }
    let total = pixels.len() / 4;
    let most = counts.values().copied().max().unwrap_or(0);
    (counts.len(), 1.0 - most as f64 / total.max(1) as f64)
}

fn save_png(path: &Path, width: u32, height: u32, rgba: &[u8]) {
    let file = std::fs::File::create(path).expect("create the screenshot");
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().expect("png header");
    writer.write_image_data(rgba).expect("png data");
}

#[test]
fn the_main_views_render_to_non_blank_screenshots() {
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).expect("the screenshot folder");
    let xvfb = Xvfb::start(&dir).expect("Xvfb (make test installs the xvfb package)");
    std::env::set_var("DISPLAY", xvfb.display());
    std::env::remove_var("WAYLAND_DISPLAY");
    std::env::set_var("SLINT_BACKEND", "winit-software");

    let window = MainWindow::new().expect("the window");
    window.show().expect("show the window");
    let views = views();
    let expected = views.len();
    let results: Rc<RefCell<Vec<Shot>>> = Rc::default();
    let step = Rc::new(RefCell::new(0usize));
    let timer = slint::Timer::default();
    {
        let window = window.as_weak();
        let results = Rc::clone(&results);
        let dir = dir.clone();
        // Even steps set a view up; odd steps (one interval later, after it rendered) take its
        // picture.
        timer.start(
            slint::TimerMode::Repeated,
            Duration::from_millis(400),
            move || {
                let Some(window) = window.upgrade() else {
                    return;
                };
                let mut current = step.borrow_mut();
                let index = *current / 2;
                if index >= views.len() {
                    let _ = slint::quit_event_loop();
                    return;
                }
                let view = &views[index];
                if current.is_multiple_of(2) {
                    (view.set_up)(&window);
                    window.window().request_redraw();
                } else {
                    let shot = window.window().take_snapshot().map_err(|e| e.to_string());
                    let outcome = shot.map(|buffer| {
                        let bytes = buffer.as_bytes();
                        save_png(
                            &dir.join(format!("{}.png", view.name)),
                            buffer.width(),
                            buffer.height(),
                            bytes,
                        );
                        content(bytes)
                    });
                    results.borrow_mut().push((
                        view.name.to_string(),
                        outcome,
                        tiles_seen(&window),
                    ));
                }
                *current += 1;
            },
        );
    }
    slint::run_event_loop().expect("the event loop");
    drop(timer);
    let _ = window.hide();

    let results = results.borrow();
    assert_eq!(
        results.len(),
        expected,
        "every view was photographed: {results:?}"
    );
    for (name, outcome, _) in results.iter() {
        let (colours, busy) = outcome.as_ref().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            *colours >= 16 && *busy >= 0.05,
            "{name} looks blank: {colours} colours, {:.1} % of pixels off the background",
            busy * 100.0
        );
    }
    // The in-call view shows the pattern tiles: many colours.
    let in_call = results.iter().find(|(n, _, _)| n == "in-call").unwrap();
    assert!(in_call.1.as_ref().unwrap().0 > 200, "{in_call:?}");
    // The multistream call: a tile per stream, in the order they came, each named as the peer
    // labelled it and showing its own stream's pictures.
    let streams = results
        .iter()
        .find(|(n, _, _)| n == "in-call-streams")
        .unwrap();
    let expected: Vec<TileSeen> = STREAMS
        .iter()
        .map(|(name, width, height)| (name.to_string(), (*width, *height), true))
        .collect();
    assert_eq!(streams.2, expected, "{streams:?}");
    drop(xvfb);
}
