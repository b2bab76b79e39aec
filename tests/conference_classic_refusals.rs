//! A conference host and a classic participant that says it takes several video streams
//! (`a=x-callisto-multistream`) but will not have them: a scripted user agent that declines
//! the forwarded `m=video` lines (port 0), or refuses the host's re-INVITEs outright (488). The
//! host offers carol's stream, learns, and stops: a declined stream is not offered again (nor,
//! once every stream is declined, the stream of a participant who joins later), and after
//! three refusals in a row the leg is left alone (it gets the mosaic instead).

mod support;

use std::collections::BTreeSet;
use std::error::Error;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use support::callisto::Callisto;
use support::conference::{Room, TestResult};
use support::sip_uas::{PlacedCall, ScriptedUas, SipMessage};

const WAIT: Duration = Duration::from_secs(8);

/// What the scripted participant does with the host's offers of streams.
#[derive(Clone, Copy, PartialEq)]
enum Reply {
    /// 200 with the forwarded `m=video` lines at port 0.
    Decline,
    /// 488 Not Acceptable Here.
    Refuse,
}

/// Dave: a scripted classic participant with PCMU audio (sent, silence, 50 packets a second,
/// so the host's media timeout never drops him) and H.264 video it never sends.
struct Dave {
    agent: ScriptedUas,
    call: PlacedCall,
    audio: UdpSocket,
    _video: UdpSocket,
    stop: Arc<AtomicBool>,
    sender: Option<thread::JoinHandle<std::io::Result<()>>>,
    version: u32,
}

impl Dave {
    fn join(uri: &str) -> Result<Dave, Box<dyn Error>> {
        let host_port = support::sip_uas::port_of(uri).ok_or("no port in the conference URI")?;
        let (audio, video) = (
            UdpSocket::bind("127.0.0.1:0")?,
            UdpSocket::bind("127.0.0.1:0")?,
        );
        let offer = format!(
            "v=0\r\no=dave 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             a=x-callisto-multistream\r\n\
             m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n\
             m=video {} RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
             a=fmtp:96 profile-level-id=42e01f;packetization-mode=1\r\na=sendrecv\r\n",
            audio.local_addr()?.port(),
            video.local_addr()?.port(),
        );
        let mut agent = ScriptedUas::bind("dave", host_port)?;
        let call = agent.place_call(uri, &offer, WAIT)?;
        let rtp_port = (call.answer)
            .media_port("audio")
            .ok_or("no audio port in the host's answer")?;
        let stop = Arc::new(AtomicBool::new(false));
        let sender = {
            let (stop, socket) = (Arc::clone(&stop), audio.try_clone()?);
            thread::spawn(move || {
                let mut packet = [0xffu8; 12 + 160];
                packet[..2].copy_from_slice(&[0x80, 0]);
                packet[8..12].copy_from_slice(&0xda7e_u32.to_be_bytes());
                let mut next = Instant::now();
                for sequence in 0u32.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    packet[2..4].copy_from_slice(&(sequence as u16).to_be_bytes());
                    packet[4..8].copy_from_slice(&(sequence * 160).to_be_bytes());
                    socket.send_to(&packet, ("127.0.0.1", rtp_port))?;
                    next += Duration::from_millis(20);
                    thread::sleep(next.saturating_duration_since(Instant::now()));
                }
                Ok(())
            })
        };
        Ok(Dave {
            agent,
            call,
            audio,
            _video: video,
            stop,
            sender: Some(sender),
            version: 1,
        })
    }

    /// The host's re-INVITEs within `window`, each answered as `reply` says (other requests
    /// get 200); each distinct one (by CSeq) once.
    fn offers(&mut self, window: Duration, reply: Reply) -> std::io::Result<Vec<SipMessage>> {
        let deadline = Instant::now() + window;
        let mut seen = BTreeSet::new();
        let mut offers = Vec::new();
        while Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(request) = self.agent.receive(left, |m| m.method().is_some()) else {
                break;
            };
            match request.method() {
                Some("INVITE") => {
                    match reply {
                        Reply::Decline => {
                            let answer = self.declining(request.body());
                            self.agent.answer_reinvite(&request, &answer)?;
                        }
                        Reply::Refuse => self.agent.respond(&request, "488 Not Acceptable Here")?,
                    }
                    let cseq = request.header("CSeq").unwrap_or_default().to_owned();
                    if seen.insert(cseq) {
                        offers.push(request);
                    }
                }
                Some("ACK") => {}
                _ => self.agent.respond(&request, "200 OK")?,
            }
        }
        Ok(offers)
    }

    /// An answer to the host's `offer`: audio and the call's own video taken, every further
    /// `m=video` declined (port 0).
    fn declining(&mut self, offer: &str) -> String {
        self.version += 1;
        let mut answer = format!(
            "v=0\r\no=dave 1 {} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             a=x-callisto-multistream\r\n",
            self.version
        );
        let audio = self.audio.local_addr().map(|a| a.port()).unwrap_or(0);
        let video = self._video.local_addr().map(|a| a.port()).unwrap_or(0);
        let mut videos = 0;
        for section in offer.split("\nm=").skip(1) {
            let formats: Vec<&str> = section
                .lines()
                .next()
                .unwrap_or_default()
                .split(' ')
                .collect();
            let payload = formats.get(3).copied().unwrap_or("96");
            if section.starts_with("audio") {
                answer.push_str(&format!(
                    "m=audio {audio} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
                ));
                continue;
            }
            videos += 1;
            let port = if videos == 1 { video } else { 0 };
            answer.push_str(&format!(
                "m=video {port} RTP/AVP {payload}\r\na=rtpmap:{payload} H264/90000\r\n\
                 a=fmtp:{payload} profile-level-id=42e01f;packetization-mode=1\r\na=recvonly\r\n"
            ));
        }
        answer
    }

    fn leave(mut self) -> TestResult {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(sender) = self.sender.take() {
            sender.join().map_err(|_| "the RTP sender panicked")??;
        }
        let bye = self
            .agent
            .request_in_dialog(&self.call, "BYE", None, WAIT)?;
        assert_eq!(bye.status(), Some(200), "{}", bye.start_line());
        Ok(())
    }
}

