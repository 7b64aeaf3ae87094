//! Parameter counts of the ViT, by formula (no model built).

use crate::config::{EtfBlocks, VitConfig};
use crate::error::ConfigError;

/// A parameter count: every scalar of the model, and those an optimiser updates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParamCount {
    /// All parameters, constrained ETF weights included.
    pub total: i64,
    /// Trainable parameters (constrained weights, and frozen biases, excluded).
    pub learnable: i64,
}

impl ParamCount {
    /// Fraction of learnable parameters saved against `baseline` (`1 − learnable/baseline`).
    pub fn reduction_vs(&self, baseline: &ParamCount) -> f64 {
        if baseline.learnable == 0 {
            return 0.0;
        }
        1.0 - self.learnable as f64 / baseline.learnable as f64
    }
}

/// The parameter count of [`crate::Vit::new`] with this configuration, computed by hand.
///
/// With `d` = dim, `h = round(r·d)`, `N = (H/P)(W/P)` patches and `C` classes:
/// - patch embedding `d·C_in·P² + d`, class token `d`, position embedding `(N+1)·d`;
/// - per block: two LayerNorms `4d`, qkv `3d² + 3d`, projection `d² + d`,
///   `W1` `d·h + h`, `W2` `h·d + d`;
/// - final LayerNorm `2d`; head `d·C + C`.
///
/// Learnable excludes the ETF weights fixed from the start (`all` / `last-k` blocks, the chosen
/// matrices; none for `adaptive`, which starts unconstrained), their biases when `freeze_bias`,
/// and the ETF head's weight (and bias when `freeze_bias`).
pub fn expected_param_count(
    cfg: &VitConfig,
    input_shape: [i64; 3],
    num_classes: i64,
) -> Result<ParamCount, ConfigError> {
    cfg.validate(input_shape, num_classes)?;
    let (d, h, p, c) = (cfg.dim, cfg.hidden_dim(), cfg.patch, num_classes);
    let n = cfg.num_patches(input_shape);
    let embed = d * input_shape[0] * p * p + d + d + (n + 1) * d;
    let block = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (d * h + h) + (h * d + d);
    let depth = cfg.depth as i64;
    let total = embed + depth * block + 2 * d + (d * c + c);

    let etf = &cfg.ffn_etf;
    let fb = etf.freeze_bias;
    let per_block_fixed = if etf.matrices.w1() {
        d * h + if fb { h } else { 0 }
    } else {
        0
    } + if etf.matrices.w2() {
        h * d + if fb { d } else { 0 }
    } else {
        0
    };
    let fixed_blocks = match etf.blocks {
        EtfBlocks::All => depth,
        EtfBlocks::LastK(k) => k as i64,
        EtfBlocks::None | EtfBlocks::Adaptive => 0,
    };
    let head_fixed = if cfg.etf_head {
        d * c + if fb { c } else { 0 }
    } else {
        0
    };
    Ok(ParamCount {
        total,
        learnable: total - fixed_blocks * per_block_fixed - head_fixed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_small_case() {
        // d=4, r=2 (h=8), P=2 on 1x4x4 (N=4), depth 1, 3 classes.
        let cfg = VitConfig {
            patch: 2,
            dim: 4,
            depth: 1,
            heads: 2,
            mlp_ratio: 2.0,
            ..Default::default()
        };
        let count = expected_param_count(&cfg, [1, 4, 4], 3).unwrap();
        let embed = 4 * 4 + 4 + 4 + 5 * 4; // 44
        let block = 16 + (48 + 12) + (16 + 4) + (32 + 8) + (32 + 4); // 172
        let tail = 8 + (12 + 3); // 23
        assert_eq!(
            count,
            ParamCount {
                total: embed + block + tail,
                learnable: 239
            }
        );
    }

    #[test]
    fn reduction_is_a_fraction() {
        let base = ParamCount {
            total: 100,
            learnable: 100,
        };
        let etf = ParamCount {
            total: 100,
            learnable: 60,
        };
        assert!((etf.reduction_vs(&base) - 0.4).abs() < 1e-12);
    }
}
