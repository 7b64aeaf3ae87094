//! Pass 2: projected within-class scatter, per-class variances and NCC/classifier decisions.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

use crate::geometry::{cdnv, Nc2};
use crate::input::{check_batch, check_counts, Label, Matrix, Values};
use crate::means::{dot, gram};
use crate::report::{ClassifierReport, CollapseReport};
use crate::{MeanStats, MetricsError};

/// Rows converted to f64 at a time: bounds pass 2's scratch memory at `CHUNK_ROWS × d` f64
/// whatever the batch size, while keeping the products large enough for a fast GEMM.
const CHUNK_ROWS: usize = 256;

/// A linear classifier `x ↦ W x + b` on the layer's features: `weight` `[C, d]`, `bias` `[C]`,
/// f32 or f64. Both are copied (they are small) to f64.
#[derive(Clone, Copy, Debug)]
pub struct Classifier<'a> {
    /// `W`, `[C, d]`: row `c` scores class `c`.
    pub weight: Matrix<'a>,
    /// `b`, `[C]`, if any.
    pub bias: Option<Values<'a>>,
}

/// The classifier in f64, with its pass-independent measures.
#[derive(Clone, Debug)]
pub(crate) struct PreparedClassifier {
    /// `W`, `[C, d]` row-major.
    pub weight: Vec<f64>,
    /// `W μ_G + b`: logits are computed from centred features, `W h + b = W (h − μ_G) + W μ_G + b`.
    pub shifted_bias: Vec<f64>,
    nc2: Nc2,
    nc3: f64,
}

impl PreparedClassifier {
    fn new(stats: &MeanStats, clf: Classifier<'_>) -> Result<Self, MetricsError> {
        let (c, d) = (stats.num_classes(), stats.dim());
        let (rows, cols) = (clf.weight.rows(), clf.weight.cols());
        if (rows, cols) != (c, d) {
            return Err(MetricsError::ClassifierShape {
                part: "weight",
                expected: vec![c, d],
                got: vec![rows, cols],
            });
        }
        check_classifier_finite("weight", &clf.weight.values())?;
        let weight = clf.weight.values().to_f64();
        let bias = match clf.bias {
            None => vec![0.0; c],
            Some(b) if b.len() != c => {
                return Err(MetricsError::ClassifierShape {
                    part: "bias",
                    expected: vec![c],
                    got: vec![b.len()],
                })
            }
            Some(b) => {
                check_classifier_finite("bias", &b)?;
                b.to_f64()
            }
        };
        // NC3 (Papyan et al. 2020): ‖W/‖W‖_F − M̃ᵀ/‖M̃‖_F‖_F², rows of M̃ᵀ = centred means.
        let centred = stats.centred_means();
        let (w_norm, m_norm) = (dot(&weight, &weight).sqrt(), dot(centred, centred).sqrt());
        let nc3 = weight
            .iter()
            .zip(centred)
            .map(|(w, m)| (w / w_norm - m / m_norm).powi(2))
            .sum();
        let shifted_bias = weight
            .chunks_exact(d)
            .zip(&bias)
            .map(|(w, b)| dot(w, stats.global_mean()) + b)
            .collect();
        Ok(PreparedClassifier {
            nc2: Nc2::from_gram(&gram(&weight, c, d), c),
            weight,
            shifted_bias,
            nc3,
        })
    }
}

fn check_classifier_finite(part: &'static str, values: &Values<'_>) -> Result<(), MetricsError> {
    match values.count_non_finite() {
        0 => Ok(()),
        count => Err(MetricsError::ClassifierNonFinite { part, count }),
    }
}

/// What pass 2 adds up: everything [`CollapseAccumulator::finalize`] needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Pass2Totals {
    /// `Σ_i ‖S⁻¹Aᵀ(h_i − μ_{y_i})‖²`.
    pub projected_sq: f64,
    /// `Σ_{y_i=c} ‖h_i − μ_c‖²`, per class.
    pub variance_sums: Vec<f64>,
    pub counts: Vec<u64>,
    pub ncc_correct: u64,
    pub classifier_correct: u64,
    /// Samples where the classifier and the NCC rule disagree.
    pub mismatches: u64,
}

impl Pass2Totals {
    fn new(num_classes: usize) -> Self {
        Pass2Totals {
            variance_sums: vec![0.0; num_classes],
            counts: vec![0; num_classes],
            ..Default::default()
        }
    }

