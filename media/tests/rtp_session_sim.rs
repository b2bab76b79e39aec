//! Two SDES-SRTP endpoints talking over a seeded lossy, jittery, duplicating network on a virtual
//! clock: voice both ways, RTCP reports, a DTMF string, and a BYE. Checks what each side learns
//! (RTT, loss, jitter, digits) against what the network did.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use callisto_media::rtp::demux::{Demuxer, PacketClass};
use callisto_media::rtp::dtmf::{DtmfEvent, DtmfReceiver, DtmfSender, DtmfSenderConfig};
use callisto_media::rtp::ntp::NtpTime;
use callisto_media::rtp::receiver_stats::{ReceiverStats, ReceiverStatsConfig};
use callisto_media::rtp::rtcp_session::{RtcpConfig, RtcpEvent, RtcpSession};
use callisto_media::rtp::sender::RtpSender;
use callisto_media::rtp::srtp::{SrtpError, SrtpKeyMaterial, SrtpProfile, SrtpSession};
use rand::rngs::{SmallRng, StdRng};
use rand::{Rng, SeedableRng};

const OPUS_PT: u8 = 111;
const EVENT_PT: u8 = 101;
const CLOCK: u32 = 48_000;
const BASE_DELAY: Duration = Duration::from_millis(40);
const JITTER: Duration = Duration::from_millis(30);
const LOSS: f64 = 0.05;
const DUPLICATE: f64 = 0.01;

#[derive(Debug, Default, Clone, Copy)]
struct PathStats {
    rtp_sent: u64,
    rtp_dropped: u64,
    duplicated: u64,
}

/// One direction of the network: drops, delays by base + uniform jitter (which reorders), and
/// duplicates, all from one seed.
struct Path {
    rng: SmallRng,
    queue: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>>,
    counter: u64,
    stats: PathStats,
}

impl Path {
    fn new(seed: u64) -> Self {
        Path {
            rng: SmallRng::seed_from_u64(seed),
            queue: BinaryHeap::new(),
            counter: 0,
            stats: PathStats::default(),
        }
    }

    fn send(&mut self, now: Instant, bytes: Bytes, is_rtp: bool) {
        if is_rtp {
            self.stats.rtp_sent += 1;
        }
        if self.rng.gen_bool(LOSS) {
            if is_rtp {
                self.stats.rtp_dropped += 1;
            }
            return;
        }
        let copies = if self.rng.gen_bool(DUPLICATE) { 2 } else { 1 };
        self.stats.duplicated += copies - 1;
        for _ in 0..copies {
            let delay = BASE_DELAY + JITTER.mul_f64(self.rng.r#gen::<f64>());
            self.counter += 1;
            self.queue
                .push(Reverse((now + delay, self.counter, bytes.to_vec())));
        }
    }

    fn deliver(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self
            .queue
            .peek()
            .is_some_and(|Reverse((at, _, _))| *at <= now)
        {
            self.queue.pop().map(|Reverse((_, _, b))| b)
        } else {
            None
        }
    }
}

struct Endpoint {
    rtp: RtpSender,
    stats: ReceiverStats,
    rtcp: RtcpSession,
    srtp: SrtpSession,
    demux: Demuxer,
    dtmf_tx: DtmfSender,
    dtmf_rx: DtmfReceiver,
    digits: String,
    events: Vec<RtcpEvent>,
    /// This endpoint's wallclock runs this far ahead of the other's: RTT must not care.
    clock_offset: Duration,
}

impl Endpoint {
    fn new(
        name: &str,
        seed: u64,
        now: Instant,
        local: &SrtpKeyMaterial,
        remote: &SrtpKeyMaterial,
    ) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let rtp = RtpSender::new(OPUS_PT, CLOCK, &mut rng);
        let rtcp = RtcpSession::new(
            RtcpConfig::new(format!("{name}@sim")),
            rtp.ssrc(),
            now,
            &mut rng,
        );
        Endpoint {
            rtp,
            stats: ReceiverStats::new(ReceiverStatsConfig::new(CLOCK)),
            rtcp,
            srtp: SrtpSession::new(SrtpProfile::AesCm128HmacSha1_80, local, remote).unwrap(),
            demux: Demuxer::new(),
            dtmf_tx: DtmfSender::new(DtmfSenderConfig::new(EVENT_PT, CLOCK)),
            dtmf_rx: DtmfReceiver::new(CLOCK),
            digits: String::new(),
            events: Vec::new(),
            clock_offset: Duration::from_secs(seed * 3),
        }
    }

