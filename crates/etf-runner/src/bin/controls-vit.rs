//! `experiments/controls-vit.toml` as its own binary: `cargo run --release --bin controls-vit -- [--seed N] [--set k=v] …`.

fn main() -> std::process::ExitCode {
    etf_runner::cli::exit_code(etf_runner::cli::experiment_main("controls-vit"))
}
