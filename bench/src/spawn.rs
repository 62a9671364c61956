//! Starts server processes on loopback and kills them when dropped.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Processes that die with this value.
pub struct Procs {
    pub children: Vec<Child>,
}

impl Procs {
    /// Spawns `binary args...` with output to `log`.
    pub fn spawn(&mut self, binary: &Path, args: &[String], log: &Path) -> anyhow::Result<u32> {
        let log = std::fs::File::create(log)?;
        let child = Command::new(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", binary.display()))?;
        let pid = child.id();
        self.children.push(child);
        Ok(pid)
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Resident set size of a process, in KiB.
pub fn rss_kb(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS for pid {pid}"))
}

/// CPU time (user and system, all threads, including ones that have exited) a process has
/// used so far.
pub fn cpu_time(pid: u32) -> anyhow::Result<std::time::Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces: utime and
    // stime are the 12th and 13th of them (proc(5) numbers them 14 and 15).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no CPU times in /proc/{pid}/stat"))
    };
    let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)?
        .filter(|t| *t > 0)
        .ok_or_else(|| anyhow::anyhow!("the system reports no clock tick rate"))?;
    Ok(std::time::Duration::from_secs_f64(
        (ticks(11)? + ticks(12)?) as f64 / per_second as f64,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn cpu_time_counts_what_this_process_burns() {
        let pid = std::process::id();
        let before = cpu_time(pid).unwrap();
        // Spin until the kernel's tick-granular count moves, or give up after a deadline.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut spins = 0u64;
        let after = loop {
            spins = std::hint::black_box(spins.wrapping_add(1));
            if spins.is_multiple_of(1_000_000) {
                let now = cpu_time(pid).unwrap();
                if now > before || Instant::now() > deadline {
                    break now;
                }
            }
        };
        assert!(
            after > before,
            "CPU time did not move: {before:?} then {after:?}"
        );
        assert!(after - before < Duration::from_secs(20));
    }

    #[test]
    fn cpu_time_of_a_missing_process_is_an_error() {
        // Above the kernel's pid_max ceiling (2^22), so no process has it.
        assert!(cpu_time(u32::MAX).is_err());
    }
}
