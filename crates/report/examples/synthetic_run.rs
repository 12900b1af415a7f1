//! Writes the tests' synthetic four-allocator run directory (glibc-arena2 crashed) to the
//! directory given, for trying the report and the screenshot script without a real run:
//! `cargo run -p report --example synthetic_run -- /tmp/run && cargo run -p report -- /tmp/run`.

#[path = "../tests/fixture/mod.rs"]
mod fixture;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: synthetic_run <dir>");
        return ExitCode::FAILURE;
    };
    if let Err(error) = std::fs::create_dir_all(&dir) {
        eprintln!("error: cannot create {}: {error}", dir.display());
        return ExitCode::FAILURE;
    }
    fixture::write_run(
        &dir,
        &fixture::four_allocators(),
        "0123abcd4567ef890123abcd4567ef8901234567",
    );
    println!("{}", dir.display());
    ExitCode::SUCCESS
}
