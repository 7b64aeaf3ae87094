//! Many runs trained as one computation: the parameters of `M` [`Trainer`]s of one
//! architecture get a leading member dimension, a training step is one stacked forward and
//! backward pass ([`CollapseModel::forward_stacked`]) and one [`StackedOptimizer`] step, and
//! every member sees exactly the batches its single run sees (its own seed's permutation).
//!
//! The members stay whole single-run [`Trainer`]s: after an epoch's training steps each gets
//! its slice of the weights and of the optimiser state back, then measures, applies its lock
//! rule and records the epoch by the single run's own code, so records, learnable counts,
//! checkpoints and locks are a single run's by construction. A lock then writes the member's ETF
//! maps into its slices and freezes them in the stacked optimiser.
//!
//! That joint computation is what an accelerator wants, where a step of one small run is bound
//! by kernel launches. A CPU step is bound by arithmetic and memory traffic instead, which a
//! stack does not reduce; there the joint step only adds the gathering of the members' gradients
//! and a working set M times a run's (measured: one 4-member stack on one thread trains at 0.72×
//! the same runs one after another). So [`StackMode::Auto`] trains a CPU stack
//! [`StackMode::InTurn`]: each epoch, the members' training steps one member after another, by
//! the single run's own step, and then their epoch ends together as in the joint mode.

use crate::model::CollapseModel;
use crate::trainer::{Progress, RunData, StepTotals, Steps, Trainer};
use crate::TrainError;
use simplex_etf::optim::StackedOptimizer;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Instant;
use tch::{Device, Kind, Reduction, Tensor};

/// How a stack's training steps run; see the module docs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StackMode {
    /// [`StackMode::Joint`] on an accelerator, [`StackMode::InTurn`] on a CPU.
    #[default]
    Auto,
    /// One stacked forward and backward pass and one [`StackedOptimizer`] step per batch.
    Joint,
    /// Each epoch, every member's training steps in turn, by its single run's own step.
    InTurn,
}

impl StackMode {
    /// The mode a stack on `device` trains in: `Auto` resolved, the others as they are.
    ///
    /// ```
    /// use etf_train::StackMode;
    /// assert_eq!(StackMode::Auto.on(tch::Device::Cpu), StackMode::InTurn);
    /// assert_eq!(StackMode::Auto.on(tch::Device::Cuda(0)), StackMode::Joint);
    /// assert_eq!(StackMode::Joint.on(tch::Device::Cpu), StackMode::Joint);
    /// // As `--stack-mode` spells them:
    /// assert_eq!("in-turn".parse::<StackMode>(), Ok(StackMode::InTurn));
    /// assert_eq!(StackMode::InTurn.to_string(), "in-turn");
    /// assert!("jointly".parse::<StackMode>().unwrap_err().contains("expected auto, joint or in-turn"));
    /// ```
    pub fn on(self, device: Device) -> Self {
        match (self, device) {
            (Self::Auto, Device::Cpu) => Self::InTurn,
            (Self::Auto, _) => Self::Joint,
            (mode, _) => mode,
        }
    }
}

impl fmt::Display for StackMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Joint => "joint",
            Self::InTurn => "in-turn",
        })
    }
}

impl FromStr for StackMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "joint" => Ok(Self::Joint),
            "in-turn" => Ok(Self::InTurn),
            _ => Err(format!(
                "unknown stack mode {s:?}: expected auto, joint or in-turn"
            )),
        }
    }
}

/// `M` trainers of one architecture trained as one stack; see the module docs.
pub struct StackedTrainer<M: CollapseModel> {
    members: Vec<Trainer<M>>,
    /// The stacked variables and optimiser of [`StackMode::Joint`]; `None` in turn.
    joint: Option<Joint>,
}

/// Every variable of the architecture, by VarStore name, stacked `[M, …]`, and their optimiser.
struct Joint {
    vars: HashMap<String, Tensor>,
    opt: StackedOptimizer,
}

impl<M: CollapseModel> StackedTrainer<M> {
    /// Stacks `members`: trainers of one architecture and data shape, at the same epoch (each
    /// fresh or restored from its checkpoint), whose specs agree in epochs, batch sizes and label
    /// smoothing, and whose optimisers differ in lr, momentum and weight decay at most. Their
    /// learning-rate schedules, seeds, lock rules and fixed layers may differ.
    ///
    /// They train in the mode [`StackMode::Auto`] picks for their device.
    ///
    /// # Errors
    /// [`TrainError::Config`] saying what differs, or a model that cannot be stacked.
    pub fn new(members: Vec<Trainer<M>>) -> Result<Self, TrainError<M::Error>> {
        Self::with_mode(members, StackMode::Auto)
    }

