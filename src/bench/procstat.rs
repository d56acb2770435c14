//! What a process costs, from `/proc` (Linux): CPU time (utime + stime from
//! `/proc/PID/stat`) and memory (VmRSS, VmHWM from `/proc/PID/status`).
//! Elsewhere these read as `None` and the report leaves them out.

use std::time::Duration;

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcSample {
    /// User + system CPU time so far.
    pub cpu: Duration,
    /// Resident set size now (KiB).
    pub rss_kib: u64,
    /// Peak resident set size (KiB).
    pub hwm_kib: u64,
}

/// Read `pid` (`None`: this process), or `None` if `/proc` cannot tell.
pub fn sample(pid: Option<u32>) -> Option<ProcSample> {
    let dir = match pid {
        Some(p) => format!("/proc/{p}"),
        None => "/proc/self".to_string(),
    };
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    let ticks = cpu_ticks(&stat)?;
    let hz = clock_ticks_per_second();
    Some(ProcSample {
        cpu: Duration::from_secs_f64(ticks as f64 / hz as f64),
        rss_kib: status_kib(&status, "VmRSS:")?,
        hwm_kib: status_kib(&status, "VmHWM:")?,
    })
}

/// CPU time (user + system) of process `pid` so far, or `None` if `/proc`
/// cannot tell.
pub fn cpu_of(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = cpu_ticks(&stat)?;
    Some(Duration::from_secs_f64(
        ticks as f64 / clock_ticks_per_second() as f64,
    ))
}

/// Several processes read as one (CPU and memory added up), or `None` when
/// `pids` is empty or any of them cannot be read.
pub fn sample_all(pids: &[u32]) -> Option<ProcSample> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().try_fold(ProcSample::default(), |sum, &pid| {
        let s = sample(Some(pid))?;
        Some(ProcSample {
            cpu: sum.cpu + s.cpu,
            rss_kib: sum.rss_kib + s.rss_kib,
            hwm_kib: sum.hwm_kib + s.hwm_kib,
        })
    })
}

/// utime + stime (fields 14 and 15) from a `/proc/PID/stat` line. The command
/// name (field 2) may hold spaces and parentheses, so count from its last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14 → index 11.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// `VmRSS:   1234 kB` → 1234.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `sysconf(_SC_CLK_TCK)` without libc: the kernel passes it in the aux
/// vector as `AT_CLKTCK` (17). 100 on every mainstream Linux when unreadable.
fn clock_ticks_per_second() -> u64 {
    const AT_CLKTCK: u64 = 17;
    let Ok(auxv) = std::fs::read("/proc/self/auxv") else {
        return 100;
    };
    let words: Vec<u64> = auxv
        .chunks_exact(8)
        .map(|c| u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect();
    words
        .chunks_exact(2)
        .find(|kv| kv[0] == AT_CLKTCK)
        .map(|kv| kv[1])
        .filter(|&hz| hz > 0)
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_tricky_command_name() {
        let stat = "4242 (re (serv) oice) S 1 4242 4242 0 -1 4194304 500 0 0 0 250 75 0 0 20 0 9 0 100 1000 200";
        assert_eq!(cpu_ticks(stat), Some(325));
        assert_eq!(cpu_ticks("garbage"), None);
    }

    #[test]
    fn status_lines() {
        let s = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(status_kib(s, "VmRSS:"), Some(1024));
        assert_eq!(status_kib(s, "VmHWM:"), Some(2048));
        assert_eq!(status_kib(s, "VmSwap:"), None);
    }

    #[test]
    fn this_process_can_be_read_on_linux() {
        if cfg!(target_os = "linux") {
            let s = sample(None).expect("/proc/self");
            assert!(s.rss_kib > 0 && s.hwm_kib >= s.rss_kib);
            assert!(clock_ticks_per_second() >= 100);
        }
    }
}
