//! Times loading each available data set from disk to normalised tensors.
//!
//! `cargo run --release -p etf-data --example load_timing [DATA_ROOT] [REPEATS]`
//! (DATA_ROOT defaults to `$ETF_DATA_DIR` or `data/`; REPEATS to 5; the best time is shown,
//! so the page cache is warm, as it is in repeated runs).

use std::time::Instant;

use etf_data::{default_data_root, load, DatasetName};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let root = args
        .next()
        .map(Into::into)
        .unwrap_or_else(default_data_root);
    let repeats: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(5);
    println!("data root {}, best of {repeats}", root.display());
    for name in [
        DatasetName::Mnist,
        DatasetName::FashionMnist,
        DatasetName::Digits,
        DatasetName::Cifar10,
    ] {
        if !root.join(name.as_str()).is_dir() {
            println!("{name:>14}: absent");
            continue;
        }
        let mut best = f64::INFINITY;
        let mut sizes = (0, 0);
        for _ in 0..repeats {
            let start = Instant::now();
            let ds = load(name, &root)?;
            best = best.min(start.elapsed().as_secs_f64());
            sizes = (ds.train.len(), ds.test.len());
        }
        println!(
            "{name:>14}: {:>8.1} ms  ({} train + {} test)",
            best * 1e3,
            sizes.0,
            sizes.1
        );
    }
    Ok(())
}
