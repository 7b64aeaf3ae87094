//! Exact cases: a perfectly collapsed layer, a case worked by hand, and agreement with the
//! textbook `d × d` formulas of `collapse_metrics::reference`.

mod common;

use collapse_metrics::{
    collapse_report, reference, ClassMeans, Classifier, CollapseAccumulator, GlobalMean, Matrix,
    DEFAULT_PINV_RTOL,
};
use common::{assert_reports_close, clusters, simplex_etf_rows, streamed, uniform};

/// Features equal to their class means, the means a simplex ETF, `W` = the means.
#[test]
fn perfect_collapse_measures_zero() {
    // (classes, dim, samples per class, global mean): imbalanced counts keep μ_G = 0 only
    // with the unweighted convention.
    let cases: [(usize, usize, &[usize], GlobalMean); 4] = [
        (2, 2, &[3, 3], GlobalMean::Weighted),
        (4, 9, &[5, 5, 5, 5], GlobalMean::Weighted),
        (5, 5, &[1, 4, 2, 7, 3], GlobalMean::Unweighted),
        (10, 32, &[6; 10], GlobalMean::Weighted),
    ];
    for (c, d, counts, global_mean) in cases {
        let means = simplex_etf_rows(c, d, 3.7, c as u64);
        let labels: Vec<i64> = (0..c)
            .flat_map(|k| std::iter::repeat_n(k as i64, counts[k]))
            .collect();
        let features: Vec<f64> = labels
            .iter()
            .flat_map(|&y| means[y as usize * d..(y as usize + 1) * d].to_vec())
            .collect();
        let clf = Classifier {
            weight: Matrix::new(&means, c, d).unwrap(),
            bias: None,
        };
        let features = Matrix::new(&features, labels.len(), d).unwrap();
        let r = collapse_report(features, &labels, c, Some(clf), global_mean).expect("valid input");
        let ctx = format!("C = {c}, d = {d}: {r:?}");
        assert!(r.nc1.abs() < 1e-20, "{ctx}");
        for v in [
            r.nc2.equinorm,
            r.nc2.equiangularity,
            r.nc2.max_angle,
            r.nc2.etf_error,
        ] {
            assert!(v.abs() < 1e-12, "{ctx}");
        }
        assert_eq!(r.ncc_accuracy, 1.0, "{ctx}");
        assert_eq!(r.rank, c - 1, "{ctx}");
        assert!(r.within_trace < 1e-20, "{ctx}");
        let w = r.classifier.expect("classifier given");
        for v in [
            w.nc2.equinorm,
            w.nc2.equiangularity,
            w.nc2.max_angle,
            w.nc2.etf_error,
        ] {
            assert!(v.abs() < 1e-12, "{ctx}");
        }
        assert!(w.nc3.abs() < 1e-20, "{ctx}");
        assert_eq!((w.nc4, w.accuracy), (0.0, 1.0), "{ctx}");
    }
}

/// C = 2, d = 2, worked out by hand:
/// class 0: (3, 1), (−1, −1) → μ_0 = (1, 0); class 1: (−1, 1), (−1, −1) → μ_1 = (−1, 0).
#[test]
fn two_classes_by_hand() {
    let features = [3.0, 1.0, -1.0, -1.0, -1.0, 1.0, -1.0, -1.0];
    let labels = [0i64, 0, 1, 1];
    let weight = [1.0, 0.5, -1.0, 0.0];
    let bias = [0.0, -2.0];
    let clf = Classifier {
        weight: Matrix::new(&weight, 2, 2).unwrap(),
        bias: Some((&bias).into()),
    };
    let features = Matrix::new(&features, 4, 2).unwrap();
    let r = collapse_report(features, &labels, 2, Some(clf), GlobalMean::Weighted).unwrap();
    let close = |got: f64, want: f64| {
        assert!(
            (got - want).abs() <= 1e-12 * want.abs().max(1.0),
            "got {got}, want {want}"
        )
    };
    // Σ_W = [[2, 1], [1, 1]], Σ_B = e₁e₁ᵀ ⇒ tr(Σ_W Σ_B^†)/C = 2/2.
    close(r.nc1, 1.0);
    close(r.nc1_papyan(), 2.0);
    close(r.within_trace, 3.0);
    close(r.between_trace, 1.0);
    // V_0 = (5 + 5)/2, V_1 = (1 + 1)/2, ‖μ_0 − μ_1‖² = 4 ⇒ CDNV = 6/8.
    close(r.class_variances[0], 5.0);
    close(r.class_variances[1], 1.0);
    close(r.cdnv, 0.75);
    // (−1, −1) of class 0 is nearer μ_1.
    close(r.ncc_accuracy, 0.75);
    // Centred means ±e₁: a two-vector simplex ETF.
    for v in [
        r.nc2.equinorm,
        r.nc2.equiangularity,
        r.nc2.max_angle,
        r.nc2.etf_error,
    ] {
        close(v, 0.0);
    }
    let w = r.classifier.unwrap();
    // Logits predict [0, 1, 0, 1]; NCC says [0, 1, 1, 1].
    close(w.accuracy, 0.5);
    close(w.nc4, 0.25);
    let n0 = 1.25f64.sqrt();
    close(w.nc2.equinorm, (n0 - 1.0) / (n0 + 1.0));
    close(w.nc2.equiangularity, 0.0);
    close(w.nc2.max_angle, 1.0 - 1.0 / n0);
    let g = 4.5625f64.sqrt();
    let etf_sq = (1.25 / g - 0.5).powi(2) + 2.0 * (0.5 - 1.0 / g).powi(2) + (1.0 / g - 0.5).powi(2);
    close(w.nc2.etf_error, etf_sq.sqrt());
    // W/‖W‖_F = [[2/3, 1/3], [−2/3, 0]] against M̃ᵀ/‖M̃‖_F = [[1/√2, 0], [−1/√2, 0]].
    close(w.nc3, 2.0 * (2.0 / 3.0 - 0.5f64.sqrt()).powi(2) + 1.0 / 9.0);
}

