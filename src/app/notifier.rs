//! Desktop notifications: an incoming call shows one through the freedesktop notification
//! service (`org.freedesktop.Notifications` on the session D-Bus), closed again once the call
//! is answered, declined or gone. Where there is no session bus or no notification service,
//! the window's banner and the ringtone are all there is; that is logged once, not shown.
//!
//! One tokio task owns the bus connection (made on first use); the controller only sends it
//! [`Note`]s and never waits for the bus.

use std::collections::HashMap;

use tokio::sync::mpsc;
use zbus::zvariant::Value;

const SERVICE: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";

/// What the desktop should show.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    /// A call rings: `who` (a name or address) and the address it comes from.
    Ringing { who: String, address: String },
    /// Nothing rings any more.
    Quiet,
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
    /// Starts the task on the current tokio runtime.
    pub fn start(bus: Bus) -> Notifier {
        let (notes, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(bus, rx));
        Notifier { notes }
    }

    pub fn send(&self, note: Note) {
        let _ = self.notes.send(note);
    }
}

async fn run(bus: Bus, mut notes: mpsc::UnboundedReceiver<Note>) {
    let mut connection: Option<zbus::Connection> = None;
    let mut tried = false;
    // The notification on screen, to replace or close.
    let mut shown: Option<u32> = None;
    while let Some(note) = notes.recv().await {
        if connection.is_none() && !tried {
            tried = true;
            match connect(&bus).await {
                Ok(c) => connection = Some(c),
                Err(error) => {
                    tracing::info!(%error, "no desktop notifications: no session bus");
                }
            }
        }
        let Some(bus) = connection.as_ref() else {
            continue;
        };
        let outcome = match note {
            Note::Ringing { who, address } => notify(bus, shown.unwrap_or(0), &who, &address)
                .await
                .map(|id| shown = Some(id)),
            Note::Quiet => match shown.take() {
                Some(id) => close(bus, id).await,
                None => Ok(()),
            },
        };
        if let Err(error) = outcome {
            tracing::info!(%error, "the desktop notification service did not answer");
        }
    }
}

async fn connect(bus: &Bus) -> zbus::Result<zbus::Connection> {
    match bus {
        Bus::Session => zbus::Connection::session().await,
        Bus::Address(address) => {
            zbus::connection::Builder::address(address.as_str())?
                .build()
                .await
        }
    }
}

/// Shows (or replaces `replaces`) the notification of a ringing call; returns its id.
async fn notify(
    bus: &zbus::Connection,
    replaces: u32,
    who: &str,
    address: &str,
) -> zbus::Result<u32> {
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
    let actions: Vec<&str> = Vec::new();
    let reply = bus
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
    }

    #[zbus::interface(name = "org.freedesktop.Notifications")]
    impl FakeService {
        #[allow(clippy::too_many_arguments)]
        fn notify(
            &mut self,
            app_name: String,
            replaces_id: u32,
            _app_icon: String,
            summary: String,
            body: String,
            _actions: Vec<String>,
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
                "{app_name} shows {id}: {summary} / {body} (urgency {urgency:?})"
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

    #[tokio::test]
    async fn a_ringing_call_is_shown_until_it_stops_ringing() {
        let bus = PrivateBus::start().expect("a private D-Bus daemon");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let _service = zbus::connection::Builder::address(bus.address.as_str())
            .unwrap()
            .name(SERVICE)
            .unwrap()
            .serve_at(
                PATH,
                FakeService {
                    seen: Arc::clone(&seen),
                    next: 0,
                },
            )
            .unwrap()
            .build()
            .await
            .expect("the fake notification service");
        let notifier = Notifier::start(Bus::Address(bus.address.clone()));
        notifier.send(Note::Ringing {
            who: "Bob".into(),
            address: "sip:bob@example.org".into(),
        });
        notifier.send(Note::Quiet);
        // A call whose caller has no name shows its address once.
        notifier.send(Note::Ringing {
            who: "sip:carol@example.org".into(),
            address: "sip:carol@example.org".into(),
        });
        // Quiet twice closes once.
        notifier.send(Note::Quiet);
        notifier.send(Note::Quiet);
        assert_eq!(
            wait_for(&seen, 4).await,
            [
                "Callisto shows 1: Incoming call / Bob\nsip:bob@example.org (urgency Some(2))",
                "closes 1",
                "Callisto shows 2: Incoming call / sip:carol@example.org (urgency Some(2))",
                "closes 2",
            ]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(seen.lock().unwrap().len(), 4);
    }

    #[tokio::test]
    async fn without_a_notification_service_notes_go_nowhere() {
        let bus = PrivateBus::start().expect("a private D-Bus daemon");
        let notifier = Notifier::start(Bus::Address(bus.address.clone()));
        notifier.send(Note::Ringing {
            who: "Bob".into(),
            address: "sip:bob@example.org".into(),
        });
        notifier.send(Note::Quiet);
        // The task is still there and takes more.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(notifier.notes.send(Note::Quiet).is_ok());
    }
}
