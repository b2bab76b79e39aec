//! Non-blocking datagram reads that carry the kernel's arrival time (`SO_TIMESTAMP`), so a media
//! thread can wake once per frame, drain its sockets, and still hand every packet to the core
//! with the time it really arrived (what jitter statistics, the jitter buffer's delay estimate
//! and RTCP round-trip times need).
//!
//! Unix only ([`SUPPORTED`]); elsewhere the session reads with blocking reader threads. Linux
//! turns stamping on system-wide in deferred work when the first socket asks for it, so a
//! datagram read within moments of that may carry its read time instead.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Instant, SystemTime};

/// Whether this platform delivers arrival timestamps on UDP sockets.
pub(crate) const SUPPORTED: bool = cfg!(unix);

/// A datagram read from a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Arrival {
    /// Bytes read into the buffer.
    pub len: usize,
    /// The sender.
    pub from: SocketAddr,
    /// When the kernel received it (wall clock), if it said.
    pub wallclock: Option<SystemTime>,
}

impl Arrival {
    /// The arrival as a monotonic instant and a wall-clock time, given the two clocks read
    /// together at `now` / `now_wallclock`: the kernel's stamp moved onto the monotonic clock.
    /// Without a stamp (or with one from the future), the arrival is taken to be now.
    pub fn times(&self, now: Instant, now_wallclock: SystemTime) -> (Instant, SystemTime) {
        match self
            .wallclock
            .and_then(|at| Some((at, now_wallclock.duration_since(at).ok()?)))
        {
            Some((at, age)) => (now.checked_sub(age).unwrap_or(now), at),
            None => (now, now_wallclock),
        }
    }
}

/// Asks the kernel to stamp every datagram `socket` receives.
#[cfg(unix)]
pub(crate) fn enable_timestamps(socket: &UdpSocket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid descriptor, and an option value that lives across the call with its
    // exact size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMP,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads one queued datagram into `buffer` without blocking; `None` when none is queued.
/// A datagram longer than the buffer is truncated.
#[cfg(unix)]
pub(crate) fn recv(socket: &UdpSocket, buffer: &mut [u8]) -> io::Result<Option<Arrival>> {
    use std::os::fd::AsRawFd;
    // SAFETY: all-zero is a valid value of these plain C structures.
    let mut address: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buffer.as_mut_ptr().cast(),
        iov_len: buffer.len(),
    };
    // Room for a timeval control message, 8-byte aligned.
    let mut control = [0u64; 8];
    // SAFETY: as above.
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_name = (&mut address as *mut libc::sockaddr_storage).cast();
    message.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.as_mut_ptr().cast();
    message.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: every pointer in `message` refers to a live buffer of the length given with it.
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut message, libc::MSG_DONTWAIT) };
    if n < 0 {
        let error = io::Error::last_os_error();
        return match error.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
            _ => Err(error),
        };
    }
    let mut wallclock = None;
    // SAFETY: the kernel filled `control` with well-formed control messages within
    // `msg_controllen`; CMSG_* walk them within those bounds.
    unsafe {
        let mut header = libc::CMSG_FIRSTHDR(&message);
        while !header.is_null() {
            if (*header).cmsg_level == libc::SOL_SOCKET
                && (*header).cmsg_type == libc::SCM_TIMESTAMP
            {
                let tv: libc::timeval = std::ptr::read_unaligned(libc::CMSG_DATA(header).cast());
                wallclock = timeval_to_system_time(&tv);
            }
            header = libc::CMSG_NXTHDR(&message, header);
        }
    }
    let from = socket_address(&address).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "datagram from an unknown address family",
        )
    })?;
    Ok(Some(Arrival {
        len: n as usize,
        from,
        wallclock,
    }))
}

#[cfg(unix)]
fn timeval_to_system_time(tv: &libc::timeval) -> Option<SystemTime> {
    let secs = u64::try_from(tv.tv_sec).ok()?;
    let micros = u32::try_from(tv.tv_usec).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(std::time::Duration::new(secs, micros.checked_mul(1_000)?))
}

#[cfg(unix)]
fn socket_address(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it is large and
            // aligned enough for.
            let v4: &libc::sockaddr_in = unsafe { &*(storage as *const _ as *const _) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)),
                u16::from_be(v4.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let v6: &libc::sockaddr_in6 = unsafe { &*(storage as *const _ as *const _) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(v6.sin6_addr.s6_addr),
                u16::from_be(v6.sin6_port),
                u32::from_be(v6.sin6_flowinfo),
                v6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Not available: the session uses reader threads.
#[cfg(not(unix))]
pub(crate) fn enable_timestamps(_socket: &UdpSocket) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no receive timestamps on this platform",
    ))
}

/// Not available: the session uses reader threads.
#[cfg(not(unix))]
pub(crate) fn recv(_socket: &UdpSocket, _buffer: &mut [u8]) -> io::Result<Option<Arrival>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no receive timestamps on this platform",
    ))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_datagram_comes_with_its_sender_and_arrival_time() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        enable_timestamps(&receiver).unwrap();
        let mut buffer = [0u8; 64];
        assert_eq!(
            recv(&receiver, &mut buffer).unwrap(),
            None,
            "nothing queued"
        );
        // Linux switches receive timestamping on for the system in deferred work: datagrams
        // read before it ran are stamped when read. A session's first packets come long after
        // its sockets are set up; here, give it a moment.
        std::thread::sleep(Duration::from_millis(100));
        let before = SystemTime::now();
        sender
            .send_to(b"hello", receiver.local_addr().unwrap())
            .unwrap();
        std::thread::sleep(Duration::from_millis(30));
        let (now, now_wallclock) = (Instant::now(), SystemTime::now());
        let arrival = recv(&receiver, &mut buffer).unwrap().expect("a datagram");
        assert_eq!(&buffer[..arrival.len], b"hello");
        assert_eq!(arrival.from, sender.local_addr().unwrap());
        let stamped = arrival.wallclock.expect("a kernel timestamp");
        // Stamped on arrival, not when read 30 ms later (microsecond stamps: allow 1 µs).
        assert!(
            stamped + Duration::from_micros(1) >= before,
            "{stamped:?} {before:?}"
        );
        assert!(
            now_wallclock.duration_since(stamped).unwrap() >= Duration::from_millis(25),
            "stamped when read"
        );
        let (at, wallclock) = arrival.times(now, now_wallclock);
        assert_eq!(wallclock, stamped);
        assert!(now - at >= Duration::from_millis(25));
        assert_eq!(recv(&receiver, &mut buffer).unwrap(), None);
    }

    #[test]
    fn an_arrival_without_a_stamp_is_now() {
        let arrival = Arrival {
            len: 1,
            from: "127.0.0.1:9".parse().unwrap(),
            wallclock: None,
        };
        let (now, wall) = (Instant::now(), SystemTime::now());
        assert_eq!(arrival.times(now, wall), (now, wall));
        let future = Arrival {
            wallclock: Some(wall + Duration::from_secs(1)),
            ..arrival
        };
        assert_eq!(future.times(now, wall), (now, wall));
    }
}