    #[cfg_attr(not(feature = "tch"), allow(dead_code))] // only tensor batches merge totals
    pub(crate) fn add(&mut self, other: &Pass2Totals) {
        self.projected_sq += other.projected_sq;
        for (a, b) in self.variance_sums.iter_mut().zip(&other.variance_sums) {
            *a += b;
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.ncc_correct += other.ncc_correct;
        self.classifier_correct += other.classifier_correct;
        self.mismatches += other.mismatches;
    }
}

/// Pass 2 accumulator, built from the [`MeanStats`] of pass 1.
///
/// Feed it the same data as pass 1 (a training probe: every field of the report is the
/// textbook value) or other data, e.g. a test set. On other data the class means stay the
/// training means: NCC accuracy, classifier accuracy and NC4 are then the usual test-set
/// measures, while NC1, CDNV and the class variances measure that data's scatter around the
/// *training* means. Memory `O(C·d)` plus `256 × d` f64 of scratch, whatever the batch size;
/// cost `O(B·d·C)` per batch; no `d × d` matrix is formed.
pub struct CollapseAccumulator {
    pub(crate) stats: MeanStats,
    pub(crate) classifier: Option<PreparedClassifier>,
    /// `[M̃ | Wᵀ]`, `d × (C + C_w)` column-major: `h̃·μ̃_c` and `h̃·w_c` come from one product.
    products: Vec<f64>,
    totals: Pass2Totals,
    /// Reused per chunk: centred rows `[CHUNK_ROWS, d]`, their products and projections.
    rows: Vec<f64>,
    dots: Vec<f64>,
    projected: Vec<f64>,
    /// Totals of tensor batches, kept on their device until [`finalize`](Self::finalize).
    #[cfg(feature = "tch")]
    pub(crate) device: Option<crate::tensor::DevicePass2>,
}

impl CollapseAccumulator {
    /// An empty accumulator for the layer described by `stats`, with an optional classifier
    /// (`W` `[C, d]`, `b` `[C]`) that reads this layer's features.
    pub fn new(
        stats: &MeanStats,
        classifier: Option<Classifier<'_>>,
    ) -> Result<Self, MetricsError> {
        let classifier = classifier
            .map(|clf| PreparedClassifier::new(stats, clf))
            .transpose()?;
        let mut products = stats.centred_means().to_vec();
        if let Some(clf) = &classifier {
            products.extend_from_slice(&clf.weight);
        }
        Ok(CollapseAccumulator {
            classifier,
            products,
            totals: Pass2Totals::new(stats.num_classes()),
            stats: stats.clone(),
            rows: Vec::new(),
            dots: Vec::new(),
            projected: Vec::new(),
            #[cfg(feature = "tch")]
            device: None,
        })
    }

    /// Adds a batch, with the same rules as [`ClassMeans::update`](crate::ClassMeans::update).
    /// On error the accumulator is unchanged.
    pub fn update<L: Label>(
        &mut self,
        features: Matrix<'_>,
        labels: &[L],
    ) -> Result<(), MetricsError> {
        let stats = &self.stats;
        let classes = check_batch(&features, labels, stats.num_classes(), stats.dim())?;
        // Every check is done: what follows cannot fail, so no batch is ever half counted.
        for start in (0..features.rows()).step_by(CHUNK_ROWS) {
            let len = CHUNK_ROWS.min(features.rows() - start);
            self.add_chunk(
                features.slice_rows(start, len),
                &classes[start..start + len],
            );
        }
        Ok(())
    }

