//! The runner's one seam to the operating system: `/proc` and `/sys` reads, anonymous mappings
//! for the replay's tables, signal dispositions and the C library's identity.

use std::ffi::CStr;
use std::io;
use std::path::Path;

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
/// once `buf` has grown.
pub fn read_self_memory(buf: &mut String) -> io::Result<ProcMemory> {
    use std::io::Read;
    buf.clear();
    std::fs::File::open("/proc/self/status")?.read_to_string(buf)?;
    let rss = kb_field(buf, "VmRSS").unwrap_or(0);
    let rss_anon = kb_field(buf, "RssAnon");
    buf.clear();
    let (private_dirty, lazyfree) = match std::fs::File::open("/proc/self/smaps_rollup")
        .and_then(|mut f| f.read_to_string(buf))
    {
        Ok(_) => (kb_field(buf, "Private_Dirty"), kb_field(buf, "LazyFree")),
        Err(_) => (None, None),
    };
    Ok(ProcMemory {
        rss,
        rss_anon,
        private_dirty,
        lazyfree,
    })
}

/// Facts about the machine a run happened on.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Machine {
    pub hostname: Option<String>,
    pub cpu_model: Option<String>,
    pub cores: usize,
    pub memory_bytes: Option<u64>,
    pub kernel: Option<String>,
    pub glibc: String,
    pub thp: Option<String>,
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

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
