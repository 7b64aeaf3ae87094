//! The MLP of §4 as a [`CollapseModel`].

use crate::config::{FeatureTap, MlpConfig, MlpVariant};
use crate::MlpError;
use etf_train::{CollapseModel, NamedParam, Taps, CLASSIFIER};
use simplex_etf::optim::Optimizer;
use simplex_etf::{init, EtfSpec, LockOrientation, LockScale, LockableLinear};
use std::collections::HashMap;
use tch::nn::{self, ModuleT};
use tch::Tensor;

/// The name of hidden layer `l` (1-based) everywhere: VarStore path, records, locks, reports.
pub fn layer_name(l: usize) -> String {
    format!("hidden{l}")
}

impl MlpVariant {
    /// Checks the variant against an MLP of `depth` hidden layers (`k` in range, no `nearest`
    /// for layers fixed from the start), as [`Mlp::new`] does, without building anything: an
    /// experiment checks every variant before the first one trains.
    pub fn validate(&self, depth: usize) -> Result<(), MlpError> {
        fixed_layers(self, depth).map(|_| ())
    }
}

/// The first layer (1-based; `depth + 1` is the classifier) that `variant` fixes to an ETF map
/// from the start, and its orientation; `depth + 2` and `None` when none is.
fn fixed_layers(
    variant: &MlpVariant,
    depth: usize,
) -> Result<(usize, Option<LockOrientation>), MlpError> {
    let (fixed_from, orientation) = match variant {
        MlpVariant::EtfClassifier { orientation } => (depth + 1, Some(*orientation)),
        MlpVariant::FixedLastK { k, orientation } => {
            if *k == 0 || *k > depth + 1 {
                return Err(MlpError::Config(format!(
                    "variant k must be in 1..={} (the classifier plus up to {depth} hidden \
                     layers), got {k}",
                    depth + 1
                )));
            }
            (depth + 2 - k, Some(*orientation))
        }
        MlpVariant::Baseline | MlpVariant::Adaptive(_) => (depth + 2, None),
    };
    if orientation == Some(LockOrientation::Nearest) {
        return Err(MlpError::Config(
            "orientation \"nearest\" needs a trained weight; layers fixed from the start take \
             \"canonical\", \"random\", \"gaussian\" or \"orthogonal\""
                .into(),
        ));
    }
    Ok((fixed_from, orientation))
}

struct Block {
    fc: LockableLinear,
    bn: Option<nn::BatchNorm>,
}

