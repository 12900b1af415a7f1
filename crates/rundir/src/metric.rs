//! The metrics that summarise an allocator's run and that repetitions, comparisons and the gate
//! are about, as one enum: its key in `summary.json`'s `spread`, its label and unit, whether it
//! is memory, a cost or a wall-clock timing, and how to read it from [`Figures`].

use crate::summary::Figures;

/// Bytes per MiB.
pub const MIB: f64 = 1024.0 * 1024.0;

/// A metric of one allocator's run. Lower is better for every one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    /// Median RSS over the last quarter of the run.
    RssSteady,
    /// Highest RSS sampled.
    RssMax,
    /// Least-squares slope of RSS over the second half, per simulated hour.
    Growth,
    /// (steady RSS - harness RSS) / steady live bytes.
    RssPerLive,
    /// Replay threads' CPU per request (getrusage).
    CpuPerRequest,
    /// Minor page faults per request.
    FaultsPerRequest,
    /// 99th percentile of the time per request inside allocator calls.
    AllocP99,
    /// 99th percentile of request latency at the run's speed.
    RequestP99,
}

/// What a metric measures, which decides how noisy it is and what it depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// Bytes: does not depend on the machine's speed.
    Memory,
    /// CPU time and page faults counted by the kernel: depends on the machine, not on waiting.
    Cost,
    /// Wall-clock: meaningful only where the run's timings are valid.
    Timing,
}

impl Metric {
    /// Every metric, memory first, in table order.
    pub fn all() -> [Metric; 8] {
        [
            Metric::RssSteady,
            Metric::RssMax,
            Metric::Growth,
            Metric::RssPerLive,
            Metric::CpuPerRequest,
            Metric::FaultsPerRequest,
            Metric::AllocP99,
            Metric::RequestP99,
        ]
    }

    /// The key in `summary.json`'s `spread` (the figure's own field name where it has one).
    pub fn key(self) -> &'static str {
        match self {
            Metric::RssSteady => "rss_steady_bytes",
            Metric::RssMax => "rss_max_bytes",
            Metric::Growth => "rss_growth_bytes_per_hour",
            Metric::RssPerLive => "fragmentation",
            Metric::CpuPerRequest => "cpu_per_request_us",
            Metric::FaultsPerRequest => "minor_faults_per_request",
            Metric::AllocP99 => "alloc_per_request_p99_ns",
            Metric::RequestP99 => "latency_p99_us",
        }
    }

    /// The metric named by `key`.
    pub fn from_key(key: &str) -> Option<Metric> {
        Metric::all().into_iter().find(|m| m.key() == key)
    }

    /// The metric's name, without unit.
    pub fn name(self) -> &'static str {
        match self {
            Metric::RssSteady => "steady RSS",
            Metric::RssMax => "peak RSS",
            Metric::Growth => "growth",
            Metric::RssPerLive => "RSS/live",
            Metric::CpuPerRequest => "CPU/request",
            Metric::FaultsPerRequest => "faults/request",
            Metric::AllocP99 => "alloc time/request p99",
            Metric::RequestP99 => "request p99",
        }
    }

    /// A label for tables, with the display unit.
    pub fn label(self) -> &'static str {
        match self {
            Metric::RssSteady => "steady RSS (MiB)",
            Metric::RssMax => "peak RSS (MiB)",
            Metric::Growth => "growth (MiB/h)",
            Metric::RssPerLive => "RSS/live",
            Metric::CpuPerRequest => "CPU/request (µs)",
            Metric::FaultsPerRequest => "faults/request",
            Metric::AllocP99 => "alloc time/request p99 (µs)",
            Metric::RequestP99 => "request p99 (µs)",
        }
    }

    pub fn kind(self) -> MetricKind {
        match self {
            Metric::RssSteady | Metric::RssMax | Metric::Growth | Metric::RssPerLive => {
                MetricKind::Memory
            }
            Metric::CpuPerRequest | Metric::FaultsPerRequest => MetricKind::Cost,
            Metric::AllocP99 | Metric::RequestP99 => MetricKind::Timing,
        }
    }

    /// Whether the metric can be near zero or negative, so that a relative change means
    /// nothing (compare it in its unit instead).
    pub fn is_signed(self) -> bool {
        self == Metric::Growth
    }

    /// The raw value (bytes, µs, ns...) from a repetition's or a summary's figures; `None`
    /// when missing, and for a timing whose run's timings are invalid.
    pub fn value(self, f: &Figures) -> Option<f64> {
        if self.kind() == MetricKind::Timing && !f.timing_valid {
            return None;
        }
        match self {
            Metric::RssSteady => f.rss_steady_bytes.map(|v| v as f64),
            Metric::RssMax => f.rss_max_bytes.map(|v| v as f64),
            Metric::Growth => f.rss_growth_bytes_per_hour,
            Metric::RssPerLive => f.fragmentation,
            Metric::CpuPerRequest => f.cost.as_ref()?.cpu_per_request_us,
            Metric::FaultsPerRequest => f.cost.as_ref()?.minor_faults_per_request,
            Metric::AllocP99 => f.alloc_per_request_ns.map(|p| p.p99 as f64),
            Metric::RequestP99 => f.latency_us.map(|p| p.p99 as f64),
        }
    }

    /// A raw value in the display unit of [`Metric::label`].
    pub fn display_value(self, raw: f64) -> f64 {
        match self {
            Metric::RssSteady | Metric::RssMax | Metric::Growth => raw / MIB,
            Metric::AllocP99 => raw / 1e3,
            _ => raw,
        }
    }

    /// A raw value formatted in the display unit.
    pub fn format(self, raw: f64) -> String {
        let v = self.display_value(raw);
        match self {
            Metric::RssSteady | Metric::RssMax => format!("{v:.1}"),
            Metric::Growth => format!("{v:+.2}"),
            Metric::RssPerLive => format!("{v:.3}"),
            Metric::FaultsPerRequest => format!("{v:.2}"),
            Metric::CpuPerRequest | Metric::AllocP99 | Metric::RequestP99 => format!("{v:.0}"),
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}
