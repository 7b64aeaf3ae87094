//! The checkpoint: the one place that knows its layout.
//!
//! One safetensors file holds the model's variables under `model.<VarStore name>`, the
//! optimiser's state under `optim.<param>::<field>`, and the trainer's non-tensor state
//! ([`TrainerState`]: epochs done, lock controller, history) as JSON bytes in the tensor
//! `__state_json__`. The state records [`FORMAT_VERSION`]; files written before the version was
//! recorded have this same layout and read as version 1. Written atomically
//! ([`crate::atomic`]).

use crate::atomic::{commit, temp_path, WriteError};
use crate::trainer::TrainerState;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// The layout version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
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
        "{}: checkpoint format version {found}; this build reads version {FORMAT_VERSION} \
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
        let tmp = temp_path(path);
        Tensor::write_safetensors(&all, &tmp).map_err(|source| CheckpointError::Encode {
            path: tmp.clone(),
            source,
        })?;
        Ok(commit(&tmp, path)?)
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
        if found != FORMAT_VERSION {
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
        assert!(!temp_path(&path).exists());
        let back = Checkpoint::read(&path).unwrap();
        assert_eq!(back.state.epochs_done, 3);
        assert!(back.tensors[0].1.equal(&a));
        let raw = Tensor::read_safetensors(&path).unwrap();
        let json = &raw.iter().find(|(k, _)| k == STATE_TENSOR).unwrap().1;
        let json: serde_json::Value =
            serde_json::from_slice(&Vec::<u8>::try_from(json).unwrap()).unwrap();
        assert_eq!(json["format_version"], FORMAT_VERSION);
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
        raw_checkpoint(&path, json);
        let err = Checkpoint::read(&path).err().expect("version 2 is refused");
        assert!(matches!(err, CheckpointError::Version { found: 2, .. }));
        let msg = err.to_string();
        assert!(
            msg.contains("format version 2") && msg.contains("reads version 1"),
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
