//! Measuring a model without training it: the per-layer collapse reports, test loss and
//! accuracy. The trainer calls it after every epoch; `etf diagnose` calls it on a saved model.

use crate::model::{CollapseModel, Taps, CLASSIFIER};
use crate::record::LayerRecord;
use crate::TrainError;
use collapse_metrics::tensor::TensorClassifier;
use collapse_metrics::{ClassMeans, CollapseAccumulator, GlobalMean, MeanStats};
use etf_data::Split;
use tch::{Device, Kind, Reduction, Tensor};

/// How to measure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measure {
    /// Batch size of the measuring passes.
    pub batch_size: usize,
    /// Global-mean convention of the collapse reports.
    pub global_mean: GlobalMean,
    /// The model's device (batches are moved there).
    pub device: Device,
}

/// What [`evaluate`] measures.
pub struct Evaluation {
    /// Per tapped layer.
    pub layers: Vec<LayerRecord>,
    /// The classifier's input features.
    pub classifier: LayerRecord,
    /// Mean loss on the test split.
    pub test_loss: f64,
    /// Accuracy on the test split.
    pub test_accuracy: f64,
}

/// The per-layer collapse reports of `model` in evaluation mode, without gradients: class means
/// of every tapped layer from `probe` (pass 1), reports on `probe` (pass 2) and on `test`
/// against the probe's means, with the test loss and accuracy.
pub fn evaluate<M: CollapseModel>(
    model: &M,
    probe: &Split,
    test: &Split,
    how: &Measure,
) -> Result<Evaluation, TrainError<M::Error>> {
    tch::no_grad(|| {
        let stats = class_means(model, probe, how)?;
        let mut train_acc = accumulators(model, &stats)?;
        each_batch(model, probe, how, |taps, ys| {
            update(&mut train_acc, taps, ys)
        })?;
        let mut test_acc = accumulators(model, &stats)?;
        let mut loss_sum = Tensor::zeros([], (Kind::Double, how.device));
        let mut correct = Tensor::zeros([], (Kind::Int64, how.device));
        each_batch(model, test, how, |taps, ys| {
            update(&mut test_acc, taps, ys)?;
            let loss =
                taps.logits
                    .f_cross_entropy_loss::<Tensor>(ys, None, Reduction::Sum, -100, 0.0)?;
            loss_sum += loss.to_kind(Kind::Double);
            correct += taps.logits.argmax(-1, false).eq_tensor(ys).sum(Kind::Int64);
            Ok(())
        })?;
        let mut layers = Vec::with_capacity(train_acc.len());
        let names = model.layer_names().into_iter().chain([CLASSIFIER.into()]);
        for ((tr, te), name) in train_acc.into_iter().zip(test_acc).zip(names) {
            layers.push(LayerRecord {
                name,
                train: tr.finalize()?,
                test: te.finalize()?,
            });
        }
        // The last accumulator is the classifier's input (see `Taps::features`).
        let classifier = layers
            .pop()
            .ok_or(TrainError::EmptyData("classifier features"))?;
        let n_test = test.len() as f64;
        Ok(Evaluation {
            layers,
            classifier,
            test_loss: loss_sum.double_value(&[]) / n_test,
            test_accuracy: correct.int64_value(&[]) as f64 / n_test,
        })
    })
}

/// Runs `model` in evaluation mode over `split` and hands every batch's taps and labels to `f`.
fn each_batch<M: CollapseModel>(
    model: &M,
    split: &Split,
    how: &Measure,
    mut f: impl FnMut(&Taps, &Tensor) -> Result<(), TrainError<M::Error>>,
) -> Result<(), TrainError<M::Error>> {
    for (xs, ys) in split.batches(how.batch_size, None, how.device)? {
        let taps = model.forward_taps(&xs, false).map_err(TrainError::Model)?;
        f(&taps, &ys)?;
    }
    Ok(())
}

/// Pass 1: class means of every tapped layer and of the classifier's input on `probe`.
fn class_means<M: CollapseModel>(
    model: &M,
    probe: &Split,
    how: &Measure,
) -> Result<Vec<MeanStats>, TrainError<M::Error>> {
    let c = probe.num_classes;
    let mut means: Option<Vec<ClassMeans>> = None;
    each_batch(model, probe, how, |taps, ys| {
        let acc = match means.as_mut() {
            Some(m) => m,
            None => means.insert(
                taps.features()
                    .map(|f| ClassMeans::new(c, f.size()[1] as usize))
                    .collect::<Result<_, _>>()?,
            ),
        };
        for (m, f) in acc.iter_mut().zip(taps.features()) {
            m.update_tensor(f, ys)?;
        }
        Ok(())
    })?;
    Ok(means
        .ok_or(TrainError::EmptyData("probe"))?
        .into_iter()
        .map(|m| m.finalize(how.global_mean))
        .collect::<Result<_, _>>()?)
}

/// One accumulator per feature tensor against `stats`; the last (the classifier's input) also
/// measures the classifier's NC2/NC3/NC4.
fn accumulators<M: CollapseModel>(
    model: &M,
    stats: &[MeanStats],
) -> Result<Vec<CollapseAccumulator>, TrainError<M::Error>> {
    let (w, b) = model.classifier();
    let last = stats.len() - 1;
    stats
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let cls = (i == last).then_some(TensorClassifier {
                weight: &w,
                bias: b.as_ref(),
            });
            Ok(CollapseAccumulator::with_tensor_classifier(s, cls)?)
        })
        .collect()
}

fn update<E: std::error::Error + 'static>(
    acc: &mut [CollapseAccumulator],
    taps: &Taps,
    ys: &Tensor,
) -> Result<(), TrainError<E>> {
    for (a, f) in acc.iter_mut().zip(taps.features()) {
        a.update_tensor(f, ys)?;
    }
    Ok(())
}
