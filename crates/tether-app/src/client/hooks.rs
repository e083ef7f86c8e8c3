//! `hooks resume`, `hooks link`.

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
    /// Make a resume link for the hook holding TOKEN: a URL that resumes it with the payload
    /// once, for anyone holding it (no API token); prints the URL.
    Link {
        /// The hook's token.
        token: String,
        /// The payload the link delivers, as JSON (at most 2048 bytes).
        #[arg(long, value_name = "JSON")]
        payload: String,
        /// How long the link works, e.g. `2h`, `30m` (default a day; at most the server's
        /// idempotency window).
        #[arg(long, value_name = "DURATION", value_parser = crate::serve::window::parse_window)]
        expires_in: Option<crate::serve::window::Window>,
        /// What the link's page shows above the payload.
        #[arg(long, value_name = "TEXT")]
        label: Option<String>,
        /// The set of links answering one question (e.g. `decision` for an approve and a
        /// reject link): the first of the set used wins, the others answer `410 link_used`.
        #[arg(long, value_name = "NAME")]
        set: Option<String>,
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
        HooksAction::Link {
            token,
            payload,
            expires_in,
            label,
            set,
        } => {
            let payload = parse_json("--payload", &payload)?;
            let expires_in = match expires_in {
                Some(crate::serve::window::Window(None)) => {
                    return Err(CommandError::Usage(
                        "--expires-in must be a duration (a link cannot live for ever)".into(),
                    ))
                }
                Some(crate::serve::window::Window(d)) => d,
                None => None,
            };
            let mut options = tether_client::LinkOptions::new();
            if let Some(d) = expires_in {
                options = options.expires_in(d);
            }
            if let Some(label) = label {
                options = options.label(label);
            }
            if let Some(set) = set {
                options = options.set(set);
            }
            let link = client.create_resume_link(&token, &payload, options).await?;
            if opts.json {
                print_json(&json!({ "url": link.url, "expires_at_ms": link.expires_at_ms }))
            } else {
                println!("{}", link.url);
                Ok(())
            }
        }
    }
}
