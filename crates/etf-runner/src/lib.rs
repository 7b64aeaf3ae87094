//! The experiment runner behind the `etf` binary.
