//! The bitrate controller against a simulated bottleneck, in virtual time: a sender paced at the
//! controller's target, a drop-tail bottleneck link, a receiver building TWCC feedback every
//! 100 ms, and the feedback carried back over the wire format to the controller.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use callisto_media::congestion::{
    feedback_from_twcc, BitrateController, CongestionConfig, CongestionEvent,
    TransportFeedbackBuilder,
};
use callisto_media::netsim::bottleneck::{BottleneckLink, LinkConditions};
use rtc_rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc_shared::marshal::{Marshal, Unmarshal};

const PACKET: usize = 1_200;
const PROPAGATION: Duration = Duration::from_millis(20);
const QUEUE_BYTES: usize = 40_000;

/// One observation, every 100 ms.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    at: f64,
    target: u64,
    queue_ms: f64,
}

struct Call {
    start: Instant,
    now: Instant,
    controller: BitrateController,
    link: BottleneckLink<u16>,
    builder: TransportFeedbackBuilder,
    feedback: VecDeque<(Instant, Vec<u8>)>,
    sequence: u16,
    next_send: Instant,
    next_report: Instant,
    next_sample: Instant,
    samples: Vec<Sample>,
    events: Vec<CongestionEvent>,
    /// Send whole frames at 30 fps in bursts, as an encoder without a pacer does, instead of
    /// pacing packets evenly.
    bursty: bool,
}

impl Call {
    fn new(link: LinkConditions, seed: u64) -> Self {
        let start = Instant::now();
        let config = CongestionConfig {
            max_bps: 3_000_000,
            ..CongestionConfig::default()
        };
        Call {
            start,
            now: start,
            controller: BitrateController::new(config),
            link: BottleneckLink::new(link, seed),
            builder: TransportFeedbackBuilder::new(2, 1, Duration::from_millis(100)),
            feedback: VecDeque::new(),
            sequence: 65_000,
            next_send: start,
            next_report: start + Duration::from_secs(1),
            next_sample: start,
            samples: Vec::new(),
            events: Vec::new(),
            bursty: false,
        }
    }

    fn link(capacity_bps: u64) -> LinkConditions {
        LinkConditions {
            queue_bytes: QUEUE_BYTES,
            ..LinkConditions::new(capacity_bps, PROPAGATION)
        }
    }

    fn set_capacity(&mut self, capacity_bps: u64) {
        let conditions = LinkConditions {
            capacity_bps,
            ..self.link.conditions()
        };
        self.link.set_conditions(self.now, conditions);
    }

    fn secs(&self, t: f64) -> Instant {
        self.start + Duration::from_secs_f64(t)
    }

    /// Runs the call until `t` seconds after its start.
    fn run_until(&mut self, t: f64) {
        let end = self.secs(t);
        loop {
            let mut next = self.next_send.min(self.next_report).min(self.next_sample);
            for candidate in [
                self.link.next_delivery(),
                self.builder.poll_timeout(),
                self.feedback.front().map(|&(at, _)| at),
            ]
            .into_iter()
            .flatten()
            {
                next = next.min(candidate);
            }
            if next > end {
                self.now = end;
                return;
            }
            self.now = next;
            self.step();
        }
    }

    fn step(&mut self) {
        let now = self.now;
        while let Some(delivery) = self.link.poll_deliver(now) {
            self.builder
                .on_packet_received(delivery.item, delivery.arrival);
        }
        if let Some(twcc) = self.builder.poll_feedback(now) {
            let bytes = twcc.marshal().expect("TWCC marshals").to_vec();
            self.feedback.push_back((now + PROPAGATION, bytes));
        }
        while self.feedback.front().is_some_and(|&(at, _)| at <= now) {
            let (_, bytes) = self.feedback.pop_front().expect("front exists");
            let twcc = TransportLayerCc::unmarshal(&mut &bytes[..]).expect("TWCC parses");
            self.controller
                .on_transport_feedback(&feedback_from_twcc(&twcc), now);
        }
        if self.next_report <= now {
            self.controller
                .on_receiver_report(0, Some(2 * PROPAGATION), now);
            self.next_report += Duration::from_secs(1);
        }
        if self.next_send <= now {
            let target = self.controller.target_bitrate().max(1);
            if self.bursty {
                let frame = Duration::from_secs(1) / 30;
                let mut bytes = (target as f64 * frame.as_secs_f64() / 8.0) as usize;
                while bytes > 0 {
                    let size = bytes.min(PACKET);
                    self.send_packet(size);
                    bytes -= size;
                }
                self.next_send = now + frame;
            } else {
                self.send_packet(PACKET);
                self.next_send = now + Duration::from_secs_f64((PACKET * 8) as f64 / target as f64);
            }
        }
        while let Some(event) = self.controller.poll_event() {
            self.events.push(event);
        }
        if self.next_sample <= now {
            self.samples.push(Sample {
                at: (now - self.start).as_secs_f64(),
                target: self.controller.target_bitrate(),
                queue_ms: self.link.queue_delay(now).as_secs_f64() * 1_000.0,
            });
            self.next_sample += Duration::from_millis(100);
        }
    }

