//! SGD and AdamW over explicit, named tensors.
//!
//! tch's optimiser wraps libtorch's C++ one: it can neither drop a parameter (and its state)
//! mid-training, which locking a layer to an ETF map needs (spec §4), nor expose its state for
//! checkpoints. These optimisers follow PyTorch's update formulas exactly (`torch.optim.SGD`,
//! `torch.optim.AdamW`, single-tensor path), including a per-parameter step counter and
//! skipping parameters whose gradient is undefined.

use crate::EtfError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use tch::{COptimizer, Device, Kind, Tensor};

mod stacked;
pub use stacked::StackedOptimizer;

/// `torch.optim.SGD` hyper-parameters. Update (PyTorch): `g ← ∇ + wd·θ`; with momentum
/// `b ← g` on the first step, else `b ← μ b + (1 − dampening) g`; `g ← g + μ b` (Nesterov) or
/// `g ← b`; `θ ← θ − lr·g`.
///
/// In a config file (`[train.optimizer]`): `kind = "sgd"`, `lr` required, the rest default to
/// PyTorch's (0, `false`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SgdConfig {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor `μ` (0 disables the buffer).
    #[serde(default)]
    pub momentum: f64,
    /// Nesterov momentum (needs `momentum > 0` and `dampening = 0`).
    #[serde(default)]
    pub nesterov: bool,
    /// L2 penalty added to the gradient, for parameters registered with `weight_decay = true`.
    #[serde(default)]
    pub weight_decay: f64,
    /// Dampening of the momentum.
    #[serde(default)]
    pub dampening: f64,
    /// How the parameters are laid out ([`Layout`]).
    #[serde(default)]
    pub layout: Layout,
}

impl Default for SgdConfig {
    /// PyTorch's defaults (`lr = 1e-3`, everything else off).
    fn default() -> Self {
        Self {
            lr: 1e-3,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            dampening: 0.0,
            layout: Layout::PerTensor,
        }
    }
}

/// How an [`Optimizer`] lays out its parameters: each on its own (`per-tensor`, PyTorch's
/// single-tensor path, the default), or as views into flat buffers (`packed`,
/// [`Optimizer::pack`]: a step is a few kernels per buffer, which an accelerator running small
/// models needs). Both compute the same formulas; results agree to float rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// One update per parameter tensor.
    #[default]
    PerTensor,
    /// One update per flat buffer of parameters.
    Packed,
}

/// `torch.optim.AdamW` hyper-parameters (without amsgrad). Update (PyTorch): `θ ← θ(1 − lr·wd)`;
/// `m ← β1 m + (1−β1) g`; `v ← β2 v + (1−β2) g²`;
/// `θ ← θ − lr/(1−β1^t) · m / (sqrt(v)/sqrt(1−β2^t) + ε)`.
///
/// In a config file: `kind = "adamw"`, `lr` required, the rest default to PyTorch's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamWConfig {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay `β1`.
    #[serde(default = "AdamWConfig::default_beta1")]
    pub beta1: f64,
    /// Second-moment decay `β2`.
    #[serde(default = "AdamWConfig::default_beta2")]
    pub beta2: f64,
    /// Denominator term `ε`.
    #[serde(default = "AdamWConfig::default_eps")]
    pub eps: f64,
    /// Decoupled weight decay, for parameters registered with `weight_decay = true`.
    #[serde(default = "AdamWConfig::default_weight_decay")]
    pub weight_decay: f64,
    /// How the parameters are laid out ([`Layout`]).
    #[serde(default)]
    pub layout: Layout,
}

impl AdamWConfig {
    fn default_beta1() -> f64 {
        Self::default().beta1
    }
    fn default_beta2() -> f64 {
        Self::default().beta2
    }
    fn default_eps() -> f64 {
        Self::default().eps
    }
    fn default_weight_decay() -> f64 {
        Self::default().weight_decay
    }
}

impl Default for AdamWConfig {
    /// PyTorch's defaults (`lr = 1e-3`, betas `(0.9, 0.999)`, `eps = 1e-8`, `wd = 1e-2`).
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
            layout: Layout::PerTensor,
        }
    }
}

/// Which optimiser, with its hyper-parameters: the one optimiser configuration of the toolkit,
/// read from config files as a table tagged by `kind`.
///
/// ```
/// use simplex_etf::optim::{OptimizerConfig, SgdConfig};
/// let cfg: OptimizerConfig =
///     serde_json::from_str(r#"{"kind": "sgd", "lr": 0.01, "momentum": 0.9}"#).unwrap();
/// assert_eq!(cfg, OptimizerConfig::Sgd(SgdConfig { lr: 0.01, momentum: 0.9, ..SgdConfig::default() }));
/// cfg.validate().unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum OptimizerConfig {
    /// Stochastic gradient descent with optional (Nesterov) momentum.
    Sgd(SgdConfig),
    /// Adam with decoupled weight decay.
    #[serde(rename = "adamw")]
    AdamW(AdamWConfig),
}

