//! Links GCC's unwinder into restartd (what `gcc -static-libgcc` does for a C program) instead of
//! loading libgcc_s.so.1 at every start.
//!
//! Rust's standard library asks the linker for `-lgcc_s`; the linker takes the first `libgcc_s`
//! it finds along the search path, so a copy of the toolchain's static unwinder, `libgcc_eh.a`,
//! named `libgcc_s.a` in a directory searched first is linked in its place. One shared library
//! fewer to map, relocate and initialise (its constructor runs CPUID, a trap to the hypervisor in
//! a VM): about 0.1 ms less at every start on the benchmark machine (BENCHMARKS.md, goal 4).
//! Where the compiler has no `libgcc_eh.a` (not GNU/Linux, a static build), nothing changes.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    if !target.ends_with("-linux-gnu") || features.split(',').any(|f| f == "crt-static") {
        return;
    }
    let cc = std::env::var("RUSTC_LINKER").unwrap_or_else(|_| "cc".into());
    let Ok(out) = Command::new(&cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
    else {
        return;
    };
    let found = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    // A compiler that does not know the file prints its bare name.
    if !out.status.success() || !found.is_absolute() || !found.is_file() {
        return;
    }
    let dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("unwind");
    std::fs::create_dir_all(&dir).expect("create OUT_DIR/unwind");
    std::fs::copy(&found, dir.join("libgcc_s.a")).expect("copy libgcc_eh.a");
    println!("cargo:rustc-link-search=native={}", dir.display());
}
