//! `runs start | list | show | cancel`.

use clap::{Args, Subcommand};
use serde_json::{json, Value};
use tether_client::RunInfo;

use super::output::{print_json, table};
use super::{parse_json, timeline, ClientOpts};
use crate::error::CommandError;

/// `tether runs`: start, list, inspect and cancel runs.
#[derive(Debug, Args)]
pub struct RunsCommand {
    #[command(subcommand)]
    action: RunsAction,
}

#[derive(Debug, Subcommand)]
enum RunsAction {
    /// Start a run of WORKFLOW; prints its id.
    Start {
        /// The workflow's name.
        workflow: String,
        /// The run's input, as JSON.
        #[arg(long, default_value = "null", value_name = "JSON")]
        input: String,
        /// A run id of your choosing: starting again with the same id, workflow and input
        /// prints that run instead of starting a second one (a safe retry).
        #[arg(long, value_name = "RUN_ID")]
        id: Option<String>,
        /// An idempotency key: the run's id is derived from it (a safe retry without
        /// choosing an id).
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
        /// The task queue to run it on (default: `default`); only servers serving it
        /// (`serve --queues`) run it.
        #[arg(long, value_name = "QUEUE")]
        queue: Option<String>,
    },
    /// List runs, newest first.
    List {
        /// Only runs with this status (pending, running, suspended, completed, failed,
        /// cancelled).
        #[arg(long, value_name = "S")]
        status: Option<String>,
        /// Only runs of this workflow.
        #[arg(long, value_name = "W")]
        workflow: Option<String>,
        /// At most this many runs (the server's default is 100).
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// Show a run: status, input, output or error, and its journal as a timeline.
    Show {
        /// The run's id.
        run_id: String,
    },
    /// Ask a run to cancel.
    Cancel {
        /// The run's id.
        run_id: String,
        /// Why, recorded in the journal.
        #[arg(long, value_name = "R")]
        reason: Option<String>,
    },
}

/// Run a `tether runs` command.
pub(crate) async fn run(opts: &ClientOpts, cmd: RunsCommand) -> Result<(), CommandError> {
    let client = opts.client();
    let json_out = opts.json;
    match cmd.action {
        RunsAction::Start {
            workflow,
            input,
            id,
            idempotency_key,
            queue,
        } => {
            let input = parse_json("--input", &input)?;
            let options = tether_client::StartOptions {
                run_id: id,
                idempotency_key,
                queue,
            };
            let run_id = client.start_run_with(&workflow, &input, &options).await?;
            if json_out {
                print_json(&json!({ "run_id": run_id }))
            } else {
                println!("{run_id}");
                Ok(())
            }
        }
        RunsAction::List {
            status,
            workflow,
            limit,
        } => {
            let runs = client
                .list_runs(status.as_deref(), workflow.as_deref(), limit)
                .await?;
            if json_out {
                return print_json(&json!({ "runs": runs }));
            }
            let rows: Vec<Vec<String>> = runs
                .iter()
                .map(|r| {
                    vec![
                        r.run_id.clone(),
                        r.workflow.clone(),
                        r.status.clone(),
                        r.created_at.clone(),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(&["RUN ID", "WORKFLOW", "STATUS", "CREATED"], &rows)
            );
            Ok(())
        }
        RunsAction::Show { run_id } => {
            let run = client.get_run(&run_id).await?;
            let events = client.events(&run_id).await?;
            if json_out {
                return print_json(&json!({ "run": run, "events": events }));
            }
            print!("{}", describe(&run, &events));
            Ok(())
        }
        RunsAction::Cancel { run_id, reason } => {
            client.cancel_run(&run_id, reason.as_deref()).await?;
            if json_out {
                print_json(&json!({ "run_id": run_id }))
            } else {
                println!("cancel requested for {run_id}");
                Ok(())
            }
        }
    }
}

/// A run and its journal, as `tether runs show` prints them.
fn describe(run: &RunInfo, events: &[Value]) -> String {
    let mut out = format!(
        "run       {}\nworkflow  {}\nstatus    {}\ncreated   {}\nupdated   {}\ninput     {}\n",
        run.run_id, run.workflow, run.status, run.created_at, run.updated_at, run.input
    );
    if let Some(output) = &run.output {
        out.push_str(&format!("output    {output}\n"));
    }
    if let Some(error) = &run.error {
        out.push_str(&format!("error     {}: {}\n", error.code, error.message));
    }
    out.push_str(&format!("\njournal ({} entries)\n", events.len()));
    out.push_str(&timeline::render(events));
    out
}
