//! An independent reference: reports computed by `tests/fixtures/make_fixtures.py` with the
//! textbook formulas in PyTorch f64 (d × d covariances, `torch.linalg.pinv`, explicit loops).

mod common;

use collapse_metrics::{ClassMeans, Classifier, CollapseAccumulator, CollapseReport, GlobalMean};
use common::assert_reports_close;
use serde::Deserialize;
use tch::{Device, Tensor};

#[derive(Deserialize)]
struct Data {
    features: Vec<Vec<f64>>,
    labels: Vec<i64>,
}

#[derive(Deserialize)]
struct Fixture {
    name: String,
    global_mean: GlobalMean,
    train: Data,
    eval: Option<Data>,
    weight: Vec<Vec<f64>>,
    bias: Option<Vec<f64>>,
    expected: CollapseReport,
}

fn matrix(rows: &[Vec<f64>]) -> Tensor {
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    Tensor::from_slice(&flat).reshape([rows.len() as i64, -1])
}

fn check(file: &str) {
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/{file}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture present");
    let fx: Fixture = serde_json::from_str(&text).expect("fixture parses");
    let (c, d) = (fx.expected.num_classes, fx.expected.dim);
    let (train_f, train_y) = (
        matrix(&fx.train.features),
        Tensor::from_slice(&fx.train.labels),
    );
    let weight = matrix(&fx.weight);
    let bias = fx.bias.as_deref().map(Tensor::from_slice);
    let clf = Classifier {
        weight: &weight,
        bias: bias.as_ref(),
    };
    let mut pass1 = ClassMeans::new(c, d, Device::Cpu).unwrap();
    // Uneven batches, to stream as a real run would.
    for (f, y) in train_f.split(11, 0).iter().zip(train_y.split(11, 0).iter()) {
        pass1.update(f, y).unwrap();
    }
    let stats = pass1.finalize(fx.global_mean).unwrap();
    let mut pass2 = CollapseAccumulator::new(&stats, Some(clf)).unwrap();
    match &fx.eval {
        None => pass2.update(&train_f, &train_y).unwrap(),
        Some(eval) => pass2
            .update(&matrix(&eval.features), &Tensor::from_slice(&eval.labels))
            .unwrap(),
    }
    let got = pass2.finalize().unwrap();
    assert!(
        got.nc1 > 0.1 && got.ncc_accuracy < 1.0,
        "{}: trivial case",
        fx.name
    );
    assert_reports_close(&got, &fx.expected, 1e-8);
}

#[test]
fn balanced_weighted() {
    check("balanced_weighted");
}

#[test]
fn imbalanced_unweighted() {
    check("imbalanced_unweighted");
}

#[test]
fn rank_deficient_fewer_dims_than_classes() {
    check("rank_deficient");
}

#[test]
fn train_test_split() {
    check("train_test_split");
}
