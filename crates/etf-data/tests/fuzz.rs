//! Fuzzed readers: mutated IDX (raw and gzip), CIFAR-10 and digits files load as a sane data
//! set or fail with a typed error that names the file; none panics.
//!
//! Short mode: the plain tests. Long mode (100 000 cases per reader, or `ETF_FUZZ_CASES`):
//! `cargo test --release -p etf-data --test fuzz -- --ignored --nocapture`.

mod common;
#[path = "../../../tools/fuzz.rs"]
mod fuzz;

use common::*;
use etf_data::{load, DataError, Dataset, DatasetName};
use fuzz::{apply, fuzz, long_cases, mutations, Mutation};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tempfile::TempDir;

/// Cases of each reader's short mode (well under a second each in a debug build).
const SHORT: u32 = 500;

/// A loaded data set must be usable: samples in both splits, at least one feature, labels in
/// range (the readers check them), the shapes of the two splits agreeing.
fn check_sane(ds: &Dataset) -> Result<(), TestCaseError> {
    prop_assert!(!ds.train.is_empty() && !ds.test.is_empty());
    prop_assert!(
        ds.sample_shape.iter().all(|&d| d >= 1),
        "{:?}",
        ds.sample_shape
    );
    prop_assert_eq!(ds.train.sample_shape(), ds.sample_shape.clone());
    Ok(())
}

/// An error must be one of the file errors and name a file of the data set (its folder).
fn check_error(err: &DataError, folder: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        !matches!(err, DataError::Torch(_) | DataError::InvalidConfig(_)),
        "untyped error: {err:?}"
    );
    let msg = err.to_string();
    prop_assert!(msg.contains(folder), "{msg:?} names no file of {folder}");
    Ok(())
}

/// The outcome of one case: a sane data set or a clear error about a file of `folder`;
/// returns `"ok"` or the error's kind.
fn check(result: Result<Dataset, DataError>, folder: &str) -> Result<String, TestCaseError> {
    match result {
        Ok(ds) => check_sane(&ds).map(|()| "ok".into()),
        Err(e) => {
            check_error(&e, folder)?;
            let kind = format!("{e:?}");
            Ok(kind[..kind.find([' ', '(', '{']).unwrap_or(kind.len())].to_string())
        }
    }
}

/// The four IDX files of a small MNIST (12 train and 6 test images of 4×4) as (name, bytes).
fn idx_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let dir = TempDir::new().unwrap();
    write_idx_dir(dir.path(), 12, 6, 4, 4, false);
    [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ]
    .into_iter()
    .map(|n| (n, std::fs::read(dir.path().join(n)).unwrap()))
    .collect()
}

/// Rewrites an IDX file's dims to `dims` (as many as it has) and cuts or pads its data to
/// match: a consistent header, so the case gets past the size checks to the shapes.
fn resize_idx(bytes: &[u8], dims: &[Option<u32>]) -> Vec<u8> {
    let ndims = (bytes[3] as usize).min(dims.len());
    let header = 4 * (1 + ndims);
    let old = |i: usize| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap());
    let dims: Vec<u32> = (0..ndims)
        .map(|i| dims[i].unwrap_or_else(|| old(i)))
        .collect();
    let mut out = bytes[..4].to_vec();
    out.extend(dims.iter().flat_map(|d| d.to_be_bytes()));
    let len: usize = dims.iter().map(|&d| d as usize).product();
    let data = &bytes[header.min(bytes.len())..];
    out.extend((0..len).map(|i| data.get(i).copied().unwrap_or(i as u8 % 10)));
    out
}

/// Fuzzes one IDX file of a valid MNIST folder at a time: mutations of its bytes, after
/// (sometimes) a consistent change of some of its dims (to 0–5), sometimes with both images
/// files resized to the same rows × columns (0–3 each). `gz`: the files are gzipped, and
/// the mutations hit either the gzip stream (`on_stream`) or the IDX bytes before gzipping.
fn fuzz_idx(cases: u32, gz: bool) {
    let seeds = idx_seeds();
    let root = TempDir::new().unwrap();
    let dir = root.path().join("mnist");
    std::fs::create_dir(&dir).unwrap();
    // The files as stored (gzipped once), to put back after a case.
    let stored: Vec<(std::path::PathBuf, Vec<u8>)> = seeds
        .iter()
        .map(|(name, bytes)| {
            let path = write(&dir, name, bytes, gz);
            (path.clone(), std::fs::read(&path).unwrap())
        })
        .collect();
    let what = if gz { "IDX (gzip)" } else { "IDX (raw)" };
    let dims = prop::option::of(prop::collection::vec(prop::option::of(0u32..=5), 3));
    let muts = prop::collection::vec(fuzz::mutation(), 0..=3);
    // Rows and columns of both images files (train and test agree, so the shapes match).
    let shape = prop::option::of((0u32..=3, 0u32..=3));
    let strategy = (0..seeds.len(), dims, muts, any::<bool>(), shape);
    fuzz(
        what,
        cases,
        strategy,
        |(file, dims, muts, on_stream, shape)| {
            let mut changed = vec![file];
            if let Some((rows, cols)) = shape {
                for i in [0, 2] {
                    let (name, seed) = &seeds[i];
                    write(
                        &dir,
                        name,
                        &resize_idx(seed, &[None, Some(rows), Some(cols)]),
                        gz,
                    );
                    changed.push(i);
                }
            }
            let (name, seed) = &seeds[file];
            let seed = match (&dims, shape) {
                (Some(d), _) => resize_idx(seed, d),
                (None, Some((rows, cols))) if file % 2 == 0 => {
                    resize_idx(seed, &[None, Some(rows), Some(cols)])
                }
                (None, _) => seed.clone(),
            };
            if gz && on_stream {
                std::fs::write(&stored[file].0, apply(&gzip(&seed), &muts, 16)).unwrap();
            } else {
                write(&dir, name, &apply(&seed, &muts, 16), gz);
            }
            let result = load(DatasetName::Mnist, root.path());
            // Put the seeds back for the next case.
            for i in changed {
                std::fs::write(&stored[i].0, &stored[i].1).unwrap();
            }
            check(result, "/mnist/")
        },
    );
}

