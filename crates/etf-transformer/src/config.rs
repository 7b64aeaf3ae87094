//! Serde configuration of the ViT and of its ETF constraints (algorithms.md §5), with validation.

use serde::{Deserialize, Serialize};
use simplex_etf::{EtfSpec, LockOrientation};

use crate::error::ConfigError;

/// Which transformer blocks have ETF-constrained FFN weights.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum EtfBlocks {
    /// No constraint: the baseline ViT.
    #[default]
    None,
    /// Every block, from the start.
    All,
    /// The last `k` blocks (`1 ≤ k ≤ depth`), from the start.
    LastK(usize),
    /// Blocks lock during training, decided by the trainer's lock rule from the class-token NCC
    /// accuracy per block (as §4: once block `ℓ*` is separable, the FFNs of blocks after it
    /// lock; τ and patience are `etf_train::AdaptiveConfig`'s). The model starts
    /// unconstrained; [`crate::Vit::lock_ffn`] is the mechanism.
    Adaptive,
}

/// Which FFN matrices of a constrained block are ETF maps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FfnMatrices {
    /// The expansion `W1 ∈ R^{rd×d}` only.
    W1,
    /// The contraction `W2 ∈ R^{d×rd}` only.
    W2,
    /// Both.
    #[default]
    Both,
}

impl FfnMatrices {
    /// Includes `W1`.
    pub fn w1(self) -> bool {
        matches!(self, Self::W1 | Self::Both)
    }

    /// Includes `W2`.
    pub fn w2(self) -> bool {
        matches!(self, Self::W2 | Self::Both)
    }

    /// Number of matrices selected (1 or 2).
    pub fn count(self) -> i64 {
        i64::from(self.w1()) + i64::from(self.w2())
    }
}

/// The ETF constraint on FFN weights (§5): which blocks, which matrices, which orientation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FfnEtfConfig {
    /// Which blocks.
    pub blocks: EtfBlocks,
    /// Which matrices of each constrained block.
    pub matrices: FfnMatrices,
    /// Orientation of the ETFs (`random` by default: `canonical` leaves hidden units
    /// `d+1 … r·d` of `W1` with zero weights). `nearest` (the ETF nearest to the current weight)
    /// only applies to locking a trained layer, so only to `adaptive` blocks without `etf_head`.
    pub orientation: LockOrientation,
    /// Base seed of the `random` orientation; each matrix derives its own, see [`derive_seed`].
    pub seed: u64,
    /// Fixed scale `α` of every ETF map (§2).
    pub alpha: f64,
    /// Freeze the biases of constrained linears too (by default they stay trainable).
    pub freeze_bias: bool,
}

impl Default for FfnEtfConfig {
    fn default() -> Self {
        Self {
            blocks: EtfBlocks::None,
            matrices: FfnMatrices::Both,
            orientation: LockOrientation::Random,
            seed: 0,
            alpha: 1.0,
            freeze_bias: false,
        }
    }
}

/// Which matrix a derived seed is for (see [`derive_seed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedSlot {
    /// `W1` of a block.
    W1(usize),
    /// `W2` of a block.
    W2(usize),
    /// The classifier head.
    Head,
}

/// Seed of one ETF matrix, from the base seed: distinct matrices get distinct, well-mixed seeds
/// ([`etf_rng::mix`]), so e.g. `W2` is not simply `W1ᵀ` under the `random` orientation.
pub fn derive_seed(base: u64, slot: SeedSlot) -> u64 {
    let tag = match slot {
        SeedSlot::W1(b) => 2 * b as u64 + 1,
        SeedSlot::W2(b) => 2 * b as u64 + 2,
        SeedSlot::Head => 0,
    };
    etf_rng::mix(base, tag)
}

impl FfnEtfConfig {
    /// The [`EtfSpec`] of these settings with the base seed (callers derive per-matrix seeds).
    pub fn spec(&self) -> EtfSpec {
        EtfSpec {
            orientation: self.orientation,
            seed: self.seed,
            alpha: self.alpha,
            freeze_bias: self.freeze_bias,
        }
    }

    /// Whether block `block` (0-based) of a `depth`-block model is constrained from the start.
    pub fn constrained_at_start(&self, block: usize, depth: usize) -> bool {
        match self.blocks {
            EtfBlocks::All => true,
            EtfBlocks::LastK(k) => block + k >= depth,
            EtfBlocks::None | EtfBlocks::Adaptive => false,
        }
    }
}

/// A Vision Transformer: patch embedding, class token, learned position embedding, `depth` pre-LN
/// blocks `[x + MHSA(LN(x)); x + FFN(LN(x))]`, final LN, linear head on the class token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VitConfig {
    /// Patch size `P` (square patches; the image height and width must be multiples of it).
    pub patch: i64,
    /// Model width `d`.
    pub dim: i64,
    /// Number of blocks `L`.
    pub depth: usize,
    /// Attention heads (`dim` must be a multiple).
    pub heads: i64,
    /// FFN expansion `r`: the hidden width is `round(r·d)`.
    pub mlp_ratio: f64,
    /// Dropout after the embedding, inside the FFN (after GELU and after `W2`) and after the
    /// attention output projection.
    pub dropout: f64,
    /// Dropout on the attention probabilities.
    pub attn_dropout: f64,
    /// The head is a fixed ETF map (Zhu et al. 2021) with the orientation, seed, scale and bias
    /// setting of `ffn_etf`.
    pub etf_head: bool,
    /// ETF constraints on the FFN weights.
    pub ffn_etf: FfnEtfConfig,
}

