//! `ballast`: the autoscaler's one binary. Thin wiring; the work lives in the crates.

mod backtest;
mod client;
mod config;
mod demo;
mod history;
mod policy;
mod prices;
mod serve;
mod token;
mod tune;
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
    /// Search one setting of a policy by backtest for the cheapest that meets an SLO.
    Tune(tune::Args),
    /// Run the engine and the REST API.
    Serve(serve::Args),
    /// Create, list and delete API tokens.
    Token(token::Args),
    /// Apply, list, read, delete and evaluate policies on a running server.
    Policy(policy::Args),
    /// Show the server's audit log of decisions and changes.
    History(history::Args),
    /// Watch Ballast scale a pool of local workers on replayed load; nothing to install.
    Demo(demo::Args),
    /// List the cloud providers' server types and hourly prices.
    Prices(prices::PricesArgs),
    /// One worker of the demo (started by `ballast demo`).
    #[command(hide = true)]
    DemoWorker {
        /// Its replica index.
        index: Option<u32>,
    },
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Backtest(args) => backtest::run(&args),
        Command::Tune(args) => tune::run(&args),
        Command::Serve(args) => {
            runtime().and_then(|rt| rt.block_on(serve::run(&args)).map(|()| ExitCode::SUCCESS))
        }
        Command::Token(args) => {
            runtime().and_then(|rt| rt.block_on(token::run(&args)).map(|()| ExitCode::SUCCESS))
        }
        Command::Policy(args) => runtime().and_then(|rt| rt.block_on(policy::run(&args))),
        Command::History(args) => runtime().and_then(|rt| rt.block_on(history::run(&args))),
        Command::Demo(args) => {
            runtime().and_then(|rt| rt.block_on(demo::run(&args)).map(|()| ExitCode::SUCCESS))
        }
        Command::Prices(args) => {
            runtime().and_then(|rt| rt.block_on(prices::run(&args)).map(|()| ExitCode::SUCCESS))
        }
        Command::DemoWorker { .. } => demo::worker(),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
