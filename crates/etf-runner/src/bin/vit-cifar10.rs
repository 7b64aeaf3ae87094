//! `experiments/vit-cifar10.toml` as its own binary: `cargo run --release --bin vit-cifar10 -- [--seed N] [--set k=v] …`.

fn main() -> std::process::ExitCode {
    etf_runner::cli::exit_code(etf_runner::cli::experiment_main("vit-cifar10"))
}
