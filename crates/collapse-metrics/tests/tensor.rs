//! `tch::Tensor` batches (feature `tch`): the on-device accumulation gives the host path's
//! report, every dtype is accepted, and bad tensors are errors (value checks at `finalize`).
#![cfg(feature = "tch")]

mod common;

use collapse_metrics::tensor::TensorClassifier;
use collapse_metrics::{
    ClassMeans, Classifier, CollapseAccumulator, CollapseReport, GlobalMean, Matrix, MetricsError,
    Values,
};
use common::{assert_reports_close, clusters, streamed, uniform, Layer};
use tch::{Device, Kind, Tensor};

fn tensors(layer: &Layer, device: Device) -> (Tensor, Tensor) {
    let n = layer.labels.len() as i64;
    (
        Tensor::from_slice(&layer.features)
            .reshape([n, layer.dim as i64])
            .to_device(device),
        Tensor::from_slice(&layer.labels).to_device(device),
    )
}

/// Both passes over tensors in batches of `batch` rows.
fn tensor_report(
    features: &Tensor,
    labels: &Tensor,
    c: usize,
    classifier: Option<TensorClassifier<'_>>,
    gm: GlobalMean,
    batch: i64,
) -> Result<CollapseReport, MetricsError> {
    let dim = features.size()[1] as usize;
    let (fs, ys) = (features.split(batch, 0), labels.split(batch, 0));
    let mut pass1 = ClassMeans::new(c, dim)?;
    for (f, y) in fs.iter().zip(&ys) {
        pass1.update_tensor(f, y)?;
    }
    let stats = pass1.finalize(gm)?;
    let mut pass2 = CollapseAccumulator::with_tensor_classifier(&stats, classifier)?;
    for (f, y) in fs.iter().zip(&ys) {
        pass2.update_tensor(f, y)?;
    }
    pass2.finalize()
}

/// The tensor path against the host path on the same data (`device` CPU in CI, CUDA on a GPU).
fn device_matches_host(device: Device) {
    let cases: [(&[usize], usize, GlobalMean, bool); 4] = [
        (&[20, 20, 20], 5, GlobalMean::Weighted, true),
        (&[8, 30, 15, 11], 12, GlobalMean::Unweighted, true),
        (&[9, 14, 6, 10, 12, 7, 8], 4, GlobalMean::Weighted, false), // d < C − 1
        (&[300, 250], 8, GlobalMean::Unweighted, true),              // > 256 rows: host chunks
    ];
    for (seed, (counts, d, gm, with_bias)) in cases.into_iter().enumerate() {
        let c = counts.len();
        let (layer, centres) = clusters(counts, d, 3.0, seed as u64 + 20);
        let weight: Vec<f64> = centres
            .iter()
            .zip(uniform(c, d, 5))
            .map(|(m, u)| m + 0.8 * u)
            .collect();
        let bias = uniform(1, c, 6);
        let host_clf = Classifier {
            weight: Matrix::new(&weight, c, d).unwrap(),
            bias: with_bias.then_some(Values::from(&bias)),
        };
        let want = streamed(layer.matrix(), &layer.labels, c, Some(host_clf), gm, 17).unwrap();
        let (f, y) = tensors(&layer, device);
        let (w, b) = (
            Tensor::from_slice(&weight).reshape([c as i64, d as i64]),
            Tensor::from_slice(&bias),
        );
        let clf = TensorClassifier {
            weight: &w,
            bias: with_bias.then_some(&b),
        };
        let got = tensor_report(&f, &y, c, Some(clf), gm, 17).unwrap();
        assert!(want.nc1 > 0.01 && want.ncc_accuracy < 1.0, "{want:?}");
        assert_reports_close(&got, &want, 1e-12);
    }
}

#[test]
fn cpu_tensors_match_host_slices() {
    device_matches_host(Device::Cpu);
}

#[test]
#[ignore = "needs a CUDA device: run with --ignored on a GPU machine"]
fn cuda_tensors_match_host_slices() {
    assert!(tch::Cuda::is_available(), "no CUDA device");
    device_matches_host(Device::Cuda(0));
}