/// The streaming method against the textbook formulas (`d × d` pseudo-inverse) in f64.
#[test]
fn streaming_matches_textbook_formulas() {
    let cases: [(&[usize], usize, GlobalMean, bool); 4] = [
        (&[20, 20, 20], 5, GlobalMean::Weighted, true),
        (&[8, 30, 15, 11], 12, GlobalMean::Unweighted, true),
        (&[9, 14, 6, 10, 12, 7, 8], 4, GlobalMean::Weighted, false), // d < C − 1
        (&[40, 25], 64, GlobalMean::Weighted, true),
    ];
    let mut imperfect_ncc = 0;
    for (seed, (counts, d, global_mean, with_bias)) in cases.into_iter().enumerate() {
        let c = counts.len();
        let (layer, centres) = clusters(counts, d, 3.0, seed as u64 + 10);
        let weight: Vec<f64> = centres
            .iter()
            .zip(uniform(c, d, 99))
            .map(|(m, u)| m + 0.8 * u)
            .collect();
        let bias = uniform(1, c, 7);
        let clf = Classifier {
            weight: Matrix::new(&weight, c, d).unwrap(),
            bias: with_bias.then_some((&bias).into()),
        };
        let (f, y) = (layer.matrix(), &layer.labels);
        let want = reference::collapse_report(f, y, c, Some(clf), global_mean).unwrap();
        let got = streamed(f, y, c, Some(clf), global_mean, 13).unwrap();
        assert!(got.nc1 > 0.01, "non-trivial case: {got:?}");
        imperfect_ncc += usize::from(got.ncc_accuracy < 1.0);
        assert_reports_close(&got, &want, 1e-9);
    }
    assert!(
        imperfect_ncc >= 2,
        "too easy: {imperfect_ncc} cases with NCC errors"
    );
}

/// Pass 2 on other data (a test set) measured against the training means.
#[test]
fn test_set_uses_training_means() {
    let (train, _) = clusters(&[12, 15, 9], 6, 1.5, 3);
    let (test, _) = clusters(&[7, 5, 8], 6, 1.5, 3 ^ 0xFF);
    fn labelled(l: &common::Layer) -> reference::Labelled<'_> {
        reference::Labelled {
            features: l.matrix(),
            labels: &l.labels,
        }
    }
    let want = reference::report(
        labelled(&train),
        labelled(&test),
        3,
        None,
        GlobalMean::Weighted,
        DEFAULT_PINV_RTOL,
    )
    .unwrap();
    let mut pass1 = ClassMeans::new(3, 6).unwrap();
    pass1.update(train.matrix(), &train.labels).unwrap();
    let stats = pass1.finalize(GlobalMean::Weighted).unwrap();
    let mut pass2 = CollapseAccumulator::new(&stats, None).unwrap();
    pass2.update(test.matrix(), &test.labels).unwrap();
    let got = pass2.finalize().unwrap();
    assert_eq!(got.num_samples, 20);
    assert_reports_close(&got, &want, 1e-9);
}

/// f32 features accumulate in f64: their report equals that of the same values given as f64,
/// bit for bit; every integer label type gives the same report.
#[test]
fn f32_features_and_any_label_type() {
    let (layer, _) = clusters(&[10, 12, 11], 8, 1.0, 5);
    let low: Vec<f32> = layer.features.iter().map(|&x| x as f32).collect();
    let widened: Vec<f64> = low.iter().map(|&x| f64::from(x)).collect();
    let (n, gm) = (layer.labels.len(), GlobalMean::Weighted);
    let report = |f: Matrix<'_>| collapse_report(f, &layer.labels, 3, None, gm).unwrap();
    let want = report(Matrix::new(&widened, n, 8).unwrap());
    assert_eq!(report(Matrix::new(&low, n, 8).unwrap()), want);
    let f = Matrix::new(&widened, n, 8).unwrap();
    let as_u8: Vec<u8> = layer.labels.iter().map(|&y| y as u8).collect();
    let as_i32: Vec<i32> = layer.labels.iter().map(|&y| y as i32).collect();
    let as_usize: Vec<usize> = layer.labels.iter().map(|&y| y as usize).collect();
    assert_eq!(collapse_report(f, &as_u8, 3, None, gm).unwrap(), want);
    assert_eq!(collapse_report(f, &as_i32, 3, None, gm).unwrap(), want);
    assert_eq!(collapse_report(f, &as_usize, 3, None, gm).unwrap(), want);
}
