//! What the preload tests share: finding the `.so` this test run built.

use std::path::PathBuf;

/// The cdylib built for this test run: cargo builds the package's lib target (our .so) before
/// its integration tests, into the same `deps` folder as the test binary.
pub fn preload_lib() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps dir");
    for dir in [deps, deps.parent().unwrap_or(deps)] {
        let p = dir.join("liblhalloc_preload.so");
        if p.exists() {
            return p;
        }
    }
    panic!("liblhalloc_preload.so not found next to {}", exe.display());
}