impl OptimizerConfig {
    /// The configured parameter layout.
    pub fn layout(&self) -> Layout {
        match self {
            Self::Sgd(c) => c.layout,
            Self::AdamW(c) => c.layout,
        }
    }

    /// The configured learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            Self::Sgd(c) => c.lr,
            Self::AdamW(c) => c.lr,
        }
    }

    /// The checks of `torch.optim` and a few more that catch typos: a positive finite rate,
    /// momentum and betas in `[0, 1)`, Nesterov needing momentum and no dampening, a positive
    /// `eps`, non-negative finite weight decay and dampening. Messages name the key as a
    /// config file spells it (`optimizer.lr`, …).
    ///
    /// # Errors
    /// [`EtfError::InvalidConfig`] naming the offending key and value.
    pub fn validate(&self) -> Result<(), EtfError> {
        let bad = |m: String| Err(EtfError::InvalidConfig(m));
        let lr = self.lr();
        if !(lr.is_finite() && lr > 0.0) {
            return bad(format!("optimizer.lr must be a positive number, got {lr}"));
        }
        let non_negative = |key: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                bad(format!("{key} must be a non-negative number, got {v}"))
            }
        };
        match *self {
            Self::Sgd(c) => {
                if !(0.0..1.0).contains(&c.momentum) {
                    return bad(format!(
                        "optimizer.momentum must be in [0, 1), got {}",
                        c.momentum
                    ));
                }
                if c.nesterov && (c.momentum == 0.0 || c.dampening != 0.0) {
                    return bad(
                        "optimizer.nesterov needs a positive optimizer.momentum and zero \
                         optimizer.dampening"
                            .into(),
                    );
                }
                non_negative("optimizer.dampening", c.dampening)?;
                non_negative("optimizer.weight_decay", c.weight_decay)
            }
            Self::AdamW(c) => {
                for (key, v) in [("optimizer.beta1", c.beta1), ("optimizer.beta2", c.beta2)] {
                    if !(0.0..1.0).contains(&v) {
                        return bad(format!("{key} must be in [0, 1), got {v}"));
                    }
                }
                if c.eps.is_nan() || c.eps <= 0.0 {
                    return bad(format!("optimizer.eps must be positive, got {}", c.eps));
                }
                non_negative("optimizer.weight_decay", c.weight_decay)
            }
        }
    }

    /// The weight decay and the SGD momentum (0 for AdamW, which has no momentum buffer).
    pub(crate) fn decay_and_momentum(&self) -> (f64, f64) {
        match self {
            Self::Sgd(c) => (c.weight_decay, c.momentum),
            Self::AdamW(c) => (c.weight_decay, 0.0),
        }
    }

    /// Names of the per-parameter state fields, as they appear after `::` in
    /// [`Optimizer::state_tensors`].
    pub(crate) fn fields(&self) -> &'static [&'static str] {
        match self {
            Self::Sgd(_) => &["step", "momentum"],
            Self::AdamW(_) => &["step", "exp_avg", "exp_avg_sq"],
        }
    }
}

/// A trainable tensor with its name (its `VarStore` path) and whether weight decay applies: what
/// a model hands the optimiser, and what the training core counts as learnable.
#[derive(Debug)]
pub struct NamedParam {
    /// Its variable name, e.g. `hidden1.fc.weight`.
    pub name: String,
    /// The tensor itself (shares storage with the model).
    pub tensor: Tensor,
    /// Whether the optimiser applies weight decay to it.
    pub weight_decay: bool,
}

impl NamedParam {
    /// `tensor` (a shallow clone) under `name`.
    pub fn new(name: &str, tensor: &Tensor, weight_decay: bool) -> Self {
        Self {
            name: name.to_string(),
            tensor: tensor.shallow_clone(),
            weight_decay,
        }
    }
}

#[derive(Debug)]
struct Param {
    name: String,
    tensor: Tensor,
    weight_decay: bool,
    /// Steps this parameter has taken (PyTorch's `state['step']`).
    step: i64,
    /// SGD momentum buffer, or AdamW `exp_avg`.
    first: Option<Tensor>,
    /// AdamW `exp_avg_sq`.
    second: Option<Tensor>,
}

impl Param {
    /// `t` (a shallow clone) under `name`, without state.
    ///
    /// # Errors
    /// `t` does not require grad.
    fn fresh(name: &str, t: &Tensor, weight_decay: bool) -> Result<Self, EtfError> {
        if !t.requires_grad() {
            return Err(EtfError::ParamNotTrainable(name.into()));
        }
        Ok(Self {
            name: name.into(),
            tensor: t.shallow_clone(),
            weight_decay,
            step: 0,
            first: None,
            second: None,
        })
    }
}

