//! Streaming and symmetry properties: batch sizes, sample order, scale, rotation, relabelling.

mod common;

use collapse_metrics::{Classifier, CollapseReport, GlobalMean};
use common::{assert_reports_close, clusters, orthogonal, streamed, uniform};
use proptest::prelude::*;
use tch::Tensor;

const C: i64 = 4;
const D: i64 = 7;

/// A random layer: imbalanced clusters in `R^7` and a classifier with bias.
fn layer(seed: u64) -> (Tensor, Tensor, Tensor, Tensor) {
    let (features, labels, centres) = clusters(&[9, 14, 6, 11], D, 2.5, seed);
    let weight = centres + uniform(C, D, seed ^ 0x77) * 0.6;
    let bias = uniform(1, C, seed ^ 0x55).reshape([C]);
    (features, labels, weight, bias)
}

fn global_mean(weighted: bool) -> GlobalMean {
    if weighted {
        GlobalMean::Weighted
    } else {
        GlobalMean::Unweighted
    }
}

fn report(
    features: &Tensor,
    labels: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    gm: GlobalMean,
) -> CollapseReport {
    let clf = Classifier { weight, bias };
    streamed(features, labels, C as usize, Some(clf), gm, 40).expect("valid input")
}

#[test]
fn batches_of_one_seven_and_all_agree() {
    for seed in [1, 2, 3] {
        let (features, labels, weight, bias) = layer(seed);
        for gm in [GlobalMean::Weighted, GlobalMean::Unweighted] {
            let clf = Classifier {
                weight: &weight,
                bias: Some(&bias),
            };
            let all = streamed(&features, &labels, C as usize, Some(clf), gm, 1000).unwrap();
            for batch in [1, 7] {
                let got = streamed(&features, &labels, C as usize, Some(clf), gm, batch).unwrap();
                assert_reports_close(&got, &all, 1e-12);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn permuting_samples_changes_nothing(seed in 0u64..1000, weighted: bool) {
        let (features, labels, weight, bias) = layer(seed);
        let gm = global_mean(weighted);
        let perm = uniform(1, features.size()[0], seed ^ 0x99).reshape([-1]).argsort(0, false);
        let a = report(&features, &labels, &weight, Some(&bias), gm);
        let b = report(
            &features.index_select(0, &perm),
            &labels.index_select(0, &perm),
            &weight,
            Some(&bias),
            gm,
        );
        assert_reports_close(&b, &a, 1e-12);
    }

    #[test]
    fn scaling_features_keeps_scale_free_measures(
        seed in 0u64..1000,
        log_scale in -3.0f64..3.0,
        weighted: bool,
    ) {
        let (features, labels, weight, _) = layer(seed);
        let gm = global_mean(weighted);
        let alpha = 10f64.powf(log_scale);
        let a = report(&features, &labels, &weight, None, gm);
        let mut b = report(&features.multiply_scalar(alpha), &labels, &weight, None, gm);
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
        let (features, labels, weight, bias) = layer(seed);
        let gm = global_mean(weighted);
        let q = orthogonal(D, seed ^ 0x3333);
        // h ↦ Qh for every sample (rows: H Qᵀ), and W ↦ W Qᵀ so that (WQᵀ)(Qh) = Wh.
        let a = report(&features, &labels, &weight, Some(&bias), gm);
        let b = report(&features.matmul(&q.tr()), &labels, &weight.matmul(&q.tr()), Some(&bias), gm);
        assert_reports_close(&b, &a, 1e-10);
    }

    #[test]
    fn relabelling_classes_permutes_per_class_outputs(
        seed in 0u64..1000,
        perm in Just(vec![0i64, 1, 2, 3]).prop_shuffle(),
        weighted: bool,
    ) {
        let (features, labels, weight, bias) = layer(seed);
        let gm = global_mean(weighted);
        let pi = Tensor::from_slice(&perm);
        // Class c becomes π(c): labels map through π and row π(c) of W, b is the old row c.
        let inverse = pi.argsort(0, false);
        let a = report(&features, &labels, &weight, Some(&bias), gm);
        let b = report(
            &features,
            &pi.index_select(0, &labels),
            &weight.index_select(0, &inverse),
            Some(&bias.index_select(0, &inverse)),
            gm,
        );
        let mut expected = a.clone();
        for (c, &p) in perm.iter().enumerate() {
            expected.class_variances[p as usize] = a.class_variances[c];
            expected.class_counts[p as usize] = a.class_counts[c];
        }
        if perm != [0, 1, 2, 3] {
            // Imbalanced classes: a relabelling is visible in the per-class outputs.
            prop_assert_ne!(&a.class_counts, &b.class_counts);
        }
        assert_reports_close(&b, &expected, 1e-10);
    }
}