impl Default for VitConfig {
    /// A small ViT for 28×28 and 32×32 images: patch 4, d = 128, 6 blocks, 4 heads, r = 4.
    fn default() -> Self {
        Self {
            patch: 4,
            dim: 128,
            depth: 6,
            heads: 4,
            mlp_ratio: 4.0,
            dropout: 0.0,
            attn_dropout: 0.0,
            etf_head: false,
            ffn_etf: FfnEtfConfig::default(),
        }
    }
}

fn out_of_range(field: &'static str, value: impl ToString, allowed: &'static str) -> ConfigError {
    ConfigError::OutOfRange {
        field,
        value: value.to_string(),
        allowed,
    }
}

impl VitConfig {
    /// FFN hidden width `round(r·d)`.
    pub fn hidden_dim(&self) -> i64 {
        (self.dim as f64 * self.mlp_ratio).round() as i64
    }

    /// Number of patches `(H/P)·(W/P)` of an input `[C, H, W]` (unchecked).
    pub fn num_patches(&self, input_shape: [i64; 3]) -> i64 {
        (input_shape[1] / self.patch) * (input_shape[2] / self.patch)
    }

    /// The baseline ViT of the same shape: no ETF FFNs, trainable head (for the learnable-parameter
    /// reduction, e.g. `expected_param_count(&cfg.baseline(), ..)`).
    pub fn baseline(&self) -> VitConfig {
        VitConfig {
            etf_head: false,
            ffn_etf: FfnEtfConfig::default(),
            ..self.clone()
        }
    }

    /// Checks the configuration for an input `[C, H, W]` and `num_classes`; the error names the
    /// key and the allowed values.
    pub fn validate(&self, input_shape: [i64; 3], num_classes: i64) -> Result<(), ConfigError> {
        let [c, h, w] = input_shape;
        if c < 1 || h < 1 || w < 1 {
            return Err(out_of_range(
                "input_shape",
                format!("{input_shape:?}"),
                "[C, H, W] with every entry >= 1",
            ));
        }
        if num_classes < 2 {
            return Err(out_of_range("num_classes", num_classes, "an integer >= 2"));
        }
        if self.patch < 1 {
            return Err(out_of_range("vit.patch", self.patch, "an integer >= 1"));
        }
        if h % self.patch != 0 || w % self.patch != 0 {
            return Err(ConfigError::ImageNotDivisibleByPatch {
                height: h,
                width: w,
                patch: self.patch,
            });
        }
        if self.dim < 2 {
            return Err(out_of_range("vit.dim", self.dim, "an integer >= 2"));
        }
        if self.heads < 1 || self.dim % self.heads != 0 {
            return Err(ConfigError::DimNotDivisibleByHeads {
                dim: self.dim,
                heads: self.heads,
            });
        }
        if self.depth < 1 {
            return Err(out_of_range("vit.depth", self.depth, "an integer >= 1"));
        }
        if !(self.mlp_ratio.is_finite() && self.mlp_ratio > 0.0 && self.hidden_dim() >= 2) {
            return Err(out_of_range(
                "vit.mlp_ratio",
                self.mlp_ratio,
                "a finite number > 0 with round(mlp_ratio * dim) >= 2",
            ));
        }
        for (field, p) in [
            ("vit.dropout", self.dropout),
            ("vit.attn_dropout", self.attn_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(out_of_range(field, p, "a probability in [0, 1)"));
            }
        }
        self.validate_etf()
    }

    fn validate_etf(&self) -> Result<(), ConfigError> {
        let etf = &self.ffn_etf;
        match etf.blocks {
            EtfBlocks::LastK(k) if k < 1 || k > self.depth => {
                return Err(ConfigError::LastKOutOfRange {
                    k,
                    depth: self.depth,
                });
            }
            _ => {}
        }
        let fixed_at_start = matches!(etf.blocks, EtfBlocks::All | EtfBlocks::LastK(_));
        if etf.orientation == LockOrientation::Nearest && (fixed_at_start || self.etf_head) {
            return Err(out_of_range(
                "vit.ffn_etf.orientation",
                "nearest",
                "canonical, random, gaussian or orthogonal for maps fixed from the start (blocks = all / last-k, \
                 etf_head = true); nearest only for adaptive locking",
            ));
        }
        if !(etf.alpha.is_finite() && etf.alpha > 0.0) {
            return Err(out_of_range(
                "vit.ffn_etf.alpha",
                etf.alpha,
                "a finite number > 0",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_differ_per_matrix() {
        let seeds = [
            SeedSlot::W1(0),
            SeedSlot::W2(0),
            SeedSlot::W1(1),
            SeedSlot::Head,
        ]
        .map(|s| derive_seed(7, s));
        for i in 0..seeds.len() {
            for j in 0..i {
                assert_ne!(seeds[i], seeds[j]);
            }
        }
        assert_eq!(derive_seed(7, SeedSlot::W1(0)), seeds[0]);
        // Pinned from the formula before it moved to `etf_rng::mix`: every `random` ETF of a
        // ViT is drawn from these seeds.
        assert_eq!(derive_seed(7, SeedSlot::W1(0)), 0xF75F_04CB_B5A1_A1DD);
        assert_eq!(derive_seed(7, SeedSlot::W2(0)), 0xB346_6F8A_7B81_A989);
    }

    #[test]
    fn last_k_selects_the_last_blocks() {
        let cfg = FfnEtfConfig {
            blocks: EtfBlocks::LastK(2),
            ..Default::default()
        };
        let picked: Vec<bool> = (0..4).map(|b| cfg.constrained_at_start(b, 4)).collect();
        assert_eq!(picked, [false, false, true, true]);
    }
}