/// An SGD or AdamW optimiser over named tensors, which can drop a parameter with its state.
///
/// By default every parameter is updated on its own (PyTorch's single-tensor path: a few
/// kernels per parameter). [`Optimizer::pack`] moves the parameters into one contiguous buffer
/// per kind, device and weight-decay setting, the parameters (and their state) becoming views
/// into it, so that a step is a handful of kernels over each whole buffer — what matters on an
/// accelerator, where small models are bound by kernel launches. Both layouts compute the same
/// element-wise formulas and give the same values.
#[derive(Debug)]
pub struct Optimizer {
    cfg: OptimizerConfig,
    lr: f64,
    params: Vec<Param>,
    /// The flat buffers, once packed.
    packed: Option<Vec<FlatGroup>>,
}

/// Parameters of one kind, device and weight-decay setting, packed into one buffer: `flat` is
/// that buffer with its state, laid out as the members' tensors flattened end to end.
#[derive(Debug)]
struct FlatGroup {
    /// Indices into `Optimizer::params`, in buffer order.
    members: Vec<usize>,
    /// The whole buffer as one parameter: its step counter is the members' common one.
    flat: Param,
}

impl Optimizer {
    /// An optimiser with no parameters yet, packed ([`Optimizer::pack`]) when the configuration's
    /// layout is [`Layout::Packed`]. The configuration is used as given; call
    /// [`OptimizerConfig::validate`] first to apply PyTorch's checks.
    pub fn new(cfg: OptimizerConfig) -> Self {
        Self {
            lr: cfg.lr(),
            cfg,
            params: Vec::new(),
            // Packed from the start: every parameter added re-packs.
            packed: (cfg.layout() == Layout::Packed).then(Vec::new),
        }
    }

