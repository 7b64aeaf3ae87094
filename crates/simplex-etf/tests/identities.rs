//! The simplex-ETF identities of spec §1 for every orientation, and the optimality of `nearest`.

use proptest::prelude::*;
use simplex_etf::{etf_gram_deviation, etf_map, simplex_etf, Orientation};
use tch::{Device, Kind, Tensor};

const CPU64: (Kind, Device) = (Kind::Double, Device::Cpu);

/// Checks each identity separately (not only the Gram matrix), so a failure says which.
fn assert_etf(m: &Tensor, k: i64, p: i64) {
    assert_eq!(m.size(), [p, k]);
    let kf = k as f64;
    let norms = m.square().sum_dim_intlist(0, false, Kind::Double).sqrt();
    assert!(
        norms.allclose(&Tensor::ones([k], CPU64), 1e-12, 1e-12, false),
        "unit columns"
    );
    let gram = m.tr().matmul(m);
    let off_diag = gram.masked_select(&Tensor::eye(k, (Kind::Bool, Device::Cpu)).logical_not());
    let cos = Tensor::full([k * (k - 1)], -1.0 / (kf - 1.0), CPU64);
    assert!(
        off_diag.allclose(&cos, 1e-12, 1e-12, false),
        "cosines -1/(K-1)"
    );
    let col_sum = m.sum_dim_intlist(1, false, Kind::Double);
    assert!(
        col_sum.abs().max().double_value(&[]) < 1e-12,
        "columns sum to zero"
    );
    let (_, s, _) = m.svd(true, false);
    let rank = s.gt(1e-9).sum(Kind::Int64).int64_value(&[]);
    assert_eq!(rank, k - 1, "rank K-1");
    let target = (Tensor::eye(k, CPU64) - 1.0 / kf) * (kf / (kf - 1.0));
    assert!(
        gram.allclose(&target, 1e-12, 1e-12, false),
        "Gram K/(K-1)(I - 11ᵀ/K)"
    );
    assert!(etf_gram_deviation(m).unwrap() < 1e-12);
}

fn random_etf(k: i64, p: i64, seed: u64) -> Tensor {
    simplex_etf(
        k,
        p,
        Orientation::Random { seed },
        Kind::Double,
        Device::Cpu,
    )
    .unwrap()
}

fn gaussian(p: i64, k: i64, seed: i64) -> Tensor {
    tch::manual_seed(seed);
    Tensor::randn([p, k], CPU64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn identities_hold_for_every_orientation(k in 2i64..12, extra in 0i64..10, seed in any::<u64>()) {
        let p = k + extra;
        assert_etf(&simplex_etf(k, p, Orientation::Canonical, Kind::Double, Device::Cpu).unwrap(), k, p);
        assert_etf(&random_etf(k, p, seed), k, p);
        let y = gaussian(p, k, seed as i64);
        assert_etf(&simplex_etf(k, p, Orientation::Nearest(&y), Kind::Double, Device::Cpu).unwrap(), k, p);
    }

    #[test]
    fn etf_maps_hold_the_etf_in_columns_or_rows(out in 2i64..10, inp in 2i64..10, seed in any::<u64>()) {
        let w = etf_map(out, inp, 1.0, Orientation::Random { seed }, Kind::Double, Device::Cpu).unwrap();
        prop_assert_eq!(w.size(), vec![out, inp]);
        let (k, p) = (out.min(inp), out.max(inp));
        let m = if out >= inp { w } else { w.tr() };
        assert_etf(&m, k, p);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    /// ‖Y − M‖_F is minimal at `nearest(Y)` among ETFs: no random ETF of 1 000 does better.
    #[test]
    fn nearest_beats_1000_random_etfs(k in 2i64..6, extra in 0i64..4, seed in 0i64..1_000_000) {
        let p = k + extra;
        let y = gaussian(p, k, seed);
        let near = simplex_etf(k, p, Orientation::Nearest(&y), Kind::Double, Device::Cpu).unwrap();
        let d_near = (&y - &near).norm().double_value(&[]);
        for s in 0..1000u64 {
            let d = (&y - random_etf(k, p, s.wrapping_mul(0x9E37) ^ seed as u64)).norm().double_value(&[]);
            prop_assert!(d_near <= d + 1e-12, "random ETF {s} closer: {d} < {d_near}");
        }
    }
}

#[test]
fn nearest_of_an_etf_is_itself() {
    for (k, p, seed) in [(2, 2, 1), (3, 3, 2), (5, 9, 3), (10, 10, 4), (7, 20, 5)] {
        for m in [
            random_etf(k, p, seed),
            simplex_etf(k, p, Orientation::Canonical, Kind::Double, Device::Cpu).unwrap(),
        ] {
            let again =
                simplex_etf(k, p, Orientation::Nearest(&m), Kind::Double, Device::Cpu).unwrap();
            assert!(again.allclose(&m, 1e-12, 1e-12, false), "K={k} p={p}");
        }
    }
}

#[test]
fn nearest_is_scale_invariant_and_ignores_column_mean() {
    let y = gaussian(7, 4, 9);
    let shifted = &y * 3.0 + Tensor::randn([7, 1], CPU64);
    let a = simplex_etf(4, 7, Orientation::Nearest(&y), Kind::Double, Device::Cpu).unwrap();
    let b = simplex_etf(
        4,
        7,
        Orientation::Nearest(&shifted),
        Kind::Double,
        Device::Cpu,
    )
    .unwrap();
    assert!(a.allclose(&b, 1e-10, 1e-10, false));
}

#[test]
fn f32_etfs_hold_the_identities_to_single_precision() {
    let m = simplex_etf(
        50,
        80,
        Orientation::Random { seed: 1 },
        Kind::Float,
        Device::Cpu,
    )
    .unwrap();
    assert_eq!(m.kind(), Kind::Float);
    assert!(etf_gram_deviation(&m).unwrap() < 1e-6);
}

#[test]
fn random_orientation_is_identical_on_cuda() {
    if !tch::Cuda::is_available() {
        return; // Checked on GPU machines; nothing to compare against here.
    }
    // The construction runs on the CPU in f64 and is then moved, so a seed must give the same
    // bits on both devices, for either float kind and for square and tall shapes.
    for (k, p, seed) in [(16, 64, 5), (10, 10, 0), (10, 400, 1), (100, 768, 42)] {
        for kind in [Kind::Float, Kind::Double] {
            let cpu = simplex_etf(k, p, Orientation::Random { seed }, kind, Device::Cpu).unwrap();
            let gpu =
                simplex_etf(k, p, Orientation::Random { seed }, kind, Device::Cuda(0)).unwrap();
            assert_eq!(gpu.device(), Device::Cuda(0));
            assert!(
                gpu.to_device(Device::Cpu).equal(&cpu),
                "K={k} p={p} seed={seed} {kind:?}: CUDA and CPU differ"
            );
        }
    }
    // Printed (with --nocapture) so a GPU log shows that the comparison ran.
    println!("random(seed) ETFs: CUDA = CPU bit for bit (4 shapes, f32 and f64)");
}

#[test]
fn etf_maps_are_row_major() {
    // A fixed weight is laid out once as `linear` reads it, whatever the QR returned.
    for (out, inp) in [(64, 64), (64, 16), (10, 256)] {
        for orientation in [Orientation::Canonical, Orientation::Random { seed: 2 }] {
            let w = etf_map(out, inp, 1.0, orientation, Kind::Float, Device::Cpu).unwrap();
            assert!(w.is_contiguous(), "{out}x{inp} {orientation:?}");
        }
    }
}
