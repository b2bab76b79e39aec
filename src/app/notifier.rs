//! Desktop notifications: an incoming call shows one through the freedesktop notification
//! service (`org.freedesktop.Notifications` on the session D-Bus), closed again once the call
//! is answered, declined or gone. Where the service offers actions, the notification has
//! three buttons — Answer, Audio only, Decline — that act on the call like the window's.
//! Where there is no session bus or no notification service, the window's banner and the
//! ringtone are all there is; that is logged once, not shown.
//!
//! One tokio task owns the bus connection (made on first use); the controller only sends it
//! [`Note`]s, never waits for the bus, and takes the buttons pressed as [`Choice`]s.

use std::collections::HashMap;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use zbus::zvariant::Value;

const SERVICE: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";

/// What the desktop should show.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    /// Call `call` rings: `who` (a name or address) and the address it comes from.
    Ringing {
        call: u64,
        who: String,
        address: String,
    },
    /// Nothing rings any more.
    Quiet,
}

/// A button pressed on the notification of call `call`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Answer { call: u64, video: bool },
    Decline { call: u64 },
}

/// The notification's buttons: the action keys the service reports back, and their labels.
const ACTIONS: [(&str, &str); 3] = [
    ("answer", "Answer"),
    ("answer-audio", "Audio only"),
    ("decline", "Decline"),
];

/// What pressing the button with action `key` on call `call`'s notification means.
fn choice(key: &str, call: u64) -> Option<Choice> {
    match key {
        "answer" => Some(Choice::Answer { call, video: true }),
        "answer-audio" => Some(Choice::Answer { call, video: false }),
        "decline" => Some(Choice::Decline { call }),
        _ => None,
    }
}

/// Where the notification task finds the bus.
#[derive(Debug, Clone, PartialEq)]
pub enum Bus {
    /// The user's session bus (`DBUS_SESSION_BUS_ADDRESS`).
    Session,
    /// A bus at this address (tests run a private one).
    Address(String),
}

/// The controller's side of the notification task.
#[derive(Debug, Clone)]
pub struct Notifier {
    notes: mpsc::UnboundedSender<Note>,
}

impl Notifier {
    /// Starts the task on the current tokio runtime; the buttons pressed come out of the
    /// receiver.
    pub fn start(bus: Bus) -> (Notifier, mpsc::UnboundedReceiver<Choice>) {
        let (notes, rx) = mpsc::unbounded_channel();
        let (choices, choices_rx) = mpsc::unbounded_channel();
        tokio::spawn(run(bus, rx, choices));
        (Notifier { notes }, choices_rx)
    }

    pub fn send(&self, note: Note) {
        let _ = self.notes.send(note);
    }
}

/// The bus, once connected: whether the service shows buttons, and its signals (a button
/// pressed, a notification closed).
struct Desktop {
    connection: zbus::Connection,
    actions: bool,
    signals: Option<zbus::MessageStream>,
}

async fn run(
    bus: Bus,
    mut notes: mpsc::UnboundedReceiver<Note>,
    choices: mpsc::UnboundedSender<Choice>,
) {
    let mut desktop: Option<Desktop> = None;
    let mut tried = false;
    // The notification on screen, to replace or close, and the call it is about.
    let mut shown: Option<(u32, u64)> = None;
    loop {
        let signal = async {
            match desktop.as_mut().and_then(|d| d.signals.as_mut()) {
                Some(stream) => stream.next().await,
                None => std::future::pending().await,
            }
        };
        let note = tokio::select! {
            note = notes.recv() => match note {
                Some(note) => note,
                None => break,
            },
            Some(Ok(signal)) = signal => {
                match on_signal(&signal, shown) {
                    Some(Signalled::Pressed(choice)) => {
                        let _ = choices.send(choice);
                    }
                    // Dismissed (or closed after a press): nothing to close or replace.
                    Some(Signalled::Closed) => shown = None,
                    None => {}
                }
                continue;
            }
        };
        if desktop.is_none() && !tried {
            tried = true;
            match connect(&bus).await {
                Ok(d) => desktop = Some(d),
                Err(error) => {
                    tracing::info!(%error, "no desktop notifications: no session bus");
                }
            }
        }
        let Some(desktop) = desktop.as_mut() else {
            continue;
        };
        let outcome = match note {
            Note::Ringing { call, who, address } => {
                // A service that started (or was replaced) after we connected is asked again.
                if !desktop.actions {
                    desktop.actions = offers_actions(&desktop.connection).await;
                }
                let replaces = shown.map_or(0, |(id, _)| id);
                notify(desktop, replaces, &who, &address)
                    .await
                    .map(|id| shown = Some((id, call)))
            }
            Note::Quiet => match shown.take() {
                Some((id, _)) => close(&desktop.connection, id).await,
                None => Ok(()),
            },
        };
        if let Err(error) = outcome {
            tracing::info!(%error, "the desktop notification service did not answer");
        }
    }
}

