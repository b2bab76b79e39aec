//! Compiles the window (`ui/*.slint`) into Rust; `src/ui/` includes the generated code.
//!
//! Debug builds keep the element names and types in the generated code: the UI tests
//! (`tests/ui_flow.rs`, Slint's testing backend) find buttons and fields by them.

fn main() {
    let debug = std::env::var("PROFILE").as_deref() == Ok("debug");
    let config = slint_build::CompilerConfiguration::new()
        .with_style("fluent".into())
        .with_debug_info(debug);
    if let Err(error) = slint_build::compile_with_config("ui/app.slint", config) {
        eprintln!("the window does not compile: {error}");
        std::process::exit(1);
    }
}
