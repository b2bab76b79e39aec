//! [`WireCapture`]: the UDP datagrams sent on the loopback interface, each with the kernel's
//! time of sending, read from a packet socket (`AF_PACKET`) — a way of timing a user agent's
//! packets that costs the user agent nothing, where an strace attached to it stops it at every
//! system call. A packet socket needs `CAP_NET_RAW` (root, as the interop suites run in a
//! network namespace of their own). IPv4 only, as every test socket binds 127.0.0.1.
//!
//! [`udp_ports_of`] tells which datagrams a process sent: those from the ports of its UDP
//! sockets.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime};

/// How many payload bytes of each datagram are kept.
const HEAD_LEN: usize = 16;
/// How often the reader looks whether it should stop.
const POLL: Duration = Duration::from_millis(50);
/// The receive buffer asked for (as root, beyond `net.core.rmem_max`).
const RECEIVE_BUFFER: i32 = 8 << 20;
/// `SO_RCVBUFFORCE` (asm-generic/socket.h): a receive buffer size past the system's limit.
const SO_RCVBUFFORCE: libc::c_int = 33;
/// `PACKET_STATISTICS` (linux/if_packet.h): packets seen and dropped since it was last read.
const PACKET_STATISTICS: libc::c_int = 6;

/// `struct tpacket_stats`.
#[repr(C)]
#[derive(Default)]
struct PacketStatistics {
    packets: u32,
    drops: u32,
}

/// A UDP datagram seen leaving a socket on the loopback interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireDatagram {
    /// When the kernel handed it to the interface (see `kernel_time`).
    pub at: SystemTime,
    /// Whether `at` is the kernel's timestamp; else it is when the capture read the packet.
    pub kernel_time: bool,
    pub source: SocketAddrV4,
    pub destination: SocketAddrV4,
    /// The first bytes of the UDP payload (up to 16).
    pub head: Vec<u8>,
}

/// Captures the UDP datagrams sent on `lo` from [`WireCapture::start`] to
/// [`WireCapture::stop`].
pub struct WireCapture {
    socket: Arc<OwnedFd>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<io::Result<()>>>,
    datagrams: Arc<Mutex<Vec<WireDatagram>>>,
}

impl WireCapture {
    /// Opens the packet socket on `lo` and starts reading it on a thread of its own; every
    /// datagram sent from then on is captured.
    pub fn start() -> io::Result<WireCapture> {
        let socket = Arc::new(open_loopback_socket()?);
        let stop = Arc::new(AtomicBool::new(false));
        let datagrams = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let socket = Arc::clone(&socket);
            let (stop, datagrams) = (Arc::clone(&stop), Arc::clone(&datagrams));
            thread::Builder::new()
                .name("wire-capture".into())
                .spawn(move || read_datagrams(&socket, &stop, &datagrams))?
        };
        Ok(WireCapture {
            socket,
            stop,
            reader: Some(reader),
            datagrams,
        })
    }

    /// Stops capturing; the datagrams captured, in the order they were sent. Fails if the
    /// kernel dropped any packet because the capture fell behind (a first packet could be
    /// missing).
    pub fn stop(&mut self) -> io::Result<Vec<WireDatagram>> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(reader) = self.reader.take() {
            reader
                .join()
                .map_err(|_| io::Error::other("the capture thread panicked"))??;
        }
        let statistics = packet_statistics(&self.socket)?;
        if statistics.drops > 0 {
            return Err(io::Error::other(format!(
                "the capture dropped {} of {} packets",
                statistics.drops, statistics.packets
            )));
        }
        let mut datagrams = std::mem::take(&mut *self.datagrams.lock().unwrap());
        datagrams.sort_by_key(|datagram| datagram.at);
        Ok(datagrams)
    }
}

