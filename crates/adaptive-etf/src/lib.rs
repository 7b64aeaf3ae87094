//! Adaptive-ETF MLP training.
