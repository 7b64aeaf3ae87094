//! Simplex equiangular tight frames and ETF-constrained linear layers.
