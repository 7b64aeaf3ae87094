//! The Vision Transformer model with lockable (ETF) FFN weights and an optional ETF head.

use etf_train::{NamedParam, Taps};
use simplex_etf::optim::Optimizer;
use simplex_etf::{init, EtfSpec, LockScale, LockableLinear};
use tch::{nn, Tensor};

use crate::block::{apply_ln, layer_norm, param, Block};
use crate::config::{derive_seed, FfnMatrices, SeedSlot, VitConfig};
use crate::error::VitError;
use crate::params::ParamCount;

/// A ViT (algorithms.md §5). Parameters live in the `nn::VarStore` of the path given to
/// [`Vit::new`]; train them through [`Vit::named_trainable`], which never lists an ETF-constrained
/// weight.
///
/// Variable names under the path: `patch_embed.{weight,bias}`, `cls_token`, `pos_embed`,
/// `blocks.{i}.{norm1,norm2}.{weight,bias}`, `blocks.{i}.attn.{qkv,proj}.{weight,bias}`,
/// `blocks.{i}.{fc1,fc2}.*` (the [`LockableLinear`]s), `norm.{weight,bias}`, `head.*`.
#[derive(Debug)]
pub struct Vit {
    cfg: VitConfig,
    input_shape: [i64; 3],
    num_classes: i64,
    patch_weight: Tensor,
    patch_bias: Tensor,
    cls_token: Tensor,
    pos_embed: Tensor,
    blocks: Vec<Block>,
    norm: nn::LayerNorm,
    head: LockableLinear,
    /// Every parameter outside the lockable linears.
    own: Vec<NamedParam>,
}

impl Vit {
    /// Builds the ViT for images `[C, H, W]` and `num_classes` classes under `path`, validating the
    /// configuration first. FFN linears of the `all` / `last-k` blocks and (with `etf_head`) the
    /// head are ETF maps from the start; each gets its own seed ([`derive_seed`]).
    ///
    /// Initialisation (spec §5, [`simplex_etf::init`]): PyTorch's `nn.Linear` / `nn.Conv2d`
    /// defaults for every linear and the patch convolution (weights and biases
    /// `U(±1/√fan_in)`), `nn.LayerNorm` `(1, 0)`, `N(0, 0.02²)` for class token and positions.
    pub fn new(
        path: &nn::Path,
        cfg: &VitConfig,
        input_shape: [i64; 3],
        num_classes: i64,
    ) -> Result<Self, VitError> {
        cfg.validate(input_shape, num_classes)?;
        // tch would silently rename clashing variables, and our names would then be wrong.
        if path.get("cls_token").is_some() {
            return Err(VitError::PathInUse(path.path("cls_token")));
        }
        let d = cfg.dim;
        let p = cfg.patch;
        let n = cfg.num_patches(input_shape);
        let mut own = Vec::new();
        let mut add = |at: &nn::Path, name: &str, t: Tensor, decay: bool| {
            own.push(param(at, name, &t, decay));
            t
        };
        let pe = path / "patch_embed";
        let [c_in, _, _] = input_shape;
        // The patch embedding is a linear map on flattened patches: its weight decays like any
        // Linear/conv weight (timm's rule: decay iff the tensor has ≥ 2 dims, minus embeddings).
        let (w, b) = init::conv2d(&pe, c_in, d, p)?;
        let patch_weight = add(&pe, "weight", w, true);
        let patch_bias = add(&pe, "bias", b, false);
        let cls = path.f_randn("cls_token", &[1, 1, d], 0.0, 0.02)?;
        let cls_token = add(path, "cls_token", cls, false);
        let pos = path.f_randn("pos_embed", &[1, n + 1, d], 0.0, 0.02)?;
        let pos_embed = add(path, "pos_embed", pos, false);
        let blocks = (0..cfg.depth)
            .map(|i| Block::new(&(path / "blocks" / i), cfg, i, &mut own))
            .collect::<Result<Vec<_>, _>>()?;
        let norm = layer_norm(&(path / "norm"), d, &mut own);
        let head = if cfg.etf_head {
            let spec = EtfSpec {
                seed: derive_seed(cfg.ffn_etf.seed, SeedSlot::Head),
                ..cfg.ffn_etf.spec()
            };
            LockableLinear::new_etf(&(path / "head"), d, num_classes, true, &spec)?
        } else {
            LockableLinear::new(&(path / "head"), d, num_classes, true)
        };
        Ok(Self {
            cfg: cfg.clone(),
            input_shape,
            num_classes,
            patch_weight,
            patch_bias,
            cls_token,
            pos_embed,
            blocks,
            norm,
            head,
            own,
        })
    }

