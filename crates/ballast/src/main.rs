//! `ballast`: the autoscaler's one binary. Thin wiring; the work lives in the crates.

mod backtest;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Ballast: one autoscaler for pods, VMs and queue workers, that explains every decision.
#[derive(Debug, Parser)]
#[command(name = "ballast", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check policy files (YAML or JSON) and report every problem with its field path.
    Validate(validate::Args),
    /// Replay a recorded load trace against policies and the reference autoscalers.
    Backtest(backtest::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Backtest(args) => backtest::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
