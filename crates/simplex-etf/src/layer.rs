//! Linear layers constrained to ETF maps (spec §2), from the start or by locking (spec §4).

use crate::control::{control_map, Control};
use crate::etf::{
    canonical_etf_forward, check_alpha, cpu_f64, etf_map, etf_map_deviation, Orientation,
};
use crate::optim::{numel, same_tensor, set_grads_to_none, NamedParam, Optimizer};
use crate::EtfError;
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

/// Configuration-level choice of the frozen map: an ETF orientation (spec §1) or a non-ETF
/// control (spec §7), so a control goes wherever an ETF map goes. `Random` and the controls
/// take their seed from [`EtfSpec::seed`]; `Nearest` needs an existing weight, so it only
/// applies to [`LockableLinear::lock`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockOrientation {
    /// The first `K` coordinate axes: a scaled centring, applied by the fast path.
    #[default]
    Canonical,
    /// A seeded random orthonormal frame.
    Random,
    /// The ETF map nearest to the layer's current weight.
    Nearest,
    /// Not an ETF: the frozen Gaussian control of spec §7 ([`Control::Gaussian`]), seeded as
    /// `Random`.
    Gaussian,
    /// Not an ETF: the frozen semi-orthogonal control of spec §7 ([`Control::Orthogonal`]),
    /// seeded as `Random`.
    Orthogonal,
}

impl LockOrientation {
    /// The control map this value names, if it names one rather than an ETF orientation.
    pub fn control(self) -> Option<Control> {
        match self {
            Self::Gaussian => Some(Control::Gaussian),
            Self::Orthogonal => Some(Control::Orthogonal),
            Self::Canonical | Self::Random | Self::Nearest => None,
        }
    }
}

/// The scale of a lock (spec §7): the configured `α`, or the least-squares scale of the chosen
/// map to the layer's current weight, which removes the jump in the weight's norm (and in the
/// classifier's logit scale) that a fixed `α` makes at the lock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockScale {
    /// `α` of the [`EtfSpec`].
    #[default]
    Fixed,
    /// `α* = ⟨W, M₁⟩_F / ‖M₁‖²_F` with `M₁` the map of scale 1 (`tr(Yᵀ M)/K`, spec §7).
    Matched,
}

/// How a layer is constrained to an ETF map.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct EtfSpec {
    /// Orientation of the ETF.
    pub orientation: LockOrientation,
    /// Seed for [`LockOrientation::Random`] (ignored otherwise).
    pub seed: u64,
    /// Fixed scale `α` of the map `W = αM` (or `αMᵀ`).
    pub alpha: f64,
    /// Whether the bias is frozen too (by default it stays trainable, as in the author's code).
    pub freeze_bias: bool,
}

impl Default for EtfSpec {
    /// Canonical, seed 0, `α = 1`, trainable bias.
    fn default() -> Self {
        Self {
            orientation: LockOrientation::Canonical,
            seed: 0,
            alpha: 1.0,
            freeze_bias: false,
        }
    }
}

impl EtfSpec {
    /// A spec with the given orientation and seed and default scale and bias handling.
    pub fn new(orientation: LockOrientation, seed: u64) -> Self {
        Self {
            orientation,
            seed,
            ..Self::default()
        }
    }

    /// The `out×in` weight of this spec (scale `alpha`), nearest to `current` for `Nearest`.
    fn weight(
        &self,
        out_dim: i64,
        in_dim: i64,
        current: Option<&Tensor>,
        kind: Kind,
        device: Device,
    ) -> Result<Tensor, EtfError> {
        let orientation = match (self.orientation, current) {
            (LockOrientation::Canonical, _) => Orientation::Canonical,
            (LockOrientation::Random, _) => Orientation::Random { seed: self.seed },
            (LockOrientation::Nearest, Some(w)) => Orientation::Nearest(w),
            (LockOrientation::Nearest, None) => return Err(EtfError::NearestNeedsWeight),
            (LockOrientation::Gaussian | LockOrientation::Orthogonal, _) => {
                let control = self.orientation.control().expect("a control orientation");
                return control_map(
                    out_dim, in_dim, self.alpha, control, self.seed, kind, device,
                );
            }
        };
        etf_map(out_dim, in_dim, self.alpha, orientation, kind, device)
    }
}

