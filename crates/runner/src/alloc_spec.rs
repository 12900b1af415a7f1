//! Which **allocators under test** a run uses: parsing `--alloc`, file-safe ids, and the
//! environment each child gets (LD_PRELOAD, MALLOC_ARENA_MAX, decay settings scaled by speed).

use std::collections::BTreeMap;
use std::path::PathBuf;

/// jemalloc 5.3's `dirty_decay_ms` default (arena_types.h: DIRTY_DECAY_MS_DEFAULT).
const JEMALLOC_DIRTY_DECAY_MS: f64 = 10_000.0;
/// jemalloc 5.3's `muzzy_decay_ms` default (MUZZY_DECAY_MS_DEFAULT = 0).
const JEMALLOC_MUZZY_DECAY_MS: f64 = 0.0;
/// mimalloc 2.x's `purge_delay` default, ms (options.c).
const MIMALLOC_PURGE_DELAY_MS: f64 = 10.0;

/// One allocator under test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllocSpec {
    Glibc,
    GlibcArena2,
    Jemalloc,
    Mimalloc,
    Ours,
    Preload(PathBuf),
}

/// Why `--alloc` could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum AllocSpecError {
    #[error("unknown allocator {0:?}: use a comma list of glibc, glibc-arena2, jemalloc, mimalloc, ours, preload:PATH, or all")]
    Unknown(String),
    #[error("preload library {0} does not exist: give the path of a malloc shared library (e.g. preload:/usr/lib/x86_64-linux-gnu/libjemalloc.so.2)")]
    PreloadMissing(PathBuf),
    #[error("preload library {0} is not an ELF shared library")]
    PreloadNotElf(PathBuf),
    #[error("cannot read preload library {path}: {source}")]
    PreloadUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--alloc is empty: name at least one allocator")]
    Empty,
}

impl AllocSpec {
    /// The in-process allocators, in the order `all` runs them.
    pub fn all() -> Vec<AllocSpec> {
        vec![
            AllocSpec::Glibc,
            AllocSpec::GlibcArena2,
            AllocSpec::Jemalloc,
            AllocSpec::Mimalloc,
            AllocSpec::Ours,
        ]
    }

