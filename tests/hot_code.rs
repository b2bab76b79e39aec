//! The code a call runs is laid out together at the start of `callisto`'s `.text`
//! (`scripts/hot_code.rs`, which `build.rs` uses, and its list `scripts/hot-code.txt`): the
//! linker script's patterns, and the built binary — the listed functions it has lie packed at
//! the start of its code, and the list still matches it. Linux with GNU binutils' `nm`.

#[path = "../scripts/hot_code.rs"]
#[allow(dead_code)]
mod hot_code;

mod support;

use std::collections::HashSet;
use std::error::Error;
use std::process::Command;

use hot_code::{any_build, linker_script, listed_names};

type TestResult = Result<(), Box<dyn Error>>;

#[test]
fn a_v0_symbol_matches_any_crate_hash() {
    // Crate disambiguators (`Cs…_`) and back-references (`B…_`, `B_`) are left open.
    assert_eq!(
        any_build("_RNvMs0_NtNtCsjrHSEGnQ3l9_3std4sync4OnceNtB5_4Once4call"),
        "_RNvMs0_NtNtCs*_3std4sync4OnceNtB*_4Once4call*"
    );
    assert_eq!(
        any_build("_RINvNtCs1234567890a_4core3ptr13drop_in_placeNtCsZYX_8callisto4CallEB_"),
        "_RINvNtCs*_4core3ptr13drop_in_placeNtCs*_8callisto4CallE*"
    );
    // The crate that made a generic instance differs between builds: it is left open too.
    assert_eq!(
        any_build("_RINvNtCsAB_4core3ptr13drop_in_placeNtCsCD_3foo3BarECsEF_14callisto_media"),
        "_RINvNtCs*_4core3ptr13drop_in_placeNtCs*_3foo3BarE*"
    );
    // Not an instance: a path that ends in a name stays whole.
    assert_eq!(
        any_build("_RNvNtCsAB_4core3fmt5write"),
        "_RNvNtCs*_4core3fmt5write*"
    );
    // A crate root without a disambiguator, and `Cs` within an identifier or opening none,
    // stay; `Cs_` is disambiguator 0.
    assert_eq!(any_build("_RNvC5Class4main"), "_RNvC5Class4main*");
    assert_eq!(any_build("_RNv5ClsCsab"), "_RNv5ClsCsab*");
    assert_eq!(any_build("_RNvCs_5Class4main"), "_RNvCs*_5Class4main*");
    // Impl and closure disambiguators number items within their parent: they stay.
    assert_eq!(
        any_build("_RNCNvMs1_NtCsAB_8callisto4callNtB4_4Call3runs3_0"),
        "_RNCNvMs1_NtCs*_8callisto4callNtB*_4Call3runs3_0*"
    );
    // Const values (an array's length, a const argument) are not identifiers: the crate after
    // them is still found.
    assert_eq!(
        any_build("_RINvMNtCsAB_4core3stre4findAcj2_ECsCD_18callisto_signaling"),
        "_RINvMNtCs*_4core3stre4findAcj2_E*"
    );
    assert_eq!(
        any_build("_RINvNtCsAB_3foo3barKj10_ECsCD_4rsip"),
        "_RINvNtCs*_3foo3barKj10_E*"
    );
    // Not ASCII, not a symbol: taken as it is.
    assert_eq!(any_build("_R1é"), "_R1é*");
    assert_eq!(
        any_build("_R18446744073709551615"),
        "_R18446744073709551615*"
    );
}

#[test]
fn a_legacy_symbol_matches_any_hash_and_a_c_symbol_itself() {
    assert_eq!(
        any_build("_ZN14callisto_media3rtp8Receiver4push17h0123456789abcdefE"),
        "_ZN14callisto_media3rtp8Receiver4push17h*E*"
    );
    // Not a hash: 15 hex digits, or a name that merely ends in E.
    assert_eq!(
        any_build("_ZN3foo3bar17h0123456789abcdeE"),
        "_ZN3foo3bar17h0123456789abcdeE*"
    );
    assert_eq!(any_build("_ZN3foo4nameE"), "_ZN3foo4nameE*");
    assert_eq!(any_build("opus_encode"), "opus_encode*");
}

