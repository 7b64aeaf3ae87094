//! Atomic files: every result and checkpoint is written to a temporary file, synced, and renamed
//! over the old one, so a crash leaves either the old or the new file, never a partial one.

use anyhow::{bail, Context, Result};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Renames `tmp` over `path` after syncing it, then syncs the directory.
fn commit(tmp: &Path, path: &Path) -> Result<()> {
    File::open(tmp)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync {}", tmp.display()))?;
    fs::rename(tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
    if let Some(dir) = path.parent() {
        // Directory fsync makes the rename itself durable; not every filesystem supports it.
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let mut f = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    drop(f);
    commit(&tmp, path)
}

/// The name under which a checkpoint stores its JSON state inside the safetensors file.
const STATE_TENSOR: &str = "__state_json__";

/// Writes named tensors plus a JSON state as one safetensors file, atomically.
pub fn write_checkpoint(
    path: &Path,
    tensors: &[(String, Tensor)],
    state: &serde_json::Value,
) -> Result<()> {
    let json = serde_json::to_vec(state)?;
    let mut all: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(k, v)| (k.clone(), v.to_device(tch::Device::Cpu).contiguous()))
        .collect();
    all.push((STATE_TENSOR.to_string(), Tensor::from_slice(&json)));
    let tmp = temp_path(path);
    Tensor::write_safetensors(&all, &tmp)
        .with_context(|| format!("cannot write checkpoint {}", tmp.display()))?;
    commit(&tmp, path)
}

/// Reads a checkpoint written by [`write_checkpoint`].
pub fn read_checkpoint(path: &Path) -> Result<(Vec<(String, Tensor)>, serde_json::Value)> {
    let mut tensors = Tensor::read_safetensors(path)
        .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
    let idx = tensors
        .iter()
        .position(|(k, _)| k == STATE_TENSOR)
        .with_context(|| {
            format!(
                "{}: not a checkpoint of this tool (no state)",
                path.display()
            )
        })?;
    let (_, state) = tensors.swap_remove(idx);
    if state.kind() != Kind::Uint8 {
        bail!(
            "{}: the checkpoint state has kind {:?}, expected bytes",
            path.display(),
            state.kind()
        );
    }
    let bytes = Vec::<u8>::try_from(&state)?;
    let json = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: the checkpoint state is not valid JSON", path.display()))?;
    Ok((tensors, json))
}

/// Writes a `.npy` (format 1.0) of an f32 or i64 tensor, for numpy and other tools.
pub fn write_npy(path: &Path, t: &Tensor) -> Result<()> {
    let t = t.to_device(tch::Device::Cpu).contiguous();
    let (descr, bytes): (&str, Vec<u8>) = match t.kind() {
        Kind::Int64 => (
            "<i8",
            Vec::<i64>::try_from(&t.flatten(0, -1))?
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        ),
        _ => {
            let v = Vec::<f32>::try_from(&t.to_kind(Kind::Float).flatten(0, -1))?;
            ("<f4", v.iter().flat_map(|x| x.to_le_bytes()).collect())
        }
    };
    let shape: Vec<String> = t.size().iter().map(|d| d.to_string()).collect();
    let shape = if shape.len() == 1 {
        format!("({},)", shape[0])
    } else {
        format!("({})", shape.join(", "))
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // The header is padded with spaces so the data starts on a 64-byte boundary.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + bytes.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&bytes);
    write_atomic(path, &out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trips_bit_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        let a = Tensor::randn([3, 4], (Kind::Float, tch::Device::Cpu));
        let b = Tensor::from_slice(&[1i64, 2, 3]);
        let state = serde_json::json!({"epoch": 3, "names": ["x"]});
        write_checkpoint(
            &path,
            &[
                ("a".into(), a.shallow_clone()),
                ("b".into(), b.shallow_clone()),
            ],
            &state,
        )
        .unwrap();
        let (tensors, got) = read_checkpoint(&path).unwrap();
        assert_eq!(got, state);
        let a2 = &tensors.iter().find(|(k, _)| k == "a").unwrap().1;
        assert!(a2.equal(&a));
        assert!(!dir.path().join("c.safetensors.tmp").exists());
    }

    #[test]
    fn npy_header_is_aligned_and_data_follows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        write_npy(&path, &Tensor::from_slice(&[1.5f32, -2.0]).reshape([2, 1])).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let header = std::str::from_utf8(&bytes[10..10 + hlen]).unwrap();
        assert!(
            header.contains("'shape': (2, 1)") && header.contains("<f4"),
            "{header}"
        );
        assert_eq!(
            &bytes[10 + hlen..],
            [1.5f32.to_le_bytes(), (-2.0f32).to_le_bytes()].concat()
        );
    }
}
