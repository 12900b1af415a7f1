//! The runner's one seam to the operating system: `/proc` and `/sys` reads, anonymous mappings
//! for the replay's tables, signal dispositions and the C library's identity.

use std::ffi::CStr;
use std::io;
use std::path::Path;

use rundir::Machine;

/// Memory figures of the current process, bytes. `None` where the kernel does not say.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcMemory {
    pub rss: u64,
    pub rss_anon: Option<u64>,
    pub private_dirty: Option<u64>,
    pub lazyfree: Option<u64>,
}

/// Finds `key:` in a `/proc` key-value text and returns its value in bytes (values are kB).
fn kb_field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        let kb: u64 = rest.split_whitespace().next()?.parse().ok()?;
        Some(kb * 1024)
    })
}

/// Reads this process's memory figures, reusing `buf` so that sampling does not allocate
/// once `buf` has grown. `rollup`: also read `/proc/self/smaps_rollup` (Private_Dirty,
/// LazyFree), which walks every page table entry of the process: milliseconds for a few
/// hundred MiB.
pub fn read_self_memory(buf: &mut String, rollup: bool) -> io::Result<ProcMemory> {
    use std::io::Read;
    buf.clear();
    std::fs::File::open("/proc/self/status")?.read_to_string(buf)?;
    let rss = kb_field(buf, "VmRSS").unwrap_or(0);
    let rss_anon = kb_field(buf, "RssAnon");
    buf.clear();
    let rolled = rollup
        && std::fs::File::open("/proc/self/smaps_rollup")
            .and_then(|mut f| f.read_to_string(buf))
            .is_ok();
    let (private_dirty, lazyfree) = if rolled {
        (kb_field(buf, "Private_Dirty"), kb_field(buf, "LazyFree"))
    } else {
        (None, None)
    };
    Ok(ProcMemory {
        rss,
        rss_anon,
        private_dirty,
        lazyfree,
    })
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Facts about this machine, for `run.json`.
pub fn machine() -> Machine {
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| {
        t.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_string())
    });
    let memory_bytes = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| kb_field(&t, "MemTotal"));
    Machine {
        hostname: read_trimmed("/proc/sys/kernel/hostname"),
        cpu_model,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_bytes,
        kernel: read_trimmed("/proc/sys/kernel/osrelease"),
        glibc: glibc_version(),
        thp: read_trimmed("/sys/kernel/mm/transparent_hugepage/enabled"),
    }
}

/// The running glibc's version (`2.36`).
pub fn glibc_version() -> String {
    // SAFETY: gnu_get_libc_version returns a pointer to a static NUL-terminated string.
    unsafe { CStr::from_ptr(libc::gnu_get_libc_version()) }
        .to_string_lossy()
        .into_owned()
}

/// Makes this process ignore SIGINT: the runner's parent decides how a Ctrl-C ends a child.
pub fn ignore_sigint() {
    // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
}

/// The name of a signal number (`SIGSEGV`).
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGKILL => "SIGKILL",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGPIPE => "SIGPIPE",
        _ => return format!("signal {sig}"),
    };
    format!("signal {sig} ({name})")
}

/// An anonymous, zero-filled, private mapping: the replay's tables live outside any allocator
/// under test, and untouched parts cost no memory.
pub struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: a Mapping is plain memory owned by this value; sharing its address between threads is
// safe, and what is stored in it is accessed through atomics by its users.
unsafe impl Send for Mapping {}
// SAFETY: as above; `Mapping` itself has no interior state besides the fixed pointer and length.
unsafe impl Sync for Mapping {}

impl Mapping {
    pub fn new(len: usize) -> io::Result<Mapping> {
        // SAFETY: an anonymous private mapping with no fixed address has no preconditions; the
        // result is checked for MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping {
            ptr: ptr.cast(),
            len,
        })
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len describe a mapping this value created and nobody else unmaps.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

/// Whether a file starts with the ELF magic (a shared library to preload).
pub fn is_elf(path: &Path) -> io::Result<bool> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let mut f = std::fs::File::open(path)?;
    Ok(f.read_exact(&mut magic).is_ok() && magic == *b"\x7fELF")
}

/// Maps `len` bytes of anonymous, private, not-yet-committed memory for the harness's own heap.
/// Returns null on failure (the caller is an allocator and must not allocate or panic).
pub fn map_harness_chunk(len: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping at no fixed address has no preconditions; the result
    // is checked for MAP_FAILED.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        p.cast()
    }
}

/// Pages of 4 KiB or whatever the kernel uses.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}