/// `callisto call` as `who` on the WebRTC path with test pattern `pattern`, for 30 s.
fn participant(room: &Room, uri: &str, who: &str, pattern: &str) -> std::io::Result<Callisto> {
    let user = format!("sip:{who}@127.0.0.1");
    let args = [
        "--user",
        &user,
        "--duration",
        "30",
        "--media",
        "webrtc",
        "--video",
        "pattern",
        "--pattern-id",
        pattern,
    ];
    room.call(who, uri, 700, &args)
}

/// The host (pattern 1), carol on the WebRTC path (pattern 2), then dave; what the host
/// offers dave while he answers as `reply` says, over `window` — 3 s into which erin (WebRTC,
/// pattern 3) joins too, when `erin_joins` —, and how many refusals of dave's leg the host
/// reported.
fn host_offers_dave(
    reply: Reply,
    window: Duration,
    erin_joins: bool,
) -> Result<(Vec<SipMessage>, usize), Box<dyn Error>> {
    let room = Room::new()?;
    let count = if erin_joins { "3" } else { "2" };
    let (mut host, listen) = room.video_host(count)?;
    host.expect("conference", WAIT)?;
    let uri = format!("sip:conference@{listen}");
    let mut carol = participant(&room, &uri, "carol", "2")?;
    carol.expect("answered", WAIT)?;
    let mut dave = Dave::join(&uri)?;
    let mut others = vec![carol];
    let offers = if erin_joins {
        let lead = Duration::from_secs(3);
        let mut offers = dave.offers(lead, reply)?;
        let mut erin = participant(&room, &uri, "erin", "3")?;
        erin.expect("answered", WAIT)?;
        others.push(erin);
        offers.extend(dave.offers(window.saturating_sub(lead), reply)?);
        offers
    } else {
        dave.offers(window, reply)?
    };
    dave.leave()?;
    for other in &mut others {
        other.control("hangup")?;
        assert!(other.wait(WAIT)?.success(), "{}", other.stderr());
    }
    host.expect("conference_ended", WAIT)?;
    assert!(host.wait(WAIT)?.success(), "{}", host.stderr());
    // Dave's leg's refusals only: another leg's offer may be refused on its own account.
    let dave_call = host
        .seen("joined")
        .into_iter()
        .find(|joined| {
            joined["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("dave@"))
        })
        .map(|joined| joined["call"].clone())
        .ok_or("dave never joined")?;
    let told = host
        .seen("change_refused")
        .iter()
        .filter(|refused| refused["call"] == dave_call)
        .count();
    Ok((offers, told))
}

/// Whether `offer` forwards carol's stream on a further `m=video` of its own.
fn forwards_carol(offer: &SipMessage) -> bool {
    offer.body().split("\nm=video ").skip(2).any(|section| {
        section.contains("a=sendonly") && section.contains("a=label:carol_127.0.0.1")
    })
}

/// Dave declines carol's stream: it is not offered again, and when erin joins he is offered
/// nothing (a leg that declined every stream gets the mosaic).
#[test]
fn a_declined_forwarded_stream_is_not_offered_again() -> TestResult {
    let (offers, _) = host_offers_dave(Reply::Decline, Duration::from_secs(7), true)?;
    println!("the host offered dave {} times", offers.len());
    assert_eq!(offers.len(), 1, "{offers:#?}");
    assert!(forwards_carol(&offers[0]), "{}", offers[0].body());
    Ok(())
}

#[test]
fn a_leg_that_refuses_the_streams_three_times_is_left_alone() -> TestResult {
    // Refused at once, the offer is made again after 2 s, then 4 s; a fourth would come
    // 8 s after the third, within the window.
    let started = Instant::now();
    let (offers, told) = host_offers_dave(Reply::Refuse, Duration::from_secs(17), false)?;
    println!(
        "the host offered dave {} times over {:?}, reported {told} refusal",
        offers.len(),
        started.elapsed()
    );
    assert_eq!(offers.len(), 3, "{offers:#?}");
    assert!(offers.iter().all(forwards_carol));
    // Each refused offer is given up: the next has no more m-lines than it had.
    let lines: Vec<usize> = offers
        .iter()
        .map(|o| o.body().matches("\nm=").count())
        .collect();
    assert_eq!(lines, [3, 3, 3]);
    assert_eq!(told, 1, "the engine's own offers are reported refused once");
    Ok(())
}
