//! Host input: borrowed row-major f32/f64 matrices and integer labels, and the checks every
//! entry point shares, so bad input gets the same [`MetricsError`] everywhere.

use crate::MetricsError;

/// Real values borrowed from the caller, in f32 or f64 (converted to f64 as they are read).
#[derive(Clone, Copy, Debug)]
pub enum Values<'a> {
    /// Single precision.
    F32(&'a [f32]),
    /// Double precision.
    F64(&'a [f64]),
}

impl Values<'_> {
    /// The number of values.
    pub fn len(&self) -> usize {
        match self {
            Values::F32(v) => v.len(),
            Values::F64(v) => v.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `i` in f64.
    pub(crate) fn get(&self, i: usize) -> f64 {
        match self {
            Values::F32(v) => f64::from(v[i]),
            Values::F64(v) => v[i],
        }
    }

    /// The values `start..start + out.len()` converted into `out`.
    pub(crate) fn copy_to_f64(&self, start: usize, out: &mut [f64]) {
        let end = start + out.len();
        match self {
            Values::F32(v) => {
                for (o, &x) in out.iter_mut().zip(&v[start..end]) {
                    *o = f64::from(x);
                }
            }
            Values::F64(v) => out.copy_from_slice(&v[start..end]),
        }
    }

    /// How many values are NaN or infinite.
    pub(crate) fn count_non_finite(&self) -> u64 {
        match self {
            Values::F32(v) => v.iter().filter(|x| !x.is_finite()).count() as u64,
            Values::F64(v) => v.iter().filter(|x| !x.is_finite()).count() as u64,
        }
    }

    /// All values in f64.
    pub(crate) fn to_f64(self) -> Vec<f64> {
        let mut out = vec![0.0; self.len()];
        self.copy_to_f64(0, &mut out);
        out
    }
}

impl<'a> From<&'a [f32]> for Values<'a> {
    fn from(v: &'a [f32]) -> Self {
        Values::F32(v)
    }
}

impl<'a> From<&'a [f64]> for Values<'a> {
    fn from(v: &'a [f64]) -> Self {
        Values::F64(v)
    }
}

impl<'a> From<&'a Vec<f32>> for Values<'a> {
    fn from(v: &'a Vec<f32>) -> Self {
        Values::F32(v)
    }
}

impl<'a> From<&'a Vec<f64>> for Values<'a> {
    fn from(v: &'a Vec<f64>) -> Self {
        Values::F64(v)
    }
}

impl<'a, const N: usize> From<&'a [f32; N]> for Values<'a> {
    fn from(v: &'a [f32; N]) -> Self {
        Values::F32(v)
    }
}

impl<'a, const N: usize> From<&'a [f64; N]> for Values<'a> {
    fn from(v: &'a [f64; N]) -> Self {
        Values::F64(v)
    }
}

/// A borrowed row-major `rows × cols` matrix of f32 or f64: a batch of features `[B, d]`
/// (one sample per row) or a classifier weight `[C, d]`.
///
/// ```
/// use collapse_metrics::Matrix;
///
/// let data = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
/// let m = Matrix::new(&data, 2, 3)?;
/// assert_eq!((m.rows(), m.cols()), (2, 3));
/// assert!(Matrix::new(&data, 4, 2).is_err()); // 6 values cannot be 4 × 2
/// # Ok::<(), collapse_metrics::MetricsError>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Matrix<'a> {
    values: Values<'a>,
    rows: usize,
    cols: usize,
}

impl<'a> Matrix<'a> {
    /// `values` (row-major, `rows · cols` of them) as a `rows × cols` matrix.
    pub fn new(
        values: impl Into<Values<'a>>,
        rows: usize,
        cols: usize,
    ) -> Result<Self, MetricsError> {
        Self::named("features", values.into(), rows, cols)
    }

    /// As [`new`](Self::new), naming the argument `what` in the error.
    pub(crate) fn named(
        what: &'static str,
        values: Values<'a>,
        rows: usize,
        cols: usize,
    ) -> Result<Self, MetricsError> {
        if rows.checked_mul(cols) != Some(values.len()) {
            return Err(MetricsError::MatrixLength {
                what,
                rows,
                cols,
                len: values.len(),
            });
        }
        Ok(Matrix { values, rows, cols })
    }

    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The values, row-major.
    pub fn values(&self) -> Values<'a> {
        self.values
    }

    /// Rows `start..start + len` (a view, no copy).
    pub fn slice_rows(&self, start: usize, len: usize) -> Matrix<'a> {
        let (a, b) = (start * self.cols, (start + len) * self.cols);
        let values = match self.values {
            Values::F32(v) => Values::F32(&v[a..b]),
            Values::F64(v) => Values::F64(&v[a..b]),
        };
        Matrix {
            values,
            rows: len,
            cols: self.cols,
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// An integer type that can hold class labels (`u8` … `u64`, `i8` … `i64`, `usize`, `isize`).
pub trait Label: Copy + sealed::Sealed {
    /// The label as an `i64` (saturating above `i64::MAX`, which is out of range anyway).
    fn to_i64(self) -> i64;
}

macro_rules! label {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Label for $t {
            fn to_i64(self) -> i64 {
                i64::try_from(self).unwrap_or(i64::MAX)
            }
        }
    )*};
}
label!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

