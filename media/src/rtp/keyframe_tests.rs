use super::*;
use crate::rtp::rtcp_packet::{parse_compound, RtcpPacket};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn the_sender_starts_with_a_key_frame_and_rate_limits_requests() {
    let t0 = Instant::now();
    let mut scheduler = KeyframeScheduler::new(KeyframeSchedulerConfig::default(), t0);
    assert_eq!(scheduler.poll_timeout(), Some(t0));
    assert!(scheduler.poll_keyframe(t0));
    assert!(!scheduler.poll_keyframe(t0 + ms(33)));
    // The first request (the receiver missed the first key frame) is served at once.
    scheduler.on_pli(t0 + ms(40));
    assert_eq!(scheduler.poll_timeout(), Some(t0));
    assert!(scheduler.poll_keyframe(t0 + ms(66)));
    // A PLI 100 ms after that answer waits until 300 ms after it, then is served once.
    scheduler.on_pli(t0 + ms(166));
    scheduler.on_pli(t0 + ms(216));
    assert_eq!(scheduler.poll_timeout(), Some(t0 + ms(366)));
    assert!(!scheduler.poll_keyframe(t0 + ms(365)));
    assert!(scheduler.poll_keyframe(t0 + ms(366)));
    assert!(!scheduler.poll_keyframe(t0 + ms(766)));
    // A long RTT spaces key frames further.
    scheduler.set_rtt(ms(500));
    scheduler.on_pli(t0 + ms(766));
    assert_eq!(scheduler.poll_timeout(), Some(t0 + ms(866)));
    assert!(scheduler.poll_keyframe(t0 + ms(866)));
    let stats = scheduler.stats();
    assert_eq!((stats.requests, stats.keyframes, stats.periodic), (4, 4, 0));
}

#[test]
fn a_request_is_not_held_back_by_a_periodic_key_frame() {
    let t0 = Instant::now();
    let config = KeyframeSchedulerConfig {
        periodic: Some(Duration::from_secs(2)),
        ..KeyframeSchedulerConfig::default()
    };
    let mut scheduler = KeyframeScheduler::new(config, t0);
    assert!(scheduler.poll_keyframe(t0));
    scheduler.on_pli(t0 + ms(500));
    assert!(scheduler.poll_keyframe(t0 + ms(500)));
    // The periodic key frame 2 s later, then a PLI 50 ms after it: served at once.
    assert!(scheduler.poll_keyframe(t0 + ms(2_500)));
    scheduler.on_pli(t0 + ms(2_550));
    assert!(scheduler.poll_keyframe(t0 + ms(2_550)));
    // The next request is spaced from that answer.
    scheduler.on_pli(t0 + ms(2_600));
    assert_eq!(scheduler.poll_timeout(), Some(t0 + ms(2_850)));
    let stats = scheduler.stats();
    assert_eq!((stats.keyframes, stats.periodic), (4, 1));
}

#[test]
fn an_encoder_key_frame_answers_a_pending_request_and_holds_no_other_back() {
    let t0 = Instant::now();
    let mut scheduler = KeyframeScheduler::new(KeyframeSchedulerConfig::default(), t0);
    assert!(scheduler.poll_keyframe(t0));
    // The encoder makes an IDR by itself (a new size) with nothing asked: a PLI just after it
    // is served at once.
    scheduler.on_keyframe_sent(t0 + ms(1_000));
    scheduler.on_pli(t0 + ms(1_010));
    assert!(scheduler.poll_keyframe(t0 + ms(1_010)));
    // An IDR the encoder makes while a request is pending answers it, and the next request
    // is spaced from it.
    scheduler.on_pli(t0 + ms(2_000));
    scheduler.on_keyframe_sent(t0 + ms(2_000));
    assert!(!scheduler.poll_keyframe(t0 + ms(2_033)));
    scheduler.on_pli(t0 + ms(2_066));
    assert_eq!(scheduler.poll_timeout(), Some(t0 + ms(2_300)));
}

#[test]
fn fir_repeats_are_dropped_by_sequence_number() {
    let t0 = Instant::now();
    let mut scheduler = KeyframeScheduler::new(KeyframeSchedulerConfig::default(), t0);
    assert!(scheduler.poll_keyframe(t0));
    assert!(scheduler.on_fir(0xaaaa, 7, t0 + ms(400)));
    assert!(scheduler.poll_keyframe(t0 + ms(400)));
    // The same request again (an RTCP retransmission): no new key frame.
    assert!(!scheduler.on_fir(0xaaaa, 7, t0 + ms(800)));
    assert!(!scheduler.poll_keyframe(t0 + ms(800)));
    // Another requester with the same number, or the same one with a new number, counts.
    assert!(scheduler.on_fir(0xbbbb, 7, t0 + ms(900)));
    assert!(scheduler.poll_keyframe(t0 + ms(900)));
    assert!(scheduler.on_fir(0xaaaa, 8, t0 + ms(1_300)));
    assert!(scheduler.poll_keyframe(t0 + ms(1_300)));
    assert_eq!(scheduler.stats().duplicate_firs, 1);
}

