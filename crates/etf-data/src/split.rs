//! One split (train or test) of a data set, and the seeded batch iterator over it.

use std::path::PathBuf;

use tch::{Device, Kind, Tensor};

use crate::error::{DataError, Result};
use crate::rng::{permutation, Rng};

/// The samples of one split, held in memory as tensors on one device.
///
/// `features` is `f32 [N, ...sample_shape]` (already normalised), `labels` is `i64 [N]` with
/// values in `0..num_classes`.
#[derive(Debug)]
pub struct Split {
    /// Inputs, `f32 [N, ...sample_shape]`.
    pub features: Tensor,
    /// Class indices, `i64 [N]`.
    pub labels: Tensor,
    /// Number of classes of the data set (a split may lack some of them).
    pub num_classes: usize,
}

impl Split {
    /// Builds a split, checking that the shapes agree, that `labels` is a 1-D integer tensor
    /// and that every label is in `0..num_classes`. Features are converted to `f32` and labels
    /// to `i64` when they are of another kind.
    pub fn new(features: Tensor, labels: Tensor, num_classes: usize) -> Result<Self> {
        let fsize = features.size();
        let lsize = labels.size();
        if fsize.is_empty() || lsize.len() != 1 || fsize[0] != lsize[0] {
            return Err(DataError::InvalidConfig(format!(
                "features {fsize:?} and labels {lsize:?} must be [N, ...] and [N]"
            )));
        }
        let kind = labels.f_kind()?;
        if !matches!(
            kind,
            Kind::Uint8 | Kind::Int8 | Kind::Int16 | Kind::Int | Kind::Int64
        ) {
            return Err(DataError::InvalidConfig(format!(
                "labels must be integers, got {kind:?}"
            )));
        }
        let split = Self {
            features: features.f_to_kind(Kind::Float)?,
            labels: labels.f_to_kind(Kind::Int64)?,
            num_classes,
        };
        for (index, &label) in split.labels_vec()?.iter().enumerate() {
            if label < 0 || label as usize >= num_classes {
                return Err(DataError::LabelOutOfRange {
                    path: PathBuf::new(),
                    index,
                    label,
                    num_classes,
                });
            }
        }
        Ok(split)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.size().first().copied().unwrap_or(0) as usize
    }

    /// Whether the split has no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Shape of one sample, e.g. `[1, 28, 28]`.
    pub fn sample_shape(&self) -> Vec<i64> {
        self.features.size().split_off(1)
    }

    /// The device the tensors live on.
    pub fn device(&self) -> Device {
        self.features.device()
    }

    /// A second handle on the same tensors (no copy; in-place changes show in both).
    pub fn shallow_clone(&self) -> Self {
        Self {
            features: self.features.shallow_clone(),
            labels: self.labels.shallow_clone(),
            num_classes: self.num_classes,
        }
    }

    /// The split on `device` (no copy when it is there already). Fails, rather than aborting,
    /// for a device that is not available.
    pub fn to_device(&self, device: Device) -> Result<Self> {
        Ok(Self {
            features: self.features.f_to_device(device)?,
            labels: self.labels.f_to_device(device)?,
            num_classes: self.num_classes,
        })
    }

    /// Features flattened to `[N, prod(sample_shape)]` (a view when possible), e.g. the input of
    /// an MLP.
    pub fn flat_features(&self) -> Tensor {
        let size = self.features.size();
        // An explicit width (not -1), so that an empty split reshapes too.
        let width: i64 = size.iter().skip(1).product();
        self.features
            .reshape([size.first().copied().unwrap_or(1), width])
    }

    /// The labels copied to a `Vec` on the host.
    pub fn labels_vec(&self) -> Result<Vec<i64>> {
        Ok(Vec::<i64>::try_from(
            &self.labels.f_to_device(Device::Cpu)?,
        )?)
    }

    /// Number of samples of each class, `[num_classes]`.
    pub fn class_counts(&self) -> Result<Vec<usize>> {
        let mut counts = vec![0usize; self.num_classes];
        for label in self.labels_vec()? {
            if let Some(c) = counts.get_mut(label as usize) {
                *c += 1;
            }
        }
        Ok(counts)
    }

    /// The samples at `indices`, in that order (repeats allowed).
    pub fn subset(&self, indices: &[i64]) -> Result<Self> {
        let len = self.len();
        if let Some(&index) = indices.iter().find(|&&i| i < 0 || i as usize >= len) {
            return Err(DataError::IndexOutOfRange { index, len });
        }
        let index = Tensor::f_from_slice(indices)?.f_to_device(self.device())?;
        Ok(Self {
            features: self.features.f_index_select(0, &index)?,
            labels: self.labels.f_index_select(0, &index)?,
            num_classes: self.num_classes,
        })
    }

