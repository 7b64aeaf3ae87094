//! The canonical fast path gives the dense product's outputs and input gradients.

use simplex_etf::{canonical_etf_forward, etf_map, Orientation};
use std::sync::Mutex;
use tch::{Device, Kind, Tensor};

/// The tests seed libtorch's one global generator; run side by side, each would draw from the
/// other's sequence (and the f32 comparison would see other data on each run).
static GLOBAL_RNG: Mutex<()> = Mutex::new(());

/// Output and input gradient (for a fixed upstream gradient) of `f(x)`.
fn out_and_grad(x0: &Tensor, upstream: &Tensor, f: impl Fn(&Tensor) -> Tensor) -> (Tensor, Tensor) {
    let x = x0.detach().copy().set_requires_grad(true);
    let y = f(&x);
    (&y * upstream).sum(y.kind()).backward();
    (y.detach(), x.grad())
}

fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
    let scale = b.abs().max().double_value(&[]).max(1e-30);
    (a - b).abs().max().double_value(&[]) / scale
}

fn compare(kind: Kind, tol: f64) {
    let _rng = GLOBAL_RNG.lock().unwrap_or_else(|e| e.into_inner());
    tch::manual_seed(0);
    for (out, inp) in [(16, 16), (64, 16), (10, 256), (3, 2), (2, 3), (1000, 999)] {
        for alpha in [1.0, 0.37] {
            let opts = (kind, Device::Cpu);
            let x = Tensor::randn([4, 3, inp], opts);
            let g = Tensor::randn([4, 3, out], opts);
            let w = etf_map(out, inp, alpha, Orientation::Canonical, kind, Device::Cpu).unwrap();
            let (y_fast, gx_fast) = out_and_grad(&x, &g, |x| {
                canonical_etf_forward(x, out, inp, alpha).unwrap()
            });
            let (y_dense, gx_dense) = out_and_grad(&x, &g, |x| x.linear(&w, None::<Tensor>));
            assert_eq!(y_fast.size(), [4, 3, out]);
            let (ey, eg) = (max_rel(&y_fast, &y_dense), max_rel(&gx_fast, &gx_dense));
            assert!(
                ey < tol && eg < tol,
                "{kind:?} {out}x{inp}: output {ey:e}, grad {eg:e}"
            );
        }
    }
}

#[test]
fn fast_path_matches_dense_in_f32() {
    compare(Kind::Float, 1e-6);
}

#[test]
fn fast_path_matches_dense_in_f64() {
    compare(Kind::Double, 1e-13);
}

/// A frozen dense (non-canonical) layer evaluates narrowing maps in a reordered product on CPU;
/// its outputs, input gradients and bias gradients must be those of `x Wᵀ + b` (to 1e-6
/// relative in f32), and its output row-major, whichever branch a shape takes.
#[test]
fn frozen_dense_layer_matches_linear() {
    use simplex_etf::{EtfLinear, EtfSpec, LockOrientation};
    use tch::nn;
    let _rng = GLOBAL_RNG.lock().unwrap_or_else(|e| e.into_inner());
    tch::manual_seed(3);
    // Narrowing 2-D (reordered), square, widening, and a 3-D input (the last three: `linear`).
    for (out, inp, three_d) in [
        (10, 256, false),
        (10, 1024, false),
        (64, 64, false),
        (64, 16, false),
        (10, 256, true),
    ] {
        let vs = nn::VarStore::new(Device::Cpu);
        let spec = EtfSpec::new(LockOrientation::Random, 7);
        let layer = EtfLinear::new(&vs.root(), inp, out, true, &spec)
            .unwrap()
            .into_inner();
        let w = layer.weight().shallow_clone();
        let mut b = layer.bias().unwrap().shallow_clone();
        let lead: &[i64] = if three_d { &[4, 3] } else { &[32] };
        let x = Tensor::randn([lead, &[inp]].concat(), (Kind::Float, Device::Cpu));
        let g = Tensor::randn([lead, &[out]].concat(), (Kind::Float, Device::Cpu));

        let (y, gx) = out_and_grad(&x, &g, |x| layer.f_forward(x).unwrap());
        let gb = b.grad().copy();
        b.zero_grad();
        let (y_ref, gx_ref) = out_and_grad(&x, &g, |x| x.linear(&w, Some(&b)));
        let gb_ref = b.grad();

        assert!(y.is_contiguous(), "{out}x{inp}: output not row-major");
        let (ey, eg, eb) = (
            max_rel(&y, &y_ref),
            max_rel(&gx, &gx_ref),
            max_rel(&gb, &gb_ref),
        );
        assert!(
            ey < 1e-6 && eg < 1e-6 && eb < 1e-6,
            "{out}x{inp}: output {ey:e}, input grad {eg:e}, bias grad {eb:e}"
        );
    }
}