/// A linear layer `y = x Wᵀ + b` that is trainable until locked to an ETF map (spec §2, §4).
///
/// Its weight and bias are VarStore variables (named `PATH.weight`, `PATH.bias`), so
/// `VarStore::save`/`load` carry them whether locked or not. Once locked, the weight no longer
/// requires grad, has an undefined gradient and is out of the [`Optimizer`]: no optimiser step
/// can move it. A layer locked to the `canonical` orientation is applied by
/// [`canonical_etf_forward`] in `O(batch · max(in, out))`.
#[derive(Debug)]
pub struct LockableLinear {
    weight: Tensor,
    bias: Option<Tensor>,
    weight_name: String,
    bias_name: String,
    in_dim: i64,
    out_dim: i64,
    lock: Option<EtfSpec>,
    /// Applied by the dense product even when locked canonical (a matched-scale lock).
    dense: bool,
}

impl LockableLinear {
    /// A trainable layer initialised as PyTorch's `nn.Linear` (weight and bias `U(±1/√in)`,
    /// [`crate::init::linear`]). As with `nn::linear`, `path` must not hold a `weight` yet (tch
    /// would rename the new variable and the layer's names would be wrong).
    pub fn new(path: &nn::Path, in_dim: i64, out_dim: i64, bias: bool) -> Self {
        let lin = crate::init::linear(path, in_dim, out_dim, bias);
        Self {
            weight: lin.ws,
            bias: lin.bs,
            weight_name: path.path("weight"),
            bias_name: path.path("bias"),
            in_dim,
            out_dim,
            lock: None,
            dense: false,
        }
    }

    /// A layer constrained to an ETF map from the start (spec §2): its weight is registered in
    /// the VarStore as a *non-trainable* variable (so checkpoints carry it); the bias is
    /// trainable unless `spec.freeze_bias`. Built from `spec` alone, so the same spec rebuilds the
    /// same weight (for `random`, bit-identical on the same machine).
    ///
    /// # Errors
    /// `Nearest` orientation, invalid dimensions or scale, or a `weight` already under `path`.
    pub fn new_etf(
        path: &nn::Path,
        in_dim: i64,
        out_dim: i64,
        bias: bool,
        spec: &EtfSpec,
    ) -> Result<Self, EtfError> {
        if spec.orientation == LockOrientation::Nearest {
            return Err(EtfError::NearestNeedsWeight);
        }
        for name in ["weight", "bias"] {
            if path.get(name).is_some() {
                return Err(EtfError::DuplicateVariable(path.path(name)));
            }
        }
        let w = spec.weight(out_dim, in_dim, None, path.kind(), path.device())?;
        let bias = if bias {
            let b = crate::init::linear_bias(path, in_dim, out_dim)?;
            Some(path.add("bias", b, !spec.freeze_bias))
        } else {
            None
        };
        Ok(Self {
            weight: path.add("weight", w, false),
            bias,
            weight_name: path.path("weight"),
            bias_name: path.path("bias"),
            in_dim,
            out_dim,
            lock: Some(*spec),
            dense: false,
        })
    }

    /// Locks the layer to an ETF map (what Adaptive-ETF does mid-training, spec §4): the weight
    /// is overwritten in place by the ETF map of `spec` (`Nearest`: the one nearest to the
    /// current weight, which disturbs the function least), stops requiring grad, gets an
    /// undefined gradient and leaves `opt` together with its momentum / Adam state; so does the
    /// bias if `spec.freeze_bias`.
    ///
    /// Returns `Ok(true)` when the layer was locked now, `Ok(false)` (and changes nothing, even
    /// if `spec` differs) when it was locked already: locking is monotone.
    /// The weight stays in the VarStore's trainable list (tch gives a layer no way back to its
    /// store); call [`LockableLinear::release_from_var_store`] to drop it from there too.
    ///
    /// # Errors
    /// Invalid scale, or a current weight with non-finite values for `Nearest`. On error the
    /// layer and `opt` are unchanged.
    pub fn lock(&mut self, spec: &EtfSpec, opt: &mut Optimizer) -> Result<bool, EtfError> {
        self.lock_scaled(spec, LockScale::Fixed, opt)
    }

