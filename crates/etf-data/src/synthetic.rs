//! Seeded synthetic data: Gaussian class clusters in ℝ^d, for tests and runs that need no file.

use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::dataset::{Dataset, DatasetName};
use crate::error::{DataError, Result};
use crate::rng::{stream_seed, Rng};
use crate::split::Split;

/// Gaussian class clusters: class `c` has centre `μ_c = separation · g_c / ‖g_c‖` with
/// `g_c ~ N(0, I_d)` (so every centre lies at distance `separation` from the origin, in a
/// random direction), and samples `x = μ_c + noise_std · ε`, `ε ~ N(0, I_d)`.
///
/// Sample `i` of each split has label `i mod C`, so classes are interleaved. Everything is
/// fixed by `seed`; the centres, the training samples and the test samples use separate
/// streams, so changing `test_per_class` does not change the training set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyntheticConfig {
    /// Number of classes `C` (≥ 1).
    pub num_classes: usize,
    /// Dimension `d` of the samples (≥ 1); the sample shape is `[d]`.
    pub dim: usize,
    /// Training samples per class (≥ 1).
    pub train_per_class: usize,
    /// Test samples per class (may be 0).
    pub test_per_class: usize,
    /// Norm of every class centre (≥ 0).
    pub separation: f64,
    /// Standard deviation of the isotropic noise around each centre (≥ 0).
    pub noise_std: f64,
    /// Seed of the centres and samples.
    pub seed: u64,
}

/// The most values (samples × dim, both splits) a synthetic data set may have: 2³¹, 8 GiB as f32.
pub const MAX_SYNTHETIC_VALUES: u64 = 1 << 31;

impl Default for SyntheticConfig {
    /// 4 classes in ℝ^16, 64 training and 32 test samples per class, centres at norm 4 with
    /// unit noise: separable enough for a small MLP to fit within a few epochs.
    fn default() -> Self {
        Self {
            num_classes: 4,
            dim: 16,
            train_per_class: 64,
            test_per_class: 32,
            separation: 4.0,
            noise_std: 1.0,
            seed: 0,
        }
    }
}

