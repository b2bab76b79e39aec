//! A call's statistics in words for the window: the panel's rows (codec, bitrates, loss,
//! jitter, the E-model's estimated MOS, round trip, video, path) and the last minute's graph.

use std::collections::VecDeque;

use crate::engine::CallSummary;

use super::view_model::CallView;

/// The shown call's figures in words.
pub(super) fn stats_rows(call: &CallView) -> Vec<(String, String)> {
    let Some(summary) = &call.statistics else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    let mut row = |label: &str, value: String| rows.push((label.to_string(), value));
    if let Some(audio) = &summary.audio {
        let secure = if audio.srtp {
            ", SRTP"
        } else {
            ", not encrypted"
        };
        row("Audio", format!("{}{secure}", audio.codec));
        row(
            "Audio in/out",
            audio_kbps(&call.recent)
                .map(|(rx, tx)| format!("{rx:.0} / {tx:.0} kbit/s"))
                .unwrap_or_else(|| "measuring".into()),
        );
        row(
            "Packets in/out",
            format!("{} / {}", audio.rx_packets, audio.tx_packets),
        );
        row("Packet loss", format!("{:.1} %", loss_percent(audio)));
        row("Jitter", format!("{:.1} ms", audio.jitter_ms));
        row("MOS (estimated)", format!("{:.1}", estimated_mos(audio)));
        row(
            "Round trip",
            audio
                .rtt_ms
                .map(|rtt| format!("{rtt:.0} ms"))
                .unwrap_or_else(|| "not measured yet".into()),
        );
    }
    if let Some(video) = &summary.video {
        let received = video
            .receive_resolution
            .map(|(w, h)| format!("{w}x{h}"))
            .unwrap_or_else(|| "nothing yet".into());
        row(
            "Video",
            format!("{} {received} at {:.0} fps", video.codec, video.fps),
        );
        row(
            "Video in/out",
            format!("{:.0} / {:.0} kbit/s", video.receive_kbps, video.send_kbps),
        );
        row(
            "Video lost/NACKed",
            format!("{} / {}", video.lost, video.nacked),
        );
    }
    let path = match &summary.ice {
        Some(ice) => format!(
            "ICE {} to {}",
            ice.local_kind.unwrap_or("?"),
            ice.remote_kind.unwrap_or("?")
        ),
        None => "direct RTP".into(),
    };
    row("Path", path);
    rows
}

/// The ITU-T G.107 E-model's MOS from what the call measured: loss, and a mouth-to-ear delay
/// of half the round trip (when measured) plus the jitter buffer (taken as twice the jitter,
/// at least 20 ms) and one 20 ms frame.
fn estimated_mos(audio: &crate::engine::AudioSummary) -> f64 {
    use callisto_media::codec::AudioCodecKind;
    use callisto_media::quality::{mos_from_r, r_factor, CodecImpairment, Impairments};
    let codec = AudioCodecKind::from_encoding_name(&audio.codec)
        .map(CodecImpairment::for_codec)
        .unwrap_or(CodecImpairment::G711_NO_PLC);
    let delay = audio.rtt_ms.unwrap_or(0.0) / 2.0 + (2.0 * audio.jitter_ms).max(20.0) + 20.0;
    mos_from_r(r_factor(&Impairments {
        one_way_delay_ms: delay,
        loss_percent: loss_percent(audio),
        burst_ratio: 1.0,
        codec,
    }))
}

/// The share of the peer's audio packets that never arrived.
fn loss_percent(audio: &crate::engine::AudioSummary) -> f64 {
    let expected = audio.rx_packets + audio.lost;
    if expected == 0 {
        0.0
    } else {
        audio.lost as f64 * 100.0 / expected as f64
    }
}

/// The audio bitrates in and out (kbit/s of RTP) between the last two readings of the
/// call's statistics; `None` until there are two.
fn audio_kbps(recent: &VecDeque<CallSummary>) -> Option<(f64, f64)> {
    let mut readings = recent
        .iter()
        .rev()
        .filter_map(|s| s.audio.as_ref().map(|audio| (s.duration, audio)));
    let ((now, last), (then, before)) = (readings.next()?, readings.next()?);
    let seconds = now.checked_sub(then)?.as_secs_f64();
    if seconds <= 0.0 {
        return None;
    }
    let kbps = |now: u64, then: u64| now.saturating_sub(then) as f64 * 8.0 / seconds / 1000.0;
    Some((
        kbps(last.rx_bytes, before.rx_bytes),
        kbps(last.tx_bytes, before.tx_bytes),
    ))
}

/// The last minute as levels: the video bitrate received when there is video, else the audio
/// jitter.
pub(super) fn graph(call: &CallView) -> (Vec<f32>, String) {
    let video = call.recent.iter().any(|s| s.video.is_some());
    let values: Vec<f64> = call
        .recent
        .iter()
        .map(|s| match (video, &s.video, &s.audio) {
            (true, Some(v), _) => v.receive_kbps,
            (false, _, Some(a)) => a.jitter_ms,
            _ => 0.0,
        })
        .collect();
    if values.is_empty() {
        return (Vec::new(), String::new());
    }
    let top = values.iter().copied().fold(0.0_f64, f64::max);
    let levels = values
        .iter()
        .map(|v| if top > 0.0 { (v / top) as f32 } else { 0.0 })
        .collect();
    let caption = if video {
        format!("Video received, last minute (top {top:.0} kbit/s)")
    } else {
        format!("Audio jitter, last minute (top {top:.1} ms)")
    };
    (levels, caption)
}
