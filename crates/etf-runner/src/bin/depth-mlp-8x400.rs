//! `experiments/depth-mlp-8x400.toml` as its own binary: `cargo run --release --bin depth-mlp-8x400 -- [--seed N] [--set k=v] …`.

fn main() -> std::process::ExitCode {
    etf_runner::cli::exit_code(etf_runner::cli::experiment_main("depth-mlp-8x400"))
}
