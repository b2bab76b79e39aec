//! Loss injected on loopback: an nftables table (Debian's `nft`) whose input hook drops a
//! share of the UDP datagrams that carry RTP of one payload type, chosen at random by the
//! kernel (`numgen random`), and counts what it dropped. Dropped on input, so the sender's
//! `send` succeeds as it would over a lossy network. The rule matches the RTP header's
//! version (2) and payload type (the low seven bits of the second byte), which SRTP leaves in
//! clear; STUN, DTLS and RTCP never match. IPv4 and IPv6 alike (an `inet` table).
//!
//! The table belongs to the network namespace, so [`LossyLoopback::start`] refuses to run
//! outside one whose only interface is `lo` (as `make test` runs every test): it must never
//! touch a real machine's firewall. Dropping the value deletes the table; one left by a test
//! that was killed is deleted by the next start.

use std::io;
use std::process::Command;

/// A running loss rule; see the module docs.
pub struct LossyLoopback {
    table: String,
}

fn nft(args: &[&str]) -> io::Result<String> {
    let output = Command::new("nft").args(args).output()?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "nft {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Whether this process's network namespace has `lo` and nothing else (from
/// `/proc/self/net/dev`, which is the namespace's own; `/sys/class/net` may be the host's).
fn loopback_only() -> io::Result<bool> {
    let devices = std::fs::read_to_string("/proc/self/net/dev")?;
    let names: Vec<&str> = devices
        .lines()
        .skip(2)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, _)| name.trim())
        .collect();
    Ok(names == ["lo"])
}

impl LossyLoopback {
    /// Drops `percent` % (1–99) of the datagrams arriving on loopback whose RTP payload type
    /// is `payload_type`, from now until dropped.
    pub fn start(payload_type: u8, percent: u8) -> io::Result<LossyLoopback> {
        if !loopback_only()? {
            return Err(io::Error::other(
                "loss is injected only in a network namespace whose only interface is lo \
                 (run the test as `make test` does)",
            ));
        }
        // Tables of earlier tests that were killed before they could delete theirs.
        for line in nft(&["list", "tables"])?.lines() {
            if let Some(old) = line.strip_prefix("table inet callisto_loss_") {
                let _ = nft(&["delete", "table", "inet", &format!("callisto_loss_{old}")]);
            }
        }
        let table = format!("callisto_loss_{}", std::process::id());
        nft(&["add", "table", "inet", &table])?;
        let lossy = LossyLoopback { table };
        let chain = "{ type filter hook input priority 0; policy accept; }";
        nft(&["add", "chain", "inet", &lossy.table, "input", chain])?;
        let (payload_type, percent) = (
            (payload_type & 0x7f).to_string(),
            percent.clamp(1, 99).to_string(),
        );
        nft(&[
            "add",
            "rule",
            "inet",
            &lossy.table,
            "input",
            "udp",
            "length",
            ">",
            "20",
            "@th,64,2",
            "2",
            "@th,73,7",
            &payload_type,
            "numgen",
            "random",
            "mod",
            "100",
            "<",
            &percent,
            "counter",
            "drop",
        ])?;
        Ok(lossy)
    }

    /// The datagrams dropped so far.
    pub fn dropped(&self) -> io::Result<u64> {
        let listing = nft(&["list", "table", "inet", &self.table])?;
        let packets = listing
            .split_whitespace()
            .skip_while(|word| *word != "packets")
            .nth(1)
            .ok_or_else(|| io::Error::other(format!("no counter in {listing}")))?;
        packets
            .parse()
            .map_err(|e| io::Error::other(format!("counter {packets}: {e}")))
    }
}

impl Drop for LossyLoopback {
    fn drop(&mut self) {
        let _ = nft(&["delete", "table", "inet", &self.table]);
    }
}
