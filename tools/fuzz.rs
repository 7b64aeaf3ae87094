//! Random mutations of valid files for the readers' fuzz tests (`tests/fuzz.rs` of `etf-data`
//! and `etf-runner` include this file with `#[path]`).
//!
//! A case starts from a valid seed file and applies a few mutations: bit flips, byte
//! overwrites, truncation, insertion, deletion, duplication and boundary values written over
//! the header's words, so that most cases get past the magic number into the parsers. Cases
//! come from proptest (stable Rust), which catches a panic, shrinks the mutations and prints
//! the smallest failing list.
//!
//! The short mode (the plain tests) runs a few hundred cases; the long mode (`#[ignore]`
//! tests, `cargo test --release -- --ignored fuzz`) runs [`long_cases`] cases per reader.
#![allow(dead_code)] // each test binary uses a different part

use std::time::Instant;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// One change to a file's bytes; positions are fractions of the current length.
#[derive(Clone, Debug)]
pub enum Mutation {
    /// Flip one bit.
    FlipBit(Index, u8),
    /// Overwrite one byte.
    SetByte(Index, u8),
    /// Overwrite the byte at this offset (a field at a known place), if the file has it.
    At(usize, u8),
    /// Cut the file at a position.
    Truncate(Index),
    /// Insert bytes at a position.
    Insert(Index, Vec<u8>),
    /// Delete up to `n` bytes from a position.
    Remove(Index, usize),
    /// Repeat up to `n` bytes at a position.
    Duplicate(Index, usize),
    /// Write a boundary value as a 4-byte word at a word boundary of the first `head` bytes.
    Word {
        /// Which word of the head.
        at: Index,
        /// The value.
        value: u32,
        /// Big-endian (IDX) or little-endian.
        big_endian: bool,
    },
}

/// Values that sit on the edges of header fields: zero, one, small counts, sign bits, maxima.
fn boundary_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        prop::sample::select(vec![
            0u32,
            1,
            2,
            3,
            4,
            7,
            8,
            9,
            10,
            11,
            16,
            28,
            32,
            255,
            256,
            0x801,
            0x803,
            0x7fff_ffff,
            0x8000_0000,
            u32::MAX - 1,
            u32::MAX,
        ]),
        any::<u32>(),
    ]
}

/// One mutation.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::SetByte(i, v)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<Index>(), 1usize..64).prop_map(|(i, n)| Mutation::Remove(i, n)),
        1 => (any::<Index>(), 1usize..64).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        3 => (any::<Index>(), boundary_u32(), any::<bool>())
            .prop_map(|(at, value, big_endian)| Mutation::Word { at, value, big_endian }),
    ]
}

/// One to four mutations.
pub fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..=4)
}

/// Applies `muts` to a copy of `seed`; [`Mutation::Word`] lands in the first `head` bytes.
pub fn apply(seed: &[u8], muts: &[Mutation], head: usize) -> Vec<u8> {
    let mut b = seed.to_vec();
    for m in muts {
        let len = b.len();
        match m {
            Mutation::FlipBit(i, bit) if len > 0 => b[i.index(len)] ^= 1 << bit,
            Mutation::SetByte(i, v) if len > 0 => b[i.index(len)] = *v,
            Mutation::At(at, v) if *at < len => b[*at] = *v,
            Mutation::Truncate(i) => b.truncate(i.index(len + 1)),
            Mutation::Insert(i, bytes) => {
                let at = i.index(len + 1);
                b.splice(at..at, bytes.iter().copied());
            }
            Mutation::Remove(i, n) if len > 0 => {
                let at = i.index(len);
                b.drain(at..(at + n).min(len));
            }
            Mutation::Duplicate(i, n) if len > 0 => {
                let at = i.index(len);
                let chunk = b[at..(at + n).min(len)].to_vec();
                b.splice(at..at, chunk);
            }
            Mutation::Word {
                at,
                value,
                big_endian,
            } => {
                let words = head.min(len) / 4;
                if words > 0 {
                    let w = 4 * at.index(words);
                    let bytes = if *big_endian {
                        value.to_be_bytes()
                    } else {
                        value.to_le_bytes()
                    };
                    b[w..w + 4].copy_from_slice(&bytes);
                }
            }
            _ => {}
        }
    }
    b
}

/// Cases of the long mode: `ETF_FUZZ_CASES`, or 100 000.
pub fn long_cases() -> u32 {
    match std::env::var("ETF_FUZZ_CASES") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("ETF_FUZZ_CASES={v:?} is not a case count")),
        Err(_) => 100_000,
    }
}

/// Runs `cases` cases of `strategy` through `test`; a panic or a failed check fails the test
/// with the shrunk case. `test` names each case's outcome (`"ok"` or the error's kind); the
/// count, the time and how often each outcome came are printed (`--nocapture` shows them), to
/// see that the cases reach past the first check.
pub fn fuzz<S: Strategy>(
    what: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<String, TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let outcomes = std::cell::RefCell::new(std::collections::BTreeMap::<String, u64>::new());
    let config = Config {
        cases,
        failure_persistence: None,
        // Every case is a fresh mutation; none is rejected.
        max_global_rejects: 0,
        ..Config::default()
    };
    let start = Instant::now();
    let mut runner = TestRunner::new_with_rng(
        config,
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let result = runner.run(&strategy, |case| {
        let outcome = test(case)?;
        *outcomes.borrow_mut().entry(outcome).or_default() += 1;
        Ok(())
    });
    if let Err(e) = result {
        panic!("fuzz {what}: {e}");
    }
    eprintln!(
        "fuzz {what}: {cases} cases in {:.1} s; outcomes {:?}",
        start.elapsed().as_secs_f64(),
        outcomes.borrow()
    );
}
