//! The training loop shared by every model: steps, per-epoch measurements, Adaptive-ETF locking,
//! and the state a checkpoint needs to resume bit-exactly on CPU.

use crate::checkpoint::{Checkpoint, CheckpointError, MODEL_PREFIX, OPTIM_PREFIX};
use crate::evaluate::{evaluate, Evaluation, Measure};
use crate::lock::{AdaptiveConfig, LockController};
use crate::model::CollapseModel;
use crate::record::EpochRecord;
use crate::schedule::Schedule;
use crate::TrainError;
use collapse_metrics::{effective_depth, GlobalMean};
use etf_data::Split;
use serde::{Deserialize, Serialize};
use simplex_etf::optim::{Optimizer, OptimizerConfig, SgdConfig};
use std::collections::HashMap;
use std::time::Instant;
use tch::{nn, Device, Kind, Reduction, Tensor};

/// How to train and measure.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainSpec {
    /// Epochs to train.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Batch size of the measuring passes.
    pub eval_batch_size: usize,
    /// Label smoothing of the cross-entropy (0 = off).
    pub label_smoothing: f64,
    /// The optimiser.
    pub optimizer: OptimizerConfig,
    /// The learning-rate schedule.
    pub schedule: Schedule,
    /// Global-mean convention of the collapse reports.
    pub global_mean: GlobalMean,
    /// Threshold τ of the reported effective depth.
    pub tau: f64,
    /// Adaptive-ETF locking, when the variant locks during training.
    pub adaptive: Option<AdaptiveConfig>,
    /// Seed of the batch order (and of the ETFs of random orientation).
    pub seed: u64,
}

impl TrainSpec {
    /// How the per-epoch measurements run on `device`.
    pub fn measure(&self, device: Device) -> Measure {
        Measure {
            batch_size: self.eval_batch_size,
            global_mean: self.global_mean,
            device,
        }
    }