impl Drop for WireCapture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// A packet socket bound to `lo` that gives IP packets (no link-layer header), each with a
/// kernel timestamp, and wakes every [`POLL`].
fn open_loopback_socket() -> io::Result<OwnedFd> {
    let protocol = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2) call; the descriptor is owned right after.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM, i32::from(protocol)) };
    if fd < 0 {
        let error = io::Error::last_os_error();
        return Err(io::Error::new(
            error.kind(),
            format!("a packet socket needs CAP_NET_RAW (root): {error}"),
        ));
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: the name is a NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(c"lo".as_ptr()) };
    if index == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: an all-zero sockaddr_ll is valid; the fields that matter are set below.
    let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    address.sll_family = libc::AF_PACKET as u16;
    address.sll_protocol = protocol;
    address.sll_ifindex = index as i32;
    // SAFETY: `address` is a valid sockaddr_ll of the given length.
    let bound = unsafe {
        libc::bind(
            socket.as_raw_fd(),
            (&address as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if bound != 0 {
        return Err(io::Error::last_os_error());
    }
    set_option(&socket, libc::SO_TIMESTAMPNS, &1i32)?;
    if set_option(&socket, SO_RCVBUFFORCE, &RECEIVE_BUFFER).is_err() {
        set_option(&socket, libc::SO_RCVBUF, &RECEIVE_BUFFER)?;
    }
    // Counting starts now.
    packet_statistics(&socket)?;
    let timeout = libc::timeval {
        tv_sec: 0,
        tv_usec: POLL.as_micros() as libc::suseconds_t,
    };
    set_option(&socket, libc::SO_RCVTIMEO, &timeout)?;
    Ok(socket)
}

/// The packets the socket saw and dropped since the last call (reading resets them).
fn packet_statistics(socket: &OwnedFd) -> io::Result<PacketStatistics> {
    let mut statistics = PacketStatistics::default();
    let mut len = std::mem::size_of::<PacketStatistics>() as libc::socklen_t;
    // SAFETY: `statistics` is a `struct tpacket_stats` of `len` bytes.
    let result = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_PACKET,
            PACKET_STATISTICS,
            (&mut statistics as *mut PacketStatistics).cast(),
            &mut len,
        )
    };
    if result == 0 {
        Ok(statistics)
    } else {
        Err(io::Error::last_os_error())
    }
}

fn set_option<T>(socket: &OwnedFd, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a `T` of the given size for the duration of the call.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads packets until `stop`, keeping the outgoing UDP ones (each packet on `lo` is seen
/// twice: leaving and arriving).
fn read_datagrams(
    socket: &OwnedFd,
    stop: &AtomicBool,
    datagrams: &Mutex<Vec<WireDatagram>>,
) -> io::Result<()> {
    let mut packet = vec![0u8; 65_536];
    // Room for one SCM_TIMESTAMPNS control message (a timespec), 8-byte aligned.
    let mut control = [0u64; 8];
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: an all-zero sockaddr_ll is valid for the kernel to fill in.
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut buffer = libc::iovec {
            iov_base: packet.as_mut_ptr().cast(),
            iov_len: packet.len(),
        };
        // SAFETY: an all-zero msghdr is valid; its pointers are set below.
        let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
        message.msg_name = (&mut from as *mut libc::sockaddr_ll).cast();
        message.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        message.msg_iov = &mut buffer;
        message.msg_iovlen = 1;
        message.msg_control = control.as_mut_ptr().cast();
        message.msg_controllen = std::mem::size_of_val(&control);
        // SAFETY: every buffer `message` points to lives through the call.
        let read = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut message, 0) };
        if read < 0 {
            let error = io::Error::last_os_error();
            match error.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => continue,
                io::ErrorKind::Interrupted => continue,
                _ => return Err(error),
            }
        }
        if from.sll_pkttype != libc::PACKET_OUTGOING {
            continue;
        }
        let Some((source, destination, payload)) = parse_ipv4_udp(&packet[..read as usize]) else {
            continue;
        };
        let stamp = packet_time(&message);
        datagrams.lock().unwrap().push(WireDatagram {
            at: stamp.unwrap_or_else(SystemTime::now),
            kernel_time: stamp.is_some(),
            source,
            destination,
            head: payload[..payload.len().min(HEAD_LEN)].to_vec(),
        });
    }
    Ok(())
}

