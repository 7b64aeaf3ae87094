//! SGD and AdamW over *stacked* tensors: `M` runs trained as one computation, every parameter
//! carrying a leading member dimension `[M, …]`.
//!
//! Each member has its own learning rate, momentum and weight decay (as `[M, 1, …]` factors
//! of the one update formula of [`super::Optimizer`]; members of one configuration share plain
//! numbers, so a step uploads nothing), and its own set of *active* parameters: a member's slice
//! of a parameter that is an ETF map in that member (fixed from the start or locked) takes no
//! update — its gradient is masked out and its optimiser state zeroed after each step, so the
//! state stays zero and is not counted, and its values are written back after every step, so
//! the slice is bit-identical to what it was when it was frozen. Masks and frozen values live
//! on the parameters' device and change only at a lock.

use super::{numel, update, Factor, OptimizerConfig, Param, Rates};
use crate::EtfError;
use std::collections::HashMap;
use tch::Tensor;

/// One stacked parameter.
#[derive(Debug)]
struct Member {
    param: Param,
    /// Whether each member trains its slice.
    active: Vec<bool>,
    /// `[M, 1, …]` 1 where active, 0 where not (same kind as the parameter); `None` when all are.
    mask: Option<Tensor>,
    /// Indices and values of the frozen slices, written back after each step.
    frozen: Option<(Tensor, Tensor)>,
    /// Whether a member's saved state set `param.step` (the others must agree with it).
    loaded: bool,
}

/// SGD or AdamW over stacked tensors with per-member hyper-parameters; see the module docs.
///
/// ```
/// use simplex_etf::optim::{OptimizerConfig, SgdConfig, StackedOptimizer};
/// use tch::{Kind, Tensor};
/// let sgd = |lr| OptimizerConfig::Sgd(SgdConfig { lr, ..SgdConfig::default() });
/// let mut opt = StackedOptimizer::new(vec![sgd(0.5), sgd(0.25)])?;
/// let w = Tensor::ones([2, 3], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
/// opt.add_param("w", &w, true, vec![true, true])?;
/// w.sum(Kind::Float).backward(); // gradient 1 everywhere
/// opt.step()?;
/// assert_eq!(Vec::<f32>::try_from(&w.flatten(0, -1))?, [0.5, 0.5, 0.5, 0.75, 0.75, 0.75]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct StackedOptimizer {
    /// Member 0's configuration: the fields every member shares (kind, Nesterov, dampening,
    /// betas, eps).
    cfg: OptimizerConfig,
    members: Vec<OptimizerConfig>,
    lr: Vec<f64>,
    params: Vec<Member>,
}

impl StackedOptimizer {
    /// An optimiser for `configs.len()` members, member `m` configured by `configs[m]`. They
    /// may differ in learning rate, momentum and weight decay only.
    ///
    /// # Errors
    /// No members, an invalid configuration, or members that differ in anything else (named).
    pub fn new(configs: Vec<OptimizerConfig>) -> Result<Self, EtfError> {
        let Some(&cfg) = configs.first() else {
            return Err(EtfError::InvalidConfig(
                "a stack needs at least one member".into(),
            ));
        };
        for (m, c) in configs.iter().enumerate() {
            c.validate()?;
            let shared = match (cfg, *c) {
                (OptimizerConfig::Sgd(a), OptimizerConfig::Sgd(b)) => {
                    a.nesterov == b.nesterov && a.dampening == b.dampening
                }
                (OptimizerConfig::AdamW(a), OptimizerConfig::AdamW(b)) => {
                    a.beta1 == b.beta1 && a.beta2 == b.beta2 && a.eps == b.eps
                }
                _ => false,
            };
            if !shared {
                return Err(EtfError::InvalidConfig(format!(
                    "stack member {m}'s optimiser ({c:?}) differs from member 0's ({cfg:?}) in \
                     more than lr, momentum and weight_decay"
                )));
            }
        }
        Ok(Self {
            cfg,
            lr: configs.iter().map(OptimizerConfig::lr).collect(),
            members: configs,
            params: Vec::new(),
        })
    }

