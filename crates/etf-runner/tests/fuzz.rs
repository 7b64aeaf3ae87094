//! Fuzzed readers of the runner: mutated experiment files (parse and validate) and mutated
//! checkpoints (read, restore into the run's trainer, train on) give a usable result or an
//! error; none panics.
//!
//! Short mode: the plain tests. Long mode (100 000 cases per reader, or `ETF_FUZZ_CASES`):
//! `cargo test --release -p etf-runner --test fuzz -- --ignored --nocapture`.

#[path = "../../../tools/fuzz.rs"]
mod fuzz;

use std::path::{Path, PathBuf};

use etf_runner::config::ExperimentConfig;
use etf_runner::job::Job;
use etf_runner::run::{load_data, LoadedData};
use etf_train::{Checkpoint, NoProgress};
use fuzz::{apply, fuzz, long_cases, mutations, Mutation};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use serde_json::Value;
use tch::{Device, Tensor};

/// Cases of the experiment-file reader's short mode.
const SHORT: u32 = 500;
/// Cases of the checkpoint reader's short mode (each case builds a trainer, and some train).
const SHORT_CKPT: u32 = 100;

/// An error's variant, from its `Debug` form, for the outcome tally.
fn variant(e: &impl std::fmt::Debug) -> String {
    let d = format!("{e:?}");
    d[..d.find([' ', '(', '{']).unwrap_or(d.len())].to_string()
}

/// The first word of an error's message chain, for the outcome tally.
fn kind(msg: &str) -> String {
    msg.split([' ', ':', '`', '='])
        .find(|w| !w.is_empty())
        .unwrap_or("?")
        .chars()
        .take(24)
        .collect()
}

// ---------------------------------------------------------------- experiment files

/// Values that sit on the edges of the config's types and ranges.
const VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "3",
    "1000000000",
    "100000000000",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "0.0",
    "0.5",
    "1.0",
    "1.5",
    "1e309",
    "-1e-309",
    "nan",
    "inf",
    "-inf",
    "\"\"",
    "\"x\"",
    "\"a b\"",
    "true",
    "[]",
    "[0, 0]",
    "[3, 1]",
    "{}",
    "\"mlp\"",
    "\"vit\"",
    "\"synthetic\"",
    "\"cifar10\"",
    "\"digits\"",
    "\"adaptive\"",
    "\"fixed-last-k\"",
    "\"etf-ffn\"",
    "\"etf-classifier\"",
    "\"nearest\"",
    "\"canonical\"",
    "\"w1\"",
    "\"all\"",
    "{ last-k = 0 }",
    "{ last-k = 99 }",
    "\"cosine\"",
    "\"multi-step\"",
    "\"adamw\"",
    "\"cuda\"",
];

/// Lines that add keys (some valid, some not) or tables.
const LINES: &[&str] = &[
    "k = 0",
    "k = 1",
    "k = 100",
    "tau = 2.0",
    "patience = 0",
    "probe_every = 0",
    "matrices = \"w1\"",
    "orientation = \"nearest\"",
    "patch = 0",
    "patch = 3",
    "heads = 0",
    "heads = 3",
    "dim = 0",
    "dim = 7",
    "depth = 0",
    "width = 1",
    "mlp_ratio = 0.0",
    "dropout = 1.0",
    "train_limit = 3",
    "test_limit = 1",
    "probe_size = 1",
    "probe_size = 0",
    "milestones = [3, 1]",
    "warmup_epochs = 1000",
    "[data.synthetic]",
    "test_per_class = 0",
    "num_classes = 1",
    "num_classes = 100000",
    "train_per_class = 100000000000",
    "[train.augment]",
    "pad = 100000",
    "[[variant]]",
    "name = \"baseline\"",
    "kind = \"etf-ffn\"",
    "[model.ffn_etf]",
    "blocks = { last-k = 0 }",
    "[output]",
    "seeds = []",
    "seeds = [0, 0]",
    "x = 1",
];

/// One change to an experiment file's text.
#[derive(Clone, Debug)]
enum Edit {
    /// Replace the value of a `key = value` line.
    Value(Index, &'static str),
    /// Delete a line.
    Delete(Index),
    /// Repeat a line.
    Duplicate(Index),
    /// Insert a line before another.
    Insert(Index, &'static str),
    /// Change the bytes.
    Bytes(Vec<Mutation>),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<Index>(), prop::sample::select(VALUES)).prop_map(|(i, v)| Edit::Value(i, v)),
        2 => any::<Index>().prop_map(Edit::Delete),
        1 => any::<Index>().prop_map(Edit::Duplicate),
        2 => (any::<Index>(), prop::sample::select(LINES)).prop_map(|(i, l)| Edit::Insert(i, l)),
        1 => mutations().prop_map(Edit::Bytes),
    ]
}