/// The kernel's timestamp of the packet `message` received (its `SCM_TIMESTAMPNS`): when the
/// packet socket got it, as the packet left on `lo` (or, for a packet the kernel had not
/// stamped yet, when it was read).
fn packet_time(message: &libc::msghdr) -> Option<SystemTime> {
    // SAFETY: `message` was filled in by recvmsg; the CMSG macros walk its control buffer
    // within `msg_controllen`.
    unsafe {
        let mut header = libc::CMSG_FIRSTHDR(message);
        while !header.is_null() {
            if (*header).cmsg_level == libc::SOL_SOCKET
                && (*header).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let stamp: libc::timespec =
                    std::ptr::read_unaligned(libc::CMSG_DATA(header).cast());
                return Some(
                    SystemTime::UNIX_EPOCH
                        + Duration::new(stamp.tv_sec as u64, stamp.tv_nsec as u32),
                );
            }
            header = libc::CMSG_NXTHDR(message, header);
        }
    }
    None
}

/// The source, destination and payload of an IPv4 packet carrying a whole UDP datagram;
/// `None` for anything else (other protocols, IPv6, fragments, truncated packets).
pub fn parse_ipv4_udp(packet: &[u8]) -> Option<(SocketAddrV4, SocketAddrV4, &[u8])> {
    let first = *packet.first()?;
    let header_len = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || header_len < 20 || packet.len() < header_len + 8 {
        return None;
    }
    let fragmented = u16::from_be_bytes([packet[6], packet[7]]) & 0x3fff != 0;
    if packet[9] != 17 || fragmented {
        return None;
    }
    // The IP packet's own length: what follows it is link-layer padding.
    let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    if total < header_len + 8 || total > packet.len() {
        return None;
    }
    let ip = |at: usize| Ipv4Addr::new(packet[at], packet[at + 1], packet[at + 2], packet[at + 3]);
    let udp = &packet[header_len..total];
    let port = |at: usize| u16::from_be_bytes([udp[at], udp[at + 1]]);
    let udp_len = usize::from(port(4));
    if udp_len < 8 || udp_len > udp.len() {
        return None;
    }
    Some((
        SocketAddrV4::new(ip(12), port(0)),
        SocketAddrV4::new(ip(16), port(2)),
        &udp[8..udp_len],
    ))
}

/// The local ports of the IPv4 UDP sockets the process `pid` has open (its descriptors'
/// socket inodes looked up in `/proc/PID/net/udp`).
pub fn udp_ports_of(pid: u32) -> io::Result<HashSet<u16>> {
    let mut inodes = HashSet::new();
    for entry in fs::read_dir(format!("/proc/{pid}/fd"))? {
        let Ok(target) = fs::read_link(entry?.path()) else {
            continue;
        };
        let target = target.to_string_lossy();
        if let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|rest| rest.strip_suffix(']'))
        {
            inodes.insert(inode.to_owned());
        }
    }
    let table = fs::read_to_string(format!("/proc/{pid}/net/udp"))?;
    Ok(udp_ports_in_table(&table, &inodes))
}

/// The local ports of the rows of a `/proc/net/udp` table whose inode is in `inodes`.
pub fn udp_ports_in_table(table: &str, inodes: &HashSet<String>) -> HashSet<u16> {
    table
        .lines()
        .skip(1)
        .filter_map(|row| {
            let fields: Vec<&str> = row.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …
            let inode = fields.get(9)?;
            let (_, port) = fields.get(1)?.split_once(':')?;
            inodes
                .contains(*inode)
                .then(|| u16::from_str_radix(port, 16).ok())
                .flatten()
        })
        .collect()
}
