//! The training loop shared by every model: steps, per-epoch measurements, Adaptive-ETF locking,
//! and the state a checkpoint needs to resume bit-exactly on CPU.

use crate::adaptive::LockController;
use crate::config::{AdaptiveConfig, OptimizerSpec};
use crate::model::{CollapseModel, Taps};
use crate::record::{EpochRecord, LayerRecord};
use crate::schedule::Schedule;
use crate::TrainError;
use collapse_metrics::tensor::TensorClassifier;
use collapse_metrics::{effective_depth, ClassMeans, CollapseAccumulator, GlobalMean, MeanStats};
use etf_data::Split;
use serde::{Deserialize, Serialize};
use simplex_etf::optim::Optimizer;
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
    pub optimizer: OptimizerSpec,
    /// The learning-rate schedule.
    pub schedule: Schedule,
    /// Global-mean convention of the collapse reports.
    pub global_mean: GlobalMean,
    /// Threshold τ of the reported effective depth.
    pub tau: f64,
    /// Adaptive-ETF locking, when the variant is `adaptive`.
    pub adaptive: Option<AdaptiveConfig>,
    /// Seed of the batch order (and of the ETFs of random orientation).
    pub seed: u64,
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
    /// Number of classes.
    pub num_classes: usize,
}

/// Trains a [`CollapseModel`] epoch by epoch.
pub struct Trainer<M: CollapseModel> {
    /// The model.
    pub model: M,
    /// The variables behind it (for checkpoints).
    pub vs: nn::VarStore,
    opt: Optimizer,
    spec: TrainSpec,
    state: TrainerState,
}

/// Prefix of model variables in checkpoint tensors.
const MODEL_PREFIX: &str = "model.";
/// Prefix of optimiser state in checkpoint tensors.
const OPTIM_PREFIX: &str = "optim.";

