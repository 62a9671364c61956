//! `pld snapshot save|restore`: back up the catalog to a file and restore it.

use std::path::PathBuf;

use anyhow::Context as _;
use futures::StreamExt;
use pld_proto::v1::{SnapshotChunk, SnapshotSaveRequest};
use serde_json::json;

use super::Context;
use crate::output::{out, print_json, Format};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Write a consistent copy of the catalog to FILE.
    Save { file: PathBuf },
    /// Replace the catalog with the copy in FILE (watchers must re-list afterwards).
    Restore { file: PathBuf },
}

/// Chunk size when uploading a backup.
const CHUNK: usize = 64 * 1024;

pub async fn run(ctx: &Context, cmd: Command) -> anyhow::Result<()> {
    let client = ctx.client()?;
    match cmd {
        Command::Save { file } => {
            let data = client
                .call(|mut s| async move {
                    let mut stream = s
                        .cluster()
                        .snapshot_save(SnapshotSaveRequest {})
                        .await?
                        .into_inner();
                    let mut data = Vec::new();
                    while let Some(chunk) = stream.next().await {
                        data.extend_from_slice(&chunk?.data);
                    }
                    Ok(tonic::Response::new(data))
                })
                .await?;
            write_durably(&file, &data)?;
            match ctx.format {
                Format::Json => print_json(&json!({"file": file, "bytes": data.len()})),
                Format::Table => out!("saved {} bytes to {}", data.len(), file.display()),
            }
        }
        Command::Restore { file } => {
            let data =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let r = client
                .call_mutation(|mut s| {
                    let chunks: Vec<SnapshotChunk> = data
                        .chunks(CHUNK)
                        .map(|c| SnapshotChunk { data: c.to_vec() })
                        .collect();
                    async move {
                        s.cluster()
                            .snapshot_restore(futures::stream::iter(chunks))
                            .await
                    }
                })
                .await?;
            match ctx.format {
                Format::Json => print_json(&json!({"file": file, "revision": r.revision})),
                Format::Table => out!("restored {} at revision {}", file.display(), r.revision),
            }
        }
    }
    Ok(())
}

/// Writes `data` to `file` so that once this returns a crash cannot lose it: to a file beside
/// it, fsynced, renamed over `file`, then the folder fsynced (the rename lives in the folder).
/// A failed save never leaves half a file at `file`.
fn write_durably(file: &std::path::Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let tmp = file.with_extension("partial");
    let mut out =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    out.write_all(data)
        .and_then(|()| out.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    drop(out);
    std::fs::rename(&tmp, file)
        .with_context(|| format!("moving the backup to {}", file.display()))?;
    let folder = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    std::fs::File::open(folder)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing the folder {}", folder.display()))?;
    Ok(())
}