    /// [`LockableLinear::lock`] at the given scale. With [`LockScale::Matched`] the weight
    /// becomes `α* M₁` ([`matched_scale`]) and the recorded spec holds `α*` as its `alpha`; the
    /// layer is then applied densely even when canonical, so a resumed run (whose lock is
    /// re-applied to a fresh weight, then overwritten by the saved one) computes what the
    /// saved weight says.
    ///
    /// # Errors
    /// As [`LockableLinear::lock`], and [`EtfError::InvalidAlpha`] when `α*` is zero or not
    /// finite (a weight orthogonal to the map).
    pub fn lock_scaled(
        &mut self,
        spec: &EtfSpec,
        scale: LockScale,
        opt: &mut Optimizer,
    ) -> Result<bool, EtfError> {
        if self.lock.is_some() {
            return Ok(false);
        }
        check_alpha(spec.alpha)?;
        let (kind, device) = (self.weight.kind(), self.weight.device());
        let (spec, w) = match scale {
            LockScale::Fixed => {
                let w = spec.weight(self.out_dim, self.in_dim, Some(&self.weight), kind, device)?;
                (*spec, w)
            }
            LockScale::Matched => {
                let unit = EtfSpec {
                    alpha: 1.0,
                    ..*spec
                };
                let m1 = unit.weight(
                    self.out_dim,
                    self.in_dim,
                    Some(&self.weight),
                    Kind::Double,
                    Device::Cpu,
                )?;
                let alpha = matched_scale(&self.weight, &m1)?;
                check_alpha(alpha)?;
                let w = m1
                    .f_mul_scalar(alpha)?
                    .f_to_kind(kind)?
                    .f_to_device(device)?;
                self.dense = true;
                (EtfSpec { alpha, ..*spec }, w)
            }
        };
        tch::no_grad(|| self.weight.f_copy_(&w))?;
        self.freeze(&spec, opt);
        Ok(true)
    }

    /// Marks the layer as locked with `spec` *keeping* its current weight, for resuming from a
    /// checkpoint: build the model, `VarStore::load` it, then restore each layer that was
    /// locked. (Re-running `lock` with `Nearest` would recompute the map and lose bit-exactness.)
    /// Removes the weight (and a frozen bias) from `opt` like [`LockableLinear::lock`].
    /// Returns `Ok(false)` when already locked.
    ///
    /// # Errors
    /// [`EtfError::NotAnEtfMap`] when the weight is not an ETF map of scale `spec.alpha` (for
    /// `canonical` and `random`: not *the* map of `spec`), within a tolerance for its kind.
    pub fn restore_lock(&mut self, spec: &EtfSpec, opt: &mut Optimizer) -> Result<bool, EtfError> {
        if self.lock.is_some() {
            return Ok(false);
        }
        check_alpha(spec.alpha)?;
        let tolerance = match self.weight.kind() {
            Kind::Double => 1e-9,
            Kind::Float => 1e-4,
            _ => 1e-2,
        };
        let deviation = if spec.orientation == LockOrientation::Nearest {
            etf_map_deviation(&self.weight, spec.alpha)?
        } else {
            let expected =
                spec.weight(self.out_dim, self.in_dim, None, Kind::Double, Device::Cpu)?;
            let w = cpu_f64(&self.weight)?;
            w.f_sub(&expected)?.f_abs()?.f_max()?.f_double_value(&[])? / spec.alpha.abs()
        };
        if deviation.is_nan() || deviation > tolerance {
            return Err(EtfError::NotAnEtfMap {
                name: self.weight_name.clone(),
                deviation,
                tolerance,
            });
        }
        self.freeze(spec, opt);
        Ok(true)
    }

    fn freeze(&mut self, spec: &EtfSpec, opt: &mut Optimizer) {
        let mut frozen = vec![&self.weight];
        if spec.freeze_bias {
            frozen.extend(self.bias.as_ref());
        }
        for t in &frozen {
            let _ = t.set_requires_grad(false);
            opt.remove_tensor(t);
        }
        set_grads_to_none(&frozen);
        self.lock = Some(*spec);
    }

    /// Drops this layer's frozen tensors (the locked weight, a frozen bias) from `vs`'s list of
    /// trainable variables, so an optimiser later built from `vs` (e.g. tch's `nn::Sgd`) never
    /// sees them and `vs.unfreeze()` cannot re-enable their gradients. They stay in the store's
    /// named variables, so `vs.save`/`vs.load` still carry them. Returns how many were dropped.
    pub fn release_from_var_store(&self, vs: &nn::VarStore) -> usize {
        if self.lock.is_none() {
            return 0;
        }
        let mut frozen = vec![&self.weight];
        if self.lock.is_some_and(|s| s.freeze_bias) {
            frozen.extend(self.bias.as_ref());
        }
        let mut vars = match vs.variables_.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let before = vars.trainable_variables.len();
        vars.trainable_variables
            .retain(|v| !frozen.iter().any(|t| same_tensor(&v.tensor, t)));
        before - vars.trainable_variables.len()
    }

