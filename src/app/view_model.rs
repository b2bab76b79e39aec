//! What the window shows, kept up to date from the engine's events; no Slint types, no I/O.
//!
//! The controller feeds [`ViewModel::apply`] every [`EngineEvent`] and tells it about the calls
//! it places; [`ViewModel::snapshot`] turns the state into rows of words and numbers ready to
//! show (the adapter in `callisto-ui` (`ui/src/`) only copies them into the window). A call that ends yields a
//! [`FinishedCall`] for the history.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

use callisto_media::video::{CameraSwitch, FrameSlot};
use callisto_signaling::registration::{FailureKind, RegistrationEvent};

use crate::engine::{
    refused_change_in_words, CallControls, CallKey, CallSummary, CallUpdate, EngineEvent,
};

use super::call_stats::{graph, stats_rows};
use super::format::{clock, duration_words};

/// One account as the window knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountView {
    /// The engine's index for the account.
    pub id: usize,
    pub name: String,
    pub user: String,
    pub state: AccountState,
}

/// Where an account's registration stands.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountState {
    Registering,
    Registered {
        expires: u32,
    },
    /// Failed for now; the engine tries again by itself.
    Retrying {
        reason: String,
        retry_in: Duration,
    },
    /// Failed for good until the user retries (bad password, refused, untrusted server).
    Failed {
        reason: String,
    },
    /// Not registered (removed, or the address could not be resolved).
    Off {
        reason: String,
    },
}

/// Where a call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Calling,
    Ringing,
    Incoming,
    Connected,
}

/// One call that is not over.
#[derive(Debug, Clone, PartialEq)]
pub struct CallView {
    pub key: CallKey,
    /// The other side's address.
    pub remote: String,
    pub display_name: Option<String>,
    pub outgoing: bool,
    pub phase: Phase,
    pub created: Instant,
    pub created_wall: SystemTime,
    pub connected: Option<Instant>,
    pub held: bool,
    pub held_by_remote: bool,
    pub muted: bool,
    pub video: bool,
    pub srtp: bool,
    pub codec: String,
    /// Set when the user declined it (so it is not a missed call).
    pub declined: bool,
    /// The last problem with it in words (a failed transfer, a refused hold).
    pub note: String,
    /// Its switches and pictures, once the engine reported them.
    pub controls: Option<CallControls>,
    /// Merged into the conference this app hosts.
    pub merged: bool,
    /// The other side hosts a conference this call is in: the names of the people in it, as
    /// its roster says (RFC 4575).
    pub roster: Option<Vec<String>>,
    /// Its figures so far, and the last minute of them (one a second, oldest first).
    pub statistics: Option<CallSummary>,
    pub recent: VecDeque<CallSummary>,
}

impl CallView {
    /// What the call is called on screen: the other side's name (else its address), and,
    /// when it hosts a conference this call is in, who is in it.
    pub fn title(&self) -> String {
        let name = self
            .display_name
            .clone()
            .unwrap_or_else(|| self.remote.clone());
        match &self.roster {
            Some(people) if !people.is_empty() => {
                format!("{name} — conference: {}", people.join(", "))
            }
            _ => name,
        }
    }

    /// A call that just began: nothing measured, negotiated or switched yet.
    fn new(key: CallKey, remote: &str, phase: Phase, now: Instant, wall: SystemTime) -> Self {
        CallView {
            key,
            remote: remote.to_string(),
            display_name: None,
            outgoing: false,
            phase,
            created: now,
            created_wall: wall,
            connected: None,
            held: false,
            merged: false,
            roster: None,
            held_by_remote: false,
            muted: false,
            video: false,
            srtp: false,
            codec: String::new(),
            declined: false,
            note: String::new(),
            controls: None,
            statistics: None,
            recent: VecDeque::new(),
        }
    }
}

/// Which way a finished call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Incoming,
    Outgoing,
    /// Incoming, never answered and not declined.
    Missed,
}

impl Direction {
    /// The word the window and the database use.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Incoming => "in",
            Direction::Outgoing => "out",
            Direction::Missed => "missed",
        }
    }
}

