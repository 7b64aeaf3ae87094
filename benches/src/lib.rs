//! Criterion benchmarks of the toolkit; see `benches/`. The library holds what several
//! benchmarks share.

use tch::{Device, Kind, Tensor};

/// A synthetic layer for the collapse-metrics benchmarks: `n` f32 features in `R^dim` around
/// `C` random class centres, and a classifier near the centres, as host vectors (row-major).
pub struct CollapseLayer {
    /// `[n, dim]`.
    pub features: Vec<f32>,
    /// `[n]`, uniform in `0..C`.
    pub labels: Vec<i64>,
    /// `[C, dim]`.
    pub weight: Vec<f32>,
    /// `[C]`.
    pub bias: Vec<f32>,
    pub dim: usize,
    pub classes: usize,
}

impl CollapseLayer {
    /// Noisy clusters: centres `N(0, 1)`, features centre + `2·N(0, 1)`, weight centre +
    /// `0.5·N(0, 1)`, bias `N(0, 1)`, from libtorch's generator with seed 0, so every method
    /// sees the same data.
    pub fn new(n: usize, dim: usize, classes: usize) -> Self {
        tch::manual_seed(0);
        let opts = (Kind::Float, Device::Cpu);
        let (n, d, c) = (n as i64, dim as i64, classes as i64);
        let centres = Tensor::randn([c, d], opts);
        let labels = Tensor::randint(c, [n], (Kind::Int64, Device::Cpu));
        let features = centres.index_select(0, &labels) + Tensor::randn([n, d], opts) * 2.0;
        let weight = &centres + Tensor::randn([c, d], opts) * 0.5;
        let host = |t: &Tensor| Vec::<f32>::try_from(&t.reshape([-1])).expect("f32 tensor");
        CollapseLayer {
            features: host(&features),
            labels: Vec::<i64>::try_from(&labels).expect("i64 tensor"),
            weight: host(&weight),
            bias: host(&Tensor::randn([c], opts)),
            dim,
            classes,
        }
    }
}
