//! Files of a run directory besides the checkpoint (whose layout is `etf_train::checkpoint`'s):
//! every file is written atomically ([`write_atomic`]), and features go out as `.npy`.

use anyhow::Result;
use std::path::Path;
use tch::{Kind, Tensor};

/// Writes `bytes` to `path` atomically ([`etf_train::atomic::write_atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(etf_train::atomic::write_atomic(path, bytes)?)
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
