//! The one error type of the commands, and the exit code each kind gives.

/// Why a command failed. The process prints the message on one line after the binary's name
/// and exits with [`CommandError::exit_code`].
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The command line cannot work: a bad flag value, malformed JSON, a name registered twice
    /// (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// The command ran and failed: a server refusal, a database that cannot be opened, a run
    /// whose journal the code no longer reproduces (exit code 1).
    #[error("{0}")]
    Failed(String),
}

impl CommandError {
    /// The process exit code: 2 for usage errors, 1 for failures.
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::Usage(_) => 2,
            CommandError::Failed(_) => 1,
        }
    }

    /// The message on one line, whatever a server or database said.
    pub fn one_line(&self) -> String {
        self.to_string().replace(['\n', '\r'], " ")
    }
}

impl From<tether_client::ClientError> for CommandError {
    fn from(e: tether_client::ClientError) -> Self {
        CommandError::Failed(e.to_string())
    }
}

impl From<tether_core::RegistryError> for CommandError {
    fn from(e: tether_core::RegistryError) -> Self {
        CommandError::Usage(e.to_string())
    }
}
