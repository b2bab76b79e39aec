//! `SettingsAdapter`: the device lists and choices, the microphone's level meter and the
//! camera's preview. The meter and the preview are polled from the controller's
//! [`DevicePreview`] by a timer that runs only while the page is open.

use std::cell::RefCell;
use std::time::Duration;

use slint::{ComponentHandle, SharedString};

use crate::video_image::StreamImages;
use crate::{sync_rows, Actions, MainWindow, SettingsAdapter};
use callisto::app::{
    Action, DevicePreview, Screen, SettingsForm, SettingsScreen, VIDEO_RATES, VIDEO_SIZES,
};

/// The meter's and the preview's refresh: smooth enough for a meter, cheap for a page.
const REFRESH: Duration = Duration::from_millis(66);

struct Previewing {
    preview: DevicePreview,
    seen: u64,
    images: StreamImages,
}

thread_local! {
    /// The page as last applied: the window is only written when it changes, and the codec
    /// list only when the saved one does, never over what is being typed.
    static APPLIED: RefCell<Option<SettingsScreen>> = const { RefCell::new(None) };
    static PREVIEWING: RefCell<Option<Previewing>> = const { RefCell::new(None) };
    static TIMER: slint::Timer = slint::Timer::default();
}

pub(super) fn connect(window: &MainWindow, actions: &Actions) {
    let adapter = window.global::<SettingsAdapter>();
    let a = actions.clone();
    adapter.on_shown(move |open| a.send(Action::SettingsShown(open)));
    let a = actions.clone();
    let weak = window.as_weak();
    adapter.on_changed(move || {
        let Some(window) = weak.upgrade() else {
            return;
        };
        let adapter = window.global::<SettingsAdapter>();
        let index = |i: i32| usize::try_from(i).unwrap_or(0);
        a.send(Action::SaveSettings(SettingsForm {
            input: index(adapter.get_input()),
            output: index(adapter.get_output()),
            ringer: index(adapter.get_ringer()),
            camera: index(adapter.get_camera()),
            video_size: adapter.get_video_size().into(),
            video_fps: adapter.get_video_fps().into(),
            codecs: adapter.get_codecs().into(),
            echo_cancellation: adapter.get_echo_cancellation(),
            noise_suppression: adapter.get_noise_suppression(),
            gain_control: adapter.get_gain_control(),
        }));
    });
}

pub(super) fn apply(window: &MainWindow, screen: &Screen) {
    let adapter = window.global::<SettingsAdapter>();
    let page = &screen.settings;
    APPLIED.with_borrow_mut(|applied| {
        if applied.as_ref() == Some(page) {
            return;
        }
        let names = |list: &[String]| -> Vec<SharedString> {
            list.iter().map(|n| n.as_str().into()).collect()
        };
        let sizes: Vec<SharedString> = VIDEO_SIZES.iter().map(|&s| s.into()).collect();
        sync_rows(adapter.get_video_sizes(), sizes, |m| {
            adapter.set_video_sizes(m)
        });
        let rates: Vec<SharedString> = VIDEO_RATES.iter().map(|&s| s.into()).collect();
        sync_rows(adapter.get_video_rates(), rates, |m| {
            adapter.set_video_rates(m)
        });
        sync_rows(adapter.get_inputs(), names(&page.inputs), |m| {
            adapter.set_inputs(m)
        });
        sync_rows(adapter.get_outputs(), names(&page.outputs), |m| {
            adapter.set_outputs(m)
        });
        sync_rows(adapter.get_ringers(), names(&page.ringers), |m| {
            adapter.set_ringers(m)
        });
        sync_rows(adapter.get_cameras(), names(&page.cameras), |m| {
            adapter.set_cameras(m)
        });
        let index = |i: usize| i32::try_from(i).unwrap_or(0);
        adapter.set_input(index(page.chosen.input));
        adapter.set_output(index(page.chosen.output));
        adapter.set_ringer(index(page.chosen.ringer));
        adapter.set_camera(index(page.chosen.camera));
        adapter.set_video_size(page.chosen.video_size.as_str().into());
        adapter.set_video_fps(page.chosen.video_fps.as_str().into());
        adapter.set_echo_cancellation(page.chosen.echo_cancellation);
        adapter.set_noise_suppression(page.chosen.noise_suppression);
        adapter.set_gain_control(page.chosen.gain_control);
        // What is typed stays until the saved list changes (a refused list stays to be fixed).
        if applied.as_ref().map(|a| &a.chosen.codecs) != Some(&page.chosen.codecs) {
            adapter.set_codecs(page.chosen.codecs.as_str().into());
        }
        adapter.set_error(page.error.as_str().into());
        adapter.set_device_notice(page.notice.as_str().into());
        *applied = Some(page.clone());
    });
    follow(window, screen.preview.as_ref());
}

/// Shows `preview`'s level and picture from now on (`None`: the page is closed).
fn follow(window: &MainWindow, preview: Option<&DevicePreview>) {
    let changed = PREVIEWING.with_borrow_mut(|previewing| {
        if previewing.as_ref().map(|p| &p.preview) == preview {
            return false;
        }
        *previewing = preview.map(|p| Previewing {
            preview: p.clone(),
            seen: 0,
            images: StreamImages::new(),
        });
        true
    });
    if !changed {
        return;
    }
    let adapter = window.global::<SettingsAdapter>();
    adapter.set_mic_level(0.0);
    adapter.set_camera_preview(slint::Image::default());
    TIMER.with(|timer| crate::poll_while(timer, window, preview.is_some(), REFRESH, pump));
}

fn pump(window: &MainWindow) {
    PREVIEWING.with_borrow_mut(|previewing| {
        let Some(p) = previewing.as_mut() else {
            return;
        };
        let adapter = window.global::<SettingsAdapter>();
        adapter.set_mic_level(p.preview.level());
        if let Some((seen, frame)) = p.preview.camera.take_newer(p.seen) {
            p.seen = seen;
            adapter.set_camera_preview(p.images.image(&frame));
        }
    });
}