/// Host and tensor batches mix in one accumulator; a test set may be measured either way.
#[test]
fn host_and_tensor_batches_mix() {
    let (train, centres) = clusters(&[12, 15, 9], 6, 1.5, 3);
    let (test, _) = clusters(&[7, 5, 8], 6, 1.5, 3 ^ 0xFF);
    let clf = Classifier {
        weight: Matrix::new(&centres, 3, 6).unwrap(),
        bias: None,
    };
    let gm = GlobalMean::Unweighted;
    let mut host1 = ClassMeans::new(3, 6).unwrap();
    host1.update(train.matrix(), &train.labels).unwrap();
    let host_stats = host1.finalize(gm).unwrap();
    let mut host2 = CollapseAccumulator::new(&host_stats, Some(clf)).unwrap();
    host2.update(test.matrix(), &test.labels).unwrap();
    let want = host2.finalize().unwrap();

    let (train_f, train_y) = tensors(&train, Device::Cpu);
    let (test_f, test_y) = tensors(&test, Device::Cpu);
    let mut mixed1 = ClassMeans::new(3, 6).unwrap();
    mixed1
        .update(train.matrix().slice_rows(0, 10), &train.labels[..10])
        .unwrap();
    mixed1
        .update_tensor(&train_f.narrow(0, 10, 26), &train_y.narrow(0, 10, 26))
        .unwrap();
    let stats = mixed1.finalize(gm).unwrap();
    assert_eq!(stats.counts(), host_stats.counts());
    let mut mixed2 = CollapseAccumulator::new(&stats, Some(clf)).unwrap();
    mixed2
        .update_tensor(&test_f.narrow(0, 0, 13), &test_y.narrow(0, 0, 13))
        .unwrap();
    mixed2
        .update(test.matrix().slice_rows(13, 7), &test.labels[13..])
        .unwrap();
    assert_reports_close(&mixed2.finalize().unwrap(), &want, 1e-12);
}

/// Any float dtype: the report of f32/bf16/f16 features equals that of the same values in f64.
#[test]
fn every_float_dtype_accumulates_in_f64() {
    let (layer, _) = clusters(&[10, 12, 11], 8, 1.0, 5);
    let (features, labels) = tensors(&layer, Device::Cpu);
    let gm = GlobalMean::Weighted;
    for kind in [Kind::Float, Kind::BFloat16, Kind::Half] {
        let low = features.to_kind(kind);
        let got = tensor_report(&low, &labels, 3, None, gm, 7).unwrap();
        let want = tensor_report(&low.to_kind(Kind::Double), &labels, 3, None, gm, 7).unwrap();
        assert_eq!(got, want, "{kind:?}");
    }
    // Integer label dtypes are all accepted.
    for kind in [Kind::Uint8, Kind::Int8, Kind::Int, Kind::Int16] {
        let got = tensor_report(&features, &labels.to_kind(kind), 3, None, gm, 7);
        assert_eq!(got.unwrap().num_samples, 33, "{kind:?}");
    }
}

#[test]
fn tensor_metadata_errors_are_immediate() {
    let mut acc = ClassMeans::new(3, 4).unwrap();
    let f = Tensor::zeros([5, 4], (Kind::Double, Device::Cpu));
    let y = Tensor::from_slice(&[0i64, 1, 2, 0, 1]);

    let err = acc
        .update_tensor(&Tensor::zeros([5, 2, 2], (Kind::Float, Device::Cpu)), &y)
        .unwrap_err();
    assert!(matches!(&err, MetricsError::FeatureShape { shape } if shape == &[5, 2, 2]));
    assert!(err.to_string().contains("flatten"), "{err}");
    let err = acc
        .update_tensor(&Tensor::zeros([5, 6], (Kind::Float, Device::Cpu)), &y)
        .unwrap_err();
    assert!(matches!(
        err,
        MetricsError::FeatureDim {
            expected: 4,
            got: 6
        }
    ));
    let err = acc.update_tensor(&f, &y.narrow(0, 0, 4)).unwrap_err();
    assert!(matches!(
        err,
        MetricsError::LengthMismatch {
            features: 5,
            labels: 4
        }
    ));
    let err = acc.update_tensor(&f, &y.reshape([5, 1])).unwrap_err();
    assert!(matches!(err, MetricsError::LabelShape { .. }));
    let err = acc.update_tensor(&f, &y.to_kind(Kind::Float)).unwrap_err();
    assert!(matches!(err, MetricsError::LabelKind { kind: Kind::Float }));
    let err = acc.update_tensor(&f.to_kind(Kind::Int64), &y).unwrap_err();
    assert!(matches!(
        err,
        MetricsError::FeatureKind { kind: Kind::Int64 }
    ));
    // None of these reached the accumulator.
    acc.update_tensor(&(f + 1.0), &y).unwrap();
    let stats = acc.finalize(GlobalMean::Weighted).unwrap();
    assert_eq!(stats.counts(), [2, 2, 1]);

    let classifier_error = |w: &Tensor| {
        let clf = TensorClassifier {
            weight: w,
            bias: None,
        };
        CollapseAccumulator::with_tensor_classifier(&stats, Some(clf))
            .err()
            .expect("rejected")
    };
    assert!(matches!(
        classifier_error(&Tensor::zeros([3, 5], (Kind::Float, Device::Cpu))),
        MetricsError::ClassifierShape { part: "weight", .. }
    ));
    assert!(matches!(
        classifier_error(&Tensor::zeros([3, 4], (Kind::Int64, Device::Cpu))),
        MetricsError::ClassifierKind { part: "weight", .. }
    ));
}

