//! Facts about where a benchmark ran, printed in every JSON line: the file system under the
//! database file, the commit the harness was built from, and resident memory (of this process,
//! or of a child server).

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
}
