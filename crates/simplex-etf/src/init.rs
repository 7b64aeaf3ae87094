//! PyTorch's module initialisation, the one place every model of the project takes it from
//! (spec §4–§5): a run then starts from the same distribution as the same model written in
//! PyTorch.
//!
//! | module | PyTorch | tch's own default (not used) |
//! |---|---|---|
//! | `nn.Linear(in, out)` | weight and bias `U(±1/√in)` (kaiming_uniform with `a = √5`) | weight `U(±√(6/in))` |
//! | `nn.Conv2d(c, d, k)` | weight and bias `U(±1/√(c·k·k))` | weight `U(±√(6/(c·k·k)))` |
//! | `nn.BatchNorm1d(h)` | `γ = 1`, `β = 0`, eps `1e-5`, momentum `0.1` | `γ ~ U(0, 1)` |
//! | `nn.LayerNorm(d)` | `γ = 1`, `β = 0`, eps `1e-5` | the same |
//!
//! ```
//! use simplex_etf::init;
//! use tch::{nn, Device};
//!
//! let vs = nn::VarStore::new(Device::Cpu);
//! let fc = init::linear(&(vs.root() / "fc"), 400, 10, true);
//! let bound = init::fan_in_bound(400); // 1/√400 = 0.05
//! assert!(fc.ws.abs().max().double_value(&[]) <= bound);
//! let bn = init::batch_norm1d(&(vs.root() / "bn"), 10);
//! assert_eq!(bn.ws.unwrap().min().double_value(&[]), 1.0);
//! ```

use tch::{nn, TchError, Tensor};

/// The bound `1/√fan_in` of PyTorch's Linear and Conv initialisation, for weights
/// (`kaiming_uniform_(a = √5)`: gain `√(2/(1+5))`, bound `√3 · gain/√fan_in`) and biases alike.
pub fn fan_in_bound(fan_in: i64) -> f64 {
    1.0 / (fan_in.max(1) as f64).sqrt()
}

