//! For the build script of `callisto`: lay the code a call runs out together, at the start of
//! `.text`, in the order of `scripts/hot-code.txt` (written by `scripts/hot-code.sh` from what
//! `callisto call` and `callisto answer` ran in registered Opus calls, plain RTP and SRTP).
//!
//! The kernel maps an executable's pages 64 KB at a time around each page a process touches
//! ("fault-around"). The 1.4 MB of functions a headless call runs lay scattered over the
//! 12.8 MB of `.text` in the linker's default order, so about 6 MB of the binary were resident
//! in every call; placed together, about 2 MB are, and the peak RSS of either end of a
//! registered Opus call (`benches/call_baseline.rs`) falls from 11.5–11.9 MiB to 7.6–7.8 MiB
//! (7.7–7.9 MiB with SDES-SRTP).
//! Nothing else changes: the same code, only placed elsewhere.
//!
//! The list names each function by its mangled symbol, and the linker script matches each name
//! with what depends on the build's crate hashes left open ([`any_build`]): the same list serves
//! `cargo build` and `cargo test` builds (whose dependencies' features, hence hashes, differ),
//! later edits and other toolchains, and only functions added or renamed since the profile are
//! missed. (A `RUSTFLAGS` set in the environment replaces `.cargo/config.toml`'s v0 mangling;
//! the listed names then match nothing, and the order is the default one.) Where the linker
//! does not take the script (an older toolchain linking with GNU ld, say), the binary is linked
//! in the default order and the build says so.

use std::collections::HashSet;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Tells cargo to link the `callisto` binary with the code of `list` placed first, and tells
/// the package's tests how it was linked: `CALLISTO_HOT_CODE` is `placed` or the reason why not.
pub fn link_hot_code_first(list: &Path) {
    println!("cargo:rerun-if-changed={}", list.display());
    let outcome = place_hot_code(list);
    if let Err(why) = &outcome {
        println!("cargo:warning=callisto is linked in the default code order: {why}");
    }
    let told = outcome.map_or_else(|why| why.replace('\n', " "), |()| "placed".to_owned());
    println!("cargo:rustc-env=CALLISTO_HOT_CODE={told}");
}

fn place_hot_code(list: &Path) -> Result<(), String> {
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if !flags.contains("symbol-mangling-version=v0") {
        return Err(
            "symbols are not v0-mangled (RUSTFLAGS or other rustflags in the \
                    environment replace .cargo/config.toml's), so the list matches nothing"
                .to_owned(),
        );
    }
    let names = fs::read_to_string(list).map_err(|error| format!("{}: {error}", list.display()))?;
    let out_dir = env::var_os("OUT_DIR")
        .map(PathBuf::from)
        .ok_or("cargo gave no OUT_DIR")?;
    let script = out_dir.join("hot-code.ld");
    fs::write(&script, linker_script(&names)).map_err(|error| error.to_string())?;
    probe_link(&out_dir, &script)
        .map_err(|why| format!("the linker refuses the code order script ({why})"))?;
    println!(
        "cargo:rustc-link-arg-bin=callisto=-Wl,-T,{}",
        script.display()
    );
    Ok(())
}

/// The linker script: the `.text` output section starting with the listed functions' sections
/// (`.text.NAME`, and LLVM's `.text.unlikely.NAME` for cold ones), each name matched in any
/// build (see [`any_build`]); everything else follows in the default order.
pub fn linker_script(list: &str) -> String {
    let mut script = String::from("SECTIONS {\n  .text : {\n");
    let mut seen = HashSet::new();
    for name in listed_names(list) {
        let pattern = any_build(name);
        if seen.insert(pattern.clone()) {
            let _ = writeln!(script, "    *(.text.{pattern} .text.unlikely.{pattern})");
        }
    }
    script.push_str("  }\n}\nINSERT BEFORE .init;\n");
    script
}

/// The names in `list`, one per line: no blank or `#` comment lines, and only what is a symbol
/// name — nothing a linker script would read as syntax or a glob.
pub fn listed_names(list: &str) -> impl Iterator<Item = &str> {
    list.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter(|line| {
            line.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'$'))
        })
}

/// `name` as a glob that matches the same function in any build of the same sources: what
/// depends on a build's crate hashes left open, and any suffix (the `.N` of a local copy made
/// by link-time optimisation) allowed. In a v0 name (`_R…`, `.cargo/config.toml`) those are the
/// crate disambiguators (`Cs…_`) and the back-references (`B…_`, offsets into the name, which
/// move when a disambiguator's length does); in a legacy name (`_ZN…`), the trailing hash
/// (`17h` and 16 hex digits, `E`), which also tells a generic function's instances apart, so
/// that there the pattern takes all of them.
pub fn any_build(name: &str) -> String {
    if !name.is_ascii() {
        return format!("{name}*");
    }
    if let Some(v0) = name.strip_prefix("_R") {
        return any_build_v0(v0);
    }
    let mut pattern = String::with_capacity(name.len() + 2);
    let bytes = name.as_bytes();
    let hash_at = bytes.len().checked_sub(20).filter(|&at| {
        name.starts_with("_ZN")
            && name[at..].starts_with("17h")
            && bytes[bytes.len() - 1] == b'E'
            && bytes[at + 3..bytes.len() - 1]
                .iter()
                .all(u8::is_ascii_hexdigit)
    });
    match hash_at {
        Some(at) => {
            pattern.push_str(&name[..at]);
            pattern.push_str("17h*E*");
        }
        None => {
            pattern.push_str(name);
            pattern.push('*');
        }
    }
    pattern
}

