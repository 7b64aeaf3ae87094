//! Bad input gives a clear error, never a panic; reports round-trip through JSON.

mod common;

use collapse_metrics::{
    collapse_report, ClassMeans, Classifier, CollapseAccumulator, CollapseReport, GlobalMean,
    Matrix, MeanStats, MetricsError,
};
use common::clusters;

fn means_of(layer: &common::Layer, c: usize) -> MeanStats {
    let mut pass1 = ClassMeans::new(c, layer.dim).unwrap();
    pass1.update(layer.matrix(), &layer.labels).unwrap();
    pass1.finalize(GlobalMean::Weighted).unwrap()
}

#[test]
fn setup_errors() {
    assert!(matches!(
        ClassMeans::new(1, 4),
        Err(MetricsError::TooFewClasses { num_classes: 1 })
    ));
    assert!(matches!(
        ClassMeans::new(3, 0),
        Err(MetricsError::ZeroDim { dim: 0 })
    ));
    let err = Matrix::new(&[0.0f32; 10], 3, 4).unwrap_err();
    assert!(matches!(
        err,
        MetricsError::MatrixLength {
            rows: 3,
            cols: 4,
            len: 10,
            ..
        }
    ));
    assert!(err.to_string().contains("needs 12 values, got 10"), "{err}");
}

#[test]
fn batch_errors_name_the_problem() {
    let mut acc = ClassMeans::new(3, 4).unwrap();
    let zeros = [0.0f64; 20];
    let f = Matrix::new(&zeros, 5, 4).unwrap();
    let y = [0i64, 1, 2, 0, 1];

    let err = acc
        .update(Matrix::new(&[0.0f64; 30], 5, 6).unwrap(), &y)
        .unwrap_err();
    assert!(matches!(
        err,
        MetricsError::FeatureDim {
            expected: 4,
            got: 6
        }
    ));

    let err = acc.update(f, &y[..4]).unwrap_err();
    assert!(matches!(
        err,
        MetricsError::LengthMismatch {
            features: 5,
            labels: 4
        }
    ));

    let err = acc.update(f, &[0i64, 3, 2, 7, 1]).unwrap_err();
    assert!(matches!(
        err,
        MetricsError::LabelOutOfRange {
            value: 7,
            count: 2,
            num_classes: 3
        }
    ));
    assert!(err.to_string().starts_with("labels:"), "{err}");
    let err = acc.update(f, &[0i64, -1, 2, 0, 1]).unwrap_err();
    assert!(matches!(
        err,
        MetricsError::LabelOutOfRange {
            value: -1,
            count: 1,
            ..
        }
    ));

    let mut nan = [0.0f32; 20];
    nan[6] = f32::NAN;
    nan[12..16].fill(f32::INFINITY);
    let err = acc
        .update(Matrix::new(&nan, 5, 4).unwrap(), &y)
        .unwrap_err();
    assert!(matches!(err, MetricsError::NonFinite { count: 5 }), "{err}");
    assert!(err.to_string().contains("5 feature value(s)"));

    // Huge but finite values overflow a plain sum: still accepted.
    acc.update(Matrix::new(&[1e308f64; 20], 5, 4).unwrap(), &y)
        .unwrap();
}

#[test]
fn failed_updates_leave_the_accumulators_unchanged() {
    let (layer, centres) = clusters(&[6, 5, 7], 4, 1.0, 8);
    let clean = means_of(&layer, 3);
    let shifted: Vec<i64> = layer.labels.iter().map(|y| y + 5).collect();
    let mut nan = layer.features.clone();
    nan[3] = f64::NAN;
    let nan = Matrix::new(&nan, layer.labels.len(), 4).unwrap();
    let empty = layer.matrix().slice_rows(0, 0);

    let mut acc = ClassMeans::new(3, 4).unwrap();
    acc.update(layer.matrix(), &layer.labels).unwrap();
    assert!(acc.update(layer.matrix(), &shifted).is_err());
    assert!(acc.update(nan, &layer.labels).is_err());
    acc.update(empty, &[0i64; 0]).unwrap();
    let stats = acc.finalize(GlobalMean::Weighted).unwrap();
    assert_eq!(stats.means(), clean.means());
    assert_eq!(stats.counts(), clean.counts());

    let clf = Classifier {
        weight: Matrix::new(&centres, 3, 4).unwrap(),
        bias: None,
    };
    let mut once = CollapseAccumulator::new(&stats, Some(clf)).unwrap();
    once.update(layer.matrix(), &layer.labels).unwrap();
    let mut failed = CollapseAccumulator::new(&stats, Some(clf)).unwrap();
    failed.update(layer.matrix(), &layer.labels).unwrap();
    assert!(failed.update(layer.matrix(), &shifted).is_err());
    assert!(failed.update(nan, &layer.labels).is_err());
    failed.update(empty, &[0i64; 0]).unwrap();
    assert_eq!(failed.finalize().unwrap(), once.finalize().unwrap());
}

#[test]
fn empty_classes_are_named() {
    let mut acc = ClassMeans::new(5, 2).unwrap();
    acc.update(Matrix::new(&[1.0f64; 6], 3, 2).unwrap(), &[0i64, 2, 2])
        .unwrap();
    let err = acc.finalize(GlobalMean::Weighted).unwrap_err();
    assert!(matches!(&err, MetricsError::EmptyClasses { classes, .. } if classes == &[1, 3, 4]));
    assert!(err.to_string().contains("[1, 3, 4]"), "{err}");

    // Pass 2 on data missing a class: its variance is undefined.
    let (layer, _) = clusters(&[4, 4, 4], 3, 1.0, 2);
    let stats = means_of(&layer, 3);
    let keep: Vec<usize> = (0..layer.labels.len())
        .filter(|&i| layer.labels[i] != 1)
        .collect();
    let without_1 = layer.select(&keep);
    let mut pass2 = CollapseAccumulator::new(&stats, None).unwrap();
    pass2.update(without_1.matrix(), &without_1.labels).unwrap();
    assert!(matches!(
        pass2.finalize(),
        Err(MetricsError::EmptyClasses { classes, .. }) if classes == [1]
    ));
}

