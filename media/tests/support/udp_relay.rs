//! A loopback UDP relay between two WebRTC sessions, with seeded loss and a rate limit.
//!
//! Each session is told that the other is at the relay (its SDP candidates rewritten, see
//! [`Relay::rewrite_candidates`]): A sends to `front_b` and the relay forwards out of `front_a`
//! to B, so B sees A's packets come from `front_a`, the address it was given for A; the other
//! way likewise. Every socket binds 127.0.0.1.
//!
//! Per direction ([`PathConfig`]): RTP (first byte 0x80–0xBF, second byte outside the RTCP
//! range 192–223, RFC 5761) is dropped with probability `loss` from a seeded generator — STUN,
//! DTLS and RTCP always pass, so the handshake is not what is measured — and with a `rate_bps`
//! every packet queues behind a token bucket of that rate, dropped at the tail once the queue
//! would hold more than `queue_limit`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The payload type of Callisto's H.264 (the RTP header stays in clear under SRTP).
pub const VIDEO_PAYLOAD_TYPE: u8 = callisto_media::webrtc::peer::H264_PAYLOAD_TYPE;

/// What one direction of the relay does to packets.
#[derive(Debug, Clone, Copy)]
pub struct PathConfig {
    /// Probability that an RTP packet is dropped.
    pub loss: f64,
    /// Seed of the loss generator.
    pub seed: u64,
    /// Bottleneck rate in bits per second (`None`: unlimited).
    pub rate_bps: Option<u64>,
    /// Longest queueing delay before packets are dropped at the tail.
    pub queue_limit: Duration,
}

impl PathConfig {
    /// A perfect path.
    pub fn clean() -> Self {
        PathConfig {
            loss: 0.0,
            seed: 0,
            rate_bps: None,
            queue_limit: Duration::from_millis(300),
        }
    }
}

/// Counters of one direction.
#[derive(Debug, Default)]
pub struct PathCounters {
    /// RTP packets forwarded.
    pub rtp_forwarded: AtomicU64,
    /// RTP packets dropped by the loss generator.
    pub rtp_lost: AtomicU64,
    /// Of those, H.264 video ([`VIDEO_PAYLOAD_TYPE`]).
    pub video_lost: AtomicU64,
    /// Packets dropped because the queue was full.
    pub queue_drops: AtomicU64,
    /// Other packets (STUN, DTLS, RTCP) forwarded.
    pub other_forwarded: AtomicU64,
}

impl PathCounters {
    /// (forwarded RTP, lost RTP, lost video RTP, queue drops, other forwarded).
    pub fn snapshot(&self) -> (u64, u64, u64, u64, u64) {
        (
            self.rtp_forwarded.load(Ordering::Relaxed),
            self.rtp_lost.load(Ordering::Relaxed),
            self.video_lost.load(Ordering::Relaxed),
            self.queue_drops.load(Ordering::Relaxed),
            self.other_forwarded.load(Ordering::Relaxed),
        )
    }
}

/// A running relay.
pub struct Relay {
    /// Where B is told A is.
    pub front_a: SocketAddr,
    /// Where A is told B is.
    pub front_b: SocketAddr,
    /// A → B.
    pub a_to_b: Arc<PathCounters>,
    /// B → A.
    pub b_to_a: Arc<PathCounters>,
    /// Where A and B really are, once known.
    targets: [Target; 2],
    tasks: Vec<JoinHandle<()>>,
}

type Target = Arc<std::sync::Mutex<Option<SocketAddr>>>;

impl Relay {
    /// A relay with these paths; it forwards once [`Relay::connect`] named the peers.
    pub async fn start(a_to_b: PathConfig, b_to_a: PathConfig) -> Self {
        let a = Target::default();
        let b = Target::default();
        let front_a = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let front_b = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let counters_ab = Arc::new(PathCounters::default());
        let counters_ba = Arc::new(PathCounters::default());
        let tasks = vec![
            // A sends to front_b; forwarded out of front_a to B.
            tokio::spawn(forward(
                Arc::clone(&front_b),
                Arc::clone(&front_a),
                Arc::clone(&b),
                a_to_b,
                Arc::clone(&counters_ab),
            )),
            tokio::spawn(forward(
                Arc::clone(&front_a),
                Arc::clone(&front_b),
                Arc::clone(&a),
                b_to_a,
                Arc::clone(&counters_ba),
            )),
        ];
        Relay {
            front_a: front_a.local_addr().unwrap(),
            front_b: front_b.local_addr().unwrap(),
            a_to_b: counters_ab,
            b_to_a: counters_ba,
            targets: [a, b],
            tasks,
        }
    }

