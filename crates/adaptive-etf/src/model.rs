//! The models the trainer drives: the [`CollapseModel`] interface and the MLP of §4.

use crate::config::{FeatureTap, MlpConfig, MlpVariant};
use crate::TrainError;
use simplex_etf::optim::Optimizer;
use simplex_etf::{init, EtfSpec, LockOrientation, LockableLinear};
use tch::nn::{self, ModuleT};
use tch::Tensor;

/// What one forward pass exposes to the collapse diagnostics.
pub struct Taps {
    /// Classifier outputs `[B, C]`.
    pub logits: Tensor,
    /// Features of each tapped layer (hidden blocks), `[B, d_ℓ]` each.
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

/// A trainable named tensor and whether weight decay applies to it.
pub struct NamedParam {
    /// Its variable name in the model's `VarStore`.
    pub name: String,
    /// The tensor itself (shares storage with the model).
    pub tensor: Tensor,
    /// Whether the optimiser applies weight decay to it.
    pub weight_decay: bool,
}

/// A classifier network whose hidden layers the trainer measures and can lock.
pub trait CollapseModel {
    /// Logits and the tapped features.
    fn forward_taps(&self, xs: &Tensor, train: bool) -> Result<Taps, TrainError>;
    /// Logits only (the training step).
    fn forward_logits(&self, xs: &Tensor, train: bool) -> Result<Tensor, TrainError>;
    /// Data augmentation of a training batch; a pure function of `(seed, step)` so a resumed
    /// run replays it. The default is none.
    fn augment(&self, xs: &Tensor, _seed: u64, _step: u64) -> Result<Tensor, TrainError> {
        Ok(xs.shallow_clone())
    }
    /// Names of the tapped layers, in order.
    fn layer_names(&self) -> Vec<String>;
    /// The classifier `(W [C, d], b [C])`, detached.
    fn classifier(&self) -> (Tensor, Option<Tensor>);
    /// Trainable tensors (what the optimiser holds).
    fn named_trainable(&self) -> Vec<NamedParam>;
    /// Locks every lockable layer after hidden layer `layer` (1-based) to an ETF map and removes
    /// its weights from `opt`. Returns the names of the newly locked layers.
    fn lock_after(
        &mut self,
        layer: usize,
        orientation: LockOrientation,
        seed: u64,
        opt: &mut Optimizer,
    ) -> Result<Vec<String>, TrainError>;
    /// Names of the layers whose weights are ETF maps now.
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
}

struct Block {
    fc: LockableLinear,
    bn: Option<nn::BatchNorm>,
}

/// The MLP of algorithms.md §4: flatten → `L × [Linear, BatchNorm1d?, ReLU]` → Linear classifier.
///
/// ```
/// use adaptive_etf::{CollapseModel, Mlp, MlpConfig, MlpVariant};
/// let vs = tch::nn::VarStore::new(tch::Device::Cpu);
/// let cfg = MlpConfig { depth: 2, width: 16, ..MlpConfig::default() };
/// let mlp = Mlp::new(&vs.root(), &cfg, 8, 3, &MlpVariant::Baseline).unwrap();
/// let taps = mlp.forward_taps(&tch::Tensor::zeros([4, 8], (tch::Kind::Float, tch::Device::Cpu)), false).unwrap();
/// assert_eq!(taps.logits.size(), vec![4, 3]);
/// assert_eq!(taps.layers.len(), 2);
/// // 8·16+16 + 2·16 (BN) + 16·16+16 + 2·16 + 16·3+3
/// assert_eq!(mlp.learnable_params(), 144 + 32 + 272 + 32 + 51);
/// ```
pub struct Mlp {
    blocks: Vec<Block>,
    classifier: LockableLinear,
    tap: FeatureTap,
}

impl Mlp {
    /// Builds the MLP for `input_dim` features and `num_classes` classes; the variant decides
    /// which layers are ETF maps from the start.
    pub fn new(
        path: &nn::Path,
        cfg: &MlpConfig,
        input_dim: i64,
        num_classes: i64,
        variant: &MlpVariant,
    ) -> Result<Self, TrainError> {
        cfg.validate().map_err(TrainError::Config)?;
        let depth = cfg.depth;
        // Hidden layers fixed from the start (1-based), and the classifier's orientation.
        let (fixed_from, fixed_orientation) = match variant {
            MlpVariant::EtfClassifier { orientation } => (depth + 1, Some(*orientation)),
            MlpVariant::FixedLastK { k, orientation } => {
                if *k == 0 || *k > depth + 1 {
                    return Err(TrainError::Config(format!(
                        "variant k must be in 1..={} (the classifier plus up to {depth} hidden \
                         layers), got {k}",
                        depth + 1
                    )));
                }
                (depth + 2 - k, Some(*orientation))
            }
            MlpVariant::Baseline | MlpVariant::Adaptive(_) => (depth + 2, None),
        };
        if fixed_orientation == Some(LockOrientation::Nearest) {
            return Err(TrainError::Config(
                "orientation \"nearest\" needs a trained weight; layers fixed from the start take \
                 \"canonical\" or \"random\""
                    .into(),
            ));
        }
        let spec_for = |layer: usize| EtfSpec {
            orientation: fixed_orientation.unwrap_or(LockOrientation::Canonical),
            seed: layer as u64,
            ..EtfSpec::default()
        };
        let mut blocks = Vec::with_capacity(depth);
        let mut in_dim = input_dim;
        for l in 1..=depth {
            let p = path / format!("hidden{l}");
            let fc = if l >= fixed_from {
                LockableLinear::new_etf(&(&p / "fc"), in_dim, cfg.width, true, &spec_for(l))?
            } else {
                LockableLinear::new(&(&p / "fc"), in_dim, cfg.width, true)
            };
            let bn = cfg
                .batch_norm
                .then(|| init::batch_norm1d(&(&p / "bn"), cfg.width));
            blocks.push(Block { fc, bn });
            in_dim = cfg.width;
        }
        let cp = path / "classifier";
        let classifier = if fixed_from <= depth + 1 {
            LockableLinear::new_etf(&cp, in_dim, num_classes, true, &spec_for(depth + 1))?
        } else {
            LockableLinear::new(&cp, in_dim, num_classes, true)
        };
        Ok(Self {
            blocks,
            classifier,
            tap: cfg.tap,
        })
    }

