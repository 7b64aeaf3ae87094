//! The models an experiment can train, behind one type for the trainer.

use adaptive_etf::{Mlp, MlpError};
use etf_train::{CollapseModel, NamedParam, Taps};
use etf_transformer::{VitError, VitModel};
use simplex_etf::optim::Optimizer;
use simplex_etf::{LockOrientation, LockScale};
use std::collections::HashMap;
use tch::Tensor;

/// An MLP or a ViT.
pub enum AnyModel {
    /// algorithms.md §4.
    Mlp(Mlp),
    /// algorithms.md §5.
    Vit(Box<VitModel>),
}

/// The error of either model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// From the MLP.
    #[error(transparent)]
    Mlp(#[from] MlpError),
    /// From the ViT.
    #[error(transparent)]
    Vit(#[from] VitError),
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
    type Error = ModelError;

    fn forward_taps(&self, xs: &Tensor, train: bool) -> Result<Taps, ModelError> {
        delegate!(self, m => Ok(m.forward_taps(xs, train)?))
    }
    fn forward_logits(&self, xs: &Tensor, train: bool) -> Result<Tensor, ModelError> {
        delegate!(self, m => Ok(m.forward_logits(xs, train)?))
    }
    fn augment(&self, xs: &Tensor, seed: u64, step: u64) -> Result<Tensor, ModelError> {
        delegate!(self, m => Ok(m.augment(xs, seed, step)?))
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
        scale: LockScale,
        seed: u64,
        opt: &mut Optimizer,
    ) -> Result<Vec<String>, ModelError> {
        delegate!(self, m => Ok(m.lock_after(layer, orientation, scale, seed, opt)?))
    }
    fn locked_layers(&self) -> Vec<String> {
        delegate!(self, m => m.locked_layers())
    }
    fn total_params(&self) -> i64 {
        delegate!(self, m => m.total_params())
    }
    fn can_stack(&self) -> bool {
        delegate!(self, m => m.can_stack())
    }
    fn forward_stacked(
        &self,
        vars: &HashMap<String, Tensor>,
        xs: &Tensor,
        train: bool,
    ) -> Option<Result<Tensor, ModelError>> {
        delegate!(self, m => m.forward_stacked(vars, xs, train).map(|r| Ok(r?)))
    }
}