    /// Starts forwarding between A at `a` and B at `b`.
    pub fn connect(&self, a: SocketAddr, b: SocketAddr) {
        *self.targets[0].lock().unwrap() = Some(a);
        *self.targets[1].lock().unwrap() = Some(b);
    }

    /// The first host candidate's address in `sdp`.
    pub fn candidate_addr(sdp: &str) -> SocketAddr {
        let line = sdp
            .lines()
            .find(|l| l.starts_with("a=candidate:"))
            .expect("a candidate");
        let fields: Vec<&str> = line.split_whitespace().collect();
        format!("{}:{}", fields[4], fields[5]).parse().unwrap()
    }

    /// `sdp` with every candidate's address replaced by `to`.
    pub fn rewrite_candidates(sdp: &str, to: SocketAddr) -> String {
        sdp.split("\r\n")
            .map(|line| {
                if !line.starts_with("a=candidate:") {
                    return line.to_owned();
                }
                let mut fields: Vec<String> = line.split(' ').map(str::to_owned).collect();
                fields[4] = to.ip().to_string();
                fields[5] = to.port().to_string();
                fields.join(" ")
            })
            .collect::<Vec<_>>()
            .join("\r\n")
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn is_rtp(packet: &[u8]) -> bool {
    packet.len() >= 12 && (0x80..=0xBF).contains(&packet[0]) && !(192..=223).contains(&packet[1])
}

async fn forward(
    inbound: Arc<UdpSocket>,
    outbound: Arc<UdpSocket>,
    to: Target,
    config: PathConfig,
    counters: Arc<PathCounters>,
) {
    let mut rng = SmallRng::seed_from_u64(config.seed);
    let mut queue: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut last_departure = Instant::now();
    let mut buf = vec![0u8; 2_048];
    loop {
        let head = queue.front().map(|(at, _)| *at);
        tokio::select! {
            received = inbound.recv_from(&mut buf) => {
                let Ok((len, _)) = received else { return };
                if to.lock().unwrap().is_none() {
                    continue;
                }
                let packet = buf[..len].to_vec();
                let rtp = is_rtp(&packet);
                if rtp && config.loss > 0.0 && rng.gen_bool(config.loss) {
                    counters.rtp_lost.fetch_add(1, Ordering::Relaxed);
                    if packet[1] & 0x7f == VIDEO_PAYLOAD_TYPE {
                        counters.video_lost.fetch_add(1, Ordering::Relaxed);
                    }
                    continue;
                }
                let now = Instant::now();
                let departure = match config.rate_bps {
                    Some(rate) => {
                        let transmit = Duration::from_secs_f64(len as f64 * 8.0 / rate as f64);
                        let start = last_departure.max(now);
                        if start.saturating_duration_since(now) > config.queue_limit {
                            counters.queue_drops.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        last_departure = start + transmit;
                        last_departure
                    }
                    None => now,
                };
                let counter = if rtp { &counters.rtp_forwarded } else { &counters.other_forwarded };
                counter.fetch_add(1, Ordering::Relaxed);
                queue.push_back((departure, packet));
            }
            _ = tokio::time::sleep_until(head.unwrap_or_else(Instant::now)), if head.is_some() => {}
        }
        let now = Instant::now();
        while queue.front().is_some_and(|(at, _)| *at <= now) {
            let target = *to.lock().unwrap();
            if let (Some((_, packet)), Some(to)) = (queue.pop_front(), target) {
                let _ = outbound.send_to(&packet, to).await;
            }
        }
    }
}
