//! The desktop app's controller: one tokio task between the window and the engine.
//!
//! The window sends [`Action`]s; the controller turns them into engine [`Command`]s (resolving
//! accounts and addresses first), feeds every [`EngineEvent`] into the [`ViewModel`], keeps the
//! history, saves account changes to the configuration file, and hands each new [`Screen`] to
//! the window through a [`Display`]. It owns no call state of its own: the engine does
//! (DESIGN.md rule 2).

mod accounts;
mod settings_page;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use callisto_media::video::FrameSlot;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::account;
use crate::call::{callee_uri, direct_call};
use crate::cli::AccountArgs;
use crate::config::Config;
use crate::echo::{is_echo_address, EchoTest, ECHO_ADDRESS};
use crate::engine::{
    self, CallControls, CallKey, CallUpdate, Command, EngineEvent, EngineHandle, OutgoingCall,
};
use crate::register;
use callisto_signaling::transport::{Target, TransportKind};

use super::account_form::AccountForm;
use super::address_book::{AddressBook, ContactRow};
use super::device_check::DevicePreview;
use super::notifier::{Bus, Choice, Note, Notifier};
use super::ringer::Ringer;
use super::settings::{app_media, settings_screen, SettingsForm, SettingsScreen};
use super::view_model::{Snapshot, ViewModel};
use accounts::{AccountEntry, Resolved};
use settings_page::SettingsPage;

/// What the user did in the window.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// The address field changed.
    DialEdited(String),
    Dial {
        address: String,
        video: bool,
    },
    Redial,
    Answer {
        key: CallKey,
        video: bool,
    },
    Decline(CallKey),
    HangUp(CallKey),
    Hold {
        key: CallKey,
        on: bool,
    },
    Mute {
        key: CallKey,
        on: bool,
    },
    /// Show our camera in this call, or black frames.
    Camera {
        key: CallKey,
        on: bool,
    },
    Dtmf {
        key: CallKey,
        digits: String,
    },
    Transfer {
        key: CallKey,
        target: String,
    },
    /// Put the calls that are up into one conference hosted here.
    Merge,
    /// Call someone and, once they answer, merge them with the calls that are up.
    AddParticipant(String),
    /// Hang up every call merged into the conference hosted here.
    EndConference,
    /// The account form was sent: it adds an account, or changes the one being edited.
    SaveAccount(AccountForm),
    /// Fill the form with the account at this index, to change it.
    EditAccount(usize),
    /// Leave the form empty again without changing anything.
    CancelEdit,
    RemoveAccount(usize),
    RetryAccount(usize),
    /// Call back the history row at this index, with video or audio only.
    CallBack {
        index: usize,
        video: bool,
    },
    ClearHistory,
    SearchContacts(String),
    AddContact {
        name: String,
        addresses: String,
    },
    /// Replace a contact's name and addresses (comma separated, as typed).
    EditContact {
        id: i64,
        name: String,
        addresses: String,
    },
    RemoveContact(i64),
    ToggleFavourite(i64),
    /// Call a contact's address number `index`, with video or audio only.
    CallContact {
        id: i64,
        index: usize,
        video: bool,
    },
    /// The Settings page opened (`true`) or closed: its device lists, level meter and camera
    /// preview run only while it is open.
    SettingsShown(bool),
    /// The Settings page changed: save it when calls can use it.
    SaveSettings(SettingsForm),
    /// The window closed: hang up, unregister, stop.
    Quit,
}

impl Action {
    /// Whether the action changes the contacts or the history.
    fn touches_book(&self) -> bool {
        matches!(
            self,
            Action::ClearHistory
                | Action::SearchContacts(_)
                | Action::AddContact { .. }
                | Action::EditContact { .. }
                | Action::RemoveContact(_)
                | Action::ToggleFavourite(_)
        )
    }
}

/// One history row in words.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistoryRow {
    pub direction: String,
    pub remote: String,
    pub name: String,
    pub when: String,
    pub duration: String,
}

