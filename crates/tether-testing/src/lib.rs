//! Tether's test kit (`tether::testing`): run workflows in-process on a temporary SQLite store
//! with a **virtual clock**, and assert on what they did.
//!
//! A [`TestEnv`] is an engine of its own on a fresh store in a temporary directory, whose clock
//! stands still at [`START_MS`] (2025-01-01T00:00:00Z) until the test moves it. Every call that
//! changes something ([`TestEnv::start`], [`TestEnv::resume`], [`TestEnv::signal`],
//! [`TestEnv::cancel`], [`TestEnv::advance`]) returns once the engine has **settled**: every
//! run has done all it can and waits for a hook, a signal or a time still in the future. The
//! test then looks ([`TestEnv::status`], [`TestEnv::output`], [`TestEnv::journal`],
//! [`TestEnv::hooks`]) without waiting or polling.
//!
//! [`TestEnv::advance`] moves the clock forward from one due timer to the next, so a day of
//! hourly timers takes microseconds, each timer fires at its own instant (never early), and
//! steps retried with back-off wait on the virtual clock too. [`TestEnv::replay`] rebuilds a
//! run from its journal against the workflow code, without writing: it proves the code
//! replays what it recorded (no non-determinism).
//!
//! Like Temporal's time-skipping test environment, without a server process and without a
//! single real sleep in the test.
//!
//! ```
//! use std::time::Duration;
//!
//! use tether_core::{race, Ctx, Either, HookOptions, Registry, WorkflowError};
//! use tether_testing::TestEnv;
//!
//! /// Wait a day for an approval.
//! async fn approval(ctx: Ctx, _: ()) -> Result<String, WorkflowError> {
//!     let mut hook = ctx.create_hook::<String>(HookOptions::new()).await?;
//!     match race(hook.recv(), ctx.sleep(Duration::from_secs(24 * 3600))).await {
//!         Either::Left(answer) => answer,
//!         Either::Right(timer) => timer.map(|()| "timed out".to_string()),
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tether_testing::TestError> {
//! let mut registry = Registry::new();
//! registry.workflow("approval", approval);
//! let env = TestEnv::new(registry).await?;
//!
//! let run = env.start("approval", ()).await?;
//! env.advance(Duration::from_secs(23 * 3600)).await?;
//! assert!(!env.status(&run).await?.is_terminal()); // still waiting
//! env.advance(Duration::from_secs(3600)).await?;
//! assert_eq!(env.output::<String>(&run).await?, "timed out");
//! env.replay(&run).await?; // the journal replays against the code
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tether_core::{ErrorInfo, Event, HookDef, Registry, RunStatus};
use tether_engine::replay::{check_run, CheckError, RunCheck};
use tether_engine::{Clock, Engine, EngineConfig, EngineError};
use tether_store::{HookRecord, RunCursor, RunFilter, RunRecord, StoreError};
use tether_store_sqlite::SqliteStore;

/// Where the virtual clock of a new [`TestEnv`] stands: 2025-01-01T00:00:00Z, in milliseconds
/// since the Unix epoch.
pub const START_MS: u64 = 1_735_689_600_000;

/// Most rounds of "settle, then make live the runs that came due" before
/// [`TestError::NotSettling`].
const MAX_SETTLE_ROUNDS: usize = 1000;

/// What went wrong in a test kit call. Every message says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestError {
    /// Two workflows or hook definitions were registered under one name.
    #[error(transparent)]
    Registry(#[from] tether_core::RegistryError),
    /// The temporary directory of the store could not be created.
    #[error("could not create a temporary directory for the test store: {0} (is the temp dir, $TMPDIR, writable?)")]
    TempDir(#[source] std::io::Error),
    /// The SQLite store could not be opened.
    #[error("could not open the test store at {path}: {source}")]
    OpenStore {
        /// The database file.
        path: String,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// An input or payload could not be turned into JSON.
    #[error("could not serialize the {what} to JSON: {source} (a workflow input or payload must serialize to JSON)")]
    Serialize {
        /// `input` or `payload`.
        what: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The engine refused the call (unknown workflow, invalid payload, unknown token, ...).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The run has not completed (yet, or it failed or was cancelled), so it has no output.
    #[error(
        "run {run_id} has no output: it is {status}{}; {hint}",
        .error.as_ref().map(|e| format!(" with error {}: {}", e.code, e.message)).unwrap_or_default(),
        hint = match .status {
            RunStatus::Failed | RunStatus::Cancelled => "look at its journal (TestEnv::journal) for the cause",
            _ => "advance the clock, resume its hooks or send its signals until it returns",
        }
    )]
    NotCompleted {
        /// The run.
        run_id: String,
        /// Its status.
        status: RunStatus,
        /// Its error, if it failed.
        error: Option<ErrorInfo>,
    },
    /// The run's output is not of the type asked for.
    #[error("the output of run {run_id} does not deserialize into the type asked for: {source}; the output is {output}")]
    Output {
        /// The run.
        run_id: String,
        /// Its output.
        output: Value,
        /// Why it does not fit.
        #[source]
        source: serde_json::Error,
    },
    /// [`TestEnv::hook_token`]: the run holds no active hook.
    #[error("run {run_id} holds no active hook: it has not created one yet (advance the clock or resume what it waits for first), disposed of it, or ended")]
    NoHook {
        /// The run.
        run_id: String,
    },
    /// [`TestEnv::hook_token`]: the run holds several hooks.
    #[error("run {run_id} holds {count} active hooks; pick the one you mean from TestEnv::hooks")]
    SeveralHooks {
        /// The run.
        run_id: String,
        /// How many it holds.
        count: usize,
    },
    /// [`TestEnv::replay`]: the code does not reproduce the run's journal.
    #[error("run {run_id} does not replay from its journal: {check}\nThe workflow must take the same decisions when run again: read time, randomness and the outside world only through ctx (ctx.now(), ctx.random(), steps), and keep the order of its commands.")]
    ReplayDiverged {
        /// The run.
        run_id: String,
        /// The full result of the check (the run and its hook threads).
        check: Box<RunCheck>,
    },
    /// [`TestEnv::replay`]: the run could not be checked at all.
    #[error("could not replay run {run_id}: {source}")]
    Replay {
        /// The run.
        run_id: String,
        /// Why.
        #[source]
        source: CheckError,
    },
    /// The store could not be read.
    #[error("could not read the test store: {0}")]
    Store(#[from] StoreError),
    /// Runs kept needing work without ever waiting: the engine did not settle.
    #[error("the engine did not settle: after {rounds} rounds, runs still had work to do ({runs}); a workflow may be failing to load over and over")]
    NotSettling {
        /// Rounds tried.
        rounds: usize,
        /// How many runs were made live in the last round.
        runs: usize,
    },
}

/// An engine on a temporary SQLite store with a virtual clock, for tests. See the
/// [crate documentation](crate).
///
/// The store lives in a temporary directory removed when the `TestEnv` is dropped. Call
/// [`TestEnv::shutdown`] at the end of a test to stop the engine's tasks at once (otherwise
/// they end with the test's runtime).
#[derive(Debug)]
pub struct TestEnv {
    engine: Engine,
    clock: Clock,
    db_path: PathBuf,
    // Dropped last: the store's files.
    _dir: tempfile::TempDir,
}

impl TestEnv {
    /// A fresh store in a temporary directory and an engine running `registry`'s workflows,
    /// with a manual clock standing at [`START_MS`] (2025-01-01T00:00:00Z).
    pub async fn new(registry: Registry) -> Result<TestEnv, TestError> {
        Self::with_config(registry, EngineConfig::default()).await
    }

    /// [`TestEnv::new`] with engine settings of your own (e.g. a small
    /// [`EngineConfig::max_live_runs`] to test runs rebuilt after eviction). Its clock is
    /// replaced by a manual one at [`START_MS`] unless it is already manual.
    pub async fn with_config(
        registry: Registry,
        mut config: EngineConfig,
    ) -> Result<TestEnv, TestError> {
        registry.check()?;
        let dir = tempfile::Builder::new()
            .prefix("tether-test-")
            .tempdir()
            .map_err(TestError::TempDir)?;
        let db_path = dir.path().join("tether.db");
        let location = db_path.display().to_string();
        let store = SqliteStore::open(&location)
            .await
            .map_err(|source| TestError::OpenStore {
                path: location.clone(),
                source,
            })?;
        if !config.clock.is_manual() {
            config.clock = Clock::manual(START_MS);
        }
        if config.poll_interval == EngineConfig::default().poll_interval {
            // The kit wakes due runs itself after each move of the clock; the poller is only
            // a backstop.
            config.poll_interval = Duration::from_millis(100);
        }
        if config.retry_delay == EngineConfig::default().retry_delay {
            config.retry_delay = Duration::from_millis(50);
        }
        let clock = config.clock.clone();
        let engine = Engine::start(Arc::new(store), registry, config);
        Ok(TestEnv {
            engine,
            clock,
            db_path,
            _dir: dir,
        })
    }

    /// The engine, for anything the kit does not wrap (its clock is [`TestEnv::clock`]).
    /// After calling it directly, [`TestEnv::settle`] before looking at the result.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The virtual clock. Prefer [`TestEnv::advance`] to moving it yourself: it fires timers
    /// one instant at a time and settles after each.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The SQLite database file of the store (deleted with the `TestEnv`).
    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// The virtual time.
    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// The virtual time, in milliseconds since the Unix epoch (as journal entries record it).
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Start a run of `workflow` with `input`; returns its id once the run has settled (it
    /// returned, or waits for a hook, a signal or a future time).
    pub async fn start(&self, workflow: &str, input: impl Serialize) -> Result<String, TestError> {
        let input = to_json("input", input)?;
        let run_id = self.engine.start_run(workflow, input).await?;
        self.settle().await?;
        Ok(run_id)
    }

    /// Deliver `payload` to the hook holding `token` (validated by the hook's definition, as
    /// a real resume is); returns the run id once the run has settled.
    pub async fn resume(&self, token: &str, payload: impl Serialize) -> Result<String, TestError> {
        let payload = to_json("payload", payload)?;
        let run_id = self.engine.resume_hook(token, payload, None).await?;
        self.settle().await?;
        Ok(run_id)
    }

    /// [`TestEnv::resume`] with the payload type of a hook definition checked at compile time.
    pub async fn resume_typed<T: Serialize>(
        &self,
        _definition: &HookDef<T>,
        token: &str,
        payload: &T,
    ) -> Result<String, TestError> {
        self.resume(token, payload).await
    }

    /// Send a signal (as from outside a run): the oldest run waiting on `signal_id` gets it,
    /// or it is kept until one waits. Returns the run it was delivered to, once it has settled.
    pub async fn signal(
        &self,
        signal_id: &str,
        payload: impl Serialize,
    ) -> Result<Option<String>, TestError> {
        let payload = to_json("payload", payload)?;
        let to = self.engine.signal(signal_id, payload).await?;
        self.settle().await?;
        Ok(to)
    }

    /// Cancel a run (the workflow sees `WorkflowError::Cancelled` at its next await); returns
    /// once it has settled.
    pub async fn cancel(&self, run_id: &str) -> Result<(), TestError> {
        self.engine.cancel_run(run_id, None).await?;
        self.settle().await
    }

    /// Move the virtual clock forward by `by`, firing every timer (and step retry back-off)
    /// that comes due on the way **at its own instant**, in order: the clock jumps to the next
    /// due time, the engine settles, and so on, then the clock is set to `now + by`. A
    /// workflow sleeping an hour 24 times completes in one `advance` of a day. Runs not in
    /// memory (evicted) are counted by the `wake_at` the store keeps for them.
    ///
    /// No real time passes: nothing sleeps.
    pub async fn advance(&self, by: Duration) -> Result<(), TestError> {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        let target = self.clock.now_ms().saturating_add(by);
        self.settle().await?;
        while let Some(next) = self.next_due().await? {
            if next > target {
                break;
            }
            self.clock.set_ms(next);
            self.settle().await?;
        }
        if self.clock.now_ms() < target {
            self.clock.set_ms(target);
            self.settle().await?;
        }
        Ok(())
    }

    /// Wait until the engine has nothing in flight and every run waits for something outside
    /// (a hook, a signal, a time in the future of the virtual clock), making live the runs
    /// that have work (see [`Engine::settle`], [`Engine::wake_due_runs`]). The kit's calls do
    /// this themselves; call it after using [`TestEnv::engine`] directly.
    pub async fn settle(&self) -> Result<(), TestError> {
        let mut runs = 0;
        for _ in 0..MAX_SETTLE_ROUNDS {
            self.engine.settle().await;
            runs = self.engine.wake_due_runs().await?;
            if runs == 0 {
                return Ok(());
            }
        }
        Err(TestError::NotSettling {
            rounds: MAX_SETTLE_ROUNDS,
            runs,
        })
    }

    /// The run as stored.
    pub async fn run(&self, run_id: &str) -> Result<RunRecord, TestError> {
        Ok(self.engine.get_run(run_id).await?)
    }

    /// The run's status.
    pub async fn status(&self, run_id: &str) -> Result<RunStatus, TestError> {
        Ok(self.run(run_id).await?.status)
    }

    /// The output of a completed run, as `T`. An error if the run has not completed (with its
    /// status and error) or its output is not a `T`.
    pub async fn output<T: DeserializeOwned>(&self, run_id: &str) -> Result<T, TestError> {
        let run = self.run(run_id).await?;
        if run.status != RunStatus::Completed {
            return Err(TestError::NotCompleted {
                run_id: run_id.to_string(),
                status: run.status,
                error: run.error,
            });
        }
        let output = run.output.unwrap_or(Value::Null);
        T::deserialize(&output).map_err(|source| TestError::Output {
            run_id: run_id.to_string(),
            output,
            source,
        })
    }

    /// The run's journal, in order.
    pub async fn journal(&self, run_id: &str) -> Result<Vec<Event>, TestError> {
        Ok(self.engine.events(run_id).await?)
    }

    /// The run's active hooks.
    pub async fn hooks(&self, run_id: &str) -> Result<Vec<HookRecord>, TestError> {
        Ok(self.engine.hooks(run_id).await?)
    }

    /// The token of the run's one active hook (for hooks with generated tokens). An error if
    /// it holds none or several.
    pub async fn hook_token(&self, run_id: &str) -> Result<String, TestError> {
        let mut hooks = self.hooks(run_id).await?;
        match hooks.len() {
            0 => Err(TestError::NoHook {
                run_id: run_id.to_string(),
            }),
            1 => Ok(hooks.remove(0).token),
            count => Err(TestError::SeveralHooks {
                run_id: run_id.to_string(),
                count,
            }),
        }
    }

    /// Rebuild the run (and its hook threads) from the stored journal against the registered
    /// workflow code, without writing or running steps. `Ok` (with the check's summary) if the
    /// code reproduces every recorded decision; [`TestError::ReplayDiverged`] naming the first
    /// difference otherwise.
    pub async fn replay(&self, run_id: &str) -> Result<RunCheck, TestError> {
        let check = check_run(self.engine.store().as_ref(), self.engine.registry(), run_id)
            .await
            .map_err(|source| TestError::Replay {
                run_id: run_id.to_string(),
                source,
            })?;
        if check.is_ok() {
            Ok(check)
        } else {
            Err(TestError::ReplayDiverged {
                run_id: run_id.to_string(),
                check: Box::new(check),
            })
        }
    }

    /// Stop the engine (its live runs and background tasks). The store is deleted when the
    /// `TestEnv` is dropped.
    pub async fn shutdown(self) {
        self.engine.shutdown().await;
    }

    /// The next instant after now something waits for: a live run's timer or step back-off
    /// (the clock knows them), or the `wake_at` of a run that is not live (the store keeps it).
    async fn next_due(&self) -> Result<Option<u64>, TestError> {
        let now = self.clock.now_ms();
        let mut next = self.clock.next_wait_ms().filter(|t| *t > now);
        let mut consider = |run: &RunRecord| {
            if run.status.is_terminal() {
                return;
            }
            if let Some(at) = run.wake_at_ms.filter(|at| *at > now) {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        };
        let store = self.engine.store();
        let mut filter = RunFilter {
            limit: 1000,
            ..RunFilter::default()
        };
        loop {
            let page = store.list_runs(&filter).await?;
            for run in &page {
                consider(run);
                // Hook threads are listed with their run (they may outlive it).
                for thread in store.list_threads(&run.run_id).await? {
                    consider(&thread);
                }
            }
            match page.last() {
                Some(last) if page.len() >= filter.limit => {
                    filter.before = Some(RunCursor::of(last));
                }
                _ => break,
            }
        }
        Ok(next)
    }
}

fn to_json(what: &'static str, value: impl Serialize) -> Result<Value, TestError> {
    serde_json::to_value(value).map_err(|source| TestError::Serialize { what, source })
}
