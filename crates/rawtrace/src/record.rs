//! One **raw record**: one malloc-family call of one thread, as the tracer stores it.
//!
//! A record is a kind byte followed by LEB128 varints, each relative to the thread's previous
//! record in the same chunk (the encoder's state starts from the chunk's `base_time` and address
//! 0): the time delta, then the kind's fields. Addresses are zigzag-encoded signed deltas.
//!
//! | kind | fields after the time delta |
//! |---|---|
//! | malloc, calloc | size, address |
//! | free | address |
//! | realloc | old address, new size, new address (delta from the old one), duration |
//! | posix_memalign, aligned_alloc, memalign, valloc, pvalloc | size, alignment, address |
//! | thread end | - |
//!
//! Times: a free's is taken before the call, an allocation's after it returns, a realloc's
//! before it (its end is time + duration). So when one thread frees an address and another
//! gets it back from malloc, the free's time is the smaller (see docs/trace-format.md).
//! A failed allocation has address 0. The kind byte is never 0: the tracer writes it last, so a
//! reader stops at the first 0 kind (the end of the chunk's records, or a record cut by a kill).

/// Longest encoded record: a kind byte and five 10-byte varints.
pub const MAX_RECORD: usize = 1 + 5 * 10;

/// What a record's call was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Kind {
    Malloc = 1,
    Calloc = 2,
    Realloc = 3,
    Free = 4,
    PosixMemalign = 5,
    AlignedAlloc = 6,
    Memalign = 7,
    Valloc = 8,
    Pvalloc = 9,
    /// The thread ended (the tracer's thread-exit hook ran).
    ThreadEnd = 10,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Malloc,
        Kind::Calloc,
        Kind::Realloc,
        Kind::Free,
        Kind::PosixMemalign,
        Kind::AlignedAlloc,
        Kind::Memalign,
        Kind::Valloc,
        Kind::Pvalloc,
        Kind::ThreadEnd,
    ];

    pub fn from_byte(b: u8) -> Option<Kind> {
        Kind::ALL.get((b as usize).wrapping_sub(1)).copied()
    }

    /// The C function's name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Malloc => "malloc",
            Kind::Calloc => "calloc",
            Kind::Realloc => "realloc",
            Kind::Free => "free",
            Kind::PosixMemalign => "posix_memalign",
            Kind::AlignedAlloc => "aligned_alloc",
            Kind::Memalign => "memalign",
            Kind::Valloc => "valloc",
            Kind::Pvalloc => "pvalloc",
            Kind::ThreadEnd => "thread end",
        }
    }

    /// An aligned allocation (it carries an alignment).
    pub fn is_aligned(self) -> bool {
        matches!(
            self,
            Kind::PosixMemalign
                | Kind::AlignedAlloc
                | Kind::Memalign
                | Kind::Valloc
                | Kind::Pvalloc
        )
    }
}

/// One call, decoded. Fields a kind does not carry are 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawRecord {
    pub kind: Kind,
    /// `CLOCK_MONOTONIC` ns: before the call for free and realloc, after it for allocations.
    pub time: u64,
    /// Bytes asked for (calloc: `n * size`; realloc: the new size).
    pub size: u64,
    pub align: u64,
    /// The result (allocations, realloc) or the freed address; 0 for a failed allocation.
    pub addr: u64,
    /// realloc: the block passed in (0 for `realloc(NULL, n)`).
    pub old_addr: u64,
    /// realloc: when the call returned.
    pub end_time: u64,
}

impl RawRecord {
    pub fn new(kind: Kind, time: u64) -> RawRecord {
        RawRecord {
            kind,
            time,
            size: 0,
            align: 0,
            addr: 0,
            old_addr: 0,
            end_time: time,
        }
    }
}

#[inline(always)]
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline(always)]
fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

/// Writes `v` as LEB128 at `out[*at..]`; the caller guarantees 10 bytes of room.
#[inline(always)]
fn put(out: &mut [u8; MAX_RECORD], at: &mut usize, mut v: u64) {
    while v >= 0x80 {
        out[*at] = v as u8 | 0x80;
        *at += 1;
        v >>= 7;
    }
    out[*at] = v as u8;
    *at += 1;
}

