//! Compiles the window (`ui/*.slint`) into Rust; `src/ui/` includes the generated code.

fn main() {
    let config = slint_build::CompilerConfiguration::new().with_style("fluent".into());
    if let Err(error) = slint_build::compile_with_config("ui/app.slint", config) {
        eprintln!("the window does not compile: {error}");
        std::process::exit(1);
    }
}
