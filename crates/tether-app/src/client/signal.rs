//! `signal ID --payload JSON [--idempotency-key K]`.

use clap::Args;
use serde_json::json;

use super::output::print_json;
use super::{parse_json, ClientOpts};
use crate::error::CommandError;

/// `tether signal`: send a signal to the run waiting on it (or keep it until one waits).
#[derive(Debug, Args)]
pub struct SignalArgs {
    /// The signal's id.
    signal_id: String,
    /// The payload, as JSON.
    #[arg(long, value_name = "JSON", default_value = "null")]
    payload: String,
    /// Retrying with the same key and payload delivers nothing new and gives the first answer;
    /// the same key with another payload is refused.
    #[arg(long, value_name = "K")]
    idempotency_key: Option<String>,
}

/// Send the signal; prints the run it was delivered to, if any.
pub(crate) async fn run(opts: &ClientOpts, args: SignalArgs) -> Result<(), CommandError> {
    let payload = parse_json("--payload", &args.payload)?;
    let delivered_to = opts
        .client()
        .signal_idempotent(&args.signal_id, &payload, args.idempotency_key.as_deref())
        .await?;
    if opts.json {
        return print_json(&json!({ "signal_id": args.signal_id, "delivered_to": delivered_to }));
    }
    match delivered_to {
        Some(run_id) => println!("delivered to {run_id}"),
        None => println!(
            "no run is waiting on {}; kept until one does",
            args.signal_id
        ),
    }
    Ok(())
}