    /// Registers the trainable tensors in `opt` under their VarStore names; the weight with
    /// weight decay, the bias with weight decay iff `decay_bias`.
    ///
    /// # Errors
    /// As [`Optimizer::add_param`] (e.g. registered twice).
    pub fn register(&self, opt: &mut Optimizer, decay_bias: bool) -> Result<(), EtfError> {
        for p in self.trainable_tensors(decay_bias) {
            opt.add(&p)?;
        }
        Ok(())
    }

    /// The fallible forward pass: `x Wᵀ + b`, by the canonical fast path when locked canonical.
    ///
    /// # Errors
    /// An input whose last dimension is not `in_dim`.
    pub fn f_forward(&self, xs: &Tensor) -> Result<Tensor, EtfError> {
        match self.lock {
            Some(spec) if spec.orientation == LockOrientation::Canonical && !self.dense => {
                let y = canonical_etf_forward(xs, self.out_dim, self.in_dim, spec.alpha)?;
                match &self.bias {
                    Some(b) => Ok(y.f_add(b)?),
                    None => Ok(y),
                }
            }
            Some(_) => frozen_dense_forward(xs, &self.weight, self.bias.as_ref()),
            None => Ok(xs.f_linear(&self.weight, self.bias.as_ref())?),
        }
    }

    /// Whether the weight is constrained to an ETF map.
    pub fn is_locked(&self) -> bool {
        self.lock.is_some()
    }

    /// The spec the layer was locked (or constructed) with.
    pub fn lock_spec(&self) -> Option<&EtfSpec> {
        self.lock.as_ref()
    }

    /// The weight, `out × in`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias, if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// Full VarStore name of the weight, e.g. `hidden.3.fc.weight`.
    pub fn weight_name(&self) -> &str {
        &self.weight_name
    }

    /// Full VarStore name of the bias (whether or not the layer has one).
    pub fn bias_name(&self) -> &str {
        &self.bias_name
    }

    /// Input width.
    pub fn in_dim(&self) -> i64 {
        self.in_dim
    }

    /// Output width.
    pub fn out_dim(&self) -> i64 {
        self.out_dim
    }

    /// Number of learnable scalars: the sizes of [`LockableLinear::trainable_tensors`].
    pub fn learnable_params(&self) -> i64 {
        self.trainable_tensors(true)
            .iter()
            .map(|p| numel(&p.tensor))
            .sum()
    }

    /// Number of scalars, learnable or not (weight and bias).
    pub fn total_params(&self) -> i64 {
        numel(&self.weight) + self.bias.as_ref().map_or(0, numel)
    }

    /// The tensors an optimiser should hold, with their full VarStore names: weight (unless
    /// locked; weight decay applies) and bias (unless absent or frozen; weight decay iff
    /// `decay_bias`, since models differ: PyTorch's default decays every parameter, timm's ViT
    /// recipe no bias).
    pub fn trainable_tensors(&self, decay_bias: bool) -> Vec<NamedParam> {
        let mut out = Vec::with_capacity(2);
        if self.lock.is_none() {
            out.push(NamedParam::new(&self.weight_name, &self.weight, true));
        }
        if let Some(b) = &self.bias {
            if !self.lock.is_some_and(|s| s.freeze_bias) {
                out.push(NamedParam::new(&self.bias_name, b, decay_bias));
            }
        }
        out
    }
}

impl Module for LockableLinear {
    /// # Panics
    /// On an input whose last dimension is not `in_dim`, like tch's `nn::Linear` (the trait
    /// returns no `Result`); use [`LockableLinear::f_forward`] to get an error instead.
    fn forward(&self, xs: &Tensor) -> Tensor {
        match self.f_forward(xs) {
            Ok(y) => y,
            Err(e) => panic!("LockableLinear::forward: {e}"),
        }
    }
}

