//! `etf inspect`: the parameters a run starts from, before its first step, with the statistics
//! that tell one initialisation from another (what `benches/compare-dynamics` sets beside
//! PyTorch's).

use crate::config::ExperimentConfig;
use crate::job::Job;
use crate::run::load_data;
use anyhow::Result;
use etf_train::CollapseModel;
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;
use tch::{Device, Kind};

/// One variable of the model at initialisation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ParamStats {
    /// VarStore name, e.g. `hidden1.fc.weight`.
    pub name: String,
    /// Shape.
    pub shape: Vec<i64>,
    /// Whether the optimiser updates it (false for fixed ETF maps and BatchNorm statistics).
    pub trainable: bool,
    /// Smallest entry.
    pub min: f64,
    /// Largest entry.
    pub max: f64,
    /// Mean.
    pub mean: f64,
    /// Population standard deviation.
    pub std: f64,
}

/// The variables of `variant`'s model for `seed`, built exactly as `etf run` builds it, in name
/// order.
pub fn initial_parameters(
    cfg: &ExperimentConfig,
    variant: &str,
    seed: u64,
) -> Result<Vec<ParamStats>> {
    let job = Job::new(cfg, cfg.variant(variant)?, seed)?;
    let data = load_data(cfg, Device::Cpu)?;
    let (vs, model) = job.initial_model(Device::Cpu, &data.dataset)?;
    let trainable: BTreeSet<String> = model
        .named_trainable()
        .into_iter()
        .map(|p| p.name)
        .collect();
    let mut vars: Vec<_> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(vars
        .into_iter()
        .map(|(name, t)| {
            let t = t.detach().to_kind(Kind::Double);
            ParamStats {
                trainable: trainable.contains(&name),
                shape: t.size(),
                min: t.min().double_value(&[]),
                max: t.max().double_value(&[]),
                mean: t.mean(Kind::Double).double_value(&[]),
                std: t.std(false).double_value(&[]),
                name,
            }
        })
        .collect())
}

/// `etf inspect`: prints the initial parameters of `variant` (default: the file's first) for
/// `seed` (default: the file's first) as a table, or as JSON.
pub fn inspect(
    config: &Path,
    variant: Option<String>,
    seed: Option<u64>,
    set: &[String],
    json: bool,
) -> Result<()> {
    let cfg = ExperimentConfig::load(config, set)?;
    // A loaded config has at least one variant and one seed (`validate`).
    let variant = variant.unwrap_or_else(|| cfg.variants[0].name.clone());
    let seed = seed.unwrap_or(cfg.seeds[0]);
    let stats = initial_parameters(&cfg, &variant, seed)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        print!("{}", stats_markdown(&stats));
    }
    Ok(())
}

/// A Markdown table of `stats`.
pub fn stats_markdown(stats: &[ParamStats]) -> String {
    let mut md = String::from(
        "| variable | shape | trainable | min | max | mean | std |\n|---|---|---|---|---|---|---|\n",
    );
    for p in stats {
        md.push_str(&format!(
            "| {} | {:?} | {} | {:.5} | {:.5} | {:.5} | {:.5} |\n",
            p.name,
            p.shape,
            if p.trainable { "yes" } else { "no" },
            p.min,
            p.max,
            p.mean,
            p.std
        ));
    }
    md
}
