//! A desk phone that decodes a low H.264 level: Callisto's video to it stays within the
//! level its `profile-level-id` names. The phone — a scripted user agent here — offers
//! `42e00c` (Constrained Baseline, level 1.2: at most 396 macroblocks a picture and 6000 a
//! second); `callisto answer` with a 640x480 30 fps pattern answers that level and sends
//! 320x240 pictures at 20 fps whose SPS says level 1.2, read back from the RTP the phone
//! receives. All on loopback, no proxy.

mod support;

use std::error::Error;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use callisto_media::rtp::demux::classify;
use callisto_media::rtp::{parse_rtp, PacketClass};
use callisto_media::video::h264::{DepacketizerConfig, DepacketizerOutput, H264Decoder};
use callisto_media::video::h264::{H264Depacketizer, NAL_SPS};
use support::callisto::Callisto;
use support::sip_uas::ScriptedUas;

type TestResult = Result<(), Box<dyn Error>>;

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn video_to_a_phone_of_a_low_level_stays_within_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let port = support::free_port();
    let mut bob = Callisto::answer(
        dir.path(),
        &format!("127.0.0.1:{port}"),
        &[
            "--codecs",
            "pcmu",
            "--srtp",
            "off",
            "--count",
            "1",
            "--video",
            "pattern",
            "--video-size",
            "640x480",
        ],
    )?;
    bob.expect("listening", WAIT)?;

    let audio = UdpSocket::bind("127.0.0.1:0")?;
    let video = UdpSocket::bind("127.0.0.1:0")?;
    video.set_read_timeout(Some(Duration::from_millis(200)))?;
    let offer = format!(
        "v=0\r\no=phone 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n\
         m=video {} RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
         a=fmtp:96 profile-level-id=42e00c;packetization-mode=1\r\na=rtcp-mux\r\n",
        audio.local_addr()?.port(),
        video.local_addr()?.port()
    );
    let mut phone = ScriptedUas::bind("phone", port)?;
    let call = phone.place_call(&format!("sip:bob@127.0.0.1:{port}"), &offer, WAIT)?;
    bob.expect("answered", WAIT)?;
    assert!(
        call.answer.body().contains("profile-level-id=42e00c"),
        "the answer takes the phone's level: {}",
        call.answer.body()
    );

    // Two seconds of what the phone receives, decoded.
    let mut depacketizer = H264Depacketizer::new(DepacketizerConfig::default());
    let mut decoder = H264Decoder::new()?;
    let (mut levels, mut sizes, mut timestamps) = (Vec::new(), Vec::new(), Vec::new());
    let mut buffer = [0u8; 2048];
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let Ok(n) = video.recv(&mut buffer) else {
            continue;
        };
        // The video port carries RTCP too (rtcp-mux): only RTP goes to the depacketizer.
        if classify(&buffer[..n]) != Ok(PacketClass::Rtp) {
            continue;
        }
        let Ok(packet) = parse_rtp(&buffer[..n]) else {
            continue;
        };
        let header = &packet.header;
        let _ = depacketizer.handle_packet(
            header.sequence_number,
            header.timestamp,
            header.marker,
            &packet.payload,
        );
        while let Some(output) = depacketizer.poll_output() {
            let DepacketizerOutput::AccessUnit(unit) = output else {
                continue;
            };
            for nalu in &unit.nalus {
                if nalu.first().map(|b| b & 0x1f) == Some(NAL_SPS) && nalu.len() > 3 {
                    levels.push(nalu[3]);
                }
            }
            timestamps.push(unit.timestamp);
            if let Some(frame) = decoder.decode_nalus(&unit.nalus, Duration::ZERO)? {
                sizes.push((frame.width(), frame.height()));
            }
        }
    }
    let reply = phone.request_in_dialog(&call, "BYE", None, WAIT)?;
    assert_eq!(reply.status(), Some(200), "{}", reply.start_line());
    bob.expect("call_ended", WAIT)?;
    assert!(bob.wait(WAIT)?.success(), "{}", bob.stderr());

    println!(
        "{} pictures, sizes {:?}, SPS levels {levels:?}",
        sizes.len(),
        sizes.first()
    );
    assert!(!levels.is_empty(), "an SPS arrived");
    assert!(levels.iter().all(|&l| l == 12), "level_idc: {levels:?}");
    assert!(sizes.len() >= 20, "{} pictures", sizes.len());
    assert!(sizes.iter().all(|&s| s == (320, 240)), "{sizes:?}");
    // The pictures' rate, by their RTP clock: 20 a second, not the source's 30.
    let span = timestamps
        .last()
        .zip(timestamps.first())
        .map(|(last, first)| f64::from(last.wrapping_sub(*first)) / 90_000.0)
        .unwrap_or_default();
    let rate = (timestamps.len() - 1) as f64 / span;
    println!("{rate:.1} pictures a second");
    assert!((18.0..=21.0).contains(&rate), "{rate:.1} pictures a second");
    Ok(())
}
