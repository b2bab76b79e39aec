//! Compiles the window (`ui/*.slint`) into Rust; `src/lib.rs` includes the generated code.
//!
//! Debug builds keep the element names and types in the generated code: the UI tests
//! (`tests/ui_flow.rs` at the top, Slint's testing backend) find buttons and fields by them.
//!
//! `callisto-desktop` is linked with packed relative relocations where the system's loader
//! applies them, as `callisto` is (see `scripts/packed_relocations.rs`).

#[path = "../scripts/packed_relocations.rs"]
mod packed_relocations;

fn main() {
    let debug = std::env::var("PROFILE").as_deref() == Ok("debug");
    let config = slint_build::CompilerConfiguration::new()
        .with_style("fluent".into())
        .with_debug_info(debug);
    if let Err(error) = slint_build::compile_with_config("app.slint", config) {
        eprintln!("the window does not compile: {error}");
        std::process::exit(1);
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../scripts/packed_relocations.rs");
    packed_relocations::link_bins_packed();
}
