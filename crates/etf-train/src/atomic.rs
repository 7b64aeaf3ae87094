//! Atomic files: written to a temporary file beside the target, synced, and renamed over it, so
//! a crash leaves either the old or the new file, never a partial one. Every file a run writes
//! (checkpoints, tables, plots) goes through here.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A failed atomic write: which file, and why.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {source}", path.display())]
pub struct WriteError {
    /// The file being written (or its temporary sibling).
    pub path: PathBuf,
    /// The operating system's error.
    pub source: std::io::Error,
}

/// The temporary sibling `path` is first written to.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Renames `tmp` over `path` after syncing it, then syncs the directory.
pub fn commit(tmp: &Path, path: &Path) -> Result<(), WriteError> {
    let err = |p: &Path| {
        let path = p.to_path_buf();
        move |source| WriteError { path, source }
    };
    File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(err(tmp))?;
    fs::rename(tmp, path).map_err(err(path))?;
    if let Some(dir) = path.parent() {
        // Directory fsync makes the rename itself durable; not every filesystem supports it.
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("a.txt");
/// etf_train::atomic::write_atomic(&path, b"one").unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"one");
/// ```
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let tmp = temp_path(path);
    let err = |source| WriteError {
        path: tmp.clone(),
        source,
    };
    let mut f = File::create(&tmp).map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    drop(f);
    commit(&tmp, path)
}