    fn validate<E: std::error::Error + 'static>(&self) -> Result<(), TrainError<E>> {
        self.optimizer.validate()?;
        self.schedule.validate().map_err(TrainError::Config)?;
        if let Some(a) = &self.adaptive {
            a.validate().map_err(TrainError::Config)?;
        }
        if self.epochs == 0 || self.batch_size == 0 || self.eval_batch_size == 0 {
            return Err(TrainError::Config(
                "train.epochs and train.batch_size must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// The trainer's resumable state (besides tensors).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainerState {
    /// Epochs completed.
    pub epochs_done: usize,
    /// Lock controller of the adaptive variant.
    pub controller: Option<LockController>,
    /// Every epoch's record so far.
    pub history: Vec<EpochRecord>,
    /// Where the epoch in progress stopped, when the trainer stopped inside one (a preemption
    /// signal); `None` at an epoch's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_epoch: Option<EpochPosition>,
}

/// The position inside a stopped epoch: what its remaining steps need to end exactly as an
/// uninterrupted epoch does. The batch order, the augmentation and libtorch's random draws are
/// functions of (seed, epoch, step), so the step index restores them; the running sums are
/// kept as the f64 / i64 values the device held.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochPosition {
    /// Steps of the epoch already taken.
    pub steps_done: usize,
    /// Sum over those steps of the batch's mean loss times its size.
    pub loss_sum: f64,
    /// Correctly classified training samples in those steps.
    pub correct: i64,
    /// Learning rate of the last step taken.
    pub lr: f64,
    /// Wall time of those steps.
    pub train_seconds: f64,
}

/// What [`Trainer::run_epoch_or_stop`] did.
#[derive(Debug)]
pub enum EpochOutcome<'a> {
    /// The epoch ran to its end: its record.
    Finished(&'a EpochRecord),
    /// [`Progress::stop`] asked to stop: the trainer is inside epoch `epoch` (1-based) after
    /// `steps_done` of its `steps` steps, and a checkpoint taken now resumes there.
    Stopped {
        /// The epoch in progress, 1-based.
        epoch: usize,
        /// Steps taken.
        steps_done: usize,
        /// Steps of the epoch.
        steps: usize,
    },
}

/// Receives progress inside an epoch: `(step, steps, running)`, where `running` is the epoch's
/// mean training loss and accuracy so far. They are read from the device only every few steps
/// and only when [`Progress::wants_loss`] says so, since that read synchronises with the device.
pub trait Progress {
    /// Called after each step.
    fn step(&mut self, step: usize, steps: usize, running: Option<(f64, f64)>);
    /// Whether running loss and accuracy are wanted (a visible progress bar).
    fn wants_loss(&self) -> bool {
        false
    }
    /// Whether to stop after the step just taken (a preemption signal); asked by
    /// [`Trainer::run_epoch_or_stop`] only.
    fn stop(&self) -> bool {
        false
    }
}

/// A [`Progress`] that ignores everything.
pub struct NoProgress;
impl Progress for NoProgress {
    fn step(&mut self, _: usize, _: usize, _: Option<(f64, f64)>) {}
}

/// The data of a run, already on the training device.
pub struct RunData<'a> {
    /// Training set.
    pub train: &'a Split,
    /// Class-balanced training subset on which the NCC probe and training-side reports run.
    pub probe: &'a Split,
    /// Test set.
    pub test: &'a Split,
}

/// A lock's disruption: the lock probe batch's loss just before and just after it.
type Disruption = Option<(f64, f64)>;

/// Trains a [`CollapseModel`] epoch by epoch.
pub struct Trainer<M: CollapseModel> {
    /// The model.
    pub model: M,
    /// The variables behind it (for checkpoints).
    pub vs: nn::VarStore,
    pub(crate) opt: Optimizer,
    pub(crate) spec: TrainSpec,
    pub(crate) state: TrainerState,
}

/// How an epoch's training steps ended.
pub(crate) enum Steps {
    /// Every step ran.
    Done(StepTotals),
    /// Stopped after `steps_done` of `steps` steps (the position is in the trainer's state).
    Stopped { steps_done: usize, steps: usize },
}

/// Means of one epoch's training steps.
pub(crate) struct StepTotals {
    pub(crate) loss: f64,
    pub(crate) accuracy: f64,
    /// Learning rate at the last step.
    pub(crate) lr: f64,
}

impl<M: CollapseModel> Trainer<M> {
    /// A trainer whose optimiser holds every trainable tensor of `model`.
    pub fn new(model: M, vs: nn::VarStore, spec: TrainSpec) -> Result<Self, TrainError<M::Error>> {
        spec.validate()?;
        let mut opt = Optimizer::new(spec.optimizer);
        for p in model.named_trainable() {
            opt.add(&p)?;
        }
        let controller = spec
            .adaptive
            .as_ref()
            .map(|a| LockController::new(model.layer_names().len(), a.tau, a.patience));
        let state = TrainerState {
            epochs_done: 0,
            controller,
            history: Vec::new(),
            in_epoch: None,
        };
        Ok(Self {
            model,
            vs,
            opt,
            spec,
            state,
        })
    }

    /// The optimiser (to inspect what it holds).
    pub fn optimizer(&self) -> &Optimizer {
        &self.opt
    }

    /// The records so far.
    pub fn history(&self) -> &[EpochRecord] {
        &self.state.history
    }

    /// Epochs completed.
    pub fn epochs_done(&self) -> usize {
        self.state.epochs_done
    }

    /// Whether every epoch has run.
    pub fn finished(&self) -> bool {
        self.state.epochs_done >= self.spec.epochs
    }

    /// The training spec.
    pub fn spec(&self) -> &TrainSpec {
        &self.spec
    }

    /// The non-tensor state of a checkpoint.
    pub fn state(&self) -> &TrainerState {
        &self.state
    }