/// The least-squares scale of the map `m1` (scale 1) to `weight`, both `out×in` (spec §7):
/// `α* = ⟨W, M₁⟩_F / ‖M₁‖²_F`, in f64. With `Y = W` or `Wᵀ` as in spec §2 this is
/// `tr(Yᵀ M)/‖M‖²_F = tr(Yᵀ M)/K`, and `α* M₁` is the nearest weight to `W` along `M₁`.
///
/// ```
/// use simplex_etf::{etf_map, matched_scale, Orientation};
/// use tch::{Device, Kind, Tensor};
/// let m1 = etf_map(6, 4, 1.0, Orientation::Random { seed: 1 }, Kind::Double, Device::Cpu)?;
/// let noise = Tensor::randn([6, 4], (Kind::Double, Device::Cpu)) * 1e-9;
/// let alpha = matched_scale(&(&m1 * 2.5 + noise), &m1)?;
/// assert!((alpha - 2.5).abs() < 1e-6);
/// # Ok::<(), simplex_etf::EtfError>(())
/// ```
///
/// # Errors
/// Shapes that differ, or a weight with non-finite values.
pub fn matched_scale(weight: &Tensor, m1: &Tensor) -> Result<f64, EtfError> {
    if weight.size() != m1.size() {
        return Err(EtfError::ShapeMismatch {
            what: "weight".into(),
            expected: m1.size(),
            got: weight.size(),
        });
    }
    let (w, m) = (cpu_f64(weight)?, cpu_f64(m1)?);
    let alpha = w.f_mul(&m)?.f_sum(Kind::Double)?.f_double_value(&[])?
        / m.f_square()?.f_sum(Kind::Double)?.f_double_value(&[])?;
    if alpha.is_finite() {
        Ok(alpha)
    } else {
        Err(EtfError::NonFinite("weight".into()))
    }
}

/// `x Wᵀ + b` for a frozen (non-canonical) ETF weight.
///
/// A frozen weight never needs a gradient, so its product may be evaluated in whichever order
/// the BLAS runs fastest. On CPU a narrowing map (`out < in`, e.g. a classifier `H → 10`) on a
/// `batch × in` input is computed as `(W xᵀ + b)ᵀ`: MKL's skinny GEMM with 10 output columns
/// (the `x Wᵀ` order `linear` uses) ran about 1.6× slower than the same product with 10 output
/// rows (docs/benchmarks.md, `etf_vs_dense`). Autograd then returns the input gradient `G W`
/// in `x`'s row-major layout, and the output is made contiguous (a `batch × out` copy) so that
/// callers may `view` it. Other shapes and devices use `linear`.
fn frozen_dense_forward(
    xs: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
) -> Result<Tensor, EtfError> {
    let (out_dim, in_dim) = (weight.size()[0], weight.size()[1]);
    let narrowing_cpu_matrix =
        xs.device() == Device::Cpu && xs.dim() == 2 && out_dim < in_dim && xs.size()[1] == in_dim;
    if !narrowing_cpu_matrix {
        return Ok(xs.f_linear(weight, bias)?);
    }
    linear_by_rows(xs, weight, bias)
}

/// `x Wᵀ + b` for a `batch × in` input, evaluated as `(W xᵀ + b)ᵀ` and made contiguous: the
/// product order frozen narrowing maps use on CPU (see [`LockableLinear::f_forward`]). The
/// `etf_vs_dense` benchmark applies it to a trainable layer to separate the gain of the order
/// from that of skipping the weight gradient.
///
/// ```
/// # use tch::{Device, Kind, Tensor};
/// let x = Tensor::randn([4, 6], (Kind::Double, Device::Cpu));
/// let w = Tensor::randn([3, 6], (Kind::Double, Device::Cpu));
/// let b = Tensor::randn([3], (Kind::Double, Device::Cpu));
/// let y = simplex_etf::linear_by_rows(&x, &w, Some(&b))?;
/// assert!(y.is_contiguous());
/// assert!(y.allclose(&x.linear(&w, Some(&b)), 1e-12, 1e-12, false));
/// # Ok::<(), simplex_etf::EtfError>(())
/// ```
///
/// # Errors
/// An input that is not a matrix, or whose width is not the weight's.
pub fn linear_by_rows(
    xs: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
) -> Result<Tensor, EtfError> {
    let xt = xs.f_tr()?;
    let yt = match bias {
        Some(b) => b.f_unsqueeze(1)?.f_addmm(weight, &xt)?,
        None => weight.f_mm(&xt)?,
    };
    Ok(yt.f_tr()?.f_contiguous()?)
}

/// A linear layer constrained to an ETF map from construction (spec §2): a [`LockableLinear`]
/// that is always locked. Dereferences to it for the accessors (weight, counts, names…).
#[derive(Debug)]
pub struct EtfLinear {
    inner: LockableLinear,
    spec: EtfSpec,
}