fn edit_text(text: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for e in edits {
        let n = lines.len();
        match e {
            Edit::Value(i, v) => {
                let with_value: Vec<usize> = (0..n).filter(|&k| lines[k].contains(" = ")).collect();
                if !with_value.is_empty() {
                    let k = with_value[i.index(with_value.len())];
                    let key = lines[k].split(" = ").next().unwrap_or("").to_string();
                    lines[k] = format!("{key} = {v}");
                }
            }
            Edit::Delete(i) if n > 0 => {
                lines.remove(i.index(n));
            }
            Edit::Duplicate(i) if n > 0 => {
                let k = i.index(n);
                lines.insert(k, lines[k].clone());
            }
            Edit::Insert(i, l) => lines.insert(i.index(n + 1), l.to_string()),
            Edit::Bytes(m) => {
                let bytes = apply(lines.join("\n").as_bytes(), m, 0);
                lines = String::from_utf8_lossy(&bytes)
                    .lines()
                    .map(str::to_string)
                    .collect();
            }
            _ => {}
        }
    }
    lines.join("\n")
}

/// A small synthetic experiment of every variant kind the MLP takes.
const MLP_SEED: &str = r#"name = "fuzz"
description = "synthetic MLP"
seeds = [0, 1]

[data]
dataset = "synthetic"
train_limit = 0
probe_size = 64

[data.synthetic]
num_classes = 4
dim = 8
train_per_class = 16
test_per_class = 8

[model]
kind = "mlp"
depth = 3
width = 16
batch_norm = true

[train]
epochs = 3
batch_size = 16
tau = 0.5

[train.optimizer]
kind = "sgd"
lr = 0.05
momentum = 0.9

[train.schedule]
kind = "multi-step"
milestones = [2]
gamma = 0.1

[[variant]]
name = "baseline"
kind = "baseline"

[[variant]]
name = "fixed"
kind = "fixed-last-k"
k = 2

[[variant]]
name = "adaptive"
kind = "adaptive"
tau = 0.3
patience = 1
"#;

/// The experiment files the fuzz starts from: the project's own and [`MLP_SEED`].
fn config_seeds() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut seeds: Vec<String> = files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    seeds.push(MLP_SEED.to_string());
    seeds
}

/// A case: parse and validate; a valid configuration resolves into jobs, and what it prints
/// (`etf config`, a run's `config.toml`) reads back.
fn check_config(text: &str) -> Result<String, TestCaseError> {
    match ExperimentConfig::parse(text, &[]) {
        Ok(cfg) => {
            let jobs = Job::all(&cfg, &cfg.seeds);
            prop_assert!(
                jobs.is_ok(),
                "valid config, no jobs: {:#}",
                jobs.err().unwrap()
            );
            let printed = toml::to_string(&cfg).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let back = ExperimentConfig::parse(&printed, &[]);
            prop_assert!(
                back.is_ok(),
                "{printed}\ndoes not read back: {:#}",
                back.err().unwrap()
            );
            Ok("ok".into())
        }
        Err(e) => {
            let msg = format!("{e:#}");
            prop_assert!(!msg.trim().is_empty());
            Ok(kind(&msg))
        }
    }
}

fn fuzz_config(cases: u32) {
    let seeds = config_seeds();
    for s in &seeds {
        check_config(s).unwrap();
    }
    let strategy = (0..seeds.len(), prop::collection::vec(edit(), 1..=4));
    fuzz(
        "experiment file (TOML)",
        cases,
        strategy,
        |(file, edits)| check_config(&edit_text(&seeds[file], &edits)),
    );
}

#[test]
fn fuzz_experiment_file() {
    fuzz_config(SHORT);
}

#[test]
#[ignore = "long mode: cargo test --release -p etf-runner --test fuzz -- --ignored"]
fn fuzz_experiment_file_long() {
    fuzz_config(long_cases());
}

// ---------------------------------------------------------------- checkpoints

/// A change to one leaf of a JSON document (the safetensors header or the trainer state).
#[derive(Clone, Debug)]
enum JsonEdit {
    /// Replace a leaf (or a whole object or array) by this value.
    Set(Index, JsonValue),
    /// Remove an entry of an object or an element of an array.
    Remove(Index),
}