    /// A class-balanced random subset of `n` samples, fixed by `seed`: `⌊n/C⌋` of each class,
    /// plus one more for each of the first `n mod C` classes. Samples keep their order in the
    /// split. Fails with [`DataError::NotEnoughSamples`] when a class has too few samples.
    /// This is the NCC probe set of the adaptive schedule.
    pub fn balanced_subset(&self, n: usize, seed: u64) -> Result<Self> {
        self.subset(&self.balanced_indices(n, seed)?)
    }

    /// The indices (ascending) that [`Split::balanced_subset`] picks.
    pub fn balanced_indices(&self, n: usize, seed: u64) -> Result<Vec<i64>> {
        let classes = self.num_classes;
        if classes == 0 {
            return Err(DataError::InvalidConfig(
                "a balanced subset needs at least one class".into(),
            ));
        }
        let mut by_class: Vec<Vec<i64>> = vec![Vec::new(); classes];
        for (i, label) in self.labels_vec()?.into_iter().enumerate() {
            if let Some(members) = by_class.get_mut(label as usize) {
                members.push(i as i64);
            }
        }
        let mut rng = Rng::new(seed);
        let mut picked = Vec::with_capacity(n);
        for (class, members) in by_class.iter_mut().enumerate() {
            let needed = n / classes + usize::from(class < n % classes);
            if members.len() < needed {
                return Err(DataError::NotEnoughSamples {
                    class,
                    needed,
                    available: members.len(),
                    requested: n,
                });
            }
            rng.shuffle(members);
            picked.extend_from_slice(&members[..needed]);
        }
        picked.sort_unstable();
        Ok(picked)
    }

    /// Iterates over mini-batches `(x, y)` on `device`.
    ///
    /// With `shuffle: Some(seed)` the order is a permutation computed on the host from `seed`,
    /// so it is the same on CPU and CUDA; with `None` the batches follow the split's order.
    /// The split is moved to `device` once here (no copy if it is there already, so call
    /// [`Split::to_device`] once before the epochs to avoid a copy per epoch); each batch is
    /// then gathered on the device with `index_select`, without host→device traffic.
    /// The last batch may be smaller, unless [`BatchIter::drop_last`] is set.
    pub fn batches(
        &self,
        batch_size: usize,
        shuffle: Option<u64>,
        device: Device,
    ) -> Result<BatchIter> {
        if batch_size == 0 {
            return Err(DataError::InvalidConfig(
                "batch size must be positive".into(),
            ));
        }
        let order = match shuffle {
            Some(seed) => {
                Some(Tensor::f_from_slice(&permutation(self.len(), seed))?.f_to_device(device)?)
            }
            None => None,
        };
        Ok(BatchIter {
            features: self.features.f_to_device(device)?,
            labels: self.labels.f_to_device(device)?,
            order,
            batch_size: batch_size as i64,
            pos: 0,
            len: self.len() as i64,
            drop_last: false,
        })
    }
}

/// Mini-batches `(x: f32 [B, ...sample_shape], y: i64 [B])` of a [`Split`]; made by
/// [`Split::batches`].
#[derive(Debug)]
pub struct BatchIter {
    features: Tensor,
    labels: Tensor,
    /// The shuffled sample order, on the batch device; `None` for the split's own order.
    order: Option<Tensor>,
    batch_size: i64,
    pos: i64,
    len: i64,
    drop_last: bool,
}

impl BatchIter {
    /// Whether to skip a last batch smaller than the batch size (default: keep it).
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// Number of batches still to come.
    pub fn num_batches(&self) -> usize {
        let left = (self.len - self.pos).max(0);
        let full = left / self.batch_size;
        let partial = i64::from(!self.drop_last && left % self.batch_size != 0);
        (full + partial) as usize
    }
}

impl Iterator for BatchIter {
    type Item = (Tensor, Tensor);

    fn next(&mut self) -> Option<Self::Item> {
        if self.num_batches() == 0 {
            return None;
        }
        let n = self.batch_size.min(self.len - self.pos);
        let batch = match &self.order {
            Some(order) => {
                let index = order.narrow(0, self.pos, n);
                (
                    self.features.index_select(0, &index),
                    self.labels.index_select(0, &index),
                )
            }
            None => (
                self.features.narrow(0, self.pos, n),
                self.labels.narrow(0, self.pos, n),
            ),
        };
        self.pos += n;
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.num_batches();
        (n, Some(n))
    }
}