    /// Parses a comma list (`glibc,jemalloc,preload:/x.so`); checks that preload files exist.
    pub fn parse_list(list: &str) -> Result<Vec<AllocSpec>, AllocSpecError> {
        let mut out = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item {
                "all" => out.extend(AllocSpec::all()),
                "glibc" => out.push(AllocSpec::Glibc),
                "glibc-arena2" => out.push(AllocSpec::GlibcArena2),
                "jemalloc" => out.push(AllocSpec::Jemalloc),
                "mimalloc" => out.push(AllocSpec::Mimalloc),
                "ours" => out.push(AllocSpec::Ours),
                _ => match item.strip_prefix("preload:") {
                    Some(path) if !path.is_empty() => {
                        let path = PathBuf::from(path);
                        if !path.is_file() {
                            return Err(AllocSpecError::PreloadMissing(path));
                        }
                        match crate::os::is_elf(&path) {
                            Ok(true) => {}
                            Ok(false) => return Err(AllocSpecError::PreloadNotElf(path)),
                            Err(source) => {
                                return Err(AllocSpecError::PreloadUnreadable { path, source })
                            }
                        }
                        // LD_PRELOAD needs a path the child can resolve from any directory.
                        let path = std::fs::canonicalize(&path).unwrap_or(path);
                        out.push(AllocSpec::Preload(path));
                    }
                    _ => return Err(AllocSpecError::Unknown(item.to_string())),
                },
            }
        }
        if out.is_empty() {
            return Err(AllocSpecError::Empty);
        }
        let mut seen = Vec::new();
        out.retain(|a| {
            let keep = !seen.contains(a);
            seen.push(a.clone());
            keep
        });
        Ok(out)
    }

    /// The name as written on the command line.
    pub fn name(&self) -> String {
        match self {
            AllocSpec::Glibc => "glibc".into(),
            AllocSpec::GlibcArena2 => "glibc-arena2".into(),
            AllocSpec::Jemalloc => "jemalloc".into(),
            AllocSpec::Mimalloc => "mimalloc".into(),
            AllocSpec::Ours => "ours".into(),
            AllocSpec::Preload(p) => format!("preload:{}", p.display()),
        }
    }

    /// A file-name-safe id (`preload-libtcmalloc_minimal.so.4`).
    pub fn id(&self) -> String {
        match self {
            AllocSpec::Preload(p) => {
                let base = p
                    .file_name()
                    .map_or_else(|| "lib".into(), |n| n.to_string_lossy().into_owned());
                let safe: String = base
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || "._-".contains(c) {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                format!("preload-{safe}")
            }
            other => other.name(),
        }
    }

    /// The argument that tells a child which in-process allocator to call.
    pub fn child_arg(&self) -> &'static str {
        match self {
            AllocSpec::Glibc | AllocSpec::GlibcArena2 | AllocSpec::Preload(_) => "libc",
            AllocSpec::Jemalloc => "jemalloc",
            AllocSpec::Mimalloc => "mimalloc",
            AllocSpec::Ours => "ours",
        }
    }

    /// Environment for the child, and a note on what was scaled, for `--speed` simulated
    /// seconds per real second: timers that purge memory see simulated time.
    pub fn child_env(&self, speed: f64) -> (BTreeMap<String, String>, Option<String>) {
        let mut env = BTreeMap::new();
        let note = match self {
            AllocSpec::Glibc => None,
            AllocSpec::GlibcArena2 => {
                env.insert("MALLOC_ARENA_MAX".into(), "2".into());
                None
            }
            AllocSpec::Jemalloc => {
                let dirty = (JEMALLOC_DIRTY_DECAY_MS / speed).round() as u64;
                let muzzy = (JEMALLOC_MUZZY_DECAY_MS / speed).round() as u64;
                env.insert(
                    "_RJEM_MALLOC_CONF".into(),
                    format!("dirty_decay_ms:{dirty},muzzy_decay_ms:{muzzy}"),
                );
                Some(format!(
                    "dirty_decay_ms {JEMALLOC_DIRTY_DECAY_MS} / speed {speed} = {dirty}; muzzy_decay_ms {JEMALLOC_MUZZY_DECAY_MS} (default); background_thread off (default)"
                ))
            }
            AllocSpec::Mimalloc => {
                let delay = (MIMALLOC_PURGE_DELAY_MS / speed).round() as u64;
                env.insert("MIMALLOC_PURGE_DELAY".into(), delay.to_string());
                Some(format!(
                    "purge_delay {MIMALLOC_PURGE_DELAY_MS} ms / speed {speed} = {delay} ms (rounded; 0 = purge at once)"
                ))
            }
            AllocSpec::Ours => Some(format!(
                "purge delay default / speed {speed}, set at child start"
            )),
            AllocSpec::Preload(p) => {
                env.insert("LD_PRELOAD".into(), p.display().to_string());
                Some("preloaded library: its timers, if any, are not scaled".into())
            }
        };
        (env, note)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_all() {
        let v = AllocSpec::parse_list("glibc, jemalloc,glibc").unwrap();
        assert_eq!(v, vec![AllocSpec::Glibc, AllocSpec::Jemalloc]);
        assert_eq!(AllocSpec::parse_list("all").unwrap(), AllocSpec::all());
    }

    #[test]
    fn rejects_unknown_and_missing_preload() {
        assert!(matches!(
            AllocSpec::parse_list("tcmalloc"),
            Err(AllocSpecError::Unknown(s)) if s == "tcmalloc"
        ));
        assert!(matches!(
            AllocSpec::parse_list("preload:/nonexistent/libx.so"),
            Err(AllocSpecError::PreloadMissing(_))
        ));
        assert!(matches!(
            AllocSpec::parse_list(" , "),
            Err(AllocSpecError::Empty)
        ));
    }

    #[test]
    fn preload_ids_are_file_safe() {
        let a = AllocSpec::Preload(PathBuf::from("/usr/lib/lib tc+malloc.so.4"));
        assert_eq!(a.id(), "preload-lib_tc_malloc.so.4");
    }

    #[test]
    fn decay_is_scaled_by_speed() {
        let (env, _) = AllocSpec::Jemalloc.child_env(60.0);
        assert_eq!(
            env["_RJEM_MALLOC_CONF"],
            "dirty_decay_ms:167,muzzy_decay_ms:0"
        );
        let (env, _) = AllocSpec::Jemalloc.child_env(1.0);
        assert_eq!(
            env["_RJEM_MALLOC_CONF"],
            "dirty_decay_ms:10000,muzzy_decay_ms:0"
        );
    }
}
