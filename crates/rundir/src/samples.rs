//! `samples.csv`: the memory time series, one line per **sample**, every allocator and
//! repetition in one file in run order. Appended to and flushed per line while a run goes on,
//! so an interrupted or crashed run keeps every sample taken. Read by column name, so files of
//! every schema read (a column an older schema lacks reads as empty).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::atomic::read_bytes;
use crate::error::RunDirError;

/// The columns this build writes, in order (docs/results-format.md explains each).
pub const COLUMNS: [&str; 25] = [
    "allocator",
    "repetition",
    "sim_time_s",
    "real_time_s",
    "rss_bytes",
    "rss_anon_bytes",
    "private_dirty_bytes",
    "lazyfree_bytes",
    "live_bytes",
    "requests",
    "lag_s",
    "alloc_allocated_bytes",
    "alloc_active_bytes",
    "alloc_resident_bytes",
    "alloc_mapped_bytes",
    "harness_rss_bytes",
    "cpu_user_s",
    "cpu_sys_s",
    "minor_faults",
    "major_faults",
    "voluntary_switches",
    "involuntary_switches",
    "alloc_time_s",
    "touch_time_s",
    "pss_bytes",
];

/// Columns every reader needs.
pub const REQUIRED_COLUMNS: [&str; 4] = ["allocator", "sim_time_s", "rss_bytes", "live_bytes"];

/// One line of `samples.csv`. Empty cell (or a column the file's schema lacks) = `None`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    /// The allocator's `id`.
    pub allocator: String,
    /// 1-based (schema 3; 1 before).
    pub repetition: u32,
    /// Simulated seconds the workload had reached.
    pub sim_time_s: f64,
    /// Real seconds since the child started replaying.
    pub real_time_s: Option<f64>,
    pub rss_bytes: u64,
    pub rss_anon_bytes: Option<u64>,
    pub private_dirty_bytes: Option<u64>,
    pub lazyfree_bytes: Option<u64>,
    /// Exact sum of the sizes of the blocks the workload holds.
    pub live_bytes: u64,
    pub requests: Option<u64>,
    pub lag_s: Option<f64>,
    pub alloc_allocated_bytes: Option<u64>,
    pub alloc_active_bytes: Option<u64>,
    pub alloc_resident_bytes: Option<u64>,
    pub alloc_mapped_bytes: Option<u64>,
    /// The harness's own resident memory inside `rss_bytes` (schema 2).
    pub harness_rss_bytes: Option<u64>,
    /// Cumulative since the replay started (schema 2).
    pub cpu_user_s: Option<f64>,
    pub cpu_sys_s: Option<f64>,
    pub minor_faults: Option<u64>,
    pub major_faults: Option<u64>,
    pub voluntary_switches: Option<u64>,
    pub involuntary_switches: Option<u64>,
    pub alloc_time_s: Option<f64>,
    pub touch_time_s: Option<f64>,
    /// Live runs: PSS summed over the server's processes (schema 2 live runs and later).
    pub pss_bytes: Option<u64>,
}

impl Sample {
    /// CPU seconds since the replay started, user and system, if known.
    pub fn cpu_s(&self) -> Option<f64> {
        Some(self.cpu_user_s? + self.cpu_sys_s?)
    }

    fn cells(&self) -> [String; 25] {
        fn o<T: ToString>(v: Option<T>) -> String {
            v.map_or_else(String::new, |v| v.to_string())
        }
        fn f(v: Option<f64>, decimals: usize) -> String {
            v.map_or_else(String::new, |v| format!("{v:.decimals$}"))
        }
        [
            self.allocator.clone(),
            self.repetition.to_string(),
            format!("{:.3}", self.sim_time_s),
            f(self.real_time_s, 3),
            self.rss_bytes.to_string(),
            o(self.rss_anon_bytes),
            o(self.private_dirty_bytes),
            o(self.lazyfree_bytes),
            self.live_bytes.to_string(),
            o(self.requests),
            f(self.lag_s, 3),
            o(self.alloc_allocated_bytes),
            o(self.alloc_active_bytes),
            o(self.alloc_resident_bytes),
            o(self.alloc_mapped_bytes),
            o(self.harness_rss_bytes),
            f(self.cpu_user_s, 3),
            f(self.cpu_sys_s, 3),
            o(self.minor_faults),
            o(self.major_faults),
            o(self.voluntary_switches),
            o(self.involuntary_switches),
            f(self.alloc_time_s, 6),
            f(self.touch_time_s, 6),
            o(self.pss_bytes),
        ]
    }
}