#[test]
fn the_periodic_safety_net_and_encoder_key_frames() {
    let t0 = Instant::now();
    let config = KeyframeSchedulerConfig {
        periodic: Some(Duration::from_secs(5)),
        ..KeyframeSchedulerConfig::default()
    };
    let mut scheduler = KeyframeScheduler::new(config, t0);
    let mut frames = Vec::new();
    for i in 0..600u64 {
        let now = t0 + ms(i * 33);
        if scheduler.poll_keyframe(now) {
            frames.push(i);
        }
    }
    // t = 0, then the first frame at least 5 s after the previous key frame.
    assert_eq!(frames, vec![0, 152, 304, 456]);
    assert_eq!(scheduler.stats().periodic, 3);
    // A key frame the encoder made by itself restarts the period.
    let now = t0 + ms(600 * 33);
    scheduler.on_keyframe_sent(now);
    assert_eq!(scheduler.poll_timeout(), Some(now + Duration::from_secs(5)));
    let none = KeyframeScheduler::new(
        KeyframeSchedulerConfig {
            periodic: None,
            ..KeyframeSchedulerConfig::default()
        },
        t0,
    );
    assert_eq!(none.poll_timeout(), Some(t0));
}

#[test]
fn the_receiver_asks_at_once_and_backs_off_until_a_key_frame() {
    let t0 = Instant::now();
    let mut requester = KeyframeRequester::new(KeyframeRequesterConfig::default());
    requester.on_packet(t0);
    requester.on_frame_decoded(true, t0);
    assert_eq!(requester.poll_request(t0 + ms(5_000)), None);
    let t1 = t0 + ms(5_000);
    requester.on_decode_error(t1);
    requester.on_frame_lost(t1 + ms(10));
    let mut sent = Vec::new();
    let mut now = t1;
    while now < t1 + ms(6_000) {
        if let Some(request) = requester.poll_request(now) {
            assert_eq!(request, KeyframeRequest::Pli);
            sent.push((now - t1).as_millis());
        }
        now += ms(10);
    }
    // At once, then 250, 500, 1000, 2000, 2000 ms apart.
    assert_eq!(sent, vec![0, 250, 750, 1_750, 3_750, 5_750]);
    assert_eq!(requester.stats().retries, 5);
    requester.on_frame_decoded(true, now);
    assert!(!requester.is_waiting());
    assert_eq!(requester.poll_timeout(), None);
    // A long RTT lengthens the first wait.
    requester.set_rtt(ms(400));
    requester.request(now);
    assert!(requester.poll_request(now).is_some());
    assert_eq!(requester.poll_timeout(), Some(now + ms(500)));
}

#[test]
fn a_silent_start_and_fir_numbering() {
    let t0 = Instant::now();
    let config = KeyframeRequesterConfig {
        use_fir: true,
        ..KeyframeRequesterConfig::default()
    };
    let mut requester = KeyframeRequester::new(config);
    assert_eq!(requester.poll_timeout(), None);
    requester.on_packet(t0);
    // Packets, but nothing decodable for a second: ask.
    assert_eq!(requester.poll_timeout(), Some(t0 + ms(1_000)));
    assert_eq!(requester.poll_request(t0 + ms(999)), None);
    let first = requester.poll_request(t0 + ms(1_000));
    assert_eq!(first, Some(KeyframeRequest::Fir { sequence: 1 }));
    let retry = requester.poll_request(t0 + ms(1_250));
    assert_eq!(retry, Some(KeyframeRequest::Fir { sequence: 2 }));

    let bytes = retry.unwrap().build(0x1111, 0x2222).unwrap();
    match &parse_compound(&bytes).unwrap()[0] {
        RtcpPacket::FullIntraRequest(fir) => {
            assert_eq!(fir.sender_ssrc, 0x1111);
            assert_eq!((fir.fir[0].ssrc, fir.fir[0].sequence_number), (0x2222, 2));
        }
        other => panic!("{other:?}"),
    }
    let pli = KeyframeRequest::Pli.build(0x1111, 0x2222).unwrap();
    assert!(matches!(
        &parse_compound(&pli).unwrap()[0],
        RtcpPacket::PictureLossIndication(p) if p.media_ssrc == 0x2222
    ));
}
