//! `experiments/depth-mlp-10x1024.toml` as its own binary: `cargo run --release --bin depth-mlp-10x1024 -- [--seed N] [--set k=v] …`.

fn main() -> std::process::ExitCode {
    etf_runner::cli::exit_code(etf_runner::cli::experiment_main("depth-mlp-10x1024"))
}
