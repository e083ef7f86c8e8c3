//! Facts about where a benchmark ran, printed in every JSON line: the file system under the
//! database file, the commit the harness was built from, and resident memory (of this process,
//! or of a child server); and, for `--nodes`, CPU time of processes read from `/proc` (a child
//! server, this process, every PostgreSQL process on the host).

use std::collections::HashMap;
use std::path::{Component, Path};

/// The commit this harness was built from (`-dirty` when tracked files differed then), or
/// `unknown` when it was built outside a git checkout.
pub fn commit() -> String {
    match option_env!("TETHER_GIT_COMMIT") {
        Some(c) if !c.is_empty() => c.to_string(),
        _ => "unknown".to_string(),
    }
}

/// The type of the file system holding `path` (`ext4`, `tmpfs`, `overlay`, ...), from
/// `/proc/mounts`; `None` where that cannot be read (not Linux).
pub fn fs_type(path: &Path) -> Option<String> {
    let path = path.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    fs_of(&mounts, &path)
}

/// The file system type of the longest mount point in `mounts` (the `/proc/mounts` format)
/// that contains the absolute `path`; the last such line wins (a later mount hides an earlier
/// one on the same point).
pub fn fs_of(mounts: &str, path: &Path) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(_source), Some(point), Some(fs)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let point = unescape_mount_point(point);
        let point = Path::new(&point);
        if !path.starts_with(point) {
            continue;
        }
        let depth = point
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .count();
        if best.as_ref().is_none_or(|(d, _)| depth >= *d) {
            best = Some((depth, fs.to_string()));
        }
    }
    best.map(|(_, fs)| fs)
}

/// `/proc/mounts` writes a space, tab, newline and backslash in a path as `\040`, `\011`,
/// `\012` and `\134`.
fn unescape_mount_point(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Resident memory in MB, current (`VmRSS`) and peak (`VmHWM`), of process `pid` (`None`:
/// this one). `None` for a figure that cannot be read (not Linux, or the process is gone).
pub fn rss_mb(pid: Option<u32>) -> (Option<f64>, Option<f64>) {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_string(),
    };
    match std::fs::read_to_string(path) {
        Ok(status) => (status_mb(&status, "VmRSS:"), status_mb(&status, "VmHWM:")),
        Err(_) => (None, None),
    }
}

/// The `key` line of a `/proc/<pid>/status` text (in kB there), in MB with one decimal.
pub fn status_mb(status: &str, key: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kb / 1024.0 * 10.0).round() / 10.0)
}

/// Clock ticks per second of `/proc/<pid>/stat` times (`sysconf(_SC_CLK_TCK)`): 100 on every
/// Linux this runs on (the kernel's `USER_HZ`, fixed for user space whatever `HZ` is).
pub const CLK_TCK: u64 = 100;

/// CPU times of one process, in clock ticks ([`CLK_TCK`] per second), from `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcCpu {
    /// Time in user mode (field 14, `utime`).
    pub utime: u64,
    /// Time in kernel mode (field 15, `stime`).
    pub stime: u64,
    /// User time of its children that ended and were waited for (field 16, `cutime`).
    pub cutime: u64,
    /// Kernel time of those children (field 17, `cstime`).
    pub cstime: u64,
    /// When the process started, in ticks after boot (field 22): with the pid, tells a process
    /// from a later one that reused its pid.
    pub starttime: u64,
}

impl ProcCpu {
    /// Its own CPU time (user + kernel), in ticks.
    pub fn own(&self) -> u64 {
        self.utime + self.stime
    }

    /// Its own CPU time plus that of its ended children, in ticks.
    pub fn with_children(&self) -> u64 {
        self.own() + self.cutime + self.cstime
    }
}

/// Clock ticks in milliseconds.
pub fn ticks_ms(ticks: u64) -> u64 {
    ticks * 1000 / CLK_TCK
}

/// The CPU times of process `pid` (`None`: this one); `None` when they cannot be read (not
/// Linux, or the process is gone).
pub fn proc_cpu(pid: Option<u32>) -> Option<ProcCpu> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    parse_stat(&std::fs::read_to_string(path).ok()?)
}

/// Parse a `/proc/<pid>/stat` line. The second field (the command name, in parentheses) may
/// hold spaces and parentheses itself, so fields are counted from the last `)`.
pub fn parse_stat(stat: &str) -> Option<ProcCpu> {
    let (_, rest) = stat.rsplit_once(')')?;
    // `rest` starts at field 3 (`state`): field k is at index k - 3.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |k: usize| -> Option<u64> { fields.get(k - 3)?.parse().ok() };
    Some(ProcCpu {
        utime: field(14)?,
        stime: field(15)?,
        cutime: field(16)?,
        cstime: field(17)?,
        starttime: field(22)?,
    })
}

