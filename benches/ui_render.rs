//! `cargo bench --bench ui_render`: what the window costs, under a private Xvfb with the
//! software renderer (the one Callisto ships with).
//!
//! - **Start**: `MainWindow::new()` → the end of the first frame drawn (the first redraw the
//!   window system asks for, and the event loop's next turn).
//! - **Idle**: an account registered, the history page shown, nothing changing: CPU of the UI
//!   thread over the stretch, in percent of one core (target: under 1 %).
//! - **Video call**: a call with two remote tiles and the self-view, each fed 640x480 pictures
//!   at 30 fps from their own thread through the calls' frame slots, as the media threads do;
//!   the window's own pump (`callisto_ui::apply` → the video pump) converts and shows them. CPU of the
//!   UI thread (conversion + layout + rendering) and of the whole process over the stretch,
//!   and the pictures the window took from the slots and converted for showing per second,
//!   all three together (target: UI under 15 % of one core at 30 fps per tile). The whole
//!   process includes the bench's own thread drawing the test patterns.
//!
//! - **The app, idle**: the `callisto` binary itself (no account: the first-run window, the
//!   engine and its tasks running) under the same X server, after it settled: its CPU over a
//!   stretch (`/proc/PID/stat`) and its resident memory now and at its peak (`VmRSS`,
//!   `VmHWM`; target: under 120 MB).
//!
//! The X server's own work (Xvfb copying the picture to its screen) is a compositor's on a
//! desktop and is not counted. Under `cargo test` (no `--bench` argument) each stretch is
//! 2 s and it fails only if a figure is missing; it asserts no target.

#[path = "../tests/support/mod.rs"]
mod support;

use std::cell::{Cell, RefCell};
use std::error::Error;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use callisto::app::{Screen, Snapshot};
use callisto::engine::CallControls;
use callisto_media::video::{TestPattern, VideoFormat, VideoSource};
use callisto_ui::{apply, MainWindow, Nav, Page};
use slint::winit_030::{winit, EventResult, WinitWindowAccessor};
use slint::ComponentHandle;
use support::measure::{rss_kib, ProcessMeter};
use support::ui_rows::{connected_call, registered};
use support::xvfb::Xvfb;

/// CPU time of the calling thread, or of the whole process.
fn cpu(clock: libc::clockid_t) -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write to; the clocks used exist on Linux.
    unsafe { libc::clock_gettime(clock, &mut now) };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

fn idle_screen() -> Screen {
    Screen {
        view: Snapshot {
            accounts: vec![registered()],
            ..Snapshot::default()
        },
        ..Screen::default()
    }
}

fn call_screen(video: Vec<(CallControls, String)>) -> Screen {
    let mut screen = idle_screen();
    screen.view.calls = vec![connected_call()];
    screen.view.current = Some(0);
    screen.video = video;
    screen
}

/// Feeds each slot a new 640x480 picture 30 times a second until `running` goes false.
fn feed(controls: Vec<CallControls>, running: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let format = VideoFormat::new(640, 480, 30).expect("a format");
        let mut patterns: Vec<TestPattern> = (1..=3)
            .map(|identity| TestPattern::new(format, identity).expect("a pattern"))
            .collect();
        let start = Instant::now();
        let mut tick = 0u32;
        while running.load(Ordering::Relaxed) {
            let slots = controls
                .iter()
                .map(|c| &c.remote_video)
                .chain(std::iter::once(&controls[0].local_video));
            for (slot, pattern) in slots.zip(&mut patterns) {
                if let Ok(Some(frame)) = pattern.next_frame() {
                    slot.put(&frame);
                }
            }
            tick += 1;
            let due = start + Duration::from_millis(u64::from(tick) * 1000 / 30);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
    })
}

/// What one measured stretch found.
#[derive(Debug, Clone, Copy)]
struct Stretch {
    ui_percent: f64,
    process_percent: f64,
    /// Pictures shown per second, all tiles together.
    fps: f64,
}

