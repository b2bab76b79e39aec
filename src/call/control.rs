//! Lines typed on standard input while calls run.
//!
//! `hold`, `resume`, `dtmf DIGITS`, `transfer URI`, `hangup`, `merge`, `camera on|off`, each
//! optionally followed by a
//! call number (the `call` field of the JSON events) to steer one call when several are up
//! (call waiting, a transfer in progress). Without a number a line goes to every live call.

use tokio::sync::mpsc;

use crate::engine::{CallKey, Command};

/// What a line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Action {
    Hold,
    Resume,
    Dtmf(String),
    Transfer(String),
    HangUp,
    /// Merge the live calls (or the numbered ones) into a conference hosted here.
    Merge,
    /// Show our picture (on) or black instead (off).
    Camera(bool),
}

/// One understood line: the action and, when given, the call it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Control {
    pub(super) action: Action,
    pub(super) call: Option<CallKey>,
}

impl Control {
    /// The engine command for `key`.
    pub(super) fn command(&self, key: CallKey) -> Command {
        match &self.action {
            Action::Hold => Command::Hold { key },
            Action::Resume => Command::Resume { key },
            Action::Dtmf(digits) => Command::Dtmf {
                key,
                digits: digits.clone(),
            },
            Action::Transfer(target) => Command::Transfer {
                key,
                target: target.clone(),
            },
            Action::HangUp => Command::HangUp { key },
            Action::Merge => Command::Merge { keys: vec![key] },
            Action::Camera(on) => Command::Camera { key, on: *on },
        }
    }

    /// Whether the line is for `key`.
    pub(super) fn is_for(&self, key: CallKey) -> bool {
        self.call.is_none_or(|call| call == key)
    }
}

/// Reads one line; `None` when it is not understood.
pub(super) fn parse_control(line: &str) -> Option<Control> {
    let mut words = line.split_whitespace();
    let (action, rest) = match words.next()? {
        "hold" => (Action::Hold, words.next()),
        "resume" | "unhold" => (Action::Resume, words.next()),
        "dtmf" => (Action::Dtmf(words.next()?.to_string()), words.next()),
        "transfer" => (Action::Transfer(words.next()?.to_string()), words.next()),
        "hangup" | "bye" | "quit" => (Action::HangUp, words.next()),
        "merge" | "conference" => (Action::Merge, words.next()),
        "camera" => match words.next()? {
            "on" => (Action::Camera(true), words.next()),
            "off" => (Action::Camera(false), words.next()),
            _ => return None,
        },
        _ => return None,
    };
    let call = match rest {
        Some(number) => Some(CallKey(number.parse().ok()?)),
        None => None,
    };
    if words.next().is_some() {
        return None;
    }
    Some(Control { action, call })
}

/// Reads control lines from standard input on a thread of its own (stdin blocks).
pub(super) fn control_lines() -> mpsc::UnboundedReceiver<Control> {
    stdin_lines(parse_control)
}

/// Reads lines from standard input on a thread of its own (stdin blocks), passing on what
/// `parse` understands and warning of the rest.
pub(super) fn stdin_lines<T: Send + 'static>(
    parse: fn(&str) -> Option<T>,
) -> mpsc::UnboundedReceiver<T> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
            match parse(&line) {
                Some(control) => {
                    if tx.send(control).is_err() {
                        return;
                    }
                }
                None => tracing::warn!(line = line.trim(), "control line not understood"),
            }
            line.clear();
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_understood() {
        let hold = parse_control("hold\n").unwrap();
        assert_eq!(hold.action, Action::Hold);
        assert_eq!(parse_control("merge").unwrap().action, Action::Merge);
        let off = parse_control("camera off 2").unwrap();
        assert_eq!(
            (off.action, off.call),
            (Action::Camera(false), Some(CallKey(2)))
        );
        assert_eq!(
            parse_control("camera on").unwrap().action,
            Action::Camera(true)
        );
        assert!(parse_control("camera").is_none());
        assert!(parse_control("camera sideways").is_none());
        assert_eq!(parse_control("conference").unwrap().action, Action::Merge);
        assert_eq!(hold.call, None);
        assert!(hold.is_for(CallKey(7)));
        let dtmf = parse_control("dtmf 12#").unwrap();
        assert_eq!(dtmf.action, Action::Dtmf("12#".into()));
        assert_eq!(parse_control("hangup").unwrap().action, Action::HangUp);
        assert!(parse_control("dance").is_none());
        assert!(parse_control("dtmf").is_none());
    }

    #[test]
    fn a_call_number_steers_one_call() {
        let resume = parse_control("resume 3").unwrap();
        assert_eq!(resume.call, Some(CallKey(3)));
        assert!(resume.is_for(CallKey(3)));
        assert!(!resume.is_for(CallKey(4)));
        let transfer = parse_control("transfer sip:carol@example.org 2").unwrap();
        assert_eq!(
            transfer.action,
            Action::Transfer("sip:carol@example.org".into())
        );
        assert_eq!(transfer.call, Some(CallKey(2)));
        assert!(matches!(
            transfer.command(CallKey(2)),
            Command::Transfer { key: CallKey(2), ref target } if target == "sip:carol@example.org"
        ));
        assert!(parse_control("hangup two").is_none());
        assert!(parse_control("hold 1 2").is_none());
    }
}
