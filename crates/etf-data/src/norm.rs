//! Per-data-set normalisation of raw pixels: `x ↦ (x/scale − mean_c)/std_c`.
//!
//! The means and standard deviations are the usual published ones, computed over the training
//! pixels after scaling to `[0, 1]`, so a normalised training set has roughly zero mean and unit
//! standard deviation per channel.

use tch::{Kind, Tensor};

use crate::error::{DataError, Result};

/// Affine map from raw integer pixels to network inputs: `(x/scale − mean[c]) / std[c]`,
/// one `(mean, std)` pair per channel (channel = dim 1 of `[N, C, ...]`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Normalization {
    /// Largest raw pixel value: 255 for 8-bit images, 16 for the digits.
    pub scale: f64,
    /// Mean of the scaled pixels, per channel.
    pub mean: &'static [f64],
    /// Standard deviation of the scaled pixels, per channel.
    pub std: &'static [f64],
}

/// MNIST (torchvision's constants).
pub const MNIST: Normalization = Normalization {
    scale: 255.0,
    mean: &[0.1307],
    std: &[0.3081],
};

/// Fashion-MNIST.
pub const FASHION_MNIST: Normalization = Normalization {
    scale: 255.0,
    mean: &[0.2860],
    std: &[0.3530],
};

/// CIFAR-10, per RGB channel.
pub const CIFAR10: Normalization = Normalization {
    scale: 255.0,
    mean: &[0.4914, 0.4822, 0.4465],
    std: &[0.2470, 0.2435, 0.2616],
};

/// scikit-learn digits: pixels 0–16 divided by 16, then standardised with the mean and
/// (population) standard deviation of all 1797 × 64 scaled pixels of sklearn's `digits.csv.gz`.
/// A fixed pair, rather than one from the seeded training split, so that the inputs do not
/// depend on the split seed.
pub const DIGITS: Normalization = Normalization {
    scale: 16.0,
    mean: &[0.3053],
    std: &[0.3760],
};

impl Normalization {
    /// Converts raw pixels `[N, C, ...]` (any kind, typically `u8`) to normalised `f32`, in
    /// libtorch (a conversion, then an in-place multiply and subtract; no per-pixel host loop).
    pub fn apply(&self, raw: &Tensor) -> Result<Tensor> {
        self.check()?;
        // Always a fresh f32 tensor (copy = true even when `raw` is f32, so the caller's
        // tensor is never changed), normalised in place: the output is the only allocation.
        // In-place ops return a new handle on the same storage.
        let mut x = raw.f_to_dtype(Kind::Float, false, true)?;
        // (x/scale − m)/s = x·a − b with a = 1/(scale·s), b = m/s.
        if let ([mean], [std]) = (self.mean, self.std) {
            return Ok(x
                .f_mul_scalar_(1.0 / (self.scale * std))?
                .f_sub_scalar_(mean / std)?);
        }
        let a = per_channel(self.std.iter().map(|s| 1.0 / (self.scale * s)), &x)?;
        let b = per_channel(self.mean.iter().zip(self.std).map(|(m, s)| m / s), &x)?;
        Ok(x.f_mul_(&a)?.f_sub_(&b)?)
    }

    /// Inverse map to the `[0, 1]` pixel scale, `x·std[c] + mean[c]`, e.g. to plot an input.
    pub fn unapply(&self, x: &Tensor) -> Result<Tensor> {
        self.check()?;
        let std = per_channel(self.std.iter().copied(), x)?;
        let mean = per_channel(self.mean.iter().copied(), x)?;
        Ok(x.f_mul(&std)?.f_add_(&mean)?)
    }

    fn check(&self) -> Result<()> {
        if self.mean.is_empty() || self.std.len() != self.mean.len() {
            return Err(DataError::InvalidConfig(format!(
                "normalisation needs one std per mean, got {} and {}",
                self.mean.len(),
                self.std.len()
            )));
        }
        Ok(())
    }
}

/// `values` as an f32 tensor of shape `[1, C, 1, ...]` on `like`'s device, which broadcasts
/// over `like`'s `[N, C, ...]`.
fn per_channel(values: impl Iterator<Item = f64>, like: &Tensor) -> Result<Tensor> {
    let values: Vec<f32> = values.map(|v| v as f32).collect();
    let mut shape = vec![1i64; like.dim().max(2)];
    shape[1] = values.len() as i64;
    Ok(Tensor::f_from_slice(&values)?
        .f_view(shape.as_slice())?
        .f_to_device(like.device())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_matches_formula_and_unapply_inverts_it() {
        let raw = Tensor::from_slice(&[0u8, 51, 255, 128, 7, 200]).view([1, 3, 2]);
        let x = CIFAR10.apply(&raw).unwrap();
        let got = Vec::<f32>::try_from(&x.flatten(0, -1)).unwrap();
        let raw_v = [0.0, 51.0, 255.0, 128.0, 7.0, 200.0];
        for (i, (g, r)) in got.iter().zip(raw_v).enumerate() {
            let c = i / 2;
            let want = (r / 255.0 - CIFAR10.mean[c]) / CIFAR10.std[c];
            assert!((f64::from(*g) - want).abs() < 1e-5, "{i}: {g} vs {want}");
        }
        let back = CIFAR10.unapply(&x).unwrap().flatten(0, -1);
        let back = Vec::<f32>::try_from(&back).unwrap();
        for (b, r) in back.iter().zip(raw_v) {
            assert!((f64::from(*b) - r / 255.0).abs() < 1e-5);
        }
        let d = DIGITS
            .apply(&Tensor::from_slice(&[16u8]).view([1, 1]))
            .unwrap();
        let want = (1.0 - 0.3053) / 0.3760;
        assert!((d.double_value(&[0, 0]) - want).abs() < 1e-5);
    }
}
