//! Links `callisto` with packed relative relocations where the system's loader applies them
//! (see `scripts/packed_relocations.rs`), and with the code a call runs placed together (see
//! `scripts/hot_code.rs`).

#[path = "scripts/hot_code.rs"]
mod hot_code;
#[path = "scripts/packed_relocations.rs"]
mod packed_relocations;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=scripts/packed_relocations.rs");
    println!("cargo:rerun-if-changed=scripts/hot_code.rs");
    packed_relocations::link_bins_packed();
    hot_code::link_hot_code_first(std::path::Path::new("scripts/hot-code.txt"));
}
