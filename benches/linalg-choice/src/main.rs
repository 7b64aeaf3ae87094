//! Which linear-algebra crate for collapse-metrics: faer or nalgebra, side by side, one
//! thread, on the thin SVD of the class means (C × d), the pass-2 product (1000 × d times
//! d × 2C) and, for the textbook reference, a d × d symmetric eigendecomposition.
use std::time::Instant;

fn lcg(seed: &mut u64) -> f64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*seed >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn time<F: FnMut() -> f64>(reps: usize, mut f: F) -> (f64, f64) {
    let mut check = 0.0;
    let t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            check += f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    (median(t), check)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let what = args.get(1).map(String::as_str).unwrap_or("small");
    let c = 10usize;
    for d in [512usize, 2048, 4096] {
        let mut seed = d as u64;
        let m: Vec<f64> = (0..c * d).map(|_| lcg(&mut seed)).collect();
        let b = 1000usize;
        let x: Vec<f64> = (0..b * d).map(|_| lcg(&mut seed)).collect();
        let k: Vec<f64> = (0..d * 2 * c).map(|_| lcg(&mut seed)).collect();
        // faer
        let fm = faer::Mat::<f64>::from_fn(c, d, |i, j| m[i * d + j]);
        let fx = faer::Mat::<f64>::from_fn(b, d, |i, j| x[i * d + j]);
        let fk = faer::Mat::<f64>::from_fn(d, 2 * c, |i, j| k[i * 2 * c + j]);
        let nm = nalgebra::DMatrix::<f64>::from_row_slice(c, d, &m);
        let nx = nalgebra::DMatrix::<f64>::from_row_slice(b, d, &x);
        let nk = nalgebra::DMatrix::<f64>::from_row_slice(d, 2 * c, &k);
        if what == "small" {
            let (t_fs, _) = time(21, || fm.thin_svd().unwrap().S().column_vector()[0]);
            let (t_ns, _) = time(21, || nm.clone().svd(true, true).singular_values[0]);
            let mut out = faer::Mat::<f64>::zeros(b, 2 * c);
            let (t_fg, _) = time(21, || {
                faer::linalg::matmul::matmul(
                    &mut out,
                    faer::Accum::Replace,
                    &fx,
                    &fk,
                    1.0,
                    faer::Par::Seq,
                );
                out[(0, 0)]
            });
            let (t_ng, _) = time(21, || (&nx * &nk)[(0, 0)]);
            println!(
                "d={d}: thin SVD {c}x{d}: faer {:.3} ms, nalgebra {:.3} ms ({:.1}x); GEMM {b}x{d}x{}: faer {:.3} ms, nalgebra {:.3} ms ({:.1}x)",
                t_fs * 1e3, t_ns * 1e3, t_ns / t_fs, 2 * c, t_fg * 1e3, t_ng * 1e3, t_ng / t_fg
            );
        } else {
            // The textbook reference: a d x d symmetric eigendecomposition.
            let n = 2 * d;
            let h: Vec<f64> = (0..n * d).map(|_| lcg(&mut seed)).collect();
            let fh = faer::Mat::<f64>::from_fn(n, d, |i, j| h[i * d + j]);
            let nh = nalgebra::DMatrix::<f64>::from_row_slice(n, d, &h);
            let fs = fh.transpose() * &fh;
            let ns = nh.transpose() * &nh;
            let reps = if d >= 4096 { 1 } else { 3 };
            let (t_fe, _) = time(reps, || {
                fs.self_adjoint_eigen(faer::Side::Lower)
                    .unwrap()
                    .S()
                    .column_vector()[0]
            });
            let (t_ne, _) = time(reps, || {
                nalgebra::SymmetricEigen::new(ns.clone()).eigenvalues[0]
            });
            println!(
                "d={d}: symmetric eigendecomposition: faer {:.3} s, nalgebra {:.3} s ({:.1}x)",
                t_fe,
                t_ne,
                t_ne / t_fe
            );
        }
    }
}
