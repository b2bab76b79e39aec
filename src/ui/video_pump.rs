//! Moves the shown call's pictures into the window: a timer on the UI thread looks at the
//! call's frame slots 30 times a second and converts only frames that are new (DESIGN.md
//! rule 4: the media threads never call into the UI, and frames never queue up).

use std::cell::RefCell;
use std::time::Duration;

use slint::{ComponentHandle, ModelRc, VecModel};

use super::video_image::frame_image;
use super::{CallAdapter, MainWindow, TileRow};
use crate::engine::CallControls;

/// The call whose pictures are shown, and the frames already converted.
struct Following {
    controls: CallControls,
    name: String,
    seen_local: u64,
    seen_remote: u64,
}

/// 30 times a second.
const PERIOD: Duration = Duration::from_millis(33);

thread_local! {
    static FOLLOWING: RefCell<Option<Following>> = const { RefCell::new(None) };
    /// Runs only while a call with pictures is shown: an idle window does no work.
    static TIMER: slint::Timer = slint::Timer::default();
}

/// Shows `controls`' pictures from now on (`None`: no call with pictures is shown).
pub(super) fn follow(window: &MainWindow, controls: Option<&CallControls>, name: &str) {
    let changed = FOLLOWING.with_borrow_mut(|following| {
        let same = match (following.as_ref(), controls) {
            (Some(f), Some(c)) => f.controls == *c && f.name == name,
            (None, None) => true,
            _ => false,
        };
        if !same {
            *following = controls.map(|c| Following {
                controls: c.clone(),
                name: name.to_string(),
                seen_local: 0,
                seen_remote: 0,
            });
        }
        !same
    });
    if !changed {
        return;
    }
    let calls = window.global::<CallAdapter>();
    calls.set_tiles(ModelRc::new(VecModel::from(Vec::<TileRow>::new())));
    calls.set_self_view(slint::Image::default());
    TIMER.with(|timer| super::poll_while(timer, window, controls.is_some(), PERIOD, pump));
}

fn pump(window: &MainWindow) {
    FOLLOWING.with_borrow_mut(|following| {
        let Some(f) = following.as_mut() else {
            return;
        };
        let calls = window.global::<CallAdapter>();
        if let Some((seen, frame)) = f.controls.local_video.take_newer(f.seen_local) {
            f.seen_local = seen;
            calls.set_self_view(frame_image(&frame));
        }
        if let Some((seen, frame)) = f.controls.remote_video.take_newer(f.seen_remote) {
            f.seen_remote = seen;
            let tile = TileRow {
                name: f.name.as_str().into(),
                frame: frame_image(&frame),
                has_video: true,
            };
            super::sync_rows(calls.get_tiles(), vec![tile], |m| calls.set_tiles(m));
        }
    });
}
