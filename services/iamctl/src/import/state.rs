//! The import's state file: how many batches of which input are done, and
//! the counts so far, so that the same command started again after an
//! interruption (Ctrl-C, `kill -9`, a lost connection, a restarted service)
//! skips them. It is written after each batch the service has answered,
//! atomically (a new file renamed over the old), and removed when the
//! import completes. A batch in flight when the import stopped is simply
//! done again: its users that exist are then found and left unchanged.

use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::{Counts, ImportArgs};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Saved {
    /// Which input: its size and modification time.
    input: String,
    batch_size: usize,
    done_batches: u64,
    counts: Counts,
}

/// The progress of an import that can be resumed.
#[derive(Debug)]
pub(super) struct Progress {
    pub(super) path: PathBuf,
    input: String,
    batch_size: usize,
    pub(super) done_batches: u64,
    pub(super) counts: Counts,
}

impl Progress {
    /// The state of `args`' import: resumed from its file when that file
    /// describes the same input and batch size, else new. `None` when there
    /// is nowhere to keep it (standard input without `--state`).
    pub(super) fn open(args: &ImportArgs) -> anyhow::Result<Option<Self>> {
        let path = match (&args.state, args.file.as_str()) {
            (Some(path), _) => PathBuf::from(path),
            (None, "-") => return Ok(None),
            (None, file) => PathBuf::from(format!("{file}.import-state")),
        };
        let input = match args.file.as_str() {
            "-" => "standard input".to_owned(),
            file => {
                let metadata =
                    std::fs::metadata(file).with_context(|| format!("cannot read {file}"))?;
                let modified = metadata
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                format!("{} bytes, modified {modified}", metadata.len())
            }
        };
        let mut progress = Progress {
            path,
            input,
            batch_size: args.batch_size,
            done_batches: 0,
            counts: Counts::default(),
        };
        if let Ok(text) = std::fs::read_to_string(&progress.path)
            && let Ok(saved) = serde_json::from_str::<Saved>(&text)
            && saved.input == progress.input
            && saved.batch_size == progress.batch_size
        {
            progress.done_batches = saved.done_batches;
            progress.counts = saved.counts;
        }
        Ok(Some(progress))
    }

    /// Records one more batch done, with the counts so far.
    pub(super) fn record_batch(&mut self, counts: Counts) -> anyhow::Result<()> {
        self.done_batches += 1;
        self.counts = counts;
        let saved = Saved {
            input: self.input.clone(),
            batch_size: self.batch_size,
            done_batches: self.done_batches,
            counts,
        };
        let temporary = self.path.with_extension("import-state.new");
        std::fs::write(&temporary, serde_json::to_vec(&saved)?)
            .with_context(|| format!("cannot write {}", temporary.display()))?;
        std::fs::rename(&temporary, &self.path)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    /// The import completed: nothing to resume.
    pub(super) fn finish(self) -> anyhow::Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(error).with_context(|| format!("cannot remove {}", self.path.display()))
            }
            _ => Ok(()),
        }
    }
}
