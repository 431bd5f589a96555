//! The start-up report: what `sluice serve` finds on the host before it
//! starts the shards. Logged once: cores, memory, the locked-memory limit,
//! io_uring, and the data dir's filesystem. Without io_uring (or with a
//! locked-memory limit glommio cannot start under) the broker refuses to
//! start, with the reason and the fix, instead of failing inside glommio.
//!
//! Everything here reads /proc, /sys and a few syscalls; nothing is changed.
//! `scripts/tune.sh --check` goes through the same ground in more detail.

use std::path::{Path, PathBuf};

/// What glommio registers with io_uring per shard (its `DEFAULT_IO_MEMORY`):
/// pinned, so counted against the locked-memory limit.
const IO_MEMORY_PER_SHARD: u64 = 10 << 20;
/// glommio refuses to create an executor below this locked-memory limit.
const GLOMMIO_MIN_MEMLOCK: u64 = 512 << 10;
/// CAP_IPC_LOCK: with it, pinned memory is not counted against the limit.
const CAP_IPC_LOCK: u32 = 14;

/// Logs what the host offers the broker and returns an error, worded for the
/// operator, when the broker cannot run here. `data_dir` need not exist yet
/// (its nearest existing parent is looked at).
pub fn report(data_dir: &Path, shards: usize) -> Result<(), String> {
    let uring = io_uring();
    cores(shards);
    memory();
    let memlock = memlock(shards);
    filesystem(data_dir);
    match uring {
        Ok(features) => {
            tracing::info!(kernel = %kernel_release(), features = %format!("{features:#x}"), "host io_uring: available")
        }
        Err(why) => {
            return Err(format!(
                "io_uring is unavailable: {why}. Sluice does all its network and disk I/O through io_uring and \
                 cannot start without it"
            ))
        }
    }
    memlock
}

// --- cores ---------------------------------------------------------------

fn cores(shards: usize) {
    // SAFETY: sysconf has no memory effects.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
    let usable = allowed_cpus();
    let quota = std::thread::available_parallelism().map_or(usable.len(), |n| n.get());
    let cpus = cpu_list(&usable);
    if shards > usable.len() {
        tracing::warn!(
            online,
            usable = usable.len(),
            cpus = %cpus,
            shards,
            "host cores: more shards than CPUs this process may run on; shards will share cores"
        );
    } else {
        tracing::info!(online, usable = usable.len(), cpus = %cpus, cpu_quota = quota, shards, "host cores");
    }
}

/// The CPUs this process may run on (its affinity mask).
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity
    // writes at most size_of::<cpu_set_t>() bytes into it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            let n = libc::sysconf(libc::_SC_NPROCESSORS_ONLN).max(1) as usize;
            return (0..n).collect();
        }
        (0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set)).collect()
    }
}

/// `[0, 1, 2, 5]` → `"0-2,5"`.
fn cpu_list(cpus: &[usize]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        while i + 1 < cpus.len() && cpus[i + 1] == cpus[i] + 1 {
            i += 1;
        }
        out.push(if cpus[i] == start { start.to_string() } else { format!("{start}-{}", cpus[i]) });
        i += 1;
    }
    out.join(",")
}

// --- memory --------------------------------------------------------------

fn memory() {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let total = meminfo_kib(&meminfo, "MemTotal").map(|k| k >> 10);
    let available = meminfo_kib(&meminfo, "MemAvailable").map(|k| k >> 10);
    let cgroup = cgroup_memory_max().map(|b| b >> 20);
    let show = |v: Option<u64>| v.map_or("unknown".to_string(), |v| v.to_string());
    tracing::info!(
        total_mib = %show(total),
        available_mib = %show(available),
        cgroup_limit_mib = %cgroup.map_or("none".to_string(), |v| v.to_string()),
        "host memory"
    );
}

