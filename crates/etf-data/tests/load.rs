//! Loading small generated files in every supported format, and the spec's parsing.

mod common;

use common::*;
use etf_data::{load, norm, DataError, DatasetName, DatasetSpec, SyntheticConfig};
use tch::{Device, Kind, Tensor};
use tempfile::TempDir;

fn to_vec_f32(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(&t.flatten(0, -1)).unwrap()
}

fn assert_normalised(
    got: &[f32],
    raw: impl Iterator<Item = u8>,
    n: norm::Normalization,
    per_channel: usize,
) {
    for (k, (g, r)) in got.iter().zip(raw).enumerate() {
        let c = (k / per_channel) % n.mean.len();
        let want = (f64::from(r) / n.scale - n.mean[c]) / n.std[c];
        assert!(
            (f64::from(*g) - want).abs() < 1e-5,
            "element {k}: {g} vs {want}"
        );
    }
}

#[test]
fn idx_raw_and_gzipped_load_the_same_tensors() {
    let mut loaded = Vec::new();
    for gz in [false, true] {
        let root = TempDir::new().unwrap();
        let dir = root.path().join("fashion-mnist");
        std::fs::create_dir(&dir).unwrap();
        write_idx_dir(&dir, 30, 20, 3, 5, gz);
        let ds = load(DatasetName::FashionMnist, root.path()).unwrap();
        assert_eq!(ds.train.features.size(), [30, 1, 3, 5]);
        assert_eq!(ds.test.features.size(), [20, 1, 3, 5]);
        assert_eq!(ds.sample_shape, [1, 3, 5]);
        assert_eq!(ds.train.features.kind(), Kind::Float);
        assert_eq!(ds.train.labels.kind(), Kind::Int64);
        assert_eq!(ds.class_names[0], "T-shirt/top");
        assert_eq!(ds.class_names[9], "Ankle boot");
        assert_eq!(ds.num_classes(), 10);
        assert_eq!(ds.input_dim(), 15);
        let labels = ds.train.labels_vec().unwrap();
        assert_eq!(labels, (0..30).map(|i| i % 10).collect::<Vec<i64>>());
        let raw = (0..30 * 15).map(|k| pixel(k / 15, k % 15));
        assert_normalised(
            &to_vec_f32(&ds.train.features),
            raw,
            norm::FASHION_MNIST,
            15,
        );
        loaded.push(ds);
    }
    assert!(loaded[0].train.features.equal(&loaded[1].train.features));
    assert!(loaded[0].test.features.equal(&loaded[1].test.features));
}

#[test]
fn a_gzip_file_without_gz_name_is_still_gunzipped() {
    let root = TempDir::new().unwrap();
    let dir = root.path().join("mnist");
    std::fs::create_dir(&dir).unwrap();
    write_idx_dir(&dir, 10, 10, 2, 2, false);
    let labels = idx_bytes(0x801, &[10], &[9; 10]);
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), gzip(&labels)).unwrap();
    let ds = load(DatasetName::Mnist, root.path()).unwrap();
    assert_eq!(ds.test.labels_vec().unwrap(), [9; 10]);
}

#[test]
fn digits_split_is_stratified_seeded_and_normalised() {
    let root = TempDir::new().unwrap();
    std::fs::create_dir(root.path().join("digits")).unwrap();
    std::fs::write(
        root.path().join("digits/digits.csv.gz"),
        gzip(digits_csv(200).as_bytes()),
    )
    .unwrap();
    let spec = DatasetSpec {
        seed: 3,
        ..DatasetSpec::new(DatasetName::Digits)
    };
    let ds = load(&spec, root.path()).unwrap();
    assert_eq!((ds.train.len(), ds.test.len()), (160, 40));
    assert_eq!(ds.test.class_counts().unwrap(), [4; 10]);
    assert_eq!(ds.sample_shape, [1, 8, 8]);
    assert_eq!(ds.class_names[3], "3");
    let again = load(&spec, root.path()).unwrap();
    assert!(ds.test.features.equal(&again.test.features));
    let other = load(
        DatasetSpec {
            seed: 4,
            ..spec.clone()
        },
        root.path(),
    )
    .unwrap();
    assert!(
        !ds.test.labels.equal(&other.test.labels) || !ds.test.features.equal(&other.test.features)
    );
    // The union of both splits is the file, each sample normalised.
    let all = Tensor::cat(&[ds.train.flat_features(), ds.test.flat_features()], 0);
    assert_eq!(all.size(), [200, 64]);
    let lo = (0.0 - norm::DIGITS.mean[0]) / norm::DIGITS.std[0];
    let hi = (1.0 - norm::DIGITS.mean[0]) / norm::DIGITS.std[0];
    assert!((all.min().double_value(&[]) - lo).abs() < 1e-5);
    assert!((all.max().double_value(&[]) - hi).abs() < 1e-5);
    let custom = DatasetSpec {
        test_fraction: 0.5,
        ..spec
    };
    assert_eq!(load(&custom, root.path()).unwrap().test.len(), 100);
}

