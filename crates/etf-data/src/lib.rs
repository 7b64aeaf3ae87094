//! Data sets for the toolkit.