/// Appends samples to a `samples.csv`, one flushed line each.
pub struct SamplesWriter {
    out: BufWriter<File>,
    path: PathBuf,
}

impl SamplesWriter {
    /// Creates the file and writes the header.
    pub fn create(path: &Path) -> Result<SamplesWriter, RunDirError> {
        let f = File::create(path).map_err(|source| RunDirError::Write {
            path: path.to_path_buf(),
            hint: "",
            source,
        })?;
        let mut w = SamplesWriter {
            out: BufWriter::new(f),
            path: path.to_path_buf(),
        };
        w.line(&COLUMNS.join(","))?;
        Ok(w)
    }

    /// Appends one sample and flushes it.
    pub fn append(&mut self, sample: &Sample) -> Result<(), RunDirError> {
        self.line(&sample.cells().join(","))
    }

    fn line(&mut self, text: &str) -> Result<(), RunDirError> {
        writeln!(self.out, "{text}")
            .and_then(|()| self.out.flush())
            .map_err(|source| RunDirError::Write {
                path: self.path.clone(),
                hint: "",
                source,
            })
    }
}

/// Reads `samples.csv`. The runner flushes after every line, so a file that does not end with
/// a newline, or a line with too few cells, means the file was cut: that is an error, not a
/// silently shorter series.
pub fn read_samples(path: &Path) -> Result<Vec<Sample>, RunDirError> {
    let bytes = read_bytes(path, "samples.csv, the memory time series")?;
    if bytes.is_empty() {
        return Err(RunDirError::Truncated {
            path: path.to_path_buf(),
            problem: "the file is empty (not even a header line)".into(),
        });
    }
    if bytes.last() != Some(&b'\n') {
        let line = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
        return Err(RunDirError::Truncated {
            path: path.to_path_buf(),
            problem: format!(
                "line {line} does not end with a newline: the file was cut while being written (delete that line to read the rest)"
            ),
        });
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(bytes.as_slice());
    let headers = reader
        .headers()
        .map_err(|source| csv_error(path, source))?
        .clone();
    for column in REQUIRED_COLUMNS {
        if !headers.iter().any(|h| h == column) {
            return Err(RunDirError::MissingColumn {
                path: path.to_path_buf(),
                column,
            });
        }
    }
    let index = |name: &str| headers.iter().position(|h| h == name);
    let columns: Vec<Option<usize>> = COLUMNS.iter().map(|c| index(c)).collect();
    let mut samples = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(source) => return Err(csv_error(path, source)),
        }
        let line = record.position().map_or(0, |p| p.line());
        let row = Row {
            record: &record,
            columns: &columns,
            path,
            line,
        };
        samples.push(row.sample()?);
    }
    Ok(samples)
}

/// One record being decoded, with what an error must say.
struct Row<'a> {
    record: &'a csv::StringRecord,
    columns: &'a [Option<usize>],
    path: &'a Path,
    line: u64,
}