#[test]
fn fuzz_idx_raw() {
    fuzz_idx(SHORT, false);
}

#[test]
fn fuzz_idx_gzip() {
    fuzz_idx(SHORT, true);
}

#[test]
#[ignore = "long mode: cargo test --release -p etf-data --test fuzz -- --ignored"]
fn fuzz_idx_raw_long() {
    fuzz_idx(long_cases(), false);
}

#[test]
#[ignore = "long mode: cargo test --release -p etf-data --test fuzz -- --ignored"]
fn fuzz_idx_gzip_long() {
    fuzz_idx(long_cases(), true);
}

/// Bytes of a CIFAR-10 record.
const RECORD: usize = 3073;

/// Fuzzes one CIFAR-10 batch (of six, two records each) at a time.
fn fuzz_cifar(cases: u32) {
    let root = TempDir::new().unwrap();
    let dir = root.path().join("cifar10");
    write_cifar_dir(&dir, 2);
    let names: Vec<String> = (1..=5)
        .map(|b| format!("data_batch_{b}.bin"))
        .chain(["test_batch.bin".to_string()])
        .collect();
    let seeds: Vec<Vec<u8>> = names
        .iter()
        .map(|n| std::fs::read(dir.join(n)).unwrap())
        .collect();
    // The label bytes of the two records are the interesting header.
    let strategy = (
        0..names.len(),
        prop_oneof![
            mutations(),
            // Labels: byte 0 and byte 3073, any value.
            (prop::sample::select(vec![0, RECORD]), any::<u8>())
                .prop_map(|(at, v)| vec![Mutation::At(at, v)]),
        ],
    );
    fuzz("CIFAR-10", cases, strategy, |(file, muts)| {
        std::fs::write(dir.join(&names[file]), apply(&seeds[file], &muts, 4)).unwrap();
        let result = load(DatasetName::Cifar10, root.path());
        std::fs::write(dir.join(&names[file]), &seeds[file]).unwrap();
        check(result, "/cifar10/")
    });
}

#[test]
fn fuzz_cifar10() {
    fuzz_cifar(SHORT);
}

#[test]
#[ignore = "long mode: cargo test --release -p etf-data --test fuzz -- --ignored"]
fn fuzz_cifar10_long() {
    fuzz_cifar(long_cases());
}

/// Fuzzes the digits CSV (40 lines), raw or gzipped.
fn fuzz_digits(cases: u32) {
    let root = TempDir::new().unwrap();
    let dir = root.path().join("digits");
    std::fs::create_dir(&dir).unwrap();
    let seed = digits_csv(40).into_bytes();
    let path = dir.join("digits.csv.gz");
    fuzz(
        "digits CSV",
        cases,
        (mutations(), any::<bool>()),
        |(muts, gz)| {
            let mutated = apply(&seed, &muts, 0);
            std::fs::write(&path, if gz { gzip(&mutated) } else { mutated }).unwrap();
            check(
                load(DatasetName::Digits, root.path()),
                "/digits/digits.csv.gz",
            )
        },
    );
}

#[test]
fn fuzz_digits_csv() {
    fuzz_digits(SHORT);
}

#[test]
#[ignore = "long mode: cargo test --release -p etf-data --test fuzz -- --ignored"]
fn fuzz_digits_csv_long() {
    fuzz_digits(long_cases());
}

/// The seeds themselves load: the fuzz starts from valid files.
#[test]
fn fuzz_seeds_are_valid() {
    let root = TempDir::new().unwrap();
    std::fs::create_dir(root.path().join("mnist")).unwrap();
    write_idx_dir(&root.path().join("mnist"), 12, 6, 4, 4, false);
    check_sane(&load(DatasetName::Mnist, root.path()).unwrap()).unwrap();
    write_cifar_dir(&root.path().join("cifar10"), 2);
    check_sane(&load(DatasetName::Cifar10, root.path()).unwrap()).unwrap();
}
