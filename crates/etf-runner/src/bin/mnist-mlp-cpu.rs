//! `experiments/mnist-mlp-cpu.toml` as its own binary: `cargo run --release --bin mnist-mlp-cpu -- [--seed N] [--set k=v] …`.

fn main() -> std::process::ExitCode {
    etf_runner::cli::exit_code(etf_runner::cli::experiment_main("mnist-mlp-cpu"))
}
