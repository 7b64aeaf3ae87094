//! Learning-rate schedules, evaluated per epoch (and per step inside the warm-up).

use serde::{Deserialize, Serialize};

/// A learning-rate schedule. The optimiser's base rate is multiplied by [`Schedule::factor`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Schedule {
    /// The base rate throughout.
    #[default]
    Constant,
    /// Multiply by `gamma` at each milestone epoch (0-based epochs, as PyTorch's `MultiStepLR`:
    /// milestone 60 means epochs 60, 61, … run at `gamma ×` the rate).
    MultiStep {
        /// Epochs at which the rate drops, ascending.
        milestones: Vec<usize>,
        /// Factor applied at each milestone.
        #[serde(default = "default_gamma")]
        gamma: f64,
    },
    /// Linear warm-up over `warmup_epochs` (per step), then cosine decay to `min_factor × base`
    /// at the end of training.
    Cosine {
        /// Epochs of linear warm-up from 0 to the base rate.
        #[serde(default)]
        warmup_epochs: usize,
        /// Final rate as a fraction of the base rate.
        #[serde(default)]
        min_factor: f64,
    },
}

fn default_gamma() -> f64 {
    0.1
}

impl Schedule {
    /// Checks the schedule's values; the message names the offending key.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Schedule::Constant => Ok(()),
            Schedule::MultiStep { milestones, gamma } => {
                if milestones.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(format!(
                        "schedule.milestones must be strictly ascending, got {milestones:?}"
                    ));
                }
                if !(gamma.is_finite() && *gamma > 0.0) {
                    return Err(format!(
                        "schedule.gamma must be a positive number, got {gamma}"
                    ));
                }
                Ok(())
            }
            Schedule::Cosine { min_factor, .. } => {
                if !(0.0..=1.0).contains(min_factor) {
                    return Err(format!(
                        "schedule.min_factor must be in [0, 1], got {min_factor}"
                    ));
                }
                Ok(())
            }
        }
    }

    /// The factor on the base rate at `epoch` (0-based) after `step` of `steps_per_epoch` steps.
    ///
    /// ```
    /// use etf_train::Schedule;
    /// let s = Schedule::MultiStep { milestones: vec![2, 4], gamma: 0.1 };
    /// assert_eq!(s.factor(1, 0, 10, 6), 1.0);
    /// assert!((s.factor(4, 0, 10, 6) - 0.01).abs() < 1e-15);
    /// ```
    pub fn factor(&self, epoch: usize, step: usize, steps_per_epoch: usize, epochs: usize) -> f64 {
        match self {
            Schedule::Constant => 1.0,
            Schedule::MultiStep { milestones, gamma } => {
                let passed = milestones.iter().filter(|&&m| epoch >= m).count();
                gamma.powi(passed as i32)
            }
            Schedule::Cosine {
                warmup_epochs,
                min_factor,
            } => {
                let spe = steps_per_epoch.max(1) as f64;
                let t = epoch as f64 + step as f64 / spe;
                let warm = *warmup_epochs as f64;
                if t < warm {
                    return (t + 1.0 / spe) / warm;
                }
                let span = (epochs as f64 - warm).max(1.0);
                let progress = ((t - warm) / span).clamp(0.0, 1.0);
                min_factor
                    + (1.0 - min_factor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_warms_up_then_decays_to_min() {
        let s = Schedule::Cosine {
            warmup_epochs: 2,
            min_factor: 0.1,
        };
        let first = s.factor(0, 0, 10, 10);
        assert!((first - 0.05).abs() < 1e-12, "{first}");
        assert!((s.factor(1, 9, 10, 10) - 1.0).abs() < 1e-12);
        assert!((s.factor(2, 0, 10, 10) - 1.0).abs() < 1e-12);
        let mid = s.factor(6, 0, 10, 10);
        assert!((mid - 0.55).abs() < 1e-12, "{mid}");
        assert!(s.factor(9, 9, 10, 10) > 0.1 && s.factor(9, 9, 10, 10) < 0.12);
    }

    #[test]
    fn multistep_rejects_unsorted_milestones() {
        let s = Schedule::MultiStep {
            milestones: vec![5, 3],
            gamma: 0.1,
        };
        assert!(s.validate().unwrap_err().contains("milestones"));
    }
}