    /// Packs the registered parameters into flat buffers (see [`Optimizer`]): each parameter's
    /// data, and its state once it has one, becomes a view into its group's buffer. Values do
    /// not change. Later changes to the parameter set (a lock removing one, a new one, a state
    /// restored from a checkpoint) re-pack.
    ///
    /// ```
    /// use simplex_etf::optim::{Optimizer, OptimizerConfig, SgdConfig};
    /// use tch::Tensor;
    /// let a = Tensor::from_slice(&[1.0f32, 2.0]).set_requires_grad(true);
    /// let b = Tensor::from_slice(&[3.0f32]).set_requires_grad(true);
    /// let mut opt = Optimizer::new(OptimizerConfig::Sgd(SgdConfig { lr: 0.5, ..SgdConfig::default() }));
    /// opt.add_param("a", &a, true)?;
    /// opt.add_param("b", &b, true)?;
    /// opt.pack()?;
    /// assert!(opt.is_packed());
    /// (&a * &a + &b).sum(tch::Kind::Float).backward();
    /// opt.step();
    /// assert_eq!(Vec::<f32>::try_from(&a)?, [0.0, 0.0]); // a − 0.5 · 2a
    /// assert_eq!(Vec::<f32>::try_from(&b)?, [2.0]); // b broadcast over a: gradient 2
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// A tensor operation failed (nothing is packed then).
    pub fn pack(&mut self) -> Result<(), EtfError> {
        let mut keys: Vec<(Kind, Device, bool)> = Vec::new();
        for p in &self.params {
            let key = (p.tensor.kind(), p.tensor.device(), p.weight_decay);
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        let mut groups = Vec::with_capacity(keys.len());
        for key in keys {
            let members: Vec<usize> = (0..self.params.len())
                .filter(|&i| {
                    let p = &self.params[i];
                    (p.tensor.kind(), p.tensor.device(), p.weight_decay) == key
                })
                .collect();
            groups.push(self.pack_group(members, key.2)?);
        }
        self.packed = Some(groups);
        Ok(())
    }

    /// Whether the parameters live in flat buffers ([`Optimizer::pack`]).
    pub fn is_packed(&self) -> bool {
        self.packed.is_some()
    }

    /// Copies the members' data and state into fresh flat buffers and points the members at
    /// views of them. The state is packed only when every member has it; the group's step is
    /// the members' common one (−1 when they differ: then it is stepped member by member).
    fn pack_group(
        &mut self,
        members: Vec<usize>,
        weight_decay: bool,
    ) -> Result<FlatGroup, EtfError> {
        let flatten = |ts: Vec<&Tensor>| -> Result<Tensor, EtfError> {
            let parts: Vec<Tensor> = ts
                .iter()
                .map(|t| t.f_detach()?.f_reshape([-1]))
                .collect::<Result<_, _>>()?;
            Ok(Tensor::f_cat(&parts, 0)?)
        };
        let data = flatten(members.iter().map(|&i| &self.params[i].tensor).collect())?;
        let state = |f: fn(&Param) -> Option<&Tensor>| -> Result<Option<Tensor>, EtfError> {
            let ts: Option<Vec<&Tensor>> = members.iter().map(|&i| f(&self.params[i])).collect();
            ts.map(flatten).transpose()
        };
        let first = state(|p| p.first.as_ref())?;
        let second = state(|p| p.second.as_ref())?;
        let steps: Vec<i64> = members.iter().map(|&i| self.params[i].step).collect();
        let has_state = |i: &usize| self.params[*i].first.is_some();
        let uniform_state = members.iter().all(has_state) || !members.iter().any(has_state);
        let step = if uniform_state && steps.windows(2).all(|w| w[0] == w[1]) {
            steps.first().copied().unwrap_or(0)
        } else {
            -1
        };
        let flat = Param {
            name: String::new(),
            tensor: data,
            weight_decay,
            step,
            first,
            second,
        };
        let group = FlatGroup { members, flat };
        self.point_at(&group)?;
        Ok(group)
    }

    /// Makes each member's data (and state, where the group has it) a view of the group's
    /// buffers.
    fn point_at(&mut self, g: &FlatGroup) -> Result<(), EtfError> {
        let mut offset = 0;
        for &i in &g.members {
            let p = &mut self.params[i];
            let size = p.tensor.size();
            let n = numel(&p.tensor);
            let view = |t: &Tensor| t.f_narrow(0, offset, n)?.f_view(size.as_slice());
            p.tensor.f_set_data(&view(&g.flat.tensor)?)?;
            if let Some(f) = &g.flat.first {
                p.first = Some(view(f)?);
            }
            if let Some(s) = &g.flat.second {
                p.second = Some(view(s)?);
            }
            offset += n;
        }
        Ok(())
    }

    /// Re-packs after a change to the parameter set or the state, if packed.
    fn repack(&mut self) -> Result<(), EtfError> {
        if self.packed.is_some() {
            self.pack()?;
        }
        Ok(())
    }

    /// The configuration this optimiser was built with (its `lr` is the initial one).
    pub fn config(&self) -> &OptimizerConfig {
        &self.cfg
    }

    /// Registers `t` (a shallow clone is kept) under `name`. `weight_decay = false` exempts it
    /// from weight decay (e.g. biases, norms, embeddings, where the caller wants that).
    ///
    /// # Errors
    /// The name or the very same tensor is already registered, or `t` does not require grad.
    pub fn add_param(
        &mut self,
        name: &str,
        t: &Tensor,
        weight_decay: bool,
    ) -> Result<(), EtfError> {
        if self
            .params
            .iter()
            .any(|p| p.name == name || same_tensor(&p.tensor, t))
        {
            return Err(EtfError::DuplicateParam(name.into()));
        }
        self.params.push(Param::fresh(name, t, weight_decay)?);
        self.repack()
    }

    /// Registers `p` (see [`Optimizer::add_param`]).
    ///
    /// # Errors
    /// As [`Optimizer::add_param`].
    pub fn add(&mut self, p: &NamedParam) -> Result<(), EtfError> {
        self.add_param(&p.name, &p.tensor, p.weight_decay)
    }

    /// Drops the parameter `name` and its state (momentum / moments). Returns whether it was
    /// registered.
    pub fn remove_param(&mut self, name: &str) -> bool {
        match self.params.iter().position(|p| p.name == name) {
            Some(i) => {
                self.remove_at(i);
                true
            }
            None => false,
        }
    }

    /// Drops the parameter that is the very tensor `t` (same storage, whatever its name), with
    /// its state. Returns the name it was registered under.
    pub fn remove_tensor(&mut self, t: &Tensor) -> Option<String> {
        let i = self.params.iter().position(|p| same_tensor(&p.tensor, t))?;
        Some(self.remove_at(i))
    }

    /// Removes parameter `i`. When packed, it first gets storage of its own (the same values,
    /// bit for bit), so that no later step over the buffer can touch it, and the rest re-pack.
    fn remove_at(&mut self, i: usize) -> String {
        let mut p = self.params.remove(i);
        if self.packed.is_some() {
            let own = tch::no_grad(|| p.tensor.detach().copy());
            p.tensor.set_data(&own);
            // A failed re-pack leaves the per-tensor layout, which is always correct.
            if self.repack().is_err() {
                self.packed = None;
            }
        }
        p.name
    }

    /// Whether a parameter of that name is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.params.iter().any(|p| p.name == name)
    }

    /// Sets every parameter's gradient to undefined (PyTorch's `zero_grad(set_to_none=True)`),
    /// so a parameter that gets no gradient in the next backward pass is skipped by `step`.
    pub fn zero_grad(&mut self) {
        let tensors: Vec<&Tensor> = self.params.iter().map(|p| &p.tensor).collect();
        set_grads_to_none(&tensors);
    }

