//! `tether`: Tether's own binary. It is a [`tether::App`] with the bundled example workflows
//! registered (`tether dev` serves them), plus `tether bench`, the benchmark workloads of the
//! `tether-bench` crate.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tether::cli::{AppCommand, ClientOpts, CommandError, TelemetryOptions};

/// Tether: durable workflows with hooks.
#[derive(Debug, Parser)]
#[command(name = "tether", version, about)]
struct Cli {
    #[command(flatten)]
    global: ClientOpts,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    App(AppCommand),
    /// Run a benchmark workload against a fresh store and print one JSON line of figures
    /// (see BENCHMARKS.md).
    Bench(tether_bench::BenchArgs),
}

/// mimalloc (version 2, no transparent huge pages) instead of the system allocator: on the HTTP
/// path glibc's `malloc`/`free` were about a fifth of all instructions (callgrind, BENCHMARKS.md
/// "allocator"), and resident memory with many runs waiting stays level with glibc's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // The bundled `github_events` example's webhook secret: a documented development value
    // when the variable is unset (set before any thread starts). Only its name is journaled.
    if std::env::var_os(tether_examples::github_events::SECRET_ENV).is_none() {
        std::env::set_var(
            tether_examples::github_events::SECRET_ENV,
            tether_examples::github_events::DEV_SECRET,
        );
    }
    let app = tether::App::new()
        .register(tether_examples::register)
        .about("Tether: durable workflows with hooks. `tether dev` serves the bundled examples.");
    let cli: Cli = match app.parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match cli.command {
        Command::App(command) => app.execute(cli.global, command),
        Command::Bench(args) => tether::cli::block_on(&TelemetryOptions::default(), bench(args)),
    }
}

/// `tether bench`: run the workload and print its JSON line. The stream workload starts this
/// same binary's `serve` as a child process.
async fn bench(args: tether_bench::BenchArgs) -> Result<(), CommandError> {
    let me = std::env::current_exe().map_err(|e| {
        CommandError::Failed(format!("cannot find the tether binary's own path: {e}"))
    })?;
    let line = tether_bench::run(&args, &me).await?;
    println!("{line}");
    Ok(())
}
