//! [`App`]: the user's workflows, and the whole command line of the binary that serves them.

use std::ffi::OsString;
use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tether_core::{Ctx, HookDef, Registry, RegistryError, WorkflowError};
use tether_engine::{Engine, EngineConfig};
use tether_server::ServerOptions;
use tether_store::Store;

use crate::command::{AppCommand, Cli};
use crate::error::CommandError;
use crate::telemetry::TelemetryOptions;
use crate::ClientOpts;

/// A program's workflows and hook definitions, and the command line of the binary that runs
/// them: `serve`, `replay`, `runs`, `hooks`, `signal`.
///
/// ```no_run
/// # use tether_app as tether; // users write `tether::App`, through the facade
/// # use serde_json::{json, Value};
/// # use tether_core::{Ctx, WorkflowError};
/// async fn greet(ctx: Ctx, name: String) -> Result<Value, WorkflowError> {
///     let greeting: String = ctx
///         .step("greet", name, |name| async move { Ok(format!("hello {name}")) })
///         .await?;
///     Ok(json!({ "greeting": greeting }))
/// }
///
/// fn main() -> std::process::ExitCode {
///     tether::App::new().workflow("greet", greet).run()
/// }
/// ```
///
/// A name registered twice (workflow or hook definition) is refused when the binary starts,
/// with an error naming it (exit code 2).
#[derive(Clone, Debug, Default)]
pub struct App {
    registry: Registry,
    about: Option<String>,
    version: Option<String>,
}

impl App {
    /// An app with no workflows yet.
    pub fn new() -> App {
        App::default()
    }

    /// Register `f` as workflow `name`: a plain `async fn(Ctx, I) -> Result<O, WorkflowError>`
    /// whose input `I` is decoded from the run's JSON input and whose output `O` is stored
    /// as JSON.
    pub fn workflow<F, Fut, I, O>(mut self, name: &str, f: F) -> App
    where
        F: Fn(Ctx, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, WorkflowError>> + Send + 'static,
        I: DeserializeOwned + 'static,
        O: Serialize + 'static,
    {
        self.registry.workflow(name, f);
        self
    }

    /// Register a hook definition, so payloads sent to hooks created from it are checked
    /// against its type when they arrive (a payload that does not fit gets `400
    /// invalid_payload` and never reaches the run).
    pub fn hook<T>(mut self, def: &HookDef<T>) -> App
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        self.registry.hook(def);
        self
    }

    /// Register what a function registers: for crates that export their workflows as one
    /// `fn register(&mut Registry)`.
    pub fn register(mut self, f: impl FnOnce(&mut Registry)) -> App {
        f(&mut self.registry);
        self
    }

    /// The one-line description `--help` shows.
    pub fn about(mut self, text: impl Into<String>) -> App {
        self.about = Some(text.into());
        self
    }

    /// The version `--version` shows (e.g. `env!("CARGO_PKG_VERSION")`; default: Tether's).
    pub fn version(mut self, version: impl Into<String>) -> App {
        self.version = Some(version.into());
        self
    }

    /// The workflows and hook definitions registered so far.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// `Ok` when every name was registered once.
    pub fn check(&self) -> Result<(), RegistryError> {
        self.registry.check()
    }

    /// Parse the process's arguments and run the command they name; returns the exit code
    /// (0 success, 1 failure, 2 usage error). The whole `main` of a user's binary.
    pub fn run(self) -> ExitCode {
        self.run_from(std::env::args_os())
    }