    // Over 60 lines on purpose: one chunk's pass 2 in the order of the formulas (centre, one
    // product for NCC and classifier, within-class residuals, NC1 projection), sharing the
    // reused buffers; split up it would scatter one derivation over several functions.
    fn add_chunk(&mut self, features: Matrix<'_>, classes: &[usize]) {
        let stats = &self.stats;
        let (b, d, c) = (features.rows(), stats.dim(), stats.num_classes());
        let k = self.products.len() / d;
        let centred_means = stats.centred_means();
        // h̃ = h − μ_G in f64.
        self.rows.resize(b * d, 0.0);
        features.values().copy_to_f64(0, &mut self.rows);
        for row in self.rows.chunks_exact_mut(d) {
            row.iter_mut()
                .zip(stats.global_mean())
                .for_each(|(x, g)| *x -= g);
        }
        self.dots.resize(b * k, 0.0);
        matmul(
            MatMut::from_row_major_slice_mut(&mut self.dots, b, k),
            Accum::Replace,
            MatRef::from_row_major_slice(&self.rows, b, d),
            MatRef::from_column_major_slice(&self.products, d, k),
            1.0,
            Par::Seq,
        );
        let gram = stats.gram();
        let totals = &mut self.totals;
        for (dots, &y) in self.dots.chunks_exact(k).zip(classes) {
            // argmin_c ‖h − μ_c‖² = argmin_c (‖μ̃_c‖² − 2 h̃·μ̃_c), μ̃_c = μ_c − μ_G.
            let ncc = first_best((0..c).map(|j| gram[j * c + j] - 2.0 * dots[j]), |a, b| {
                a < b
            });
            totals.ncc_correct += u64::from(ncc == y);
            if let Some(clf) = &self.classifier {
                let logits = dots[c..].iter().zip(&clf.shifted_bias).map(|(p, b)| p + b);
                let predicted = first_best(logits, |a, b| a > b);
                totals.classifier_correct += u64::from(predicted == y);
                totals.mismatches += u64::from(predicted != ncc);
            }
        }
        // h̃_i − μ̃_{y_i} = h_i − μ_{y_i}, in place.
        for (row, &y) in self.rows.chunks_exact_mut(d).zip(classes) {
            let mean = &centred_means[y * d..(y + 1) * d];
            let mut sq = 0.0;
            for (x, m) in row.iter_mut().zip(mean) {
                *x -= m;
                sq += *x * *x;
            }
            totals.variance_sums[y] += sq;
            totals.counts[y] += 1;
        }
        let r = stats.rank();
        if r > 0 {
            // ‖S⁻¹ Aᵀ (h_i − μ_{y_i})‖²: the NC1 summand, O(d·r) per sample.
            self.projected.resize(b * r, 0.0);
            matmul(
                MatMut::from_row_major_slice_mut(&mut self.projected, b, r),
                Accum::Replace,
                MatRef::from_row_major_slice(&self.rows, b, d),
                MatRef::from_column_major_slice(stats.basis(), d, r),
                1.0,
                Par::Seq,
            );
            let inv = stats.inv_singular();
            totals.projected_sq += self
                .projected
                .chunks_exact(r)
                .flat_map(|p| p.iter().zip(inv).map(|(x, s)| (x * s).powi(2)))
                .sum::<f64>();
        }
    }

    /// The report. Fails with [`MetricsError::EmptyClasses`] if a class got no sample in pass 2
    /// (its variance would be undefined).
    #[cfg_attr(not(feature = "tch"), allow(unused_mut))]
    pub fn finalize(mut self) -> Result<CollapseReport, MetricsError> {
        #[cfg(feature = "tch")]
        if let Some(device) = self.device.take() {
            self.totals.add(&device.totals()?);
        }
        let (stats, t) = (&self.stats, &self.totals);
        let c = stats.num_classes();
        check_counts(&t.counts, "pass 2 (collapse accumulator)")?;
        let n: u64 = t.counts.iter().sum();
        let nf = n as f64;
        let class_variances: Vec<f64> = t
            .variance_sums
            .iter()
            .zip(&t.counts)
            .map(|(s, &k)| s / k as f64)
            .collect();
        let nc1 = if stats.rank() == 0 {
            f64::NAN
        } else {
            t.projected_sq / nf
        };
        let fraction = |count: u64| count as f64 / nf;
        let classifier = self.classifier.as_ref().map(|clf| ClassifierReport {
            nc2: clf.nc2,
            nc3: clf.nc3,
            nc4: fraction(t.mismatches),
            accuracy: fraction(t.classifier_correct),
        });
        Ok(CollapseReport {
            global_mean: stats.global_mean_kind(),
            num_classes: c,
            dim: stats.dim(),
            rank: stats.rank(),
            num_samples: n,
            nc1,
            nc2: stats.nc2(),
            cdnv: cdnv(stats.gram(), &class_variances, c),
            ncc_accuracy: fraction(t.ncc_correct),
            within_trace: t.variance_sums.iter().sum::<f64>() / nf,
            between_trace: stats.singular_values().iter().map(|s| s * s).sum::<f64>() / c as f64,
            class_variances,
            class_counts: t.counts.clone(),
            classifier,
        })
    }
}

/// The index of the first value that no later value beats (`better(later, best)`): the first
/// minimum or maximum, as `argmin`/`argmax` in PyTorch and numpy.
fn first_best(values: impl Iterator<Item = f64>, better: impl Fn(f64, f64) -> bool) -> usize {
    let mut best = (0, f64::NAN);
    for (i, v) in values.enumerate() {
        if i == 0 || better(v, best.1) {
            best = (i, v);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::first_best;

    #[test]
    fn ties_go_to_the_first_index() {
        let lt = |a: f64, b: f64| a < b;
        assert_eq!(first_best([3.0, 1.0, 1.0, 2.0].into_iter(), lt), 1);
        assert_eq!(first_best([2.0, 5.0, 5.0].into_iter(), |a, b| a > b), 1);
        assert_eq!(first_best([4.0].into_iter(), lt), 0);
    }
}
