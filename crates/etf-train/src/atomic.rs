//! Atomic files: written to a temporary file beside the target, synced, and renamed over it, so
//! a crash leaves either the old or the new file, never a partial one. Every file a run writes
//! (checkpoints, tables, plots) goes through here.
//!
//! Temporary names are unique per process and write (`.<stem>.<pid>-<n>.tmp.<ext>`), so two
//! writers never write into the same temporary file, and a failed write removes its own. A
//! process killed mid-write leaves its temporary file; [`remove_stale_temps`] clears them.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A failed atomic write: which file, and why.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {source}", path.display())]
pub struct WriteError {
    /// The file being written (or its temporary sibling).
    pub path: PathBuf,
    /// The operating system's error.
    pub source: std::io::Error,
}

/// Marks a temporary name; see [`is_temp_name`].
const TEMP_MARK: &str = ".tmp";

/// A fresh temporary sibling of `path`: hidden, unique to this process and call, and ending in
/// the target's extension (writers such as the PNG encoder pick the format from it).
pub fn temp_path(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    path.with_file_name(format!(
        ".{stem}.{}-{n}{TEMP_MARK}{ext}",
        std::process::id()
    ))
}

/// Whether `name` is a temporary name [`temp_path`] makes.
pub fn is_temp_name(name: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    // `.<stem>.<pid>-<n>.tmp[.<ext>]`: the part before `.tmp` ends in `.<digits>-<digits>`.
    let Some(head) = name.rfind(TEMP_MARK).map(|i| &name[..i]) else {
        return false;
    };
    name.starts_with('.')
        && head
            .rsplit_once('.')
            .and_then(|(_, id)| id.split_once('-'))
            .is_some_and(|(pid, n)| digits(pid) && digits(n))
}

/// Removes the temporary files that writers killed mid-write left in `dir`. Only safe while no
/// other process writes there (the run directory's lock is held). Returns how many it removed.
pub fn remove_stale_temps(dir: &Path) -> Result<usize, WriteError> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WriteError { path, source }
    };
    let mut removed = 0;
    for entry in fs::read_dir(dir).map_err(err(dir))? {
        let entry = entry.map_err(err(dir))?;
        let name = entry.file_name();
        if is_temp_name(&name.to_string_lossy()) && entry.path().is_file() {
            fs::remove_file(entry.path()).map_err(err(&entry.path()))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Renames `tmp` over `path` after syncing it, then syncs the directory. On failure `tmp` is
/// removed.
pub fn commit(tmp: &Path, path: &Path) -> Result<(), WriteError> {
    let err = |p: &Path| {
        let path = p.to_path_buf();
        move |source| WriteError { path, source }
    };
    let done = File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(err(tmp))
        .and_then(|()| fs::rename(tmp, path).map_err(err(path)));
    if let Err(e) = done {
        let _ = fs::remove_file(tmp);
        return Err(e);
    }
    if let Some(dir) = path.parent() {
        // Directory fsync makes the rename itself durable; not every filesystem supports it.
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// Writes `path` atomically through `write`, which receives the temporary path to create (for
/// writers that open the file themselves, such as image encoders). When `write` or the commit
/// fails, the temporary file is removed and `write`'s error is returned as is.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("a.txt");
/// etf_train::atomic::write_atomic_with(&path, |tmp| std::fs::write(tmp, b"one")).unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"one");
/// ```
pub fn write_atomic_with<E: From<WriteError>>(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let tmp = temp_path(path);
    if let Err(e) = write(&tmp) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(commit(&tmp, path)?)
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
    write_atomic_with(path, |tmp| {
        let err = |source| WriteError {
            path: tmp.to_path_buf(),
            source,
        };
        let mut f = File::create(tmp).map_err(err)?;
        f.write_all(bytes).map_err(err)
    })
}

impl From<WriteError> for std::io::Error {
    fn from(e: WriteError) -> Self {
        std::io::Error::new(e.source.kind(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn temporary_names_are_unique_hidden_and_keep_the_extension() {
        let p = Path::new("/x/plot.png");
        let (a, b) = (temp_path(p), temp_path(p));
        assert_ne!(a, b);
        let name = a.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with(".plot.") && name.ends_with(".tmp.png"),
            "{name}"
        );
        assert!(name.contains(&std::process::id().to_string()), "{name}");
        assert!(is_temp_name(name));
        for other in ["plot.png", ".plot.png", "run.lock", ".a.tmp", "x.tmp.png"] {
            assert!(!is_temp_name(other), "{other}");
        }
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.safetensors");
        // The writer fails half-way, as on a full disk.
        let r: Result<(), std::io::Error> = write_atomic_with(&path, |tmp| {
            fs::write(tmp, b"half")?;
            Err(std::io::Error::other("no space left on device"))
        });
        assert!(r.is_err());
        assert_eq!(names(dir.path()), Vec::<String>::new());
        // The commit fails (the target is a non-empty directory): the temporary file goes too.
        let blocked = dir.path().join("blocked");
        fs::create_dir_all(blocked.join("inside")).unwrap();
        let err = write_atomic(&blocked, b"x").unwrap_err();
        assert!(err.path.ends_with("blocked"), "{err}");
        assert_eq!(names(dir.path()), ["blocked"]);
    }

    #[test]
    fn stale_temporary_files_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let stale = temp_path(&dir.path().join("metrics.csv"));
        fs::write(&stale, b"partial").unwrap();
        fs::write(dir.path().join("metrics.csv"), b"kept").unwrap();
        fs::write(dir.path().join("run.lock"), b"kept").unwrap();
        assert_eq!(remove_stale_temps(dir.path()).unwrap(), 1);
        assert_eq!(names(dir.path()), ["metrics.csv", "run.lock"]);
    }
}