/// What a signal of the notification service says about the notification `shown`.
enum Signalled {
    /// `ActionInvoked`: a button on it was pressed.
    Pressed(Choice),
    /// `NotificationClosed`: it is gone.
    Closed,
}

/// What `signal` means for the notification `shown` (and the call it is about); `None` for
/// another notification's signals and unknown buttons.
fn on_signal(signal: &zbus::Message, shown: Option<(u32, u64)>) -> Option<Signalled> {
    let (shown_id, call) = shown?;
    let header = signal.header();
    match header.member()?.as_str() {
        "ActionInvoked" => {
            let (id, key): (u32, String) = signal.body().deserialize().ok()?;
            (id == shown_id)
                .then(|| choice(&key, call))
                .flatten()
                .map(Signalled::Pressed)
        }
        "NotificationClosed" => {
            let (id, _reason): (u32, u32) = signal.body().deserialize().ok()?;
            (id == shown_id).then_some(Signalled::Closed)
        }
        _ => None,
    }
}

async fn connect(bus: &Bus) -> zbus::Result<Desktop> {
    let connection = match bus {
        Bus::Session => zbus::Connection::session().await?,
        Bus::Address(address) => {
            zbus::connection::Builder::address(address.as_str())?
                .build()
                .await?
        }
    };
    // A service that offers buttons reports the pressed one as a signal. Only the service's
    // own signals count (the bus resolves the well-known name to its owner).
    let actions = offers_actions(&connection).await;
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender(SERVICE)?
        .interface(SERVICE)?
        .path(PATH)?
        .build();
    let signals = zbus::MessageStream::for_match_rule(rule, &connection, None)
        .await
        .inspect_err(|error| tracing::info!(%error, "notification signals unavailable"))
        .ok();
    Ok(Desktop {
        connection,
        actions,
        signals,
    })
}