    /// One update of every parameter with a defined gradient, in place and without recording
    /// autograd history.
    pub fn step(&mut self) {
        let (cfg, lr) = (self.cfg, self.lr);
        let update = |p: &mut Param, grad: &Tensor| {
            p.step += 1;
            update(p, grad, &cfg, &Rates::single(&cfg, lr, p.weight_decay));
        };
        let Some(mut groups) = self.packed.take() else {
            tch::no_grad(|| {
                for p in &mut self.params {
                    let grad = p.tensor.grad();
                    if grad.defined() {
                        update(p, &grad);
                    }
                }
            });
            return;
        };
        // Groups whose state the step created (members then get views of it), and whether a
        // member-by-member step left the layout to be re-packed.
        let mut created = Vec::new();
        let mut stale = false;
        tch::no_grad(|| {
            for (k, g) in groups.iter_mut().enumerate() {
                let grads: Vec<Tensor> = g
                    .members
                    .iter()
                    .map(|&i| self.params[i].tensor.grad())
                    .collect();
                let whole = g.flat.step >= 0 && grads.iter().all(Tensor::defined);
                let flat_grad = if whole {
                    let parts: Vec<Tensor> = grads.iter().map(|t| t.reshape([-1])).collect();
                    Tensor::f_cat(&parts, 0).ok()
                } else {
                    None
                };
                match flat_grad {
                    Some(grad) => {
                        let had_state = g.flat.first.is_some();
                        update(&mut g.flat, &grad);
                        for &i in &g.members {
                            self.params[i].step = g.flat.step;
                        }
                        if !had_state && g.flat.first.is_some() {
                            created.push(k);
                        }
                    }
                    None => {
                        // Some member has no gradient: PyTorch skips it, so step one by one
                        // (on views, so the buffer sees the updates), and re-pack after.
                        for (&i, grad) in g.members.iter().zip(&grads) {
                            if grad.defined() {
                                update(&mut self.params[i], grad);
                            }
                        }
                        stale = true;
                    }
                }
            }
        });
        for &k in &created {
            // Views of the sizes the buffer was built from: this cannot fail.
            self.point_at(&groups[k])
                .expect("views of a packed buffer of the members' own sizes");
        }
        self.packed = Some(groups);
        if stale && self.repack().is_err() {
            self.packed = None;
        }
    }

    /// The current learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// Sets the learning rate (for schedules).
    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// Registered parameter names, in registration order.
    pub fn param_names(&self) -> Vec<String> {
        self.params.iter().map(|p| p.name.clone()).collect()
    }

    /// Registered parameters `(name, shallow clone)`, in registration order.
    pub fn params(&self) -> Vec<(String, Tensor)> {
        self.params
            .iter()
            .map(|p| (p.name.clone(), p.tensor.shallow_clone()))
            .collect()
    }

    /// Total number of scalars in the registered parameters: the learnable-parameter count.
    pub fn num_params(&self) -> i64 {
        self.params.iter().map(|p| numel(&p.tensor)).sum()
    }

    /// Bytes held by the state tensors (momentum buffers, moments): what a lock frees.
    pub fn state_bytes(&self) -> i64 {
        self.params
            .iter()
            .flat_map(|p| p.first.iter().chain(p.second.iter()))
            .map(|t| numel(t) * t.kind().elt_size_in_bytes() as i64)
            .sum()
    }

