//! The real files (`scripts/fetch-data` puts them under `data/`; `ETF_DATA_DIR` overrides).
//! A missing file fails the test, naming it: a suite that passed without its data would say
//! nothing about the loaders.

use std::path::PathBuf;

use etf_data::{load, DatasetName, DatasetSpec};

fn data_root() -> PathBuf {
    match std::env::var_os("ETF_DATA_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data"),
    }
}

/// The data root, after checking that `name`'s folder is there.
fn root_with(name: DatasetName) -> PathBuf {
    let root = data_root();
    let dir = root.join(name.as_str());
    assert!(
        dir.is_dir(),
        "{} not found: run scripts/fetch-data (or set ETF_DATA_DIR)",
        dir.display()
    );
    root
}

/// Loads `name` whole, panicking with the loader's message (which names a missing file).
fn load_whole(name: DatasetName) -> etf_data::Dataset {
    load(name, root_with(name)).unwrap_or_else(|e| panic!("{name}: {e} (run scripts/fetch-data)"))
}

/// Mean and standard deviation of all training features.
fn moments(ds: &etf_data::Dataset) -> (f64, f64) {
    let x = &ds.train.features;
    (
        x.mean(tch::Kind::Float).double_value(&[]),
        x.std(true).double_value(&[]),
    )
}

fn check_idx(name: DatasetName, train_counts: [usize; 10], test_counts: [usize; 10]) {
    let ds = load_whole(name);
    assert_eq!(ds.train.features.size(), [60_000, 1, 28, 28]);
    assert_eq!(Some(ds.sample_shape.clone()), name.sample_shape());
    assert_eq!(Some(ds.num_classes), name.num_classes());
    assert_eq!(ds.test.features.size(), [10_000, 1, 28, 28]);
    assert_eq!(ds.train.class_counts().unwrap(), train_counts);
    assert_eq!(ds.test.class_counts().unwrap(), test_counts);
    // The published constants standardise the training pixels.
    let (mean, std) = moments(&ds);
    assert!(
        mean.abs() < 0.01 && (std - 1.0).abs() < 0.01,
        "{name}: mean {mean}, std {std}"
    );
}

#[test]
fn mnist() {
    check_idx(
        DatasetName::Mnist,
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
    );
}

#[test]
fn fashion_mnist() {
    check_idx(DatasetName::FashionMnist, [6000; 10], [1000; 10]);
}

#[test]
fn digits() {
    let ds = load_whole(DatasetName::Digits);
    assert_eq!(ds.train.len() + ds.test.len(), 1797);
    assert_eq!(
        Some(ds.sample_shape.clone()),
        DatasetName::Digits.sample_shape()
    );
    assert_eq!(Some(ds.num_classes), DatasetName::Digits.num_classes());
    let total: Vec<usize> = ds
        .train
        .class_counts()
        .unwrap()
        .iter()
        .zip(ds.test.class_counts().unwrap())
        .map(|(a, b)| a + b)
        .collect();
    assert_eq!(total, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
    // round(0.2 · n_c) of each class is held out.
    let test: usize = total
        .iter()
        .map(|&n| (0.2 * n as f64).round() as usize)
        .sum();
    assert_eq!(ds.test.len(), test);
    let (mean, std) = moments(&ds);
    assert!(
        mean.abs() < 0.03 && (std - 1.0).abs() < 0.03,
        "digits: mean {mean}, std {std}"
    );
}

#[test]
fn limited_fashion_mnist_is_balanced() {
    let root = root_with(DatasetName::FashionMnist);
    let spec = DatasetSpec {
        limit_train: Some(1000),
        limit_test: Some(200),
        seed: 5,
        ..DatasetSpec::new(DatasetName::FashionMnist)
    };
    let ds = load(&spec, &root).unwrap_or_else(|e| panic!("{e} (run scripts/fetch-data)"));
    assert_eq!(ds.train.class_counts().unwrap(), [100; 10]);
    assert_eq!(ds.test.class_counts().unwrap(), [20; 10]);
}
