//! Every loader error, provoked on small generated files (raw and gzipped): the error is the
//! right variant and its message names the file and the problem.

mod common;

use std::path::Path;

use common::*;
use etf_data::{load, DataError, DatasetName, DatasetSpec};
use tempfile::TempDir;

/// A data root with a valid MNIST-like `mnist/` folder of 20/10 images of 4×4.
fn mnist_root(gz: bool) -> TempDir {
    let root = TempDir::new().unwrap();
    let dir = root.path().join("mnist");
    std::fs::create_dir(&dir).unwrap();
    write_idx_dir(&dir, 20, 10, 4, 4, gz);
    root
}

fn load_mnist(root: &Path) -> Result<etf_data::Dataset, DataError> {
    load(DatasetName::Mnist, root)
}

/// Replaces `mnist/name` (raw, or `.gz` when `gz`) with `bytes`.
fn replace(root: &TempDir, name: &str, bytes: &[u8], gz: bool) -> String {
    let path = write(&root.path().join("mnist"), name, bytes, gz);
    path.display().to_string()
}

fn check_message(err: &DataError, needles: &[&str]) {
    let msg = err.to_string();
    for n in needles {
        assert!(msg.contains(n), "message {msg:?} lacks {n:?}");
    }
}

#[test]
fn missing_file_names_path_and_fetch_script() {
    let root = TempDir::new().unwrap();
    let err = load_mnist(root.path()).unwrap_err();
    assert!(matches!(err, DataError::MissingFile { .. }), "{err:?}");
    check_message(&err, &["train-images-idx3-ubyte", "scripts/fetch-data"]);

    let err = load(DatasetName::Digits, root.path()).unwrap_err();
    assert!(matches!(err, DataError::MissingFile { .. }), "{err:?}");
    check_message(&err, &["digits.csv.gz", "scripts/fetch-data"]);

    // One of four files gone is as fatal as all of them.
    let root = mnist_root(false);
    std::fs::remove_file(root.path().join("mnist/t10k-labels-idx1-ubyte")).unwrap();
    let err = load_mnist(root.path()).unwrap_err();
    check_message(&err, &["t10k-labels-idx1-ubyte"]);
}

#[test]
fn wrong_magic_shows_expected_and_found() {
    for gz in [false, true] {
        let root = mnist_root(gz);
        // A labels header where an images file belongs.
        let path = replace(
            &root,
            "train-images-idx3-ubyte",
            &idx_bytes(0x801, &[20], &[0; 20]),
            gz,
        );
        let err = load_mnist(root.path()).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::BadMagic {
                    expected: 0x803,
                    found: 0x801,
                    ..
                }
            ),
            "{err:?}"
        );
        check_message(&err, &[&path, "0x00000803", "0x00000801"]);
    }
}

#[test]
fn dims_that_do_not_match_the_size() {
    for gz in [false, true] {
        let root = mnist_root(gz);
        // 20 labels announced, 25 present.
        let path = replace(
            &root,
            "train-labels-idx1-ubyte",
            &idx_bytes(0x801, &[20], &[1; 25]),
            gz,
        );
        let err = load_mnist(root.path()).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::SizeMismatch {
                    expected: 28,
                    found: 33,
                    ..
                }
            ),
            "{err:?}"
        );
        check_message(&err, &[&path, "[20]", "28", "33"]);
    }
}

#[test]
fn truncated_files() {
    for gz in [false, true] {
        let root = mnist_root(gz);
        let full = idx_bytes(0x803, &[20, 4, 4], &[7; 320]);
        let path = replace(&root, "train-images-idx3-ubyte", &full[..200], gz);
        let err = load_mnist(root.path()).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Truncated {
                    needed: 336,
                    found: 200,
                    ..
                }
            ),
            "{err:?}"
        );
        check_message(&err, &[&path, "truncated", "336", "200"]);
        // Cut inside the header.
        replace(&root, "train-images-idx3-ubyte", &full[..9], gz);
        let err = load_mnist(root.path()).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Truncated {
                    needed: 16,
                    found: 9,
                    ..
                }
            ),
            "{err:?}"
        );
    }
}

