//! Rows the window shows, as the tests and benches that draw it fill them in.

use callisto::app::{AccountRow, CallRow};

/// An account that is registered.
pub fn registered() -> AccountRow {
    AccountRow {
        name: "work".into(),
        user: "sip:alice@example.org".into(),
        state: "Registered".into(),
        detail: "for 10 min".into(),
        tone: 1,
    }
}

/// A secure video call with Bob, connected for a while.
pub fn connected_call() -> CallRow {
    CallRow {
        key: 1,
        remote: "Bob".into(),
        state: "Connected".into(),
        timer: "2:17".into(),
        video: true,
        secure: true,
        codec: "opus".into(),
        camera_on: true,
        ..CallRow::default()
    }
}