/// Whether the notification service shows buttons (its `actions` capability); a service
/// that is not there or cannot say offers none.
async fn offers_actions(connection: &zbus::Connection) -> bool {
    let capabilities: Vec<String> = match connection
        .call_method(Some(SERVICE), PATH, Some(SERVICE), "GetCapabilities", &())
        .await
    {
        Ok(reply) => reply.body().deserialize().unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    capabilities.iter().any(|c| c == "actions")
}

/// Shows (or replaces `replaces`) the notification of a ringing call; returns its id.
async fn notify(desktop: &Desktop, replaces: u32, who: &str, address: &str) -> zbus::Result<u32> {
    let body = if who == address {
        address.to_string()
    } else {
        format!("{who}\n{address}")
    };
    let mut hints: HashMap<&str, Value<'_>> = HashMap::new();
    // Critical: it stays until the call stops ringing (the spec's urgency levels).
    hints.insert("urgency", Value::U8(2));
    hints.insert("category", Value::from("im.received"));
    hints.insert("desktop-entry", Value::from("callisto"));
    let actions: Vec<&str> = if desktop.actions {
        ACTIONS
            .iter()
            .flat_map(|(key, label)| [*key, *label])
            .collect()
    } else {
        Vec::new()
    };
    let reply = desktop
        .connection
        .call_method(
            Some(SERVICE),
            PATH,
            Some(SERVICE),
            "Notify",
            &(
                "Callisto",
                replaces,
                "call-start",
                "Incoming call",
                body.as_str(),
                actions,
                hints,
                -1i32,
            ),
        )
        .await?;
    reply.body().deserialize::<u32>()
}

async fn close(bus: &zbus::Connection, id: u32) -> zbus::Result<()> {
    bus.call_method(Some(SERVICE), PATH, Some(SERVICE), "CloseNotification", &id)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use zbus::zvariant::OwnedValue;

    use super::*;

    /// A D-Bus daemon of this test's own on a socket in a temporary directory, stopped by its
    /// PID when dropped.
    struct PrivateBus {
        child: Child,
        address: String,
        _dir: tempfile::TempDir,
    }

    impl PrivateBus {
        fn start() -> std::io::Result<PrivateBus> {
            let dir = tempfile::tempdir()?;
            let config = dir.path().join("bus.conf");
            std::fs::write(
                &config,
                format!(
                    r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                    dir.path().join("bus").display()
                ),
            )?;
            let mut child = Command::new("dbus-daemon")
                .arg(format!("--config-file={}", config.display()))
                .args(["--nofork", "--print-address=1"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("dbus-daemon ({e}); `scripts/install-deps.sh test` installs it"),
                    )
                })?;
            let mut address = String::new();
            let stdout = child.stdout.take().ok_or(std::io::ErrorKind::BrokenPipe)?;
            BufReader::new(stdout).read_line(&mut address)?;
            Ok(PrivateBus {
                child,
                address: address.trim().to_string(),
                _dir: dir,
            })
        }
    }

    impl Drop for PrivateBus {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// A notification service that writes down what it was asked.
    struct FakeService {
        seen: Arc<Mutex<Vec<String>>>,
        next: u32,
        capabilities: Vec<String>,
    }

    #[zbus::interface(name = "org.freedesktop.Notifications")]
    impl FakeService {
        fn get_capabilities(&self) -> Vec<String> {
            self.capabilities.clone()
        }

        #[allow(clippy::too_many_arguments)]
        fn notify(
            &mut self,
            app_name: String,
            replaces_id: u32,
            _app_icon: String,
            summary: String,
            body: String,
            actions: Vec<String>,
            hints: HashMap<String, OwnedValue>,
            _expire_timeout: i32,
        ) -> u32 {
            let id = if replaces_id == 0 {
                self.next += 1;
                self.next
            } else {
                replaces_id
            };
            let urgency = hints
                .get("urgency")
                .and_then(|v| v.try_clone().ok())
                .and_then(|v| u8::try_from(v).ok());
            self.seen.lock().unwrap().push(format!(
                "{app_name} shows {id}: {summary} / {body} (urgency {urgency:?}) [{}]",
                actions.join(", ")
            ));
            id
        }

        fn close_notification(&mut self, id: u32) {
            self.seen.lock().unwrap().push(format!("closes {id}"));
        }
    }

    async fn wait_for(seen: &Arc<Mutex<Vec<String>>>, count: usize) -> Vec<String> {
        for _ in 0..250 {
            if seen.lock().unwrap().len() >= count {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        seen.lock().unwrap().clone()
    }

    /// Serves a [`FakeService`] offering `capabilities` on `bus`; what it was asked is
    /// written to the returned list.
    async fn fake_service(
        bus: &PrivateBus,
        capabilities: &[&str],
    ) -> (zbus::Connection, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let service = zbus::connection::Builder::address(bus.address.as_str())
            .unwrap()
            .name(SERVICE)
            .unwrap()
            .serve_at(
                PATH,
                FakeService {
                    seen: Arc::clone(&seen),
                    next: 0,
                    capabilities: capabilities.iter().map(|c| c.to_string()).collect(),
                },
            )
            .unwrap()
            .build()
            .await
            .expect("the fake notification service");
        (service, seen)
    }

    fn ringing(call: u64, who: &str, address: &str) -> Note {
        Note::Ringing {
            call,
            who: who.into(),
            address: address.into(),
        }
    }

    /// What the fake service records for the `id`th notification of a ringing call with the
    /// three buttons.
    fn shown_with_buttons(id: u32, who: &str, address: &str) -> String {
        format!(
            "Callisto shows {id}: Incoming call / {who}\n{address} (urgency Some(2)) \
             [answer, Answer, answer-audio, Audio only, decline, Decline]"
        )
    }

    #[tokio::test]
    async fn a_ringing_call_is_shown_until_it_stops_ringing() {
        let bus = PrivateBus::start().expect("a private D-Bus daemon");
        // A service without buttons.
        let (_service, seen) = fake_service(&bus, &["body"]).await;
        let (notifier, _choices) = Notifier::start(Bus::Address(bus.address.clone()));
        notifier.send(ringing(1, "Bob", "sip:bob@example.org"));
        notifier.send(Note::Quiet);
        // A call whose caller has no name shows its address once.
        notifier.send(ringing(2, "sip:carol@example.org", "sip:carol@example.org"));
        // Quiet twice closes once.
        notifier.send(Note::Quiet);
        notifier.send(Note::Quiet);
        assert_eq!(
            wait_for(&seen, 4).await,
            [
                "Callisto shows 1: Incoming call / Bob\nsip:bob@example.org (urgency Some(2)) []",
                "closes 1",
                "Callisto shows 2: Incoming call / sip:carol@example.org (urgency Some(2)) []",
                "closes 2",
            ]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(seen.lock().unwrap().len(), 4);
    }

    /// The service's signal that the button `key` was pressed on notification `id`.
    async fn invoke(service: &zbus::Connection, id: u32, key: &str) {
        service
            .emit_signal(None::<&str>, PATH, SERVICE, "ActionInvoked", &(id, key))
            .await
            .unwrap();
    }

    /// The service reports a button pressed on notification `id`; the choice the notifier
    /// makes of it, if any within 5 s (a signal that comes while the notifier still waits for
    /// the notification's id is queued and read after).
    async fn press(
        service: &zbus::Connection,
        choices: &mut mpsc::UnboundedReceiver<Choice>,
        id: u32,
        key: &str,
    ) -> Option<Choice> {
        invoke(service, id, key).await;
        tokio::time::timeout(Duration::from_secs(5), choices.recv())
            .await
            .ok()
            .flatten()
    }

    #[tokio::test]
    async fn the_buttons_on_a_ringing_calls_notification_answer_or_decline_that_call() {
        let bus = PrivateBus::start().expect("a private D-Bus daemon");
        let (service, seen) = fake_service(&bus, &["actions", "body"]).await;
        let (notifier, mut choices) = Notifier::start(Bus::Address(bus.address.clone()));
        notifier.send(ringing(7, "Bob", "sip:bob@example.org"));
        assert_eq!(
            wait_for(&seen, 1).await,
            [shown_with_buttons(1, "Bob", "sip:bob@example.org")]
        );
        assert_eq!(
            press(&service, &mut choices, 1, "answer-audio").await,
            Some(Choice::Answer {
                call: 7,
                video: false
            })
        );
        assert_eq!(
            press(&service, &mut choices, 1, "answer").await,
            Some(Choice::Answer {
                call: 7,
                video: true
            })
        );
        // Another call rings in the same notification: its buttons are about that call.
        notifier.send(ringing(8, "Carol", "sip:carol@example.org"));
        wait_for(&seen, 2).await;
        assert_eq!(
            press(&service, &mut choices, 1, "decline").await,
            Some(Choice::Decline { call: 8 })
        );
        // Another notification's buttons, and an unknown button, choose nothing.
        for (id, key) in [(99, "answer"), (1, "default")] {
            invoke(&service, id, key).await;
        }
        // Once nothing rings, the buttons of the closed notification choose nothing.
        notifier.send(Note::Quiet);
        assert_eq!(wait_for(&seen, 3).await[2], "closes 1");
        invoke(&service, 1, "answer").await;
        let late = tokio::time::timeout(Duration::from_millis(500), choices.recv()).await;
        assert!(late.is_err(), "{late:?}");
    }

    #[tokio::test]
    async fn a_notification_the_user_dismissed_is_not_closed_again_and_its_buttons_are_void() {
        let bus = PrivateBus::start().expect("a private D-Bus daemon");
        let (service, seen) = fake_service(&bus, &["actions", "body"]).await;
        let (notifier, mut choices) = Notifier::start(Bus::Address(bus.address.clone()));
        notifier.send(ringing(5, "Bob", "sip:bob@example.org"));
        wait_for(&seen, 1).await;
        // Dismissed by the user (reason 2); a button signal after it (signals keep their
        // order) chooses nothing.
        service
            .emit_signal(
                None::<&str>,
                PATH,
                SERVICE,
                "NotificationClosed",
                &(1u32, 2u32),
            )
            .await
            .unwrap();
        invoke(&service, 1, "answer").await;
        let void = tokio::time::timeout(Duration::from_secs(1), choices.recv()).await;
        assert!(void.is_err(), "{void:?}");
        // Nothing to close; the next call gets a notification of its own.
        notifier.send(Note::Quiet);
        notifier.send(ringing(6, "Carol", "sip:carol@example.org"));
        assert_eq!(
            wait_for(&seen, 2).await[1],
            shown_with_buttons(2, "Carol", "sip:carol@example.org")
        );
    }

    #[tokio::test]
    async fn a_notification_service_that_starts_later_gets_the_buttons() {
        let bus = PrivateBus::start().expect("a private D-Bus daemon");
        let (notifier, mut choices) = Notifier::start(Bus::Address(bus.address.clone()));
        // The first call rings before any service is there: nothing is shown.
        notifier.send(ringing(1, "Bob", "sip:bob@example.org"));
        notifier.send(Note::Quiet);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (service, seen) = fake_service(&bus, &["actions", "body"]).await;
        notifier.send(ringing(2, "Carol", "sip:carol@example.org"));
        assert_eq!(
            wait_for(&seen, 1).await,
            [shown_with_buttons(1, "Carol", "sip:carol@example.org")]
        );
        assert_eq!(
            press(&service, &mut choices, 1, "decline").await,
            Some(Choice::Decline { call: 2 })
        );
    }

    #[tokio::test]
    async fn without_a_notification_service_notes_go_nowhere() {
        let bus = PrivateBus::start().expect("a private D-Bus daemon");
        let (notifier, _choices) = Notifier::start(Bus::Address(bus.address.clone()));
        notifier.send(ringing(1, "Bob", "sip:bob@example.org"));
        notifier.send(Note::Quiet);
        // The task is still there and takes more.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(notifier.notes.send(Note::Quiet).is_ok());
    }
}