impl<M: CollapseModel> Trainer<M> {
    /// A trainer whose optimiser holds every trainable tensor of `model`.
    pub fn new(model: M, vs: nn::VarStore, spec: TrainSpec) -> Result<Self, TrainError> {
        spec.optimizer.validate().map_err(TrainError::Config)?;
        spec.schedule.validate().map_err(TrainError::Config)?;
        if spec.epochs == 0 || spec.batch_size == 0 || spec.eval_batch_size == 0 {
            return Err(TrainError::Config(
                "train.epochs and train.batch_size must be at least 1".into(),
            ));
        }
        let mut opt = Optimizer::new(spec.optimizer.to_config());
        for p in model.named_trainable() {
            opt.add_param(&p.name, &p.tensor, p.weight_decay)?;
        }
        let controller = spec
            .adaptive
            .as_ref()
            .map(|a| LockController::new(model.layer_names().len(), a.tau, a.patience));
        let state = TrainerState {
            epochs_done: 0,
            controller,
            history: Vec::new(),
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

    /// Runs one epoch: the training steps, then the measurements, then (adaptive) the locks.
    /// A non-finite training loss is an error and leaves the trainer's epoch count unchanged.
    pub fn run_epoch(
        &mut self,
        data: &RunData<'_>,
        progress: &mut dyn Progress,
    ) -> Result<&EpochRecord, TrainError> {
        let epoch = self.state.epochs_done; // 0-based
        let device = self.vs.device();
        let t0 = Instant::now();
        let (train_loss, train_accuracy, lr) =
            self.train_steps(epoch, data.train, device, progress)?;
        let train_seconds = t0.elapsed().as_secs_f64();
        if !train_loss.is_finite() {
            return Err(TrainError::NonFiniteLoss {
                epoch: epoch + 1,
                loss: train_loss,
            });
        }
        let t1 = Instant::now();
        let m = self.measure(data)?;
        let train_ncc: Vec<f64> = m.layers.iter().map(|l| l.train.ncc_accuracy).collect();
        let mut newly_locked = Vec::new();
        if let (Some(ctrl), Some(a)) = (self.state.controller.as_mut(), self.spec.adaptive.as_ref())
        {
            if (epoch + 1) % a.probe_every.max(1) == 0 {
                if let Some(layer) = ctrl.observe(&train_ncc) {
                    newly_locked = self.model.lock_after(
                        layer,
                        a.orientation,
                        self.spec.seed,
                        &mut self.opt,
                    )?;
                    tracing::info!(epoch = epoch + 1, after = layer, locked = ?newly_locked, "locked layers");
                }
            }
        }
        let metrics_seconds = t1.elapsed().as_secs_f64();
        let record = EpochRecord {
            epoch: epoch + 1,
            lr,
            train_loss,
            train_accuracy,
            test_loss: m.test_loss,
            test_accuracy: m.test_accuracy,
            learnable_params: self.model.learnable_params(),
            total_params: self.model.total_params(),
            optimizer_state_bytes: self.opt.state_bytes(),
            locked_layers: self.model.locked_layers(),
            newly_locked,
            effective_depth: effective_depth(&train_ncc, self.spec.tau),
            layers: m.layers,
            classifier: m.classifier,
            train_seconds,
            metrics_seconds,
            samples_per_second: data.train.len() as f64 / train_seconds.max(1e-9),
        };
        self.state.history.push(record);
        self.state.epochs_done += 1;
        Ok(self.state.history.last().expect("just pushed"))
    }

    fn train_steps(
        &mut self,
        epoch: usize,
        train: &Split,
        device: Device,
        progress: &mut dyn Progress,
    ) -> Result<(f64, f64, f64), TrainError> {
        // Every source of randomness is a function of (seed, epoch), so a resumed run replays
        // exactly what an uninterrupted one does.
        let epoch_seed = mix(self.spec.seed, epoch as u64);
        tch::manual_seed(epoch_seed as i64 & i64::MAX);
        let n = train.len();
        let steps = n.div_ceil(self.spec.batch_size);
        let base_lr = self.spec.optimizer.lr();
        let mut loss_sum = Tensor::zeros([], (Kind::Double, device));
        let mut correct = Tensor::zeros([], (Kind::Int64, device));
        let mut lr = base_lr;
        let mut seen = 0i64;
        for (step, batch) in train
            .batches(self.spec.batch_size, Some(epoch_seed), device)?
            .enumerate()
        {
            let (xs, ys) = batch;
            lr = base_lr
                * self
                    .spec
                    .schedule
                    .factor(epoch, step, steps, self.spec.epochs);
            self.opt.set_lr(lr);
            let xs = self.model.augment(&xs, epoch_seed, step as u64)?;
            let logits = self.model.forward_logits(&xs, true)?;
            let loss = logits.f_cross_entropy_loss::<Tensor>(
                &ys,
                None,
                Reduction::Mean,
                -100,
                self.spec.label_smoothing,
            )?;
            self.opt.zero_grad();
            loss.backward();
            self.opt.step();
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
        }
        let loss = loss_sum.double_value(&[]) / n as f64;
        let acc = correct.int64_value(&[]) as f64 / n as f64;
        Ok((loss, acc, lr))
    }

    /// The per-layer collapse reports (class means from `data.probe`, reports on the probe and
    /// on `data.test`), test loss and accuracy, in evaluation mode. `data.train` is not read.
    pub fn evaluate(&self, data: &RunData<'_>) -> Result<Evaluation, TrainError> {
        self.measure(data)
    }

    fn measure(&self, data: &RunData<'_>) -> Result<Evaluation, TrainError> {
        tch::no_grad(|| self.measure_inner(data))
    }

    /// Runs the model in evaluation mode over `split` and hands every batch's taps and labels
    /// to `f`.
    fn each_batch(
        &self,
        split: &Split,
        mut f: impl FnMut(&Taps, &Tensor) -> Result<(), TrainError>,
    ) -> Result<(), TrainError> {
        for (xs, ys) in split.batches(self.spec.eval_batch_size, None, self.vs.device())? {
            f(&self.model.forward_taps(&xs, false)?, &ys)?;
        }
        Ok(())
    }

    fn measure_inner(&self, data: &RunData<'_>) -> Result<Evaluation, TrainError> {
        let device = self.vs.device();
        let c = data.num_classes;
        // Pass 1: class means of every layer (and of the classifier's input) on the probe set.
        let mut means: Option<Vec<ClassMeans>> = None;
        self.each_batch(data.probe, |taps, ys| {
            let acc = match means.as_mut() {
                Some(m) => m,
                None => means.insert(
                    taps.features()
                        .map(|f| ClassMeans::new(c, f.size()[1] as usize))
                        .collect::<Result<_, _>>()?,
                ),
            };
            for (m, f) in acc.iter_mut().zip(taps.features()) {
                m.update_tensor(f, ys)?;
            }
            Ok(())
        })?;
        let stats: Vec<MeanStats> = means
            .ok_or(TrainError::EmptyData("probe"))?
            .into_iter()
            .map(|m| m.finalize(self.spec.global_mean))
            .collect::<Result<_, _>>()?;
        let (w, b) = self.model.classifier();
        let accumulators = || -> Result<Vec<CollapseAccumulator>, TrainError> {
            let last = stats.len() - 1;
            stats
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let cls = (i == last).then_some(TensorClassifier {
                        weight: &w,
                        bias: b.as_ref(),
                    });
                    CollapseAccumulator::with_tensor_classifier(s, cls).map_err(TrainError::from)
                })
                .collect()
        };
        let update = |acc: &mut Vec<CollapseAccumulator>, taps: &Taps, ys: &Tensor| {
            for (a, f) in acc.iter_mut().zip(taps.features()) {
                a.update_tensor(f, ys)?;
            }
            Ok::<(), TrainError>(())
        };
        // Pass 2 on the probe set, and one pass on the test set against the probe's means.
        let mut train_acc = accumulators()?;
        self.each_batch(data.probe, |taps, ys| update(&mut train_acc, taps, ys))?;
        let mut test_acc = accumulators()?;
        let mut loss_sum = Tensor::zeros([], (Kind::Double, device));
        let mut correct = Tensor::zeros([], (Kind::Int64, device));
        self.each_batch(data.test, |taps, ys| {
            update(&mut test_acc, taps, ys)?;
            let loss =
                taps.logits
                    .f_cross_entropy_loss::<Tensor>(ys, None, Reduction::Sum, -100, 0.0)?;
            loss_sum += loss.to_kind(Kind::Double);
            correct += taps.logits.argmax(-1, false).eq_tensor(ys).sum(Kind::Int64);
            Ok(())
        })?;
        let n_test = data.test.len() as f64;
        let mut records = Vec::with_capacity(train_acc.len());
        let names = self
            .model
            .layer_names()
            .into_iter()
            .chain(["classifier".to_string()]);
        for ((tr, te), name) in train_acc.into_iter().zip(test_acc).zip(names) {
            records.push(LayerRecord {
                name,
                train: tr.finalize()?,
                test: te.finalize()?,
            });
        }
        // The last accumulator is the classifier's input (see `Taps::features`).
        let classifier = records
            .pop()
            .ok_or(TrainError::EmptyData("classifier features"))?;
        Ok(Evaluation {
            layers: records,
            classifier,
            test_loss: loss_sum.double_value(&[]) / n_test,
            test_accuracy: correct.int64_value(&[]) as f64 / n_test,
        })
    }

