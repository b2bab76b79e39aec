//! Moves the shown call's pictures into the window: a timer on the UI thread looks at the
//! calls' frame slots 30 times a second and converts only frames that are new (DESIGN.md
//! rule 4: the media threads never call into the UI, and frames never queue up). A call shows
//! one tile, or one per stream when the peer sends several (a conference server); a
//! conference we host one tile per participant, in the order they came.

use std::cell::RefCell;
use std::time::Duration;

use callisto_media::video::FrameSlot;
use slint::{ComponentHandle, Model, ModelRc, VecModel};

use crate::video_image::StreamImages;
use crate::{CallAdapter, MainWindow, TileRow};
use callisto::engine::CallControls;

/// One tile: the participant's name, the slot its pictures come from, and the frames
/// already converted.
struct Tile {
    name: String,
    slot: FrameSlot,
    seen: u64,
    images: StreamImages,
}

/// What is shown: the calls, the self-view, and a tile per picture.
struct Following {
    calls: Vec<(CallControls, String)>,
    /// Where the self-view comes from.
    self_view: FrameSlot,
    /// Each call's further streams as they were when the tiles were laid out (none before).
    layout: Option<Vec<u64>>,
    seen_local: u64,
    local_images: StreamImages,
    tiles: Vec<Tile>,
}

impl Following {
    fn new(calls: &[(CallControls, String)], self_view: FrameSlot) -> Self {
        Following {
            calls: calls.to_vec(),
            self_view,
            layout: None,
            seen_local: 0,
            local_images: StreamImages::new(),
            tiles: Vec::new(),
        }
    }

    /// Lays the tiles out again when a call's further streams changed (or for the first
    /// time): each call's own picture, then its further streams in the order they came. A
    /// multistream call's own picture takes the name the peer gave it, and has no tile once
    /// the peer stopped sending it. Returns whether the tiles changed.
    fn lay_out(&mut self) -> bool {
        let layout: Vec<u64> = self
            .calls
            .iter()
            .map(|(controls, _)| controls.more_video.generation())
            .collect();
        if self.layout.as_ref() == Some(&layout) {
            return false;
        }
        self.layout = Some(layout);
        let tile = |name: String, slot: FrameSlot| Tile {
            name,
            slot,
            seen: 0,
            images: StreamImages::new(),
        };
        self.tiles = self
            .calls
            .iter()
            .flat_map(|(controls, name)| {
                let more = &controls.more_video;
                let first = more.first_name().unwrap_or_else(|| name.clone());
                // Not when a conference server stopped sending it (its participant left).
                let own = more
                    .first_shown()
                    .then(|| tile(first, controls.remote_video.clone()));
                own.into_iter().chain(
                    more.slots()
                        .into_iter()
                        .map(|(name, slot)| tile(name, slot)),
                )
            })
            .collect();
        true
    }
}

/// 30 times a second.
const PERIOD: Duration = Duration::from_millis(33);

thread_local! {
    static FOLLOWING: RefCell<Option<Following>> = const { RefCell::new(None) };
    /// Runs only while a call with pictures is shown: an idle window does no work.
    static TIMER: slint::Timer = slint::Timer::default();
}

/// Shows these calls' pictures from now on, each under its name (none: no call with
/// pictures is shown), and the further streams of a call that sends several; the self-view
/// from `self_view`, else the first call's.
pub(super) fn follow(
    window: &MainWindow,
    shown: &[(CallControls, String)],
    self_view: Option<&FrameSlot>,
) {
    // Settled here, not on every tick: the given self-view, else the first call's (none while
    // no call with pictures is shown).
    let self_view = self_view
        .cloned()
        .or_else(|| shown.first().map(|(first, _)| first.local_video.clone()))
        .filter(|_| !shown.is_empty());
    let changed = FOLLOWING.with_borrow_mut(|following| {
        let same = following.as_ref().map_or(shown.is_empty(), |f| {
            f.calls == shown && Some(&f.self_view) == self_view.as_ref()
        });
        if !same {
            *following = self_view.map(|slot| Following::new(shown, slot));
        }
        !same
    });
    if !changed {
        return;
    }
    let calls = window.global::<CallAdapter>();
    calls.set_tiles(ModelRc::new(VecModel::from(Vec::<TileRow>::new())));
    calls.set_self_view(slint::Image::default());
    TIMER.with(|timer| crate::poll_while(timer, window, !shown.is_empty(), PERIOD, pump));
}

fn pump(window: &MainWindow) {
    FOLLOWING.with_borrow_mut(|following| {
        let Some(following) = following else {
            return;
        };
        let calls = window.global::<CallAdapter>();
        if let Some((seen, frame)) = following.self_view.take_newer(following.seen_local) {
            following.seen_local = seen;
            calls.set_self_view(following.local_images.image(&frame));
        }
        if following.lay_out() || calls.get_tiles().row_count() != following.tiles.len() {
            // A tile per picture, named, until its first picture arrives.
            let rows = following
                .tiles
                .iter()
                .map(|tile| TileRow {
                    name: tile.name.as_str().into(),
                    frame: slint::Image::default(),
                    has_video: false,
                })
                .collect();
            crate::sync_rows(calls.get_tiles(), rows, |m| calls.set_tiles(m));
        }
        let rows = calls.get_tiles();
        for (i, tile) in following.tiles.iter_mut().enumerate() {
            // A cleared slot (the peer stopped sending) shows the tile without a picture.
            if let Some((seen, frame)) = tile.slot.take_change(tile.seen) {
                tile.seen = seen;
                rows.set_row_data(
                    i,
                    TileRow {
                        name: tile.name.as_str().into(),
                        has_video: frame.is_some(),
                        frame: frame
                            .map_or_else(slint::Image::default, |frame| tile.images.image(&frame)),
                    },
                );
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use callisto_media::video::VideoSink;

    fn names(following: &Following) -> Vec<&str> {
        following.tiles.iter().map(|t| t.name.as_str()).collect()
    }

    #[test]
    fn a_server_call_s_own_tile_goes_when_its_stream_ends_and_comes_back_with_it() {
        let controls = CallControls::default();
        let more = controls.more_video.clone();
        let mut following = Following::new(&[(controls, "Conference".into())], FrameSlot::new());
        assert!(following.lay_out());
        assert_eq!(names(&following), ["Conference"]);
        // The server sends bob on the first m-line and carol on a second.
        more.name_first("bob");
        let mut carol = more.add("carol");
        assert!(following.lay_out());
        assert_eq!(names(&following), ["bob", "carol"]);
        assert!(!following.lay_out(), "nothing changed");
        // Bob leaves; dave comes on his m-line.
        more.end_first();
        assert!(following.lay_out());
        assert_eq!(names(&following), ["carol"]);
        more.first_back("dave");
        assert!(following.lay_out());
        assert_eq!(names(&following), ["dave", "carol"]);
        // Everyone leaves: no tile, laid out once.
        carol.finish().unwrap();
        more.end_first();
        assert!(following.lay_out());
        assert!(names(&following).is_empty());
        assert!(!following.lay_out(), "nothing changed");
    }

    #[test]
    fn a_one_to_one_call_keeps_its_tile_while_the_peer_sends_no_picture() {
        let controls = CallControls::default();
        let more = controls.more_video.clone();
        let mut following = Following::new(&[(controls, "Bob".into())], FrameSlot::new());
        following.lay_out();
        more.end_first();
        following.lay_out();
        assert_eq!(names(&following), ["Bob"]);
    }
}
