//! Measurements of calls and of the processes in them, for benches that compare Callisto with
//! baresip on the same machine in the same run.
//!
//! - [`ProcessMeter`]: CPU time (user + system, all threads, in nanoseconds from the process's
//!   CPU-time clock) of a process by PID over an interval, as a percentage of one core, its
//!   peak resident set (`VmHWM`) and its private memory (`RssAnon`), from `/proc`.
//! - [`SendTrace`]: `strace` attached to a process by PID, recording every `sendto`/`sendmsg`
//!   with its wall-clock time in microseconds, to find the first RTP packet it sent. Attaching
//!   needs ptrace rights over the process (root, or the same user with Yama `ptrace_scope` 0).
//! - [`CallSetup`]: a call's setup times from the proxy's timestamps
//!   ([`super::kamailio_calls::CallTimeline`]) and the callee's datagrams on the wire
//!   ([`super::wire_capture::WireCapture`]). Both clocks are the system's wall clock, so the
//!   two sources compare directly.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use super::kamailio::Kamailio;
use super::kamailio_calls::{parse_unix_time, CallTimeline};
use super::logged_child::LoggedChild;
use super::wire_capture::{udp_ports_of, WireCapture};

/// How long [`SendTrace::attach`] waits for strace to report it is attached.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(5);

/// CPU time (user + system) the process `pid` has used so far, all threads included.
pub fn cpu_time(pid: u32) -> io::Result<Duration> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command: state (3), …, utime (14), stime (15).
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed /proc stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |index: usize| -> io::Result<u64> {
        fields
            .get(index)
            .and_then(|field| field.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed /proc stat"))
    };
    // `rest` starts at field 3, so field n is at index n - 3.
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_secs_f64(
        total as f64 / clock_ticks_per_second(),
    ))
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// The CPU time (user + system) of the process `pid` so far, all threads included, from its
/// CPU-time clock: nanoseconds, where `/proc/PID/stat` gives clock ticks. `None` when the
/// clock cannot be read.
fn process_cpu_clock(pid: u32) -> Option<Duration> {
    let pid = libc::pid_t::try_from(pid).ok()?;
    let mut clock: libc::clockid_t = 0;
    // SAFETY: `clock` is a valid place for the clock id.
    if unsafe { libc::clock_getcpuclockid(pid, &mut clock) } != 0 {
        return None;
    }
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write into.
    if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
        return None;
    }
    let (secs, nanos) = (
        u64::try_from(now.tv_sec).ok()?,
        u32::try_from(now.tv_nsec).ok()?,
    );
    Some(Duration::new(secs, nanos))
}

/// The peak resident set size (`VmHWM`) of the process `pid`, in KiB.
pub fn peak_rss_kib(pid: u32) -> io::Result<u64> {
    status_kib(&status(pid)?, "VmHWM:")
}

/// The resident set size now (`VmRSS`) of the process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> io::Result<u64> {
    status_kib(&status(pid)?, "VmRSS:")
}

/// The process `pid`'s `/proc/PID/status`.
fn status(pid: u32) -> io::Result<String> {
    fs::read_to_string(format!("/proc/{pid}/status"))
}

/// A field of a `/proc/PID/status` text given in kB.
fn status_kib(status: &str, field: &str) -> io::Result<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("no {field} in /proc status"),
            )
        })
}

/// What a process used over an interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessUsage {
    /// CPU time used in the interval.
    pub cpu: Duration,
    /// The interval's length.
    pub wall: Duration,
    /// `cpu / wall` in percent of one core.
    pub cpu_percent: f64,
    /// The peak resident set at the end of the interval, in KiB (a lifetime peak).
    pub peak_rss_kib: u64,
    /// The process's own memory at the end of the interval (`RssAnon`: heap, stacks, written
    /// data), in KiB — the resident set less the pages of files it maps (its executable and
    /// libraries, which the kernel shares and can drop).
    pub private_kib: u64,
}

/// Measures one process's CPU use from [`ProcessMeter::start`] to [`ProcessMeter::finish`].
///
/// `/proc/PID/stat` counts in clock ticks (10 ms), a tenth of a percent over a 10 s call. So the
/// meter reads the process's CPU-time clock (`clock_getcpuclockid`), nanoseconds for all its
/// threads, those that have ended included; the ticks serve where that clock cannot be read.
#[derive(Debug, Clone, Copy)]
pub struct ProcessMeter {
    pid: u32,
    cpu: Duration,
    precise: Option<Duration>,
    at: Instant,
}

impl ProcessMeter {
    /// Starts measuring the process `pid`.
    pub fn start(pid: u32) -> io::Result<ProcessMeter> {
        Ok(ProcessMeter {
            pid,
            cpu: cpu_time(pid)?,
            precise: process_cpu_clock(pid),
            at: Instant::now(),
        })
    }