pub(crate) fn check_setup(num_classes: usize, dim: usize) -> Result<(), MetricsError> {
    if num_classes < 2 {
        return Err(MetricsError::TooFewClasses { num_classes });
    }
    if dim == 0 {
        return Err(MetricsError::ZeroDim { dim });
    }
    Ok(())
}

/// Checks a feature batch against its labels, the labels' range and the features'
/// finiteness; returns the labels as class indices.
pub(crate) fn check_batch<L: Label>(
    features: &Matrix<'_>,
    labels: &[L],
    num_classes: usize,
    dim: usize,
) -> Result<Vec<usize>, MetricsError> {
    if features.cols() != dim {
        return Err(MetricsError::FeatureDim {
            expected: dim,
            got: features.cols(),
        });
    }
    if labels.len() != features.rows() {
        return Err(MetricsError::LengthMismatch {
            features: features.rows(),
            labels: labels.len(),
        });
    }
    let classes = class_indices(labels.iter().map(|l| l.to_i64()), num_classes)?;
    check_finite(&features.values())?;
    Ok(classes)
}

/// Labels as class indices, or [`MetricsError::LabelOutOfRange`] naming one bad label.
pub(crate) fn class_indices(
    labels: impl ExactSizeIterator<Item = i64> + Clone,
    num_classes: usize,
) -> Result<Vec<usize>, MetricsError> {
    let c = num_classes as i64;
    let count = labels.clone().filter(|&y| !(0..c).contains(&y)).count() as u64;
    if count > 0 {
        let min = labels.clone().min().unwrap_or(0);
        let value = if min < 0 {
            min
        } else {
            labels.max().unwrap_or(0)
        };
        return Err(MetricsError::LabelOutOfRange {
            value,
            count,
            num_classes,
        });
    }
    Ok(labels.map(|y| y as usize).collect())
}

/// Fails with the number of NaN/infinite feature values, if any.
fn check_finite(values: &Values<'_>) -> Result<(), MetricsError> {
    match values.count_non_finite() {
        0 => Ok(()),
        count => Err(MetricsError::NonFinite { count }),
    }
}

/// The classes with a zero count, as an error naming them.
pub(crate) fn check_counts(counts: &[u64], pass: &'static str) -> Result<(), MetricsError> {
    let classes: Vec<usize> = counts
        .iter()
        .enumerate()
        .filter(|(_, &n)| n == 0)
        .map(|(c, _)| c)
        .collect();
    if classes.is_empty() {
        Ok(())
    } else {
        Err(MetricsError::EmptyClasses { classes, pass })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_of_every_integer_type_convert() {
        assert_eq!(u64::MAX.to_i64(), i64::MAX);
        assert_eq!((-3i8).to_i64(), -3);
        assert_eq!(7usize.to_i64(), 7);
    }

    #[test]
    fn out_of_range_label_named_smallest_negative_else_largest() {
        let err = class_indices([0i64, 5, -2, 9].into_iter(), 3).unwrap_err();
        assert!(matches!(
            err,
            MetricsError::LabelOutOfRange {
                value: -2,
                count: 3,
                ..
            }
        ));
        let err = class_indices([0i64, 5, 1, 9].into_iter(), 3).unwrap_err();
        assert!(matches!(
            err,
            MetricsError::LabelOutOfRange {
                value: 9,
                count: 2,
                ..
            }
        ));
        assert_eq!(class_indices([2i64, 0].into_iter(), 3).unwrap(), [2, 0]);
    }

    #[test]
    fn row_slices_are_views_of_the_right_rows() {
        let data: Vec<f64> = (0..12).map(f64::from).collect();
        let m = Matrix::new(&data, 4, 3).unwrap();
        let s = m.slice_rows(1, 2);
        assert_eq!((s.rows(), s.cols(), s.values().get(0)), (2, 3, 3.0));
        assert_eq!(s.values().len(), 6);
    }
}
