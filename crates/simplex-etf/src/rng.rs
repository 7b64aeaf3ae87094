//! A small seeded Gaussian generator, independent of libtorch's global RNG state.
//!
//! `random(seed)` orientations must be the same for a seed whatever else the program has drawn,
//! and the same on CPU and CUDA, so the Gaussian matrix is drawn here in f64 on the CPU
//! (splitmix64, Steele et al. 2014; Box–Muller transform) and only then moved to a device.

/// splitmix64: a 64-bit generator that passes BigCrush and seeds well from any `u64`.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `(0, 1]`: 53 random bits, shifted by one ulp so `ln` never sees zero.
    fn next_open01(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `n` independent standard normal draws (Box–Muller: `r = sqrt(−2 ln u1)`, `θ = 2π u2`,
    /// giving `r cos θ` and `r sin θ`).
    pub(crate) fn gaussians(&mut self, n: usize) -> Vec<f64> {
        let mut out = Vec::with_capacity(n + 1);
        while out.len() < n {
            let r = (-2.0 * self.next_open01().ln()).sqrt();
            let theta = std::f64::consts::TAU * self.next_open01();
            out.push(r * theta.cos());
            out.push(r * theta.sin());
        }
        out.truncate(n);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_seeds_differ() {
        let a = SplitMix64::new(7).gaussians(9);
        let b = SplitMix64::new(7).gaussians(9);
        let c = SplitMix64::new(8).gaussians(9);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 9);
    }

    #[test]
    fn gaussian_moments_are_standard() {
        let xs = SplitMix64::new(42).gaussians(200_000);
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
        assert!(xs.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn first_splitmix_output_matches_reference() {
        // Reference value of splitmix64 seeded with 0 (Vigna's C implementation).
        assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }
}
