//! Input checks shared by both passes (and the reference implementation), so every
//! entry point rejects bad input with the same [`MetricsError`].

use tch::{Device, Kind, Tensor};

use crate::MetricsError;

/// A checked batch: features as a fresh f64 copy (callers may modify it in place) and labels
/// in i64, both on the accumulator's device.
pub(crate) struct Batch {
    pub features: Tensor,
    pub labels: Tensor,
}

pub(crate) fn check_setup(num_classes: usize, dim: usize) -> Result<(), MetricsError> {
    if num_classes < 2 {
        return Err(MetricsError::TooFewClasses { num_classes });
    }
    if dim == 0 {
        return Err(MetricsError::ZeroDim { dim });
    }
    Ok(())
}

pub(crate) fn is_real_float(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Half | Kind::BFloat16 | Kind::Float | Kind::Double
    )
}

fn is_integer(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Uint8 | Kind::Int8 | Kind::Int16 | Kind::Int | Kind::Int64
    )
}

/// Checks a `[B, dim]` feature batch and its `[B]` labels; `None` for an empty batch.
///
/// Labels may live on any device (they are small and are moved); features must already be
/// on `device`, because silently copying a large batch across devices hides a real cost.
pub(crate) fn prepare_batch(
    features: &Tensor,
    labels: &Tensor,
    num_classes: usize,
    dim: usize,
    device: Device,
) -> Result<Option<Batch>, MetricsError> {
    let kind = features.f_kind()?;
    if !is_real_float(kind) {
        return Err(MetricsError::FeatureKind { kind });
    }
    let shape = features.size();
    if shape.len() != 2 {
        return Err(MetricsError::FeatureShape { shape });
    }
    if shape[1] != dim as i64 {
        return Err(MetricsError::FeatureDim {
            expected: dim,
            got: shape[1],
        });
    }
    if features.device() != device {
        return Err(MetricsError::DeviceMismatch {
            expected: device,
            got: features.device(),
        });
    }
    let label_shape = labels.size();
    if label_shape.len() != 1 {
        return Err(MetricsError::LabelShape { shape: label_shape });
    }
    let label_kind = labels.f_kind()?;
    if !is_integer(label_kind) {
        return Err(MetricsError::LabelKind { kind: label_kind });
    }
    if label_shape[0] != shape[0] {
        return Err(MetricsError::LengthMismatch {
            features: shape[0],
            labels: label_shape[0],
        });
    }
    if shape[0] == 0 {
        return Ok(None);
    }
    let labels = labels.f_to_device(device)?.f_to_kind(Kind::Int64)?;
    let c = num_classes as i64;
    let bad = labels.f_lt(0)?.f_logical_or(&labels.f_ge(c)?)?;
    let count = bad.f_sum(Kind::Int64)?.f_int64_value(&[])?;
    if count > 0 {
        let min = labels.f_min()?.f_int64_value(&[])?;
        let value = if min < 0 {
            min
        } else {
            labels.f_max()?.f_int64_value(&[])?
        };
        return Err(MetricsError::LabelOutOfRange {
            value,
            count,
            num_classes,
        });
    }
    // Always a copy, never an alias of the caller's tensor: pass 2 works on it in place.
    let features = features.f_to_dtype(Kind::Double, false, true)?;
    check_finite(&features)?;
    Ok(Some(Batch { features, labels }))
}

/// Fails with the number of NaN/infinite entries, if any.
fn check_finite(features: &Tensor) -> Result<(), MetricsError> {
    // One reduction, no temporary: a non-finite entry makes the f64 sum non-finite. Only then
    // count (a finite f64 sum of huge values may also overflow: count 0 passes).
    let total = features.f_sum(Kind::Double)?.f_double_value(&[])?;
    if total.is_finite() {
        return Ok(());
    }
    let count = features
        .f_isfinite()?
        .f_logical_not()?
        .f_sum(Kind::Int64)?
        .f_int64_value(&[])?;
    if count > 0 {
        return Err(MetricsError::NonFinite { count });
    }
    Ok(())
}

/// Copies a small tensor to the host as a flat `Vec<f64>`.
pub(crate) fn host_f64(t: &Tensor) -> Result<Vec<f64>, MetricsError> {
    let flat = t
        .f_to_device(Device::Cpu)?
        .f_to_kind(Kind::Double)?
        .f_contiguous()?
        .f_reshape([-1])?;
    Ok(Vec::<f64>::try_from(&flat)?)
}

/// Copies a small integer tensor to the host as a flat `Vec<i64>`.
pub(crate) fn host_i64(t: &Tensor) -> Result<Vec<i64>, MetricsError> {
    let flat = t
        .f_to_device(Device::Cpu)?
        .f_to_kind(Kind::Int64)?
        .f_contiguous()?
        .f_reshape([-1])?;
    Ok(Vec::<i64>::try_from(&flat)?)
}

/// The classes with a zero count, as an error naming them.
pub(crate) fn check_counts(counts: &[i64], pass: &'static str) -> Result<(), MetricsError> {
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