/// A `Key:   123 kB` line of /proc/meminfo, in KiB.
fn meminfo_kib(meminfo: &str, key: &str) -> Option<u64> {
    meminfo.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The cgroup v2 memory limit of this process, if it has one.
fn cgroup_memory_max() -> Option<u64> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    let max = std::fs::read_to_string(format!("/sys/fs/cgroup{}/memory.max", path.trim_end_matches('/'))).ok()?;
    max.trim().parse().ok()
}

// --- locked memory ---------------------------------------------------------

/// Logs the locked-memory limit against what the shards pin; an error below
/// the minimum glommio starts with.
#[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
fn memlock(shards: usize) -> Result<(), String> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit into `lim`.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } != 0 {
        tracing::warn!("host memlock: cannot read the locked-memory limit");
        return Ok(());
    }
    let unlimited = lim.rlim_cur == libc::RLIM_INFINITY;
    let limit = lim.rlim_cur as u64;
    let needed = IO_MEMORY_PER_SHARD * shards as u64;
    let cap = has_capability(&std::fs::read_to_string("/proc/self/status").unwrap_or_default(), CAP_IPC_LOCK);
    let shown = if unlimited { "unlimited".to_string() } else { format!("{}KiB", limit >> 10) };
    let needed_kib = format!("{}KiB", needed >> 10);
    if !unlimited && limit < GLOMMIO_MIN_MEMLOCK {
        return Err(format!(
            "the locked-memory limit (ulimit -l) is {shown}; the shards' io_uring cannot start below {}KiB and run \
             at full speed with {needed_kib} ({}MiB per shard): raise it (systemd: LimitMEMLOCK=infinity; \
             docker: --ulimit memlock=-1; a shell: ulimit -l unlimited)",
            GLOMMIO_MIN_MEMLOCK >> 10,
            IO_MEMORY_PER_SHARD >> 20
        ));
    }
    if unlimited || limit >= needed || cap {
        tracing::info!(limit = %shown, needed = %needed_kib, cap_ipc_lock = cap, "host memlock");
    } else {
        tracing::warn!(
            limit = %shown,
            needed = %needed_kib,
            cap_ipc_lock = cap,
            "host memlock: below what the shards register with io_uring; they fall back to slower unregistered \
             buffers. Raise it: LimitMEMLOCK=infinity (systemd), --ulimit memlock=-1 (docker), ulimit -l"
        );
    }
    Ok(())
}

/// Whether `CapEff` in /proc/self/status text holds capability `cap`.
fn has_capability(status: &str, cap: u32) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << cap) != 0)
}

// --- io_uring --------------------------------------------------------------

/// Creates and closes a small ring: Ok(the kernel's IORING_FEAT_* bits), or
/// why io_uring cannot be used here.
fn io_uring() -> Result<u32, String> {
    let disabled = read_trimmed("/proc/sys/kernel/io_uring_disabled");
    if disabled.as_deref() == Some("2") {
        return Err("kernel.io_uring_disabled=2 turns io_uring off for every process; set it to 0 \
                    (sysctl -w kernel.io_uring_disabled=0, kernel-tuning/99-sluice.conf)"
            .into());
    }
    // struct io_uring_params: 120 bytes, `features` is its sixth u32.
    let mut params = [0u32; 30];
    // SAFETY: io_uring_setup reads and writes one io_uring_params (120
    // bytes) at the pointer; the fd it returns is ours to close.
    let entries: libc::c_uint = 4;
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, entries, params.as_mut_ptr()) };
    if fd >= 0 {
        // SAFETY: closing the ring we just created.
        unsafe { libc::close(fd as libc::c_int) };
        return Ok(params[5]);
    }
    let err = std::io::Error::last_os_error();
    Err(explain_setup_error(err.raw_os_error().unwrap_or(0), disabled.as_deref(), &err.to_string()))
}

