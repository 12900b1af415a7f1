//! The tracer's settings, read from the environment once at start-up (the environment is the
//! only channel: `runner record` sets these variables).
//!
//! | variable | meaning |
//! |---|---|
//! | `LONGHAUL_TRACE_DIR` | folder for the raw files (`<pid>.lhraw`); unset: the tracer does nothing |
//! | `LONGHAUL_TRACE_CHILDREN` | `1`: forked children and programs started from this one are traced too, each into its own file; otherwise only the first process is |
//! | `LONGHAUL_TRACE_PARENT` | pid of the process that started the traced program (`runner record`): a process whose parent is not this pid is a descendant |

use core::sync::atomic::{AtomicU32, Ordering};

/// Longest folder path accepted (with room for `/<pid>.lhraw` and a NUL).
pub const MAX_DIR: usize = 3800;

pub struct Config {
    dir: [u8; MAX_DIR],
    dir_len: usize,
    pub children: bool,
}

/// The pid given in `LONGHAUL_TRACE_PARENT`, 0 if none.
pub static PARENT: AtomicU32 = AtomicU32::new(0);

impl Config {
    /// Reads the environment; `None` if tracing is not asked for.
    pub fn from_env() -> Option<Config> {
        let dir = crate::sys::getenv(c"LONGHAUL_TRACE_DIR")?;
        if dir.is_empty() || dir.len() + 40 > MAX_DIR {
            crate::sys::say(
                b"longhaul tracer: LONGHAUL_TRACE_DIR is empty or too long; not tracing\n",
            );
            return None;
        }
        let mut c = Config {
            dir: [0; MAX_DIR],
            dir_len: dir.len(),
            children: crate::sys::getenv(c"LONGHAUL_TRACE_CHILDREN") == Some(b"1"),
        };
        c.dir[..dir.len()].copy_from_slice(dir);
        if let Some(p) = crate::sys::getenv(c"LONGHAUL_TRACE_PARENT").and_then(parse_u32) {
            PARENT.store(p, Ordering::Relaxed);
        }
        Some(c)
    }

    /// Writes `<dir>/<pid>.lhraw\0` (or `<dir>/<pid>.<image>.lhraw\0` for an earlier program
    /// image of the same process, see `output::open`) into `out`; returns its length with the
    /// NUL.
    pub fn raw_path(&self, pid: u32, image: Option<u32>, out: &mut [u8; MAX_DIR]) -> usize {
        out[..self.dir_len].copy_from_slice(&self.dir[..self.dir_len]);
        let mut at = self.dir_len;
        out[at] = b'/';
        at += 1;
        put_decimal(out, &mut at, pid);
        if let Some(i) = image {
            out[at] = b'.';
            at += 1;
            put_decimal(out, &mut at, i);
        }
        for &b in b".lhraw\0" {
            out[at] = b;
            at += 1;
        }
        at
    }
}

fn put_decimal(out: &mut [u8], at: &mut usize, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut k = 0;
    loop {
        digits[k] = b'0' + (n % 10) as u8;
        k += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for d in digits[..k].iter().rev() {
        out[*at] = *d;
        *at += 1;
    }
}

fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u64;
    }
    u32::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_numbers() {
        let mut c = Config {
            dir: [0; MAX_DIR],
            dir_len: 4,
            children: false,
        };
        c.dir[..4].copy_from_slice(b"/tmp");
        let mut out = [0u8; MAX_DIR];
        let n = c.raw_path(40213, None, &mut out);
        assert_eq!(&out[..n], b"/tmp/40213.lhraw\0");
        let n = c.raw_path(0, None, &mut out);
        assert_eq!(&out[..n], b"/tmp/0.lhraw\0");
        let n = c.raw_path(7, Some(12), &mut out);
        assert_eq!(&out[..n], b"/tmp/7.12.lhraw\0");
        assert_eq!(parse_u32(b"123"), Some(123));
        assert_eq!(parse_u32(b"12a"), None);
        assert_eq!(parse_u32(b""), None);
        assert_eq!(parse_u32(b"99999999999"), None);
    }
}
