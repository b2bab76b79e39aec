//! Callisto, a desktop video softphone: the app's library half.
//!
//! The binary (`src/main.rs`) is a thin shell over these modules, which integration tests and
//! benchmarks use directly:
//!
//! - [`transport`]: SIP over UDP, TCP, TLS and WebSocket on tokio, feeding bytes to the sans-IO
//!   core.
//! - [`dns`]: locating SIP servers from `sip:`/`sips:` URIs (RFC 3263).
//! - [`engine`]: the one task that owns SIP state: registrations and calls (SDP offer/answer,
//!   media sessions).
//! - [`register`], [`call`]: the headless commands.
//! - [`app`]: the desktop app's view-model and controller (no window; tested headless). The
//!   window itself, Slint and its adapters, is the `callisto-ui` package (`ui/`).
//! - [`echo`]: the echo test, served in-process.
//! - [`storage`]: contacts and call history in SQLite; [`quarantine`] moves damaged files aside.

pub mod account;
pub mod app;
pub mod call;
pub mod cli;
pub mod config;
pub mod dns;
pub mod echo;
pub mod engine;
pub mod quarantine;
pub mod register;
pub mod storage;
pub mod transport;