/// Turns io_uring_setup's errno into a reason and a fix.
fn explain_setup_error(errno: i32, disabled: Option<&str>, text: &str) -> String {
    match errno {
        libc::ENOSYS => format!(
            "this kernel ({}) has no io_uring: Linux 5.8 or later built with CONFIG_IO_URING is needed",
            kernel_release()
        ),
        libc::EPERM if disabled == Some("1") => {
            let group = read_trimmed("/proc/sys/kernel/io_uring_group").unwrap_or_else(|| "?".into());
            format!(
                "io_uring_setup was refused (EPERM): kernel.io_uring_disabled=1 allows io_uring only to root and \
                 to group {group} (kernel.io_uring_group); set kernel.io_uring_disabled=0 or run the broker in \
                 that group"
            )
        }
        libc::EPERM => "io_uring_setup was refused (EPERM): a seccomp filter blocks it (Docker's default profile \
                        does since Docker 25: run with --security-opt seccomp=unconfined, or a profile that \
                        allows io_uring_setup, io_uring_enter and io_uring_register), or an LSM policy denies it"
            .into(),
        libc::ENOMEM => "io_uring_setup failed with ENOMEM: the locked-memory limit is too low for a ring on this \
                         kernel; raise it (LimitMEMLOCK=infinity, ulimit -l)"
            .into(),
        _ => format!("io_uring_setup failed: {text}"),
    }
}

fn kernel_release() -> String {
    read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into())
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

// --- the data dir's filesystem ----------------------------------------------

/// A mount from /proc/self/mountinfo.
#[derive(Debug, PartialEq)]
struct Mount {
    point: PathBuf,
    fstype: String,
    source: String,
}

fn filesystem(data_dir: &Path) {
    let at = nearest_existing(data_dir);
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let Some(m) = mount_of(&mountinfo, &at) else {
        tracing::warn!(data_dir = %data_dir.display(), "data dir filesystem: cannot tell (no /proc/self/mountinfo?)");
        return;
    };
    let free_gib = free_bytes(&at).map_or("unknown".to_string(), |b| format!("{:.1}", b as f64 / (1u64 << 30) as f64));
    let (dir, checked, mount) = (data_dir.display(), at.display(), m.point.display());
    match m.fstype.as_str() {
        "xfs" | "ext4" => tracing::info!(
            data_dir = %dir,
            checked = %checked,
            fs = %m.fstype,
            mount = %mount,
            device = %m.source,
            free_gib = %free_gib,
            "data dir filesystem"
        ),
        other => tracing::warn!(
            data_dir = %dir,
            checked = %checked,
            fs = %other,
            mount = %mount,
            device = %m.source,
            free_gib = %free_gib,
            "data dir filesystem is not XFS or ext4: {}",
            fs_caveat(other)
        ),
    }
}

fn fs_caveat(fs: &str) -> &'static str {
    match fs {
        "tmpfs" | "ramfs" => "it lives in memory and is lost at reboot",
        "overlay" => "a container's writable layer: slow, and gone with the container; use a volume",
        "nfs" | "nfs4" | "cifs" | "smb3" | "9p" | "fuse" | "virtiofs" => {
            "a network or user-space filesystem: fsync and locking may be slow or unsafe"
        }
        _ => "the broker is tested on XFS and ext4; appends, preallocation and fsync may behave differently",
    }
}

/// The path itself if it exists, else its nearest existing parent, made
/// absolute and with symlinks resolved.
fn nearest_existing(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")).join(path)
    };
    let mut p = abs.as_path();
    loop {
        if let Ok(c) = p.canonicalize() {
            return c;
        }
        match p.parent() {
            Some(parent) => p = parent,
            None => return PathBuf::from("/"),
        }
    }
}

