//! Where a replay's **events** come from: the workload generator, run inside the child, or a
//! trace file. Either way the dispatcher pulls events one at a time, in trace order.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use workload::trace::TraceReader;
use workload::{Event, TraceError, Workload};

/// Why events could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot open trace {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("trace {path}: {source}")]
    Trace { path: PathBuf, source: TraceError },
}

/// A stream of events with a known number of threads.
pub enum EventSource {
    Synthetic(Box<Workload>),
    /// Events already in memory (benchmarks of the replay machinery alone).
    Memory {
        events: std::vec::IntoIter<Event>,
        threads: u32,
    },
    Trace {
        path: PathBuf,
        reader: Box<TraceReader<BufReader<File>>>,
    },
}

impl EventSource {
    pub fn synthetic(w: Workload) -> EventSource {
        EventSource::Synthetic(Box::new(w))
    }

    /// Events already decoded, for request threads `1..=threads`.
    pub fn memory(events: Vec<Event>, threads: u32) -> EventSource {
        EventSource::Memory {
            events: events.into_iter(),
            threads,
        }
    }

    /// Opens a trace file and reads its header.
    pub fn trace(path: &Path) -> Result<EventSource, SourceError> {
        let f = File::open(path).map_err(|source| SourceError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let reader = TraceReader::new(BufReader::with_capacity(1 << 16, f)).map_err(|source| {
            SourceError::Trace {
                path: path.to_path_buf(),
                source,
            }
        })?;
        Ok(EventSource::Trace {
            path: path.to_path_buf(),
            reader: Box::new(reader),
        })
    }

    /// Whether the events are trusted to be well formed: they come from the workload generator
    /// (well formed by construction and by the workload crate's tests), not from a file.
    pub fn is_generated(&self) -> bool {
        !matches!(self, EventSource::Trace { .. })
    }

    /// Request threads: events name threads `0..=threads()`.
    pub fn threads(&self) -> u32 {
        match self {
            EventSource::Synthetic(w) => w.threads(),
            EventSource::Memory { threads, .. } => *threads,
            EventSource::Trace { reader, .. } => reader.header().threads(),
        }
    }

    /// The next event; `Ok(None)` at the end of the stream.
    #[inline]
    pub fn next_event(&mut self) -> Result<Option<Event>, SourceError> {
        match self {
            EventSource::Synthetic(w) => Ok(w.next()),
            EventSource::Memory { events, .. } => Ok(events.next()),
            EventSource::Trace { path, reader } => match reader.next_event() {
                Ok(e) => Ok(e.map(|(_, e)| e)),
                Err(source) => Err(SourceError::Trace {
                    path: path.clone(),
                    source,
                }),
            },
        }
    }
}