    /// The number of members.
    pub fn members(&self) -> usize {
        self.members.len()
    }

    /// Registers the stacked tensor `t` (`[M, …]`, requiring grad) under `name`; member `m`
    /// trains its slice iff `active[m]`.
    ///
    /// # Errors
    /// A duplicate name, a tensor that does not require grad, or a leading dimension or
    /// `active` of the wrong length.
    pub fn add_param(
        &mut self,
        name: &str,
        t: &Tensor,
        weight_decay: bool,
        active: Vec<bool>,
    ) -> Result<(), EtfError> {
        let m = self.members() as i64;
        if self.params.iter().any(|p| p.param.name == name) {
            return Err(EtfError::DuplicateParam(name.into()));
        }
        if t.size().first() != Some(&m) || active.len() as i64 != m {
            return Err(EtfError::StateShape {
                name: name.into(),
                expected: vec![m],
                got: vec![t.size().first().copied().unwrap_or(0), active.len() as i64],
            });
        }
        let mut p = Member {
            param: Param::fresh(name, t, weight_decay)?,
            active,
            mask: None,
            frozen: None,
            loaded: false,
        };
        p.refresh()?;
        self.params.push(p);
        Ok(())
    }

    /// Stops member `m` training its slice of `name` from now on: its state slice is zeroed and
    /// the slice's current values are kept fixed. Call it after writing the slice's final
    /// values (an ETF map). Returns whether the slice was active.
    ///
    /// # Errors
    /// An unknown name or member.
    pub fn deactivate(&mut self, name: &str, m: usize) -> Result<bool, EtfError> {
        let p = self.param_mut(name)?;
        let was = *p
            .active
            .get(m)
            .ok_or_else(|| EtfError::InvalidConfig(format!("no stack member {m}")))?;
        p.active[m] = false;
        tch::no_grad(|| -> Result<(), EtfError> {
            for t in [&p.param.first, &p.param.second].into_iter().flatten() {
                let _ = t.f_get(m as i64)?.f_zero_()?;
            }
            Ok(())
        })?;
        p.refresh()?;
        Ok(was)
    }

    fn param_mut(&mut self, name: &str) -> Result<&mut Member, EtfError> {
        self.params
            .iter_mut()
            .find(|p| p.param.name == name)
            .ok_or_else(|| EtfError::UnknownState(name.into()))
    }

    /// Sets the members' learning rates (for schedules).
    ///
    /// # Panics
    /// When `lr` does not have one rate per member (a caller's bug).
    pub fn set_lr(&mut self, lr: &[f64]) {
        assert_eq!(lr.len(), self.members(), "one learning rate per member");
        self.lr.copy_from_slice(lr);
    }

    /// Sets every parameter's gradient to undefined.
    pub fn zero_grad(&mut self) {
        let ts: Vec<&Tensor> = self.params.iter().map(|p| &p.param.tensor).collect();
        super::set_grads_to_none(&ts);
    }

