//! `experiments/ncc-dynamics-mlp.toml` as its own binary: `cargo run --release --bin ncc-dynamics-mlp -- [--seed N] [--set k=v] …`.

fn main() -> std::process::ExitCode {
    etf_runner::cli::exit_code(etf_runner::cli::experiment_main("ncc-dynamics-mlp"))
}