/// Resident bytes of `[base, base + len)`, counted with `mincore` in steps of `scratch.len()`
/// pages (no allocation).
///
/// # Safety
/// `base` is page-aligned and `[base, base + len)` lies inside mappings of this process (the
/// kernel fails the call with ENOMEM otherwise, which ends the count early, but the pointer
/// arithmetic must stay in bounds).
pub unsafe fn resident_bytes(base: *const u8, len: usize, scratch: &mut [u8]) -> u64 {
    let page = page_size();
    let mut resident = 0u64;
    let mut at = 0usize;
    let step = scratch.len().max(1) * page;
    while at < len {
        let n = (len - at).min(step);
        let pages = n.div_ceil(page);
        // SAFETY: `base + at` is page-aligned inside a mapping of this process (callers pass
        // mappings they created, whose bases are page-aligned) and `scratch` holds at least
        // `pages` bytes for the kernel to fill.
        let rc =
            unsafe { libc::mincore(base.add(at) as *mut libc::c_void, n, scratch.as_mut_ptr()) };
        if rc != 0 {
            return resident;
        }
        resident += scratch[..pages].iter().filter(|&&b| b & 1 != 0).count() as u64 * page as u64;
        at += n;
    }
    resident
}

/// What `getrusage` says of a process or a thread: CPU seconds, page faults, context switches.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    pub user_s: f64,
    pub sys_s: f64,
    pub minor_faults: u64,
    pub major_faults: u64,
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
}

impl Usage {
    pub fn cpu_s(&self) -> f64 {
        self.user_s + self.sys_s
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Usage) -> Usage {
        Usage {
            user_s: self.user_s - earlier.user_s,
            sys_s: self.sys_s - earlier.sys_s,
            minor_faults: self.minor_faults.saturating_sub(earlier.minor_faults),
            major_faults: self.major_faults.saturating_sub(earlier.major_faults),
            voluntary_switches: self
                .voluntary_switches
                .saturating_sub(earlier.voluntary_switches),
            involuntary_switches: self
                .involuntary_switches
                .saturating_sub(earlier.involuntary_switches),
        }
    }

    pub fn add(&mut self, other: &Usage) {
        self.user_s += other.user_s;
        self.sys_s += other.sys_s;
        self.minor_faults += other.minor_faults;
        self.major_faults += other.major_faults;
        self.voluntary_switches += other.voluntary_switches;
        self.involuntary_switches += other.involuntary_switches;
    }
}

/// Whose usage [`usage`] reads.
#[derive(Clone, Copy, Debug)]
pub enum UsageOf {
    /// The whole process, every thread.
    Process,
    /// The calling thread only.
    Thread,
    /// Children that have ended and been waited for.
    Children,
}

/// `getrusage` for the process, the calling thread or the waited-for children.
pub fn usage(of: UsageOf) -> Usage {
    let who = match of {
        UsageOf::Process => libc::RUSAGE_SELF,
        UsageOf::Thread => libc::RUSAGE_THREAD,
        UsageOf::Children => libc::RUSAGE_CHILDREN,
    };
    // SAFETY: rusage is plain old data; zeroed is a valid value.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `r` is a valid out-pointer; `who` is one of the values getrusage accepts.
    if unsafe { libc::getrusage(who, &mut r) } != 0 {
        return Usage::default();
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Usage {
        user_s: secs(r.ru_utime),
        sys_s: secs(r.ru_stime),
        minor_faults: r.ru_minflt as u64,
        major_faults: r.ru_majflt as u64,
        voluntary_switches: r.ru_nvcsw as u64,
        involuntary_switches: r.ru_nivcsw as u64,
    }
}

/// Makes the calling thread's timed sleeps wake within about a microsecond of their deadline
/// (the default timer slack is 50 µs, which at speed 60 is 3 simulated ms of lag per sleep).
pub fn tight_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes a value in ns and affects only the calling thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong);
    }
}

/// The system's load averages (1, 5, 15 minutes), if `/proc/loadavg` says.
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|w| w.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// The calling thread's scheduler statistics: nanoseconds on a CPU and nanoseconds spent
/// runnable but waiting for one (`run_delay`: the contention a busy machine adds), from
/// `/proc/thread-self/schedstat`. `None` if the kernel does not keep them.
pub fn thread_schedstat() -> Option<(u64, u64)> {
    use std::io::Read;
    let mut buf = [0u8; 128];
    let mut f = std::fs::File::open("/proc/thread-self/schedstat").ok()?;
    let n = f.read(&mut buf).ok()?;
    let text = std::str::from_utf8(&buf[..n]).ok()?;
    let mut it = text.split_whitespace().map(|w| w.parse::<u64>().ok());
    Some((it.next()??, it.next()??))
}