/// The CPU times of every process whose `/proc/<pid>/comm` is `comm` (e.g. `postgres`: the
/// postmaster, its background processes and every backend), by `(pid, starttime)`. Empty where
/// `/proc` cannot be read. A process that ends while it is read is skipped.
pub fn cpu_of_processes_named(comm: &str) -> HashMap<(u32, u64), ProcCpu> {
    let mut found = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let named = std::fs::read_to_string(entry.path().join("comm"))
            .is_ok_and(|c| c.trim_end_matches('\n') == comm);
        if !named {
            continue;
        }
        if let Some(cpu) = proc_cpu(Some(pid)) {
            found.insert((pid, cpu.starttime), cpu);
        }
    }
    found
}

/// CPU ticks a group of processes spent between two readings of
/// [`cpu_of_processes_named`]: for each process present at the end, its time (children's
/// included) less its time at the start (0 if it started since). Time of a process that ended
/// in between is counted only through its parent's `cutime`/`cstime`, once the parent waited
/// for it (the postmaster waits for its backends), and then all of it, from before the start
/// too; a process that ended and was not waited for is missed.
pub fn cpu_ticks_since(
    before: &HashMap<(u32, u64), ProcCpu>,
    after: &HashMap<(u32, u64), ProcCpu>,
) -> u64 {
    after
        .iter()
        .map(|(key, cpu)| {
            let start = before.get(key).map_or(0, ProcCpu::with_children);
            cpu.with_children().saturating_sub(start)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTS: &str = "\
overlay / overlay rw,relatime 0 0
proc /proc proc rw 0 0
tmpfs /tmp tmpfs rw 0 0
/dev/vdb /work ext4 rw 0 0
/dev/vdc /work/my\\040disk xfs rw 0 0
";

    #[test]
    fn the_longest_mount_point_wins() {
        assert_eq!(
            fs_of(MOUNTS, Path::new("/tmp/x/bench.db")).as_deref(),
            Some("tmpfs")
        );
        assert_eq!(fs_of(MOUNTS, Path::new("/work/a")).as_deref(), Some("ext4"));
        assert_eq!(
            fs_of(MOUNTS, Path::new("/work/my disk/a")).as_deref(),
            Some("xfs")
        );
        assert_eq!(
            fs_of(MOUNTS, Path::new("/home/u")).as_deref(),
            Some("overlay")
        );
        // A path that merely shares a prefix with a mount point is not under it.
        assert_eq!(
            fs_of(MOUNTS, Path::new("/tmpx")).as_deref(),
            Some("overlay")
        );
    }

    #[test]
    fn status_lines_read_in_mb() {
        let status = "Name:\ttether\nVmHWM:\t  20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(status_mb(status, "VmHWM:"), Some(20.0));
        assert_eq!(status_mb(status, "VmRSS:"), Some(10.0));
        assert_eq!(status_mb(status, "VmSwap:"), None);
    }

    #[test]
    fn this_process_has_a_resident_size_on_linux() {
        if cfg!(target_os = "linux") {
            let (rss, peak) = rss_mb(None);
            assert!(rss.is_some() && peak.is_some());
        }
    }

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        // A command name with a space and a parenthesis; utime 7, stime 3, cutime 5, cstime 1,
        // starttime 4242.
        let stat = "123 (post gres) x) S 1 123 123 0 -1 4194560 100 0 0 0 7 3 5 1 20 0 1 0 \
                    4242 1000 10 18446744073709551615";
        let cpu = parse_stat(stat).expect("parsed");
        assert_eq!(
            cpu,
            ProcCpu {
                utime: 7,
                stime: 3,
                cutime: 5,
                cstime: 1,
                starttime: 4242
            }
        );
        assert_eq!(cpu.own(), 10);
        assert_eq!(cpu.with_children(), 16);
        assert_eq!(parse_stat("123 (x) S 1 2"), None);
        assert_eq!(ticks_ms(25), 250);
    }

    #[test]
    fn group_cpu_counts_new_processes_from_zero_and_ignores_ended_ones() {
        let cpu = |own: u64, children: u64, starttime: u64| ProcCpu {
            utime: own,
            stime: 0,
            cutime: children,
            cstime: 0,
            starttime,
        };
        let before = HashMap::from([((1, 10), cpu(100, 0, 10)), ((2, 20), cpu(50, 0, 20))]);
        // Process 2 ended (the parent, 1, waited for it: 60 ticks in its `cutime`); process 3
        // is new; pid 4 was reused by a new process (another starttime).
        let mut after = HashMap::from([((1, 10), cpu(110, 60, 10)), ((3, 30), cpu(5, 0, 30))]);
        after.insert((4, 41), cpu(7, 0, 41));
        let mut with_old = before.clone();
        with_old.insert((4, 40), cpu(1000, 0, 40));
        assert_eq!(cpu_ticks_since(&before, &after), 10 + 60 + 5 + 7);
        assert_eq!(cpu_ticks_since(&with_old, &after), 10 + 60 + 5 + 7);
    }

    #[test]
    fn this_process_has_cpu_times_on_linux() {
        if cfg!(target_os = "linux") {
            let cpu = proc_cpu(None).expect("/proc/self/stat");
            assert!(cpu.starttime > 0);
        }
    }
}
