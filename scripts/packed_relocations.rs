//! For the build scripts of `callisto` and `callisto-ui`: link their binaries with packed
//! relative relocations (`-z pack-relative-relocs`, DT_RELR) on a glibc that loads them (2.36
//! and later). A debug build, a position-independent executable of about 120 MB, otherwise
//! carries 3.3 MB of `R_X86_64_RELATIVE` entries that the loader reads at every start. Packed,
//! they take 32 KB, and the resident set of `callisto --help` falls from about 20 MB to
//! 14.6 MB, that of a headless call from about 28 MB to 23 MB. An older glibc refuses such a
//! binary, so it is linked as before there.

use std::env;

/// Tells cargo to link this package's binaries with packed relocations where they will load.
pub fn link_bins_packed() {
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