impl Row<'_> {
    fn cell(&self, column: usize) -> Option<&str> {
        let i = self.columns[column]?;
        self.record.get(i).filter(|s| !s.is_empty())
    }

    fn parse<T: std::str::FromStr>(&self, column: usize) -> Result<Option<T>, RunDirError> {
        match self.cell(column) {
            None => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| RunDirError::Csv {
                path: self.path.to_path_buf(),
                line: self.line,
                problem: format!("bad cell: `{}` is {text:?}, not a number", COLUMNS[column]),
                source: None,
            }),
        }
    }

    fn required<T: std::str::FromStr>(&self, column: usize) -> Result<T, RunDirError> {
        self.parse(column)?.ok_or_else(|| RunDirError::Csv {
            path: self.path.to_path_buf(),
            line: self.line,
            problem: format!("bad cell: `{}` is empty", COLUMNS[column]),
            source: None,
        })
    }

    fn sample(&self) -> Result<Sample, RunDirError> {
        Ok(Sample {
            allocator: self.cell(0).unwrap_or_default().to_string(),
            repetition: self.parse(1)?.unwrap_or(1),
            sim_time_s: self.required(2)?,
            real_time_s: self.parse(3)?,
            rss_bytes: self.required(4)?,
            rss_anon_bytes: self.parse(5)?,
            private_dirty_bytes: self.parse(6)?,
            lazyfree_bytes: self.parse(7)?,
            live_bytes: self.required(8)?,
            requests: self.parse(9)?,
            lag_s: self.parse(10)?,
            alloc_allocated_bytes: self.parse(11)?,
            alloc_active_bytes: self.parse(12)?,
            alloc_resident_bytes: self.parse(13)?,
            alloc_mapped_bytes: self.parse(14)?,
            harness_rss_bytes: self.parse(15)?,
            cpu_user_s: self.parse(16)?,
            cpu_sys_s: self.parse(17)?,
            minor_faults: self.parse(18)?,
            major_faults: self.parse(19)?,
            voluntary_switches: self.parse(20)?,
            involuntary_switches: self.parse(21)?,
            alloc_time_s: self.parse(22)?,
            touch_time_s: self.parse(23)?,
            pss_bytes: self.parse(24)?,
        })
    }
}

fn csv_error(path: &Path, source: csv::Error) -> RunDirError {
    let line = source.position().map_or(0, |p| p.line());
    let problem = match source.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!(
            "{len} cells where the header has {expected_len} (the line is cut or malformed)"
        ),
        _ => "unreadable CSV".to_string(),
    };
    RunDirError::Csv {
        path: path.to_path_buf(),
        line,
        problem,
        source: Some(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_sample_reads_back_equal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("samples.csv");
        let s = Sample {
            allocator: "ours".into(),
            repetition: 2,
            sim_time_s: 70.5,
            real_time_s: Some(1.25),
            rss_bytes: 1000,
            rss_anon_bytes: None,
            live_bytes: 500,
            requests: Some(7),
            lag_s: Some(0.5),
            harness_rss_bytes: Some(20),
            cpu_user_s: Some(1.5),
            cpu_sys_s: Some(0.25),
            minor_faults: Some(3),
            alloc_time_s: Some(0.000125),
            ..Sample::default()
        };
        let mut w = SamplesWriter::create(&path).unwrap();
        w.append(&s).unwrap();
        assert_eq!(read_samples(&path).unwrap(), vec![s]);
    }

    #[test]
    fn a_schema_1_file_reads_with_the_newer_columns_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("samples.csv");
        std::fs::write(&path, "allocator,sim_time_s,real_time_s,rss_bytes,rss_anon_bytes,private_dirty_bytes,lazyfree_bytes,live_bytes,requests,lag_s,alloc_allocated_bytes,alloc_active_bytes,alloc_resident_bytes,alloc_mapped_bytes\nglibc,0.222,0.005,8192000,4067328,4423680,0,2903647,0,0.065,20998880,,,22437888\n").unwrap();
        let s = &read_samples(&path).unwrap()[0];
        assert_eq!(
            (s.repetition, s.rss_bytes, s.live_bytes),
            (1, 8192000, 2903647)
        );
        assert_eq!(s.alloc_active_bytes, None);
        assert_eq!(s.cpu_user_s, None);
    }

    #[test]
    fn a_bad_cell_names_the_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("samples.csv");
        std::fs::write(
            &path,
            "allocator,sim_time_s,rss_bytes,live_bytes\nours,1,2,3\nours,2,x,3\n",
        )
        .unwrap();
        let e = read_samples(&path).unwrap_err().to_string();
        assert!(
            e.contains("line 3") && e.contains("`rss_bytes` is \"x\""),
            "{e}"
        );
    }
}