    /// As [`StackedTrainer::new`], in `mode` (resolved by [`StackMode::on`]). Both modes accept
    /// and refuse the same stacks.
    ///
    /// # Errors
    /// As [`StackedTrainer::new`].
    pub fn with_mode(
        members: Vec<Trainer<M>>,
        mode: StackMode,
    ) -> Result<Self, TrainError<M::Error>> {
        let bad = |m: String| Err(TrainError::Config(m));
        let Some(first) = members.first() else {
            return bad("a stack needs at least one run".into());
        };
        if !first.model.can_stack() {
            return bad("this model cannot be trained stacked (only the MLP can)".into());
        }
        let device = first.vs.device();
        // Each member's variables by name, read once (each `variables()` builds a map).
        let all_vars: Vec<HashMap<String, Tensor>> =
            members.iter().map(|t| t.vs.variables()).collect();
        let mut names: Vec<String> = all_vars[0].keys().cloned().collect();
        names.sort();
        let (s0, e0) = (&first.spec, first.state.epochs_done);
        for (m, t) in members.iter().enumerate() {
            let s = &t.spec;
            let same_spec = s.epochs == s0.epochs
                && s.batch_size == s0.batch_size
                && s.eval_batch_size == s0.eval_batch_size
                && s.label_smoothing == s0.label_smoothing;
            if !same_spec {
                return bad(format!(
                    "stack member {m} differs from member 0 in train.epochs, batch_size, \
                     eval_batch_size or label_smoothing"
                ));
            }
            if t.state.epochs_done != e0 || t.state.in_epoch.is_some() {
                return bad(format!(
                    "stack member {m} is at epoch {} (member 0 at {e0}); only runs at the same \
                     epoch's end train as one stack",
                    t.state.epochs_done
                ));
            }
            if t.vs.device() != device {
                return bad(format!("stack member {m} is on another device"));
            }
            let vars = &all_vars[m];
            let shapes_agree = vars.len() == names.len()
                && names
                    .iter()
                    .all(|n| vars.get(n).map(Tensor::size) == all_vars[0].get(n).map(Tensor::size));
            if !shapes_agree {
                return bad(format!(
                    "stack member {m}'s variables differ from member 0's (another architecture)"
                ));
            }
        }
        let stacked = |name: &String| -> Result<Tensor, TrainError<M::Error>> {
            let parts: Vec<Tensor> = all_vars.iter().map(|v| v[name].detach()).collect();
            Ok(Tensor::f_stack(&parts, 0)?)
        };
        let mut vars = HashMap::new();
        let mut decay: HashMap<String, bool> = HashMap::new();
        for t in &members {
            for p in t.model.named_trainable() {
                if !names.contains(&p.name) {
                    return bad(format!(
                        "trainable tensor {} is not a variable of the model's VarStore",
                        p.name
                    ));
                }
                if *decay.entry(p.name.clone()).or_insert(p.weight_decay) != p.weight_decay {
                    return bad(format!("members disagree on weight decay of {}", p.name));
                }
            }
        }
        let configs = members.iter().map(|t| t.spec.optimizer).collect();
        // Built in either mode, so that both refuse the same optimiser settings.
        let mut opt = StackedOptimizer::new(configs)?;
        if mode.on(device) == StackMode::InTurn {
            return Ok(Self {
                members,
                joint: None,
            });
        }
        for name in &names {
            let mut v = stacked(name)?;
            if let Some(&wd) = decay.get(name) {
                v = v.f_set_requires_grad(true)?;
                let active = members.iter().map(|t| t.opt.contains(name)).collect();
                opt.add_param(name, &v, wd, active)?;
            }
            vars.insert(name.clone(), v);
        }
        for (m, t) in members.iter().enumerate() {
            opt.load_member_state(m, &t.opt.state_tensors())?;
        }
        Ok(Self {
            members,
            joint: Some(Joint { vars, opt }),
        })
    }

    /// The mode the stack trains in ([`StackMode::Joint`] or [`StackMode::InTurn`]).
    pub fn mode(&self) -> StackMode {
        if self.joint.is_some() {
            StackMode::Joint
        } else {
            StackMode::InTurn
        }
    }

    /// The members, in stacking order.
    pub fn members(&self) -> &[Trainer<M>] {
        &self.members
    }

