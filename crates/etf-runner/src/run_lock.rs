//! The exclusive lock of a run directory: one writer at a time.
//!
//! An advisory `flock` on `run.lock` in the directory, taken before anything there is read or
//! written and held for the run's whole life (`--force` and `--resume` included). The kernel
//! releases it when the process ends, however it ends, so a killed run never leaves a stale
//! lock. The file names its holder (pid, host, start time) for the error a second writer gets;
//! it stays in the directory (removing it would let two writers lock two different files).

use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The lock file's name in a run directory.
pub const LOCK: &str = "run.lock";

/// A held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    path: PathBuf,
}

impl RunLock {
    /// Creates `dir` if needed and locks it, or fails at once naming the holder.
    pub fn acquire(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(LOCK);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = match holder.trim() {
                    "" => "a process that has not written its name yet".to_string(),
                    h => h.to_string(),
                };
                bail!(
                    "{} is in use by another run: {holder} (lock file {}); wait for it to end \
                     or choose another --out",
                    dir.display(),
                    path.display()
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
        let holder = holder_line();
        file.set_len(0)
            .and_then(|()| file.write_all(holder.as_bytes()))
            .and_then(|()| file.sync_data())
            .with_context(|| format!("cannot write the lock file {}", path.display()))?;
        Ok(Self { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `pid 1234 on host, started 2026-12-01 15:10:03 UTC`.
fn holder_line() -> String {
    let host = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| {
            std::fs::read_to_string(p)
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "an unknown host".into());
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "pid {} on {host}, started {}\n",
        std::process::id(),
        utc(secs)
    )
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a Unix time (the civil calendar from days since 1970).
fn utc(secs: u64) -> String {
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_796_137_803), "2026-12-01 15:10:03 UTC");
    }

    #[test]
    fn a_second_lock_on_the_same_directory_fails_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("a/seed-0");
        let held = RunLock::acquire(&run).unwrap();
        // flock locks belong to the open file description, so a second open in this process
        // conflicts as another process would.
        let err = format!("{:#}", RunLock::acquire(&run).unwrap_err());
        let pid = format!("pid {} on ", std::process::id());
        assert!(
            err.contains("in use by another run") && err.contains(&pid) && err.contains("UTC"),
            "{err}"
        );
        drop(held);
        RunLock::acquire(&run).unwrap();
    }
}
