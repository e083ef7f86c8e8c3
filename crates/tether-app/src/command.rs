//! The command line every app binary has.

use clap::{Parser, Subcommand};

use crate::client::{ClientOpts, HooksCommand, RunsCommand, SchedulesCommand, SignalArgs};
use crate::replay::ReplayArgs;
use crate::serve::ServeArgs;

/// The command line of an app binary (its name, version and workflow list are set at run
/// time by [`crate::App`]).
#[derive(Debug, Parser)]
#[command(
    name = "tether",
    version,
    about = "Durable workflows with hooks, served by Tether."
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub global: ClientOpts,
    #[command(subcommand)]
    pub command: AppCommand,
}

/// The commands of an app binary.
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Serve this binary's workflows: HTTP API, web UI, metrics, webhooks.
    #[command(visible_alias = "dev")]
    Serve(Box<ServeArgs>),
    /// Check stored runs against this binary's code without changing them: `replay RUN_ID`,
    /// or `replay --all` (every unfinished run; the check to pass before deploying). Prints
    /// `ok: ...`, or each run that would diverge with the position and both commands (exit
    /// code 1).
    Replay(ReplayArgs),
    /// Start, list, show and cancel runs on a server.
    Runs(RunsCommand),
    /// Deliver payloads to hooks on a server.
    Hooks(HooksCommand),
    /// Send a signal on a server.
    Signal(SignalArgs),
    /// Create, list, show, delete, pause and resume cron schedules on a server.
    Schedules(SchedulesCommand),
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_before_or_after_the_command() {
        for args in [
            &["app", "--json", "--server", "http://h:1", "runs", "list"][..],
            &["app", "runs", "list", "--json", "--server", "http://h:1"][..],
            &["app", "--api-token", "t", "runs", "--json", "list"][..],
        ] {
            let cli = Cli::try_parse_from(args).expect("parse");
            assert!(
                cli.global.json || cli.global.api_token.is_some(),
                "{args:?}"
            );
        }
        let cli = Cli::try_parse_from(["app", "--api-token", "t", "serve"]).expect("parse");
        assert_eq!(cli.global.api_token.as_deref(), Some("t"));
    }

    #[test]
    fn replay_takes_a_run_or_all_not_both() {
        assert!(Cli::try_parse_from(["app", "replay", "r1"]).is_ok());
        assert!(Cli::try_parse_from(["app", "replay", "--all"]).is_ok());
        assert!(Cli::try_parse_from(["app", "replay"]).is_err());
        assert!(Cli::try_parse_from(["app", "replay", "r1", "--all"]).is_err());
    }
}
