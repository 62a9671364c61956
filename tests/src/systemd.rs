//! Plays systemd for a daemon under test: a notify socket to read READY/WATCHDOG/RELOADING/
//! STOPPING from, and signals to send.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A bound `NOTIFY_SOCKET`.
pub struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    /// Binds `notify.sock` in `dir`.
    ///
    /// # Errors
    /// When the socket cannot be bound.
    pub fn bind(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path)?;
        socket.set_read_timeout(Some(Duration::from_millis(200)))?;
        Ok(NotifySocket { socket, path })
    }

    /// The path to give the daemon as `NOTIFY_SOCKET`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Receives notifications until one has the line `wanted`; returns that whole message.
    ///
    /// # Errors
    /// When none does within `deadline` (the error lists what came instead).
    pub fn expect(&self, wanted: &str, deadline: Duration) -> anyhow::Result<String> {
        let end = Instant::now() + deadline;
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < end {
            match self.socket.recv(&mut buf) {
                Ok(n) => {
                    let msg = String::from_utf8_lossy(&buf[..n]).to_string();
                    if msg.lines().any(|l| l == wanted) {
                        return Ok(msg);
                    }
                    seen.push(msg);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e.into()),
            }
        }
        anyhow::bail!("no {wanted} within {deadline:?}; got {seen:?}")
    }
}

/// Sends `signal` (e.g. "HUP", "TERM") to process `pid`.
///
/// # Errors
/// When `kill` cannot run or fails.
pub fn signal(pid: u32, signal: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()?;
    anyhow::ensure!(status.success(), "kill -{signal} {pid} failed");
    Ok(())
}

/// Waits up to `deadline` for `child` to exit; kills it if it does not. Returns its exit code
/// (None when killed or ended by a signal).
///
/// # Errors
/// When waiting fails.
pub fn wait_exit(
    child: &mut std::process::Child,
    deadline: Duration,
) -> anyhow::Result<Option<i32>> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status.code());
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
