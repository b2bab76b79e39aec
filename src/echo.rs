//! The echo test, served in-process: a second engine on a loopback port answers every call
//! and sends back what it hears and sees one second later ([`AudioInput::Echo`],
//! [`VideoInput::Echo`]).
//!
//! Calling `sip:echo@localhost` (or just `echo`) from the window or `callisto call` starts the
//! service on first use and calls it like any peer, so the test goes through the whole chain
//! a real call takes — devices, codecs, RTP (SRTP when the policy offers it), jitter buffer,
//! the WebRTC path when the account offers it — without a server or an account. The service
//! listens on 127.0.0.1 only: nothing outside this machine can call it.

use std::net::SocketAddr;
use std::time::Duration;

use callisto_signaling::transaction::TimerConfig;
use tokio::sync::mpsc;

use crate::engine::{
    self, AudioInput, CallUpdate, Command, EngineConfig, EngineEvent, MediaOptions, VideoInput,
    VideoOptions,
};
use crate::transport::TransportConfig;

/// The address that reaches the echo test.
pub const ECHO_ADDRESS: &str = "sip:echo@localhost";

/// Whether `text` (what a user typed or picked) means the echo test: `echo`,
/// `sip:echo@localhost` or `echo@localhost`, in any case.
pub fn is_echo_address(text: &str) -> bool {
    let text = text.trim().to_ascii_lowercase();
    let text = text.strip_prefix("sip:").unwrap_or(&text);
    matches!(text, "echo" | "echo@localhost")
}

/// The echo test as a caller reaches it: the service, started on the first call to it and
/// kept for the next. Dropping it stops the service.
#[derive(Default)]
pub struct EchoTest {
    service: Option<EchoService>,
}

impl EchoTest {
    /// Where to call the echo test, starting the service (see [`EchoService::start`] for
    /// `video`) if it is not running yet; a running one answers the next call with `video`.
    pub async fn uri(&mut self, video: Option<&VideoOptions>) -> Result<rsip::Uri, String> {
        if let Some(service) = &self.service {
            service.answer_with(video);
            return Ok(service.uri());
        }
        let service = EchoService::start(video).await?;
        let uri = service.uri();
        self.service = Some(service);
        Ok(uri)
    }
}

/// The running echo service. Dropping it stops its engine (calls to it end with a BYE).
pub struct EchoService {
    commands: mpsc::UnboundedSender<Command>,
    address: SocketAddr,
}

impl EchoService {
    /// Starts the service on a free loopback UDP port. Video calls get their pictures back
    /// in the size and rate of `video` (the caller's own, so nothing is stretched; 640x480
    /// at 30 fps without).
    pub async fn start(video: Option<&VideoOptions>) -> Result<EchoService, String> {
        let mut engine = engine::start(loopback_engine())
            .await
            .map_err(|e| format!("cannot start the echo test: {e}"))?;
        let address = engine
            .local_udp
            .ok_or("cannot start the echo test: no loopback port")?;
        let service = EchoService {
            commands: engine.commands.clone(),
            address,
        };
        service.answer_with(video);
        tokio::spawn(async move {
            while let Some(event) = engine.events.recv().await {
                match event {
                    EngineEvent::Call {
                        key,
                        update: CallUpdate::Incoming { .. },
                    } => {
                        tracing::info!(?key, "echo test answers");
                        let _ = engine.commands.send(Command::Answer { key, video: true });
                    }
                    EngineEvent::Stopped => break,
                    _ => {}
                }
            }
        });
        tracing::info!(%address, "echo test listening");
        Ok(service)
    }

    /// Answers the calls that come next with pictures in the size and rate of `video` (a
    /// caller whose settings changed since the service started).
    pub fn answer_with(&self, video: Option<&VideoOptions>) {
        let _ = self.commands.send(Command::AcceptCalls {
            media: Some(Box::new(echo_media(video))),
        });
    }

    /// Where the service takes calls: `sip:echo@127.0.0.1:PORT`.
    pub fn uri(&self) -> rsip::Uri {
        rsip::Uri {
            scheme: Some(rsip::Scheme::Sip),
            auth: Some(rsip::Auth {
                user: "echo".into(),
                password: None,
            }),
            host_with_port: self.address.into(),
            params: Vec::new(),
            headers: Vec::new(),
        }
    }
}