    /// One update of every parameter with a defined gradient: each active slice as its
    /// member's own optimiser would update it, frozen slices not at all.
    ///
    /// # Errors
    /// A tensor operation failed (the device ran out of memory, say).
    pub fn step(&mut self) -> Result<(), EtfError> {
        let wd: Vec<f64> = self
            .members
            .iter()
            .map(|c| c.decay_and_momentum().0)
            .collect();
        let mu: Vec<f64> = self
            .members
            .iter()
            .map(|c| c.decay_and_momentum().1)
            .collect();
        let mut cache: HashMap<(bool, usize), Rates> = HashMap::new();
        let cfg = self.cfg;
        let lr = &self.lr;
        tch::no_grad(|| -> Result<(), EtfError> {
            for p in &mut self.params {
                let grad = p.param.tensor.grad();
                if !grad.defined() {
                    continue;
                }
                let grad = match &p.mask {
                    Some(mask) => grad.f_mul(mask)?,
                    None => grad,
                };
                let key = (p.param.weight_decay, p.param.tensor.dim());
                let rates = match cache.entry(key) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        let like = &p.param.tensor;
                        let on = p.param.weight_decay;
                        let wd: Vec<f64> = wd.iter().map(|&w| if on { w } else { 0.0 }).collect();
                        let decay: Vec<f64> =
                            wd.iter().zip(lr).map(|(wd, lr)| 1.0 - lr * wd).collect();
                        let neg_lr: Vec<f64> = lr.iter().map(|l| -l).collect();
                        // Members of one configuration share plain numbers: no upload at all.
                        e.insert(Rates {
                            neg_lr: per_member(&neg_lr, like)?,
                            weight_decay: per_member(&wd, like)?,
                            decay: per_member(&decay, like)?,
                            momentum: per_member(&mu, like)?,
                        })
                    }
                };
                p.param.step += 1;
                update(&mut p.param, &grad, &cfg, rates);
                if let (Some((idx, values)), Some(mask)) = (&p.frozen, &p.mask) {
                    // Frozen slices: their values back, their state (weight decay's share of
                    // it; the masked gradient adds nothing) zero again.
                    let _ = p.param.tensor.f_index_copy_(0, idx, values)?;
                    for t in [&mut p.param.first, &mut p.param.second]
                        .into_iter()
                        .flatten()
                    {
                        let _ = t.f_mul_(mask)?;
                    }
                }
            }
            Ok(())
        })
    }

    /// Member `m`'s optimiser state in [`super::Optimizer::state_tensors`]'s format, for the
    /// parameters it trains: what its single run's optimiser holds after the same steps.
    pub fn member_state(&self, m: usize) -> Vec<(String, Tensor)> {
        let buffers = &self.cfg.fields()[1..];
        let has_buffer = self.buffered(m);
        let mut out = Vec::new();
        for p in self.params.iter().filter(|p| p.active[m]) {
            let name = &p.param.name;
            let step = Tensor::from_slice(&[p.param.step]).reshape([] as [i64; 0]);
            out.push((format!("{name}::step"), step));
            if !has_buffer {
                continue;
            }
            for (field, t) in buffers.iter().zip([&p.param.first, &p.param.second]) {
                if let Some(t) = t {
                    out.push((format!("{name}::{field}"), t.get(m as i64).detach().copy()));
                }
            }
        }
        out
    }

    /// Loads member `m`'s state saved by its single run's optimiser (or by
    /// [`StackedOptimizer::member_state`]) into its slices. Every member must have taken the
    /// same number of steps of a parameter it trains.
    ///
    /// # Errors
    /// A missing or misshapen entry, or a step count that differs from another member's.
    pub fn load_member_state(
        &mut self,
        m: usize,
        named: &[(String, Tensor)],
    ) -> Result<(), EtfError> {
        let by_name: HashMap<&str, &Tensor> = named.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let fields = self.cfg.fields();
        let buffered = self.buffered(m);
        for p in &mut self.params {
            if !p.active[m] {
                continue;
            }
            let step_name = format!("{}::step", p.param.name);
            let step = by_name
                .get(step_name.as_str())
                .ok_or_else(|| EtfError::MissingState(step_name.clone()))?
                .f_int64_value(&[])?;
            if p.loaded && step != p.param.step {
                return Err(EtfError::InvalidConfig(format!(
                    "stack member {m} has taken {step} steps of {}, another member {}: only runs \
                     at the same point train as one stack",
                    p.param.name, p.param.step
                )));
            }
            p.param.step = step;
            p.loaded = true;
            if step == 0 || !buffered {
                continue;
            }
            let slots = [&mut p.param.first, &mut p.param.second];
            for (slot, field) in slots.into_iter().zip(&fields[1..]) {
                let name = format!("{}::{field}", p.param.name);
                let src = by_name
                    .get(name.as_str())
                    .ok_or_else(|| EtfError::MissingState(name.clone()))?;
                let whole = slot.get_or_insert_with(|| p.param.tensor.detach().zeros_like());
                let mut dst = whole.f_get(m as i64)?;
                if src.size() != dst.size() {
                    return Err(EtfError::StateShape {
                        name,
                        expected: dst.size(),
                        got: src.size(),
                    });
                }
                tch::no_grad(|| dst.f_copy_(src))?;
            }
        }
        Ok(())
    }

    /// Whether member `m`'s single run keeps buffers (SGD with momentum, AdamW). A stack that
    /// mixes momentum with none keeps one momentum buffer for all; a member without momentum
    /// steps through its slice of it, but its single run has no such state.
    fn buffered(&self, m: usize) -> bool {
        self.members[m].decay_and_momentum().1 != 0.0
            || matches!(self.cfg, OptimizerConfig::AdamW(_))
    }

    /// Bytes of member `m`'s optimiser state (what its single run would hold).
    pub fn state_bytes(&self, m: usize) -> i64 {
        if !self.buffered(m) {
            return 0;
        }
        self.params
            .iter()
            .filter(|p| p.active[m])
            .flat_map(|p| p.param.first.iter().chain(p.param.second.iter()))
            .map(|t| numel(t) / t.size()[0].max(1) * t.kind().elt_size_in_bytes() as i64)
            .sum()
    }

    /// Scalars member `m` trains.
    pub fn num_params(&self, m: usize) -> i64 {
        self.params
            .iter()
            .filter(|p| p.active[m])
            .map(|p| numel(&p.param.tensor) / p.param.tensor.size()[0].max(1))
            .sum()
    }
}

