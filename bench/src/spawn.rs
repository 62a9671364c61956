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

/// A free loopback port.
pub fn port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