#[test]
fn truncated_gzip_stream() {
    let root = mnist_root(true);
    let gz = gzip(&idx_bytes(0x803, &[20, 4, 4], &[7; 320]));
    let path = root.path().join("mnist/train-images-idx3-ubyte.gz");
    std::fs::write(&path, &gz[..gz.len() / 2]).unwrap();
    let err = load_mnist(root.path()).unwrap_err();
    assert!(matches!(err, DataError::Gzip { .. }), "{err:?}");
    check_message(&err, &[&path.display().to_string(), "gzip"]);
}

#[test]
fn label_out_of_range_names_label_and_index() {
    for gz in [false, true] {
        let root = mnist_root(gz);
        let mut labels = vec![3u8; 10];
        labels[6] = 12;
        let path = replace(
            &root,
            "t10k-labels-idx1-ubyte",
            &idx_bytes(0x801, &[10], &labels),
            gz,
        );
        let err = load_mnist(root.path()).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::LabelOutOfRange {
                    index: 6,
                    label: 12,
                    num_classes: 10,
                    ..
                }
            ),
            "{err:?}"
        );
        check_message(&err, &[&path, "label 12", "index 6"]);
    }
}

#[test]
fn image_label_count_mismatch() {
    let root = mnist_root(false);
    replace(
        &root,
        "train-labels-idx1-ubyte",
        &idx_bytes(0x801, &[19], &[0; 19]),
        false,
    );
    let err = load_mnist(root.path()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::CountMismatch {
                images: 20,
                labels: 19,
                ..
            }
        ),
        "{err:?}"
    );
    check_message(
        &err,
        &[
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "20",
            "19",
        ],
    );
}

#[test]
fn images_without_pixels_or_samples_are_refused() {
    for gz in [false, true] {
        // 0 × 0 (and 0 × 4) images in both files: consistent shapes, nothing to learn from.
        for (rows, cols) in [(0, 0), (0, 4), (4, 0)] {
            let root = TempDir::new().unwrap();
            let dir = root.path().join("mnist");
            std::fs::create_dir(&dir).unwrap();
            write_idx_dir(&dir, 20, 10, rows, cols, gz);
            let err = load_mnist(root.path()).unwrap_err();
            assert!(matches!(err, DataError::BadDims { .. }), "{err:?}");
            check_message(
                &err,
                &["train-images-idx3-ubyte", "at least one row and one column"],
            );
        }
        // No training images (and no labels): an empty training set.
        let root = TempDir::new().unwrap();
        let dir = root.path().join("mnist");
        std::fs::create_dir(&dir).unwrap();
        write_idx_dir(&dir, 0, 10, 4, 4, gz);
        let err = load_mnist(root.path()).unwrap_err();
        assert!(matches!(err, DataError::BadDims { .. }), "{err:?}");
        check_message(&err, &["train-images-idx3-ubyte", "holds no images"]);
    }
}

#[test]
fn test_images_of_another_shape() {
    let root = mnist_root(false);
    replace(
        &root,
        "t10k-images-idx3-ubyte",
        &idx_bytes(0x803, &[10, 5, 5], &[0; 250]),
        false,
    );
    let err = load_mnist(root.path()).unwrap_err();
    assert!(matches!(err, DataError::ShapeMismatch { .. }), "{err:?}");
    check_message(&err, &["t10k-images-idx3-ubyte", "[1, 5, 5]", "[1, 4, 4]"]);
}

/// A data root whose `digits/digits.csv.gz` holds `text` (gzipped or not, same name).
fn digits_root(text: &str, gz: bool) -> (TempDir, String) {
    let root = TempDir::new().unwrap();
    let dir = root.path().join("digits");
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join("digits.csv.gz");
    let bytes = if gz {
        gzip(text.as_bytes())
    } else {
        text.as_bytes().to_vec()
    };
    std::fs::write(&path, bytes).unwrap();
    (root, path.display().to_string())
}

