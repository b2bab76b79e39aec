use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn without_transport_feedback_receiver_reports_drive_the_target() {
    let t0 = Instant::now();
    let mut controller = BitrateController::new(CongestionConfig::default());
    assert_eq!(controller.target_bitrate(), 300_000);
    // Ten loss-free reports a second apart: 8 % a second.
    for i in 1..=10 {
        controller.on_receiver_report(0, Some(ms(80)), t0 + ms(1_000 * i));
    }
    let grown = controller.target_bitrate();
    assert!((640_000..=660_000).contains(&grown), "{grown}");
    assert_eq!(controller.rtt(), ms(80));
    // 5 % loss holds, 25 % loss cuts by 12.5 %.
    controller.on_receiver_report(13, None, t0 + ms(11_000));
    assert_eq!(controller.target_bitrate(), grown);
    controller.on_receiver_report(64, None, t0 + ms(12_000));
    let cut = controller.target_bitrate();
    assert!(cut.abs_diff(grown * 7 / 8) < 1_000, "{cut}");
    assert_eq!(controller.stats().loss_decreases, 1);
    // REMB caps; the floor holds.
    controller.on_remb(100_000, t0 + ms(12_500));
    assert_eq!(controller.target_bitrate(), 100_000);
    controller.on_remb(1_000, t0 + ms(12_600));
    assert_eq!(controller.target_bitrate(), 50_000);
    let floor = controller.layer_advice();
    assert_eq!((floor.width, floor.height, floor.fps), (160, 90, 30));
}

#[test]
fn transport_feedback_takes_over_loss_from_receiver_reports() {
    let t0 = Instant::now();
    let mut controller = BitrateController::new(CongestionConfig::default());
    for sequence in 0..10u16 {
        controller.on_packet_sent(sequence, 1_000, t0 + ms(u64::from(sequence) * 10));
    }
    let feedback: Vec<PacketFeedback> = (0..10u16)
        .map(|sequence| PacketFeedback {
            sequence,
            arrival: Some(ms(500 + u64::from(sequence) * 10)),
        })
        .collect();
    controller.on_transport_feedback(&feedback, t0 + ms(150));
    let target = controller.target_bitrate();
    // Heavy loss in a receiver report is not acted on while feedback flows…
    controller.on_receiver_report(128, None, t0 + ms(1_000));
    assert_eq!(controller.target_bitrate(), target);
    // …but is once feedback has been silent for two seconds.
    controller.on_receiver_report(128, None, t0 + ms(3_000));
    assert!(controller.target_bitrate() < target);
    // Feedback about packets never sent, or reported twice, is counted and ignored.
    controller.on_transport_feedback(&feedback[..3], t0 + ms(3_100));
    controller.on_transport_feedback(
        &[PacketFeedback {
            sequence: 4_000,
            arrival: None,
        }],
        t0 + ms(3_200),
    );
    let stats = controller.stats();
    assert_eq!(
        (stats.acked, stats.unknown, stats.feedback_reports),
        (10, 4, 3)
    );
}

#[test]
fn events_report_noticeable_changes_only() {
    let t0 = Instant::now();
    let config = CongestionConfig {
        max_width: 640,
        max_height: 480,
        ..CongestionConfig::default()
    };
    let mut controller = BitrateController::new(config);
    assert_eq!(controller.layer_advice().width, 320);
    controller.on_remb(295_000, t0);
    assert_eq!(controller.poll_event(), None, "a 5 kbps move is not news");
    controller.on_remb(250_000, t0 + ms(10));
    assert_eq!(
        controller.poll_event(),
        Some(CongestionEvent::TargetChanged { bps: 250_000 })
    );
    controller.on_remb(100_000, t0 + ms(20));
    assert_eq!(
        controller.poll_event(),
        Some(CongestionEvent::TargetChanged { bps: 100_000 })
    );
    assert_eq!(
        controller.poll_event(),
        Some(CongestionEvent::LayerChanged(VideoLayerAdvice {
            width: 160,
            height: 120,
            fps: 30
        }))
    );
    assert_eq!(controller.poll_event(), None);
}