    /// A deep copy of the state, for checkpoints: for every parameter `NAME::step` (0-d Int64,
    /// the parameter's own step count) and, once it exists, `NAME::momentum` (SGD) or
    /// `NAME::exp_avg` and `NAME::exp_avg_sq` (AdamW). Save with `Tensor::save_multi`.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let buffers = &self.cfg.fields()[1..];
        let mut out = Vec::new();
        for p in &self.params {
            let step = Tensor::from_slice(&[p.step]).reshape([] as [i64; 0]);
            out.push((format!("{}::step", p.name), step));
            for (field, t) in buffers.iter().zip([&p.first, &p.second]) {
                if let Some(t) = t {
                    out.push((format!("{}::{field}", p.name), t.detach().copy()));
                }
            }
        }
        out
    }

    /// Restores state saved by [`Optimizer::state_tensors`] bit-exactly (values are copied into
    /// fresh tensors of each parameter's kind and device). Every registered parameter needs its
    /// `::step`; a parameter that has stepped needs its buffers (SGD with momentum: `momentum`;
    /// AdamW: both moments). Nothing changes unless the whole state is valid.
    ///
    /// # Errors
    /// [`EtfError::MissingState`], [`EtfError::UnknownState`] or [`EtfError::StateShape`],
    /// naming the entry.
    pub fn load_state_tensors(&mut self, named: &[(String, Tensor)]) -> Result<(), EtfError> {
        let fields = self.cfg.fields();
        let mut by_name: HashMap<&str, &Tensor> = HashMap::new();
        for (name, t) in named {
            let known = name
                .rsplit_once("::")
                .is_some_and(|(param, field)| fields.contains(&field) && self.contains(param));
            if !known {
                return Err(EtfError::UnknownState(name.clone()));
            }
            by_name.insert(name.as_str(), t);
        }
        let needs_first = match self.cfg {
            OptimizerConfig::Sgd(c) => c.momentum != 0.0,
            OptimizerConfig::AdamW(_) => true,
        };
        let mut restored = Vec::with_capacity(self.params.len());
        for p in &self.params {
            let step_name = format!("{}::step", p.name);
            let step_t = by_name
                .get(step_name.as_str())
                .ok_or_else(|| EtfError::MissingState(step_name.clone()))?;
            let bad_step = |got| EtfError::StateShape {
                name: step_name.clone(),
                expected: vec![],
                got,
            };
            if !step_t.size().is_empty() || step_t.kind() != Kind::Int64 {
                return Err(bad_step(step_t.size()));
            }
            let step = step_t.f_int64_value(&[])?;
            if step < 0 {
                return Err(bad_step(vec![step]));
            }
            let mut bufs = [None, None];
            for (slot, field) in bufs.iter_mut().zip(&fields[1..]) {
                let name = format!("{}::{field}", p.name);
                match by_name.get(name.as_str()) {
                    Some(src) => *slot = Some(copy_like(src, &p.tensor, &name)?),
                    None if step > 0 && needs_first => return Err(EtfError::MissingState(name)),
                    None => {}
                }
            }
            let [first, second] = bufs;
            restored.push((step, first, second));
        }
        for (p, (step, first, second)) in self.params.iter_mut().zip(restored) {
            (p.step, p.first, p.second) = (step, first, second);
        }
        self.repack()
    }
}

/// A 0-d tensor holding `v`, of `like`'s kind and device: the scalar factor of the in-place
/// `addcmul_` updates (tch has no `add_(other, alpha)`). Filled on the device itself, so on
/// CUDA it is a kernel launch, not a host-to-device copy that would synchronise every step.
fn scalar_like(v: f64, like: &Tensor) -> Tensor {
    Tensor::full([] as [i64; 0], v, (like.kind(), like.device()))
}

/// A hyper-parameter of an update: one value for the whole tensor, or one per member of a
/// stacked tensor (`[M, 1, …, 1]`, broadcasting over the member's slice; see
/// [`StackedOptimizer`]). The formulas are written once over this type, so a stack of one and a
/// single run are the same arithmetic.
pub(crate) enum Factor {
    Value(f64),
    Each(Tensor),
}

impl Factor {
    /// Whether the factor is known to be zero everywhere (a term that can be skipped).
    fn is_zero(&self) -> bool {
        matches!(self, Self::Value(v) if *v == 0.0)
    }
    /// `t *= self`.
    fn scale_(&self, t: &mut Tensor) {
        let _ = match self {
            Self::Value(v) => t.g_mul_scalar_(*v),
            Self::Each(f) => t.g_mul_(f),
        };
    }
    /// `t /= self`.
    fn divide_(&self, t: &mut Tensor) {
        let _ = match self {
            Self::Value(v) => t.g_div_scalar_(*v),
            Self::Each(f) => t.g_div_(f),
        };
    }
    /// `t += a · self`.
    fn add_scaled_(&self, t: &mut Tensor, a: &Tensor) {
        let _ = match self {
            Self::Value(v) => t.addcmul_(a, &scalar_like(*v, t)),
            Self::Each(f) => t.addcmul_(a, f),
        };
    }
    /// `a · self`, a new tensor.
    fn times(&self, a: &Tensor) -> Tensor {
        match self {
            Self::Value(v) => a * *v,
            Self::Each(f) => a * f,
        }
    }
    /// `self · k` for a plain number `k`.
    fn mul(&self, k: f64) -> Self {
        match self {
            Self::Value(v) => Self::Value(v * k),
            Self::Each(f) => Self::Each(f * k),
        }
    }
    /// `self / k` for a plain number `k`.
    fn over(&self, k: f64) -> Self {
        match self {
            Self::Value(v) => Self::Value(v / k),
            Self::Each(f) => Self::Each(f / k),
        }
    }
}

/// The per-step factors of one parameter's update: `−lr`, the weight decay (zero where it does
/// not apply), the decoupled decay factor `1 − lr·wd` and the SGD momentum.
pub(crate) struct Rates {
    pub(crate) neg_lr: Factor,
    pub(crate) weight_decay: Factor,
    pub(crate) decay: Factor,
    pub(crate) momentum: Factor,
}