#[test]
fn the_script_places_each_pattern_once_in_the_listed_order() {
    let list = "# a comment\n\
                _RNvCsAAAA_1a1g\n\
                \n\
                _RNvCsBBBBBB_1a1g\n\
                not) a symbol\n\
                opus_encode\n";
    let script = linker_script(list);
    let lines: Vec<&str> = script.lines().collect();
    assert_eq!(
        lines,
        [
            "SECTIONS {",
            "  .text : {",
            // Both builds' names of `a::g` share one pattern; what is no symbol is left out.
            "    *(.text._RNvCs*_1a1g* .text.unlikely._RNvCs*_1a1g*)",
            "    *(.text.opus_encode* .text.unlikely.opus_encode*)",
            "  }",
            "}",
            "INSERT BEFORE .init;",
        ]
    );
}

/// A code symbol: address, size and name (without a `.N` suffix).
type Symbol = (u64, u64, String);

/// The `.text` symbols of `binary`.
fn text_symbols(binary: &str) -> Result<Vec<Symbol>, Box<dyn Error>> {
    let output = Command::new("nm")
        .args(["--defined-only", "--print-size", "--numeric-sort"])
        .arg(binary)
        .output()?;
    assert!(output.status.success(), "nm {binary} failed");
    let mut symbols = Vec::new();
    for line in String::from_utf8(output.stdout)?.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [address, size, kind, name] = fields[..] else {
            continue;
        };
        if !matches!(kind, "t" | "T" | "W" | "w") {
            continue;
        }
        let name = match name.rsplit_once('.') {
            Some((stem, suffix)) if suffix.bytes().all(|b| b.is_ascii_digit()) => stem,
            _ => name,
        };
        symbols.push((
            u64::from_str_radix(address, 16)?,
            u64::from_str_radix(size, 16)?,
            name.to_owned(),
        ));
    }
    Ok(symbols)
}

#[test]
#[cfg(target_os = "linux")]
fn the_built_callisto_has_the_listed_code_packed_at_the_start() -> TestResult {
    let list =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/hot-code.txt"))?;
    assert_eq!(
        option_env!("CALLISTO_HOT_CODE"),
        Some("placed"),
        "the build did not place the listed code first"
    );
    // The patterns the build's linker script has.
    let listed: HashSet<String> = listed_names(&list).map(any_build).collect();
    assert!(listed.len() > 100, "{} functions listed", listed.len());
    let symbols = text_symbols(support::callisto::binary())?;
    let start = symbols.first().map(|s| s.0).ok_or("no code symbols")?;
    let hot: Vec<&Symbol> = symbols
        .iter()
        .filter(|(_, _, name)| listed.contains(&any_build(name)))
        .collect();
    let found: HashSet<String> = hot.iter().map(|(_, _, name)| any_build(name)).collect();
    // The list still names this build's functions (a stale list matches few).
    assert!(
        found.len() * 10 >= listed.len() * 8,
        "only {} of the {} listed functions are in the binary: run scripts/hot-code.sh",
        found.len(),
        listed.len()
    );
    // Packed: nearly all of them lie within their own size (and a little room) from the start
    // of the code. (Not all: a function the compiler merged with another is an alias in that
    // one's section, placed with it.)
    let size: u64 = hot.iter().map(|s| s.1).sum();
    let room = size + size / 10 + 64 * 1024;
    let inside = hot.iter().filter(|s| s.0 + s.1 <= start + room).count();
    assert!(
        inside * 100 >= hot.len() * 95,
        "only {inside} of the {} listed functions ({} KiB) lie within the first {} KiB of code",
        hot.len(),
        size / 1024,
        room / 1024
    );
    Ok(())
}