/// The phases the bench steps through on the UI thread.
enum Phase {
    Starting,
    Idle { from: Mark },
    Warming { until: Instant },
    Call { from: Mark },
}

/// When a stretch began: wall clock, UI thread CPU, process CPU, pictures shown.
type Mark = (Instant, Duration, Duration, u64);

fn main() -> Result<(), Box<dyn Error>> {
    let benching = std::env::args().any(|argument| argument == "--bench");
    let stretch = Duration::from_secs(if benching { 10 } else { 2 });
    let logs = tempfile::tempdir()?;
    let xvfb = Xvfb::start(logs.path())?;
    std::env::set_var("DISPLAY", xvfb.display());
    std::env::remove_var("WAYLAND_DISPLAY");
    std::env::set_var("SLINT_BACKEND", "winit-software");

    let created = Instant::now();
    let window = MainWindow::new()?;
    // The first frame: the first redraw the window system asks for is drawn right after this
    // filter, and the timer runs once it is done.
    let first_frame: Rc<Cell<Option<Duration>>> = Rc::default();
    {
        let first_frame = first_frame.clone();
        let mut asked = false;
        window.window().on_winit_window_event(move |_, event| {
            if !asked && matches!(event, winit::event::WindowEvent::RedrawRequested) {
                asked = true;
                let first_frame = first_frame.clone();
                slint::Timer::single_shot(Duration::ZERO, move || {
                    first_frame.set(Some(created.elapsed()))
                });
            }
            EventResult::Propagate
        });
    }
    apply(&window, &idle_screen());
    window.global::<Nav>().set_page(Page::History);
    window.show()?;

    let controls = vec![CallControls::default(), CallControls::default()];
    let running = Arc::new(AtomicBool::new(true));
    let feeder: Rc<RefCell<Option<std::thread::JoinHandle<()>>>> = Rc::default();
    let results: Rc<RefCell<Vec<Stretch>>> = Rc::default();
    let phase = Rc::new(RefCell::new(Phase::Starting));
    // Pictures shown: the frames the window's pump took from the three slots.
    let shown = {
        let controls = controls.clone();
        move || {
            controls.iter().map(|c| c.remote_video.taken()).sum::<u64>()
                + controls[0].local_video.taken()
        }
    };
    let mark = move || {
        (
            Instant::now(),
            cpu(libc::CLOCK_THREAD_CPUTIME_ID),
            cpu(libc::CLOCK_PROCESS_CPUTIME_ID),
            shown(),
        )
    };
    let measure = {
        let mark = mark.clone();
        move |from: Mark| {
            let to = mark();
            let wall = (to.0 - from.0).as_secs_f64();
            Stretch {
                ui_percent: 100.0 * (to.1 - from.1).as_secs_f64() / wall,
                process_percent: 100.0 * (to.2 - from.2).as_secs_f64() / wall,
                fps: (to.3 - from.3) as f64 / wall,
            }
        }
    };
    // A second to settle after showing, then the idle stretch, then a second of the call to
    // warm up, then the call's stretch.
    let timer = slint::Timer::default();
    {
        let weak = window.as_weak();
        let (feeder, results, running, phase) = (
            feeder.clone(),
            results.clone(),
            running.clone(),
            phase.clone(),
        );
        let settle = Duration::from_secs(1);
        let started = Instant::now();
        timer.start(
            slint::TimerMode::Repeated,
            Duration::from_millis(100),
            move || {
                let Some(window) = weak.upgrade() else {
                    return;
                };
                let mut phase = phase.borrow_mut();
                match &mut *phase {
                    Phase::Starting if started.elapsed() >= settle => {
                        *phase = Phase::Idle { from: mark() };
                    }
                    Phase::Idle { from } if from.0.elapsed() >= stretch => {
                        results.borrow_mut().push(measure(*from));
                        apply(
                            &window,
                            &call_screen(
                                controls
                                    .iter()
                                    .cloned()
                                    .zip(["Bob".to_string(), "Carol".to_string()])
                                    .collect(),
                            ),
                        );
                        *feeder.borrow_mut() = Some(feed(controls.clone(), running.clone()));
                        *phase = Phase::Warming {
                            until: Instant::now() + settle,
                        };
                    }
                    Phase::Warming { until } if Instant::now() >= *until => {
                        *phase = Phase::Call { from: mark() };
                    }
                    Phase::Call { from } if from.0.elapsed() >= stretch => {
                        results.borrow_mut().push(measure(*from));
                        running.store(false, Ordering::Relaxed);
                        let _ = slint::quit_event_loop();
                    }
                    _ => {}
                }
            },
        );
    }
    slint::run_event_loop()?;
    drop(timer);
    running.store(false, Ordering::Relaxed);
    if let Some(feeder) = feeder.borrow_mut().take() {
        let _ = feeder.join();
    }
    let _ = window.hide();

    let start = first_frame.get().ok_or("no frame was ever rendered")?;
    let results = results.borrow();
    let [idle, call] = results.as_slice() else {
        return Err(format!("a stretch is missing: {results:?}").into());
    };
    let size = window.window().size();
    println!(
        "\nui_render: the window ({}x{} pixels), Xvfb, software renderer, {} s stretches",
        size.width,
        size.height,
        stretch.as_secs()
    );
    println!("| Figure | UI thread | Whole process | Pictures shown |");
    println!("|---|---|---|---|");
    println!(
        "| Start → first frame | {:.0} ms | | |",
        start.as_secs_f64() * 1000.0
    );
    for (name, s) in [
        ("Idle, registered", idle),
        ("Video call, 2 tiles + self-view", call),
    ] {
        println!(
            "| {name} | {:.1} % of a core | {:.1} % | {:.1} /s |",
            s.ui_percent, s.process_percent, s.fps
        );
    }
    if call.fps < 1.0 {
        return Err(format!("the call's pictures were not rendered: {call:?}").into());
    }
    let app = app_idle(logs.path(), Duration::from_secs(2), stretch)?;
    println!(
        "| The app itself, idle (first run) | | {:.2} % of a core | |",
        app.cpu_percent
    );
    println!(
        "\nui_render: the app's resident memory, idle: {:.1} MiB (peak {:.1} MiB)",
        app.rss_mib, app.peak_mib
    );
    Ok(())
}