/// JSON values on the edges of what the readers expect.
#[derive(Clone, Debug)]
enum JsonValue {
    Null,
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(&'static str),
    EmptyArray,
    EmptyObject,
}

impl JsonValue {
    fn to_json(&self) -> Value {
        match self {
            JsonValue::Null => Value::Null,
            JsonValue::Int(i) => (*i).into(),
            JsonValue::Uint(u) => (*u).into(),
            JsonValue::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
            JsonValue::Str(s) => Value::String(s.to_string()),
            JsonValue::EmptyArray => Value::Array(vec![]),
            JsonValue::EmptyObject => Value::Object(Default::default()),
        }
    }
}

fn json_value() -> impl Strategy<Value = JsonValue> {
    prop_oneof![
        Just(JsonValue::Null),
        prop::sample::select(vec![0i64, 1, 2, 3, -1, 7, 100, i64::MIN, i64::MAX])
            .prop_map(JsonValue::Int),
        prop::sample::select(vec![u64::MAX, 1 << 40, 1 << 62]).prop_map(JsonValue::Uint),
        prop::sample::select(vec![0.0, 0.5, 1.0, -1.0, 1e300, -1e300, 1e-300])
            .prop_map(JsonValue::Float),
        prop::sample::select(vec![
            "",
            "x",
            "F64",
            "U8",
            "I64",
            "BOOL",
            "F16",
            "hidden1",
            "classifier",
            "model.x"
        ])
        .prop_map(JsonValue::Str),
        Just(JsonValue::EmptyArray),
        Just(JsonValue::EmptyObject),
    ]
}

fn json_edit() -> impl Strategy<Value = JsonEdit> {
    prop_oneof![
        3 => (any::<Index>(), json_value()).prop_map(|(i, v)| JsonEdit::Set(i, v)),
        1 => any::<Index>().prop_map(JsonEdit::Remove),
    ]
}

/// JSON pointers of every node below the root, depth first.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(c, p, out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(c, p, out);
            }
        }
        _ => {}
    }
}

