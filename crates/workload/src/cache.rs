//! A Rails.cache MemoryStore model: a byte-bounded LRU over a fixed key space.
//!
//! Rails' MemoryStore keeps entries in insertion/access order and, when over `max_size`, prunes
//! least recently used entries down to 3/4 of it (`prune(@max_size * 0.75)`); the fraction is the
//! profile's `cache.prune_to`.

use crate::slots::Block;

const NIL: u32 = u32::MAX;

#[derive(Clone, Debug)]
struct Node {
    block: Option<Block>,
    prev: u32,
    next: u32,
}

/// LRU of cache entries, indexed by key (`0..keys`).
///
/// Invariants: a key is on the list iff `nodes[key].block.is_some()`; `bytes` is the sum of the
/// listed blocks' sizes; `head` is the most and `tail` the least recently used key.
#[derive(Debug)]
pub struct Lru {
    nodes: Vec<Node>,
    head: u32,
    tail: u32,
    bytes: u64,
}

impl Lru {
    pub fn new(keys: u32) -> Lru {
        Lru {
            nodes: vec![
                Node {
                    block: None,
                    prev: NIL,
                    next: NIL
                };
                keys as usize
            ],
            head: NIL,
            tail: NIL,
            bytes: 0,
        }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    fn unlink(&mut self, k: u32) {
        let (p, n) = (self.nodes[k as usize].prev, self.nodes[k as usize].next);
        if p == NIL {
            self.head = n;
        } else {
            self.nodes[p as usize].next = n;
        }
        if n == NIL {
            self.tail = p;
        } else {
            self.nodes[n as usize].prev = p;
        }
    }

    fn push_front(&mut self, k: u32) {
        self.nodes[k as usize].prev = NIL;
        self.nodes[k as usize].next = self.head;
        if self.head != NIL {
            self.nodes[self.head as usize].prev = k;
        }
        self.head = k;
        if self.tail == NIL {
            self.tail = k;
        }
    }

    /// Looks `key` up; on a hit it becomes the most recently used and its size is returned.
    pub fn get(&mut self, key: u32) -> Option<u64> {
        let size = self.nodes[key as usize].block?.size;
        self.unlink(key);
        self.push_front(key);
        Some(size)
    }

    /// Stores `block` under `key` (which must be absent).
    pub fn insert(&mut self, key: u32, block: Block) {
        debug_assert!(self.nodes[key as usize].block.is_none());
        self.nodes[key as usize].block = Some(block);
        self.bytes += block.size;
        self.push_front(key);
    }

    /// Removes and returns the least recently used entry.
    pub fn pop_lru(&mut self) -> Option<Block> {
        let k = self.tail;
        if k == NIL {
            return None;
        }
        self.unlink(k);
        let b = self.nodes[k as usize].block.take()?;
        self.bytes -= b.size;
        Some(b)
    }
}