#[test]
fn malformed_csv_lines_are_reported_with_their_number() {
    let good = digits_csv(30);
    let mut lines: Vec<String> = good.lines().map(String::from).collect();
    let cases: [(usize, &str, &str); 4] = [
        (4, "1,2,3", "found 3"),
        (7, &format!("{},0", "x,".repeat(63) + "1"), "pixel 1"),
        (9, &format!("{}17,0", "0,".repeat(63)), "pixel 64"),
        (11, &format!("{}zero", "0,".repeat(64)), "label"),
    ];
    for (line, text, what) in cases {
        let saved = std::mem::replace(&mut lines[line - 1], text.to_string());
        for gz in [false, true] {
            let (root, path) = digits_root(&(lines.join("\n") + "\n"), gz);
            let err = load(DatasetName::Digits, root.path()).unwrap_err();
            assert!(
                matches!(err, DataError::MalformedCsv { line: l, .. } if l == line),
                "{err:?}"
            );
            check_message(&err, &[&path, &format!("line {line}"), what]);
        }
        lines[line - 1] = saved;
    }
    let (root, _) = digits_root("", true);
    let err = load(DatasetName::Digits, root.path()).unwrap_err();
    assert!(
        matches!(err, DataError::MalformedCsv { line: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn digits_label_out_of_range() {
    let mut text = digits_csv(30);
    text.push_str(&format!("{}11\n", "0,".repeat(64)));
    let (root, path) = digits_root(&text, true);
    let err = load(DatasetName::Digits, root.path()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::LabelOutOfRange {
                index: 30,
                label: 11,
                ..
            }
        ),
        "{err:?}"
    );
    check_message(&err, &[&path]);
}

fn cifar_root(n: usize) -> TempDir {
    let root = TempDir::new().unwrap();
    write_cifar_dir(&root.path().join("cifar10"), n);
    root
}

#[test]
fn cifar_errors() {
    let root = TempDir::new().unwrap();
    let err = load(DatasetName::Cifar10, root.path()).unwrap_err();
    assert!(matches!(err, DataError::MissingFile { .. }), "{err:?}");
    check_message(&err, &["data_batch_1.bin", "cifar-10-binary"]);

    let root = cifar_root(3);
    let path = root.path().join("cifar10/data_batch_3.bin");
    std::fs::write(&path, &cifar_records(3, 0)[..3 * 3073 - 5]).unwrap();
    let err = load(DatasetName::Cifar10, root.path()).unwrap_err();
    assert!(
        matches!(err, DataError::RecordSize { record: 3073, .. }),
        "{err:?}"
    );
    check_message(&err, &[&path.display().to_string(), "9214"]);

    let root = cifar_root(3);
    let mut records = cifar_records(3, 0);
    records[2 * 3073] = 10;
    let path = root.path().join("cifar10/test_batch.bin");
    std::fs::write(&path, records).unwrap();
    let err = load(DatasetName::Cifar10, root.path()).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::LabelOutOfRange {
                index: 2,
                label: 10,
                ..
            }
        ),
        "{err:?}"
    );

    let root = cifar_root(3);
    std::fs::remove_file(root.path().join("cifar10/test_batch.bin")).unwrap();
    let err = load(DatasetName::Cifar10, root.path()).unwrap_err();
    check_message(&err, &["test_batch.bin"]);
}

#[test]
fn limits_need_enough_samples_of_every_class() {
    let root = mnist_root(false);
    // 20 training images, 2 per class: 19 takes 2 of each of the first 9 classes and 1 of the last.
    let spec = DatasetSpec {
        limit_train: Some(19),
        ..DatasetSpec::new(DatasetName::Mnist)
    };
    let ds = load(&spec, root.path()).unwrap();
    assert_eq!(
        ds.train.class_counts().unwrap(),
        [2, 2, 2, 2, 2, 2, 2, 2, 2, 1]
    );
    assert_eq!(ds.test.len(), 10, "no test limit, whole split kept");
    let spec = DatasetSpec {
        limit_train: Some(21),
        limit_test: Some(20),
        ..spec
    };
    assert_eq!(
        load(&spec, root.path()).unwrap().train.len(),
        20,
        "a limit above the size keeps all"
    );
    let err = ds.train.balanced_subset(21, 0).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::NotEnoughSamples {
                class: 0,
                needed: 3,
                available: 2,
                requested: 21
            }
        ),
        "{err:?}"
    );
    check_message(&err, &["class 0", "2 samples", "21"]);
}

