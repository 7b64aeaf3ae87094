//! The ViT as an [`etf_train::CollapseModel`]: the shared trainer drives it like the MLP,
//! reading the class token after each block and locking FFNs adaptively (algorithms.md §5).

use etf_train::{CollapseModel, NamedParam, Taps, CLASSIFIER};
use simplex_etf::optim::Optimizer;
use simplex_etf::{EtfSpec, LockOrientation, LockScale};
use tch::Tensor;

use crate::config::FfnMatrices;
use crate::error::VitError;
use crate::vit::Vit;
use crate::{augment_batch, AugmentConfig};

/// A [`Vit`] with its training-time augmentation and the FFN matrices the adaptive rule locks.
///
/// Tapped layers are the blocks, named `block1` … `blockL` ([`block_name`], 1-based as the
/// trainer's `ℓ*`); their features are the class token at each block's output. The penultimate
/// features are the head's input (the class token after the final LayerNorm). A locked FFN is
/// named `block<i>.ffn` (a part of its block, [`etf_train::lock_belongs_to`]); an ETF head is
/// named `classifier`, as every model's classifier.
///
/// ```
/// use etf_train::CollapseModel;
/// use etf_transformer::{AugmentConfig, FfnMatrices, Vit, VitConfig, VitModel};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let cfg = VitConfig { patch: 4, dim: 8, depth: 2, heads: 2, ..Default::default() };
/// let vs = nn::VarStore::new(Device::Cpu);
/// let vit = Vit::new(&vs.root(), &cfg, [1, 8, 8], 3)?;
/// let model = VitModel::new(vit, AugmentConfig::default(), FfnMatrices::Both);
/// let taps = model.forward_taps(&Tensor::zeros([4, 1, 8, 8], (Kind::Float, Device::Cpu)), false)?;
/// assert_eq!(taps.layers.len(), 2);
/// assert_eq!(taps.penultimate.size(), [4, 8]);
/// assert_eq!(model.layer_names(), ["block1", "block2"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct VitModel {
    vit: Vit,
    augment: AugmentConfig,
    lock_matrices: FfnMatrices,
}

/// The name of block `b` (1-based) in records, locks and reports.
pub fn block_name(b: usize) -> String {
    format!("block{b}")
}

/// The name of block `b`'s FFN (1-based) when it is locked.
fn ffn_name(b: usize) -> String {
    format!("{}.ffn", block_name(b))
}

impl VitModel {
    /// Wraps `vit`; `augment` applies to training batches, `lock_matrices` are the FFN matrices
    /// [`CollapseModel::lock_after`] locks in each block after `ℓ*`.
    pub fn new(vit: Vit, augment: AugmentConfig, lock_matrices: FfnMatrices) -> Self {
        Self {
            vit,
            augment,
            lock_matrices,
        }
    }

    /// The ViT.
    pub fn vit(&self) -> &Vit {
        &self.vit
    }

    /// The ViT, mutably (e.g. to lock blocks by hand).
    pub fn vit_mut(&mut self) -> &mut Vit {
        &mut self.vit
    }

    /// The training augmentation.
    pub fn augment_config(&self) -> &AugmentConfig {
        &self.augment
    }

    /// The FFN matrices the adaptive rule locks.
    pub fn lock_matrices(&self) -> FfnMatrices {
        self.lock_matrices
    }
}

impl CollapseModel for VitModel {
    type Error = VitError;

    fn forward_taps(&self, xs: &Tensor, train: bool) -> Result<Taps, VitError> {
        self.vit.forward_features(xs, train)
    }

    fn forward_logits(&self, xs: &Tensor, train: bool) -> Result<Tensor, VitError> {
        self.vit.forward_t(xs, train)
    }

    fn augment(&self, xs: &Tensor, seed: u64, step: u64) -> Result<Tensor, VitError> {
        if self.augment.is_identity() {
            return Ok(xs.shallow_clone());
        }
        augment_batch(xs, &self.augment, seed, step).map_err(VitError::from)
    }

    fn layer_names(&self) -> Vec<String> {
        (1..=self.vit.depth()).map(block_name).collect()
    }

    fn classifier(&self) -> (Tensor, Option<Tensor>) {
        let (w, b) = self.vit.head_weight_bias();
        (w.detach(), b.map(|b| b.detach()))
    }

    fn named_trainable(&self) -> Vec<NamedParam> {
        self.vit.named_trainable()
    }

