//! The Adaptive-ETF locking rule (algorithms.md §4): its settings, and the rule as pure state
//! so it is testable and checkpointable on its own.

use serde::{Deserialize, Serialize};
use simplex_etf::{LockOrientation, LockScale};

/// Settings of adaptive locking, for every model that locks during training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdaptiveConfig {
    /// NCC-accuracy threshold τ for a layer to count as separable.
    pub tau: f64,
    /// Consecutive probes ≥ τ before a layer is separable.
    pub patience: usize,
    /// Probe every this many epochs.
    pub probe_every: usize,
    /// Orientation of the ETF a layer is locked to (or the control it is locked to).
    pub orientation: LockOrientation,
    /// Scale of the locked map: the fixed `α`, or matched to the weight (spec §7). Absent in
    /// checkpoints written before it existed: fixed.
    #[serde(default)]
    pub scale: LockScale,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        Self {
            tau: 0.9,
            patience: 5,
            probe_every: 1,
            orientation: LockOrientation::Nearest,
            scale: LockScale::Fixed,
        }
    }
}

impl AdaptiveConfig {
    /// Checks the values; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.tau) {
            return Err(format!("`tau` must be in [0, 1], got {}", self.tau));
        }
        if self.patience == 0 || self.probe_every == 0 {
            return Err("`patience` and `probe_every` must be at least 1".into());
        }
        Ok(())
    }
}

/// Tracks, per hidden layer, how many consecutive probes had NCC accuracy ≥ τ, and decides
/// which layers lock.
///
/// A layer is *separable* once its probe accuracy has been ≥ τ for `patience` consecutive
/// probes. With `ℓ*` the smallest separable layer (1-based), every layer after `ℓ*` locks.
/// Locking is monotone: [`LockController::locked_after`] only ever moves earlier.
///
/// ```
/// use etf_train::LockController;
/// let mut c = LockController::new(3, 0.9, 2);
/// assert_eq!(c.observe(&[0.5, 0.95, 0.97]), None);
/// // Second consecutive probe above τ for layers 2 and 3: ℓ* = 2, so layer 3 onwards locks.
/// assert_eq!(c.observe(&[0.5, 0.95, 0.97]), Some(2));
/// assert_eq!(c.locked_after(), Some(2));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LockController {
    tau: f64,
    patience: usize,
    streaks: Vec<usize>,
    locked_after: Option<usize>,
}

impl LockController {
    /// A controller for `layers` hidden layers with threshold `tau` and `patience` probes.
    pub fn new(layers: usize, tau: f64, patience: usize) -> Self {
        Self {
            tau,
            patience: patience.max(1),
            streaks: vec![0; layers],
            locked_after: None,
        }
    }

    /// Records one probe (training NCC accuracy per hidden layer, in order). Returns the new
    /// `ℓ*` when it moved earlier (so more layers must lock now), else `None`.
    pub fn observe(&mut self, ncc_accuracy: &[f64]) -> Option<usize> {
        for (streak, &acc) in self.streaks.iter_mut().zip(ncc_accuracy) {
            *streak = if acc >= self.tau { *streak + 1 } else { 0 };
        }
        let separable = self
            .streaks
            .iter()
            .position(|&s| s >= self.patience)
            .map(|i| i + 1)?;
        match self.locked_after {
            Some(current) if current <= separable => None,
            _ => {
                self.locked_after = Some(separable);
                Some(separable)
            }
        }
    }

    /// The smallest separable layer seen so far (1-based): layers after it are locked.
    pub fn locked_after(&self) -> Option<usize> {
        self.locked_after
    }

    /// Consecutive probes ≥ τ per layer.
    pub fn streaks(&self) -> &[usize] {
        &self.streaks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dip_resets_the_streak() {
        let mut c = LockController::new(2, 0.9, 3);
        assert_eq!(c.observe(&[0.1, 0.95]), None);
        assert_eq!(c.observe(&[0.1, 0.95]), None);
        assert_eq!(c.observe(&[0.1, 0.85]), None);
        assert_eq!(c.streaks(), &[0, 0]);
        for _ in 0..2 {
            assert_eq!(c.observe(&[0.1, 0.95]), None);
        }
        assert_eq!(c.observe(&[0.1, 0.95]), Some(2));
    }

    #[test]
    fn locking_is_monotone_and_moves_earlier() {
        let mut c = LockController::new(4, 0.9, 1);
        assert_eq!(c.observe(&[0.2, 0.5, 0.95, 0.99]), Some(3));
        // Layer 3 falls below τ later: nothing unlocks.
        assert_eq!(c.observe(&[0.2, 0.5, 0.5, 0.99]), None);
        assert_eq!(c.locked_after(), Some(3));
        // Layer 2 becomes separable: ℓ* moves earlier and more layers lock.
        assert_eq!(c.observe(&[0.2, 0.92, 0.5, 0.99]), Some(2));
        assert_eq!(c.observe(&[0.2, 0.92, 0.95, 0.99]), None);
    }
}
