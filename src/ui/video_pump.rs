//! Moves the shown call's pictures into the window: a timer on the UI thread looks at the
//! calls' frame slots 30 times a second and converts only frames that are new (DESIGN.md
//! rule 4: the media threads never call into the UI, and frames never queue up). A call shows
//! one tile; a conference one tile per participant, in the order they came.

use std::cell::RefCell;
use std::time::Duration;

use slint::{ComponentHandle, Model, ModelRc, VecModel};

use super::video_image::StreamImages;
use super::{CallAdapter, MainWindow, TileRow};
use crate::engine::CallControls;

/// One participant whose pictures are shown, and the frames already converted.
struct Following {
    controls: CallControls,
    name: String,
    seen_local: u64,
    seen_remote: u64,
    local_images: StreamImages,
    remote_images: StreamImages,
}

/// 30 times a second.
const PERIOD: Duration = Duration::from_millis(33);

thread_local! {
    static FOLLOWING: RefCell<Vec<Following>> = const { RefCell::new(Vec::new()) };
    /// Runs only while a call with pictures is shown: an idle window does no work.
    static TIMER: slint::Timer = slint::Timer::default();
}

/// Shows these calls' pictures from now on, each under its name (none: no call with
/// pictures is shown). The first call's self-view is the one shown.
pub(super) fn follow(window: &MainWindow, shown: &[(CallControls, String)]) {
    let changed = FOLLOWING.with_borrow_mut(|following| {
        let same = following.len() == shown.len()
            && following
                .iter()
                .zip(shown)
                .all(|(f, (c, n))| f.controls == *c && f.name == *n);
        if !same {
            *following = shown
                .iter()
                .map(|(controls, name)| Following {
                    controls: controls.clone(),
                    name: name.clone(),
                    seen_local: 0,
                    seen_remote: 0,
                    local_images: StreamImages::new(),
                    remote_images: StreamImages::new(),
                })
                .collect();
        }
        !same
    });
    if !changed {
        return;
    }
    let calls = window.global::<CallAdapter>();
    calls.set_tiles(ModelRc::new(VecModel::from(Vec::<TileRow>::new())));
    calls.set_self_view(slint::Image::default());
    TIMER.with(|timer| super::poll_while(timer, window, !shown.is_empty(), PERIOD, pump));
}

fn pump(window: &MainWindow) {
    FOLLOWING.with_borrow_mut(|following| {
        let Some(first) = following.first_mut() else {
            return;
        };
        let calls = window.global::<CallAdapter>();
        if let Some((seen, frame)) = first.controls.local_video.take_newer(first.seen_local) {
            first.seen_local = seen;
            calls.set_self_view(first.local_images.image(&frame));
        }
        if calls.get_tiles().row_count() != following.len() {
            // A tile per participant, named, until its first picture arrives.
            let rows = following
                .iter()
                .map(|f| TileRow {
                    name: f.name.as_str().into(),
                    frame: slint::Image::default(),
                    has_video: false,
                })
                .collect();
            super::sync_rows(calls.get_tiles(), rows, |m| calls.set_tiles(m));
        }
        let tiles = calls.get_tiles();
        for (i, f) in following.iter_mut().enumerate() {
            if let Some((seen, frame)) = f.controls.remote_video.take_newer(f.seen_remote) {
                f.seen_remote = seen;
                tiles.set_row_data(
                    i,
                    TileRow {
                        name: f.name.as_str().into(),
                        frame: f.remote_images.image(&frame),
                        has_video: true,
                    },
                );
            }
        }
    });
}