/// The pattern of a v0 name (after `_R`). Identifiers (`<length>[_]<bytes>`) are copied whole;
/// a crate root's disambiguator (`Cs<base 62>_`) and a back-reference (`B<base 62>_`) become
/// `Cs*_` and `B*_`; other disambiguators (`s<base 62>_`, numbering impls and closures within
/// their parent), lifetimes and binders (`L…_`, `G…_`) and const values (a type's letter, hex
/// digits, `_`) stay. (An `i16`, `s`, followed by what reads as a disambiguator is taken for
/// one; the pattern then only fails to match in another build.) The instantiating crate at the end of a generic instance (a path ends in
/// an identifier or in the `E` closing generic arguments, never in a crate) is left open as a
/// whole: which crate makes an instance of a shared generic function differs between builds.
fn any_build_v0(v0: &str) -> String {
    let bytes = v0.as_bytes();
    let mut pattern = String::from("_R");
    let base62 = |from: usize| {
        let run = bytes[from..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        (bytes.get(from + run) == Some(&b'_')).then_some(from + run + 1)
    };
    // A const generic argument's value after its type (`j2_`, `Kj10_`, `hn1_`): hex digits.
    let const_data = |from: usize| {
        let from = from + usize::from(bytes.get(from) == Some(&b'n'));
        let run = bytes[from.min(bytes.len())..]
            .iter()
            .take_while(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            .count();
        (bytes.get(from + run) == Some(&b'_')).then_some(from + run + 1)
    };
    // Where the last token began in `pattern`, and whether it names a crate (a crate root with
    // its name, or a back-reference); where a crate root's name is still to come.
    let mut last = (0, false);
    let mut root: Option<usize> = None;
    let mut at = 0;
    while at < bytes.len() {
        let start = pattern.len();
        let c = bytes[at];
        if c.is_ascii_digit() {
            let digits = bytes[at..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            let len: usize = v0[at..at + digits].parse().unwrap_or(0);
            let mut end = at + digits;
            if bytes.get(end) == Some(&b'_') {
                end += 1;
            }
            let end = end.saturating_add(len).min(bytes.len());
            pattern.push_str(&v0[at..end]);
            at = end;
            last = match root.take() {
                Some(root) => (root, true),
                None => (start, false),
            };
            continue;
        }
        let crate_root = c == b'C' && bytes.get(at + 1) == Some(&b's');
        match (crate_root, c) {
            (true, _) => match base62(at + 2) {
                Some(end) => {
                    pattern.push_str("Cs*_");
                    at = end;
                    root = Some(start);
                    continue;
                }
                None => pattern.push('C'),
            },
            (false, b'B') => match base62(at + 1) {
                Some(end) => {
                    pattern.push_str("B*_");
                    at = end;
                    last = (start, true);
                    root = None;
                    continue;
                }
                None => pattern.push('B'),
            },
            (false, b's' | b'L' | b'G') => match base62(at + 1) {
                Some(end) => pattern.push_str(&v0[at..end]),
                None => pattern.push(char::from(c)),
            },
            (false, b'a'..=b'z') => match const_data(at + 1) {
                Some(end) => pattern.push_str(&v0[at..end]),
                None => pattern.push(char::from(c)),
            },
            _ => pattern.push(char::from(c)),
        }
        at += pattern.len() - start;
        last = (start, false);
        root = None;
    }
    let (token, names_crate) = last;
    if names_crate {
        pattern.truncate(token);
    }
    pattern.push('*');
    pattern
}

/// Links an empty program with `script` as `callisto` will be linked (same compiler, target,
/// linker and flags), to learn whether the linker takes it.
fn probe_link(out_dir: &Path, script: &Path) -> Result<(), String> {
    let source = out_dir.join("hot_code_probe.rs");
    fs::write(&source, "fn main() {}\n").map_err(|error| error.to_string())?;
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let mut command = Command::new(rustc);
    if let Ok(target) = env::var("TARGET") {
        command.arg("--target").arg(target);
    }
    if let Ok(linker) = env::var("RUSTC_LINKER") {
        command.arg("-C").arg(format!("linker={linker}"));
    }
    if let Ok(flags) = env::var("CARGO_ENCODED_RUSTFLAGS") {
        command.args(flags.split('\x1f').filter(|flag| !flag.is_empty()));
    }
    let output = command
        .arg("-C")
        .arg(format!("link-arg=-Wl,-T,{}", script.display()))
        .arg("-o")
        .arg(out_dir.join("hot_code_probe"))
        .arg(&source)
        .stdin(Stdio::null())
        .output()
        .map_err(|error| error.to_string())?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let first = stderr
        .lines()
        .find(|line| line.contains("error"))
        .unwrap_or("the probe link failed");
    Err(first.trim().to_owned())
}
