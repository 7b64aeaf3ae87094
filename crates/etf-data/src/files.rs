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

/// Picks `dir/name` if present, else `dir/name.gz`; `MissingFile` (naming `dir/name`) if neither.
pub(crate) fn find_maybe_gz(dir: &Path, name: &str, hint: &str) -> Result<PathBuf> {
    let raw = dir.join(name);
    if raw.is_file() {
        return Ok(raw);
    }
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(DataError::MissingFile {
        path: raw,
        hint: format!("neither it nor its .gz was found; {hint}"),
    })
}

/// Reads the whole file, gunzipping it when it starts with the gzip magic (whatever its name).
pub(crate) fn read_maybe_gz(path: &Path, hint: &str) -> Result<Vec<u8>> {
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