    /// The tensors of a checkpoint: model variables and optimiser state, with prefixes.
    pub fn checkpoint_tensors(&self) -> Vec<(String, Tensor)> {
        let mut vars: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .map(|(k, v)| (format!("{MODEL_PREFIX}{k}"), v))
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars.extend(
            self.opt
                .state_tensors()
                .into_iter()
                .map(|(k, v)| (format!("{OPTIM_PREFIX}{k}"), v)),
        );
        vars
    }

    /// The non-tensor state of a checkpoint.
    pub fn state(&self) -> &TrainerState {
        &self.state
    }

    /// Restores a checkpoint into a freshly built trainer of the same configuration: re-applies
    /// the locks, then copies every variable and the optimiser state bit-exactly.
    pub fn restore(
        &mut self,
        state: TrainerState,
        tensors: Vec<(String, Tensor)>,
    ) -> Result<(), TrainError> {
        if let (Some(ctrl), Some(a)) = (state.controller.as_ref(), self.spec.adaptive.as_ref()) {
            if let Some(layer) = ctrl.locked_after() {
                self.model
                    .lock_after(layer, a.orientation, self.spec.seed, &mut self.opt)?;
            }
        }
        let mut optim = Vec::new();
        let mut model = std::collections::HashMap::new();
        for (k, v) in tensors {
            if let Some(name) = k.strip_prefix(MODEL_PREFIX) {
                model.insert(name.to_string(), v);
            } else if let Some(name) = k.strip_prefix(OPTIM_PREFIX) {
                optim.push((name.to_string(), v));
            } else {
                return Err(TrainError::Checkpoint(format!("unexpected tensor {k:?}")));
            }
        }
        let device = self.vs.device();
        tch::no_grad(|| -> Result<(), TrainError> {
            for (name, mut var) in self.vs.variables() {
                let src = model
                    .get(&name)
                    .ok_or_else(|| TrainError::Checkpoint(format!("missing variable {name:?}")))?;
                if src.size() != var.size() {
                    return Err(TrainError::Checkpoint(format!(
                        "variable {name:?} has shape {:?} in the checkpoint, {:?} in the model",
                        src.size(),
                        var.size()
                    )));
                }
                var.f_copy_(&src.to_device(device))?;
            }
            Ok(())
        })?;
        let optim: Vec<(String, Tensor)> = optim
            .into_iter()
            .map(|(k, v)| (k, v.to_device(device)))
            .collect();
        self.opt.load_state_tensors(&optim)?;
        self.state = state;
        Ok(())
    }
}

/// What [`Trainer::evaluate`] measures.
pub struct Evaluation {
    /// Per hidden layer.
    pub layers: Vec<LayerRecord>,
    /// The classifier's input features.
    pub classifier: LayerRecord,
    /// Mean loss on `data.test`.
    pub test_loss: f64,
    /// Accuracy on `data.test`.
    pub test_accuracy: f64,
}

/// splitmix64 of `seed` and `salt`: decorrelated per-epoch seeds.
fn mix(seed: u64, salt: u64) -> u64 {
    let mut z = seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
