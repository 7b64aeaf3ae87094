//! Bad input gives a clear error, never a panic; reports round-trip through JSON.

mod common;

use collapse_metrics::{
    collapse_report, ClassMeans, Classifier, CollapseAccumulator, CollapseReport, GlobalMean,
    MetricsError,
};
use common::{clusters, F64};
use tch::{Device, Kind, Tensor};

fn means_of(features: &Tensor, labels: &Tensor, c: usize) -> collapse_metrics::MeanStats {
    let mut pass1 = ClassMeans::new(c, features.size()[1] as usize, Device::Cpu).unwrap();
    pass1.update(features, labels).unwrap();
    pass1.finalize(GlobalMean::Weighted).unwrap()
}

#[test]
fn setup_errors() {
    assert!(matches!(
        ClassMeans::new(1, 4, Device::Cpu),
        Err(MetricsError::TooFewClasses { num_classes: 1 })
    ));
    assert!(matches!(
        ClassMeans::new(3, 0, Device::Cpu),
        Err(MetricsError::ZeroDim { dim: 0 })
    ));
}

#[test]
fn batch_errors_name_the_problem() {
    let mut acc = ClassMeans::new(3, 4, Device::Cpu).unwrap();
    let f = Tensor::zeros([5, 4], F64);
    let y = Tensor::from_slice(&[0i64, 1, 2, 0, 1]);

    let err = acc.update(&Tensor::zeros([5, 2, 2], F64), &y).unwrap_err();
    assert!(matches!(&err, MetricsError::FeatureShape { shape } if shape == &[5, 2, 2]));
    assert!(err.to_string().contains("flatten"), "{err}");

    let err = acc.update(&Tensor::zeros([5, 6], F64), &y).unwrap_err();
    assert!(matches!(
        err,
        MetricsError::FeatureDim {
            expected: 4,
            got: 6
        }
    ));

    let err = acc.update(&f, &y.narrow(0, 0, 4)).unwrap_err();
    assert!(matches!(
        err,
        MetricsError::LengthMismatch {
            features: 5,
            labels: 4
        }
    ));

    let err = acc.update(&f, &y.reshape([5, 1])).unwrap_err();
    assert!(matches!(err, MetricsError::LabelShape { .. }));

    let err = acc.update(&f, &y.to_kind(Kind::Float)).unwrap_err();
    assert!(matches!(err, MetricsError::LabelKind { kind: Kind::Float }));

    let err = acc.update(&f.to_kind(Kind::Int64), &y).unwrap_err();
    assert!(matches!(
        err,
        MetricsError::FeatureKind { kind: Kind::Int64 }
    ));

    let bad = Tensor::from_slice(&[0i64, 3, 2, 7, 1]);
    let err = acc.update(&f, &bad).unwrap_err();
    assert!(matches!(
        err,
        MetricsError::LabelOutOfRange {
            value: 7,
            count: 2,
            num_classes: 3
        }
    ));
    let negative = Tensor::from_slice(&[0i64, -1, 2, 0, 1]);
    let err = acc.update(&f, &negative).unwrap_err();
    assert!(matches!(
        err,
        MetricsError::LabelOutOfRange {
            value: -1,
            count: 1,
            ..
        }
    ));

    let nan = Tensor::zeros([5, 4], F64);
    let _ = nan.get(1).get(2).fill_(f64::NAN);
    let _ = nan.get(3).fill_(f64::INFINITY);
    let err = acc.update(&nan, &y).unwrap_err();
    assert!(matches!(err, MetricsError::NonFinite { count: 5 }), "{err}");
    assert!(err.to_string().contains("5 feature value(s)"));

    // Huge but finite values overflow a plain sum: still accepted.
    let huge = Tensor::full([5, 4], 1e308, F64);
    acc.update(&huge, &y).unwrap();
}

#[test]
fn failed_updates_leave_the_accumulator_unchanged() {
    let (features, labels, _) = clusters(&[6, 5, 7], 4, 1.0, 8);
    let clean = means_of(&features, &labels, 3);
    let mut acc = ClassMeans::new(3, 4, Device::Cpu).unwrap();
    acc.update(&features, &labels).unwrap();
    assert!(acc
        .update(&features, &(labels.shallow_clone() + 5))
        .is_err());
    acc.update(&features.narrow(0, 0, 0), &labels.narrow(0, 0, 0))
        .unwrap(); // empty batch
    let stats = acc.finalize(GlobalMean::Weighted).unwrap();
    assert!(stats.means().allclose(clean.means(), 0.0, 0.0, false));
    assert_eq!(stats.counts(), clean.counts());
}

