//! scikit-learn's handwritten digits (`digits.csv.gz`): 1797 images of 8×8 pixels in 0–16.
//!
//! Each line holds 65 comma-separated integers, the 64 pixels (row-major) then the label
//! 0–9; there is no header. The data set has no official split: [`load_digits`] makes a
//! seeded, stratified one (by default 20 % of each class for testing, see
//! [`DEFAULT_TEST_FRACTION`]).

use std::path::Path;

use tch::Tensor;

use crate::dataset::{Dataset, DatasetName};
use crate::error::{DataError, Result};
use crate::files::{read_maybe_gz, FETCH_HINT};
use crate::norm;
use crate::rng::Rng;
use crate::split::Split;

/// Pixels per digit image.
const PIXELS: usize = 64;
/// Largest pixel value.
const MAX_PIXEL: u8 = 16;
/// Number of classes.
const CLASSES: usize = 10;

/// Fraction of each class put in the test split when none is given.
pub const DEFAULT_TEST_FRACTION: f64 = 0.2;

/// Raw digits: pixels `[N·64]` (0–16) and labels `[N]` (0–9).
#[derive(Clone, Debug, PartialEq)]
pub struct DigitsRaw {
    /// Row-major 8×8 pixels of each sample, concatenated.
    pub pixels: Vec<u8>,
    /// Labels.
    pub labels: Vec<u8>,
}

/// Parses one CSV field as an integer in `0..=max` (also accepting an integral float such as
/// `3.0`, as older scikit-learn files stored).
fn parse_field(field: &str, max: u8) -> Option<u8> {
    let field = field.trim();
    let value = match field.parse::<u8>() {
        Ok(v) => v,
        Err(_) => {
            let f = field.parse::<f64>().ok()?;
            if f.fract() != 0.0 || !(0.0..=255.0).contains(&f) {
                return None;
            }
            f as u8
        }
    };
    (value <= max).then_some(value)
}

/// Reads and validates `digits.csv.gz` (or an uncompressed copy).
pub fn read_digits(path: &Path) -> Result<DigitsRaw> {
    let bytes = read_maybe_gz(path, FETCH_HINT)?;
    let malformed = |line: usize, message: String| DataError::MalformedCsv {
        path: path.to_path_buf(),
        line,
        message,
    };
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        malformed(
            1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count(),
            "not UTF-8 text".into(),
        )
    })?;
    let mut raw = DigitsRaw {
        pixels: Vec::with_capacity(1797 * PIXELS),
        labels: Vec::with_capacity(1797),
    };
    // A final newline leaves one empty piece, which is not a line.
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.is_empty() {
        return Err(malformed(1, "the file has no data lines".into()));
    }
    for (i, line) in body.split('\n').enumerate() {
        parse_line(path, i, line, &mut raw)?;
    }
    Ok(raw)
}

/// Parses data line `i` (0-based) of `path` into `raw`: 64 pixels in 0..=16, then the label.
fn parse_line(path: &Path, i: usize, line: &str, raw: &mut DigitsRaw) -> Result<()> {
    let line_no = i + 1;
    let malformed = |message: String| DataError::MalformedCsv {
        path: path.to_path_buf(),
        line: line_no,
        message,
    };
    let fields: Vec<&str> = line.trim_end_matches('\r').split(',').collect();
    if fields.len() != PIXELS + 1 {
        return Err(malformed(format!(
            "expected {} comma-separated values (64 pixels, label), found {}",
            PIXELS + 1,
            fields.len()
        )));
    }
    for (col, field) in fields[..PIXELS].iter().enumerate() {
        let px = parse_field(field, MAX_PIXEL).ok_or_else(|| {
            malformed(format!(
                "pixel {} is {field:?}, not an integer in 0..=16",
                col + 1
            ))
        })?;
        raw.pixels.push(px);
    }
    let label_field = fields[PIXELS];
    let label = parse_field(label_field, u8::MAX)
        .ok_or_else(|| malformed(format!("label {label_field:?} is not an integer")))?;
    if usize::from(label) >= CLASSES {
        return Err(DataError::LabelOutOfRange {
            path: path.to_path_buf(),
            index: i,
            label: i64::from(label),
            num_classes: CLASSES,
        });
    }
    raw.labels.push(label);
    Ok(())
}