impl Member {
    /// Rebuilds the mask and the frozen slices from `active` and the current values.
    fn refresh(&mut self) -> Result<(), EtfError> {
        let t = &self.param.tensor;
        if self.active.iter().all(|&a| a) {
            (self.mask, self.frozen) = (None, None);
            return Ok(());
        }
        let on: Vec<f64> = self
            .active
            .iter()
            .map(|&a| f64::from(u8::from(a)))
            .collect();
        self.mask = Some(member_tensor(&on, t)?);
        let idx: Vec<i64> = (0..self.active.len() as i64)
            .filter(|&m| !self.active[m as usize])
            .collect();
        let idx = Tensor::f_from_slice(&idx)?.f_to_device(t.device())?;
        let values = tch::no_grad(|| t.f_index_select(0, &idx))?.f_detach()?;
        self.frozen = Some((idx, values));
        Ok(())
    }
}

/// `[M, 1, …]` of `like`'s kind, device and rank, holding `vals`. The upload does not wait for
/// the device (a blocking copy would synchronise every step).
fn member_tensor(vals: &[f64], like: &Tensor) -> Result<Tensor, EtfError> {
    let mut shape = vec![1i64; like.dim().max(1)];
    shape[0] = vals.len() as i64;
    Ok(Tensor::f_from_slice(vals)?
        .f_to_kind(like.kind())?
        .f_to_device_(like.device(), like.kind(), true, false)?
        .f_view(shape.as_slice())?)
}

