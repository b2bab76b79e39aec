//! Answering a request that failed to parse (RFC 3261 §8.2.6).

use super::error::ParseError;
use super::headers::NameAddr;
use super::parser::{expand_compact, logical_lines, split_list};
use super::response::derived_tag;

/// Builds the error response to a malformed request, copied from its raw text.
///
/// The status line is `SIP/2.0 <err.status_code()> <err>` — `400` with a reason naming the
/// fault in most cases (`501` for an unknown method, `505` for a wrong version, `513` when too
/// large). Via (all values), From, To, Call-ID and CSeq are recovered leniently from the raw
/// header lines and copied; a To tag is added when missing. Returns `None` for responses and
/// ACKs (never answered), and when the bytes do not carry enough to address a reply.
pub fn bad_request(bytes: &[u8], err: &ParseError) -> Option<Vec<u8>> {
    let mut bytes = bytes;
    while let Some(rest) = bytes.strip_prefix(b"\r\n") {
        bytes = rest;
    }
    let head_end = find(bytes, b"\r\n\r\n").unwrap_or(bytes.len());
    let head = bytes.get(..head_end)?;
    let start_end = find(head, b"\r\n")?;
    let start_line = head.get(..start_end)?;
    let method = start_line.split(|&b| b == b' ').next()?;
    if method.is_empty()
        || start_line.len() >= 4 && start_line[..4].eq_ignore_ascii_case(b"SIP/")
        || method == b"ACK"
        || !method.iter().all(|&b| super::parser::is_token_byte(b))
    {
        return None;
    }

    let mut vias: Vec<String> = Vec::new();
    let (mut from, mut to, mut call_id, mut cseq) = (None, None, None, None);
    for line in logical_lines(head.get(start_end + 2..)?) {
        let Ok(line) = std::str::from_utf8(&line) else {
            continue;
        };
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if value.is_empty() || value.bytes().any(|b| b < 0x20 && b != b'\t') {
            continue;
        }
        let name = expand_compact(name.trim());
        let slot = match name.to_ascii_lowercase().as_str() {
            "via" => {
                vias.extend(split_list(value).map(str::to_owned));
                continue;
            }
            "from" => &mut from,
            "to" => &mut to,
            "call-id" => &mut call_id,
            "cseq" => &mut cseq,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value.to_owned());
        }
    }
    let (from, mut to, call_id, cseq) = (from?, to?, call_id?, cseq?);
    if vias.is_empty() {
        return None;
    }
    let code = err.status_code();
    let to_addr = NameAddr::parse(&to)?;
    if to_addr.tag().is_none() {
        let from_tag = NameAddr::parse(&from).and_then(|a| a.tag()).unwrap_or("");
        let tag = derived_tag(&[&call_id, from_tag, &cseq, &vias[0]]);
        to.push_str(";tag=");
        to.push_str(&tag);
    }

    let mut out = format!("SIP/2.0 {code} {err}\r\n");
    for via in &vias {
        out.push_str("Via: ");
        out.push_str(via);
        out.push_str("\r\n");
    }
    for (name, value) in [
        ("From", &from),
        ("To", &to),
        ("Call-ID", &call_id),
        ("CSeq", &cseq),
    ] {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    Some(out.into_bytes())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
