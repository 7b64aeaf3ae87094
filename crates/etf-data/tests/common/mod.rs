//! Writers of small data files in the real formats, for the integration tests.
#![allow(dead_code)] // each test binary uses a different part

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;

/// IDX bytes: big-endian magic and dims, then `data`.
pub fn idx_bytes(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = std::iter::once(magic)
        .chain(dims.iter().copied())
        .flat_map(u32::to_be_bytes)
        .collect();
    out.extend_from_slice(data);
    out
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Writes `bytes` to `dir/name`, gzipped (and named `name.gz`) when `gz`.
pub fn write(dir: &Path, name: &str, bytes: &[u8], gz: bool) -> PathBuf {
    let path = if gz {
        dir.join(format!("{name}.gz"))
    } else {
        dir.join(name)
    };
    let data = if gz { gzip(bytes) } else { bytes.to_vec() };
    std::fs::write(&path, data).unwrap();
    path
}

/// Pixel `p` of image `i`: a pattern that makes every image distinct.
pub fn pixel(i: usize, p: usize) -> u8 {
    ((i * 37 + p * 11) % 256) as u8
}

/// A valid MNIST-like directory with `n_train`/`n_test` images of `rows`×`cols`; labels `i % 10`.
pub fn write_idx_dir(dir: &Path, n_train: usize, n_test: usize, rows: u32, cols: u32, gz: bool) {
    for (prefix, n) in [("train", n_train), ("t10k", n_test)] {
        let px = (rows * cols) as usize;
        let images: Vec<u8> = (0..n * px).map(|k| pixel(k / px, k % px)).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        let n32 = n as u32;
        write(
            dir,
            &format!("{prefix}-images-idx3-ubyte"),
            &idx_bytes(0x803, &[n32, rows, cols], &images),
            gz,
        );
        write(
            dir,
            &format!("{prefix}-labels-idx1-ubyte"),
            &idx_bytes(0x801, &[n32], &labels),
            gz,
        );
    }
}

/// CSV text of digits: `n` lines, pixel p of line i = (i + p) % 17, label i % 10.
pub fn digits_csv(n: usize) -> String {
    (0..n)
        .map(|i| {
            let mut fields: Vec<String> = (0..64).map(|p| ((i + p) % 17).to_string()).collect();
            fields.push((i % 10).to_string());
            fields.join(",") + "\n"
        })
        .collect()
}

/// CIFAR-10 records: `n` of them, label `(i + offset) % 10`, pixel p = (i + p) % 256.
pub fn cifar_records(n: usize, offset: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 3073);
    for i in 0..n {
        out.push(((i + offset) % 10) as u8);
        out.extend((0..3072).map(|p| ((i + p) % 256) as u8));
    }
    out
}

/// A CIFAR-10 directory with `n` records per training batch and `n` test records.
pub fn write_cifar_dir(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for b in 1..=5 {
        std::fs::write(dir.join(format!("data_batch_{b}.bin")), cifar_records(n, b)).unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), cifar_records(n, 0)).unwrap();
}