    fn send_packet(&mut self, size: usize) {
        self.controller
            .on_packet_sent(self.sequence, size, self.now);
        self.link.send(self.now, size, self.sequence);
        self.sequence = self.sequence.wrapping_add(1);
    }

    fn between(&self, from: f64, to: f64) -> impl Iterator<Item = &Sample> {
        self.samples
            .iter()
            .filter(move |s| s.at >= from && s.at < to)
    }

    /// The first sample time from `from` on at which `condition` holds.
    fn first_time(&self, from: f64, condition: impl Fn(&Sample) -> bool) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| s.at >= from && condition(s))
            .map(|s| s.at - from)
    }

    fn mean_target(&self, from: f64, to: f64) -> f64 {
        let (sum, n) = self
            .between(from, to)
            .fold((0.0, 0), |(sum, n), s| (sum + s.target as f64, n + 1));
        sum / f64::from(n.max(1))
    }

    fn mean_queue_ms(&self, from: f64, to: f64) -> f64 {
        let (sum, n) = self
            .between(from, to)
            .fold((0.0, 0), |(sum, n), s| (sum + s.queue_ms, n + 1));
        sum / f64::from(n.max(1))
    }
}

#[test]
fn converges_to_a_two_megabit_link_without_standing_queue() {
    let capacity = 2_000_000.0;
    let mut call = Call::new(Call::link(2_000_000), 1);
    call.run_until(40.0);
    let reach = call
        .first_time(0.0, |s| s.target as f64 >= 0.7 * capacity)
        .expect("reaches 70 % of capacity");
    let low = call
        .between(10.0, 40.0)
        .map(|s| s.target)
        .min()
        .expect("samples") as f64;
    let high = call
        .between(10.0, 40.0)
        .map(|s| s.target)
        .max()
        .expect("samples") as f64;
    let mean = call.mean_target(10.0, 40.0);
    let (q1, q2, q3) = (
        call.mean_queue_ms(10.0, 20.0),
        call.mean_queue_ms(20.0, 30.0),
        call.mean_queue_ms(30.0, 40.0),
    );
    println!(
        "2 Mbps: 70 % after {reach:.1} s; 10–40 s target min {:.0} mean {:.0} max {:.0} kbps; \
         mean queue {q1:.1} / {q2:.1} / {q3:.1} ms; link {:?}",
        low / 1e3,
        mean / 1e3,
        high / 1e3,
        call.link.stats()
    );
    assert!(reach <= 10.0, "took {reach:.1} s");
    assert!(mean >= 0.7 * capacity && mean <= capacity, "mean {mean:.0}");
    assert!(low >= 0.6 * capacity, "dipped to {low:.0}");
    // No standing queue that keeps growing: the queue stays short in every 10 s stretch.
    for q in [q1, q2, q3] {
        assert!(q < 60.0, "mean queueing delay {q:.1} ms");
    }
}

#[test]
fn follows_capacity_down_and_back_up() {
    let mut call = Call::new(Call::link(2_000_000), 2);
    call.run_until(20.0);
    call.set_capacity(500_000);
    call.run_until(40.0);
    call.set_capacity(2_000_000);
    call.run_until(70.0);

    let fall = call
        .first_time(20.0, |s| s.target < 500_000)
        .expect("falls below 500 kbps");
    let peak_queue = call
        .between(20.0, 25.0)
        .map(|s| s.queue_ms)
        .fold(0.0, f64::max);
    let drained = call
        .first_time(20.0 + fall, |s| s.queue_ms < 50.0)
        .expect("the queue drains");
    let late_queue = call.mean_queue_ms(30.0, 40.0);
    let low_mean = call.mean_target(30.0, 40.0);
    let recover = call
        .first_time(40.0, |s| s.target >= 1_400_000)
        .expect("recovers to 70 % of 2 Mbps");
    println!(
        "2 Mbps → 500 kbps: below 500 kbps after {fall:.1} s, queue peak {peak_queue:.0} ms, \
         under 50 ms {drained:.1} s later, 30–40 s mean target {:.0} kbps queue {late_queue:.1} ms; \
         back to 2 Mbps: 1.4 Mbps after {recover:.1} s; link {:?}",
        low_mean / 1e3,
        call.link.stats()
    );
    assert!(fall <= 2.0, "took {fall:.1} s to fall");
    // The queue drains at what the link has beyond the reduced rate (β = 0.85): seconds.
    assert!(drained <= 6.0, "queue took {drained:.1} s to drain");
    assert!(late_queue < 60.0, "standing queue {late_queue:.1} ms");
    assert!(
        (250_000.0..=500_000.0).contains(&low_mean),
        "mean {low_mean:.0}"
    );
    assert!(recover <= 15.0, "took {recover:.1} s to recover");
}