/// Memory and CPU of one process, from `/proc/PID/{status,stat,smaps_rollup}`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessFigures {
    pub rss: u64,
    pub rss_anon: Option<u64>,
    /// Proportional set size: shared pages divided among the processes sharing them.
    pub pss: Option<u64>,
    pub private_dirty: Option<u64>,
    pub usage: Usage,
}

/// Reads another process's figures (None if it is gone). `rollup` also reads
/// `smaps_rollup` (PSS), which walks its page tables.
pub fn process_figures(pid: u32, rollup: bool, buf: &mut String) -> Option<ProcessFigures> {
    use std::io::Read;
    buf.clear();
    std::fs::File::open(format!("/proc/{pid}/status"))
        .and_then(|mut f| f.read_to_string(buf))
        .ok()?;
    let rss = kb_field(buf, "VmRSS").unwrap_or(0);
    let rss_anon = kb_field(buf, "RssAnon");
    buf.clear();
    std::fs::File::open(format!("/proc/{pid}/stat"))
        .and_then(|mut f| f.read_to_string(buf))
        .ok()?;
    // Fields after the command (which may hold spaces), counted from `state` (field 3).
    let after = buf.rsplit_once(')').map(|(_, r)| r)?;
    let f: Vec<&str> = after.split_whitespace().collect();
    // A zombie has exited: it only waits for its parent to read its status.
    if matches!(f.first(), Some(&"Z") | Some(&"X")) {
        return None;
    }
    let num = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let usage = Usage {
        user_s: num(14) as f64 / hz,
        sys_s: num(15) as f64 / hz,
        minor_faults: num(10),
        major_faults: num(12),
        voluntary_switches: 0,
        involuntary_switches: 0,
    };
    let (mut pss, mut private_dirty) = (None, None);
    if rollup {
        buf.clear();
        if std::fs::File::open(format!("/proc/{pid}/smaps_rollup"))
            .and_then(|mut f| f.read_to_string(buf))
            .is_ok()
        {
            pss = kb_field(buf, "Pss");
            private_dirty = kb_field(buf, "Private_Dirty");
        }
    }
    Some(ProcessFigures {
        rss,
        rss_anon,
        pss,
        private_dirty,
        usage,
    })
}

/// `pid` and all its descendants (children found through each process's parent id).
pub fn process_tree(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                continue;
            };
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u32>().ok());
            if let Some(pp) = ppid {
                parents.push((p, pp));
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    tree
}

/// Whether `/proc/PID/maps` maps a file whose path is `path` (a preloaded library really in
/// use).
pub fn maps_file(pid: u32, path: &Path) -> io::Result<bool> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))?;
    // The kernel names a mapping by its file's resolved path: Debian's libmimalloc.so.2 is a
    // link to libmimalloc.so.2.0.
    let resolved = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let names = [path.to_string_lossy(), resolved.to_string_lossy()];
    Ok(maps.lines().any(|l| {
        l.split_whitespace()
            .nth(5)
            .is_some_and(|m| names.iter().any(|n| n == m))
    }))
}

/// The value of `name` in `/proc/PID/environ`, if set.
pub fn process_env(pid: u32, name: &str) -> Option<String> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    env.split(|&b| b == 0).find_map(|kv| {
        let kv = std::str::from_utf8(kv).ok()?;
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

/// Sends `sig` to process `pid`.
pub fn signal(pid: u32, sig: i32) -> io::Result<()> {
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(pid as libc::pid_t, sig) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends `sig` to every process of the process group led by `pgid`.
pub fn signal_group(pgid: u32, sig: i32) -> io::Result<()> {
    // SAFETY: kill has no memory-safety preconditions; a negative pid names a process group.
    if unsafe { libc::kill(-(pgid as libc::pid_t), sig) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick).
pub fn free_port() -> io::Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(l.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A library named through a symbolic link (as Debian's libmimalloc.so.2 is) counts as
    /// mapped: the kernel shows the link's target in /proc/PID/maps.
    #[test]
    fn a_library_given_by_a_link_is_found_mapped() {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let lib = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .find(|p| p.starts_with('/') && p.contains(".so"))
            .expect("this test binary maps a shared library")
            .to_string();
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("lib-link.so");
        std::os::unix::fs::symlink(&lib, &link).unwrap();
        let me = std::process::id();
        assert!(maps_file(me, Path::new(&lib)).unwrap());
        assert!(maps_file(me, &link).unwrap());
        assert!(!maps_file(me, &dir.path().join("not-mapped.so")).unwrap());
    }
}
