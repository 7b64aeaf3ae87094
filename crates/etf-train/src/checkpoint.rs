//! The checkpoint: the one place that knows its layout.
//!
//! One safetensors file holds the model's variables under `model.<VarStore name>`, the
//! optimiser's state under `optim.<param>::<field>`, and the trainer's non-tensor state
//! ([`TrainerState`]: epochs done, lock controller, history, and the position inside an epoch
//! stopped by a signal) as JSON bytes in the tensor `__state_json__`. The state records
//! [`FORMAT_VERSION`]; files written before the version was recorded have the layout of
//! version 1 and read as such. Written atomically ([`crate::atomic`]).
//!
//! Version 2 added the position inside an epoch (`in_epoch`); version 1 files are read as
//! checkpoints at an epoch's end. A build that reads only version 1 refuses version 2 files
//! rather than silently restarting a stopped epoch from its first step.

use crate::atomic::{write_atomic_with, WriteError};
use crate::trainer::TrainerState;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// The layout version this build writes.
pub const FORMAT_VERSION: u32 = 2;
/// The layout versions this build reads.
pub const READS_VERSIONS: [u32; 2] = [1, 2];
/// Prefix of model variables.
pub(crate) const MODEL_PREFIX: &str = "model.";
/// Prefix of optimiser state.
pub(crate) const OPTIM_PREFIX: &str = "optim.";
/// The tensor holding the JSON state.
const STATE_TENSOR: &str = "__state_json__";

/// Why a checkpoint could not be written, read or restored.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Writing the file failed.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// libtorch could not write the tensors.
    #[error("cannot write checkpoint {}: {source}", path.display())]
    Encode {
        /// The file.
        path: PathBuf,
        /// libtorch's error.
        source: tch::TchError,
    },
    /// libtorch could not read the file.
    #[error("cannot read checkpoint {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// libtorch's error.
        source: tch::TchError,
    },
    /// The file has no trainer state.
    #[error("{}: not a checkpoint of this tool (no state)", path.display())]
    NoState {
        /// The file.
        path: PathBuf,
    },
    /// The state is not JSON bytes of a trainer state.
    #[error("{}: the checkpoint state is not valid: {reason}", path.display())]
    State {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Written by a build with another layout.
    #[error(
        "{}: checkpoint format version {found}; this build reads versions 1 and 2 \
         (resume it with the build that wrote it, or start the run over with --force)",
        path.display()
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// The version it records.
        found: u32,
    },
    /// The checkpoint does not fit the model it is restored into.
    #[error("checkpoint does not match the model: {0}")]
    Mismatch(String),
}

/// A checkpoint in memory: the trainer's state and its tensors, with their prefixes.
pub struct Checkpoint {
    /// Epochs done, lock controller, history.
    pub state: TrainerState,
    /// `model.*` variables and `optim.*` state.
    pub tensors: Vec<(String, Tensor)>,
}