#[test]
fn an_impossible_limit_names_its_key_and_value() {
    let root = mnist_root(false);
    // Every training label 0: a balanced subset of 19 needs 2 of class 1, which has none.
    let labels = idx_bytes(0x801, &[20], &[0; 20]);
    replace(&root, "train-labels-idx1-ubyte", &labels, false);
    let spec = DatasetSpec {
        limit_train: Some(19),
        ..DatasetSpec::new(DatasetName::Mnist)
    };
    let err = load(&spec, root.path()).unwrap_err();
    assert!(
        matches!(
            &err,
            DataError::Limit { key: "limit_train", limit: 19, source }
                if matches!(**source, DataError::NotEnoughSamples { class: 1, available: 0, .. })
        ),
        "{err:?}"
    );
    check_message(
        &err,
        &["limit_train = 19", "class 1 has 0 samples", "subset of 19"],
    );
}

#[test]
fn a_directory_fifo_or_broken_link_is_named_for_what_it_is() {
    let fifo = |p: &Path| {
        let ok = std::process::Command::new("mkfifo")
            .arg(p)
            .status()
            .unwrap();
        assert!(ok.success());
    };
    let cases: [Maker; 3] = [
        ("a directory", &|p: &Path| std::fs::create_dir(p).unwrap()),
        ("a FIFO", &fifo),
        ("a symbolic link to", &|p: &Path| {
            std::os::unix::fs::symlink("/nonexistent/etf-data", p).unwrap()
        }),
    ];
    for (what, make) in cases {
        // MNIST: an IDX file (neither it nor its .gz a file).
        let root = mnist_root(false);
        let path = root.path().join("mnist/t10k-images-idx3-ubyte");
        std::fs::remove_file(&path).unwrap();
        make(&path);
        let err = load_mnist(root.path()).unwrap_err();
        assert!(matches!(err, DataError::NotAFile { .. }), "{what}: {err:?}");
        check_message(&err, &["t10k-images-idx3-ubyte", what, "not a data file"]);

        // Digits: a FIFO there would block a plain read forever.
        let root = TempDir::new().unwrap();
        std::fs::create_dir(root.path().join("digits")).unwrap();
        make(&root.path().join("digits/digits.csv.gz"));
        let err = load(DatasetName::Digits, root.path()).unwrap_err();
        check_message(&err, &["digits.csv.gz", what]);

        // CIFAR-10: the first batch, and a later one.
        for name in ["data_batch_1.bin", "test_batch.bin"] {
            let root = cifar_root(2);
            let path = root.path().join("cifar10").join(name);
            std::fs::remove_file(&path).unwrap();
            make(&path);
            let err = load(DatasetName::Cifar10, root.path()).unwrap_err();
            check_message(&err, &[name, what]);
        }
    }
}

#[test]
fn digits_too_few_for_a_test_split_are_refused() {
    // One line: 20 % of one sample rounds to none, the test split would be empty.
    let (root, path) = digits_root(&digits_csv(1), false);
    let err = load(DatasetName::Digits, root.path()).unwrap_err();
    assert!(
        matches!(err, DataError::EmptySplit { split: "test", .. }),
        "{err:?}"
    );
    check_message(&err, &[&path, "1 samples", "test split empty"]);
}

/// What a case expects in the message, and how it puts that thing at a path.
type Maker<'a> = (&'a str, &'a dyn Fn(&Path));