    fn run(
        &self,
        xs: &Tensor,
        train: bool,
        keep_taps: bool,
    ) -> Result<(Tensor, Vec<Tensor>, Tensor), TrainError> {
        let mut h = xs.f_flatten(1, -1)?;
        let mut taps = Vec::with_capacity(if keep_taps { self.blocks.len() } else { 0 });
        for block in &self.blocks {
            let z = block.fc.f_forward(&h)?;
            let a = match &block.bn {
                Some(bn) => bn.forward_t(&z, train),
                None => z.shallow_clone(),
            }
            .relu();
            if keep_taps {
                taps.push(match self.tap {
                    FeatureTap::PreBn => z,
                    FeatureTap::PostActivation => a.shallow_clone(),
                });
            }
            h = a;
        }
        let logits = self.classifier.f_forward(&h)?;
        Ok((logits, taps, h))
    }

    fn lockables(&self) -> impl Iterator<Item = (String, &LockableLinear)> {
        self.blocks
            .iter()
            .enumerate()
            .map(|(i, b)| (format!("hidden{}", i + 1), &b.fc))
            .chain(std::iter::once((
                "classifier".to_string(),
                &self.classifier,
            )))
    }
}

impl CollapseModel for Mlp {
    fn forward_taps(&self, xs: &Tensor, train: bool) -> Result<Taps, TrainError> {
        let (logits, layers, penultimate) = self.run(xs, train, true)?;
        Ok(Taps {
            logits,
            layers,
            penultimate,
        })
    }

    fn forward_logits(&self, xs: &Tensor, train: bool) -> Result<Tensor, TrainError> {
        Ok(self.run(xs, train, false)?.0)
    }

    fn layer_names(&self) -> Vec<String> {
        (1..=self.blocks.len())
            .map(|l| format!("hidden{l}"))
            .collect()
    }

    fn classifier(&self) -> (Tensor, Option<Tensor>) {
        (
            self.classifier.weight().detach(),
            self.classifier.bias().map(Tensor::detach),
        )
    }

    fn named_trainable(&self) -> Vec<NamedParam> {
        let mut out = Vec::new();
        for (i, block) in self.blocks.iter().enumerate() {
            for (name, tensor) in block.fc.trainable_tensors() {
                out.push(NamedParam {
                    name,
                    tensor,
                    weight_decay: true,
                });
            }
            if let Some(bn) = &block.bn {
                for (suffix, t) in [("weight", &bn.ws), ("bias", &bn.bs)] {
                    if let Some(t) = t {
                        out.push(NamedParam {
                            name: format!("hidden{}.bn.{suffix}", i + 1),
                            tensor: t.shallow_clone(),
                            weight_decay: true,
                        });
                    }
                }
            }
        }
        for (name, tensor) in self.classifier.trainable_tensors() {
            out.push(NamedParam {
                name,
                tensor,
                weight_decay: true,
            });
        }
        out
    }

    fn lock_after(
        &mut self,
        layer: usize,
        orientation: LockOrientation,
        seed: u64,
        opt: &mut Optimizer,
    ) -> Result<Vec<String>, TrainError> {
        let mut newly = Vec::new();
        let depth = self.blocks.len();
        for l in layer + 1..=depth + 1 {
            let (name, fc) = if l <= depth {
                (format!("hidden{l}"), &mut self.blocks[l - 1].fc)
            } else {
                ("classifier".to_string(), &mut self.classifier)
            };
            if fc.is_locked() {
                continue;
            }
            let spec = EtfSpec {
                orientation,
                seed: seed.wrapping_add(l as u64),
                ..EtfSpec::default()
            };
            fc.lock(&spec, opt)?;
            newly.push(name);
        }
        Ok(newly)
    }

    fn locked_layers(&self) -> Vec<String> {
        self.lockables()
            .filter(|(_, fc)| fc.is_locked())
            .map(|(n, _)| n)
            .collect()
    }

    fn total_params(&self) -> i64 {
        let bn: i64 = self
            .blocks
            .iter()
            .filter_map(|b| b.bn.as_ref())
            .map(|bn| {
                bn.ws.as_ref().map_or(0, |t| t.numel() as i64)
                    + bn.bs.as_ref().map_or(0, |t| t.numel() as i64)
            })
            .sum();
        self.lockables()
            .map(|(_, fc)| fc.total_params())
            .sum::<i64>()
            + bn
    }
}