/// Encodes records of one chunk. Never allocates, never panics: every record fits in
/// [`MAX_RECORD`] bytes.
#[derive(Clone, Copy, Debug)]
pub struct Encoder {
    pub prev_time: u64,
    pub prev_addr: u64,
}

impl Encoder {
    /// The state at the start of a chunk whose header says `base_time`.
    pub fn new(base_time: u64) -> Encoder {
        Encoder {
            prev_time: base_time,
            prev_addr: 0,
        }
    }

    /// Encodes `r` into `out` and returns its length; `out[0]` is the kind byte (which the
    /// tracer stores last).
    #[inline]
    pub fn encode(&mut self, r: &RawRecord, out: &mut [u8; MAX_RECORD]) -> usize {
        out[0] = r.kind as u8;
        let mut at = 1;
        put(out, &mut at, r.time.wrapping_sub(self.prev_time));
        self.prev_time = r.time;
        let addr = |out: &mut [u8; MAX_RECORD], at: &mut usize, prev: &mut u64, a: u64| {
            put(out, at, zigzag(a.wrapping_sub(*prev) as i64));
            *prev = a;
        };
        match r.kind {
            Kind::Malloc | Kind::Calloc => {
                put(out, &mut at, r.size);
                addr(out, &mut at, &mut self.prev_addr, r.addr);
            }
            Kind::Free => addr(out, &mut at, &mut self.prev_addr, r.addr),
            Kind::Realloc => {
                addr(out, &mut at, &mut self.prev_addr, r.old_addr);
                put(out, &mut at, r.size);
                addr(out, &mut at, &mut self.prev_addr, r.addr);
                put(out, &mut at, r.end_time.wrapping_sub(r.time));
            }
            Kind::PosixMemalign
            | Kind::AlignedAlloc
            | Kind::Memalign
            | Kind::Valloc
            | Kind::Pvalloc => {
                put(out, &mut at, r.size);
                put(out, &mut at, r.align);
                addr(out, &mut at, &mut self.prev_addr, r.addr);
            }
            Kind::ThreadEnd => {}
        }
        at
    }
}

/// Why a record could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// The kind byte is not a known kind.
    Kind { at: usize, byte: u8 },
    /// The chunk ends inside the record.
    Cut { at: usize },
    /// A number runs longer than 10 bytes.
    Varint { at: usize },
}

impl core::fmt::Display for RecordError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RecordError::Kind { at, byte } => {
                write!(f, "unknown record kind {byte} at chunk byte {at}")
            }
            RecordError::Cut { at } => write!(f, "the chunk ends inside the record at byte {at}"),
            RecordError::Varint { at } => {
                write!(
                    f,
                    "a number longer than 10 bytes in the record at byte {at}"
                )
            }
        }
    }
}

impl std::error::Error for RecordError {}

/// Decodes the records of one chunk, in order.
#[derive(Clone, Copy, Debug)]
pub struct Decoder {
    prev_time: u64,
    prev_addr: u64,
}

impl Decoder {
    pub fn new(base_time: u64) -> Decoder {
        Decoder {
            prev_time: base_time,
            prev_addr: 0,
        }
    }

