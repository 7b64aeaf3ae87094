//! One pre-LN transformer block `[x + MHSA(LN(x)); x + FFN(LN(x))]` with lockable FFN linears.

use simplex_etf::optim::NamedParam;
use simplex_etf::{init, EtfSpec, LockableLinear};
use tch::{nn, Tensor};

use crate::attention::MultiHeadAttention;
use crate::config::{derive_seed, SeedSlot, VitConfig};
use crate::error::VitError;

/// `tensor` as a trainable parameter named `path.name`.
pub(crate) fn param(path: &nn::Path, name: &str, tensor: &Tensor, decay: bool) -> NamedParam {
    NamedParam::new(&path.path(name), tensor, decay)
}

/// A LayerNorm over the last dimension (ε = 1e-5, affine), registering its parameters.
pub(crate) fn layer_norm(path: &nn::Path, dim: i64, params: &mut Vec<NamedParam>) -> nn::LayerNorm {
    let ln = init::layer_norm(path, dim);
    for (n, t) in [("weight", &ln.ws), ("bias", &ln.bs)] {
        if let Some(t) = t {
            params.push(param(path, n, t, false));
        }
    }
    ln
}

/// Applies `ln` with libtorch's fallible op.
pub(crate) fn apply_ln(ln: &nn::LayerNorm, xs: &Tensor) -> Result<Tensor, VitError> {
    Ok(xs.f_layer_norm(
        ln.normalized_shape.as_slice(),
        ln.ws.as_ref(),
        ln.bs.as_ref(),
        init::LAYER_NORM_EPS,
        true,
    )?)
}

/// A transformer block. `fc1` (`W1 ∈ R^{rd×d}`) and `fc2` (`W2 ∈ R^{d×rd}`) are
/// [`LockableLinear`]s: ETF maps from the start or locked later (§5).
#[derive(Debug)]
pub struct Block {
    /// LayerNorm before attention.
    pub norm1: nn::LayerNorm,
    /// Multi-head self-attention.
    pub attn: MultiHeadAttention,
    /// LayerNorm before the FFN.
    pub norm2: nn::LayerNorm,
    /// FFN expansion `d → r·d`.
    pub fc1: LockableLinear,
    /// FFN contraction `r·d → d`.
    pub fc2: LockableLinear,
    dropout: f64,
}

impl Block {
    /// Builds block `index` under `path`, its FFN constrained from the start when the config says
    /// so. Parameters other than the FFN linears are appended to `params`.
    pub(crate) fn new(
        path: &nn::Path,
        cfg: &VitConfig,
        index: usize,
        params: &mut Vec<NamedParam>,
    ) -> Result<Self, VitError> {
        let d = cfg.dim;
        let hidden = cfg.hidden_dim();
        let norm1 = layer_norm(&(path / "norm1"), d, params);
        let attn = MultiHeadAttention::new(
            &(path / "attn"),
            d,
            cfg.heads,
            cfg.attn_dropout,
            cfg.dropout,
        )?;
        for (sub, lin) in [("qkv", &attn.qkv), ("proj", &attn.proj)] {
            let p = path / "attn" / sub;
            params.push(param(&p, "weight", &lin.ws, true));
            params.extend(lin.bs.iter().map(|b| param(&p, "bias", b, false)));
        }
        let norm2 = layer_norm(&(path / "norm2"), d, params);
        let etf = &cfg.ffn_etf;
        let constrained = etf.constrained_at_start(index, cfg.depth);
        let make = |name: &str, i: i64, o: i64, on: bool, slot: SeedSlot| {
            let p = path / name;
            if constrained && on {
                let spec = EtfSpec {
                    seed: derive_seed(etf.seed, slot),
                    ..etf.spec()
                };
                LockableLinear::new_etf(&p, i, o, true, &spec).map_err(VitError::from)
            } else {
                Ok(LockableLinear::new(&p, i, o, true))
            }
        };
        let fc1 = make("fc1", d, hidden, etf.matrices.w1(), SeedSlot::W1(index))?;
        let fc2 = make("fc2", hidden, d, etf.matrices.w2(), SeedSlot::W2(index))?;
        Ok(Self {
            norm1,
            attn,
            norm2,
            fc1,
            fc2,
            dropout: cfg.dropout,
        })
    }

    /// `x + MHSA(LN(x))`, then `x + FFN(LN(x))`, on tokens `[B, N, d]`.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, VitError> {
        let xs = xs.f_add(&self.attn.forward_t(&apply_ln(&self.norm1, xs)?, train)?)?;
        let h = self.fc1.f_forward(&apply_ln(&self.norm2, &xs)?)?;
        // Exact (erf) GELU, as PyTorch's nn.GELU() default.
        let h = h.f_gelu("none")?.f_dropout(self.dropout, train)?;
        let h = self.fc2.f_forward(&h)?.f_dropout(self.dropout, train)?;
        Ok(xs.f_add(&h)?)
    }
}