    /// The usage since [`ProcessMeter::start`]; the process must still be running.
    pub fn finish(&self) -> io::Result<ProcessUsage> {
        let ticks = cpu_time(self.pid)?.saturating_sub(self.cpu);
        let cpu = match (self.precise, process_cpu_clock(self.pid)) {
            (Some(before), Some(after)) => after.saturating_sub(before),
            _ => ticks,
        };
        let wall = self.at.elapsed();
        // Both memory figures from one reading.
        let status = status(self.pid)?;
        Ok(ProcessUsage {
            cpu,
            wall,
            cpu_percent: 100.0 * cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9),
            peak_rss_kib: status_kib(&status, "VmHWM:")?,
            private_kib: status_kib(&status, "RssAnon:")?,
        })
    }
}

/// A datagram a process sent (seen by [`SendTrace`] or a [`WireCapture`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentDatagram {
    /// When it was sent (wall clock): when the send call began, to the microsecond, in a
    /// trace; when it left on `lo`, to the nanosecond, in a capture.
    pub at: SystemTime,
    /// The first bytes of the payload (strace shows 16 at most).
    pub head: Vec<u8>,
}

impl SentDatagram {
    /// Whether the payload looks like RTP: version 2 and a payload type that is not RTCP's
    /// (200–204 read as 72–76 with the marker bit). SIP text, STUN and RTCP are not.
    pub fn is_rtp(&self) -> bool {
        match self.head.as_slice() {
            [first, second, ..] => first >> 6 == 2 && !(72..=76).contains(&(second & 0x7f)),
            _ => false,
        }
    }

    /// The RTP payload type, if this is RTP.
    pub fn payload_type(&self) -> Option<u8> {
        self.is_rtp().then(|| self.head[1] & 0x7f)
    }
}

/// Parses a line of `strace -ttt -xx` output for `sendto`/`sendmsg`/`sendmmsg` into the
/// datagram sent (its first quoted buffer). Other lines give `None`.
///
/// Lines look like `1234 1700000000.123456 sendto(7, "\x80\x00…"..., 172, 0, {…}, 16) = 172`
/// (the PID only with `-f`; an interrupted call ends in `<unfinished ...>`).
pub fn parse_strace_send(line: &str) -> Option<SentDatagram> {
    let mut words = line.split_whitespace();
    let mut word = words.next()?;
    if !word.contains('.') {
        word = words.next()?;
    }
    let at = parse_unix_time(word)?;
    let call = line.split_once(word)?.1.trim_start();
    if !["sendto(", "sendmsg(", "sendmmsg("]
        .iter()
        .any(|name| call.starts_with(name))
    {
        return None;
    }
    let (_, quoted) = call.split_once('"')?;
    let (hex, _) = quoted.split_once('"')?;
    let head = hex
        .split("\\x")
        .filter(|byte| !byte.is_empty())
        .map(|byte| u8::from_str_radix(byte, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some(SentDatagram { at, head })
}

/// strace attached to a running process, logging every datagram it sends.
pub struct SendTrace {
    child: LoggedChild,
    output: PathBuf,
}

impl SendTrace {
    /// Attaches strace to `pid` (all its threads) and waits until it is attached. The trace
    /// goes to `output`.
    pub fn attach(pid: u32, output: &Path) -> io::Result<SendTrace> {
        let mut command = Command::new("strace");
        command
            .args(["-f", "-ttt", "-xx", "-s", "16"])
            .args(["-e", "trace=sendto,sendmsg,sendmmsg", "-e", "signal=none"])
            .arg("-o")
            .arg(output)
            .arg("-p")
            .arg(pid.to_string());
        let log = output.with_extension("strace.log");
        let child = LoggedChild::spawn("strace", command, &log).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("{error} (strace is in Debian's `strace` package)"),
            )
        })?;
        if !child.wait_for(
            |lines| lines.iter().any(|line| line.contains("attached")),
            ATTACH_TIMEOUT,
        ) {
            return Err(child.error(
                io::ErrorKind::PermissionDenied,
                "strace did not attach (ptrace needs root or kernel.yama.ptrace_scope=0)",
            ));
        }
        Ok(SendTrace {
            child,
            output: output.to_owned(),
        })
    }

    /// Detaches strace (the traced process keeps running) and waits for it to exit.
    pub fn stop(&mut self) -> io::Result<()> {
        self.child.stop(Duration::from_secs(3)).map(drop)
    }

    /// The datagrams sent while attached; read after [`SendTrace::stop`] so the file is whole.
    pub fn datagrams(&self) -> io::Result<Vec<SentDatagram>> {
        Ok(fs::read_to_string(&self.output)?
            .lines()
            .filter_map(parse_strace_send)
            .collect())
    }

    /// The first RTP packet sent at or after `after`.
    pub fn first_rtp_after(&self, after: SystemTime) -> io::Result<Option<SentDatagram>> {
        Ok(self
            .datagrams()?
            .into_iter()
            .find(|datagram| datagram.at >= after && datagram.is_rtp()))
    }
}