    /// The members back as single-run trainers (their state is current after every epoch).
    pub fn into_members(self) -> Vec<Trainer<M>> {
        self.members
    }

    /// Whether every epoch has run.
    pub fn finished(&self) -> bool {
        self.members[0].finished()
    }

    /// Epochs completed (the same for every member).
    pub fn epochs_done(&self) -> usize {
        self.members[0].epochs_done()
    }

    /// The stacked optimiser (to inspect what it holds); `None` in turn, where every member
    /// steps its own.
    pub fn optimizer(&self) -> Option<&StackedOptimizer> {
        self.joint.as_ref().map(|j| &j.opt)
    }

    /// One epoch of every member: the stacked training steps, then each member's measurements,
    /// lock rule and record, as its single run does them. `progress` sees the members' mean
    /// running loss and accuracy.
    ///
    /// # Errors
    /// As [`Trainer::run_epoch`], for any member (a non-finite loss names the epoch); the
    /// members that already closed the epoch keep it.
    pub fn run_epoch(
        &mut self,
        data: &RunData<'_>,
        progress: &mut dyn Progress,
    ) -> Result<(), TrainError<M::Error>> {
        let epoch = self.epochs_done();
        let t0 = Instant::now();
        let totals = match self.joint {
            Some(_) => {
                let totals = self.train_steps(epoch, data, progress)?;
                self.write_members()?;
                totals
            }
            None => self.train_in_turn(epoch, data, progress)?,
        };
        // Every member records the stack's training time (its samples/s is then its share).
        let train_seconds = t0.elapsed().as_secs_f64();
        for (m, totals) in totals.into_iter().enumerate() {
            let t = &mut self.members[m];
            t.close_epoch(epoch, totals, train_seconds, data)?;
            let locked = t
                .state
                .history
                .last()
                .is_some_and(|r| !r.newly_locked.is_empty());
            if locked {
                self.read_member(m)?;
            }
        }
        Ok(())
    }

    /// [`StackMode::InTurn`]: each member's training steps of the epoch, by its own trainer.
    fn train_in_turn(
        &mut self,
        epoch: usize,
        data: &RunData<'_>,
        progress: &mut dyn Progress,
    ) -> Result<Vec<StepTotals>, TrainError<M::Error>> {
        let members = self.members.len();
        let mut totals = Vec::with_capacity(members);
        for (member, t) in self.members.iter_mut().enumerate() {
            let mut shown = InTurn {
                inner: &mut *progress,
                member,
                members,
            };
            match t.train_steps(epoch, data.train, &mut shown, false, Instant::now())? {
                Steps::Done(s) => totals.push(s),
                Steps::Stopped { .. } => unreachable!("an unstoppable epoch does not stop"),
            }
        }
        Ok(totals)
    }

