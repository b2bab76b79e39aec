//! A private X server (Xvfb) for tests that open the window: no TCP listener, its own display
//! number, stopped by PID when dropped.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::logged_child::LoggedChild;

pub struct Xvfb {
    child: LoggedChild,
    display: String,
}

impl Xvfb {
    /// Starts Xvfb on the first free display from :90 up, with a 1280x800 24-bit screen, and
    /// waits for its socket.
    pub fn start(log_dir: &Path) -> io::Result<Xvfb> {
        for number in 90..140u32 {
            let socket = PathBuf::from(format!("/tmp/.X11-unix/X{number}"));
            let lock = PathBuf::from(format!("/tmp/.X{number}-lock"));
            if socket.exists() || lock.exists() {
                continue;
            }
            let mut command = Command::new("Xvfb");
            command.args([
                &format!(":{number}"),
                "-screen",
                "0",
                "1280x800x24",
                "-nolisten",
                "tcp",
                "-noreset",
            ]);
            let mut child =
                LoggedChild::spawn("Xvfb", command, &log_dir.join(format!("xvfb-{number}.log")))?;
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if socket.exists() {
                    return Ok(Xvfb {
                        child,
                        display: format!(":{number}"),
                    });
                }
                if child.try_exit_status()?.is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.stop(Duration::from_secs(1));
        }
        Err(io::Error::other(
            "Xvfb did not start on any display from :90 to :139",
        ))
    }

    /// The `DISPLAY` value for clients.
    pub fn display(&self) -> &str {
        &self.display
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.stop(Duration::from_secs(2));
    }
}
