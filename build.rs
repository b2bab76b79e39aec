//! Links `callisto` with packed relative relocations where the system's loader applies them
//! (see `scripts/packed_relocations.rs`).

#[path = "scripts/packed_relocations.rs"]
mod packed_relocations;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=scripts/packed_relocations.rs");
    packed_relocations::link_bins_packed();
}
