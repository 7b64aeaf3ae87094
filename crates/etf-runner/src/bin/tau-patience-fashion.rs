//! `experiments/tau-patience-fashion.toml` as its own binary: `cargo run --release --bin tau-patience-fashion -- [--seed N] [--set k=v] …`.

fn main() -> std::process::ExitCode {
    etf_runner::cli::exit_code(etf_runner::cli::experiment_main("tau-patience-fashion"))
}