/// Everything the window shows, in words.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Screen {
    pub view: Snapshot,
    pub history: Vec<HistoryRow>,
    pub contacts: Vec<ContactRow>,
    /// Why the address in the field cannot be called; empty when it can.
    pub dial_error: String,
    pub completions: Vec<String>,
    pub last_dialed: String,
    /// Why the last account form was refused; empty when it was accepted.
    pub form_error: String,
    /// What the account form should hold: replaced in the window only when `form_generation`
    /// changes (an edit begins, a save succeeds), never over what is being typed.
    pub account_form: AccountForm,
    pub form_generation: u64,
    /// The index of the account the form changes; `None` when it adds one.
    pub editing: Option<usize>,
    /// A message for the status line.
    pub notice: String,
    /// No account yet.
    pub first_run: bool,
    /// The shown call's switches and pictures, with the names of their tiles (several in a
    /// conference; the window polls the pictures).
    pub video: Vec<(CallControls, String)>,
    /// Where the self-view comes from (none: the first call's of `video`).
    pub self_view: Option<FrameSlot>,
    pub settings: SettingsScreen,
    /// The microphone's level and the camera's picture while the Settings page is open (the
    /// window polls them).
    pub preview: Option<DevicePreview>,
}

/// Where the controller shows its screens (the Slint window, or a test).
pub trait Display: Send + 'static {
    fn show(&self, screen: Screen);
}

/// What the controller starts from.
pub struct AppSetup {
    pub config: Config,
    /// Where account changes are saved.
    pub config_path: PathBuf,
    pub data_dir: Option<PathBuf>,
    /// A message for the status line from start-up (a configuration file moved aside).
    pub notice: String,
    /// When the process started (start-up time is logged against it).
    pub started: std::time::Instant,
    /// An address to call as soon as the window is up (`callisto --dial URI`).
    pub dial: Option<String>,
}

