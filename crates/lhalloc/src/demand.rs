//! Recent demand: how many free bytes threads took from a reserve (a class pool's free
//! blocks, the segments' dirty slots) over the last purge delay. What was taken within one
//! delay is what the next delay will take again: purging it would only make its next user
//! fault it back in (the break-even that sets the delay, applied to a volume instead of to
//! one page's age, as jemalloc's decay and mimalloc's deferred purge keep their recent peak).

/// A windowed counter of bytes taken. Invariant: `window_at <= now` of every later call;
/// `taken` counts since `window_at`, `taken_prev` over the window before it (one delay long),
/// or 0 if no bytes were counted then.
pub struct Demand {
    taken: usize,
    taken_prev: usize,
    window_at: u64,
}

impl Demand {
    /// No demand yet.
    pub const fn new() -> Self {
        Demand {
            taken: 0,
            taken_prev: 0,
            window_at: 0,
        }
    }

    /// Counts `bytes` taken now.
    pub fn take(&mut self, bytes: usize) {
        self.taken = self.taken.saturating_add(bytes);
    }

    /// The bytes taken over the last `delay` ns at `now`: the larger of the current and the
    /// previous window (a window older than two delays counts as nothing).
    pub fn recent(&mut self, now: u64, delay: u64) -> usize {
        let age = now.saturating_sub(self.window_at);
        if age >= delay {
            self.taken_prev = if age >= delay.saturating_mul(2) {
                0
            } else {
                self.taken
            };
            self.taken = 0;
            self.window_at = now;
        }
        self.taken.max(self.taken_prev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_keeps_the_larger_of_two_windows_and_forgets_older_ones() {
        let mut d = Demand::new();
        assert_eq!(d.recent(10, 100), 0);
        d.take(500);
        assert_eq!(d.recent(50, 100), 500);
        // A new window: the previous one (500) still counts.
        assert_eq!(d.recent(120, 100), 500);
        d.take(200);
        assert_eq!(d.recent(150, 100), 500);
        // Next window: 200 is now the previous one.
        assert_eq!(d.recent(230, 100), 200);
        // Two delays without a call: nothing.
        assert_eq!(d.recent(1000, 100), 0);
    }
}