/// A call that is over, for the history.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedCall {
    pub direction: Direction,
    pub remote: String,
    pub display_name: Option<String>,
    pub started: SystemTime,
    /// How long it was up; `None` when it never connected.
    pub duration: Option<Duration>,
    /// How it ended, in words.
    pub reason: String,
}

/// An account row, ready to show.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccountRow {
    pub name: String,
    pub user: String,
    pub state: String,
    pub detail: String,
    /// 0 neutral, 1 good, 2 trouble.
    pub tone: i32,
}

/// A call row, ready to show.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallRow {
    pub key: u64,
    pub remote: String,
    pub state: String,
    /// The last problem with the call in words (a device, a transfer), or empty.
    pub note: String,
    pub timer: String,
    pub held: bool,
    pub muted: bool,
    pub video: bool,
    pub secure: bool,
    pub codec: String,
    /// Whether our camera is shown to the other side.
    pub camera_on: bool,
    /// Merged into the conference this app hosts.
    pub in_conference: bool,
}

/// What the window shows, in words.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    pub accounts: Vec<AccountRow>,
    pub calls: Vec<CallRow>,
    /// The call the in-call view shows (an index into `calls`).
    pub current: Option<usize>,
    /// The call that rings, if one does: key, who (name or address), address.
    pub ringing: Option<(u64, String, String)>,
    /// The shown call's figures as label and value.
    pub stats: Vec<(String, String)>,
    /// The last minute of one figure of the shown call, one level (0 to 1 of the minute's
    /// highest) a second, oldest first; and what it shows.
    pub graph: Vec<f32>,
    pub graph_caption: String,
    /// Two or more calls are up and not all of them are in the conference yet.
    pub can_merge: bool,
}

/// How much history the statistics graph keeps.
const GRAPH_SECONDS: usize = 60;

/// The window's state, fed by the engine.
#[derive(Debug, Default)]
pub struct ViewModel {
    accounts: Vec<AccountView>,
    calls: Vec<CallView>,
    /// The self-view and camera switch of the conference we host: those of the merged call
    /// whose input became the host's picture (`CallUpdate::HostsPicture`), kept while any
    /// merged call is left, since the picture outlives that call.
    conference_picture: Option<(FrameSlot, CameraSwitch)>,
}

impl ViewModel {
    pub fn new() -> Self {
        ViewModel::default()
    }

    /// An account was handed to the engine (or could not be: `Off` with the reason).
    pub fn account_added(&mut self, id: usize, name: &str, user: &str, state: AccountState) {
        self.accounts.retain(|a| a.id != id);
        self.accounts.push(AccountView {
            id,
            name: name.to_string(),
            user: user.to_string(),
            state,
        });
    }

    /// An account's state changed outside the engine (re-resolving, a DNS failure).
    pub fn account_state(&mut self, id: usize, state: AccountState) {
        if let Some(account) = self.accounts.iter_mut().find(|a| a.id == id) {
            account.state = state;
        }
    }

    /// Shows the account `id` at `index` of the list (a changed or retried account keeps its
    /// place).
    pub fn place_account(&mut self, id: usize, index: usize) {
        if let Some(from) = self.accounts.iter().position(|a| a.id == id) {
            let account = self.accounts.remove(from);
            self.accounts
                .insert(index.min(self.accounts.len()), account);
        }
    }

    pub fn account_removed(&mut self, id: usize) {
        self.accounts.retain(|a| a.id != id);
    }

    pub fn accounts(&self) -> &[AccountView] {
        &self.accounts
    }

    pub fn calls(&self) -> &[CallView] {
        &self.calls
    }

    pub fn call(&self, key: CallKey) -> Option<&CallView> {
        self.calls.iter().find(|c| c.key == key)
    }

    /// The user placed a call.
    pub fn dialing(
        &mut self,
        key: CallKey,
        remote: &str,
        video: bool,
        now: Instant,
        wall: SystemTime,
    ) {
        let mut call = CallView::new(key, remote, Phase::Calling, now, wall);
        call.outgoing = true;
        call.video = video;
        self.calls.push(call);
    }

    /// The user declined a ringing call: it goes to the history as declined, not missed.
    pub fn declined(&mut self, key: CallKey) {
        if let Some(call) = self.calls.iter_mut().find(|c| c.key == key) {
            call.declined = true;
        }
    }