    /// Runs one epoch (or the rest of a stopped one): the training steps, then the
    /// measurements, then (adaptive) the locks. A non-finite training loss is an error and
    /// leaves the trainer's epoch count unchanged.
    pub fn run_epoch(
        &mut self,
        data: &RunData<'_>,
        progress: &mut dyn Progress,
    ) -> Result<&EpochRecord, TrainError<M::Error>> {
        match self.epoch(data, progress, false)? {
            EpochOutcome::Finished(r) => Ok(r),
            EpochOutcome::Stopped { .. } => unreachable!("an unstoppable epoch does not stop"),
        }
    }

    /// As [`Trainer::run_epoch`], but stops after any step at which [`Progress::stop`] says so,
    /// unless it was the epoch's last step (then the epoch ends as usual).
    pub fn run_epoch_or_stop(
        &mut self,
        data: &RunData<'_>,
        progress: &mut dyn Progress,
    ) -> Result<EpochOutcome<'_>, TrainError<M::Error>> {
        self.epoch(data, progress, true)
    }

    fn epoch(
        &mut self,
        data: &RunData<'_>,
        progress: &mut dyn Progress,
        stoppable: bool,
    ) -> Result<EpochOutcome<'_>, TrainError<M::Error>> {
        let epoch = self.state.epochs_done; // 0-based
        let t0 = Instant::now();
        let earlier = self
            .state
            .in_epoch
            .as_ref()
            .map_or(0.0, |p| p.train_seconds);
        let steps = match self.train_steps(epoch, data.train, progress, stoppable, t0)? {
            Steps::Done(totals) => totals,
            Steps::Stopped { steps_done, steps } => {
                return Ok(EpochOutcome::Stopped {
                    epoch: epoch + 1,
                    steps_done,
                    steps,
                })
            }
        };
        let train_seconds = earlier + t0.elapsed().as_secs_f64();
        self.close_epoch(epoch, steps, train_seconds, data)?;
        Ok(EpochOutcome::Finished(
            self.state.history.last().expect("just pushed"),
        ))
    }

    /// The end of epoch `epoch` (0-based) whose training steps gave `steps` in `train_seconds`:
    /// the measurements, the lock rule, the record. A non-finite training loss is an error and
    /// leaves the trainer's epoch count unchanged.
    pub(crate) fn close_epoch(
        &mut self,
        epoch: usize,
        steps: StepTotals,
        train_seconds: f64,
        data: &RunData<'_>,
    ) -> Result<(), TrainError<M::Error>> {
        if !steps.loss.is_finite() {
            return Err(TrainError::NonFiniteLoss {
                epoch: epoch + 1,
                loss: steps.loss,
            });
        }
        let t1 = Instant::now();
        let m = evaluate(
            &self.model,
            data.probe,
            data.test,
            &self.spec.measure(self.vs.device()),
        )?;
        let train_ncc: Vec<f64> = m.layers.iter().map(|l| l.train.ncc_accuracy).collect();
        let (newly_locked, disruption) = self.apply_lock_rule(epoch, &train_ncc, data.probe)?;
        let record = self.record(epoch, steps, m, newly_locked, &train_ncc);
        let record = EpochRecord {
            lock_loss_before: disruption.map(|d| d.0),
            lock_loss_after: disruption.map(|d| d.1),
            train_seconds,
            metrics_seconds: t1.elapsed().as_secs_f64(),
            samples_per_second: data.train.len() as f64 / train_seconds.max(1e-9),
            ..record
        };
        self.state.history.push(record);
        self.state.epochs_done += 1;
        self.state.in_epoch = None;
        Ok(())
    }

    /// The adaptive rule after a probe: locks what it decides, returns the newly locked names
    /// and, when it locked, the lock probe batch's loss just before and just after the lock.
    fn apply_lock_rule(
        &mut self,
        epoch: usize,
        train_ncc: &[f64],
        probe: &Split,
    ) -> Result<(Vec<String>, Disruption), TrainError<M::Error>> {
        let (Some(ctrl), Some(a)) = (self.state.controller.as_mut(), self.spec.adaptive.as_ref())
        else {
            return Ok((Vec::new(), None));
        };
        if (epoch + 1) % a.probe_every.max(1) != 0 {
            return Ok((Vec::new(), None));
        }
        let Some(layer) = ctrl.observe(train_ncc) else {
            return Ok((Vec::new(), None));
        };
        let (orientation, scale) = (a.orientation, a.scale);
        let before = self.lock_probe_loss(probe)?;
        let newly = self
            .model
            .lock_after(layer, orientation, scale, self.spec.seed, &mut self.opt)
            .map_err(TrainError::Model)?;
        let after = self.lock_probe_loss(probe)?;
        tracing::info!(epoch = epoch + 1, after = layer, locked = ?newly, "locked layers");
        Ok((newly, Some((before, after))))
    }

    /// The training loss (the run's loss, label smoothing included) in evaluation mode on the
    /// lock probe batch: the first `eval_batch_size` samples of the probe set, the same batch
    /// at every lock, so a lock's disruption is the difference of two numbers on one batch.
    pub fn lock_probe_loss(&self, probe: &Split) -> Result<f64, TrainError<M::Error>> {
        let n = self.spec.eval_batch_size.min(probe.len()) as i64;
        let xs = probe.features.f_narrow(0, 0, n)?;
        let ys = probe.labels.f_narrow(0, 0, n)?;
        tch::no_grad(|| {
            let logits = self
                .model
                .forward_logits(&xs, false)
                .map_err(TrainError::Model)?;
            Ok(self.loss(&logits, &ys)?.f_double_value(&[])?)
        })
    }

    /// The training loss of `logits` against `ys` (mean cross-entropy with label smoothing).
    fn loss(&self, logits: &Tensor, ys: &Tensor) -> Result<Tensor, tch::TchError> {
        logits.f_cross_entropy_loss::<Tensor>(
            ys,
            None,
            Reduction::Mean,
            -100,
            self.spec.label_smoothing,
        )
    }

    /// The epoch's record from its measurements (timings filled in by the caller).
    fn record(
        &self,
        epoch: usize,
        steps: StepTotals,
        m: Evaluation,
        newly_locked: Vec<String>,
        train_ncc: &[f64],
    ) -> EpochRecord {
        EpochRecord {
            epoch: epoch + 1,
            lr: steps.lr,
            train_loss: steps.loss,
            train_accuracy: steps.accuracy,
            test_loss: m.test_loss,
            test_accuracy: m.test_accuracy,
            learnable_params: self.model.learnable_params(),
            total_params: self.model.total_params(),
            optimizer_state_bytes: self.opt.state_bytes(),
            locked_layers: self.model.locked_layers(),
            newly_locked,
            lock_loss_before: None,
            lock_loss_after: None,
            effective_depth: effective_depth(train_ncc, self.spec.tau),
            layers: m.layers,
            classifier: m.classifier,
            train_seconds: 0.0,
            metrics_seconds: 0.0,
            samples_per_second: 0.0,
        }
    }

    pub(crate) fn train_steps(
        &mut self,
        epoch: usize,
        train: &Split,
        progress: &mut dyn Progress,
        stoppable: bool,
        t0: Instant,
    ) -> Result<Steps, TrainError<M::Error>> {
        // Every source of randomness is a function of (seed, epoch, step), so a resumed run
        // (from an epoch's end or from inside one) replays exactly what an uninterrupted one does.
        let epoch_seed = etf_rng::mix(self.spec.seed, epoch as u64);
        let device = self.vs.device();
        let n = train.len();
        let steps = n.div_ceil(self.spec.batch_size);
        let base_lr = self.spec.optimizer.lr();
        let start = self.state.in_epoch.take();
        let first = start.as_ref().map_or(0, |p| p.steps_done);
        if first >= steps {
            return Err(CheckpointError::Mismatch(format!(
                "the checkpoint stopped after step {first} of epoch {}, which has {steps} steps",
                epoch + 1
            ))
            .into());
        }
        let (sum0, correct0, lr0, seconds0) = start.as_ref().map_or((0.0, 0, base_lr, 0.0), |p| {
            (p.loss_sum, p.correct, p.lr, p.train_seconds)
        });
        let mut loss_sum = Tensor::full([], sum0, (Kind::Double, device));
        let mut correct = Tensor::full([], correct0, (Kind::Int64, device));
        let mut lr = lr0;
        let mut seen = (first * self.spec.batch_size) as i64;
        for (step, (xs, ys)) in train
            .batches(self.spec.batch_size, Some(epoch_seed), device)?
            .enumerate()
            .skip(first)
        {
            tch::manual_seed(etf_rng::mix(epoch_seed, step as u64) as i64 & i64::MAX);
            lr = base_lr
                * self
                    .spec
                    .schedule
                    .factor(epoch, step, steps, self.spec.epochs);
            self.opt.set_lr(lr);
            let xs = self
                .model
                .augment(&xs, epoch_seed, step as u64)
                .map_err(TrainError::Model)?;
            let (loss, logits) = self.step(&xs, &ys)?;
            let bsz = ys.size()[0];
            loss_sum += loss.detach().to_kind(Kind::Double) * bsz as f64;
            correct += logits.argmax(-1, false).eq_tensor(&ys).sum(Kind::Int64);
            seen += bsz;
            let read = progress.wants_loss() && (step % 20 == 0 || step + 1 == steps);
            let running = read.then(|| {
                let seen = seen as f64;
                (
                    loss_sum.double_value(&[]) / seen,
                    correct.int64_value(&[]) as f64 / seen,
                )
            });
            progress.step(step + 1, steps, running);
            if stoppable && step + 1 < steps && progress.stop() {
                self.state.in_epoch = Some(EpochPosition {
                    steps_done: step + 1,
                    loss_sum: loss_sum.double_value(&[]),
                    correct: correct.int64_value(&[]),
                    lr,
                    train_seconds: seconds0 + t0.elapsed().as_secs_f64(),
                });
                return Ok(Steps::Stopped {
                    steps_done: step + 1,
                    steps,
                });
            }
        }
        Ok(Steps::Done(StepTotals {
            loss: loss_sum.double_value(&[]) / n as f64,
            accuracy: correct.int64_value(&[]) as f64 / n as f64,
            lr,
        }))
    }

    /// One optimiser step on a batch; returns the (mean) loss and the logits.
    fn step(&mut self, xs: &Tensor, ys: &Tensor) -> Result<(Tensor, Tensor), TrainError<M::Error>> {
        let logits = self
            .model
            .forward_logits(xs, true)
            .map_err(TrainError::Model)?;
        let loss = self.loss(&logits, ys)?;
        self.opt.zero_grad();
        loss.backward();
        self.opt.step();
        Ok((loss, logits))
    }

    /// The checkpoint of the trainer now: model variables, optimiser state and trainer state.
    pub fn checkpoint(&self) -> Checkpoint {
        let mut tensors: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .map(|(k, v)| (format!("{MODEL_PREFIX}{k}"), v))
            .collect();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        tensors.extend(
            self.opt
                .state_tensors()
                .into_iter()
                .map(|(k, v)| (format!("{OPTIM_PREFIX}{k}"), v)),
        );
        Checkpoint {
            state: self.state.clone(),
            tensors,
        }
    }

    /// Restores a checkpoint into a freshly built trainer of the same configuration: re-applies
    /// the locks, then copies every variable and the optimiser state bit-exactly.
    pub fn restore(&mut self, ckpt: Checkpoint) -> Result<(), TrainError<M::Error>> {
        reapply_locks(
            &mut self.model,
            &ckpt.state,
            self.spec.adaptive.as_ref(),
            self.spec.seed,
            &mut self.opt,
        )?;
        let (model, optim) = split_tensors(ckpt.tensors)?;
        copy_variables(&self.vs, &model)?;
        let device = self.vs.device();
        let optim: Vec<(String, Tensor)> = optim
            .into_iter()
            .map(|(k, v)| (k, v.to_device(device)))
            .collect();
        self.opt.load_state_tensors(&optim)?;
        self.state = ckpt.state;
        Ok(())
    }
}

