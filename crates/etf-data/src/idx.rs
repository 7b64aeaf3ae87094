//! IDX files (the format of MNIST and Fashion-MNIST), raw or gzipped.
//!
//! Layout (LeCun's): a big-endian `u32` magic `0x0000_08NN` (`08` = unsigned bytes, `NN` = number
//! of dims), `NN` big-endian `u32` dims, then the row-major `u8` data. Images files have magic
//! `0x0000_0803` (`[N, rows, cols]`), labels files `0x0000_0801` (`[N]`).

use std::path::{Path, PathBuf};

use tch::Tensor;

use crate::dataset::{Dataset, DatasetName};
use crate::error::{DataError, Result};
use crate::files::{find_maybe_gz, read_maybe_gz, FETCH_HINT};
use crate::norm::Normalization;
use crate::split::Split;

/// Magic number of an IDX file of `u8` images `[N, rows, cols]`.
pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of `u8` labels `[N]`.
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

/// The contents of an IDX file of unsigned bytes.
#[derive(Clone, Debug)]
pub struct IdxFile {
    /// The file it was read from.
    pub path: PathBuf,
    /// The dims of its header, e.g. `[60000, 28, 28]`.
    pub dims: Vec<usize>,
    bytes: Vec<u8>,
    offset: usize,
}

impl IdxFile {
    /// The data after the header, `prod(dims)` bytes, row-major.
    pub fn data(&self) -> &[u8] {
        &self.bytes[self.offset..]
    }

    /// Number of items (the first dim).
    pub fn count(&self) -> usize {
        self.dims.first().copied().unwrap_or(0)
    }
}

/// Reads an IDX file of `u8` with the given magic number (gunzipped if it is gzip), checking
/// the magic and that the size matches the dims exactly.
pub fn read_idx(path: &Path, magic: u32) -> Result<IdxFile> {
    let bytes = read_maybe_gz(path, FETCH_HINT)?;
    let (dims, offset) = parse_header(path, &bytes, magic)?;
    Ok(IdxFile {
        path: path.to_path_buf(),
        dims,
        bytes,
        offset,
    })
}

/// Checks an IDX header against `magic` and the length of `bytes`; returns dims and data offset.
fn parse_header(path: &Path, bytes: &[u8], magic: u32) -> Result<(Vec<usize>, usize)> {
    let found_len = bytes.len() as u64;
    let word = |i: usize| -> Option<u32> {
        let b = bytes.get(4 * i..4 * i + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let truncated = |dims: Vec<u64>, needed: u64| DataError::Truncated {
        path: path.to_path_buf(),
        dims,
        needed,
        found: found_len,
    };
    let found_magic = word(0).ok_or_else(|| truncated(vec![], 4))?;
    if found_magic != magic {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            expected: magic,
            found: found_magic,
            what: match magic {
                IDX_IMAGES_MAGIC => "IDX u8 images, 3 dims",
                IDX_LABELS_MAGIC => "IDX u8 labels, 1 dim",
                _ => "IDX u8",
            },
        });
    }
    let ndims = (magic & 0xff) as usize;
    let header = 4 * (1 + ndims);
    let dims: Vec<u64> = (1..=ndims).map_while(word).map(u64::from).collect();
    if dims.len() < ndims {
        return Err(truncated(dims, header as u64));
    }
    // u64 arithmetic: at most 2³²·… overflows only for absurd headers, reported as such.
    let needed = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .and_then(|p| p.checked_add(header as u64))
        .unwrap_or(u64::MAX);
    if found_len < needed {
        return Err(truncated(dims, needed));
    }
    if found_len > needed {
        return Err(DataError::SizeMismatch {
            path: path.to_path_buf(),
            dims,
            expected: needed,
            found: found_len,
        });
    }
    Ok((dims.iter().map(|&d| d as usize).collect(), header))
}

/// Checks that every label is below `num_classes`.
pub(crate) fn check_labels(path: &Path, labels: &[u8], num_classes: usize) -> Result<()> {
    match labels.iter().position(|&l| usize::from(l) >= num_classes) {
        Some(index) => Err(DataError::LabelOutOfRange {
            path: path.to_path_buf(),
            index,
            label: i64::from(labels[index]),
            num_classes,
        }),
        None => Ok(()),
    }
}