impl ExactSizeIterator for BatchIter {}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10 samples of shape [2], feature value = sample index, labels cycling 0,1,2.
    fn toy() -> Split {
        let x = Tensor::arange(20, (Kind::Float, Device::Cpu)).view([10, 2]);
        let y = Tensor::from_slice(&[0i64, 1, 2, 0, 1, 2, 0, 1, 2, 0]);
        Split::new(x, y, 3).unwrap()
    }

    fn ids(x: &Tensor) -> Vec<i64> {
        // Feature 0 of sample i is 2i.
        let col = x.select(1, 0).to_kind(Kind::Int64) / 2;
        Vec::<i64>::try_from(&col).unwrap()
    }

    #[test]
    fn new_rejects_bad_inputs() {
        let x = Tensor::zeros([3, 2], (Kind::Float, Device::Cpu));
        let bad_len = Split::new(x.shallow_clone(), Tensor::from_slice(&[0i64, 1]), 2);
        assert!(matches!(bad_len, Err(DataError::InvalidConfig(_))));
        let bad_label = Split::new(x.shallow_clone(), Tensor::from_slice(&[0i64, 1, 2]), 2);
        assert!(matches!(
            bad_label,
            Err(DataError::LabelOutOfRange {
                index: 2,
                label: 2,
                ..
            })
        ));
        let float_labels = Split::new(x, Tensor::from_slice(&[0f32, 1., 0.]), 2);
        assert!(matches!(float_labels, Err(DataError::InvalidConfig(_))));
    }

    #[test]
    fn unshuffled_batches_cover_in_order_with_partial_last() {
        let s = toy();
        let it = s.batches(4, None, Device::Cpu).unwrap();
        assert_eq!(it.len(), 3);
        let batches: Vec<_> = it.collect();
        let sizes: Vec<i64> = batches.iter().map(|(x, _)| x.size()[0]).collect();
        assert_eq!(sizes, [4, 4, 2]);
        let all: Vec<i64> = batches.iter().flat_map(|(x, _)| ids(x)).collect();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!(
            s.batches(4, None, Device::Cpu)
                .unwrap()
                .drop_last(true)
                .count(),
            2
        );
    }

    #[test]
    fn shuffled_batches_are_a_seeded_permutation_with_matching_labels() {
        let s = toy();
        let order = |seed| -> Vec<i64> {
            s.batches(3, Some(seed), Device::Cpu)
                .unwrap()
                .flat_map(|(x, y)| {
                    let i = ids(&x);
                    let y = Vec::<i64>::try_from(&y).unwrap();
                    for (i, y) in i.iter().zip(&y) {
                        assert_eq!(i % 3, *y, "label travelled with a different sample");
                    }
                    i
                })
                .collect()
        };
        let a = order(5);
        assert_eq!(a, order(5));
        assert_eq!(a, permutation(10, 5));
        assert_ne!(a, order(6));
    }

    #[test]
    fn zero_batch_size_is_an_error() {
        assert!(matches!(
            toy().batches(0, None, Device::Cpu),
            Err(DataError::InvalidConfig(_))
        ));
    }

    #[test]
    fn balanced_subset_counts_and_determinism() {
        let s = toy(); // class sizes 4, 3, 3
        let sub = s.balanced_subset(7, 1).unwrap();
        assert_eq!(sub.class_counts().unwrap(), [3, 2, 2]);
        let a = s.balanced_indices(6, 9).unwrap();
        assert_eq!(a, s.balanced_indices(6, 9).unwrap());
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        let err = s.balanced_subset(12, 1).unwrap_err();
        assert!(matches!(
            err,
            DataError::NotEnoughSamples {
                class: 1,
                needed: 4,
                available: 3,
                requested: 12
            }
        ));
    }

    #[test]
    fn subset_and_flat_features() {
        let s = toy();
        let sub = s.subset(&[9, 0, 9]).unwrap();
        assert_eq!(ids(&sub.features), [9, 0, 9]);
        assert_eq!(Vec::<i64>::try_from(&sub.labels).unwrap(), [0, 0, 0]);
        assert!(matches!(
            s.subset(&[10]),
            Err(DataError::IndexOutOfRange { index: 10, len: 10 })
        ));
        let empty = s.subset(&[]).unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.flat_features().size(), [0, 2]);
        let img = Split::new(
            Tensor::zeros([5, 1, 3, 4], (Kind::Float, Device::Cpu)),
            Tensor::zeros([5], (Kind::Int64, Device::Cpu)),
            1,
        )
        .unwrap();
        assert_eq!(img.flat_features().size(), [5, 12]);
        assert_eq!(img.sample_shape(), [1, 3, 4]);
    }

    #[test]
    fn to_missing_cuda_device_is_an_error_not_an_abort() {
        if tch::Cuda::is_available() {
            return;
        }
        assert!(matches!(
            toy().to_device(Device::Cuda(0)),
            Err(DataError::Torch(_))
        ));
    }
}