    /// Decodes the record at `data[*pos..]` and advances `pos` past it. `Ok(None)` at the end
    /// of the records (a 0 kind byte, or the end of `data`).
    pub fn decode(
        &mut self,
        data: &[u8],
        pos: &mut usize,
    ) -> Result<Option<RawRecord>, RecordError> {
        let start = *pos;
        let Some(&k) = data.get(start) else {
            return Ok(None);
        };
        if k == 0 {
            return Ok(None);
        }
        let kind = Kind::from_byte(k).ok_or(RecordError::Kind { at: start, byte: k })?;
        let mut at = start + 1;
        let mut get = || -> Result<u64, RecordError> {
            let mut v = 0u64;
            for shift in (0..70).step_by(7) {
                let b = *data.get(at).ok_or(RecordError::Cut { at: start })?;
                at += 1;
                if shift == 63 && b > 1 {
                    return Err(RecordError::Varint { at: start });
                }
                v |= ((b & 0x7f) as u64) << shift;
                if b & 0x80 == 0 {
                    return Ok(v);
                }
            }
            Err(RecordError::Varint { at: start })
        };
        let time = self.prev_time.wrapping_add(get()?);
        let mut r = RawRecord::new(kind, time);
        let prev_addr = self.prev_addr;
        let addr_from = |prev: u64, d: u64| prev.wrapping_add(unzigzag(d) as u64);
        match kind {
            Kind::Malloc | Kind::Calloc => {
                r.size = get()?;
                r.addr = addr_from(prev_addr, get()?);
                self.prev_addr = r.addr;
            }
            Kind::Free => {
                r.addr = addr_from(prev_addr, get()?);
                self.prev_addr = r.addr;
            }
            Kind::Realloc => {
                r.old_addr = addr_from(prev_addr, get()?);
                r.size = get()?;
                r.addr = addr_from(r.old_addr, get()?);
                r.end_time = time.wrapping_add(get()?);
                self.prev_addr = r.addr;
            }
            Kind::PosixMemalign
            | Kind::AlignedAlloc
            | Kind::Memalign
            | Kind::Valloc
            | Kind::Pvalloc => {
                r.size = get()?;
                r.align = get()?;
                r.addr = addr_from(prev_addr, get()?);
                self.prev_addr = r.addr;
            }
            Kind::ThreadEnd => {}
        }
        self.prev_time = time;
        *pos = at;
        Ok(Some(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<RawRecord> {
        let mut v = Vec::new();
        let mut r = RawRecord::new(Kind::Malloc, 1_000_100);
        r.size = 24;
        r.addr = 0x5555_0000_1000;
        v.push(r);
        let mut r = RawRecord::new(Kind::Realloc, 1_000_200);
        r.old_addr = 0x5555_0000_1000;
        r.size = 1 << 40;
        r.addr = 0x7f00_0000_0010;
        r.end_time = 1_000_900;
        v.push(r);
        let mut r = RawRecord::new(Kind::Free, 1_000_950);
        r.addr = 0x7f00_0000_0010;
        v.push(r);
        let mut r = RawRecord::new(Kind::Pvalloc, 2_000_000);
        r.size = 8192;
        r.align = 4096;
        r.addr = 0x1000;
        v.push(r);
        let mut r = RawRecord::new(Kind::Calloc, u64::MAX);
        r.size = u64::MAX;
        r.addr = 0; // a failed calloc
        v.push(r);
        v.push(RawRecord::new(Kind::ThreadEnd, u64::MAX));
        v
    }

    fn encoded(records: &[RawRecord]) -> Vec<u8> {
        let mut e = Encoder::new(1_000_000);
        let mut out = Vec::new();
        for r in records {
            let mut buf = [0u8; MAX_RECORD];
            let n = e.encode(r, &mut buf);
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    #[test]
    fn records_round_trip_and_stop_at_a_zero_kind() {
        let want = sample();
        let mut bytes = encoded(&want);
        bytes.extend_from_slice(&[0, 0, 0]);
        let mut d = Decoder::new(1_000_000);
        let mut pos = 0;
        let mut got = Vec::new();
        while let Some(r) = d.decode(&bytes, &mut pos).unwrap() {
            got.push(r);
        }
        assert_eq!(got, want);
        assert_eq!(pos, bytes.len() - 3);
    }

    #[test]
    fn a_typical_malloc_takes_few_bytes() {
        let mut e = Encoder::new(0);
        let mut buf = [0u8; MAX_RECORD];
        let mut r = RawRecord::new(Kind::Malloc, 50_000);
        r.size = 40;
        r.addr = 0x5555_5555_0000;
        e.encode(&r, &mut buf);
        r.time += 300;
        r.addr += 48;
        assert!(e.encode(&r, &mut buf) <= 5);
    }

    #[test]
    fn cut_and_corrupt_records_are_named() {
        let bytes = encoded(&sample());
        let mut d = Decoder::new(1_000_000);
        let mut pos = 0;
        d.decode(&bytes, &mut pos).unwrap();
        let cut = &bytes[..pos + 3];
        assert_eq!(
            d.decode(cut, &mut pos.clone()),
            Err(RecordError::Cut { at: pos })
        );
        let mut bad = bytes.clone();
        bad[pos] = 77;
        assert_eq!(
            d.decode(&bad, &mut pos.clone()),
            Err(RecordError::Kind { at: pos, byte: 77 })
        );
        let long = [
            1u8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert!(matches!(
            Decoder::new(0).decode(&long, &mut 0),
            Err(RecordError::Varint { .. })
        ));
    }
}
