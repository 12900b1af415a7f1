//! A **test hook**: a memory ballast held through the allocator under test, so that a gate can
//! be shown a regression of known size without touching the allocator's code. It is off unless
//! a child's environment has `LONGHAUL_BALLAST_PERCENT=P`, which only `--alloc-env` can give
//! (the variable is scrubbed from the runner's own environment like an allocator setting):
//!
//! ```text
//! runner --alloc ours,jemalloc --alloc-env ours:LONGHAUL_BALLAST_PERCENT=5
//! ```
//!
//! The child's sampler then keeps P% of the rest of the process's RSS allocated (1 MiB blocks
//! from the allocator under test, every page written), following RSS as it moves, so that the
//! allocator's steady RSS reads about P% higher, as if it kept P% more memory. `run.json`
//! records it as `test_hook`: such a run measures the hook, not the code.

use crate::under_test::AllocatorUnderTest;

/// The environment variable that turns the ballast on.
pub const VAR: &str = "LONGHAUL_BALLAST_PERCENT";

/// Size of one ballast block: large enough to be a few allocator calls, small enough to follow
/// RSS closely.
const CHUNK: usize = 1 << 20;
/// Bytes between the writes that make a block's pages resident.
const PAGE: usize = 4096;

/// The ballast of one child.
#[derive(Debug)]
pub struct Ballast {
    fraction: f64,
    /// Addresses of the blocks held (as integers: the sampler thread owns them).
    chunks: Vec<usize>,
}

impl Ballast {
    /// The ballast asked for by this process's environment, if any.
    pub fn from_env() -> anyhow::Result<Option<Ballast>> {
        let Ok(text) = std::env::var(VAR) else {
            return Ok(None);
        };
        let percent: f64 = text
            .trim()
            .parse()
            .ok()
            .filter(|p: &f64| *p > 0.0 && *p <= 1000.0)
            .ok_or_else(|| {
                anyhow::anyhow!("{VAR}={text:?} is not a percentage in (0, 1000] (test hook: --alloc-env ALLOC:{VAR}=5)")
            })?;
        Ok(Some(Ballast {
            fraction: percent / 100.0,
            chunks: Vec::with_capacity(4096),
        }))
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        (self.chunks.len() * CHUNK) as u64
    }

    /// Grows or shrinks the ballast towards its share of `rss_bytes` less itself. Shrinks only
    /// when 5% (and a block) above its target, so that it does not churn with RSS's noise.
    pub fn adjust<A: AllocatorUnderTest>(&mut self, a: &A, rss_bytes: u64) {
        let others = rss_bytes.saturating_sub(self.bytes()) as f64;
        let target = (others * self.fraction / CHUNK as f64).round() as usize;
        while self.chunks.len() < target {
            // SAFETY: CHUNK > 0.
            let p = unsafe { a.malloc(CHUNK) };
            if p.is_null() {
                return;
            }
            for offset in (0..CHUNK).step_by(PAGE) {
                // SAFETY: p is a live block of CHUNK bytes and offset < CHUNK.
                unsafe { p.add(offset).write_volatile(1) };
            }
            self.chunks.push(p as usize);
        }
        while self.chunks.len() > target + 1 + target / 20 {
            if let Some(p) = self.chunks.pop() {
                // SAFETY: p came from a.malloc(CHUNK) above and is freed once (popped).
                unsafe { a.free(p as *mut u8, CHUNK) };
            }
        }
    }

    /// What `--alloc-env` entries (as given) ask of the hook, in words for `run.json`'s
    /// `test_hook`; `None` when nothing.
    pub fn described(alloc_env: &[String]) -> Option<String> {
        let hooks: Vec<String> = alloc_env
            .iter()
            .filter_map(|e| {
                let (left, value) = e.split_once('=')?;
                let (alloc, name) = left.rsplit_once(':').unwrap_or(("every allocator", left));
                (name == VAR).then(|| {
                    format!("{alloc} held a memory ballast of {value}% of its other RSS ({VAR})")
                })
            })
            .collect();
        (!hooks.is_empty()).then(|| hooks.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hook_is_described_only_when_asked_for() {
        assert_eq!(Ballast::described(&["MALLOC_ARENA_MAX=2".into()]), None);
        let d = Ballast::described(&[format!("ours:{VAR}=5")]).unwrap();
        assert!(d.starts_with("ours held a memory ballast of 5%"), "{d}");
    }
}