/// One value per member as a [`Factor`]: a plain number when they are all equal.
fn per_member(vals: &[f64], like: &Tensor) -> Result<Factor, EtfError> {
    if vals.windows(2).all(|w| w[0] == w[1]) {
        return Ok(Factor::Value(vals[0]));
    }
    Ok(Factor::Each(member_tensor(vals, like)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{AdamWConfig, SgdConfig};
    use tch::{Device, Kind};

    fn configs() -> Vec<Vec<OptimizerConfig>> {
        let sgd = |lr, momentum| {
            OptimizerConfig::Sgd(SgdConfig {
                lr,
                momentum,
                weight_decay: 0.1,
                ..SgdConfig::default()
            })
        };
        let adamw = |lr| {
            OptimizerConfig::AdamW(AdamWConfig {
                lr,
                ..AdamWConfig::default()
            })
        };
        vec![
            vec![sgd(0.1, 0.9), sgd(0.2, 0.5), sgd(0.1, 0.9)],
            // Momentum and none in one stack: one buffer, the member without it holds none.
            vec![sgd(0.1, 0.9), sgd(0.2, 0.0), sgd(0.1, 0.9)],
            vec![adamw(0.01), adamw(0.02), adamw(0.01)],
        ]
    }

    #[test]
    fn a_frozen_slice_is_bit_identical_and_keeps_no_state() {
        for cfgs in configs() {
            let mut opt = StackedOptimizer::new(cfgs).unwrap();
            // Member 1's slice holds a negative zero, which `p + (−0)·x` would turn positive.
            let w = Tensor::from_slice(&[1.0f32, -2.0, 3.0, -0.0, 0.5, 4.0, -1.0, 2.0, 0.25])
                .view([3, 3])
                .set_requires_grad(true);
            opt.add_param("w", &w, true, vec![true, true, true])
                .unwrap();
            let frozen = w.get(1).detach().copy();
            assert!(opt.deactivate("w", 1).unwrap());
            assert!(!opt.deactivate("w", 1).unwrap(), "already frozen");
            for _ in 0..5 {
                opt.zero_grad();
                (&w * &w).sum(Kind::Float).backward();
                opt.step().unwrap();
            }
            let now = w.get(1).detach();
            let bits = |t: &Tensor| -> Vec<u32> {
                Vec::<f32>::try_from(t)
                    .unwrap()
                    .iter()
                    .map(|x| x.to_bits())
                    .collect()
            };
            assert_eq!(bits(&now), bits(&frozen), "the frozen slice moved");
            assert!(!w.get(0).equal(&Tensor::from_slice(&[1.0f32, -2.0, 3.0])));
            // Its state is zero, and counted for the others only.
            let per_member = 3 * 4 * if opt.member_state(0).len() == 3 { 2 } else { 1 };
            assert_eq!(opt.state_bytes(0), per_member);
            assert_eq!(opt.state_bytes(1), 0);
            assert_eq!(opt.num_params(1), 0);
            assert!(opt.member_state(1).is_empty());
            for t in [&opt.params[0].param.first, &opt.params[0].param.second]
                .into_iter()
                .flatten()
            {
                assert_eq!(t.get(1).abs().sum(Kind::Float).double_value(&[]), 0.0);
            }
        }
    }

    #[test]
    fn members_step_as_their_own_optimisers() {
        for cfgs in configs() {
            let init = Tensor::randn([3, 4], (Kind::Double, Device::Cpu));
            let w = init.copy().set_requires_grad(true);
            let mut opt = StackedOptimizer::new(cfgs.clone()).unwrap();
            opt.add_param("w", &w, true, vec![true; 3]).unwrap();
            let singles: Vec<Tensor> = (0..3)
                .map(|m| init.get(m).copy().set_requires_grad(true))
                .collect();
            let mut theirs: Vec<super::super::Optimizer> = cfgs
                .iter()
                .zip(&singles)
                .map(|(c, t)| {
                    let mut o = super::super::Optimizer::new(*c);
                    o.add_param("w", t, true).unwrap();
                    o
                })
                .collect();
            for _ in 0..6 {
                opt.zero_grad();
                (&w * &w * &w).sum(Kind::Double).backward();
                opt.step().unwrap();
                for (o, t) in theirs.iter_mut().zip(&singles) {
                    o.zero_grad();
                    (t * t * t).sum(Kind::Double).backward();
                    o.step();
                }
            }
            for (m, t) in singles.iter().enumerate() {
                let d = (w.get(m as i64) - t).abs().max().double_value(&[]);
                assert!(d < 1e-12, "member {m}: {d:e}");
                // The exported state loads into the single optimiser's format, and is as large.
                theirs[m].load_state_tensors(&opt.member_state(m)).unwrap();
                assert_eq!(opt.state_bytes(m), theirs[m].state_bytes(), "member {m}");
            }
        }
    }

    #[test]
    fn members_that_differ_in_more_than_rates_are_refused() {
        let a = OptimizerConfig::Sgd(SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            ..SgdConfig::default()
        });
        let b = OptimizerConfig::Sgd(SgdConfig {
            nesterov: true,
            ..match a {
                OptimizerConfig::Sgd(c) => c,
                _ => unreachable!(),
            }
        });
        let err = StackedOptimizer::new(vec![a, b]).unwrap_err().to_string();
        assert!(err.contains("member 1"), "{err}");
        assert!(StackedOptimizer::new(Vec::new()).is_err());
    }
}
