//! The command line of a binary that serves Tether workflows, and the pieces to embed them.
//!
//! Users reach this crate through the `tether` facade: [`App`] is `tether::App`. One call
//! gives a binary the whole command line:
//!
//! - `serve`: the HTTP API, the web UI, `/metrics` and webhooks, on SQLite or on a PostgreSQL
//!   database shared by any number of `serve` processes;
//! - `replay RUN_ID` / `replay --all`: stored runs checked against this binary's code, read
//!   only: the gate before a deploy;
//! - `runs start|list|show|cancel`, `hooks resume`, `signal`: a client of a running server.

mod app;
mod client;
mod command;
mod error;
mod replay;
mod serve;
mod store;
mod telemetry;

pub use app::{block_on, App};
pub use client::{ClientOpts, HooksCommand, RunsCommand, SignalArgs};
pub use command::AppCommand;
pub use error::CommandError;
pub use replay::ReplayArgs;
pub use serve::ServeArgs;
pub use telemetry::{LogFormat, TelemetryOptions};
