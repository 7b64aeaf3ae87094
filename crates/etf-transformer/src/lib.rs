//! ETF-Transformer: a Vision Transformer whose feed-forward layers are simplex ETFs.
