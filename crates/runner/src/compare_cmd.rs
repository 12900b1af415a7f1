//! `runner compare A B`: the comparison of two run directories (the `compare` crate) as a
//! table on stdout, and as `compare.md` with an overlay of the two runs' charts (the report
//! crate) in the output folder. Works on any two runs the `rundir` crate reads.

use std::path::{Path, PathBuf};

use anyhow::Context;
use compare::{render, Comparison, Options};
use rundir::RunDir;

/// Arguments of `runner compare`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// Run directory A, the point of reference (an older run, a baseline).
    pub a: PathBuf,
    /// Run directory B, compared with A.
    pub b: PathBuf,
    /// The allocator ratios are taken to, within each run.
    #[arg(long, default_value = "jemalloc")]
    pub reference: String,
    /// Where compare.md and the overlay chart go [default: <B>/compare].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write compare.md but draw no chart.
    #[arg(long)]
    pub no_chart: bool,
}

/// Runs `runner compare`; returns the comparison it printed.
pub fn compare(args: &CompareArgs) -> anyhow::Result<Comparison> {
    let a =
        RunDir::read(&args.a).with_context(|| format!("reading run A, {}", args.a.display()))?;
    let b =
        RunDir::read(&args.b).with_context(|| format!("reading run B, {}", args.b.display()))?;
    let options = Options {
        reference: args.reference.clone(),
        ..Options::default()
    };
    let c = Comparison::new(&a, &b, &options)?;
    print!("{}", render::text(&c));
    let out = args.out.clone().unwrap_or_else(|| args.b.join("compare"));
    write_outputs(
        &c,
        &[args.a.clone(), args.b.clone()],
        &out,
        &args.reference,
        !args.no_chart,
    )?;
    Ok(c)
}

/// Writes `compare.md` into `out` and, if `chart`, the report's overlay of the runs there.
pub fn write_outputs(
    c: &Comparison,
    dirs: &[PathBuf],
    out: &Path,
    reference: &str,
    chart: bool,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let md = out.join("compare.md");
    rundir::atomic::write_atomic(&md, render::markdown(c).as_bytes())?;
    eprintln!("compare: {}", md.display());
    if chart {
        let opts = report::Options {
            reference: reference.to_string(),
            require_reference: false,
            out_dir: Some(out.to_path_buf()),
        };
        match report::compare(dirs, &opts) {
            Ok(paths) => eprintln!("compare: charts in {}", paths.index_html.display()),
            Err(e) => eprintln!("warning: drawing the overlay chart failed: {e}"),
        }
    }
    Ok(())
}