    /// The user muted or unmuted a call's microphone.
    pub fn muted(&mut self, key: CallKey, muted: bool) {
        if let Some(call) = self.calls.iter_mut().find(|c| c.key == key) {
            call.muted = muted;
        }
    }

    /// Turns our camera on or off in a call (off sends black frames) — in the conference we
    /// host, the host's picture's, whichever merged call it came from. Returns whether the
    /// call had a camera to switch.
    pub fn camera(&mut self, key: CallKey, on: bool) -> bool {
        let Some(call) = self.calls.iter().find(|c| c.key == key) else {
            return false;
        };
        match (&self.conference_picture, &call.controls) {
            (Some((_, camera)), Some(_)) if call.merged => camera.set(on),
            // Merged before the picture is named: it is one of the merged calls' inputs.
            (None, Some(_)) if call.merged => {
                let merged = self.calls.iter().filter(|c| c.merged);
                for controls in merged.filter_map(|c| c.controls.as_ref()) {
                    controls.camera.set(on);
                }
            }
            (_, Some(controls)) => controls.camera.set(on),
            (_, None) => return false,
        }
        true
    }

    /// Whether our camera is on in `call` (the host's picture's when it is merged).
    fn camera_on(&self, call: &CallView) -> bool {
        match &self.conference_picture {
            Some((_, camera)) if call.merged => camera.is_on(),
            _ => call.controls.as_ref().is_none_or(|c| c.camera.is_on()),
        }
    }

    /// Where the in-call view's self-view comes from: in the conference we host, the host's
    /// picture (once known); else the first shown call's.
    pub fn self_view(&self) -> Option<FrameSlot> {
        let shown = self.current().and_then(|i| self.calls.get(i))?;
        match &self.conference_picture {
            Some((slot, _)) if shown.merged => Some(slot.clone()),
            _ => self
                .shown_videos()
                .first()
                .map(|(controls, _)| controls.local_video.clone()),
        }
    }

    /// A call ended: the conference's picture goes once no merged call is left.
    fn left(&mut self) {
        if !self.calls.iter().any(|c| c.merged) {
            self.conference_picture = None;
        }
    }

    /// Takes in one engine event; a call that ended comes back for the history.
    pub fn apply(
        &mut self,
        event: &EngineEvent,
        now: Instant,
        wall: SystemTime,
    ) -> Option<FinishedCall> {
        match event {
            EngineEvent::Registration { account, event } => {
                self.account_state(*account, registration_state(event));
                None
            }
            EngineEvent::Call { key, update } => self.call_update(*key, update, now, wall),
            EngineEvent::Stopped => None,
        }
    }

    fn call_update(
        &mut self,
        key: CallKey,
        update: &CallUpdate,
        now: Instant,
        wall: SystemTime,
    ) -> Option<FinishedCall> {
        if let CallUpdate::Incoming {
            from, display_name, ..
        } = update
        {
            let mut call = CallView::new(key, from, Phase::Incoming, now, wall);
            call.display_name = display_name.clone();
            self.calls.push(call);
            return None;
        }
        let index = self.calls.iter().position(|c| c.key == key)?;
        let call = &mut self.calls[index];
        match update {
            CallUpdate::Incoming { .. } => {}
            CallUpdate::Controls(controls) => call.controls = Some(controls.clone()),
            CallUpdate::Statistics(summary) => {
                if call.recent.len() == GRAPH_SECONDS {
                    call.recent.pop_front();
                }
                call.recent.push_back((**summary).clone());
                call.statistics = Some((**summary).clone());
            }
            CallUpdate::Ringing { .. } => call.phase = Phase::Ringing,
            CallUpdate::Answered {
                codec, srtp, video, ..
            } => {
                call.phase = Phase::Connected;
                call.connected.get_or_insert(now);
                call.codec = codec.clone();
                call.srtp = *srtp;
                call.video = *video;
            }
            CallUpdate::Held { by_remote } => {
                if *by_remote {
                    call.held_by_remote = true;
                } else {
                    call.held = true;
                }
            }
            CallUpdate::Resumed { by_remote } => {
                if *by_remote {
                    call.held_by_remote = false;
                } else {
                    call.held = false;
                }
            }
            CallUpdate::ChangeRefused { code, warning } => {
                call.note = refused_change_in_words(*code, warning.as_deref());
            }
            CallUpdate::Dtmf { .. } => {}
            CallUpdate::Merged => {
                call.merged = true;
                call.note.clear();
            }
            CallUpdate::HostsPicture => {
                let picture = call
                    .controls
                    .as_ref()
                    .map(|c| (c.local_video.clone(), c.camera.clone()));
                if picture.is_some() {
                    self.conference_picture = picture;
                }
            }
            CallUpdate::Roster { info } => {
                call.roster = info
                    .as_ref()
                    .map(|info| info.users.iter().map(|u| u.name()).collect());
            }
            CallUpdate::AudioDevice { message } => call.note = message.clone(),
            CallUpdate::CameraUnavailable { reason } => {
                call.note = format!("camera: {reason}; sending a placeholder picture")
            }
            CallUpdate::TransferRequested { target, .. } => {
                call.note = format!("transferred to {target}");
            }
            CallUpdate::TransferProgress { code, reason, .. } => {
                call.note = format!("transfer: {code} {reason}");
            }
            CallUpdate::Failed {
                code,
                reason,
                warning,
                ..
            } => {
                let call = self.calls.remove(index);
                self.left();
                let mut reason = match code {
                    Some(code) => format!("{code} {reason}"),
                    None => reason.clone(),
                };
                if let Some(warning) = warning {
                    reason = format!("{reason}: {warning}");
                }
                return Some(finished(call, now, reason));
            }
            CallUpdate::Ended { reason, .. } => {
                let call = self.calls.remove(index);
                self.left();
                return Some(finished(call, now, reason.clone()));
            }
        }
        None
    }