/// Runs the controller until [`Action::Quit`] (or the window's side of the channel closes).
pub async fn run(
    setup: AppSetup,
    mut actions: mpsc::UnboundedReceiver<Action>,
    display: impl Display,
) {
    let engine_config = register::engine_config(&AccountArgs::default(), &setup.config);
    let engine = match engine::start(engine_config).await {
        Ok(engine) => engine,
        Err(error) => {
            display.show(Screen {
                notice: format!("Cannot open the SIP transports: {error}"),
                ..Screen::default()
            });
            while let Some(action) = actions.recv().await {
                if action == Action::Quit {
                    break;
                }
            }
            return;
        }
    };
    let (resolved_tx, mut resolved_rx) = mpsc::unbounded_channel();
    let (lists_tx, mut lists_rx) = mpsc::unbounded_channel();
    let (device_notes_tx, mut device_notes_rx) = mpsc::unbounded_channel();
    let (notifier, mut notification_choices) = Notifier::start(Bus::Session);
    let (book, book_message) = AddressBook::open(setup.data_dir.as_deref());
    let notice = [Some(setup.notice.clone()), book_message]
        .into_iter()
        .flatten()
        .filter(|m| !m.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let mut app = Controller {
        engine,
        model: ViewModel::new(),
        accounts: Vec::new(),
        next_id: 0,
        book,
        book_rows: BookRows::default(),
        completions: Vec::new(),
        last_dialed: None,
        last_dialed_video: true,
        dial_error: String::new(),
        form_error: String::new(),
        account_form: AccountForm::default(),
        form_generation: 0,
        editing: None,
        notice,
        config: setup.config.clone(),
        config_path: setup.config_path.clone(),
        data_dir: setup.data_dir.clone(),
        resolved_tx,
        settings: SettingsPage::new(lists_tx, device_notes_tx),
        ringer: None,
        notifier,
        notified: None,
        joining: Vec::new(),
        echo: EchoTest::default(),
    };
    for account in setup.config.accounts.clone() {
        app.start_account(account);
    }
    app.accept_calls();
    if let Some(address) = &setup.dial {
        app.dial(address, true).await;
    }
    app.refresh_book_rows();
    display.show(app.screen());
    loop {
        let tick = app.model.ticking();
        tokio::select! {
            action = actions.recv() => match action {
                Some(Action::Quit) | None => break,
                Some(action) => {
                    let touches_book = action.touches_book();
                    app.act(action).await;
                    if touches_book {
                        app.refresh_book_rows();
                    }
                }
            },
            event = app.engine.events.recv() => match event {
                Some(event) => app.on_engine(event),
                None => break,
            },
            Some(resolved) = resolved_rx.recv() => app.on_resolved(resolved),
            Some(lists) = lists_rx.recv() => app.settings.lists = lists,
            Some(note) = device_notes_rx.recv() => app.settings.notes.push(note),
            // A button on the desktop's notification: as if pressed in the window, while the
            // call it names still rings (a late press on a call answered meanwhile is void).
            Some(choice) = notification_choices.recv() => {
                let action = match choice {
                    Choice::Answer { call, video } => Action::Answer { key: CallKey(call), video },
                    Choice::Decline { call } => Action::Decline(CallKey(call)),
                };
                let call = match choice {
                    Choice::Answer { call, .. } | Choice::Decline { call } => call,
                };
                if app.notified == Some(call) {
                    app.act(action).await;
                }
            }
            _ = tokio::time::sleep(Duration::from_secs(1)), if tick => {}
        }
        app.keep_book_rows_current();
        app.keep_ringing();
        app.keep_device_check();
        display.show(app.screen());
    }
    app.shut_down().await;
}

struct Controller {
    engine: EngineHandle,
    model: ViewModel,
    accounts: Vec<AccountEntry>,
    next_id: usize,
    /// Contacts and history.
    book: AddressBook,
    /// The book's rows in words, made when the book changes (and when the day changes, for
    /// "today" times), not for every screen.
    book_rows: BookRows,
    /// What the dial field could become.
    completions: Vec<String>,
    last_dialed: Option<String>,
    /// Whether the last call dialed was a video call (redial makes the same kind).
    last_dialed_video: bool,
    dial_error: String,
    form_error: String,
    account_form: AccountForm,
    form_generation: u64,
    /// The entry id of the account the form changes.
    editing: Option<usize>,
    notice: String,
    config: Config,
    config_path: PathBuf,
    data_dir: Option<PathBuf>,
    resolved_tx: mpsc::UnboundedSender<Resolved>,
    settings: SettingsPage,
    /// Plays while an incoming call waits.
    ringer: Option<Ringer>,
    /// Shows the desktop's notification of a ringing call.
    notifier: Notifier,
    /// The ringing call the desktop's notification is about.
    notified: Option<u64>,
    /// Participants being added: merged into the conference when they answer.
    joining: Vec<CallKey>,
    /// The echo test, started by the first call to it.
    echo: EchoTest,
}

impl Controller {
    fn screen(&self) -> Screen {
        Screen {
            view: self.model.snapshot(Instant::now().into_std()),
            history: self.book_rows.history.clone(),
            contacts: self.book_rows.contacts.clone(),
            dial_error: self.dial_error.clone(),
            completions: self.completions.clone(),
            last_dialed: self.last_dialed.clone().unwrap_or_default(),
            form_error: self.form_error.clone(),
            account_form: self.account_form.clone(),
            form_generation: self.form_generation,
            editing: self
                .editing
                .and_then(|id| self.accounts.iter().position(|a| a.id == id)),
            notice: self.notice.clone(),
            first_run: self.accounts.is_empty(),
            video: self.model.shown_videos(),
            self_view: self.model.self_view(),
            settings: settings_screen(
                &self.config.media,
                &self.settings.lists,
                &self.settings.error,
                &self.settings.notes,
            ),
            preview: self.settings.check.as_ref().map(|c| c.preview().clone()),
        }
    }

    /// Incoming calls ring with the first account's media settings.
    fn accept_calls(&self) {
        let account = self.accounts.first().map(|a| &a.account);
        match app_media(account, true, &self.config.media) {
            Ok(media) => {
                let _ = self.engine.commands.send(Command::AcceptCalls {
                    media: Some(Box::new(media)),
                });
            }
            Err(reason) => tracing::warn!(%reason, "incoming calls are declined"),
        }
    }

    fn refresh_book_rows(&mut self) {
        let now = SystemTime::now();
        self.book_rows = BookRows {
            history: self.book.history_rows(now),
            contacts: self.book.contact_rows(),
            day: local_day(now),
        };
    }

    /// Rings while an incoming call waits, on the chosen speakers, and shows the desktop's
    /// notification of the ringing call (the first of two that ring, then the other once the
    /// first stops); stops both once nothing rings.
    fn keep_ringing(&mut self) {
        let ringing = self.model.ringing();
        let call = ringing.as_ref().map(|(call, ..)| *call);
        if call == self.notified {
            return;
        }
        self.notified = call;
        match ringing {
            Some((call, who, address)) => {
                if self.ringer.is_none() {
                    let media = &self.config.media;
                    let speakers = media.ringer.clone().or_else(|| media.output.clone());
                    self.ringer = Some(Ringer::start(speakers));
                }
                self.notifier.send(Note::Ringing { call, who, address });
            }
            None => {
                self.ringer = None;
                self.notifier.send(Note::Quiet);
            }
        }
    }

    /// Re-words the history when the local date changed since it was worded.
    fn keep_book_rows_current(&mut self) {
        if self.book_rows.day != local_day(SystemTime::now()) {
            self.refresh_book_rows();
        }
    }

    fn on_engine(&mut self, event: EngineEvent) {
        let now = Instant::now().into_std();
        if let EngineEvent::Call { key, update } = &event {
            if self.joining.contains(key) {
                match update {
                    CallUpdate::Answered { .. } => {
                        self.joining.retain(|k| k != key);
                        let mut keys = self.model.connected_keys();
                        keys.push(*key);
                        let _ = self.engine.commands.send(Command::Merge { keys });
                    }
                    CallUpdate::Failed { .. } | CallUpdate::Ended { .. } => {
                        self.joining.retain(|k| k != key);
                    }
                    _ => {}
                }
            }
        }
        if let Some(finished) = self.model.apply(&event, now, SystemTime::now()) {
            if let Err(error) = self.book.record(&finished, None) {
                self.notice = format!("The call could not be added to the history: {error}");
            }
            self.refresh_book_rows();
        }
    }

    async fn act(&mut self, action: Action) {
        match action {
            Action::DialEdited(text) => {
                self.completions = self.book.completions(&text);
                self.dial_error = match text.trim() {
                    "" => String::new(),
                    _ if self.book.address_of_name(&text).is_some() => String::new(),
                    text => self.callee(text).err().unwrap_or_default(),
                };
            }
            Action::Dial { address, video } => {
                self.dial(&address, video).await;
            }
            Action::Redial => {
                if let Some(address) = self.last_dialed.clone() {
                    self.dial(&address, self.last_dialed_video).await;
                }
            }
            Action::CallBack { index, video } => {
                if let Some(remote) = self.book.history_address(index) {
                    self.dial(&remote, video).await;
                }
            }
            Action::CallContact { id, index, video } => {
                if let Some(address) = self.book.contact_address(id, index) {
                    self.dial(&address, video).await;
                }
            }
            Action::ClearHistory => report(&mut self.notice, self.book.clear_history()),
            Action::SearchContacts(query) => report(&mut self.notice, self.book.search(&query)),
            Action::AddContact { name, addresses } => {
                report(&mut self.notice, self.book.add_contact(&name, &addresses))
            }
            Action::EditContact {
                id,
                name,
                addresses,
            } => report(
                &mut self.notice,
                self.book.edit_contact(id, &name, &addresses),
            ),
            Action::RemoveContact(id) => report(&mut self.notice, self.book.remove_contact(id)),
            Action::ToggleFavourite(id) => report(&mut self.notice, self.book.toggle_favourite(id)),
            Action::Answer { key, video } => {
                let _ = self.engine.commands.send(Command::Answer { key, video });
            }
            Action::Camera { key, on } => {
                self.model.camera(key, on);
            }
            Action::Decline(key) => {
                self.model.declined(key);
                let _ = self
                    .engine
                    .commands
                    .send(Command::Reject { key, code: 603 });
            }
            Action::HangUp(key) => {
                let _ = self.engine.commands.send(Command::HangUp { key });
            }
            Action::Hold { key, on } => {
                let command = if on {
                    Command::Hold { key }
                } else {
                    Command::Resume { key }
                };
                let _ = self.engine.commands.send(command);
            }
            Action::Mute { key, on } => {
                self.model.muted(key, on);
                let _ = self.engine.commands.send(Command::Mute { key, muted: on });
            }
            Action::Dtmf { key, digits } => {
                let _ = self.engine.commands.send(Command::Dtmf { key, digits });
            }
            Action::Transfer { key, target } => match self.callee(&target) {
                Ok(uri) => {
                    let _ = self.engine.commands.send(Command::Transfer {
                        key,
                        target: uri.to_string(),
                    });
                }
                Err(reason) => self.notice = format!("Cannot transfer: {reason}"),
            },
            Action::Merge => {
                let keys = self.model.connected_keys();
                let _ = self.engine.commands.send(Command::Merge { keys });
            }
            Action::EndConference => {
                // Those still being dialled to join it go too, or they would be merged with
                // whatever call is up when they answer.
                let joining = std::mem::take(&mut self.joining);
                for key in self.model.merged_keys().into_iter().chain(joining) {
                    let _ = self.engine.commands.send(Command::HangUp { key });
                }
            }
            Action::AddParticipant(address) => {
                if let Some(key) = self.dial(&address, true).await {
                    self.joining.push(key);
                }
            }
            Action::SettingsShown(open) => self.settings_shown(open),
            Action::SaveSettings(form) => self.save_settings(form),
            Action::SaveAccount(form) => self.save_account(form),
            Action::EditAccount(index) => {
                if let Some(entry) = self.accounts.get(index) {
                    self.editing = Some(entry.id);
                    self.set_form(AccountForm::of(&entry.account));
                }
            }
            Action::CancelEdit => {
                self.editing = None;
                self.set_form(AccountForm::default());
            }
            Action::RemoveAccount(index) => self.remove_account(index),
            Action::RetryAccount(index) => {
                if let Some(entry) = self.accounts.get(index) {
                    let account = entry.account.clone();
                    self.replace_account(index, account);
                }
            }
            Action::Quit => {}
        }
    }

    /// The address as a SIP URI, completed with the first account's domain.
    fn callee(&self, text: &str) -> Result<rsip::Uri, String> {
        let domain = self
            .accounts
            .first()
            .and_then(|a| account::parse_sip_uri(&a.account.user))
            .map(|uri| uri.host_with_port.host.to_string());
        callee_uri(text, domain.as_deref())
    }

    /// Calls `address` (a contact's name, a number, an address); the call's key, or `None`
    /// when it cannot be called (the reason is shown).
    async fn dial(&mut self, address: &str, video: bool) -> Option<CallKey> {
        let named = self.book.address_of_name(address);
        let wanted = named.as_deref().unwrap_or(address);
        // The echo test is served here, whatever the account.
        let echo = is_echo_address(wanted);
        let to = match self.callee(if echo { ECHO_ADDRESS } else { wanted }) {
            Ok(to) => to,
            Err(reason) => {
                self.dial_error = reason;
                return None;
            }
        };
        self.dial_error.clear();
        self.last_dialed = Some(address.trim().to_string());
        self.last_dialed_video = video;
        let account = self.accounts.first();
        let media = match app_media(account.map(|a| &a.account), video, &self.config.media) {
            Ok(media) => media,
            Err(reason) => {
                self.notice = format!("Cannot call: {reason}");
                return None;
            }
        };
        let key = self.engine.new_call_key();
        let (account_id, call) = match account.filter(|_| !echo) {
            Some(entry) => (
                Some(entry.id),
                // The engine fills in the account's identity and registrar.
                OutgoingCall {
                    from: to.clone(),
                    to: to.clone(),
                    target: Target::new(TransportKind::Udp, ([127, 0, 0, 1], 5060).into()),
                    local_sip: ([0, 0, 0, 0], 0).into(),
                    credentials: None,
                    contact_host: None,
                    media,
                },
            ),
            None => match self.direct_call(&to, echo, media).await {
                Ok(call) => (None, call),
                Err(reason) => {
                    self.dial_error = reason;
                    return None;
                }
            },
        };
        let now = Instant::now().into_std();
        self.model
            .dialing(key, &to.to_string(), video, now, SystemTime::now());
        let _ = self.engine.commands.send(Command::Call {
            key,
            account: account_id,
            call: Box::new(call),
        });
        Some(key)
    }

    /// A call without a registrar: straight to `to`, or to the echo test (started on first
    /// use) when `echo`.
    async fn direct_call(
        &mut self,
        to: &rsip::Uri,
        echo: bool,
        media: engine::MediaOptions,
    ) -> Result<OutgoingCall, String> {
        let target = if echo {
            self.echo.uri(media.video.as_ref()).await?
        } else {
            to.clone()
        };
        direct_call(
            &AccountArgs::default(),
            &self.engine,
            target,
            &self.config,
            media,
        )
        .await
    }

    fn save_config(&mut self) {
        if let Err(error) = self.config.save(&self.config_path) {
            self.notice = format!(
                "Cannot save the settings to {}: {error}",
                self.config_path.display()
            );
        }
    }

    /// Hangs up, unregisters and waits (bounded) for the engine to stop.
    async fn shut_down(mut self) {
        let _ = self.engine.commands.send(Command::Shutdown);
        let wait = async {
            while let Some(event) = self.engine.events.recv().await {
                if event == EngineEvent::Stopped {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(6), wait).await;
    }
}

/// The history and contacts in words, and the local date they were worded on.
#[derive(Default)]
struct BookRows {
    history: Vec<HistoryRow>,
    contacts: Vec<ContactRow>,
    day: Option<chrono::NaiveDate>,
}

fn local_day(at: SystemTime) -> Option<chrono::NaiveDate> {
    Some(chrono::DateTime::<chrono::Local>::from(at).date_naive())
}

/// Shows what went wrong with the contacts or history in `notice`, if anything did.
fn report(notice: &mut String, outcome: Result<(), String>) {
    if let Err(error) = outcome {
        *notice = error;
    }
}

/// Where the app's files go when `--data-dir` is not given.
pub fn default_data_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("org", "Callisto", "callisto")
        .map(|d| d.data_dir().to_path_buf())
}