/// The mount that holds `path` (absolute, canonical): the longest mount
/// point that is `path` or one of its parents; of several mounts on the same
/// point, the last (the one on top).
fn mount_of(mountinfo: &str, path: &Path) -> Option<Mount> {
    let mut best: Option<Mount> = None;
    for line in mountinfo.lines() {
        // id parent maj:min root mount-point options [optional...] - fstype source super-options
        let (left, right) = line.split_once(" - ")?;
        let point = PathBuf::from(unescape(left.split(' ').nth(4)?));
        let mut r = right.split(' ');
        let fstype = r.next()?.to_string();
        let source = unescape(r.next().unwrap_or(""));
        if !path.starts_with(&point) {
            continue;
        }
        if best.as_ref().is_none_or(|b| point.as_os_str().len() >= b.point.as_os_str().len()) {
            best = Some(Mount { point, fstype, source });
        }
    }
    best
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[allow(clippy::unnecessary_cast)] // the statvfs field types differ between targets
fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills one struct statvfs for a NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:25 / /dev/shm rw,nosuid,nodev shared:4 - tmpfs tmpfs rw
41 22 259:1 / /var/lib/sluice rw,noatime shared:9 - xfs /dev/nvme0n1p1 rw,attr2
42 41 0:40 / /var/lib/sluice/my\\040data rw - tmpfs none rw
43 22 0:41 / /var/lib/sluicey rw - btrfs /dev/sdb rw
44 41 259:2 / /var/lib/sluice rw - ext4 /dev/nvme1n1 rw
";

    #[test]
    fn finds_the_mount_of_a_path() {
        let m = |p: &str| mount_of(MOUNTINFO, Path::new(p)).map(|m| (m.fstype, m.point.display().to_string()));
        assert_eq!(m("/home/x"), Some(("ext4".into(), "/".into())));
        assert_eq!(m("/dev/shm/a/b"), Some(("tmpfs".into(), "/dev/shm".into())));
        // Mounted over: the later mount on the same point wins.
        assert_eq!(m("/var/lib/sluice/data"), Some(("ext4".into(), "/var/lib/sluice".into())));
        // Component-wise prefix: /var/lib/sluicey is not under /var/lib/sluice.
        assert_eq!(m("/var/lib/sluicey/d"), Some(("btrfs".into(), "/var/lib/sluicey".into())));
        assert_eq!(m("/var/lib/sluice/my data/x"), Some(("tmpfs".into(), "/var/lib/sluice/my data".into())));
        let src = mount_of(MOUNTINFO, Path::new("/var/lib/sluice")).unwrap().source;
        assert_eq!(src, "/dev/nvme1n1");
    }

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape("a\\040b\\134c"), "a b\\c");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
    }

    #[test]
    fn reads_meminfo_and_capabilities() {
        let mi = "MemTotal:       24683936 kB\nMemFree:        23455432 kB\nMemAvailable:   24289772 kB\n";
        assert_eq!(meminfo_kib(mi, "MemTotal"), Some(24_683_936));
        assert_eq!(meminfo_kib(mi, "MemAvailable"), Some(24_289_772));
        assert_eq!(meminfo_kib(mi, "Mem"), None);
        let status = "Name:\tsluice\nCapInh:\t0000000000000000\nCapEff:\t0000000000004000\n";
        assert!(has_capability(status, CAP_IPC_LOCK));
        assert!(!has_capability(status, 12));
        assert!(!has_capability("CapEff:\tzz\n", CAP_IPC_LOCK));
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(cpu_list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(cpu_list(&[3]), "3");
        assert_eq!(cpu_list(&[]), "");
    }

    #[test]
    fn explains_setup_errors() {
        assert!(explain_setup_error(libc::EPERM, Some("0"), "").contains("seccomp"));
        assert!(explain_setup_error(libc::EPERM, Some("1"), "").contains("io_uring_group"));
        assert!(explain_setup_error(libc::ENOSYS, None, "").contains("5.8"));
        assert!(explain_setup_error(libc::EINVAL, None, "Invalid argument").contains("Invalid argument"));
    }

    #[test]
    fn probes_this_host() {
        // Whatever the host offers, the probe answers without panicking, and
        // the report of a not-yet-existing dir looks at its parent.
        let _ = io_uring();
        assert!(nearest_existing(Path::new("/definitely/not/here")).exists());
        assert!(!allowed_cpus().is_empty());
    }
}
