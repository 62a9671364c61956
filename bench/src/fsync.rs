//! The disk's own latency for a small write plus fsync: no durable write can be faster.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use hdrhistogram::Histogram;

/// `n` times: write 256 bytes to a file in `dir` and fsync it.
pub fn latency(dir: &Path, n: usize) -> anyhow::Result<Histogram<u64>> {
    let mut h = Histogram::<u64>::new(3)?;
    let mut f = std::fs::File::create(dir.join("fsync-probe"))?;
    for _ in 0..n {
        let start = Instant::now();
        f.write_all(&[7u8; 256])?;
        f.sync_data()?;
        h.record(start.elapsed().as_micros() as u64)?;
    }
    Ok(h)
}
