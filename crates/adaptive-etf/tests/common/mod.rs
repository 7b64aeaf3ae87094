//! What the MLP's training tests share: one test at a time, the synthetic data set and its
//! run data.

use etf_data::{Dataset, SyntheticConfig};
use etf_train::RunData;
use std::sync::{Mutex, MutexGuard};

/// libtorch's RNG is one per process, and the tests of a binary run on parallel threads: a test
/// that seeds it and builds a model (or runs an epoch, which reseeds it) would change what
/// another test's seeded model starts from. The tests take this lock for their whole body, so
/// two identically seeded trainers really start alike.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Four well-separated classes in 12 dimensions, `train_per_class` training and 16 test samples
/// each.
pub fn data(train_per_class: usize) -> Dataset {
    SyntheticConfig {
        num_classes: 4,
        dim: 12,
        train_per_class,
        test_per_class: 16,
        separation: 6.0,
        noise_std: 1.0,
        seed: 3,
    }
    .generate()
    .unwrap()
}

/// The probe is the whole (small) training set.
pub fn run_data(ds: &Dataset) -> RunData<'_> {
    RunData {
        train: &ds.train,
        probe: &ds.train,
        test: &ds.test,
    }
}