/// Restores a model (built as its run built it, in `vs`) to a checkpoint's weights and locks,
/// without an optimiser: what evaluating a saved model needs.
pub fn restore_model<M: CollapseModel>(
    model: &mut M,
    vs: &nn::VarStore,
    ckpt: &Checkpoint,
    adaptive: Option<&AdaptiveConfig>,
    seed: u64,
) -> Result<(), TrainError<M::Error>> {
    // Locking removes weights from an optimiser; this one holds nothing and is dropped.
    let mut scratch = Optimizer::new(OptimizerConfig::Sgd(SgdConfig::default()));
    reapply_locks(model, &ckpt.state, adaptive, seed, &mut scratch)?;
    let tensors: Vec<(String, Tensor)> = ckpt
        .tensors
        .iter()
        .map(|(k, v)| (k.clone(), v.shallow_clone()))
        .collect();
    let (vars, _) = split_tensors(tensors)?;
    copy_variables(vs, &vars)
}

/// Locks again what the checkpoint's controller had locked (its weights are then overwritten by
/// the saved ones).
fn reapply_locks<M: CollapseModel>(
    model: &mut M,
    state: &TrainerState,
    adaptive: Option<&AdaptiveConfig>,
    seed: u64,
    opt: &mut Optimizer,
) -> Result<(), TrainError<M::Error>> {
    if let (Some(ctrl), Some(a)) = (state.controller.as_ref(), adaptive) {
        if let Some(layer) = ctrl.locked_after() {
            let layers = model.layer_names().len();
            if layer > layers {
                return Err(CheckpointError::Mismatch(format!(
                    "the checkpoint's layers are locked after layer {layer}; the model has {layers}"
                ))
                .into());
            }
            model
                .lock_after(layer, a.orientation, a.scale, seed, opt)
                .map_err(TrainError::Model)?;
        }
    }
    Ok(())
}