impl Rates {
    /// The rates of a single run's parameter.
    fn single(cfg: &OptimizerConfig, lr: f64, weight_decay: bool) -> Self {
        let (wd, momentum) = cfg.decay_and_momentum();
        let wd = if weight_decay { wd } else { 0.0 };
        Self {
            neg_lr: Factor::Value(-lr),
            weight_decay: Factor::Value(wd),
            decay: Factor::Value(1.0 - lr * wd),
            momentum: Factor::Value(momentum),
        }
    }
}

/// One update of `p` by `grad` with PyTorch's formula for `cfg`; `p.step` already counts it.
fn update(p: &mut Param, grad: &Tensor, cfg: &OptimizerConfig, r: &Rates) {
    match cfg {
        OptimizerConfig::Sgd(c) => sgd_update(p, grad, c, r),
        OptimizerConfig::AdamW(c) => adamw_update(p, grad, c, r),
    }
}

// The updates work in place on the state and the parameter: no temporary of a parameter's size
// except where the formula needs one (Nesterov, AdamW's denominator). They follow PyTorch's
// formulas; the order of the additions differs, so results agree to rounding, not bit for bit.
fn sgd_update(p: &mut Param, grad: &Tensor, c: &SgdConfig, r: &Rates) {
    let wd = &r.weight_decay;
    let neg_lr = &r.neg_lr;
    if r.momentum.is_zero() {
        // p -= lr (g + wd p)
        if !wd.is_zero() {
            r.decay.scale_(&mut p.tensor);
        }
        neg_lr.add_scaled_(&mut p.tensor, grad);
        return;
    }
    // buf = momentum · buf + (1 − dampening) · (g + wd p); the first step takes d itself.
    let buf = match p.first.as_mut() {
        None => {
            let mut b = grad.detach().copy();
            if !wd.is_zero() {
                wd.add_scaled_(&mut b, &p.tensor);
            }
            p.first.insert(b)
        }
        Some(b) => {
            let keep = 1.0 - c.dampening;
            r.momentum.scale_(b);
            Factor::Value(keep).add_scaled_(b, grad);
            if !wd.is_zero() {
                wd.mul(keep).add_scaled_(b, &p.tensor);
            }
            b
        }
    };
    if c.nesterov {
        // p -= lr (g + wd p + momentum · buf)
        let mut d = grad + r.momentum.times(buf);
        if !wd.is_zero() {
            wd.add_scaled_(&mut d, &p.tensor);
        }
        neg_lr.add_scaled_(&mut p.tensor, &d);
    } else {
        neg_lr.add_scaled_(&mut p.tensor, buf);
    }
}

fn adamw_update(p: &mut Param, grad: &Tensor, c: &AdamWConfig, r: &Rates) {
    if !r.weight_decay.is_zero() {
        r.decay.scale_(&mut p.tensor);
    }
    let exp_avg = p.first.get_or_insert_with(|| grad.zeros_like());
    let _ = exp_avg.lerp_(grad, 1.0 - c.beta1);
    let exp_avg_sq = p.second.get_or_insert_with(|| grad.zeros_like());
    let _ = exp_avg_sq.g_mul_scalar_(c.beta2);
    let _ = exp_avg_sq.addcmul_(grad, &(grad * (1.0 - c.beta2)));
    let step = p.step as f64;
    let bias_correction1 = 1.0 - c.beta1.powf(step);
    let bias_correction2 = 1.0 - c.beta2.powf(step);
    // p -= step_size · m / (sqrt(v) / sqrt(bc2) + eps), as p += m / (denom / −step_size),
    // step_size = lr / bc1.
    let mut denom = exp_avg_sq.sqrt();
    let _ = denom.g_div_scalar_(bias_correction2.sqrt());
    let _ = denom.g_add_scalar_(c.eps);
    r.neg_lr.over(bias_correction1).divide_(&mut denom);
    if let Some(exp_avg) = &p.first {
        let _ = p.tensor.addcdiv_(exp_avg, &denom);
    }
}

/// Sets the gradients of `tensors` to undefined, as PyTorch's `zero_grad(set_to_none=True)`.
/// tch only offers zeroing a gradient in place (which leaves it defined, so weight decay and
/// momentum would still move the tensor); libtorch's C++ optimiser resets them to undefined,
/// so a throw-away one is used.
pub fn set_grads_to_none(tensors: &[&Tensor]) {
    let cleared = (|| -> Result<(), tch::TchError> {
        let mut opt = COptimizer::sgd(0.0, 0.0, 0.0, 0.0, false)?;
        for t in tensors {
            opt.add_parameters(t, 0)?;
        }
        opt.zero_grad()
    })();
    if cleared.is_err() {
        // Second best: zeroed, still-defined gradients.
        for t in tensors {
            let mut t = t.shallow_clone();
            t.zero_grad();
        }
    }
}