impl Checkpoint {
    /// Writes the checkpoint to `path` atomically (tensors moved to the CPU).
    pub fn write(&self, path: &Path) -> Result<(), CheckpointError> {
        let bad = |e: serde_json::Error| CheckpointError::State {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let mut state = serde_json::to_value(&self.state).map_err(bad)?;
        if let Some(map) = state.as_object_mut() {
            map.insert("format_version".into(), FORMAT_VERSION.into());
        }
        let json = serde_json::to_vec(&state).map_err(bad)?;
        let mut all: Vec<(String, Tensor)> = self
            .tensors
            .iter()
            .map(|(k, v)| (k.clone(), v.to_device(tch::Device::Cpu).contiguous()))
            .collect();
        all.push((STATE_TENSOR.to_string(), Tensor::from_slice(&json)));
        write_atomic_with(path, |tmp| {
            Tensor::write_safetensors(&all, tmp).map_err(|source| CheckpointError::Encode {
                path: tmp.to_path_buf(),
                source,
            })
        })
    }

    /// Reads a checkpoint written by [`Checkpoint::write`] (or by a build of the same format).
    pub fn read(path: &Path) -> Result<Self, CheckpointError> {
        let p = || path.to_path_buf();
        let mut tensors = Tensor::read_safetensors(path)
            .map_err(|source| CheckpointError::Read { path: p(), source })?;
        let idx = tensors
            .iter()
            .position(|(k, _)| k == STATE_TENSOR)
            .ok_or_else(|| CheckpointError::NoState { path: p() })?;
        let (_, state) = tensors.swap_remove(idx);
        let bad = |reason: String| CheckpointError::State { path: p(), reason };
        if state.kind() != Kind::Uint8 {
            return Err(bad(format!("kind {:?}, expected bytes", state.kind())));
        }
        let bytes = Vec::<u8>::try_from(&state).map_err(|e| bad(e.to_string()))?;
        let json: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
        let found = json
            .get("format_version")
            .map_or(Some(1), |v| v.as_u64().and_then(|v| u32::try_from(v).ok()))
            .ok_or_else(|| bad("format_version is not a number".into()))?;
        if !READS_VERSIONS.contains(&found) {
            return Err(CheckpointError::Version { path: p(), found });
        }
        let state = serde_json::from_value(json).map_err(|e| bad(e.to_string()))?;
        Ok(Self { state, tensors })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> TrainerState {
        TrainerState {
            epochs_done: 3,
            controller: None,
            history: Vec::new(),
            in_epoch: None,
        }
    }

    #[test]
    fn round_trips_bit_exactly_and_records_its_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        let a = Tensor::randn([3, 4], (Kind::Float, tch::Device::Cpu));
        let ckpt = Checkpoint {
            state: state(),
            tensors: vec![(format!("{MODEL_PREFIX}a"), a.shallow_clone())],
        };
        ckpt.write(&path).unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(files.len(), 1, "no temporary file stays");
        let back = Checkpoint::read(&path).unwrap();
        assert_eq!(back.state.epochs_done, 3);
        assert_eq!(back.state.in_epoch, None);
        assert!(back.tensors[0].1.equal(&a));
        let raw = Tensor::read_safetensors(&path).unwrap();
        let json = &raw.iter().find(|(k, _)| k == STATE_TENSOR).unwrap().1;
        let json: serde_json::Value =
            serde_json::from_slice(&Vec::<u8>::try_from(json).unwrap()).unwrap();
        assert_eq!(json["format_version"], FORMAT_VERSION);
    }

    #[test]
    fn the_position_inside_an_epoch_round_trips_bit_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        // Values whose shortest decimal form reads back inexactly without float_roundtrip.
        let position = crate::EpochPosition {
            steps_done: 17,
            loss_sum: 2.0f64.sqrt() * 1_234.567_890_123,
            correct: 901,
            lr: 0.1 * 0.3,
            train_seconds: 1.0 / 3.0,
        };
        let mut s = state();
        s.in_epoch = Some(position.clone());
        let ckpt = Checkpoint {
            state: s,
            tensors: Vec::new(),
        };
        ckpt.write(&path).unwrap();
        let back = Checkpoint::read(&path).unwrap().state.in_epoch.unwrap();
        assert_eq!(back.loss_sum.to_bits(), position.loss_sum.to_bits());
        assert_eq!(back, position);
    }

    /// Writes a file with the checkpoint layout whose JSON state is `state`.
    fn raw_checkpoint(path: &Path, state: serde_json::Value) {
        let json = serde_json::to_vec(&state).unwrap();
        let t = vec![(STATE_TENSOR.to_string(), Tensor::from_slice(&json))];
        Tensor::write_safetensors(&t, path).unwrap();
    }

    #[test]
    fn an_unversioned_state_reads_as_version_1_and_another_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        let mut json = serde_json::to_value(state()).unwrap();
        raw_checkpoint(&path, json.clone());
        assert_eq!(Checkpoint::read(&path).unwrap().state.epochs_done, 3);
        json["format_version"] = 2.into();
        raw_checkpoint(&path, json.clone());
        assert_eq!(Checkpoint::read(&path).unwrap().state.epochs_done, 3);
        json["format_version"] = 3.into();
        raw_checkpoint(&path, json);
        let err = Checkpoint::read(&path).err().expect("version 3 is refused");
        assert!(matches!(err, CheckpointError::Version { found: 3, .. }));
        let msg = err.to_string();
        assert!(
            msg.contains("format version 3") && msg.contains("reads versions 1 and 2"),
            "{msg}"
        );
    }

    #[test]
    fn other_files_are_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        let t = vec![("x".to_string(), Tensor::from_slice(&[1.0f32]))];
        Tensor::write_safetensors(&t, &path).unwrap();
        let err = Checkpoint::read(&path).err().unwrap().to_string();
        assert!(
            err.contains("no state") && err.contains("c.safetensors"),
            "{err}"
        );
        std::fs::write(&path, b"not a safetensors file").unwrap();
        let err = Checkpoint::read(&path).err().unwrap().to_string();
        assert!(err.contains("cannot read checkpoint"), "{err}");
        raw_checkpoint(&path, serde_json::json!({"epochs": "three"}));
        let err = Checkpoint::read(&path).err().unwrap().to_string();
        assert!(err.contains("state is not valid"), "{err}");
    }
}
