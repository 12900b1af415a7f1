//! The dispatcher's check of the event stream before any event reaches a replay thread: every
//! block is allocated before it is resized or freed, generations advance one by one, threads are
//! in range and make no event after they end. A replay thread waits for another thread's earlier
//! event (a free of a block allocated elsewhere); if that event does not exist, the wait would
//! never end. So a malformed trace is refused here, at its first bad record, by index.

use workload::{Event, ThreadId};

use crate::block_table::MAX_SLOTS;

/// Why the stream was refused.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("record {index}: thread {thread} is beyond the {threads} request threads the trace header declares")]
    Thread {
        index: u64,
        thread: ThreadId,
        threads: u32,
    },
    #[error("record {index}: thread {thread} makes an event after its end")]
    AfterEnd { index: u64, thread: ThreadId },
    #[error("record {index}: slot {slot} is beyond this replayer's {MAX_SLOTS} slots")]
    Slot { index: u64, slot: u32 },
    #[error("record {index}: {event:?} {problem}")]
    Block {
        index: u64,
        event: Event,
        problem: &'static str,
    },
}

/// Per-slot life and per-thread end state of the stream so far.
///
/// Invariant, per slot: `state = (gen << 1) | live`; if `live`, block `(slot, gen)` is the slot's
/// current block; if not, `gen` is the generation its next allocation must carry (0 for a slot
/// never used, as the block table reads a fresh slot as "generation 65535 freed").
#[derive(Default)]
pub struct StreamCheck {
    slots: Vec<u32>,
    ended: Vec<bool>,
    threads: u32,
    index: u64,
    /// Check block lives (traces read from files), or trust the stream (the generator, whose
    /// streams the workload crate's tests check) and only count slots.
    verify_blocks: bool,
    slots_used: u64,
}

impl StreamCheck {
    pub fn new(threads: u32, verify_blocks: bool) -> StreamCheck {
        StreamCheck {
            slots: Vec::new(),
            ended: vec![false; threads as usize + 1],
            threads,
            index: 0,
            verify_blocks,
            slots_used: 0,
        }
    }

    /// Records processed so far.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Slots ever used (the block table's extent).
    pub fn slots_used(&self) -> u64 {
        self.slots_used
    }

    /// Checks `e` and, if it is fine, applies it to the state.
    #[inline]
    pub fn check(&mut self, e: &Event) -> Result<(), StreamError> {
        let index = self.index;
        let thread = e.thread();
        if thread > self.threads {
            return Err(StreamError::Thread {
                index,
                thread,
                threads: self.threads,
            });
        }
        if self.ended[thread as usize] {
            return Err(StreamError::AfterEnd { index, thread });
        }
        if let Event::ThreadEnd { .. } = e {
            self.ended[thread as usize] = true;
        }
        if let Some(b) = e.block() {
            let slot = b.slot as usize;
            if slot >= MAX_SLOTS {
                return Err(StreamError::Slot {
                    index,
                    slot: b.slot,
                });
            }
            self.slots_used = self.slots_used.max(slot as u64 + 1);
            if !self.verify_blocks {
                self.index += 1;
                return Ok(());
            }
            if slot >= self.slots.len() {
                self.slots.resize(slot + 1, 0);
            }
            let state = self.slots[slot];
            let (gen, live) = ((state >> 1) as u16, state & 1 == 1);
            let bad = |problem| {
                Err(StreamError::Block {
                    index,
                    event: *e,
                    problem,
                })
            };
            let next = match e {
                Event::Malloc { .. } | Event::Calloc { .. } | Event::Aligned { .. } => {
                    if live {
                        return bad("allocates a slot whose block is still live");
                    }
                    if b.gen != gen {
                        return bad("skips a generation of its slot");
                    }
                    (b.gen as u32) << 1 | 1
                }
                Event::Realloc { .. } => {
                    if !live || b.gen != gen {
                        return bad("resizes a block that is not live");
                    }
                    (b.gen.wrapping_add(1) as u32) << 1 | 1
                }
                _ => {
                    if !live || b.gen != gen {
                        return bad("frees a block that is not live");
                    }
                    (b.gen.wrapping_add(1) as u32) << 1
                }
            };
            self.slots[slot] = next;
        }
        self.index += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use workload::BlockRef;

    fn m(slot: u32, gen: u16) -> Event {
        Event::Malloc {
            thread: 1,
            block: BlockRef { slot, gen },
            size: 8,
        }
    }
    fn f(slot: u32, gen: u16) -> Event {
        Event::Free {
            thread: 2,
            block: BlockRef { slot, gen },
            size: 8,
        }
    }

    #[test]
    fn accepts_well_formed_lives_and_refuses_the_rest() {
        let mut c = StreamCheck::new(2, true);
        c.check(&m(3, 0)).unwrap();
        c.check(&Event::Realloc {
            thread: 1,
            block: BlockRef { slot: 3, gen: 0 },
            old_size: 8,
            new_size: 16,
        })
        .unwrap();
        c.check(&f(3, 1)).unwrap();
        c.check(&m(3, 2)).unwrap();
        assert_eq!(c.slots_used(), 4);
        let e = c.check(&m(3, 3)).unwrap_err().to_string();
        assert!(
            e.starts_with("record 4:") && e.contains("still live"),
            "{e}"
        );
        assert!(c
            .check(&f(9, 0))
            .unwrap_err()
            .to_string()
            .contains("not live"));
        assert!(
            c.check(&m(5, 1)).is_err(),
            "a fresh slot starts at generation 0"
        );
        assert!(matches!(
            c.check(&Event::Gc {
                thread: 3,
                major: false
            }),
            Err(StreamError::Thread { thread: 3, .. })
        ));
        c.check(&Event::ThreadEnd { thread: 2 }).unwrap();
        assert!(matches!(
            c.check(&f(3, 2)),
            Err(StreamError::AfterEnd { thread: 2, .. })
        ));
    }
}