/// `U(±1/√fan_in)`: the [`nn::Init`] of every Linear and Conv weight and bias.
pub fn fan_in_uniform(fan_in: i64) -> nn::Init {
    let bound = fan_in_bound(fan_in);
    nn::Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// `nn.Linear(in_dim, out_dim, bias)`: variables `PATH.weight` `[out, in]` and `PATH.bias` `[out]`.
pub fn linear(path: &nn::Path, in_dim: i64, out_dim: i64, bias: bool) -> nn::Linear {
    nn::linear(
        path,
        in_dim,
        out_dim,
        nn::LinearConfig {
            ws_init: fan_in_uniform(in_dim),
            bs_init: Some(fan_in_uniform(in_dim)),
            bias,
        },
    )
}

/// A Linear bias `U(±1/√in_dim)` as a plain tensor on `path`'s device and kind (for layers
/// whose weight is not a variable of the usual kind, such as fixed ETF maps).
///
/// # Errors
/// A libtorch error creating the tensor.
pub fn linear_bias(path: &nn::Path, in_dim: i64, out_dim: i64) -> Result<Tensor, TchError> {
    nn::f_init(
        fan_in_uniform(in_dim),
        &[out_dim],
        path.device(),
        path.kind(),
    )
}

/// `nn.Conv2d(c_in, c_out, kernel)`'s parameters: weight `[c_out, c_in, k, k]` and bias
/// `[c_out]`, both `U(±1/√(c_in·k·k))`, as variables `PATH.weight` and `PATH.bias`.
///
/// # Errors
/// A libtorch error creating the variables.
pub fn conv2d(
    path: &nn::Path,
    c_in: i64,
    c_out: i64,
    kernel: i64,
) -> Result<(Tensor, Tensor), TchError> {
    let fan_in = c_in * kernel * kernel;
    let w = path.f_var(
        "weight",
        &[c_out, c_in, kernel, kernel],
        fan_in_uniform(fan_in),
    )?;
    let b = path.f_var("bias", &[c_out], fan_in_uniform(fan_in))?;
    Ok((w, b))
}

/// `nn.BatchNorm1d`'s default eps, used by [`batch_norm1d`] (and by stacked models applying the
/// same normalisation to many members at once).
pub const BATCH_NORM_EPS: f64 = 1e-5;
/// `nn.BatchNorm1d`'s default running-average momentum, used by [`batch_norm1d`].
pub const BATCH_NORM_MOMENTUM: f64 = 0.1;

/// `nn.BatchNorm1d(dim)`: `γ = 1`, `β = 0`, eps `1e-5`, momentum `0.1` (running statistics
/// updated as `(1 − 0.1)·running + 0.1·batch`, the variance unbiased, as PyTorch does).
pub fn batch_norm1d(path: &nn::Path, dim: i64) -> nn::BatchNorm {
    nn::batch_norm1d(
        path,
        dim,
        nn::BatchNormConfig {
            cudnn_enabled: true,
            eps: BATCH_NORM_EPS,
            momentum: BATCH_NORM_MOMENTUM,
            affine: true,
            ws_init: nn::Init::Const(1.0),
            bs_init: nn::Init::Const(0.0),
        },
    )
}

/// `nn.LayerNorm(dim)` over the last dimension: `γ = 1`, `β = 0`, eps `1e-5`.
pub fn layer_norm(path: &nn::Path, dim: i64) -> nn::LayerNorm {
    nn::layer_norm(
        path,
        vec![dim],
        nn::LayerNormConfig {
            cudnn_enabled: true,
            eps: LAYER_NORM_EPS,
            elementwise_affine: true,
            ws_init: nn::Init::Const(1.0),
            bs_init: nn::Init::Const(0.0),
        },
    )
}

/// PyTorch's LayerNorm (and BatchNorm) epsilon.
pub const LAYER_NORM_EPS: f64 = 1e-5;

/// Checks that the entries of `t` look like a sample of `U(±bound)`: none beyond the bound, the
/// largest within 2 % of it when `t` has ≥ 1024 entries, mean and standard deviation (`bound/√3`)
/// within five standard errors. What the tests use to keep every module on PyTorch's
/// initialisation; tch's Kaiming default (`√6` times the bound) fails it on all but tiny tensors.
///
/// # Errors
/// A message naming the statistic that is off and its value.
pub fn check_uniform(t: &Tensor, bound: f64) -> Result<(), String> {
    let t = t.detach().to_kind(tch::Kind::Double);
    let n = t.numel() as f64;
    let max = t.abs().max().double_value(&[]);
    let mean = t.mean(tch::Kind::Double).double_value(&[]);
    let std = t.std(false).double_value(&[]);
    let sd = bound / 3f64.sqrt();
    if max > bound * (1.0 + 1e-6) {
        return Err(format!("largest |entry| {max} exceeds the bound {bound}"));
    }
    if n >= 1024.0 && max < 0.98 * bound {
        return Err(format!("largest |entry| {max} far below the bound {bound}"));
    }
    if mean.abs() > 5.0 * sd / n.sqrt() {
        return Err(format!(
            "mean {mean} too far from 0 for U(±{bound}) with {n} entries"
        ));
    }
    // The variance of a sample variance of U(±b) is (4/5)·sd⁴/n, so std's standard error is
    // about sd·√(0.2/n).
    if (std - sd).abs() > 5.0 * sd * (0.2 / n).sqrt() {
        return Err(format!(
            "std {std}, expected {sd} for U(±{bound}) with {n} entries"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn assert_uniform(t: &Tensor, bound: f64) {
        if let Err(e) = check_uniform(t, bound) {
            panic!("{e}");
        }
    }

    #[test]
    fn linear_is_pytorch_default() {
        let vs = nn::VarStore::new(Device::Cpu);
        let fc = linear(&(vs.root() / "fc"), 2048, 512, true);
        assert_eq!(fc.ws.size(), [512, 2048]);
        assert_uniform(&fc.ws, 1.0 / 2048f64.sqrt());
        // 512 biases: enough to see the bound and the spread, not tch's √(6/in).
        assert_uniform(&fc.bs.unwrap(), 1.0 / 2048f64.sqrt());
    }

    #[test]
    fn conv_is_pytorch_default() {
        let vs = nn::VarStore::new(Device::Cpu);
        let (w, b) = conv2d(&(vs.root() / "pe"), 3, 256, 8).unwrap();
        assert_eq!(w.size(), [256, 3, 8, 8]);
        assert_uniform(&w, 1.0 / 192f64.sqrt());
        assert_uniform(&b, 1.0 / 192f64.sqrt());
    }

    #[test]
    fn norms_start_at_identity() {
        let vs = nn::VarStore::new(Device::Cpu);
        let bn = batch_norm1d(&(vs.root() / "bn"), 64);
        let ln = layer_norm(&(vs.root() / "ln"), 64);
        for (g, b) in [(&bn.ws, &bn.bs), (&ln.ws, &ln.bs)] {
            let ones = Tensor::ones([64], (Kind::Float, Device::Cpu));
            assert!(g.as_ref().unwrap().equal(&ones));
            assert!(b.as_ref().unwrap().equal(&ones.zeros_like()));
        }
        // Training-mode BatchNorm: eps 1e-5 in the normalisation, momentum 0.1 and the unbiased
        // batch variance in the running statistics, as torch.nn.BatchNorm1d.
        let x = Tensor::randn([32, 64], (Kind::Float, Device::Cpu)) * 3.0 + 1.0;
        let y = nn::ModuleT::forward_t(&bn, &x, true);
        let mean = x.mean_dim(0, false, Kind::Float);
        let var = x.var_dim(0, false, false);
        let expect = (&x - &mean) / (&var + 1e-5).sqrt();
        assert!(y.allclose(&expect, 1e-5, 1e-5, false));
        let unbiased = x.var_dim(0, true, false);
        assert!(bn.running_mean.allclose(&(&mean * 0.1), 1e-6, 1e-6, false));
        assert!(bn
            .running_var
            .allclose(&(unbiased * 0.1 + 0.9), 1e-5, 1e-6, false));
        let z = nn::Module::forward(&ln, &x);
        let mean = x.mean_dim(-1, true, Kind::Float);
        let var = x.var_dim(-1, false, true);
        assert!(z.allclose(&((&x - mean) / (var + 1e-5).sqrt()), 1e-5, 1e-5, false));
    }
}
