//! Criterion benchmarks of the toolkit; see `benches/`.