    /// [`StackMode::Joint`]: the epoch's stacked training steps; returns each member's means.
    fn train_steps(
        &mut self,
        epoch: usize,
        data: &RunData<'_>,
        progress: &mut dyn Progress,
    ) -> Result<Vec<StepTotals>, TrainError<M::Error>> {
        let Some(Joint { vars, opt }) = self.joint.as_mut() else {
            unreachable!("the joint steps of a stack that trains in turn");
        };
        let spec = self.members[0].spec.clone();
        let device = self.members[0].vs.device();
        let members = self.members.len() as i64;
        let n = data.train.len();
        let steps = n.div_ceil(spec.batch_size);
        // Each member's own batch order: its single run's permutation of this epoch.
        let mut order = Vec::with_capacity(n * self.members.len());
        for t in &self.members {
            order.extend(etf_rng::permutation(
                n,
                etf_rng::mix(t.spec.seed, epoch as u64),
            ));
        }
        let order = Tensor::f_from_slice(&order)?
            .f_view([members, n as i64])?
            .f_to_device(device)?;
        let features = data.train.features.f_to_device(device)?;
        let labels = data.train.labels.f_to_device(device)?;
        let mut loss_sum = Tensor::f_zeros([members], (Kind::Double, device))?;
        let mut correct = Tensor::f_zeros([members], (Kind::Int64, device))?;
        let mut lrs = vec![0.0; self.members.len()];
        let mut seen = 0i64;
        for step in 0..steps {
            let start = (step * spec.batch_size) as i64;
            let b = (spec.batch_size as i64).min(n as i64 - start);
            let idx = order.f_narrow(1, start, b)?.f_reshape([-1])?;
            let mut shape = features.size();
            shape[0] = b;
            shape.insert(0, members);
            let xs = features.f_index_select(0, &idx)?.f_view(shape.as_slice())?;
            let ys = labels.f_index_select(0, &idx)?.f_view([members, b])?;
            for (lr, t) in lrs.iter_mut().zip(&self.members) {
                *lr = t.spec.optimizer.lr()
                    * t.spec.schedule.factor(epoch, step, steps, t.spec.epochs);
            }
            opt.set_lr(&lrs);
            let logits = self.members[0]
                .model
                .forward_stacked(vars, &xs, true)
                .ok_or_else(|| TrainError::Config("this model cannot be trained stacked".into()))?
                .map_err(TrainError::Model)?;
            let classes = *logits.size().last().unwrap_or(&0);
            // Each member's mean cross-entropy over its batch; their sum's gradient is every
            // member's own.
            let losses = logits
                .f_reshape([members * b, classes])?
                .f_cross_entropy_loss::<Tensor>(
                    &ys.f_reshape([-1])?,
                    None,
                    Reduction::None,
                    -100,
                    spec.label_smoothing,
                )?
                .f_view([members, b])?
                .f_mean_dim(1, false, Kind::Float)?;
            opt.zero_grad();
            losses.f_sum(Kind::Float)?.backward();
            opt.step()?;
            loss_sum += losses.detach().f_to_kind(Kind::Double)? * b as f64;
            correct += logits
                .f_argmax(-1, false)?
                .f_eq_tensor(&ys)?
                .f_sum_dim_intlist(1, false, Kind::Int64)?;
            seen += b;
            let read = progress.wants_loss() && (step % 20 == 0 || step + 1 == steps);
            let running = read.then(|| {
                let seen = (seen * members) as f64;
                (
                    loss_sum.sum(Kind::Double).double_value(&[]) / seen,
                    correct.sum(Kind::Int64).int64_value(&[]) as f64 / seen,
                )
            });
            progress.step(step + 1, steps, running);
        }
        let sums = Vec::<f64>::try_from(&loss_sum)?;
        let hits = Vec::<i64>::try_from(&correct)?;
        let totals = sums
            .iter()
            .zip(&hits)
            .zip(lrs)
            .map(|((s, c), lr)| StepTotals {
                loss: s / n as f64,
                accuracy: *c as f64 / n as f64,
                lr,
            })
            .collect();
        Ok(totals)
    }

    /// Copies every member's slices of the weights and of the optimiser state into the
    /// member's own trainer.
    fn write_members(&mut self) -> Result<(), TrainError<M::Error>> {
        let Some(Joint { vars, opt }) = &self.joint else {
            return Ok(());
        };
        for (m, t) in self.members.iter_mut().enumerate() {
            tch::no_grad(|| -> Result<(), TrainError<M::Error>> {
                for (name, mut var) in t.vs.variables() {
                    var.f_copy_(&vars[&name].f_get(m as i64)?)?;
                }
                Ok(())
            })?;
            t.opt.load_state_tensors(&opt.member_state(m))?;
        }
        Ok(())
    }

    /// Copies member `m`'s weights (after its lock) into its slices and freezes, in the stacked
    /// optimiser, every slice its own optimiser no longer holds (in turn: nothing to do, the
    /// member's own trainer is all there is).
    fn read_member(&mut self, m: usize) -> Result<(), TrainError<M::Error>> {
        let Some(Joint { vars, opt }) = self.joint.as_mut() else {
            return Ok(());
        };
        let t = &self.members[m];
        tch::no_grad(|| -> Result<(), TrainError<M::Error>> {
            for (name, var) in t.vs.variables() {
                let mut slice = vars[&name].f_get(m as i64)?;
                slice.f_copy_(&var)?;
            }
            Ok(())
        })?;
        let mut names: Vec<&String> = vars.keys().collect();
        names.sort();
        for name in names {
            if vars[name].requires_grad() && !t.opt.contains(name) {
                opt.deactivate(name, m)?;
            }
        }
        Ok(())
    }
}

/// The progress of a stack trained in turn: member `m`'s step `s` of `S` is the stack's step
/// `m·S + s` of `M·S`.
struct InTurn<'a> {
    inner: &'a mut dyn Progress,
    member: usize,
    members: usize,
}

impl Progress for InTurn<'_> {
    fn step(&mut self, step: usize, steps: usize, running: Option<(f64, f64)>) {
        self.inner
            .step(self.member * steps + step, self.members * steps, running);
    }
    fn wants_loss(&self) -> bool {
        self.inner.wants_loss()
    }
}
