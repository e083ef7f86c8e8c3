//! `schedules create | list | show | delete | pause | resume`.

use clap::{Args, Subcommand};
use serde_json::json;
use tether_client::{NewSchedule, ScheduleInfo};

use super::output::{print_json, table};
use super::{parse_json, ClientOpts};
use crate::error::CommandError;

/// `tether schedules`: durable cron schedules, each tick starting one run.
#[derive(Debug, Args)]
pub struct SchedulesCommand {
    #[command(subcommand)]
    action: SchedulesAction,
}

#[derive(Debug, Subcommand)]
enum SchedulesAction {
    /// Create schedule ID: each tick of CRON starts one run of WORKFLOW
    /// (`sched:ID:TICK_MS`). Creating it again the same way is harmless.
    Create {
        /// The schedule's id (letters, digits, - _ . :).
        id: String,
        /// The workflow each tick starts.
        workflow: String,
        /// The cron expression, quoted: 5 fields (`0 3 * * *`: 03:00 every day) or 6 with
        /// seconds first (`*/10 * * * * *`: every 10 seconds).
        cron: String,
        /// The runs' input, as JSON.
        #[arg(long, default_value = "{}", value_name = "JSON")]
        input: String,
        /// The IANA time zone the expression is read in.
        #[arg(long, default_value = "UTC", value_name = "TZ")]
        timezone: String,
        /// A tick while the previous run goes on: skip or allow.
        #[arg(long, default_value = "skip", value_name = "skip|allow")]
        overlap: String,
        /// Ticks missed while no node was up: one (the latest runs once) or skip.
        #[arg(long, default_value = "one", value_name = "one|skip")]
        catch_up: String,
    },
    /// List schedules with their next tick.
    List,
    /// Show a schedule.
    Show {
        /// The schedule's id.
        id: String,
    },
    /// Delete a schedule (its runs stay).
    Delete {
        /// The schedule's id.
        id: String,
    },
    /// Pause a schedule: no tick fires until it is resumed.
    Pause {
        /// The schedule's id.
        id: String,
    },
    /// Resume a paused schedule from its next tick after now.
    Resume {
        /// The schedule's id.
        id: String,
    },
}

/// Run a `tether schedules` command.
pub(crate) async fn run(opts: &ClientOpts, cmd: SchedulesCommand) -> Result<(), CommandError> {
    let client = opts.client();
    let schedule = match cmd.action {
        SchedulesAction::Create {
            id,
            workflow,
            cron,
            input,
            timezone,
            overlap,
            catch_up,
        } => {
            let new = NewSchedule {
                id,
                workflow,
                cron,
                timezone: Some(timezone),
                input: Some(parse_json("--input", &input)?),
                overlap: Some(overlap),
                catch_up: Some(catch_up),
            };
            client.create_schedule(&new).await?
        }
        SchedulesAction::List => {
            let all = client.list_schedules().await?;
            if opts.json {
                return print_json(&json!({ "schedules": all }));
            }
            print!("{}", listing(&all));
            return Ok(());
        }
        SchedulesAction::Show { id } => client.get_schedule(&id).await?,
        SchedulesAction::Delete { id } => {
            client.delete_schedule(&id).await?;
            if opts.json {
                return print_json(&json!({ "id": id, "deleted": true }));
            }
            println!("deleted schedule {id}");
            return Ok(());
        }
        SchedulesAction::Pause { id } => client.pause_schedule(&id).await?,
        SchedulesAction::Resume { id } => client.resume_schedule(&id).await?,
    };
    if opts.json {
        return print_json(&json!(schedule));
    }
    print!("{}", describe(&schedule));
    Ok(())
}

/// `tether schedules list`: one row per schedule.
fn listing(all: &[ScheduleInfo]) -> String {
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|s| {
            vec![
                s.id.clone(),
                s.workflow.clone(),
                s.cron.clone(),
                s.timezone.clone(),
                if s.paused { "paused" } else { "active" }.to_owned(),
                next_tick(s),
            ]
        })
        .collect();
    table(
        &["ID", "WORKFLOW", "CRON", "TIMEZONE", "STATE", "NEXT TICK"],
        &rows,
    )
}

fn next_tick(s: &ScheduleInfo) -> String {
    match (&s.next_tick, s.paused) {
        (_, true) => "-".to_owned(),
        (Some(t), false) => t.clone(),
        (None, false) => "none".to_owned(),
    }
}

/// One schedule, as the other commands print it.
fn describe(s: &ScheduleInfo) -> String {
    format!(
        "schedule  {}\nworkflow  {}\ncron      {} ({})\ninput     {}\noverlap   {}\ncatch-up  {}\n\
         state     {}\nnext tick {}\nlast run  {}\n",
        s.id,
        s.workflow,
        s.cron,
        s.timezone,
        s.input,
        s.overlap,
        s.catch_up,
        if s.paused { "paused" } else { "active" },
        next_tick(s),
        s.last_run_id.as_deref().unwrap_or("-"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(paused: bool) -> ScheduleInfo {
        ScheduleInfo {
            id: "nightly".into(),
            workflow: "report".into(),
            cron: "0 3 * * *".into(),
            timezone: "Europe/Paris".into(),
            input: json!({}),
            overlap: "skip".into(),
            catch_up: "one".into(),
            paused,
            next_tick: Some("2025-01-02T02:00:00.000Z".into()),
            next_tick_ms: Some(1_735_783_200_000),
            last_run_id: None,
            created_at: "2025-01-01T00:00:00.000Z".into(),
            updated_at: "2025-01-01T00:00:00.000Z".into(),
        }
    }

    #[test]
    fn the_listing_shows_the_next_tick_of_active_schedules() {
        let out = listing(&[info(false)]);
        assert!(out.contains("NEXT TICK"), "{out}");
        assert!(out.contains("2025-01-02T02:00:00.000Z"), "{out}");
        let paused = listing(&[info(true)]);
        assert!(paused.contains("paused"), "{paused}");
        assert!(describe(&info(false)).contains("last run  -"));
    }
}
