//! `etf diagnose`: the collapse report of a saved model, optionally with its features as `.npy`.

use crate::config::{DeviceChoice, ExperimentConfig};
use crate::io::{write_atomic, write_npy};
use crate::job::Job;
use crate::run::{data_root, load_data_from};
use anyhow::{bail, Context, Result};
use etf_train::{evaluate, restore_model, Checkpoint, CollapseModel, Evaluation};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// What to diagnose.
pub struct DiagnoseArgs {
    /// A run directory or its `checkpoint.safetensors`.
    pub checkpoint: PathBuf,
    /// Data set to evaluate on (default: the run's own).
    pub data: Option<etf_data::DatasetName>,
    /// Data root (default: the run's).
    pub data_root: Option<PathBuf>,
    /// Where to write each layer's features and the labels as `.npy`.
    pub dump_features: Option<PathBuf>,
    /// Device.
    pub device: DeviceChoice,
}

/// Runs the diagnosis, prints the table, writes `diagnose.json` beside the checkpoint.
pub fn diagnose(args: &DiagnoseArgs) -> Result<String> {
    let dir = run_dir(&args.checkpoint)?;
    let device = args.device.resolve()?;
    let mut cfg = crate::config::ExperimentConfig::load(&dir.join(crate::run::CONFIG), &[])?;
    if let Some(d) = args.data {
        cfg.data.dataset = d;
    }
    let job = Job::of_run(cfg, &dir.join(crate::run::CONFIG))?;
    let cfg = &job.config;
    let data = load_data_from(cfg, &data_root(cfg, args.data_root.as_deref()), device)?;
    let ds = &data.dataset;
    // The model alone, with the run's locks and last weights: measuring needs no optimiser.
    let (vs, mut model) = job.initial_model(device, ds)?;
    let ckpt = dir.join(crate::run::CHECKPOINT);
    let saved = Checkpoint::read(&ckpt)?;
    restore_model(&mut model, &vs, &saved, job.adaptive().as_ref(), job.seed)
        .with_context(|| format!("restoring {}", ckpt.display()))?;
    let how = job.train_spec().measure(device);
    let eval = evaluate(&model, &data.probe, &ds.test, &how)?;
    let mut md = report(&dir, cfg, &eval, &model.locked_layers())?;
    if let Some(out) = &args.dump_features {
        let bs = cfg.train.eval_batch_size;
        dump_features(&model, &ds.test, out, bs, device)?;
        let _ = writeln!(
            md,
            "\nfeatures of the test set written to {}",
            out.display()
        );
    }
    Ok(md)
}

/// The run directory of `path` (a run directory or its checkpoint), which must hold a
/// checkpoint.
fn run_dir(path: &Path) -> Result<PathBuf> {
    let dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    if !dir.join(crate::run::CHECKPOINT).is_file() {
        bail!(
            "{}: no {} there (pass a run directory or its checkpoint)",
            path.display(),
            crate::run::CHECKPOINT
        );
    }
    Ok(dir)
}

/// The table of the diagnosis, and `diagnose.json` written beside the checkpoint.
fn report(
    dir: &Path,
    cfg: &ExperimentConfig,
    eval: &Evaluation,
    locked: &[String],
) -> Result<String> {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "{} on {} (test accuracy {:.4}, test loss {:.4})\n",
        dir.display(),
        cfg.data.dataset,
        eval.test_accuracy,
        eval.test_loss
    );
    md.push_str(&crate::output::collapse_table(
        &eval.layers,
        &eval.classifier,
        locked,
    ));
    let json = serde_json::json!({
        "test_accuracy": eval.test_accuracy, "test_loss": eval.test_loss,
        "layers": eval.layers, "classifier": eval.classifier, "locked_layers": locked,
    });
    write_atomic(
        &dir.join("diagnose.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    Ok(md)
}

/// Writes `<layer>.npy` (f32 `[N, d]`) for every tapped layer, `penultimate.npy`, `logits.npy`
/// and `labels.npy` (i64 `[N]`).
fn dump_features(
    model: &impl CollapseModel,
    split: &etf_data::Split,
    out: &Path,
    bs: usize,
    device: tch::Device,
) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let names = model.layer_names();
    let mut layers: Vec<Vec<Tensor>> = (0..names.len() + 2).map(|_| Vec::new()).collect();
    let mut labels = Vec::new();
    tch::no_grad(|| -> Result<()> {
        for (xs, ys) in split.batches(bs, None, device)? {
            let taps = model.forward_taps(&xs, false)?;
            for (acc, t) in layers.iter_mut().zip(taps.features().chain([&taps.logits])) {
                acc.push(t.to_device(tch::Device::Cpu));
            }
            labels.push(ys.to_device(tch::Device::Cpu));
        }
        Ok(())
    })?;
    let file_names = names
        .iter()
        .cloned()
        .chain(["penultimate".to_string(), "logits".to_string()]);
    for (name, parts) in file_names.zip(&layers) {
        write_npy(&out.join(format!("{name}.npy")), &Tensor::cat(parts, 0))?;
    }
    write_npy(&out.join("labels.npy"), &Tensor::cat(&labels, 0))?;
    Ok(())
}