impl EtfLinear {
    /// See [`LockableLinear::new_etf`].
    ///
    /// # Errors
    /// As [`LockableLinear::new_etf`].
    pub fn new(
        path: &nn::Path,
        in_dim: i64,
        out_dim: i64,
        bias: bool,
        spec: &EtfSpec,
    ) -> Result<Self, EtfError> {
        let inner = LockableLinear::new_etf(path, in_dim, out_dim, bias, spec)?;
        Ok(Self { inner, spec: *spec })
    }

    /// The spec the layer was built with.
    pub fn spec(&self) -> &EtfSpec {
        &self.spec
    }

    /// The underlying (locked) layer.
    pub fn into_inner(self) -> LockableLinear {
        self.inner
    }
}

impl std::ops::Deref for EtfLinear {
    type Target = LockableLinear;
    fn deref(&self) -> &LockableLinear {
        &self.inner
    }
}

impl Module for EtfLinear {
    /// # Panics
    /// As [`LockableLinear`]'s `forward`.
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.inner.forward(xs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{OptimizerConfig, SgdConfig};
    use tch::Device;

    #[test]
    fn new_etf_rejects_nearest_and_duplicates() {
        let vs = nn::VarStore::new(Device::Cpu);
        let spec = EtfSpec::new(LockOrientation::Nearest, 0);
        assert!(matches!(
            EtfLinear::new(&vs.root(), 4, 4, true, &spec),
            Err(EtfError::NearestNeedsWeight)
        ));
        let _a = EtfLinear::new(&(vs.root() / "a"), 4, 4, true, &EtfSpec::default()).unwrap();
        let again = EtfLinear::new(&(vs.root() / "a"), 4, 4, true, &EtfSpec::default());
        assert!(matches!(again, Err(EtfError::DuplicateVariable(n)) if n == "a.weight"));
    }

    #[test]
    fn counts_and_names() {
        let vs = nn::VarStore::new(Device::Cpu);
        let l = LockableLinear::new(&(vs.root() / "fc"), 6, 3, true);
        assert_eq!((l.learnable_params(), l.total_params()), (21, 21));
        let e = EtfLinear::new(&(vs.root() / "etf"), 6, 3, true, &EtfSpec::default()).unwrap();
        assert_eq!((e.learnable_params(), e.total_params()), (3, 21));
        let names: Vec<String> = e
            .trainable_tensors(true)
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["etf.bias"]);
        assert!(!e.weight().requires_grad());
        let frozen = EtfSpec {
            freeze_bias: true,
            ..EtfSpec::default()
        };
        let f = EtfLinear::new(&(vs.root() / "f"), 6, 3, true, &frozen).unwrap();
        assert_eq!(f.learnable_params(), 0);
        assert_eq!(vs.trainable_variables().len(), 3); // fc.weight, fc.bias, etf.bias
    }

    #[test]
    fn lock_twice_is_a_no_op() {
        let vs = nn::VarStore::new(Device::Cpu);
        let mut l = LockableLinear::new(&(vs.root() / "fc"), 5, 5, false);
        let mut opt = Optimizer::new(OptimizerConfig::Sgd(SgdConfig::default()));
        l.register(&mut opt, true).unwrap();
        assert!(l
            .lock(&EtfSpec::new(LockOrientation::Nearest, 0), &mut opt)
            .unwrap());
        let w = l.weight().copy();
        assert!(!l
            .lock(&EtfSpec::new(LockOrientation::Random, 1), &mut opt)
            .unwrap());
        assert!(l.weight().equal(&w));
        assert_eq!(
            l.lock_spec().map(|s| s.orientation),
            Some(LockOrientation::Nearest)
        );
        assert_eq!(opt.num_params(), 0);
    }

    #[test]
    fn spec_serde_is_kebab_case_with_defaults() {
        let s = EtfSpec {
            orientation: LockOrientation::Nearest,
            freeze_bias: true,
            ..EtfSpec::default()
        };
        let json = serde_json::to_string(&s).unwrap();
        assert!(
            json.contains("\"nearest\"") && json.contains("\"freeze-bias\":true"),
            "{json}"
        );
        let back: EtfSpec = serde_json::from_str(r#"{"orientation":"random","seed":9}"#).unwrap();
        assert_eq!(
            back,
            EtfSpec {
                orientation: LockOrientation::Random,
                seed: 9,
                ..EtfSpec::default()
            }
        );
    }
}
