//! Batch augmentation for small images: random crop with zero padding and horizontal flip.
//!
//! The random choices come from a host-side SplitMix64 stream keyed by `(seed, step)`, so a batch
//! is augmented identically on every device and in every run, whatever libtorch's own RNG state.
//!
//! # Example
//!
//! ```
//! use etf_data::augment::{augment_batch, AugmentConfig};
//! use tch::{Device, Kind, Tensor};
//!
//! let images = Tensor::rand([4, 3, 8, 8], (Kind::Float, Device::Cpu));
//! let cfg = AugmentConfig { pad: 2, flip: true };
//! let a = augment_batch(&images, &cfg, 7, 0)?;
//! assert_eq!(a.size(), images.size());
//! // A pure function of (seed, step): a resumed run sees the same batches.
//! assert!(a.equal(&augment_batch(&images, &cfg, 7, 0)?));
//! # Ok::<(), etf_data::DataError>(())
//! ```

use etf_rng::{splitmix64, RandomSource, SplitMix64, GOLDEN_GAMMA};
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::error::{DataError, Result};

/// Augmentation options (the CIFAR-10 recipe: `pad = 4`, `flip = true`; MNIST-like data: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    /// Zero padding on every side before a random crop back to the original size; 0 = no crop.
    pub pad: i64,
    /// Flip each image horizontally with probability 1/2.
    pub flip: bool,
}

impl Default for AugmentConfig {
    /// No augmentation; callers opt in (e.g. `pad = 4, flip = true` for CIFAR-10).
    fn default() -> Self {
        Self {
            pad: 0,
            flip: false,
        }
    }
}

impl AugmentConfig {
    /// True when [`augment_batch`] would return its input unchanged.
    pub fn is_identity(&self) -> bool {
        self.pad == 0 && !self.flip
    }

    /// Checks `pad ≥ 0`.
    pub fn validate(&self) -> Result<()> {
        if self.pad < 0 {
            return Err(DataError::OutOfRange {
                key: "train.augment.pad",
                value: self.pad.to_string(),
                allowed: "an integer >= 0",
            });
        }
        Ok(())
    }
}

/// The stream of one batch's choices. Keyed this way (not by `stream_seed`) because every
/// augmented run so far drew its crops from exactly this stream.
fn batch_stream(seed: u64, step: u64) -> SplitMix64 {
    let mut state = seed ^ GOLDEN_GAMMA;
    SplitMix64::new(splitmix64(&mut state) ^ step.wrapping_mul(0xD1B5_4A32_D192_ED03))
}