type Named = Vec<(String, Tensor)>;

/// Model variables (by VarStore name) and optimiser state of a checkpoint's tensors.
fn split_tensors<E: std::error::Error + 'static>(
    tensors: Named,
) -> Result<(HashMap<String, Tensor>, Named), TrainError<E>> {
    let mut model = HashMap::new();
    let mut optim = Vec::new();
    for (k, v) in tensors {
        if let Some(name) = k.strip_prefix(MODEL_PREFIX) {
            model.insert(name.to_string(), v);
        } else if let Some(name) = k.strip_prefix(OPTIM_PREFIX) {
            optim.push((name.to_string(), v));
        } else {
            return Err(CheckpointError::Mismatch(format!("unexpected tensor {k:?}")).into());
        }
    }
    Ok((model, optim))
}

fn copy_variables<E: std::error::Error + 'static>(
    vs: &nn::VarStore,
    saved: &HashMap<String, Tensor>,
) -> Result<(), TrainError<E>> {
    let device = vs.device();
    let mismatch = |m: String| TrainError::from(CheckpointError::Mismatch(m));
    tch::no_grad(|| {
        for (name, mut var) in vs.variables() {
            let src = saved
                .get(&name)
                .ok_or_else(|| mismatch(format!("missing variable {name:?}")))?;
            if src.size() != var.size() {
                return Err(mismatch(format!(
                    "variable {name:?} has shape {:?} in the checkpoint, {:?} in the model",
                    src.size(),
                    var.size()
                )));
            }
            var.f_copy_(&src.to_device(device))?;
        }
        Ok(())
    })
}
