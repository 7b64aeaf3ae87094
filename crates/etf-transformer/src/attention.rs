//! Multi-head self-attention: `softmax(Q Kᵀ / √d_h) V` per head, then an output projection.

use simplex_etf::init;
use tch::{nn, Tensor};

use crate::error::VitError;

/// Multi-head self-attention over a token sequence `[B, N, d]`.
///
/// One fused `qkv` linear (`d → 3d`, with bias) gives queries, keys and values; head `h` owns the
/// rows `h·d_h … (h+1)·d_h − 1` of each of the three `d × d` blocks, with `d_h = d / heads`. The
/// per-head attention `softmax(Q_h K_hᵀ / √d_h) V_h` runs through libtorch's
/// `scaled_dot_product_attention` (its fused CPU/GPU kernels); the heads are concatenated and
/// projected by `proj` (`d → d`, with bias).
#[derive(Debug)]
pub struct MultiHeadAttention {
    /// Fused query/key/value projection, weight `[3d, d]`, bias `[3d]`.
    pub qkv: nn::Linear,
    /// Output projection, weight `[d, d]`, bias `[d]`.
    pub proj: nn::Linear,
    heads: i64,
    dim: i64,
    attn_dropout: f64,
    proj_dropout: f64,
}

impl MultiHeadAttention {
    /// Creates the attention under `path` (`path/qkv`, `path/proj`).
    ///
    /// `attn_dropout` drops attention probabilities, `proj_dropout` the projected output; both only
    /// in training mode. Errors when `dim` is not a positive multiple of `heads`.
    pub fn new(
        path: &nn::Path,
        dim: i64,
        heads: i64,
        attn_dropout: f64,
        proj_dropout: f64,
    ) -> Result<Self, VitError> {
        if dim <= 0 || heads <= 0 || dim % heads != 0 {
            return Err(crate::ConfigError::DimNotDivisibleByHeads { dim, heads }.into());
        }
        // Two `nn.Linear`s (timm's layout, PyTorch's Linear init), not `nn.MultiheadAttention`,
        // whose fused input projection is Xavier-initialised with zero biases.
        let qkv = init::linear(&(path / "qkv"), dim, 3 * dim, true);
        let proj = init::linear(&(path / "proj"), dim, dim, true);
        Ok(Self {
            qkv,
            proj,
            heads,
            dim,
            attn_dropout,
            proj_dropout,
        })
    }

    /// Number of heads.
    pub fn heads(&self) -> i64 {
        self.heads
    }

    /// Applies attention to `xs: [B, N, d]`, returning `[B, N, d]`.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, VitError> {
        let size = xs.size();
        if size.len() != 3 || size[2] != self.dim {
            return Err(VitError::TokenShape {
                expected_dim: self.dim,
                got: size,
            });
        }
        let (b, n) = (size[0], size[1]);
        let head_dim = self.dim / self.heads;
        // [B, N, 3d] → [3, B, heads, N, d_h]: the fused rows split as (q|k|v, head, d_h).
        let qkv = xs
            .f_linear(&self.qkv.ws, self.qkv.bs.as_ref())?
            .f_reshape([b, n, 3, self.heads, head_dim])?
            .f_permute([2, 0, 3, 1, 4])?;
        let (q, k, v) = (qkv.f_get(0)?, qkv.f_get(1)?, qkv.f_get(2)?);
        let p = if train { self.attn_dropout } else { 0.0 };
        // scale None = 1/√d_h, the standard scaling.
        let out = Tensor::f_scaled_dot_product_attention(
            &q,
            &k,
            &v,
            None::<Tensor>,
            p,
            false,
            None,
            false,
        )?;
        let out = out.f_transpose(1, 2)?.f_reshape([b, n, self.dim])?;
        let out = out.f_linear(&self.proj.ws, self.proj.bs.as_ref())?;
        Ok(out.f_dropout(self.proj_dropout, train)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// Direct per-head computation with explicit loops: for every sample and head,
    /// `softmax(q kᵀ/√d_h) v` from slices of the fused weight, then concatenation and projection.
    fn direct(att: &MultiHeadAttention, xs: &Tensor) -> Tensor {
        let size = xs.size();
        let (b, n, d) = (size[0], size[1], size[2]);
        let h = att.heads;
        let dh = d / h;
        let w = &att.qkv.ws;
        let bias = att.qkv.bs.as_ref().unwrap();
        let mut samples = Vec::new();
        for s in 0..b {
            let x = xs.get(s); // [N, d]
            let mut heads = Vec::new();
            for head in 0..h {
                let rows = |block: i64| {
                    let start = block * d + head * dh;
                    (w.narrow(0, start, dh), bias.narrow(0, start, dh))
                };
                let (wq, bq) = rows(0);
                let (wk, bk) = rows(1);
                let (wv, bv) = rows(2);
                let q = x.matmul(&wq.tr()) + bq;
                let k = x.matmul(&wk.tr()) + bk;
                let v = x.matmul(&wv.tr()) + bv;
                let mut out_rows = Vec::new();
                for i in 0..n {
                    let scores = k.matmul(&q.get(i)) / (dh as f64).sqrt(); // [N]
                    let probs = scores.softmax(0, Kind::Double);
                    out_rows.push(probs.unsqueeze(0).matmul(&v).squeeze_dim(0));
                }
                heads.push(Tensor::stack(&out_rows, 0));
            }
            let cat = Tensor::cat(&heads, 1); // [N, d]
            samples.push(cat.matmul(&att.proj.ws.tr()) + att.proj.bs.as_ref().unwrap());
        }
        Tensor::stack(&samples, 0)
    }

    #[test]
    fn matches_direct_per_head_computation() {
        tch::manual_seed(3);
        let mut vs = nn::VarStore::new(Device::Cpu);
        vs.set_kind(Kind::Double);
        let att = MultiHeadAttention::new(&vs.root(), 12, 3, 0.0, 0.0).unwrap();
        let xs = Tensor::randn([2, 5, 12], (Kind::Double, Device::Cpu));
        let fast = att.forward_t(&xs, false).unwrap();
        let slow = direct(&att, &xs);
        assert_eq!(fast.size(), vec![2, 5, 12]);
        let err = (fast - slow).abs().max().double_value(&[]);
        assert!(err < 1e-10, "max abs difference {err}");
    }

    #[test]
    fn rejects_bad_shapes() {
        let vs = nn::VarStore::new(Device::Cpu);
        assert!(MultiHeadAttention::new(&vs.root(), 10, 3, 0.0, 0.0).is_err());
        let att = MultiHeadAttention::new(&vs.root(), 8, 2, 0.0, 0.0).unwrap();
        let xs = Tensor::zeros([2, 3, 7], (Kind::Float, Device::Cpu));
        assert!(matches!(
            att.forward_t(&xs, false),
            Err(VitError::TokenShape { .. })
        ));
    }

    #[test]
    fn attention_dropout_only_in_training() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let att = MultiHeadAttention::new(&vs.root(), 8, 2, 0.5, 0.0).unwrap();
        let xs = Tensor::randn([2, 4, 8], (Kind::Float, Device::Cpu));
        let eval1 = att.forward_t(&xs, false).unwrap();
        let eval2 = att.forward_t(&xs, false).unwrap();
        assert!(eval1.equal(&eval2));
        let train = att.forward_t(&xs, true).unwrap();
        assert!(!train.allclose(&eval1, 1e-6, 1e-6, false));
    }
}
