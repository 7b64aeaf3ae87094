//! Streaming and symmetry properties: batch sizes, sample order, scale, rotation, relabelling.

mod common;

use collapse_metrics::{Classifier, CollapseReport, GlobalMean, Matrix, Values};
use common::{
    assert_reports_close, clusters, matmul, orthonormal_columns, permutation, streamed, transpose,
    uniform, Layer,
};
use proptest::prelude::*;

const C: usize = 4;
const D: usize = 7;

/// A random layer: imbalanced clusters in `R^7` and a classifier with bias.
fn layer(seed: u64) -> (Layer, Vec<f64>, Vec<f64>) {
    let (layer, centres) = clusters(&[9, 14, 6, 11], D, 2.5, seed);
    let weight = centres
        .iter()
        .zip(uniform(C, D, seed ^ 0x77))
        .map(|(m, u)| m + 0.6 * u)
        .collect();
    (layer, weight, uniform(1, C, seed ^ 0x55))
}

fn global_mean(weighted: bool) -> GlobalMean {
    if weighted {
        GlobalMean::Weighted
    } else {
        GlobalMean::Unweighted
    }
}

fn report(layer: &Layer, weight: &[f64], bias: Option<&[f64]>, gm: GlobalMean) -> CollapseReport {
    let clf = Classifier {
        weight: Matrix::new(weight, C, D).unwrap(),
        bias: bias.map(Values::from),
    };
    streamed(layer.matrix(), &layer.labels, C, Some(clf), gm, 40).expect("valid input")
}

#[test]
fn batches_of_one_seven_and_all_agree() {
    for seed in [1, 2, 3] {
        let (layer, weight, bias) = layer(seed);
        for gm in [GlobalMean::Weighted, GlobalMean::Unweighted] {
            let clf = Classifier {
                weight: Matrix::new(&weight, C, D).unwrap(),
                bias: Some((&bias).into()),
            };
            let (f, y) = (layer.matrix(), &layer.labels);
            let all = streamed(f, y, C, Some(clf), gm, 1000).unwrap();
            for batch in [1, 7] {
                let got = streamed(f, y, C, Some(clf), gm, batch).unwrap();
                assert_reports_close(&got, &all, 1e-12);
            }
        }
    }
}

/// More rows than pass 2 converts at a time (256): chunking inside a batch changes nothing.
#[test]
fn batches_longer_than_a_chunk_agree() {
    let (layer, centres) = clusters(&[300, 250, 400], 5, 2.0, 9);
    let clf = Classifier {
        weight: Matrix::new(&centres, 3, 5).unwrap(),
        bias: None,
    };
    let (f, y, gm) = (layer.matrix(), &layer.labels, GlobalMean::Weighted);
    let whole = streamed(f, y, 3, Some(clf), gm, 950).unwrap();
    let small = streamed(f, y, 3, Some(clf), gm, 100).unwrap();
    assert_eq!(whole.num_samples, 950);
    assert!(whole.ncc_accuracy < 1.0, "{whole:?}");
    assert_reports_close(&whole, &small, 1e-12);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn permuting_samples_changes_nothing(seed in 0u64..1000, weighted: bool) {
        let (layer, weight, bias) = layer(seed);
        let gm = global_mean(weighted);
        let permuted = layer.select(&permutation(layer.labels.len(), seed ^ 0x99));
        let a = report(&layer, &weight, Some(&bias), gm);
        let b = report(&permuted, &weight, Some(&bias), gm);
        assert_reports_close(&b, &a, 1e-12);
    }

    #[test]
    fn scaling_features_keeps_scale_free_measures(
        seed in 0u64..1000,
        log_scale in -3.0f64..3.0,
        weighted: bool,
    ) {
        let (layer, weight, _) = layer(seed);
        let gm = global_mean(weighted);
        let alpha = 10f64.powf(log_scale);
        let scaled = Layer {
            features: layer.features.iter().map(|x| x * alpha).collect(),
            ..layer.clone()
        };
        let a = report(&layer, &weight, None, gm);
        let mut b = report(&scaled, &weight, None, gm);
        // Only variances and traces carry units: they scale by α².
        let a2 = alpha * alpha;
        for v in b.class_variances.iter_mut() {
            *v /= a2;
        }
        b.within_trace /= a2;
        b.between_trace /= a2;
        assert_reports_close(&b, &a, 1e-10);
    }

    #[test]
    fn rotating_features_changes_nothing(seed in 0u64..1000, weighted: bool) {
        let (layer, weight, bias) = layer(seed);
        let gm = global_mean(weighted);
        let q = orthonormal_columns(D, D, seed ^ 0x3333);
        let qt = transpose(&q, D, D);
        // h ↦ Qh for every sample (rows: H Qᵀ), and W ↦ W Qᵀ so that (WQᵀ)(Qh) = Wh.
        let n = layer.labels.len();
        let rotated = Layer {
            features: matmul(&layer.features, &qt, n, D, D),
            ..layer.clone()
        };
        let a = report(&layer, &weight, Some(&bias), gm);
        let b = report(&rotated, &matmul(&weight, &qt, C, D, D), Some(&bias), gm);
        assert_reports_close(&b, &a, 1e-10);
    }

    #[test]
    fn relabelling_classes_permutes_per_class_outputs(
        seed in 0u64..1000,
        perm in Just(vec![0usize, 1, 2, 3]).prop_shuffle(),
        weighted: bool,
    ) {
        let (layer, weight, bias) = layer(seed);
        let gm = global_mean(weighted);
        // Class c becomes π(c): labels map through π and row π(c) of W, b is the old row c.
        let mut inverse = [0usize; C];
        for (c, &p) in perm.iter().enumerate() {
            inverse[p] = c;
        }
        let relabelled = Layer {
            labels: layer.labels.iter().map(|&y| perm[y as usize] as i64).collect(),
            ..layer.clone()
        };
        let w: Vec<f64> = inverse.iter().flat_map(|&c| weight[c * D..(c + 1) * D].to_vec()).collect();
        let b_: Vec<f64> = inverse.iter().map(|&c| bias[c]).collect();
        let a = report(&layer, &weight, Some(&bias), gm);
        let b = report(&relabelled, &w, Some(&b_), gm);
        let mut expected = a.clone();
        for (c, &p) in perm.iter().enumerate() {
            expected.class_variances[p] = a.class_variances[c];
            expected.class_counts[p] = a.class_counts[c];
        }
        if perm != [0, 1, 2, 3] {
            // Imbalanced classes: a relabelling is visible in the per-class outputs.
            prop_assert_ne!(&a.class_counts, &b.class_counts);
        }
        assert_reports_close(&b, &expected, 1e-10);
    }
}