    /// [`App::run`] with the given arguments (the first is the binary's name).
    pub fn run_from<I, T>(self, args: I) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let cli: Cli = match self.parse(args) {
            Ok(cli) => cli,
            Err(e) => e.exit(),
        };
        self.execute(cli.global, cli.command)
    }

    /// For a program with its own `main`: start an engine running this app's workflows on
    /// `store`. Refuses a name registered twice.
    pub fn engine(
        &self,
        store: Arc<dyn Store>,
        config: EngineConfig,
    ) -> Result<Engine, RegistryError> {
        self.check()?;
        Ok(Engine::start(store, self.registry.clone(), config))
    }

    /// For a program with its own `main`: the HTTP API, web UI, metrics and webhook routes of
    /// `engine`, as an axum [`Router`](axum::Router) to serve or to mount under a path
    /// prefix of an existing app with `Router::nest`. Webhook URLs are built from the
    /// engine's `public_url`, so give it the prefix too (`https://host/prefix`).
    pub fn router(engine: &Engine, options: ServerOptions) -> axum::Router {
        tether_server::router(engine.clone(), options)
    }

    /// Parse `args` into `P`, a command line built on [`AppCommand`] (the help lists this
    /// app's workflows). For binaries that add commands of their own, like `tether bench`.
    #[doc(hidden)]
    pub fn parse<P, I, T>(&self, args: I) -> Result<P, clap::Error>
    where
        P: Parser,
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let command = self.decorate(P::command());
        let matches = command.try_get_matches_from(args)?;
        P::from_arg_matches(&matches)
    }

    /// Run one of the app's commands; returns the exit code.
    #[doc(hidden)]
    pub fn execute(self, global: ClientOpts, command: AppCommand) -> ExitCode {
        if let Err(e) = self.check() {
            return report(&CommandError::from(e));
        }
        let telemetry = match &command {
            AppCommand::Serve(args) => args.telemetry(),
            _ => TelemetryOptions::default(),
        };
        let registry = self.registry;
        block_on(&telemetry, async move {
            match command {
                AppCommand::Serve(args) => {
                    crate::serve::run(*args, global.api_token.clone(), registry).await
                }
                AppCommand::Replay(args) => crate::replay::run(args, &registry, global.json).await,
                AppCommand::Runs(cmd) => crate::client::runs::run(&global, cmd).await,
                AppCommand::Hooks(cmd) => crate::client::hooks::run(&global, cmd).await,
                AppCommand::Signal(args) => crate::client::signal::run(&global, args).await,
                AppCommand::Schedules(cmd) => crate::client::schedules::run(&global, cmd).await,
            }
        })
    }

    /// The command line with this app's name, version and workflows in its help.
    fn decorate(&self, command: clap::Command) -> clap::Command {
        let names = self.registry.workflow_names();
        let list = if names.is_empty() {
            "none registered".to_owned()
        } else {
            names.join(", ")
        };
        let mut command = command
            .name(bin_name())
            .mut_subcommand("serve", |serve| {
                serve.about(format!(
                    "Serve this binary's workflows ({list}): HTTP API, web UI, metrics, webhooks"
                ))
            })
            .after_help(format!("Workflows: {list}"));
        if let Some(about) = &self.about {
            command = command.about(about.clone());
        }
        if let Some(version) = &self.version {
            command = command.version(version.clone());
        }
        command
    }
}

/// The binary's file name (for `--help`), `tether` when it cannot be told.
fn bin_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "tether".to_owned())
}

/// Set up logs (and traces), run `fut` on a multi-threaded runtime, print its error on one
/// line; returns the exit code. The one way every command runs.
#[doc(hidden)]
pub fn block_on(
    telemetry: &TelemetryOptions,
    fut: impl Future<Output = Result<(), CommandError>>,
) -> ExitCode {
    // Dropped last (after the runtime): sends the spans still buffered.
    let _telemetry = match crate::telemetry::init(telemetry) {
        Ok(t) => t,
        Err(message) => return report(&CommandError::Usage(message)),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return report(&CommandError::Failed(format!(
                "cannot start the async runtime: {e}"
            )))
        }
    };
    let result = runtime.block_on(fut);
    drop(runtime);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

/// Print `e` on one line of stderr; its exit code.
fn report(e: &CommandError) -> ExitCode {
    eprintln!("tether: {}", e.one_line());
    ExitCode::from(e.exit_code())
}

#[cfg(test)]
mod tests {
    use std::process::ExitCode;

    use tether_core::{Ctx, WorkflowError};

    use super::App;

    async fn noop(_: Ctx, _: ()) -> Result<(), WorkflowError> {
        Ok(())
    }

    #[test]
    fn a_name_registered_twice_stops_the_binary_with_a_usage_error() {
        let app = App::new().workflow("greet", noop).workflow("greet", noop);
        assert_eq!(
            app.check().map_err(|e| e.to_string()),
            Err("workflow `greet` is registered twice; give each workflow its own name".into())
        );
        // Refused before anything runs: no store opened, no server started.
        let code = app.run_from(["app", "replay", "--all", "--db", "/nonexistent/x.db"]);
        assert_eq!(code, ExitCode::from(2));
    }

    #[test]
    fn the_help_lists_the_registered_workflows() {
        let app = App::new().workflow("greet", noop).workflow("bill", noop);
        let err = app
            .parse::<crate::command::Cli, _, _>(["app", "serve", "--help"])
            .expect_err("--help stops parsing");
        let help = err.to_string();
        assert!(help.contains("(bill, greet)"), "{help}");
    }
}