    /// The call the in-call view should show: the newest connected call that is not on hold,
    /// else the newest outgoing call still being set up, else the newest connected one.
    pub fn current(&self) -> Option<usize> {
        let newest = |f: &dyn Fn(&CallView) -> bool| self.calls.iter().rposition(f);
        newest(&|c| c.phase == Phase::Connected && !c.held)
            .or_else(|| newest(&|c| c.outgoing && c.phase != Phase::Connected))
            .or_else(|| newest(&|c| c.phase == Phase::Connected))
    }

    /// Everything in words, as of `now`.
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        let accounts = self.accounts.iter().map(account_row).collect();
        let calls = self
            .calls
            .iter()
            .map(|c| call_row(c, now, self.camera_on(c)))
            .collect();
        let ringing = self.ringing();
        let shown = self.current().and_then(|i| self.calls.get(i));
        let (graph, graph_caption) = shown.map(graph).unwrap_or_default();
        Snapshot {
            accounts,
            calls,
            current: self.current(),
            ringing,
            stats: shown.map(stats_rows).unwrap_or_default(),
            graph,
            graph_caption,
            can_merge: self.can_merge(),
        }
    }

    /// The calls that are up (connected, held or not), oldest first: what a merge takes.
    pub fn connected_keys(&self) -> Vec<CallKey> {
        self.calls
            .iter()
            .filter(|c| c.phase == Phase::Connected)
            .map(|c| c.key)
            .collect()
    }

    /// The calls merged into the conference hosted here.
    pub fn merged_keys(&self) -> Vec<CallKey> {
        self.calls
            .iter()
            .filter(|c| c.merged)
            .map(|c| c.key)
            .collect()
    }

    /// Whether "merge" has something to do: two calls up, one of them not merged.
    pub fn can_merge(&self) -> bool {
        let up = || self.calls.iter().filter(|c| c.phase == Phase::Connected);
        up().count() >= 2 && up().any(|c| !c.merged)
    }

    /// The pictures the in-call view shows, with the names for their tiles: every merged
    /// call's when the shown call is in the conference (one tile per participant), else
    /// the shown call's.
    pub fn shown_videos(&self) -> Vec<(CallControls, String)> {
        let Some(shown) = self.current().and_then(|i| self.calls.get(i)) else {
            return Vec::new();
        };
        let name = CallView::title;
        let with_controls = |c: &CallView| c.controls.clone().map(|k| (k, name(c)));
        if shown.merged {
            self.calls
                .iter()
                .filter(|c| c.merged && c.phase == Phase::Connected)
                .filter_map(with_controls)
                .collect()
        } else {
            with_controls(shown).into_iter().collect()
        }
    }

    /// The incoming call that waits for an answer (the ringtone plays): its key, who calls (a
    /// name, else the address) and the address.
    pub fn ringing(&self) -> Option<(u64, String, String)> {
        self.calls
            .iter()
            .find(|c| c.phase == Phase::Incoming)
            .map(|c| {
                let who = c.display_name.clone().unwrap_or_else(|| c.remote.clone());
                (c.key.0, who, c.remote.clone())
            })
    }

    /// Whether anything on screen changes by itself (a call timer runs).
    pub fn ticking(&self) -> bool {
        !self.calls.is_empty()
    }
}

