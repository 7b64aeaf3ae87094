//! The ViT driven by the shared `etf_train::Trainer`: adaptive FFN locking, records,
//! augmentation.

use etf_data::Split;
use etf_train::{
    evaluate, AdaptiveConfig, Checkpoint, CollapseModel, EpochOutcome, EpochRecord, NoProgress,
    Progress, RunData, Schedule, TrainSpec, Trainer,
};
use etf_transformer::{AugmentConfig, FfnMatrices, LockOrientation, Vit, VitConfig, VitModel};
use simplex_etf::optim::{AdamWConfig, OptimizerConfig};
use tch::{nn, Device, Kind, Tensor};

const DEPTH: usize = 3;

/// libtorch's generator is global and the tests of this file run on parallel threads: each
/// holds this while it seeds and draws, so that no other test draws in between.
static LIBTORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
const DIM: i64 = 8;
const HIDDEN: i64 = 16;

/// A tiny `[1, 8, 8]` task: each class brightens its own quadrant-ish band, plus noise.
fn images(n_per_class: i64, classes: i64, seed: i64) -> Split {
    tch::manual_seed(seed);
    let labels = Tensor::arange(classes, (Kind::Int64, Device::Cpu)).repeat_interleave_self_int(
        n_per_class,
        None,
        None,
    );
    let n = classes * n_per_class;
    let mut xs = Tensor::randn([n, 1, 8, 8], (Kind::Float, Device::Cpu)) * 0.3;
    for c in 0..classes {
        let rows = xs.narrow(0, c * n_per_class, n_per_class);
        let _ = rows.narrow(2, 2 * c, 2).f_add_scalar_(2.0).unwrap();
    }
    xs = xs.contiguous();
    Split::new(xs, labels, classes as usize).unwrap()
}

/// The tests' small ViT: 8 × 8 images, patches of 4, no dropout.
fn config() -> VitConfig {
    VitConfig {
        patch: 4,
        dim: DIM,
        depth: DEPTH,
        heads: 2,
        mlp_ratio: 2.0,
        ..Default::default()
    }
}

fn model_of(vs: &nn::VarStore, cfg: &VitConfig, augment: AugmentConfig) -> VitModel {
    let vit = Vit::new(&vs.root(), cfg, [1, 8, 8], 3).unwrap();
    VitModel::new(vit, augment, FfnMatrices::Both)
}

fn model(vs: &nn::VarStore, augment: AugmentConfig) -> VitModel {
    model_of(vs, &config(), augment)
}

fn spec(adaptive: Option<AdaptiveConfig>) -> TrainSpec {
    TrainSpec {
        epochs: 2,
        batch_size: 16,
        eval_batch_size: 64,
        label_smoothing: 0.0,
        optimizer: OptimizerConfig::AdamW(AdamWConfig {
            lr: 1e-3,
            weight_decay: 0.05,
            ..AdamWConfig::default()
        }),
        schedule: Schedule::Constant,
        global_mean: Default::default(),
        tau: 0.9,
        adaptive,
        seed: 3,
    }
}

fn ffn_weights(m: &VitModel, block: usize) -> [Tensor; 2] {
    let b = &m.vit().blocks()[block];
    [b.fc1.weight().copy(), b.fc2.weight().copy()]
}

#[test]
fn adaptive_locks_blocks_after_the_first_and_keeps_them_fixed() {
    let _rng = LIBTORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let train = images(20, 3, 1);
    let test = images(6, 3, 2);
    let vs = nn::VarStore::new(Device::Cpu);
    let m = model(&vs, AugmentConfig::default());
    let adaptive = AdaptiveConfig {
        tau: 0.0,
        patience: 1,
        probe_every: 1,
        orientation: LockOrientation::Nearest,
        scale: Default::default(),
    };
    let mut trainer = Trainer::new(m, vs, spec(Some(adaptive))).unwrap();
    let before = trainer.model.learnable_params();
    assert_eq!(trainer.optimizer().num_params(), before);
    let run = RunData {
        train: &train,
        probe: &train,
        test: &test,
    };

    let r1 = trainer.run_epoch(&run, &mut NoProgress).unwrap().clone();
    // τ = 0 and patience 1: every block is separable at once, ℓ* = 1, blocks 2..L lock.
    assert_eq!(r1.newly_locked, ["block2.ffn", "block3.ffn"]);
    assert_eq!(r1.locked_layers, r1.newly_locked);
    let dropped = (DEPTH as i64 - 1) * 2 * DIM * HIDDEN;
    assert_eq!(before - r1.learnable_params, dropped);
    assert_eq!(r1.learnable_params, trainer.optimizer().num_params());
    assert_eq!(r1.total_params, trainer.model.total_params());
    assert!(!trainer.model.vit().head_locked());
    assert_eq!(r1.layers.len(), DEPTH);
    assert_eq!(
        r1.layers
            .iter()
            .map(|l| l.name.as_str())
            .collect::<Vec<_>>(),
        ["block1", "block2", "block3"]
    );
    assert_eq!(r1.classifier.name, "classifier");
    assert!(
        r1.classifier.train.classifier.is_some(),
        "NC3/NC4 of the head"
    );

    let locked: Vec<_> = (1..DEPTH).map(|b| ffn_weights(&trainer.model, b)).collect();
    let free = ffn_weights(&trainer.model, 0);
    let r2 = trainer.run_epoch(&run, &mut NoProgress).unwrap().clone();
    assert!(r2.newly_locked.is_empty());
    assert_eq!(r2.learnable_params, r1.learnable_params);
    for (b, w) in (1..DEPTH).zip(&locked) {
        let now = ffn_weights(&trainer.model, b);
        assert!(
            now[0].equal(&w[0]) && now[1].equal(&w[1]),
            "block{} moved",
            b + 1
        );
    }
    // The unlocked block 1 still trains (so the check above could fail).
    let now = ffn_weights(&trainer.model, 0);
    assert!(!now[0].equal(&free[0]) && !now[1].equal(&free[1]));
}

