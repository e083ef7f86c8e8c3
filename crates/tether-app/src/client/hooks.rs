//! `hooks resume`.

use clap::{Args, Subcommand};
use serde_json::json;
use tether_client::ClientError;

use super::output::print_json;
use super::{parse_json, ClientOpts};
use crate::error::CommandError;

/// `tether hooks`: deliver payloads to hooks.
#[derive(Debug, Args)]
pub struct HooksCommand {
    #[command(subcommand)]
    action: HooksAction,
}

#[derive(Debug, Subcommand)]
enum HooksAction {
    /// Deliver a payload to the hook holding TOKEN; prints the run it resumed.
    Resume {
        /// The hook's token.
        token: String,
        /// The payload, as JSON.
        #[arg(long, value_name = "JSON")]
        payload: String,
        /// Retrying with the same key stores nothing new and gives the first answer.
        #[arg(long, value_name = "K")]
        idempotency_key: Option<String>,
    },
}

/// Run a `tether hooks` command.
pub(crate) async fn run(opts: &ClientOpts, cmd: HooksCommand) -> Result<(), CommandError> {
    let client = opts.client();
    match cmd.action {
        HooksAction::Resume {
            token,
            payload,
            idempotency_key,
        } => {
            let payload = parse_json("--payload", &payload)?;
            let run_id = client
                .resume_hook(&token, &payload, idempotency_key.as_deref())
                .await
                .map_err(|e| match e {
                    ClientError::Api { ref code, .. } if code == "hook_not_found" => {
                        CommandError::Failed(format!("hook not found: {token}"))
                    }
                    other => other.into(),
                })?;
            if opts.json {
                print_json(&json!({ "run_id": run_id }))
            } else {
                println!("{run_id}");
                Ok(())
            }
        }
    }
}
