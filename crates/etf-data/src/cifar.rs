//! CIFAR-10, binary version (`cifar-10-binary.tar.gz` from the CIFAR site).
//!
//! `data_batch_1.bin` … `data_batch_5.bin` (training) and `test_batch.bin` each hold records of
//! 3073 bytes: the label (0–9), then the 32×32 red, green and blue planes (channel-major).
//! The official batches have 10 000 records each; any positive whole number is accepted.

use std::path::{Path, PathBuf};

use tch::Tensor;

use crate::dataset::{Dataset, DatasetName};
use crate::error::{DataError, Result};
use crate::idx::check_labels;
use crate::split::Split;

/// Bytes per record: one label byte and 3 × 32 × 32 pixels.
pub const RECORD_BYTES: usize = 1 + 3 * 32 * 32;
/// Subfolder the official archive extracts to.
pub const ARCHIVE_DIR: &str = "cifar-10-batches-bin";
const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
const TEST_FILE: &str = "test_batch.bin";
const HINT: &str = "CIFAR-10 is not fetched by scripts/fetch-data: download the binary version \
     (cifar-10-binary.tar.gz) from https://www.cs.toronto.edu/~kriz/cifar.html and extract it \
     into DATA_ROOT/cifar10/ (the cifar-10-batches-bin/ folder it makes is found too)";

/// The folder holding the batches: `dir` itself or `dir/cifar-10-batches-bin`.
fn batches_dir(dir: &Path) -> Result<PathBuf> {
    let nested = dir.join(ARCHIVE_DIR);
    for candidate in [dir.to_path_buf(), nested] {
        if candidate.join(TRAIN_FILES[0]).is_file() {
            return Ok(candidate);
        }
    }
    crate::files::check_is_file(&dir.join(TRAIN_FILES[0]))?;
    Err(DataError::MissingFile {
        path: dir.join(TRAIN_FILES[0]),
        hint: HINT.into(),
    })
}

/// Reads one batch file, checking its size and labels; returns its bytes.
fn read_batch(path: &Path) -> Result<Vec<u8>> {
    crate::files::check_is_file(path)?;
    let bytes = std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => DataError::MissingFile {
            path: path.to_path_buf(),
            hint: HINT.into(),
        },
        _ => DataError::Io {
            path: path.to_path_buf(),
            source,
        },
    })?;
    if bytes.is_empty() || bytes.len() % RECORD_BYTES != 0 {
        return Err(DataError::RecordSize {
            path: path.to_path_buf(),
            record: RECORD_BYTES as u64,
            found: bytes.len() as u64,
        });
    }
    let labels: Vec<u8> = bytes.iter().step_by(RECORD_BYTES).copied().collect();
    check_labels(path, &labels, 10)?;
    Ok(bytes)
}

/// Turns the concatenated records of some batches into a normalised split `[N, 3, 32, 32]`.
fn records_split(records: &[u8]) -> Result<Split> {
    let n = (records.len() / RECORD_BYTES) as i64;
    let all = Tensor::f_from_slice(records)?.f_view([n, RECORD_BYTES as i64])?;
    let labels = all.f_select(1, 0)?.f_to_kind(tch::Kind::Int64)?;
    let pixels = all
        .f_narrow(1, 1, RECORD_BYTES as i64 - 1)?
        .f_reshape([n, 3, 32, 32])?;
    Ok(Split {
        features: crate::norm::CIFAR10.apply(&pixels)?,
        labels,
        num_classes: 10,
    })
}

/// Loads CIFAR-10 from `dir` (or `dir/cifar-10-batches-bin`).
pub fn load_cifar10(dir: &Path) -> Result<Dataset> {
    let dir = batches_dir(dir)?;
    let mut train = Vec::new();
    for name in TRAIN_FILES {
        train.extend_from_slice(&read_batch(&dir.join(name))?);
    }
    let test = read_batch(&dir.join(TEST_FILE))?;
    Ok(Dataset::assemble(
        DatasetName::Cifar10,
        records_split(&train)?,
        records_split(&test)?,
        vec![3, 32, 32],
    ))
}