    /// Locks `lock_matrices` of every block after block `layer` (1-based ℓ*): 1-based blocks
    /// `layer+1 ..= L`, i.e. 0-based `layer ..` for [`Vit::lock_ffn`]. The head is not locked
    /// (§5: only FFNs lock adaptively). Scale and bias handling follow the ViT's `ffn_etf`
    /// settings; each matrix's seed derives from `seed` ([`crate::derive_seed`]).
    fn lock_after(
        &mut self,
        layer: usize,
        orientation: LockOrientation,
        scale: LockScale,
        seed: u64,
        opt: &mut Optimizer,
    ) -> Result<Vec<String>, VitError> {
        let spec = EtfSpec {
            orientation,
            seed,
            ..self.vit.config().ffn_etf.spec()
        };
        let mut newly = Vec::new();
        for block in layer..self.vit.depth() {
            if self
                .vit
                .lock_ffn_scaled(block, self.lock_matrices, &spec, scale, opt)?
                > 0
            {
                newly.push(ffn_name(block + 1));
            }
        }
        Ok(newly)
    }

    fn locked_layers(&self) -> Vec<String> {
        let blocks = (0..self.vit.depth()).filter_map(|b| match self.vit.ffn_locked(b) {
            Some((w1, w2)) if w1 || w2 => Some(ffn_name(b + 1)),
            _ => None,
        });
        let head = self.vit.head_locked().then(|| CLASSIFIER.to_string());
        blocks.chain(head).collect()
    }

    fn total_params(&self) -> i64 {
        self.vit.total_params()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{EtfBlocks, FfnEtfConfig, VitConfig};
    use simplex_etf::optim::{OptimizerConfig, SgdConfig};
    use tch::{nn, Device, Kind};

    fn model(depth: usize, etf_head: bool, blocks: EtfBlocks) -> (nn::VarStore, VitModel) {
        let cfg = VitConfig {
            patch: 4,
            dim: 8,
            depth,
            heads: 2,
            mlp_ratio: 2.0,
            etf_head,
            ffn_etf: FfnEtfConfig {
                blocks,
                orientation: LockOrientation::Canonical,
                ..Default::default()
            },
            ..Default::default()
        };
        let vs = nn::VarStore::new(Device::Cpu);
        let vit = Vit::new(&vs.root(), &cfg, [1, 8, 8], 3).unwrap();
        let m = VitModel::new(vit, AugmentConfig::default(), FfnMatrices::W2);
        (vs, m)
    }

    fn sgd(m: &VitModel) -> Optimizer {
        let mut opt = Optimizer::new(OptimizerConfig::Sgd(SgdConfig::default()));
        for p in m.named_trainable() {
            opt.add(&p).unwrap();
        }
        opt
    }

    #[test]
    fn lock_after_is_one_based_and_monotone() {
        let (_vs, mut m) = model(3, false, EtfBlocks::None);
        let mut opt = sgd(&m);
        let before = m.learnable_params();
        let locked = m
            .lock_after(2, LockOrientation::Random, LockScale::Fixed, 7, &mut opt)
            .unwrap();
        assert_eq!(locked, ["block3.ffn"]);
        // Only W2 (d × rd = 8 × 16) of block 3.
        assert_eq!(before - m.learnable_params(), 8 * 16);
        assert_eq!(m.vit().ffn_locked(2), Some((false, true)));
        let locked = m
            .lock_after(1, LockOrientation::Random, LockScale::Fixed, 7, &mut opt)
            .unwrap();
        assert_eq!(locked, ["block2.ffn"], "block 3 was already locked");
        assert_eq!(m.locked_layers(), ["block2.ffn", "block3.ffn"]);
        assert_eq!(opt.num_params(), m.learnable_params());
        // ℓ* = L: nothing after it.
        assert!(m
            .lock_after(3, LockOrientation::Random, LockScale::Fixed, 7, &mut opt)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn etf_head_is_reported_but_never_locked_adaptively() {
        let (_vs, mut m) = model(2, true, EtfBlocks::LastK(1));
        assert_eq!(m.locked_layers(), ["block2.ffn", "classifier"]);
        let mut opt = sgd(&m);
        let locked = m
            .lock_after(1, LockOrientation::Canonical, LockScale::Fixed, 0, &mut opt)
            .unwrap();
        assert!(locked.is_empty(), "block 2 was constrained from the start");
    }

    #[test]
    fn bad_input_is_a_shape_error() {
        let (_vs, m) = model(1, false, EtfBlocks::None);
        let xs = Tensor::zeros([2, 3, 8, 8], (Kind::Float, Device::Cpu));
        let err = m.forward_logits(&xs, false).unwrap_err();
        assert!(matches!(err, VitError::ImageShape { .. }), "{err}");
        assert!(err.to_string().contains("[B, 1, 8, 8]"), "{err}");
    }
}
