//! `replay`: check stored runs against this binary's code without changing them. Opens the
//! database directly and only reads it (no migration, no claim, no write, no step executed):
//! `replay RUN_ID` checks one run, `replay --all` every run that has not ended, which is the
//! gate to pass before rolling a new binary out.

use clap::Args;
use serde_json::json;
use tether_core::{Registry, RunStatus};
use tether_engine::replay::{check_run, CheckError, RunCheck};
use tether_store::{RunCursor, RunFilter, Store};

use crate::error::CommandError;
use crate::store::OpenOptions;

/// Runs read per page by `--all`.
const PAGE: usize = 500;

/// Options of `replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The run to check (or `--all`).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub run_id: Option<String>,
    /// Check every run that has not ended (pending, running, suspended): exit 0 when all of
    /// them replay, 1 listing each run that would diverge.
    #[arg(long)]
    pub all: bool,
    /// The database the runs are stored in (as `serve --db`). It must exist: nothing is
    /// created or migrated.
    #[arg(
        long,
        env = "TETHER_DB",
        hide_env_values = true,
        default_value = "sqlite://tether.db"
    )]
    pub db: String,
    /// PostgreSQL only: the schema Tether's tables are in (as `serve --pg-schema`).
    #[arg(long, env = "TETHER_PG_SCHEMA", value_name = "SCHEMA")]
    pub pg_schema: Option<String>,
}

/// Run `replay`: the report on stdout; a divergence is an error (exit code 1) naming each
/// run, the position, and the recorded and new commands.
pub(crate) async fn run(
    args: ReplayArgs,
    registry: &Registry,
    json_out: bool,
) -> Result<(), CommandError> {
    let store = crate::store::open(&OpenOptions {
        db: args.db.clone(),
        pool_size: 2,
        pg_schema: args.pg_schema.clone(),
        read_only: true,
    })
    .await?;
    match &args.run_id {
        Some(run_id) => one(store.as_ref(), registry, run_id, json_out).await,
        None => all(store.as_ref(), registry, json_out).await,
    }
}

async fn one(
    store: &dyn Store,
    registry: &Registry,
    run_id: &str,
    json_out: bool,
) -> Result<(), CommandError> {
    let report = check_run(store, registry, run_id)
        .await
        .map_err(|e| CommandError::Failed(e.to_string()))?;
    if json_out {
        println!(
            "{}",
            json!({ "run_id": run_id, "ok": report.is_ok(), "report": report.to_string() })
        );
    }
    if report.is_ok() {
        if !json_out {
            println!("{report}");
        }
        Ok(())
    } else {
        Err(CommandError::Failed(report.to_string()))
    }
}

/// What `--all` found for one run.
enum Outcome {
    Replays(RunCheck),
    Diverges(RunCheck),
    /// The run cannot be checked by this binary (e.g. its workflow is not registered here).
    Unchecked(String, CheckError),
}

async fn all(store: &dyn Store, registry: &Registry, json_out: bool) -> Result<(), CommandError> {
    let mut outcomes = Vec::new();
    for status in [RunStatus::Pending, RunStatus::Running, RunStatus::Suspended] {
        for run_id in unfinished(store, status).await? {
            let outcome = match check_run(store, registry, &run_id).await {
                Ok(check) if check.is_ok() => Outcome::Replays(check),
                Ok(check) => Outcome::Diverges(check),
                // Ended or gone since it was listed: nothing to check any more.
                Err(CheckError::RunNotFound { .. }) => continue,
                Err(CheckError::Store(e)) => {
                    return Err(CommandError::Failed(format!(
                        "cannot read run {run_id}: {e}"
                    )))
                }
                Err(e) => Outcome::Unchecked(run_id.clone(), e),
            };
            outcomes.push(outcome);
        }
    }
    let bad: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| !matches!(o, Outcome::Replays(_)))
        .collect();
    if json_out {
        let runs: Vec<_> = outcomes.iter().map(outcome_json).collect();
        println!(
            "{}",
            json!({
                "checked": outcomes.len(),
                "diverged": bad.len(),
                "runs": runs,
            })
        );
    } else {
        for outcome in &outcomes {
            match outcome {
                Outcome::Replays(c) => println!("ok        {} ({}): {c}", c.run_id, c.workflow),
                Outcome::Diverges(c) => println!("DIVERGES  {c}"),
                Outcome::Unchecked(id, e) => println!("UNCHECKED {id}: {e}"),
            }
        }
        println!(
            "{}: {} replay, {} would not",
            count(
                outcomes.len(),
                "unfinished run checked",
                "unfinished runs checked"
            ),
            outcomes.len() - bad.len(),
            bad.len()
        );
    }
    if bad.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = bad
        .iter()
        .map(|o| match o {
            Outcome::Diverges(c) => c.run_id.clone(),
            Outcome::Unchecked(id, _) => id.clone(),
            Outcome::Replays(_) => String::new(),
        })
        .collect();
    Err(CommandError::Failed(format!(
        "{} of {} unfinished run(s) would not replay with this binary ({}); do not deploy it \
         as it is: keep the commands these runs recorded (add new ones after them, or under \
         a new workflow name), or let these runs end or cancel them first",
        bad.len(),
        outcomes.len(),
        names.join(", ")
    )))
}

/// The ids of every root run with `status`, newest first, page by page.
async fn unfinished(store: &dyn Store, status: RunStatus) -> Result<Vec<String>, CommandError> {
    let mut ids = Vec::new();
    let mut before = None;
    loop {
        let filter = RunFilter {
            status: Some(status),
            limit: PAGE,
            before: before.take(),
            ..RunFilter::default()
        };
        let page = store
            .list_runs(&filter)
            .await
            .map_err(|e| CommandError::Failed(format!("cannot list runs: {e}")))?;
        let Some(last) = page.last() else {
            return Ok(ids);
        };
        before = Some(RunCursor::of(last));
        let full = page.len() == PAGE;
        ids.extend(page.into_iter().map(|r| r.run_id));
        if !full {
            return Ok(ids);
        }
    }
}

fn outcome_json(outcome: &Outcome) -> serde_json::Value {
    match outcome {
        Outcome::Replays(c) => {
            json!({ "run_id": c.run_id, "workflow": c.workflow, "ok": true, "report": c.to_string() })
        }
        Outcome::Diverges(c) => {
            json!({ "run_id": c.run_id, "workflow": c.workflow, "ok": false, "report": c.to_string() })
        }
        Outcome::Unchecked(id, e) => json!({ "run_id": id, "ok": false, "report": e.to_string() }),
    }
}

/// `1 run`, `2 runs`.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