#[test]
fn without_adaptive_nothing_locks_and_records_cover_every_block() {
    let _rng = LIBTORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let train = images(10, 3, 4);
    let vs = nn::VarStore::new(Device::Cpu);
    let m = model(&vs, AugmentConfig::default());
    let mut trainer = Trainer::new(m, vs, spec(None)).unwrap();
    let before = trainer.model.learnable_params();
    let run = RunData {
        train: &train,
        probe: &train,
        test: &train,
    };
    let r = trainer.run_epoch(&run, &mut NoProgress).unwrap().clone();
    assert_eq!(r.layers.len(), DEPTH);
    assert!(r.locked_layers.is_empty());
    assert_eq!(r.learnable_params, before);
    assert_eq!(trainer.optimizer().num_params(), before);
    // The record is the measurement of the model as the epoch left it: measuring it again,
    // without the trainer, gives the same figures.
    let how = trainer.spec().measure(Device::Cpu);
    let again = evaluate(&trainer.model, &train, &train, &how).unwrap();
    assert_eq!(again.test_accuracy, r.test_accuracy);
    assert_eq!(again.test_loss, r.test_loss);
    assert_eq!(again.layers, r.layers);
    assert_eq!(again.classifier, r.classifier);
}

#[test]
fn augmentation_only_when_configured() {
    let _rng = LIBTORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let xs = Tensor::randn([6, 1, 8, 8], (Kind::Float, Device::Cpu));
    let vs = nn::VarStore::new(Device::Cpu);
    let plain = model(&vs, AugmentConfig::default());
    assert!(plain.augment(&xs, 1, 0).unwrap().equal(&xs));

    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = AugmentConfig { pad: 2, flip: true };
    let aug = model(&vs, cfg);
    let out = aug.augment(&xs, 1, 0).unwrap();
    assert_eq!(out.size(), xs.size());
    assert!(!out.equal(&xs));
    // A pure function of (seed, step), as the trainer's resume needs.
    assert!(out.equal(&aug.augment(&xs, 1, 0).unwrap()));
    assert!(!out.equal(&aug.augment(&xs, 1, 1).unwrap()));
}

/// Stops the epoch after its `at`-th step.
struct StopAt {
    at: usize,
    taken: usize,
}

impl Progress for StopAt {
    fn step(&mut self, step: usize, _: usize, _: Option<(f64, f64)>) {
        self.taken = step;
    }
    fn stop(&self) -> bool {
        self.taken == self.at
    }
}

/// A record as JSON without its wall times.
fn without_times(r: &EpochRecord) -> String {
    serde_json::to_string(&EpochRecord {
        train_seconds: 0.0,
        metrics_seconds: 0.0,
        samples_per_second: 0.0,
        ..r.clone()
    })
    .unwrap()
}

#[test]
fn stopped_inside_an_epoch_it_resumes_to_the_same_records_with_dropout_and_augmentation() {
    let _rng = LIBTORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    // Dropout draws from libtorch's generator and augmentation from (seed, epoch, step): both
    // must draw in the rest of a resumed epoch what they draw in an uninterrupted one.
    let train = images(32, 3, 1);
    let test = images(8, 3, 2);
    let run = RunData {
        train: &train,
        probe: &train,
        test: &test,
    };
    let build = || {
        tch::manual_seed(7);
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = VitConfig {
            dropout: 0.2,
            attn_dropout: 0.1,
            ..config()
        };
        let m = model_of(&vs, &cfg, AugmentConfig { pad: 1, flip: true });
        Trainer::new(m, vs, spec(None)).unwrap()
    };
    let mut full = build();
    let expected: Vec<String> = (0..2)
        .map(|_| without_times(full.run_epoch(&run, &mut NoProgress).unwrap()))
        .collect();
    let mut first = build();
    let mut stop = StopAt { at: 2, taken: 0 };
    match first.run_epoch_or_stop(&run, &mut stop).unwrap() {
        EpochOutcome::Stopped {
            epoch: 1,
            steps_done: 2,
            steps: 6,
        } => {}
        other => panic!("{other:?}"),
    }
    let saved = first.checkpoint();
    let saved = Checkpoint {
        state: saved.state,
        tensors: saved
            .tensors
            .into_iter()
            .map(|(k, v)| (k, v.copy()))
            .collect(),
    };
    drop(first);
    let mut resumed = build();
    resumed.restore(saved).unwrap();
    assert_eq!(resumed.state().in_epoch.as_ref().unwrap().steps_done, 2);
    let got: Vec<String> = (0..2)
        .map(|_| without_times(resumed.run_epoch(&run, &mut NoProgress).unwrap()))
        .collect();
    assert_eq!(got, expected);
}