    fn wall(&self, t0: Instant, now: Instant) -> NtpTime {
        NtpTime::from_unix(Duration::from_secs(1_750_000_000) + self.clock_offset + (now - t0))
    }

    /// One 20 ms media tick: DTMF first, then voice unless an event is in progress.
    fn tick(&mut self, now: Instant, out: &mut Path) {
        while let Some(p) = self.dtmf_tx.poll_packet(now, &mut self.rtp) {
            out.send(now, self.srtp.protect_rtp(&p).unwrap(), true);
        }
        if self.dtmf_tx.is_sending() {
            self.rtp.skip(960);
        } else {
            let p = self.rtp.audio_packet(now, &[0x42; 80], 960);
            out.send(now, self.srtp.protect_rtp(&p).unwrap(), true);
        }
    }

    fn rtcp_due(&mut self, t0: Instant, now: Instant, out: &mut Path) {
        let ntp = self.wall(t0, now);
        if let Some(p) = self
            .rtcp
            .poll_transmit(now, ntp, Some(&self.rtp), Some(&mut self.stats))
        {
            out.send(now, self.srtp.protect_rtcp(&p).unwrap(), false);
        }
    }

    fn receive(&mut self, t0: Instant, now: Instant, datagram: &[u8]) {
        match self.demux.demux(datagram) {
            Ok(PacketClass::Rtp) => {
                let plain = match self.srtp.unprotect_rtp(datagram) {
                    Ok(p) => p,
                    Err(SrtpError::Replayed) => return,
                    Err(e) => panic!("unexpected SRTP failure {e}"),
                };
                let packet = self.demux.parse_rtp(&plain).unwrap();
                let verdict = self.stats.on_packet(now, &packet);
                if verdict.is_playable() && packet.header.payload_type == EVENT_PT {
                    self.dtmf_rx.handle_packet(&packet).unwrap();
                    while let Some(ev) = self.dtmf_rx.poll_event() {
                        if let DtmfEvent::Began { digit, .. } = ev {
                            self.digits.push(digit.to_char());
                        }
                    }
                }
            }
            Ok(PacketClass::Rtcp) => {
                let plain = match self.srtp.unprotect_rtcp(datagram) {
                    Ok(p) => p,
                    Err(SrtpError::Replayed) => return,
                    Err(e) => panic!("unexpected SRTCP failure {e}"),
                };
                let ntp = self.wall(t0, now);
                self.rtcp.handle_rtcp(now, ntp, &plain).unwrap();
                while let Some(ev) = self.rtcp.poll_event() {
                    self.events.push(ev);
                }
            }
            other => panic!("unexpected datagram class {other:?}"),
        }
    }
}

