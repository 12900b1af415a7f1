//! What the preload tests share: finding the `.so` this test run built, and building the C
//! programs of `tests/c/`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

/// A fresh scratch directory, removed when the returned guard is dropped.
pub fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("lhalloc-preload-{name}-"))
        .tempdir()
        .expect("create temp dir")
}

/// Compiles `tests/c/<name>.c` (with `-pthread -rdynamic -ldl`, so that a program may
/// interpose libc functions for the preloaded library) into `dir`. Panics if no C compiler is
/// installed or compilation fails.
pub fn build_c(name: &str, dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/c")
        .join(format!("{name}.c"));
    let bin = dir.join(name);
    let out = Command::new("cc")
        .args(["-O1", "-g", "-pthread", "-rdynamic", "-o"])
        .arg(&bin)
        .arg(&src)
        .arg("-ldl")
        .output();
    match out {
        Ok(o) if o.status.success() => bin,
        Ok(o) => panic!(
            "cc {} failed: {}",
            src.display(),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("no C compiler (cc: {e}): apt-get install -y build-essential"),
    }
}

/// Runs `bin args` under the preload with `env`; panics with its output unless it exits 0
/// within 120 s (a hang is killed and reported).
pub fn run_preloaded(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let child = Command::new("timeout")
        .args(["-s", "KILL", "120"])
        .arg(bin)
        .args(args)
        .env("LD_PRELOAD", preload_lib())
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("cannot wait for {}: {e}", bin.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed: {:?}\nstdout: {}\nstderr: {}",
        bin.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