/// The MLP of algorithms.md §4: flatten → `L × [Linear, BatchNorm1d?, ReLU]` → Linear classifier.
///
/// ```
/// use adaptive_etf::{Mlp, MlpConfig, MlpVariant};
/// use etf_train::CollapseModel;
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
    ) -> Result<Self, MlpError> {
        cfg.validate().map_err(MlpError::Config)?;
        let depth = cfg.depth;
        let (fixed_from, fixed_orientation) = fixed_layers(variant, depth)?;
        let spec_for = |layer: usize| EtfSpec {
            orientation: fixed_orientation.unwrap_or(LockOrientation::Canonical),
            seed: layer as u64,
            ..EtfSpec::default()
        };
        let mut blocks = Vec::with_capacity(depth);
        let mut in_dim = input_dim;
        for l in 1..=depth {
            let p = path / layer_name(l);
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
        let cp = path / CLASSIFIER;
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
    ) -> Result<(Tensor, Vec<Tensor>, Tensor), MlpError> {
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

    /// The stacked forward pass ([`CollapseModel::forward_stacked`]), by batched products
    /// (`batched`, what an accelerator gets) or member by member on views (what a CPU gets):
    /// the same function either way.
    pub fn forward_stacked_by(
        &self,
        vars: &HashMap<String, Tensor>,
        xs: &Tensor,
        train: bool,
        batched: bool,
    ) -> Result<Tensor, MlpError> {
        let get = |name: &str| {
            vars.get(name)
                .ok_or_else(|| MlpError::Config(format!("the stacked variables have no {name:?}")))
        };
        // On an accelerator one batched product per layer (a step is bound by launches); on
        // a CPU, where libtorch's batched product is ~20 % slower than its plain one at these
        // sizes, one `x Wᵀ + b` per member over views (`unbind`, whose gradient is one stack).
        let linear = |hs: &[Tensor], fc: &LockableLinear| -> Result<Vec<Tensor>, MlpError> {
            let w = get(fc.weight_name())?;
            let b = fc.bias().map(|_| get(fc.bias_name())).transpose()?;
            if batched {
                // [M, B, in] × [M, in, out] + [M, 1, out]
                let h = Tensor::f_stack(hs, 0)?;
                let wt = w.f_transpose(1, 2)?;
                let z = match b {
                    Some(b) => b.f_unsqueeze(1)?.f_baddbmm(&h, &wt, 1.0, 1.0)?,
                    None => h.f_bmm(&wt)?,
                };
                return Ok(z.f_unbind(0)?);
            }
            let ws = w.f_unbind(0)?;
            let bs = b.map(|b| b.f_unbind(0)).transpose()?;
            (0..hs.len())
                .map(|m| {
                    let y = match &bs {
                        Some(bs) => bs[m].f_addmm(&hs[m], &ws[m].f_tr()?)?,
                        None => hs[m].f_mm(&ws[m].f_tr()?)?,
                    };
                    Ok(y)
                })
                .collect()
        };
        let mut hs = xs.f_flatten(2, -1)?.f_unbind(0)?;
        for (i, block) in self.blocks.iter().enumerate() {
            let zs = linear(&hs, &block.fc)?;
            hs = match &block.bn {
                Some(_) => {
                    let stacked = |suffix: &str| {
                        let name = format!("{}.bn.{suffix}", layer_name(i + 1));
                        get(&name)
                    };
                    let [w, b, mean, var] =
                        ["weight", "bias", "running_mean", "running_var"].map(stacked);
                    let (w, b, mean, var) = (w?, b?, mean?, var?);
                    let norm = |z: &Tensor, w: &Tensor, b: &Tensor, mean: &Tensor, var: &Tensor| {
                        z.f_batch_norm(
                            Some(w),
                            Some(b),
                            Some(mean),
                            Some(var),
                            train,
                            init::BATCH_NORM_MOMENTUM,
                            init::BATCH_NORM_EPS,
                            true,
                        )
                    };
                    if batched {
                        // BatchNorm1d over [B, M·C]: one channel per (member, feature), so
                        // every member has its own batch statistics and running averages
                        // (views of the stacked [M, C] buffers, updated in place), by
                        // PyTorch's own kernel, in one launch.
                        let c = zs[0].size()[1];
                        let flat = |t: &Tensor| t.f_view([-1]);
                        let (fw, fb) = (flat(w)?, flat(b)?);
                        let (fm, fv) = (flat(mean)?, flat(var)?);
                        norm(&Tensor::f_cat(&zs, 1)?, &fw, &fb, &fm, &fv)?
                            .f_relu()?
                            .f_split(c, 1)?
                    } else {
                        // Member by member, on views of the stacked parameters and running
                        // statistics (updated in place): a single run's own kernels.
                        let mut out = Vec::with_capacity(zs.len());
                        for (m, z) in zs.iter().enumerate() {
                            let at = |t: &Tensor| t.f_get(m as i64);
                            let y = norm(z, &at(w)?, &at(b)?, &at(mean)?, &at(var)?)?;
                            out.push(y.f_relu()?);
                        }
                        out
                    }
                }
                None => zs.iter().map(|z| z.f_relu()).collect::<Result<_, _>>()?,
            };
        }
        Ok(Tensor::f_stack(&linear(&hs, &self.classifier)?, 0)?)
    }

    fn lockables(&self) -> impl Iterator<Item = (String, &LockableLinear)> {
        self.blocks
            .iter()
            .enumerate()
            .map(|(i, b)| (layer_name(i + 1), &b.fc))
            .chain(std::iter::once((CLASSIFIER.to_string(), &self.classifier)))
    }
}

impl CollapseModel for Mlp {
    type Error = MlpError;

    fn forward_taps(&self, xs: &Tensor, train: bool) -> Result<Taps, MlpError> {
        let (logits, layers, penultimate) = self.run(xs, train, true)?;
        Ok(Taps {
            logits,
            layers,
            penultimate,
        })
    }

    fn forward_logits(&self, xs: &Tensor, train: bool) -> Result<Tensor, MlpError> {
        Ok(self.run(xs, train, false)?.0)
    }

    fn layer_names(&self) -> Vec<String> {
        (1..=self.blocks.len()).map(layer_name).collect()
    }

    fn classifier(&self) -> (Tensor, Option<Tensor>) {
        (
            self.classifier.weight().detach(),
            self.classifier.bias().map(Tensor::detach),
        )
    }

    fn named_trainable(&self) -> Vec<NamedParam> {
        // PyTorch's default: weight decay on every parameter, biases and BatchNorm included.
        let mut out = Vec::new();
        for (i, block) in self.blocks.iter().enumerate() {
            out.extend(block.fc.trainable_tensors(true));
            if let Some(bn) = &block.bn {
                for (suffix, t) in [("weight", &bn.ws), ("bias", &bn.bs)] {
                    if let Some(t) = t {
                        let name = format!("{}.bn.{suffix}", layer_name(i + 1));
                        out.push(NamedParam::new(&name, t, true));
                    }
                }
            }
        }
        out.extend(self.classifier.trainable_tensors(true));
        out
    }

    fn lock_after(
        &mut self,
        layer: usize,
        orientation: LockOrientation,
        scale: LockScale,
        seed: u64,
        opt: &mut Optimizer,
    ) -> Result<Vec<String>, MlpError> {
        let mut newly = Vec::new();
        let depth = self.blocks.len();
        if layer > depth {
            return Err(MlpError::Config(format!(
                "cannot lock the layers after hidden layer {layer}: the MLP has {depth}"
            )));
        }
        for l in layer + 1..=depth + 1 {
            let (name, fc) = if l <= depth {
                (layer_name(l), &mut self.blocks[l - 1].fc)
            } else {
                (CLASSIFIER.to_string(), &mut self.classifier)
            };
            if fc.is_locked() {
                continue;
            }
            let spec = EtfSpec {
                orientation,
                seed: seed.wrapping_add(l as u64),
                ..EtfSpec::default()
            };
            fc.lock_scaled(&spec, scale, opt)?;
            newly.push(name);
        }
        Ok(newly)
    }

    fn can_stack(&self) -> bool {
        true
    }

    fn forward_stacked(
        &self,
        vars: &HashMap<String, Tensor>,
        xs: &Tensor,
        train: bool,
    ) -> Option<Result<Tensor, MlpError>> {
        let batched = xs.device() != tch::Device::Cpu;
        Some(self.forward_stacked_by(vars, xs, train, batched))
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