#[test]
fn two_srtp_endpoints_over_a_lossy_network() {
    let t0 = Instant::now();
    let mut key_rng = StdRng::seed_from_u64(2024);
    let ka = SrtpKeyMaterial::generate(&mut key_rng);
    let kb = SrtpKeyMaterial::generate(&mut key_rng);
    let mut a = Endpoint::new("alice", 1, t0, &ka, &kb);
    let mut b = Endpoint::new("bob", 2, t0, &kb, &ka);
    let mut a_to_b = Path::new(10);
    let mut b_to_a = Path::new(11);

    let duration = Duration::from_secs(60);
    let dtmf_at = t0 + Duration::from_secs(20);
    let mut now = t0;
    let mut next_tick = t0;
    while now < t0 + duration {
        if now == dtmf_at {
            a.dtmf_tx
                .queue_digits(now, "123#", Duration::from_millis(200))
                .unwrap();
        }
        if now >= next_tick {
            a.tick(now, &mut a_to_b);
            b.tick(now, &mut b_to_a);
            next_tick += Duration::from_millis(20);
        }
        a.rtcp_due(t0, now, &mut a_to_b);
        b.rtcp_due(t0, now, &mut b_to_a);
        while let Some(d) = a_to_b.deliver(now) {
            b.receive(t0, now, &d);
        }
        while let Some(d) = b_to_a.deliver(now) {
            a.receive(t0, now, &d);
        }
        now += Duration::from_millis(1);
    }
    // Alice hangs up; the network drains.
    let ntp = a.wall(t0, now);
    let bye = a
        .rtcp
        .close(now, ntp, Some(&a.rtp), Some(&mut a.stats), Some("hangup"));
    // Delivered without loss: the test is about what the BYE says, not whether it survives.
    let wire = a.srtp.protect_rtcp(&bye).unwrap();
    a_to_b.counter += 1;
    a_to_b
        .queue
        .push(Reverse((now + BASE_DELAY, a_to_b.counter, wire.to_vec())));
    let end = now + Duration::from_millis(200);
    while now < end {
        while let Some(d) = a_to_b.deliver(now) {
            b.receive(t0, now, &d);
        }
        while let Some(d) = b_to_a.deliver(now) {
            a.receive(t0, now, &d);
        }
        now += Duration::from_millis(1);
    }

    // DTMF arrived, in order, once each.
    assert_eq!(b.digits, "123#");

    // RTT: two one-way delays of 40..70 ms each.
    for (name, ep) in [("alice", &a), ("bob", &b)] {
        let rtt = ep
            .rtcp
            .rtt()
            .unwrap_or_else(|| panic!("{name} measured no RTT"));
        assert!(
            rtt >= 2 * BASE_DELAY && rtt <= 2 * (BASE_DELAY + JITTER),
            "{name}: rtt {rtt:?}"
        );
    }

    // Loss: what Bob counted matches what the network dropped (the last few packets may be lost
    // without a later one to reveal it).
    let dropped = a_to_b.stats.rtp_dropped as i64;
    let bob_lost = b.stats.lost();
    assert!(
        (bob_lost - dropped).abs() <= 3,
        "bob lost {bob_lost}, network dropped {dropped}"
    );
    // What Alice hears back about her stream.
    let remote = a.rtcp.remote_reception().unwrap();
    let ratio = f64::from(remote.cumulative_lost) / a_to_b.stats.rtp_sent as f64;
    assert!(
        (0.03..0.07).contains(&ratio),
        "reported cumulative loss ratio {ratio}"
    );
    assert!(remote.loss_ratio() < 0.2);

    // Jitter: uniform 0..30 ms one-way delay gives E|D| = 10 ms.
    let jitter_ms = b.stats.jitter_ms();
    assert!(
        (7.0..13.0).contains(&jitter_ms),
        "bob's jitter {jitter_ms} ms"
    );
    let reported = remote.jitter_ms(CLOCK);
    assert!(
        (5.0..15.0).contains(&reported),
        "jitter Bob reported to Alice {reported} ms"
    );

    // Replay protection absorbed every duplicate; nothing failed authentication.
    let dups = a_to_b.stats.duplicated + b_to_a.stats.duplicated;
    let replayed = a.srtp.counters().replayed + b.srtp.counters().replayed;
    assert_eq!(replayed, dups);
    assert_eq!(
        a.srtp.counters().auth_failed + b.srtp.counters().auth_failed,
        0
    );

    // Identities and the goodbye.
    assert_eq!(b.rtcp.remote_cname(), Some((a.rtp.ssrc(), "alice@sim")));
    assert_eq!(a.rtcp.remote_cname(), Some((b.rtp.ssrc(), "bob@sim")));
    assert!(b.events.contains(&RtcpEvent::Bye {
        ssrc: a.rtp.ssrc(),
        reason: Some("hangup".into())
    }));
    assert!(a.rtcp.counters().sent_sr >= 10);
    assert_eq!(a.stats.counters().foreign_ssrc, 0);
}
