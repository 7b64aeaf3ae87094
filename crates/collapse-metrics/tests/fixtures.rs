//! An independent reference: reports computed by `tests/fixtures/make_fixtures.py` with the
//! textbook formulas in PyTorch f64 (d × d covariances, `torch.linalg.pinv`, explicit loops).

mod common;

use collapse_metrics::{
    ClassMeans, Classifier, CollapseAccumulator, CollapseReport, GlobalMean, Matrix, Values,
};
use common::assert_reports_close;
use serde::Deserialize;

#[derive(Deserialize)]
struct Data {
    features: Vec<Vec<f64>>,
    labels: Vec<i64>,
}

impl Data {
    fn flat(&self) -> Vec<f64> {
        self.features.iter().flatten().copied().collect()
    }
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

fn check(file: &str) {
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/{file}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture present");
    let fx: Fixture = serde_json::from_str(&text).expect("fixture parses");
    let (c, d) = (fx.expected.num_classes, fx.expected.dim);
    let train = fx.train.flat();
    let train_f = Matrix::new(&train, fx.train.labels.len(), d).unwrap();
    let weight: Vec<f64> = fx.weight.iter().flatten().copied().collect();
    let clf = Classifier {
        weight: Matrix::new(&weight, c, d).unwrap(),
        bias: fx.bias.as_ref().map(Values::from),
    };
    let mut pass1 = ClassMeans::new(c, d).unwrap();
    // Uneven batches, to stream as a real run would.
    for start in (0..train_f.rows()).step_by(11) {
        let len = 11.min(train_f.rows() - start);
        let labels = &fx.train.labels[start..start + len];
        pass1
            .update(train_f.slice_rows(start, len), labels)
            .unwrap();
    }
    let stats = pass1.finalize(fx.global_mean).unwrap();
    let mut pass2 = CollapseAccumulator::new(&stats, Some(clf)).unwrap();
    match &fx.eval {
        None => pass2.update(train_f, &fx.train.labels).unwrap(),
        Some(eval) => {
            let flat = eval.flat();
            let eval_f = Matrix::new(&flat, eval.labels.len(), d).unwrap();
            pass2.update(eval_f, &eval.labels).unwrap()
        }
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
