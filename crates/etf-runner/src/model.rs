//! The models an experiment can train, behind one type for the trainer.

use adaptive_etf::{CollapseModel, Mlp, NamedParam, Taps, TrainError};
use etf_transformer::VitModel;
use simplex_etf::optim::Optimizer;
use simplex_etf::LockOrientation;
use tch::Tensor;

/// An MLP or a ViT.
pub enum AnyModel {
    /// algorithms.md §4.
    Mlp(Mlp),
    /// algorithms.md §5.
    Vit(Box<VitModel>),
}

macro_rules! delegate {
    ($self:ident, $m:ident => $e:expr) => {
        match $self {
            AnyModel::Mlp($m) => $e,
            AnyModel::Vit($m) => $e,
        }
    };
}

impl CollapseModel for AnyModel {
    fn forward_taps(&self, xs: &Tensor, train: bool) -> Result<Taps, TrainError> {
        delegate!(self, m => m.forward_taps(xs, train))
    }
    fn forward_logits(&self, xs: &Tensor, train: bool) -> Result<Tensor, TrainError> {
        delegate!(self, m => m.forward_logits(xs, train))
    }
    fn augment(&self, xs: &Tensor, seed: u64, step: u64) -> Result<Tensor, TrainError> {
        delegate!(self, m => m.augment(xs, seed, step))
    }
    fn layer_names(&self) -> Vec<String> {
        delegate!(self, m => m.layer_names())
    }
    fn classifier(&self) -> (Tensor, Option<Tensor>) {
        delegate!(self, m => m.classifier())
    }
    fn named_trainable(&self) -> Vec<NamedParam> {
        delegate!(self, m => m.named_trainable())
    }
    fn lock_after(
        &mut self,
        layer: usize,
        orientation: LockOrientation,
        seed: u64,
        opt: &mut Optimizer,
    ) -> Result<Vec<String>, TrainError> {
        delegate!(self, m => m.lock_after(layer, orientation, seed, opt))
    }
    fn locked_layers(&self) -> Vec<String> {
        delegate!(self, m => m.locked_layers())
    }
    fn total_params(&self) -> i64 {
        delegate!(self, m => m.total_params())
    }
}
