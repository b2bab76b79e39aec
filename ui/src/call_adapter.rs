//! `CallAdapter`: the calls, the ringing banner, the in-call controls.

use slint::ComponentHandle;

use crate::{sync_rows, Actions, CallAdapter, CallRow, MainWindow, StatRow};
use callisto::app::{Action, Screen};
use callisto::engine::CallKey;

fn key(value: i32) -> CallKey {
    CallKey(u64::try_from(value).unwrap_or_default())
}

pub(super) fn connect(window: &MainWindow, actions: &Actions) {
    let adapter = window.global::<CallAdapter>();
    let a = actions.clone();
    adapter.on_answer(move |k, video| a.send(Action::Answer { key: key(k), video }));
    let a = actions.clone();
    adapter.on_decline(move |k| a.send(Action::Decline(key(k))));
    let a = actions.clone();
    adapter.on_hang_up(move |k| a.send(Action::HangUp(key(k))));
    let a = actions.clone();
    adapter.on_hold(move |k, on| a.send(Action::Hold { key: key(k), on }));
    let a = actions.clone();
    adapter.on_mute(move |k, on| a.send(Action::Mute { key: key(k), on }));
    let a = actions.clone();
    adapter.on_camera(move |k, on| a.send(Action::Camera { key: key(k), on }));
    let a = actions.clone();
    adapter.on_dtmf(move |k, digit| {
        a.send(Action::Dtmf {
            key: key(k),
            digits: digit.into(),
        })
    });
    let a = actions.clone();
    adapter.on_merge(move || a.send(Action::Merge));
    let a = actions.clone();
    adapter.on_add_participant(move |target| a.send(Action::AddParticipant(target.into())));
    let a = actions.clone();
    adapter.on_end_conference(move || a.send(Action::EndConference));
    let a = actions.clone();
    adapter.on_transfer(move |k, target| {
        a.send(Action::Transfer {
            key: key(k),
            target: target.into(),
        })
    });
}

pub(super) fn apply(window: &MainWindow, screen: &Screen) {
    let adapter = window.global::<CallAdapter>();
    let rows: Vec<CallRow> = screen
        .view
        .calls
        .iter()
        .map(|c| CallRow {
            key: i32::try_from(c.key).unwrap_or(i32::MAX),
            remote: c.remote.as_str().into(),
            state: c.state.as_str().into(),
            note: c.note.as_str().into(),
            timer: c.timer.as_str().into(),
            held: c.held,
            muted: c.muted,
            video: c.video,
            secure: c.secure,
            codec: c.codec.as_str().into(),
            camera_on: c.camera_on,
            in_conference: c.in_conference,
        })
        .collect();
    let participants = rows.iter().filter(|c| c.in_conference).cloned().collect();
    sync_rows(adapter.get_calls(), rows, |m| adapter.set_calls(m));
    sync_rows(adapter.get_participants(), participants, |m| {
        adapter.set_participants(m)
    });
    adapter.set_current(
        screen
            .view
            .current
            .and_then(|i| i32::try_from(i).ok())
            .unwrap_or(-1),
    );
    let stats = screen
        .view
        .stats
        .iter()
        .map(|(label, value)| StatRow {
            label: label.as_str().into(),
            value: value.as_str().into(),
        })
        .collect();
    sync_rows(adapter.get_stats(), stats, |m| adapter.set_stats(m));
    sync_rows(adapter.get_graph(), screen.view.graph.clone(), |m| {
        adapter.set_graph(m)
    });
    adapter.set_graph_caption(screen.view.graph_caption.as_str().into());
    adapter.set_can_merge(screen.view.can_merge);
    match &screen.view.ringing {
        Some((k, who, address)) => {
            adapter.set_ringing(true);
            adapter.set_ringing_key(i32::try_from(*k).unwrap_or(i32::MAX));
            adapter.set_ringing_from(who.as_str().into());
            adapter.set_ringing_address(address.as_str().into());
        }
        None => adapter.set_ringing(false),
    }
}