/// How long a call took to set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallSetup {
    /// From the INVITE reaching the proxy to the 2xx passing it back.
    pub invite_to_answer: Duration,
    /// From the INVITE reaching the proxy to the callee sending its first RTP packet.
    pub invite_to_callee_rtp: Option<Duration>,
}

impl CallSetup {
    /// The setup times of `timeline`, with the callee's first RTP packet taken from
    /// `callee_sends` (for instance [`SendTrace::datagrams`], or the callee's datagrams in a
    /// [`WireCapture`]). `None` without an answer.
    pub fn measure(timeline: &CallTimeline, callee_sends: &[SentDatagram]) -> Option<CallSetup> {
        let invite_to_answer = timeline.setup_time()?;
        let invite_to_callee_rtp = callee_sends
            .iter()
            .find(|datagram| datagram.at >= timeline.invite && datagram.is_rtp())
            .and_then(|datagram| datagram.at.duration_since(timeline.invite).ok());
        Some(CallSetup {
            invite_to_answer,
            invite_to_callee_rtp,
        })
    }
}

/// What one call cost, measured by [`measure_established_call`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallMeasurement {
    /// Setup times from the proxy's log and the callee's datagrams.
    pub setup: CallSetup,
    /// The caller's CPU and memory while the call ran.
    pub caller: ProcessUsage,
    /// The callee's CPU and memory while the call ran.
    pub callee: ProcessUsage,
}

/// How long after the call is up the capture keeps running, so the callee's first RTP packet
/// is in it.
const CAPTURE_TAIL: Duration = Duration::from_millis(300);

/// Measures the first call in `kamailio`'s log, which must have just been established between
/// the processes `caller_pid` and `callee_pid`, `capture` having started before the INVITE:
/// stops the capture (keeping what the callee's UDP sockets sent), meters both processes for
/// `duration`, and reads the setup times. Returns before anyone hangs up; works for any pair
/// of user agents, not only baresip.
pub fn measure_established_call(
    kamailio: &Kamailio,
    caller_pid: u32,
    callee_pid: u32,
    mut capture: WireCapture,
    duration: Duration,
) -> io::Result<CallMeasurement> {
    std::thread::sleep(CAPTURE_TAIL);
    let callee_ports = udp_ports_of(callee_pid)?;
    let callee_sends: Vec<SentDatagram> = capture
        .stop()?
        .into_iter()
        .filter(|datagram| callee_ports.contains(&datagram.source.port()))
        .map(|datagram| SentDatagram {
            at: datagram.at,
            head: datagram.head,
        })
        .collect();
    let caller = ProcessMeter::start(caller_pid)?;
    let callee = ProcessMeter::start(callee_pid)?;
    std::thread::sleep(duration);
    let caller = caller.finish()?;
    let callee = callee.finish()?;
    let timeline = CallTimeline::first_call(&kamailio.call_log())
        .ok_or_else(|| io::Error::other("no INVITE in the proxy's log"))?;
    let setup = CallSetup::measure(&timeline, &callee_sends)
        .ok_or_else(|| io::Error::other(format!("the call was not answered: {timeline:?}")))?;
    Ok(CallMeasurement {
        setup,
        caller,
        callee,
    })
}

/// The median of `values` (the upper one of an even count); NaN when empty.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Median, minimum and maximum of a series of measurements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// The median (the upper one of an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// How many values there were.
    pub count: usize,
}

impl Spread {
    /// The spread of `values`; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let min = values.iter().copied().reduce(f64::min)?;
        let max = values.iter().copied().reduce(f64::max)?;
        Some(Spread {
            median: median(values.to_vec()),
            min,
            max,
            count: values.len(),
        })
    }
}

/// Prints `rows` of `(label, unit, values)` as an aligned table of median, min and max under
/// `title`; a row without values prints `n/a`.
pub fn print_spread_table(title: &str, rows: &[(&str, &str, Vec<f64>)]) {
    println!("{title}");
    println!(
        "  {:<44} {:>5} {:>9} {:>9} {:>9}",
        "", "unit", "median", "min", "max"
    );
    for (label, unit, values) in rows {
        match Spread::of(values) {
            Some(spread) => println!(
                "  {label:<44} {unit:>5} {:>9.2} {:>9.2} {:>9.2}",
                spread.median, spread.min, spread.max
            ),
            None => println!("  {label:<44} {unit:>5} {:>9}", "n/a"),
        }
    }
}