/// Augments a batch `[B, C, H, W]` on its own device: each image is zero-padded by `cfg.pad`,
/// cropped back to `H × W` at a random offset, and (with `cfg.flip`) mirrored left–right with
/// probability 1/2. The choices depend only on `(seed, step)` and the batch size.
///
/// Implemented as two `gather`s with per-sample row and column indices (the flip reverses the
/// column indices), so the whole batch is one pair of kernels.
pub fn augment_batch(images: &Tensor, cfg: &AugmentConfig, seed: u64, step: u64) -> Result<Tensor> {
    cfg.validate()?;
    let size = images.size();
    let &[b, c, h, w] = size.as_slice() else {
        return Err(DataError::BatchShape {
            expected: "[B, C, H, W]",
            got: size,
        });
    };
    if cfg.is_identity() || b == 0 {
        return Ok(images.shallow_clone());
    }
    let pad = cfg.pad;
    let mut rng = batch_stream(seed, step);
    // Modulo, not an unbiased draw: its bias is below 2⁻⁵⁰ for these small spans, and it is
    // what every augmented run so far used.
    let mut below = |n: u64| rng.next_u64() % n;
    let span = (2 * pad + 1) as u64;
    let mut rows = Vec::with_capacity((b * h) as usize);
    let mut cols = Vec::with_capacity((b * w) as usize);
    for _ in 0..b {
        let oy = below(span) as i64;
        let ox = below(span) as i64;
        let flip = cfg.flip && below(2) == 1;
        rows.extend((0..h).map(|i| oy + i));
        cols.extend((0..w).map(|j| ox + if flip { w - 1 - j } else { j }));
    }
    let device = images.device();
    let rows = Tensor::f_from_slice(&rows)?
        .f_to_device(device)?
        .f_view([b, 1, h, 1])?;
    let cols = Tensor::f_from_slice(&cols)?
        .f_to_device(device)?
        .f_view([b, 1, 1, w])?;
    let padded = images.f_constant_pad_nd([pad, pad, pad, pad])?;
    let wp = w + 2 * pad;
    let out = padded
        .f_gather(2, &rows.f_expand([b, c, h, wp], false)?, false)?
        .f_gather(3, &cols.f_expand([b, c, h, w], false)?, false)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn ramp(b: i64, c: i64, h: i64, w: i64) -> Tensor {
        Tensor::arange(b * c * h * w, (Kind::Float, Device::Cpu)).view([b, c, h, w]) + 1.0
    }

    #[test]
    fn output_is_pinned() {
        // Taken from the augmentation before it moved to this crate: the crops and flips of
        // every augmented run must stay exactly these. One row per (channel, image).
        #[rustfmt::skip]
        let cases: [(i64, u64, u64, [f32; 36]); 2] = [
            (1, 7, 3, [
                0.0, 0.0, 0.0, 2.0, 1.0, 0.0, 5.0, 4.0, 0.0,
                0.0, 0.0, 0.0, 11.0, 10.0, 0.0, 14.0, 13.0, 0.0,
                0.0, 0.0, 0.0, 20.0, 21.0, 0.0, 23.0, 24.0, 0.0,
                0.0, 0.0, 0.0, 29.0, 30.0, 0.0, 32.0, 33.0, 0.0,
            ]),
            (2, 11, 5, [
                3.0, 2.0, 1.0, 6.0, 5.0, 4.0, 9.0, 8.0, 7.0,
                12.0, 11.0, 10.0, 15.0, 14.0, 13.0, 18.0, 17.0, 16.0,
                0.0, 0.0, 0.0, 21.0, 20.0, 19.0, 24.0, 23.0, 22.0,
                0.0, 0.0, 0.0, 30.0, 29.0, 28.0, 33.0, 32.0, 31.0,
            ]),
        ];
        let x = ramp(2, 2, 3, 3);
        for (pad, seed, step, expected) in cases {
            let y = augment_batch(&x, &AugmentConfig { pad, flip: true }, seed, step).unwrap();
            let got: Vec<f32> = Vec::try_from(y.flatten(0, -1)).unwrap();
            assert_eq!(got, expected, "pad {pad}, seed {seed}, step {step}");
        }
    }

    #[test]
    fn deterministic_per_seed_and_step() {
        let x = ramp(8, 3, 6, 6);
        let cfg = AugmentConfig { pad: 2, flip: true };
        let a = augment_batch(&x, &cfg, 7, 3).unwrap();
        let b = augment_batch(&x, &cfg, 7, 3).unwrap();
        assert!(a.equal(&b));
        let c = augment_batch(&x, &cfg, 7, 4).unwrap();
        assert!(!a.equal(&c));
        assert_eq!(a.size(), x.size());
    }

    #[test]
    fn identity_config_returns_input() {
        let x = ramp(2, 1, 4, 4);
        let y = augment_batch(&x, &AugmentConfig::default(), 1, 1).unwrap();
        assert!(x.equal(&y));
    }

    #[test]
    fn flip_only_mirrors_or_keeps_each_image() {
        let x = ramp(16, 2, 5, 5);
        let y = augment_batch(&x, &AugmentConfig { pad: 0, flip: true }, 3, 0).unwrap();
        let flipped = x.flip([3]);
        let mut n_flipped = 0;
        for i in 0..16 {
            let (yi, xi, fi) = (y.get(i), x.get(i), flipped.get(i));
            assert!(
                yi.equal(&xi) || yi.equal(&fi),
                "image {i} neither kept nor mirrored"
            );
            n_flipped += i64::from(yi.equal(&fi));
        }
        assert!(n_flipped > 0 && n_flipped < 16, "{n_flipped} of 16 flipped");
    }

    #[test]
    fn crop_is_a_shifted_window_of_the_padded_image() {
        let x = ramp(6, 1, 4, 4);
        let pad = 2;
        let y = augment_batch(&x, &AugmentConfig { pad, flip: false }, 11, 5).unwrap();
        let padded = x.constant_pad_nd([pad, pad, pad, pad]);
        for i in 0..6 {
            let found = (0..=2 * pad).any(|oy| {
                (0..=2 * pad).any(|ox| {
                    padded
                        .get(i)
                        .narrow(1, oy, 4)
                        .narrow(2, ox, 4)
                        .equal(&y.get(i))
                })
            });
            assert!(found, "image {i} is not a crop of its padded original");
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        let x = Tensor::zeros([4, 4], (Kind::Float, Device::Cpu));
        let cfg = AugmentConfig {
            pad: 1,
            flip: false,
        };
        assert!(matches!(
            augment_batch(&x, &cfg, 0, 0),
            Err(DataError::BatchShape { .. })
        ));
        let x = ramp(1, 1, 4, 4);
        let bad = AugmentConfig {
            pad: -1,
            flip: false,
        };
        let err = augment_batch(&x, &bad, 0, 0).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::OutOfRange {
                    key: "train.augment.pad",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "train.augment.pad = -1 is invalid; allowed: an integer >= 0"
        );
    }

    #[test]
    fn serde_format_is_pad_and_flip() {
        let cfg: AugmentConfig = serde_json::from_str(r#"{"pad": 4, "flip": true}"#).unwrap();
        assert_eq!(cfg, AugmentConfig { pad: 4, flip: true });
        let partial: AugmentConfig = serde_json::from_str(r#"{"flip": true}"#).unwrap();
        assert_eq!(partial, AugmentConfig { pad: 0, flip: true });
        assert!(serde_json::from_str::<AugmentConfig>(r#"{"crop": 4}"#).is_err());
    }
}
