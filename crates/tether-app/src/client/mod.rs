//! The client commands of `tether`: `runs`, `hooks` and `signal`, talking to a server's HTTP
//! API through `tether_client`. Human-readable output by default, the JSON answer with
//! `--json`; errors are one line, exit code 1 (2 for malformed arguments).

pub mod hooks;
mod output;
pub mod runs;
pub mod signal;
mod timeline;

use std::fmt;

use clap::Args;
use serde_json::Value;
use tether_client::{Client, ClientError};

pub use hooks::HooksCommand;
pub use runs::RunsCommand;
pub use signal::SignalArgs;

/// Where the server is and how to talk to it; accepted before or after the subcommand.
#[derive(Debug, Args)]
pub struct ClientOpts {
    /// The server's base URL.
    #[arg(
        long,
        global = true,
        env = "TETHER_SERVER",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL"
    )]
    server: String,
    /// Send `Authorization: Bearer <TOKEN>` (for a server started with `--api-token`).
    #[arg(
        long,
        global = true,
        env = "TETHER_API_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    api_token: Option<String>,
    /// Print the server's JSON answer instead of text (for scripts).
    #[arg(long, global = true)]
    json: bool,
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

/// Why a client command failed.
#[derive(Debug)]
pub enum CliError {
    /// The arguments cannot work, e.g. malformed JSON (exit code 2).
    Usage(String),
    /// The request failed or the server refused it (exit code 1).
    Failed(String),
}

impl CliError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Failed(_) => 1,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Failed(m) => {
                // One line, whatever the server said.
                f.write_str(&m.replace(['\n', '\r'], " "))
            }
        }
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        CliError::Failed(e.to_string())
    }
}

/// Parse the JSON given to `flag`; malformed JSON is a usage error.
fn parse_json(flag: &str, text: &str) -> Result<Value, CliError> {
    serde_json::from_str(text)
        .map_err(|e| CliError::Usage(format!("{flag} is not valid JSON: {e}")))
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
        assert_eq!(CliError::Failed("a\nb".into()).to_string(), "a b");
    }
}