/// What the app itself cost while idle.
struct AppIdle {
    cpu_percent: f64,
    rss_mib: f64,
    peak_mib: f64,
}

/// Runs the `callisto` binary (no account, its config and data in `dir`) under the X server
/// this process uses; after `settle`, measures its CPU over `stretch` and its memory, then
/// ends it (by its PID).
fn app_idle(
    dir: &std::path::Path,
    settle: Duration,
    stretch: Duration,
) -> Result<AppIdle, Box<dyn Error>> {
    let mut app = std::process::Command::new(env!("CARGO_BIN_EXE_callisto"))
        .arg("--config")
        .arg(dir.join("app.toml"))
        .arg("--data-dir")
        .arg(dir.join("app-data"))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("app.log"))?)
        .spawn()?;
    let measured = (|| -> Result<AppIdle, Box<dyn Error>> {
        std::thread::sleep(settle);
        if let Some(status) = app.try_wait()? {
            let log = std::fs::read_to_string(dir.join("app.log")).unwrap_or_default();
            return Err(format!("the app exited ({status}) before it was measured: {log}").into());
        }
        let meter = ProcessMeter::start(app.id())?;
        std::thread::sleep(stretch);
        let usage = meter.finish()?;
        Ok(AppIdle {
            cpu_percent: usage.cpu_percent,
            rss_mib: rss_kib(app.id())? as f64 / 1024.0,
            peak_mib: usage.peak_rss_kib as f64 / 1024.0,
        })
    })();
    let _ = app.kill();
    let _ = app.wait();
    measured
}