#[test]
fn empty_classes_are_named() {
    let mut acc = ClassMeans::new(5, 2, Device::Cpu).unwrap();
    acc.update(
        &Tensor::ones([3, 2], F64),
        &Tensor::from_slice(&[0i64, 2, 2]),
    )
    .unwrap();
    let err = acc.finalize(GlobalMean::Weighted).unwrap_err();
    assert!(matches!(&err, MetricsError::EmptyClasses { classes, .. } if classes == &[1, 3, 4]));
    assert!(err.to_string().contains("[1, 3, 4]"), "{err}");

    // Pass 2 on data missing a class: its variance is undefined.
    let (features, labels, _) = clusters(&[4, 4, 4], 3, 1.0, 2);
    let stats = means_of(&features, &labels, 3);
    let mut pass2 = CollapseAccumulator::new(&stats, None).unwrap();
    let keep = labels.ne(1).nonzero().squeeze_dim(1);
    pass2
        .update(
            &features.index_select(0, &keep),
            &labels.index_select(0, &keep),
        )
        .unwrap();
    assert!(matches!(
        pass2.finalize(),
        Err(MetricsError::EmptyClasses { classes, .. }) if classes == [1]
    ));
}

#[test]
fn classifier_shape_is_checked() {
    let (features, labels, _) = clusters(&[4, 4, 4], 3, 1.0, 2);
    let stats = means_of(&features, &labels, 3);
    let w = Tensor::zeros([3, 5], F64);
    let clf = Classifier {
        weight: &w,
        bias: None,
    };
    assert!(matches!(
        CollapseAccumulator::new(&stats, Some(clf)),
        Err(MetricsError::ClassifierShape { part: "weight", .. })
    ));
    let w = Tensor::zeros([3, 3], F64);
    let b = Tensor::zeros([4], F64);
    let clf = Classifier {
        weight: &w,
        bias: Some(&b),
    };
    assert!(matches!(
        CollapseAccumulator::new(&stats, Some(clf)),
        Err(MetricsError::ClassifierShape { part: "bias", .. })
    ));
}

#[test]
fn convenience_function_checks_whole_tensors() {
    let f = Tensor::zeros([6, 3], F64);
    let y = Tensor::from_slice(&[0i64, 1, 0, 1, 0]);
    assert!(matches!(
        collapse_report(&f, &y, 2, None, GlobalMean::Weighted),
        Err(MetricsError::LengthMismatch {
            features: 6,
            labels: 5
        })
    ));
    assert!(matches!(
        collapse_report(&f.reshape([6, 3, 1]), &y, 2, None, GlobalMean::Weighted),
        Err(MetricsError::FeatureShape { .. })
    ));
    // More rows than one internal chunk (4096) streams correctly.
    let n = 9000;
    let labels = Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(3);
    let features = labels.to_kind(Kind::Float).unsqueeze(1).repeat([1, 2]);
    let r = collapse_report(&features, &labels, 3, None, GlobalMean::Weighted).unwrap();
    assert_eq!((r.num_samples, r.ncc_accuracy), (9000, 1.0));
    assert_eq!(r.class_counts, [3000, 3000, 3000]);
}

#[test]
fn reports_round_trip_through_json() {
    let (features, labels, centres) = clusters(&[5, 7, 6], 4, 1.0, 4);
    let clf = Classifier {
        weight: &centres,
        bias: None,
    };
    let r = collapse_report(&features, &labels, 3, Some(clf), GlobalMean::Unweighted).unwrap();
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
    let same = Tensor::ones([6, 2], F64);
    let y = Tensor::from_slice(&[0i64, 1, 2, 0, 1, 2]);
    let r = collapse_report(&same, &y, 3, None, GlobalMean::Weighted).unwrap();
    assert_eq!(r.rank, 0);
    assert!(r.nc1.is_nan() && r.nc2.equinorm.is_nan());
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.contains("\"nc1\":null"), "{json}");
    assert!(json.contains("\"equinorm\":null"), "{json}");
    let back: CollapseReport = serde_json::from_str(&json).unwrap();
    assert!(back.nc1.is_nan() && back.cdnv.is_nan() && back.nc2.equinorm.is_nan());
    assert_eq!(back.class_counts, r.class_counts);
}

#[test]
fn inputs_are_not_modified() {
    let (features, labels, centres) = clusters(&[5, 6, 7], 4, 1.0, 6);
    let (f_copy, c_copy) = (features.copy(), centres.copy());
    let clf = Classifier {
        weight: &centres,
        bias: None,
    };
    collapse_report(&features, &labels, 3, Some(clf), GlobalMean::Weighted).unwrap();
    assert!(features.equal(&f_copy) && centres.equal(&c_copy));
}