    /// The configuration the model was built with.
    pub fn config(&self) -> &VitConfig {
        &self.cfg
    }

    /// Input shape `[C, H, W]`.
    pub fn input_shape(&self) -> [i64; 3] {
        self.input_shape
    }

    /// Number of classes.
    pub fn num_classes(&self) -> i64 {
        self.num_classes
    }

    /// Number of blocks.
    pub fn depth(&self) -> usize {
        self.blocks.len()
    }

    /// The blocks, in order.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// Logits `[B, C]` of an image batch `[B, C, H, W]`.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, VitError> {
        Ok(self.forward_features(xs, train)?.logits)
    }

    /// Full forward pass with what the diagnostics read: the logits, as tapped layers the class
    /// token of the residual stream at the output of each block (`[B, d]`, before the final
    /// LayerNorm), and as penultimate features the head's input (the class token after the
    /// final LayerNorm).
    pub fn forward_features(&self, xs: &Tensor, train: bool) -> Result<Taps, VitError> {
        let size = xs.size();
        let [c, h, w] = self.input_shape;
        if size.len() != 4 || size[1..] != [c, h, w] {
            return Err(VitError::ImageShape {
                expected: format!("[B, {c}, {h}, {w}]"),
                got: size,
            });
        }
        let b = size[0];
        let p = self.cfg.patch;
        // Conv with stride = kernel = P: one linear map per non-overlapping patch, [B, d, H/P, W/P].
        let tokens = xs
            .f_conv2d(
                &self.patch_weight,
                Some(&self.patch_bias),
                [p, p],
                [0, 0],
                [1, 1],
                1,
            )?
            .f_flatten(2, 3)?
            .f_transpose(1, 2)?;
        let cls = self.cls_token.f_expand([b, 1, self.cfg.dim], false)?;
        let mut x = Tensor::f_cat(&[cls, tokens], 1)?
            .f_add(&self.pos_embed)?
            .f_dropout(self.cfg.dropout, train)?;
        let mut block_cls = Vec::with_capacity(self.blocks.len());
        for block in &self.blocks {
            x = block.forward_t(&x, train)?;
            block_cls.push(x.f_select(1, 0)?);
        }
        let head_input = apply_ln(&self.norm, &x.f_select(1, 0)?)?;
        let logits = self.head.f_forward(&head_input)?;
        Ok(Taps {
            logits,
            layers: block_cls,
            penultimate: head_input,
        })
    }

    fn lockables(&self) -> impl Iterator<Item = &LockableLinear> {
        self.blocks
            .iter()
            .flat_map(|b| [&b.fc1, &b.fc2])
            .chain(std::iter::once(&self.head))
    }

    /// Locks the FFN matrices `matrices` of block `block` (0-based) to ETF maps and removes them
    /// from `opt` (with their optimiser state). Matrix `W1`/`W2` of block `i` uses the seed
    /// `derive_seed(spec.seed, SeedSlot::W1(i) / W2(i))`. Locking is monotone: an already locked
    /// matrix is left as it is. Returns how many matrices were newly locked.
    pub fn lock_ffn(
        &mut self,
        block: usize,
        matrices: FfnMatrices,
        spec: &EtfSpec,
        opt: &mut Optimizer,
    ) -> Result<usize, VitError> {
        self.lock_ffn_scaled(block, matrices, spec, LockScale::Fixed, opt)
    }

    /// [`Vit::lock_ffn`] at the given lock scale ([`LockableLinear::lock_scaled`]): with
    /// `Matched`, each matrix gets its own least-squares scale.
    pub fn lock_ffn_scaled(
        &mut self,
        block: usize,
        matrices: FfnMatrices,
        spec: &EtfSpec,
        scale: LockScale,
        opt: &mut Optimizer,
    ) -> Result<usize, VitError> {
        let depth = self.blocks.len();
        let b = self
            .blocks
            .get_mut(block)
            .ok_or(VitError::BlockOutOfRange { block, depth })?;
        let mut newly = 0;
        for (on, lin, slot) in [
            (matrices.w1(), &mut b.fc1, SeedSlot::W1(block)),
            (matrices.w2(), &mut b.fc2, SeedSlot::W2(block)),
        ] {
            if on {
                let s = EtfSpec {
                    seed: derive_seed(spec.seed, slot),
                    ..*spec
                };
                newly += usize::from(lin.lock_scaled(&s, scale, opt)?);
            }
        }
        Ok(newly)
    }

    /// Locks the FFN matrices `matrices` of every block from `first_block` (0-based) to the last,
    /// as the adaptive variant does once block `first_block − 1` is separable (§4, §5). Returns
    /// how many matrices were newly locked; `first_block ≥ depth` locks nothing.
    pub fn lock_ffn_from(
        &mut self,
        first_block: usize,
        matrices: FfnMatrices,
        spec: &EtfSpec,
        opt: &mut Optimizer,
    ) -> Result<usize, VitError> {
        (first_block..self.blocks.len())
            .map(|b| self.lock_ffn(b, matrices, spec, opt))
            .sum()
    }

    /// Whether `W1` and `W2` of block `block` are ETF-constrained; `None` past the depth.
    pub fn ffn_locked(&self, block: usize) -> Option<(bool, bool)> {
        self.blocks
            .get(block)
            .map(|b| (b.fc1.is_locked(), b.fc2.is_locked()))
    }

    /// Whether the head is a fixed ETF map.
    pub fn head_locked(&self) -> bool {
        self.head.is_locked()
    }

    /// Every trainable tensor with its VarStore name and whether weight decay applies. Decay
    /// applies to the weights of linears and of the patch embedding; not to biases, LayerNorms,
    /// class token or position embedding (timm's rule). Constrained (ETF) weights are never
    /// listed.
    pub fn named_trainable(&self) -> Vec<NamedParam> {
        let own = self
            .own
            .iter()
            .map(|p| NamedParam::new(&p.name, &p.tensor, p.weight_decay));
        let lockable = self.lockables().flat_map(|l| l.trainable_tensors(false));
        own.chain(lockable).collect()
    }

    /// Number of trainable scalars.
    pub fn learnable_params(&self) -> i64 {
        self.named_trainable()
            .iter()
            .map(|p| p.tensor.numel() as i64)
            .sum()
    }

    /// Number of scalars, constrained weights included.
    pub fn total_params(&self) -> i64 {
        let own: i64 = self.own.iter().map(|p| p.tensor.numel() as i64).sum();
        own + self
            .lockables()
            .map(LockableLinear::total_params)
            .sum::<i64>()
    }

    /// Total and learnable parameters of all FFN linears (weights and biases).
    pub fn ffn_params(&self) -> ParamCount {
        self.blocks
            .iter()
            .flat_map(|b| [&b.fc1, &b.fc2])
            .fold(ParamCount::default(), |acc, l| ParamCount {
                total: acc.total + l.total_params(),
                learnable: acc.learnable + l.learnable_params(),
            })
    }

    /// Total and learnable parameters of the whole model.
    pub fn param_count(&self) -> ParamCount {
        ParamCount {
            total: self.total_params(),
            learnable: self.learnable_params(),
        }
    }

    /// The classifier's weight `[C, d]` and bias `[C]` (shallow copies), for the classifier
    /// diagnostics (NC2 on `W`, NC3, NC4).
    pub fn head_weight_bias(&self) -> (Tensor, Option<Tensor>) {
        (
            self.head.weight().shallow_clone(),
            self.head.bias().map(Tensor::shallow_clone),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn dropout_acts_only_in_training() {
        tch::manual_seed(1);
        let cfg = VitConfig {
            patch: 4,
            dim: 8,
            depth: 1,
            heads: 2,
            dropout: 0.3,
            attn_dropout: 0.3,
            ..Default::default()
        };
        let vs = nn::VarStore::new(Device::Cpu);
        let vit = Vit::new(&vs.root(), &cfg, [1, 8, 8], 3).unwrap();
        let xs = Tensor::randn([4, 1, 8, 8], (Kind::Float, Device::Cpu));
        let a = vit.forward_t(&xs, false).unwrap();
        assert!(a.equal(&vit.forward_t(&xs, false).unwrap()));
        assert!(!a.allclose(&vit.forward_t(&xs, true).unwrap(), 1e-6, 1e-6, false));
    }
}