#[test]
fn cifar_loads_channel_major_from_either_folder() {
    for nested in [false, true] {
        let root = TempDir::new().unwrap();
        let dir = root.path().join("cifar10");
        let dir = if nested {
            dir.join("cifar-10-batches-bin")
        } else {
            dir
        };
        write_cifar_dir(&dir, 4);
        let ds = load(DatasetName::Cifar10, root.path()).unwrap();
        assert_eq!(ds.train.features.size(), [20, 3, 32, 32]);
        assert_eq!(ds.test.features.size(), [4, 3, 32, 32]);
        assert_eq!(
            Some(ds.sample_shape.clone()),
            DatasetName::Cifar10.sample_shape()
        );
        assert_eq!(Some(ds.num_classes), DatasetName::Cifar10.num_classes());
        assert_eq!(ds.class_names[0], "airplane");
        assert_eq!(ds.class_names[9], "truck");
        // Batch b holds labels (i + b) % 10.
        let want: Vec<i64> = (1..=5)
            .flat_map(|b| (0..4).map(move |i| ((i + b) % 10) as i64))
            .collect();
        assert_eq!(ds.train.labels_vec().unwrap(), want);
        let raw = (0..4).flat_map(|i| (0..3072).map(move |p| ((i + p) % 256) as u8));
        assert_normalised(&to_vec_f32(&ds.test.features), raw, norm::CIFAR10, 1024);
    }
}

#[test]
fn names_parse_and_serialise_in_kebab_case() {
    for name in DatasetName::ALL {
        assert_eq!(name.to_string().parse::<DatasetName>().unwrap(), name);
        let json = serde_json::to_string(&name).unwrap();
        assert_eq!(json, format!("\"{name}\""));
        assert_eq!(serde_json::from_str::<DatasetName>(&json).unwrap(), name);
    }
    assert_eq!(
        "Fashion_MNIST".parse::<DatasetName>().unwrap(),
        DatasetName::FashionMnist
    );
    assert_eq!(
        "cifar-10".parse::<DatasetName>().unwrap(),
        DatasetName::Cifar10
    );
    assert!(matches!(
        "imagenet".parse::<DatasetName>(),
        Err(DataError::UnknownDataset(_))
    ));
    assert!(serde_json::from_str::<DatasetName>("\"fashion_mnist\"").is_err());
}

#[test]
fn specs_from_toml_reject_unknown_fields() {
    let spec: DatasetSpec =
        toml::from_str("name = \"fashion-mnist\"\nlimit_train = 500\n").unwrap();
    assert_eq!(spec.name, DatasetName::FashionMnist);
    assert_eq!(spec.limit_train, Some(500));
    assert_eq!(spec.test_fraction, 0.2);
    let spec: DatasetSpec =
        toml::from_str("name = \"synthetic\"\n[synthetic]\nnum_classes = 7\nseed = 3\n").unwrap();
    assert_eq!(
        spec.synthetic,
        SyntheticConfig {
            num_classes: 7,
            seed: 3,
            ..Default::default()
        }
    );
    assert!(toml::from_str::<DatasetSpec>("name = \"mnist\"\nlimit = 5\n").is_err());
    assert!(
        toml::from_str::<DatasetSpec>("name = \"synthetic\"\n[synthetic]\nclasses = 7\n").is_err()
    );
    assert!(toml::from_str::<SyntheticConfig>("noise = 1.0").is_err());
}