#[test]
fn classifier_is_checked() {
    let (layer, _) = clusters(&[4, 4, 4], 3, 1.0, 2);
    let stats = means_of(&layer, 3);
    let wide = [0.0f64; 15];
    let clf = Classifier {
        weight: Matrix::new(&wide, 3, 5).unwrap(),
        bias: None,
    };
    assert!(matches!(
        CollapseAccumulator::new(&stats, Some(clf)),
        Err(MetricsError::ClassifierShape { part: "weight", .. })
    ));
    let mut w = [0.5f32; 9];
    let b = [0.0f32; 4];
    let clf = Classifier {
        weight: Matrix::new(&w, 3, 3).unwrap(),
        bias: Some((&b).into()),
    };
    assert!(matches!(
        CollapseAccumulator::new(&stats, Some(clf)),
        Err(MetricsError::ClassifierShape { part: "bias", .. })
    ));
    w[4] = f32::NAN;
    let clf = Classifier {
        weight: Matrix::new(&w, 3, 3).unwrap(),
        bias: None,
    };
    let err = CollapseAccumulator::new(&stats, Some(clf)).err().unwrap();
    assert!(matches!(
        err,
        MetricsError::ClassifierNonFinite {
            part: "weight",
            count: 1
        }
    ));
    assert!(err.to_string().starts_with("classifier weight"), "{err}");
}

#[test]
fn tolerance_is_checked() {
    let (layer, _) = clusters(&[4, 4], 3, 1.0, 2);
    for rtol in [-1.0, f64::NAN, f64::INFINITY] {
        let mut pass1 = ClassMeans::new(2, 3).unwrap();
        pass1.update(layer.matrix(), &layer.labels).unwrap();
        assert!(matches!(
            pass1.finalize_with(GlobalMean::Weighted, rtol),
            Err(MetricsError::InvalidTolerance { .. })
        ));
    }
}

#[test]
fn reports_round_trip_through_json() {
    let (layer, centres) = clusters(&[5, 7, 6], 4, 1.0, 4);
    let clf = Classifier {
        weight: Matrix::new(&centres, 3, 4).unwrap(),
        bias: None,
    };
    let r = collapse_report(
        layer.matrix(),
        &layer.labels,
        3,
        Some(clf),
        GlobalMean::Unweighted,
    )
    .unwrap();
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.contains("\"global_mean\":\"unweighted\""), "{json}");
    let back: CollapseReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
    // The NC2 measures are flattened: their keys sit beside `nc1` (and beside `nc3` for the
    // classifier), as in reports written before they were grouped into `Nc2`.
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let nc2 = r.nc2;
    let w_nc2 = r.classifier.as_ref().unwrap().nc2;
    for (key, v, w) in [
        ("equinorm", nc2.equinorm, w_nc2.equinorm),
        ("equiangularity", nc2.equiangularity, w_nc2.equiangularity),
        ("max_angle", nc2.max_angle, w_nc2.max_angle),
        ("etf_error", nc2.etf_error, w_nc2.etf_error),
    ] {
        assert_eq!(value[key].as_f64(), Some(v), "{key}");
        assert_eq!(
            value["classifier"][key].as_f64(),
            Some(w),
            "classifier {key}"
        );
    }
    assert!(value.get("nc2").is_none(), "{json}");

    // Undefined measures (here: all class means coincide) are NaN, stored as null.
    let same = Matrix::new(&[1.0f64; 12], 6, 2).unwrap();
    let y = [0i64, 1, 2, 0, 1, 2];
    let r = collapse_report(same, &y, 3, None, GlobalMean::Weighted).unwrap();
    assert_eq!(r.rank, 0);
    assert!(r.nc1.is_nan() && r.nc2.equinorm.is_nan());
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.contains("\"nc1\":null"), "{json}");
    assert!(json.contains("\"equinorm\":null"), "{json}");
    let back: CollapseReport = serde_json::from_str(&json).unwrap();
    assert!(back.nc1.is_nan() && back.cdnv.is_nan() && back.nc2.equinorm.is_nan());
    assert_eq!(back.class_counts, r.class_counts);
}

/// The JSON keys of a report are those of earlier versions of the crate, which consumers
/// (`summary.json`, the Python package's dict) rely on.
#[test]
fn json_keys_are_stable() {
    let (layer, centres) = clusters(&[5, 7, 6], 4, 1.0, 4);
    let clf = Classifier {
        weight: Matrix::new(&centres, 3, 4).unwrap(),
        bias: None,
    };
    let r = collapse_report(
        layer.matrix(),
        &layer.labels,
        3,
        Some(clf),
        GlobalMean::Weighted,
    )
    .unwrap();
    let value = serde_json::to_value(&r).unwrap();
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&value),
        [
            "between_trace",
            "cdnv",
            "class_counts",
            "class_variances",
            "classifier",
            "dim",
            "equiangularity",
            "equinorm",
            "etf_error",
            "global_mean",
            "max_angle",
            "nc1",
            "ncc_accuracy",
            "num_classes",
            "num_samples",
            "rank",
            "within_trace"
        ]
    );
    assert_eq!(
        keys(&value["classifier"]),
        [
            "accuracy",
            "equiangularity",
            "equinorm",
            "etf_error",
            "max_angle",
            "nc3",
            "nc4"
        ]
    );
}
