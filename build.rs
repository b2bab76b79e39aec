//! Links `callisto` with packed relative relocations where the system's loader applies them
//! (see `scripts/packed_relocations.rs`).

#[path = "scripts/packed_relocations.rs"]
mod packed_relocations;

fn main() {
    packed_relocations::link_bins_packed();
}
