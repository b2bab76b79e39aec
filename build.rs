//! Compiles the window (`ui/*.slint`) into Rust; `src/ui/` includes the generated code.
//!
//! Debug builds keep the element names and types in the generated code: the UI tests
//! (`tests/ui_flow.rs`, Slint's testing backend) find buttons and fields by them.
//!
//! On a glibc that loads packed relative relocations (2.36 and later), the `callisto` binary is
//! linked with them (`-z pack-relative-relocs`, DT_RELR): the debug build, a position-independent
//! executable of about 120 MB, otherwise carries 3.3 MB of `R_X86_64_RELATIVE` entries that the
//! loader reads at every start. Packed, they take 32 KB, and the resident set of
//! `callisto --help` falls from about 20 MB to 14.6 MB, that of a headless call from about 28 MB
//! to 23 MB. An older glibc refuses such a binary, so it is linked as before there.

use std::env;

fn main() {
    let debug = env::var("PROFILE").as_deref() == Ok("debug");
    let config = slint_build::CompilerConfiguration::new()
        .with_style("fluent".into())
        .with_debug_info(debug);
    if let Err(error) = slint_build::compile_with_config("ui/app.slint", config) {
        eprintln!("the window does not compile: {error}");
        std::process::exit(1);
    }
    if packed_relocations_load() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the binary will run on a glibc that applies DT_RELR: it is built for this machine
/// (the target is the host), and the host's glibc is 2.36 or later.
fn packed_relocations_load() -> bool {
    let native = matches!((env::var("TARGET"), env::var("HOST")), (Ok(t), Ok(h)) if t == h);
    native
        && env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
        && glibc_version().is_some_and(|version| version >= (2, 36))
}

/// The running glibc's version (major, minor).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn glibc_version() -> Option<(u32, u32)> {
    use std::ffi::{c_char, CStr};
    extern "C" {
        fn gnu_get_libc_version() -> *const c_char;
    }
    // SAFETY: glibc returns a pointer to a static NUL-terminated string such as "2.36".
    let version = unsafe { CStr::from_ptr(gnu_get_libc_version()) }
        .to_str()
        .ok()?;
    let mut parts = version.split('.').map(|part| part.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??))
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn glibc_version() -> Option<(u32, u32)> {
    None
}
