//! `tether`: the command line of Tether, a durable workflow engine.
//!
//! `tether dev` runs the HTTP API with the bundled example workflows on an embedded SQLite
//! database; see `tether dev --help`. `tether runs`, `tether hooks` and `tether signal` talk
//! to a running server (`--server`, `--api-token`, `--json`).

mod bench;
mod client;
mod dev;
mod replay;
mod store;
mod telemetry;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tether: durable workflows with hooks.
#[derive(Debug, Parser)]
#[command(name = "tether", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a server with the bundled example workflows (approval, collect, slack_bot, handoff,
    /// timeout_approval, steps).
    Dev(dev::DevArgs),
    /// Run a benchmark workload against a fresh store and print one JSON line of figures
    /// (see BENCHMARKS.md).
    Bench(bench::BenchArgs),
    /// Start, list, show and cancel runs on a server.
    Runs(client::RunsCommand),
    /// Deliver payloads to hooks on a server.
    Hooks(client::HooksCommand),
    /// Send a signal on a server.
    Signal(client::SignalArgs),
    /// Check a stored run against the current code (the bundled workflows) without changing
    /// it: prints `ok: ...` or the non-determinism error naming the position (exit code 1).
    Replay(replay::ReplayArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let options = match &cli.command {
        Command::Dev(args) => args.telemetry(),
        _ => telemetry::TelemetryOptions::default(),
    };
    // Dropped last (after the runtime): sends the spans still buffered.
    let _telemetry = match telemetry::init(&options) {
        Ok(t) => t,
        Err(message) => {
            eprintln!("tether: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tether: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = match cli.command {
        Command::Dev(args) => runtime
            .block_on(dev::run(args))
            .map_err(|e| (e.to_string(), e.exit_code())),
        Command::Bench(args) => runtime
            .block_on(bench::run(args))
            .map_err(|e| (e.to_string(), e.exit_code())),
        Command::Runs(cmd) => runtime
            .block_on(client::runs::run(cmd))
            .map_err(|e| (e.to_string(), e.exit_code())),
        Command::Hooks(cmd) => runtime
            .block_on(client::hooks::run(cmd))
            .map_err(|e| (e.to_string(), e.exit_code())),
        Command::Signal(args) => runtime
            .block_on(client::signal::run(args))
            .map_err(|e| (e.to_string(), e.exit_code())),
        Command::Replay(args) => runtime
            .block_on(replay::run(args))
            .map_err(|e| (e.to_string(), e.exit_code())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((message, code)) => {
            eprintln!("tether: {message}");
            ExitCode::from(code)
        }
    }
}