#[test]
fn batches_on_a_device_already_holding_the_split() {
    let ds = SyntheticConfig::default()
        .generate()
        .unwrap()
        .to_device(Device::Cpu)
        .unwrap();
    let n: i64 = ds
        .train
        .batches(50, Some(1), Device::Cpu)
        .unwrap()
        .map(|(x, _)| x.size()[0])
        .sum();
    assert_eq!(n as usize, ds.train.len());
    let (x, y) = ds
        .train
        .batches(7, Some(2), Device::Cpu)
        .unwrap()
        .next()
        .unwrap();
    assert_eq!((x.size(), y.size()), (vec![7, 16], vec![7]));
}

/// Features and labels of two splits are the same values.
fn same_split(a: &etf_data::Split, b: &etf_data::Split) -> bool {
    a.features.equal(&b.features) && a.labels.equal(&b.labels)
}

#[test]
fn limits_are_the_balanced_subsets_of_the_whole_splits() {
    let synthetic = SyntheticConfig {
        num_classes: 3,
        train_per_class: 20,
        test_per_class: 10,
        ..Default::default()
    };
    let whole = load(synthetic.clone(), "unused").unwrap();
    for seed in [0, 3] {
        // What the runner passes: its data set, the limits and seed 0 (other seeds alike).
        let spec = DatasetSpec {
            name: DatasetName::Synthetic,
            limit_train: Some(25),
            limit_test: Some(7),
            seed,
            synthetic: synthetic.clone(),
            ..DatasetSpec::new(DatasetName::Synthetic)
        };
        let ds = load(&spec, "unused").unwrap();
        assert!(same_split(
            &ds.train,
            &whole.train.balanced_subset(25, seed).unwrap()
        ));
        assert!(same_split(
            &ds.test,
            &whole.test.balanced_subset(7, seed).unwrap()
        ));
        assert_eq!(ds.train.class_counts().unwrap(), [9, 8, 8]);
    }
    // 0, or a limit of at least the split's size, keeps the split whole.
    for limit in [0, 60, 1000] {
        let spec = DatasetSpec {
            limit_train: Some(limit),
            limit_test: Some(limit),
            ..DatasetSpec::from(synthetic.clone())
        };
        let ds = load(spec, "unused").unwrap();
        assert!(same_split(&ds.train, &whole.train), "limit {limit}");
        assert!(same_split(&ds.test, &whole.test), "limit {limit}");
    }
}

#[test]
fn probe_is_a_balanced_subset_of_the_training_split_or_all_of_it() {
    let ds = SyntheticConfig {
        num_classes: 4,
        train_per_class: 10,
        ..Default::default()
    }
    .generate()
    .unwrap();
    for seed in [0, 5] {
        let probe = ds.probe(10, seed).unwrap();
        assert!(same_split(
            &probe,
            &ds.train.balanced_subset(10, seed).unwrap()
        ));
        assert_eq!(probe.class_counts().unwrap(), [3, 3, 2, 2]);
    }
    assert!(same_split(&ds.probe(40, 0).unwrap(), &ds.train));
    assert!(same_split(&ds.probe(usize::MAX, 0).unwrap(), &ds.train));
}

#[test]
fn sample_shapes_and_class_counts_are_known_before_loading() {
    for (name, shape) in [
        (DatasetName::Mnist, vec![1, 28, 28]),
        (DatasetName::FashionMnist, vec![1, 28, 28]),
        (DatasetName::Digits, vec![1, 8, 8]),
        (DatasetName::Cifar10, vec![3, 32, 32]),
    ] {
        assert_eq!(name.sample_shape(), Some(shape), "{name}");
        assert_eq!(name.num_classes(), Some(10), "{name}");
    }
    assert_eq!(DatasetName::Synthetic.sample_shape(), None);
    assert_eq!(DatasetName::Synthetic.num_classes(), None);
    let cfg = SyntheticConfig {
        num_classes: 5,
        dim: 7,
        ..Default::default()
    };
    let ds = cfg.generate().unwrap();
    assert_eq!(ds.sample_shape, cfg.sample_shape());
    assert_eq!(ds.num_classes, cfg.num_classes);
}