#[test]
fn bad_values_fail_the_pass_at_finalize() {
    let (layer, _) = clusters(&[6, 5, 7], 4, 1.0, 8);
    let (f, y) = tensors(&layer, Device::Cpu);
    let bad = Tensor::from_slice(&[0i64, 3, 2, 7, 1]);
    let negative = Tensor::from_slice(&[0i64, -1, 2, 0, 1]);
    let five = f.narrow(0, 0, 5);
    for (labels, value, count) in [(&bad, 7, 2), (&negative, -1, 1)] {
        let mut acc = ClassMeans::new(3, 4).unwrap();
        acc.update_tensor(&f, &y).unwrap();
        acc.update_tensor(&five, labels).unwrap();
        let err = acc.finalize(GlobalMean::Weighted).unwrap_err();
        assert!(
            matches!(err, MetricsError::LabelOutOfRange { value: v, count: n, num_classes: 3 } if v == value && n == count),
            "{err}"
        );
    }
    let nan = f.copy();
    let _ = nan.get(1).get(2).fill_(f64::NAN);
    let _ = nan.get(3).fill_(f64::INFINITY);
    let mut acc = ClassMeans::new(3, 4).unwrap();
    acc.update_tensor(&nan, &y).unwrap();
    acc.update_tensor(&nan.to_kind(Kind::Half), &y).unwrap(); // found in any dtype
    let err = acc.finalize(GlobalMean::Weighted).unwrap_err();
    assert!(
        matches!(err, MetricsError::NonFiniteBatches { batches: 2 }),
        "{err}"
    );
    assert!(err.to_string().starts_with("features:"), "{err}");

    // The same in pass 2.
    let mut pass1 = ClassMeans::new(3, 4).unwrap();
    pass1.update_tensor(&f, &y).unwrap();
    let stats = pass1.finalize(GlobalMean::Weighted).unwrap();
    let mut pass2 = CollapseAccumulator::new(&stats, None).unwrap();
    pass2.update_tensor(&f, &y).unwrap();
    pass2.update_tensor(&five, &bad).unwrap();
    assert!(matches!(
        pass2.finalize(),
        Err(MetricsError::LabelOutOfRange { value: 7, .. })
    ));
    let mut pass2 = CollapseAccumulator::new(&stats, None).unwrap();
    pass2.update_tensor(&nan, &y).unwrap();
    assert!(matches!(
        pass2.finalize(),
        Err(MetricsError::NonFiniteBatches { batches: 1 })
    ));
}

#[test]
fn inputs_are_not_modified() {
    let (layer, centres) = clusters(&[5, 6, 7], 4, 1.0, 6);
    let (f, y) = tensors(&layer, Device::Cpu);
    let w = Tensor::from_slice(&centres).reshape([3, 4]);
    let (f_copy, w_copy) = (f.copy(), w.copy());
    let clf = TensorClassifier {
        weight: &w,
        bias: None,
    };
    tensor_report(&f, &y, 3, Some(clf), GlobalMean::Weighted, 100).unwrap();
    assert!(f.equal(&f_copy) && w.equal(&w_copy));
}