impl SyntheticConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(DataError::InvalidConfig(format!("synthetic: {m}")));
        if self.num_classes == 0 || self.dim == 0 || self.train_per_class == 0 {
            return bad(format!(
                "num_classes ({}), dim ({}) and train_per_class ({}) must be positive",
                self.num_classes, self.dim, self.train_per_class
            ));
        }
        for (name, v) in [
            ("separation", self.separation),
            ("noise_std", self.noise_std),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(format!("{name} must be finite and ≥ 0, got {v}"));
            }
        }
        // The generator holds every value as f32 (and draws them as f64): bounded before any
        // allocation, so that a mistyped size is an error instead of an aborted process.
        let values = (self.train_per_class as u128 + self.test_per_class as u128)
            * self.num_classes as u128
            * self.dim as u128;
        if values > MAX_SYNTHETIC_VALUES as u128 {
            return bad(format!(
                "num_classes × (train_per_class + test_per_class) × dim = {} × ({} + {}) × {} \
                 = {values} values, more than the {MAX_SYNTHETIC_VALUES} (8 GiB of f32) a \
                 synthetic data set may have",
                self.num_classes, self.train_per_class, self.test_per_class, self.dim
            ));
        }
        Ok(())
    }

    /// Shape of one sample, `[dim]` (what [`crate::DatasetName::sample_shape`] cannot say for
    /// synthetic data).
    pub fn sample_shape(&self) -> Vec<i64> {
        vec![self.dim as i64]
    }

    /// The class centres `[C, d]` (row-major).
    pub fn centres(&self) -> Vec<f64> {
        let mut rng = Rng::new(stream_seed(self.seed, 0));
        let mut centres = Vec::with_capacity(self.num_classes * self.dim);
        for _ in 0..self.num_classes {
            let g: Vec<f64> = (0..self.dim).map(|_| rng.normal()).collect();
            let norm = g
                .iter()
                .map(|v| v * v)
                .sum::<f64>()
                .sqrt()
                .max(f64::MIN_POSITIVE);
            centres.extend(g.iter().map(|v| self.separation * v / norm));
        }
        centres
    }

    /// Draws `per_class · C` samples from `stream`.
    fn split(&self, centres: &[f64], per_class: usize, stream: u64) -> Result<Split> {
        let (c, d) = (self.num_classes, self.dim);
        let n = per_class * c;
        let mut rng = Rng::new(stream_seed(self.seed, stream));
        let mut features = Vec::with_capacity(n * d);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let class = i % c;
            let centre = &centres[class * d..(class + 1) * d];
            features.extend(
                centre
                    .iter()
                    .map(|m| (m + self.noise_std * rng.normal()) as f32),
            );
            labels.push(class as i64);
        }
        Ok(Split {
            features: Tensor::f_from_slice(&features)?.f_view([n as i64, d as i64])?,
            labels: Tensor::f_from_slice(&labels)?,
            num_classes: c,
        })
    }

    /// Generates the data set (on the CPU).
    pub fn generate(&self) -> Result<Dataset> {
        self.validate()?;
        let centres = self.centres();
        let train = self.split(&centres, self.train_per_class, 1)?;
        let test = self.split(&centres, self.test_per_class, 2)?;
        let mut ds = Dataset::assemble(DatasetName::Synthetic, train, test, self.sample_shape());
        ds.num_classes = self.num_classes;
        ds.class_names = (0..self.num_classes).map(|c| c.to_string()).collect();
        Ok(ds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_labels_and_determinism() {
        let cfg = SyntheticConfig {
            num_classes: 3,
            dim: 5,
            train_per_class: 4,
            test_per_class: 2,
            ..Default::default()
        };
        let a = cfg.generate().unwrap();
        assert_eq!(a.train.features.size(), [12, 5]);
        assert_eq!(a.test.features.size(), [6, 5]);
        assert_eq!(a.sample_shape, [5]);
        assert_eq!(a.train.class_counts().unwrap(), [4, 4, 4]);
        assert_eq!(a.class_names, ["0", "1", "2"]);
        let b = cfg.generate().unwrap();
        assert!(a.train.features.equal(&b.train.features));
        let other = SyntheticConfig {
            seed: 1,
            ..cfg.clone()
        }
        .generate()
        .unwrap();
        assert!(!a.train.features.equal(&other.train.features));
        // The training set does not depend on the test size.
        let more_test = SyntheticConfig {
            test_per_class: 9,
            ..cfg
        }
        .generate()
        .unwrap();
        assert!(a.train.features.equal(&more_test.train.features));
    }

    #[test]
    fn centres_have_norm_separation_and_samples_cluster_around_them() {
        let cfg = SyntheticConfig {
            num_classes: 2,
            dim: 8,
            train_per_class: 2000,
            test_per_class: 0,
            separation: 3.0,
            noise_std: 0.5,
            seed: 4,
        };
        let centres = cfg.centres();
        for c in centres.chunks(8) {
            let norm = c.iter().map(|v| v * v).sum::<f64>().sqrt();
            assert!((norm - 3.0).abs() < 1e-9);
        }
        let ds = cfg.generate().unwrap();
        assert!(ds.test.is_empty());
        let x = &ds.train.features;
        let class0 = x.index_select(
            0,
            &Tensor::arange_start_step(0, 4000, 2, (tch::Kind::Int64, tch::Device::Cpu)),
        );
        let mean = Vec::<f32>::try_from(&class0.mean_dim(0, false, tch::Kind::Float)).unwrap();
        let std = class0
            .std_dim(0, true, false)
            .mean(tch::Kind::Float)
            .double_value(&[]);
        for (m, c) in mean.iter().zip(&centres[..8]) {
            assert!((f64::from(*m) - c).abs() < 0.05, "{m} vs {c}");
        }
        assert!((std - 0.5).abs() < 0.02, "noise std {std}");
    }

    #[test]
    fn invalid_configs_are_errors() {
        for cfg in [
            SyntheticConfig {
                num_classes: 0,
                ..Default::default()
            },
            SyntheticConfig {
                dim: 0,
                ..Default::default()
            },
            SyntheticConfig {
                train_per_class: 0,
                ..Default::default()
            },
            SyntheticConfig {
                noise_std: -1.0,
                ..Default::default()
            },
            SyntheticConfig {
                separation: f64::NAN,
                ..Default::default()
            },
            SyntheticConfig {
                dim: usize::MAX,
                ..Default::default()
            },
        ] {
            assert!(
                matches!(cfg.generate(), Err(DataError::InvalidConfig(_))),
                "{cfg:?}"
            );
        }
    }
}