/// Whether `a` and `b` are the very same tensor (same storage and shape), as shallow clones are.
pub(crate) fn same_tensor(a: &Tensor, b: &Tensor) -> bool {
    a.defined()
        && b.defined()
        && a.numel() > 0
        && a.data_ptr() == b.data_ptr()
        && a.size() == b.size()
}

pub(crate) fn numel(t: &Tensor) -> i64 {
    t.size().iter().product()
}

fn copy_like(src: &Tensor, like: &Tensor, name: &str) -> Result<Tensor, EtfError> {
    if src.size() != like.size() {
        return Err(EtfError::StateShape {
            name: name.into(),
            expected: like.size(),
            got: src.size(),
        });
    }
    let mut dst = like.f_detach()?.f_empty_like()?;
    let src = src.f_to_device(Device::Cpu)?;
    tch::no_grad(|| dst.f_copy_(&src))?;
    Ok(dst)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(vals: &[f64]) -> Tensor {
        Tensor::from_slice(vals).set_requires_grad(true)
    }

    #[test]
    fn add_param_rejects_duplicates_and_frozen_tensors() {
        let mut opt = Optimizer::new(OptimizerConfig::Sgd(SgdConfig::default()));
        let a = leaf(&[1.0, 2.0]);
        opt.add_param("a", &a, true).unwrap();
        assert!(matches!(
            opt.add_param("a", &leaf(&[1.0]), true),
            Err(EtfError::DuplicateParam(_))
        ));
        assert!(matches!(
            opt.add_param("b", &a.shallow_clone(), true),
            Err(EtfError::DuplicateParam(_))
        ));
        let frozen = Tensor::from_slice(&[1.0]);
        assert!(matches!(
            opt.add_param("c", &frozen, true),
            Err(EtfError::ParamNotTrainable(_))
        ));
        assert_eq!(opt.num_params(), 2);
        assert!(opt.remove_param("a"));
        assert!(!opt.remove_param("a"));
        assert_eq!(opt.num_params(), 0);
    }

    #[test]
    fn step_skips_undefined_grads_and_zero_grad_undefines() {
        let cfg = SgdConfig {
            lr: 0.1,
            weight_decay: 0.5,
            momentum: 0.9,
            ..SgdConfig::default()
        };
        let mut opt = Optimizer::new(OptimizerConfig::Sgd(cfg));
        let a = leaf(&[1.0, 2.0]);
        let b = leaf(&[3.0]);
        opt.add_param("a", &a, true).unwrap();
        opt.add_param("b", &b, true).unwrap();
        (&a * &a).sum(Kind::Double).backward();
        opt.step();
        // a: grad 2a + 0.5 a = 2.5 a; θ ← θ − 0.1 · 2.5 θ = 0.75 θ. b has no grad: untouched.
        assert!(a.allclose(&Tensor::from_slice(&[0.75, 1.5]), 1e-15, 1e-15, false));
        assert_eq!(b.double_value(&[0]), 3.0);
        assert!(opt.state_bytes() == 16);
        opt.zero_grad();
        assert!(!a.grad().defined());
    }

    #[test]
    fn config_files_read_with_pytorch_defaults_and_name_bad_keys() {
        let adamw: OptimizerConfig =
            serde_json::from_str(r#"{"kind": "adamw", "lr": 0.002}"#).unwrap();
        assert_eq!(
            adamw,
            OptimizerConfig::AdamW(AdamWConfig {
                lr: 0.002,
                ..AdamWConfig::default()
            })
        );
        let err = serde_json::from_str::<OptimizerConfig>(r#"{"kind": "adam", "lr": 1}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("sgd") && err.contains("adamw"), "{err}");
        let err = serde_json::from_str::<OptimizerConfig>(r#"{"kind": "sgd", "lr": 1, "mom": 1}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("mom"), "{err}");
        assert!(serde_json::from_str::<OptimizerConfig>(r#"{"kind": "sgd"}"#).is_err());
        let zero_lr = OptimizerConfig::Sgd(SgdConfig {
            lr: 0.0,
            ..SgdConfig::default()
        });
        let msg = zero_lr.validate().unwrap_err().to_string();
        assert!(msg.contains("optimizer.lr"), "{msg}");
    }

    #[test]
    fn validate_applies_pytorch_checks() {
        let nesterov = SgdConfig {
            nesterov: true,
            ..SgdConfig::default()
        };
        assert!(OptimizerConfig::Sgd(nesterov).validate().is_err());
        let adam = AdamWConfig {
            beta1: 1.0,
            ..AdamWConfig::default()
        };
        assert!(OptimizerConfig::AdamW(adam).validate().is_err());
        assert!(OptimizerConfig::AdamW(AdamWConfig::default())
            .validate()
            .is_ok());
    }
}