/// Reads an images file and its labels file and makes a normalised split `[N, 1, rows, cols]`.
fn idx_split(
    images: &IdxFile,
    labels: &IdxFile,
    norm: &Normalization,
    classes: usize,
) -> Result<Split> {
    if images.count() != labels.count() {
        return Err(DataError::CountMismatch {
            images_path: images.path.clone(),
            images: images.count(),
            labels_path: labels.path.clone(),
            labels: labels.count(),
        });
    }
    check_labels(&labels.path, labels.data(), classes)?;
    let bad = |reason| DataError::BadDims {
        path: images.path.clone(),
        dims: images.dims.iter().map(|&d| d as u64).collect(),
        reason,
    };
    if images.count() == 0 {
        return Err(bad("the file holds no images"));
    }
    if images.dims[1] == 0 || images.dims[2] == 0 {
        return Err(bad("an image needs at least one row and one column"));
    }
    let shape: Vec<i64> = [images.dims[0], 1, images.dims[1], images.dims[2]]
        .iter()
        .map(|&d| d as i64)
        .collect();
    // One host→tensor copy of the bytes; conversion and normalisation run in libtorch.
    let raw = Tensor::f_from_slice(images.data())?.f_view(shape.as_slice())?;
    let features = norm.apply(&raw)?;
    let labels = Tensor::f_from_slice(labels.data())?.f_to_kind(tch::Kind::Int64)?;
    Ok(Split {
        features,
        labels,
        num_classes: classes,
    })
}

/// File names of the four IDX files of a split pair, without `.gz`.
const IDX_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Loads MNIST or Fashion-MNIST (`name` picks class names and normalisation) from the four IDX
/// files in `dir`, each raw or `.gz`. The files are read and gunzipped in parallel.
pub fn load_idx_dataset(dir: &Path, name: DatasetName) -> Result<Dataset> {
    let paths = IDX_FILES
        .iter()
        .map(|f| find_maybe_gz(dir, f, FETCH_HINT))
        .collect::<Result<Vec<_>>>()?;
    let magics = [
        IDX_IMAGES_MAGIC,
        IDX_LABELS_MAGIC,
        IDX_IMAGES_MAGIC,
        IDX_LABELS_MAGIC,
    ];
    let files = std::thread::scope(|scope| {
        let handles: Vec<_> = paths
            .iter()
            .zip(magics)
            .map(|(p, m)| scope.spawn(move || read_idx(p, m)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect::<Result<Vec<_>>>()
    })?;
    let norm = name.normalization().unwrap_or(crate::norm::MNIST);
    let classes = name.class_names().len();
    let train = idx_split(&files[0], &files[1], &norm, classes)?;
    let test = idx_split(&files[2], &files[3], &norm, classes)?;
    let sample_shape = train.sample_shape();
    if test.sample_shape() != sample_shape {
        return Err(DataError::ShapeMismatch {
            path: files[2].path.clone(),
            expected: sample_shape,
            found: test.sample_shape(),
        });
    }
    Ok(Dataset::assemble(name, train, test, sample_shape))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(magic: u32, dims: &[u32]) -> Vec<u8> {
        std::iter::once(magic)
            .chain(dims.iter().copied())
            .flat_map(u32::to_be_bytes)
            .collect()
    }

    #[test]
    fn header_checks() {
        let p = Path::new("x");
        let mut ok = header(IDX_IMAGES_MAGIC, &[2, 3, 4]);
        ok.extend(vec![0u8; 24]);
        assert_eq!(
            parse_header(p, &ok, IDX_IMAGES_MAGIC).unwrap(),
            (vec![2, 3, 4], 16)
        );
        assert!(matches!(
            parse_header(p, &ok, IDX_LABELS_MAGIC),
            Err(DataError::BadMagic {
                expected: 0x801,
                found: 0x803,
                ..
            })
        ));
        assert!(matches!(
            parse_header(p, &ok[..10], IDX_IMAGES_MAGIC),
            Err(DataError::Truncated {
                needed: 16,
                found: 10,
                ..
            })
        ));
        assert!(matches!(
            parse_header(p, &ok[..2], IDX_IMAGES_MAGIC),
            Err(DataError::Truncated {
                needed: 4,
                found: 2,
                ..
            })
        ));
        let mut long = ok.clone();
        long.push(0);
        assert!(matches!(
            parse_header(p, &long, IDX_IMAGES_MAGIC),
            Err(DataError::SizeMismatch {
                expected: 40,
                found: 41,
                ..
            })
        ));
        let huge = header(IDX_IMAGES_MAGIC, &[u32::MAX, u32::MAX, u32::MAX]);
        assert!(matches!(
            parse_header(p, &huge, IDX_IMAGES_MAGIC),
            Err(DataError::Truncated {
                needed: u64::MAX,
                ..
            })
        ));
    }
}
