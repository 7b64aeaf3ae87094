//! Streaming neural-collapse diagnostics.
