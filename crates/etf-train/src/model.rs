//! The interface every trained network implements: forward passes with taps, the layers the
//! diagnostics read, the trainable tensors, and locking after a layer.

use simplex_etf::optim::{NamedParam, Optimizer};
use simplex_etf::{LockOrientation, LockScale};
use std::collections::HashMap;
use tch::Tensor;

/// Name of the classifier in records, locks and reports, for every model.
pub const CLASSIFIER: &str = "classifier";

/// Whether the lock named `lock` belongs to the tapped layer `layer`: a lock is named by its
/// layer (`hidden3`, `classifier`) or by a part of it (`block2.ffn`), so a report row of
/// `block2` is locked when its FFN is.
///
/// ```
/// use etf_train::lock_belongs_to;
/// assert!(lock_belongs_to("block2.ffn", "block2"));
/// assert!(lock_belongs_to("hidden3", "hidden3"));
/// assert!(!lock_belongs_to("block12.ffn", "block1"));
/// ```
pub fn lock_belongs_to(lock: &str, layer: &str) -> bool {
    lock.strip_prefix(layer)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// What one forward pass exposes to the collapse diagnostics.
#[derive(Debug)]
pub struct Taps {
    /// Classifier outputs `[B, C]`.
    pub logits: Tensor,
    /// Features of each tapped layer, in order, `[B, d_ℓ]` each (an MLP's hidden blocks, a
    /// ViT's class token after each block).
    pub layers: Vec<Tensor>,
    /// The classifier's input features `[B, d]` (for NC3/NC4 with [`CollapseModel::classifier`]).
    pub penultimate: Tensor,
}

impl Taps {
    /// Every feature tensor the diagnostics read: the tapped layers, then the penultimate.
    pub fn features(&self) -> impl Iterator<Item = &Tensor> {
        self.layers.iter().chain([&self.penultimate])
    }
}

/// A classifier network whose layers the trainer measures and can lock.
///
/// Layer names: [`CollapseModel::layer_names`] is the one source of the tapped layers' names
/// (records, reports and `metrics.csv` columns use it); [`CollapseModel::lock_after`] and
/// [`CollapseModel::locked_layers`] name what they lock by those names or a part of them
/// ([`lock_belongs_to`]), and the classifier as [`CLASSIFIER`].
pub trait CollapseModel {
    /// The model's own error (shapes, its layers' failures).
    type Error: std::error::Error + Send + Sync + 'static;
    /// Logits and the tapped features.
    fn forward_taps(&self, xs: &Tensor, train: bool) -> Result<Taps, Self::Error>;
    /// Logits only (the training step).
    fn forward_logits(&self, xs: &Tensor, train: bool) -> Result<Tensor, Self::Error>;
    /// Data augmentation of a training batch; a pure function of `(seed, step)` so a resumed
    /// run replays it. The default is none.
    fn augment(&self, xs: &Tensor, _seed: u64, _step: u64) -> Result<Tensor, Self::Error> {
        Ok(xs.shallow_clone())
    }
    /// Names of the tapped layers, in order.
    fn layer_names(&self) -> Vec<String>;
    /// The classifier `(W [C, d], b [C])`, detached.
    fn classifier(&self) -> (Tensor, Option<Tensor>);
    /// Trainable tensors (what the optimiser holds).
    fn named_trainable(&self) -> Vec<NamedParam>;
    /// Locks every lockable part after tapped layer `layer` (1-based) to an ETF map and removes
    /// its weights from `opt`. Returns the names of the newly locked parts.
    fn lock_after(
        &mut self,
        layer: usize,
        orientation: LockOrientation,
        scale: LockScale,
        seed: u64,
        opt: &mut Optimizer,
    ) -> Result<Vec<String>, Self::Error>;
    /// Names of the parts whose weights are ETF maps now.
    fn locked_layers(&self) -> Vec<String>;
    /// Learnable parameter count (the trainable tensors' sizes).
    fn learnable_params(&self) -> i64 {
        self.named_trainable()
            .iter()
            .map(|p| p.tensor.numel() as i64)
            .sum()
    }
    /// All parameters, fixed ETF weights included (BatchNorm running statistics excluded).
    fn total_params(&self) -> i64;
    /// Whether [`CollapseModel::forward_stacked`] is implemented (the default: no).
    fn can_stack(&self) -> bool {
        false
    }
    /// The training-step logits `[M, B, C]` of `M` models of this one's architecture trained
    /// as one stack ([`crate::StackedTrainer`]): `vars` holds each of this model's variables,
    /// by VarStore name, with a leading member dimension; `xs` is `[M, B, …]`, member `m`'s
    /// batch in row `m`. Every linear layer is applied densely by its stacked weight (ETF maps
    /// included), BatchNorm keeps per-member statistics. The default (a model that cannot be
    /// stacked) is never called: [`crate::StackedTrainer::new`] asks
    /// [`CollapseModel::can_stack`] first.
    fn forward_stacked(
        &self,
        _vars: &HashMap<String, Tensor>,
        _xs: &Tensor,
        _train: bool,
    ) -> Option<Result<Tensor, Self::Error>> {
        None
    }
}