fn finished(call: CallView, now: Instant, reason: String) -> FinishedCall {
    let direction = if call.outgoing {
        Direction::Outgoing
    } else if call.connected.is_none() && !call.declined {
        Direction::Missed
    } else {
        Direction::Incoming
    };
    FinishedCall {
        direction,
        remote: call.remote,
        display_name: call.display_name,
        started: call.created_wall,
        duration: call.connected.map(|at| now.saturating_duration_since(at)),
        reason,
    }
}

/// The account state a registration event means.
pub fn registration_state(event: &RegistrationEvent) -> AccountState {
    match event {
        RegistrationEvent::Registered { expires, .. } => {
            AccountState::Registered { expires: *expires }
        }
        RegistrationEvent::Failed {
            kind,
            code,
            reason,
            retry_in,
        } => {
            let words = failure_words(*kind, *code, reason);
            match retry_in {
                Some(retry_in) => AccountState::Retrying {
                    reason: words,
                    retry_in: *retry_in,
                },
                None => AccountState::Failed { reason: words },
            }
        }
        RegistrationEvent::Unregistered => AccountState::Off {
            reason: String::new(),
        },
    }
}

/// A registration failure in plain words, with the server's own reason.
fn failure_words(kind: FailureKind, code: Option<u16>, reason: &str) -> String {
    let plain = match kind {
        FailureKind::AuthenticationFailed => "wrong user name or password",
        FailureKind::Rejected => "the server refused the account",
        FailureKind::Unreachable => "the server does not answer",
        FailureKind::ServerError => "the server has a problem",
        FailureKind::Insecure => "the server's certificate is not trusted",
    };
    match code {
        Some(code) => format!("{plain} ({code} {reason})"),
        None if reason.is_empty() => plain.to_string(),
        None => format!("{plain} ({reason})"),
    }
}

fn account_row(account: &AccountView) -> AccountRow {
    let (state, detail, tone) = match &account.state {
        AccountState::Registering => ("Registering", String::new(), 0),
        AccountState::Registered { expires } => (
            "Registered",
            format!(
                "for {}",
                duration_words(Duration::from_secs(u64::from(*expires)))
            ),
            1,
        ),
        AccountState::Retrying { reason, retry_in } => (
            "Retrying",
            format!("{reason}; again in {}", duration_words(*retry_in)),
            2,
        ),
        AccountState::Failed { reason } => ("Failed", reason.clone(), 2),
        AccountState::Off { reason } => ("Off", reason.clone(), 0),
    };
    AccountRow {
        name: account.name.clone(),
        user: account.user.clone(),
        state: state.to_string(),
        detail,
        tone,
    }
}

fn call_row(call: &CallView, now: Instant, camera_on: bool) -> CallRow {
    let state = match call.phase {
        Phase::Calling => "Calling",
        Phase::Ringing => "Ringing",
        Phase::Incoming => "Incoming",
        Phase::Connected if call.held => "On hold",
        Phase::Connected if call.held_by_remote => "Held by the other side",
        Phase::Connected => "Connected",
    };
    let timer = match call.connected {
        Some(at) => clock(now.saturating_duration_since(at)),
        None => clock(now.saturating_duration_since(call.created)),
    };
    CallRow {
        key: call.key.0,
        remote: call.title(),
        state: state.to_string(),
        note: call.note.clone(),
        timer,
        held: call.held,
        muted: call.muted,
        video: call.video,
        secure: call.srtp,
        codec: call.codec.clone(),
        camera_on,
        in_conference: call.merged,
    }
}

#[cfg(test)]
#[path = "view_model_tests.rs"]
mod tests;
