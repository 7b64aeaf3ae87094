use clap::Parser;

fn main() -> std::process::ExitCode {
    etf_runner::cli::exit_code(etf_runner::cli::main_with(etf_runner::cli::Cli::parse()))
}
