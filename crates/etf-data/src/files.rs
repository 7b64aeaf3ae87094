//! Reading whole files, transparently gunzipped.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::error::{DataError, Result};

/// What to say when a file of a data set fetched by `scripts/fetch-data` is missing.
pub(crate) const FETCH_HINT: &str =
    "run `scripts/fetch-data` from the repository root, or point the data root (ETF_DATA_DIR or the `root` argument) at a copy";

/// The two bytes every gzip stream starts with (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// What is at `path` when it is there but not a readable file (links followed): a directory,
/// a FIFO (reading it would block), a device or socket, or a symbolic link to nothing. `None`
/// for a regular file and for nothing at all.
pub(crate) fn not_a_file(path: &Path) -> Option<String> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => None,
        Ok(m) => {
            let t = m.file_type();
            Some(
                if t.is_dir() {
                    "a directory"
                } else if t.is_fifo() {
                    "a FIFO (named pipe)"
                } else if t.is_socket() {
                    "a socket"
                } else {
                    "a device"
                }
                .to_string(),
            )
        }
        Err(_) => std::fs::read_link(path).ok().map(|target| {
            format!(
                "a symbolic link to {}, which does not exist",
                target.display()
            )
        }),
    }
}

/// `NotAFile` when something other than a file is at `path`.
pub(crate) fn check_is_file(path: &Path) -> Result<()> {
    match not_a_file(path) {
        Some(what) => Err(DataError::NotAFile {
            path: path.to_path_buf(),
            what,
        }),
        None => Ok(()),
    }
}

/// Picks `dir/name` if it is a file, else `dir/name.gz`; `NotAFile` if something else is at
/// either, `MissingFile` (naming `dir/name`) if neither is there.
pub(crate) fn find_maybe_gz(dir: &Path, name: &str, hint: &str) -> Result<PathBuf> {
    let raw = dir.join(name);
    if raw.is_file() {
        return Ok(raw);
    }
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    check_is_file(&raw)?;
    check_is_file(&gz)?;
    Err(DataError::MissingFile {
        path: raw,
        hint: format!("neither it nor its .gz was found; {hint}"),
    })
}

/// Reads the whole file, gunzipping it when it starts with the gzip magic (whatever its name).
pub(crate) fn read_maybe_gz(path: &Path, hint: &str) -> Result<Vec<u8>> {
    check_is_file(path)?;
    let bytes = std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            DataError::MissingFile {
                path: path.to_path_buf(),
                hint: hint.to_string(),
            }
        } else {
            DataError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    if !bytes.starts_with(&GZIP_MAGIC) {
        return Ok(bytes);
    }
    // The gzip trailer stores the uncompressed size mod 2³²: a good capacity hint, capped so
    // that a corrupt trailer cannot make us reserve absurd amounts.
    let hint_len = bytes
        .len()
        .checked_sub(4)
        .and_then(|at| bytes.get(at..))
        .and_then(|t| t.try_into().ok())
        .map(|t: [u8; 4]| u32::from_le_bytes(t) as usize)
        .unwrap_or(0)
        .min(1 << 30);
    let mut out = Vec::with_capacity(hint_len);
    MultiGzDecoder::new(bytes.as_slice())
        .read_to_end(&mut out)
        .map_err(|source| DataError::Gzip {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(out)
}
