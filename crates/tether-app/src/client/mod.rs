//! The client commands: `runs`, `hooks`, `signal` and `schedules`, talking to a server's HTTP API through
//! `tether_client`. Human-readable output by default, the JSON answer with `--json`; errors
//! are one line, exit code 1 (2 for malformed arguments).

pub mod hooks;
mod output;
pub mod runs;
pub mod schedules;
pub mod signal;
mod timeline;

use clap::Args;
use serde_json::Value;
use tether_client::Client;

pub use hooks::HooksCommand;
pub use runs::RunsCommand;
pub use schedules::SchedulesCommand;
pub use signal::SignalArgs;

use crate::error::CommandError;

/// Options every command takes, before or after its name: where the server is, the API token,
/// and JSON output.
#[derive(Clone, Debug, Default, Args)]
pub struct ClientOpts {
    /// The server's base URL (client commands).
    #[arg(
        long,
        global = true,
        env = "TETHER_SERVER",
        hide_env_values = true,
        default_value = "http://127.0.0.1:8080",
        value_name = "URL"
    )]
    pub server: String,
    /// The API token. `serve` requires `Authorization: Bearer <TOKEN>` on every `/v1/...`
    /// request and on `/metrics` (webhook URLs and `/healthz` never need it; without a token
    /// the API is open to anyone who can reach it); client commands send it.
    #[arg(
        long,
        global = true,
        env = "TETHER_API_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub api_token: Option<String>,
    /// Print JSON instead of text (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
}

impl ClientOpts {
    /// A client of `--server`, with the API token if one is given.
    fn client(&self) -> Client {
        let client = Client::new(self.server.clone());
        match &self.api_token {
            Some(token) => client.with_api_token(token.clone()),
            None => client,
        }
    }
}

/// Parse the JSON given to `flag`; malformed JSON is a usage error.
fn parse_json(flag: &str, text: &str) -> Result<Value, CommandError> {
    serde_json::from_str(text)
        .map_err(|e| CommandError::Usage(format!("{flag} is not valid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_json_is_a_usage_error() {
        let e = parse_json("--input", "{nope").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string().starts_with("--input is not valid JSON"),
            "{e}"
        );
        assert_eq!(
            parse_json("--input", "[1]").unwrap(),
            serde_json::json!([1])
        );
    }

    #[test]
    fn errors_print_on_one_line() {
        assert_eq!(CommandError::Failed("a\nb".into()).one_line(), "a b");
    }
}