/// Seeded stratified split: for each class, `round(test_fraction · n_c)` of its samples,
/// chosen by `seed`, go to the test split. Returns (train, test) indices, each ascending.
pub fn stratified_split(
    labels: &[u8],
    num_classes: usize,
    test_fraction: f64,
    seed: u64,
) -> Result<(Vec<i64>, Vec<i64>)> {
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(DataError::InvalidConfig(format!(
            "test_fraction must be in (0, 1), got {test_fraction}"
        )));
    }
    let mut by_class: Vec<Vec<i64>> = vec![Vec::new(); num_classes];
    for (i, &l) in labels.iter().enumerate() {
        if let Some(members) = by_class.get_mut(usize::from(l)) {
            members.push(i as i64);
        }
    }
    let mut rng = Rng::new(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for members in &mut by_class {
        rng.shuffle(members);
        let n_test = (test_fraction * members.len() as f64).round() as usize;
        test.extend_from_slice(&members[..n_test]);
        train.extend_from_slice(&members[n_test..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    Ok((train, test))
}

/// Loads the digits from `path` as `[N, 1, 8, 8]` images normalised with [`norm::DIGITS`],
/// split by [`stratified_split`] with `test_fraction` and `seed`.
pub fn load_digits(path: &Path, test_fraction: f64, seed: u64) -> Result<Dataset> {
    let raw = read_digits(path)?;
    let n = raw.labels.len() as i64;
    let pixels = Tensor::f_from_slice(&raw.pixels)?.f_view([n, 1, 8, 8])?;
    let all = Split {
        features: norm::DIGITS.apply(&pixels)?,
        labels: Tensor::f_from_slice(&raw.labels)?.f_to_kind(tch::Kind::Int64)?,
        num_classes: CLASSES,
    };
    let (train_idx, test_idx) = stratified_split(&raw.labels, CLASSES, test_fraction, seed)?;
    for (idx, split) in [(&train_idx, "train"), (&test_idx, "test")] {
        if idx.is_empty() {
            return Err(DataError::EmptySplit {
                path: path.to_path_buf(),
                split,
                samples: raw.labels.len(),
            });
        }
    }
    let train = all.subset(&train_idx)?;
    let test = all.subset(&test_idx)?;
    Ok(Dataset::assemble(
        DatasetName::Digits,
        train,
        test,
        vec![1, 8, 8],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_parse_strictly() {
        assert_eq!(parse_field("16", 16), Some(16));
        assert_eq!(parse_field(" 3.0", 16), Some(3));
        assert_eq!(parse_field("17", 16), None);
        assert_eq!(parse_field("2.5", 16), None);
        assert_eq!(parse_field("-1", 16), None);
        assert_eq!(parse_field("x", 16), None);
        assert_eq!(parse_field("", 16), None);
    }

    #[test]
    fn stratified_split_is_stratified_seeded_and_disjoint() {
        let labels: Vec<u8> = (0..100).map(|i| (i % 4) as u8).collect();
        let (train, test) = stratified_split(&labels, 4, 0.2, 1).unwrap();
        assert_eq!((train.len(), test.len()), (80, 20));
        for c in 0..4u8 {
            let n = test.iter().filter(|&&i| labels[i as usize] == c).count();
            assert_eq!(n, 5, "class {c}");
        }
        let mut all: Vec<i64> = train.iter().chain(&test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(stratified_split(&labels, 4, 0.2, 1).unwrap().1, test);
        assert_ne!(stratified_split(&labels, 4, 0.2, 2).unwrap().1, test);
        assert!(stratified_split(&labels, 4, 1.0, 1).is_err());
        assert!(stratified_split(&labels, 4, f64::NAN, 1).is_err());
    }
}
