//! `experiments/vit-fashion-cpu.toml` as its own binary: `cargo run --release --bin vit-fashion-cpu -- [--seed N] [--set k=v] …`.

fn main() -> std::process::ExitCode {
    etf_runner::cli::exit_code(etf_runner::cli::experiment_main("vit-fashion-cpu"))
}