/// An engine on a free 127.0.0.1 UDP port, nothing else.
fn loopback_engine() -> EngineConfig {
    EngineConfig {
        transport: TransportConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            enable_tcp: false,
            ..TransportConfig::default()
        },
        timers: TimerConfig::default(),
        shutdown_grace: Duration::from_secs(1),
    }
}

/// What the service answers with: the echo of sound and pictures, the pictures in the size
/// and rate of `video` (640x480 at 30 fps without, so a later video call gets its pictures
/// back too).
fn echo_media(video: Option<&VideoOptions>) -> MediaOptions {
    let video = match video {
        Some(video) => VideoOptions {
            input: VideoInput::Echo,
            record: None,
            ..video.clone()
        },
        None => VideoOptions {
            input: VideoInput::Echo,
            record: None,
            width: 640,
            height: 480,
            fps: 30,
            max_bitrate: 1_500_000,
            identity: 0,
            single_stream: false,
        },
    };
    MediaOptions {
        input: AudioInput::Echo,
        video: Some(video),
        ..MediaOptions::default()
    }
}

impl Drop for EchoService {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Shutdown);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_addresses_are_recognised() {
        for text in ["echo", " Echo ", "sip:echo@localhost", "SIP:ECHO@LOCALHOST"] {
            assert!(is_echo_address(text), "{text}");
        }
        for text in [
            "echo@example.org",
            "sip:echo@127.0.0.1",
            "echoes",
            "sip:bob@localhost",
        ] {
            assert!(!is_echo_address(text), "{text}");
        }
    }

    #[tokio::test]
    async fn the_service_listens_on_loopback_only() {
        let service = EchoService::start(None).await.unwrap();
        assert!(service.address.ip().is_loopback());
        assert_eq!(service.uri().host_with_port.host.to_string(), "127.0.0.1");
    }

    /// The size of the pictures the echo of one call to `echo` sends back to a caller whose
    /// video is `width`x`height`, read from the call's statistics.
    async fn echoed_size(
        caller: &mut engine::EngineHandle,
        echo: &mut EchoTest,
        width: u32,
        height: u32,
    ) -> Option<(u32, u32)> {
        let video = VideoOptions {
            input: VideoInput::Pattern,
            record: None,
            width,
            height,
            fps: 15,
            max_bitrate: 300_000,
            identity: 1,
            single_stream: false,
        };
        let to = echo.uri(Some(&video)).await.unwrap();
        let media = MediaOptions {
            video: Some(video),
            ..MediaOptions::default()
        };
        let call = crate::call::direct_call(
            &crate::cli::AccountArgs::default(),
            caller,
            to,
            &crate::config::Config::default(),
            media,
        )
        .await
        .unwrap();
        let key = caller.new_call_key();
        let _ = caller.commands.send(Command::Call {
            key,
            account: None,
            call: Box::new(call),
        });
        let mut size = None;
        let wait = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(event) = caller.events.recv().await {
                let EngineEvent::Call { update, .. } = event else {
                    continue;
                };
                match update {
                    CallUpdate::Statistics(summary) if size.is_none() => {
                        size = summary.video.and_then(|v| v.receive_resolution);
                        if size.is_some() {
                            let _ = caller.commands.send(Command::HangUp { key });
                        }
                    }
                    CallUpdate::Ended { .. } | CallUpdate::Failed { .. } => break,
                    _ => {}
                }
            }
        });
        wait.await.expect("the echo call did not end");
        size
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_running_service_sends_pictures_in_the_latest_callers_size() {
        let mut caller = engine::start(loopback_engine()).await.unwrap();
        let mut echo = EchoTest::default();
        assert_eq!(
            echoed_size(&mut caller, &mut echo, 320, 240).await,
            Some((320, 240))
        );
        assert_eq!(
            echoed_size(&mut caller, &mut echo, 176, 144).await,
            Some((176, 144))
        );
    }

    #[tokio::test]
    async fn the_echo_test_starts_once_and_is_called_there_again() {
        let mut echo = EchoTest::default();
        let first = echo.uri(None).await.unwrap();
        assert_eq!(echo.uri(None).await.unwrap(), first);
    }
}