fn edit_json(doc: &mut Value, edits: &[JsonEdit]) {
    for e in edits {
        let mut all = Vec::new();
        pointers(doc, String::new(), &mut all);
        if all.is_empty() {
            return;
        }
        match e {
            JsonEdit::Set(i, v) => {
                if let Some(node) = doc.pointer_mut(&all[i.index(all.len())]) {
                    *node = v.to_json();
                }
            }
            JsonEdit::Remove(i) => {
                let p = &all[i.index(all.len())];
                let (parent, last) = p.rsplit_once('/').unwrap();
                let key = last.replace("~1", "/").replace("~0", "~");
                match doc.pointer_mut(if parent.is_empty() { "" } else { parent }) {
                    Some(Value::Object(m)) => {
                        m.remove(&key);
                    }
                    Some(Value::Array(a)) => {
                        if let Ok(k) = key.parse::<usize>() {
                            if k < a.len() {
                                a.remove(k);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// How a checkpoint case changes the file.
#[derive(Clone, Debug)]
enum CkptEdit {
    /// The file's bytes.
    Bytes(Vec<Mutation>),
    /// The safetensors header (names, dtypes, shapes, offsets), the data left as it is.
    Header(Vec<JsonEdit>),
    /// The trainer state (epochs, lock controller, history), written back as a valid file.
    State(Vec<JsonEdit>),
}

fn ckpt_edit() -> impl Strategy<Value = CkptEdit> {
    let edits = || prop::collection::vec(json_edit(), 1..=3);
    prop_oneof![
        mutations().prop_map(CkptEdit::Bytes),
        edits().prop_map(CkptEdit::Header),
        edits().prop_map(CkptEdit::State),
    ]
}

/// The safetensors layout: an 8-byte little-endian header length, the JSON header, the data.
fn split_safetensors(bytes: &[u8]) -> (Value, &[u8]) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (
        serde_json::from_slice(&bytes[8..8 + n]).unwrap(),
        &bytes[8 + n..],
    )
}

fn join_safetensors(header: &Value, data: &[u8]) -> Vec<u8> {
    let h = serde_json::to_vec(header).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out
}

/// What every checkpoint case needs: the job, its data, the seed file's bytes and tensors.
struct CkptSeed {
    job: Job,
    data: LoadedData,
    bytes: Vec<u8>,
    tensors: Vec<(String, Tensor)>,
    state: Value,
}

/// Trains the adaptive variant of [`MLP_SEED`] for two epochs (it locks after the first) and
/// keeps its checkpoint.
fn ckpt_seed(dir: &Path) -> CkptSeed {
    let cfg = ExperimentConfig::parse(MLP_SEED, &[]).unwrap();
    let job = Job::new(&cfg, cfg.variant("adaptive").unwrap(), 0).unwrap();
    let data = load_data(&job.config, Device::Cpu).unwrap();
    let mut trainer = job.trainer(Device::Cpu, &data.dataset).unwrap();
    for _ in 0..2 {
        trainer
            .run_epoch(&data.run_data(), &mut NoProgress)
            .unwrap();
    }
    let path = dir.join("seed.safetensors");
    trainer.checkpoint().write(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let mut tensors = Tensor::read_safetensors(&path).unwrap();
    let at = tensors
        .iter()
        .position(|(k, _)| k == "__state_json__")
        .unwrap();
    let (_, state) = tensors.remove(at);
    let state = serde_json::from_slice(&Vec::<u8>::try_from(&state).unwrap()).unwrap();
    CkptSeed {
        job,
        data,
        bytes,
        tensors,
        state,
    }
}

/// A case: write the mutated file, read it, restore it into a fresh trainer of the job, and
/// train on from there (what `--resume` does).
fn check_ckpt(seed: &CkptSeed, path: &Path, edit: &CkptEdit) -> Result<String, TestCaseError> {
    match edit {
        CkptEdit::Bytes(m) => std::fs::write(path, apply(&seed.bytes, m, 8)).unwrap(),
        CkptEdit::Header(e) => {
            let (mut header, data) = split_safetensors(&seed.bytes);
            edit_json(&mut header, e);
            std::fs::write(path, join_safetensors(&header, data)).unwrap();
        }
        CkptEdit::State(e) => {
            let mut state = seed.state.clone();
            edit_json(&mut state, e);
            let json = serde_json::to_vec(&state).unwrap();
            let mut all: Vec<(String, Tensor)> = seed
                .tensors
                .iter()
                .map(|(k, v)| (k.clone(), v.shallow_clone()))
                .collect();
            all.push(("__state_json__".into(), Tensor::from_slice(&json)));
            Tensor::write_safetensors(&all, path).unwrap();
        }
    }
    let ckpt = match Checkpoint::read(path) {
        Ok(c) => c,
        Err(e) => {
            let msg = e.to_string();
            prop_assert!(
                msg.contains("c.safetensors"),
                "{msg:?} does not name the file"
            );
            return Ok(format!("read: {}", variant(&e)));
        }
    };
    let mut trainer = seed.job.trainer(Device::Cpu, &seed.data.dataset).unwrap();
    if let Err(e) = trainer.restore(ckpt) {
        prop_assert!(!e.to_string().is_empty());
        return Ok(format!("restore: {}", variant(&e)));
    }
    if trainer.finished() {
        return Ok("ok (finished)".into());
    }
    match trainer.run_epoch(&seed.data.run_data(), &mut NoProgress) {
        Ok(_) => Ok("ok (trained on)".into()),
        Err(e) => Ok(format!("train: {}", variant(&e))),
    }
}

fn fuzz_ckpt(cases: u32) {
    let dir = tempfile::tempdir().unwrap();
    let seed = ckpt_seed(dir.path());
    let path = dir.path().join("c.safetensors");
    fuzz("checkpoint", cases, ckpt_edit(), |edit| {
        check_ckpt(&seed, &path, &edit)
    });
}

#[test]
fn fuzz_checkpoint() {
    fuzz_ckpt(SHORT_CKPT);
}

#[test]
#[ignore = "long mode: cargo test --release -p etf-runner --test fuzz -- --ignored"]
fn fuzz_checkpoint_long() {
    fuzz_ckpt(long_cases());
}

/// Found by the fuzz: a checkpoint whose lock controller locked after a layer the model does
/// not have made the MLP index out of its layers on restore.
#[test]
fn a_lock_beyond_the_model_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let seed = ckpt_seed(dir.path());
    let path = dir.path().join("c.safetensors");
    for layer in [4u64, 1000, u64::MAX] {
        let mut state = seed.state.clone();
        state["controller"]["locked_after"] = layer.into();
        let json = serde_json::to_vec(&state).unwrap();
        let mut all: Vec<(String, Tensor)> = seed
            .tensors
            .iter()
            .map(|(k, v)| (k.clone(), v.shallow_clone()))
            .collect();
        all.push(("__state_json__".into(), Tensor::from_slice(&json)));
        Tensor::write_safetensors(&all, &path).unwrap();
        let ckpt = Checkpoint::read(&path).unwrap();
        let mut trainer = seed.job.trainer(Device::Cpu, &seed.data.dataset).unwrap();
        let err = trainer.restore(ckpt).expect_err("refused").to_string();
        assert!(
            err.contains(&format!("locked after layer {layer}")) && err.contains("model has 3"),
            "{err}"
        );
    }
}