#[test]
fn random_loss_below_ten_percent_does_not_collapse_the_rate() {
    let conditions = LinkConditions {
        loss: 0.05,
        ..Call::link(50_000_000)
    };
    let mut call = Call::new(conditions, 3);
    call.run_until(60.0);
    let start = CongestionConfig::default().start_bps as f64;
    let low = call
        .between(5.0, 60.0)
        .map(|s| s.target)
        .min()
        .expect("samples") as f64;
    let end = call.controller.target_bitrate() as f64;
    let stats = call.controller.stats();
    println!(
        "5 % loss: target 5–60 s min {:.0} kbps, end {:.0} kbps (loss-based {} delay-based {}); \
         {stats:?}",
        low / 1e3,
        end / 1e3,
        call.controller.loss_based_bitrate(),
        call.controller.delay_based_bitrate()
    );
    assert!(low >= 0.9 * start, "fell to {low:.0}");
    assert!(end >= start, "ended at {end:.0}");
    assert!(stats.lost > 0);
}

#[test]
fn remb_caps_the_target_until_raised() {
    let mut call = Call::new(Call::link(2_000_000), 4);
    call.run_until(5.0);
    let now = call.now;
    call.controller.on_remb(600_000, now);
    call.run_until(15.0);
    let capped = call
        .between(5.05, 15.0)
        .map(|s| s.target)
        .max()
        .expect("samples");
    assert!(capped <= 600_000, "target {capped} above the REMB");
    assert!(call
        .events
        .contains(&CongestionEvent::TargetChanged { bps: 600_000 }));
    let now = call.now;
    call.controller.on_remb(5_000_000, now);
    call.run_until(30.0);
    let freed = call.mean_target(25.0, 30.0);
    println!("REMB 600 kbps: max {capped}; raised: 25–30 s mean {freed:.0}");
    assert!(freed >= 1_400_000.0, "mean {freed:.0}");
}

#[test]
fn the_same_seed_gives_the_same_call() {
    let conditions = LinkConditions {
        loss: 0.02,
        ..Call::link(1_000_000)
    };
    let run = |seed| {
        let mut call = Call::new(conditions, seed);
        call.run_until(10.0);
        call.samples
            .iter()
            .map(|s| (s.target, (s.queue_ms * 1e3) as u64))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}

#[test]
fn the_layer_advice_follows_the_target_down_and_up() {
    let mut call = Call::new(Call::link(2_000_000), 7);
    call.run_until(20.0);
    let high = call.controller.layer_advice();
    call.set_capacity(200_000);
    call.run_until(40.0);
    let low = call.controller.layer_advice();
    call.set_capacity(2_000_000);
    call.run_until(80.0);
    let back = call.controller.layer_advice();
    let layer_changes = call
        .events
        .iter()
        .filter(|e| matches!(e, CongestionEvent::LayerChanged(_)))
        .count();
    println!("layers: {high:?} → {low:?} → {back:?}, {layer_changes} changes");
    assert_eq!((high.width, high.height), (1280, 720));
    assert!(low.width <= 320, "{low:?}");
    assert_eq!((back.width, back.height), (1280, 720));
    // Down and back up a few rungs, not flapping.
    assert!(layer_changes <= 10, "{layer_changes} layer changes");
}

#[test]
fn frame_bursts_without_a_pacer_still_converge() {
    let capacity = 2_000_000.0;
    let mut call = Call::new(Call::link(2_000_000), 8);
    call.bursty = true;
    call.run_until(40.0);
    let reach = call
        .first_time(0.0, |s| s.target as f64 >= 0.7 * capacity)
        .expect("reaches 70 % of capacity");
    let mean = call.mean_target(10.0, 40.0);
    let queue = call.mean_queue_ms(10.0, 40.0);
    println!(
        "bursty 2 Mbps: 70 % after {reach:.1} s; 10–40 s mean target {:.0} kbps, mean queue \
         {queue:.1} ms; link {:?}",
        mean / 1e3,
        call.link.stats()
    );
    assert!(reach <= 10.0, "took {reach:.1} s");
    assert!(mean >= 0.6 * capacity && mean <= capacity, "mean {mean:.0}");
    assert!(queue < 60.0, "mean queueing delay {queue:.1} ms");
}
