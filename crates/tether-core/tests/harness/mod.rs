//! A host simulator for `tether-core`: the smallest "engine" that can drive a [`RunMachine`].
//!
//! The real engine (`tether-engine`) appends to a database, runs steps on a thread pool and
//! fires timers from the wall clock. [`Sim`] does the same jobs in memory, synchronously and
//! deterministically, so that a test says exactly *when* each thing happens:
//!
//! - [`Sim::commit_outbox`]: append the machine's new command records to the journal (giving
//!   them the next sequence numbers) and feed them back, like a store commit followed by its
//!   notification; a `HookCreated` whose token is taken is written as `HookConflict`, as the
//!   store does (see [`Sim::conflict`]);
//! - [`Sim::run_steps`]: run the queued step bodies to their final result (retries included,
//!   without sleeping) and append `StepCompleted` / `StepFailed`;
//! - [`Sim::resume`], [`Sim::fire_due_timers`], [`Sim::cancel`]: deliveries from the outside
//!   world (`HookReceived`, `TimerFired`, `CancelRequested`);
//! - [`Sim::settle`]: commit and run steps until the run waits for the outside world.
//!
//! Hook threads, shared state and signals: the store completes some records inside the commit
//! (see [`Store`], shared by the [`Sim`]s of one namespace): `StateGet`/`StateIncr`/
//! `StateDelete` get their outputs, `HookSpawned` creates the thread (start it with
//! [`Sim::start_thread`]), `SignalSent` is handed to the oldest waiter (a wait of this run: its
//! `SignalReceived` follows in the same commit; of another run: queued for
//! [`Sim::deliver_signals`]) or kept, and `SignalWaited` takes the oldest kept signal (its
//! `SignalReceived` follows in the same commit) or registers the wait. A hook thread whose
//! attempt fails with attempts left gets `AttemptFailed` and is rebuilt by replay, as the
//! engine does; one that fails for good signals its `fail_signal`.
//!
//! Every entry is appended *and then* fed, one at a time, in journal order: the one rule that
//! makes live execution and replay identical. [`assert_trio`] checks that promise for a whole
//! scenario, three ways:
//!
//! - (a) the scenario runs live to its end;
//! - (b) replaying the complete journal gives the same end, without issuing a single new record
//!   or step;
//! - (c) replaying every prefix of the journal (a crash after each entry) gives the state the
//!   live run had at that point, and from every suspension point the replayed run, continued
//!   with the rest of the deliveries, writes exactly the same journal.

//!
//! The harness is split by job: [`SimEnv`] (`env.rs`) is the clock and random source;
//! [`Store`] (`store.rs`) is the namespace's store and how it completes records; [`Sim`]
//! (`sim.rs`) is the run driver; [`Replayed`] and [`replay`] (`replay.rs`) rebuild a machine
//! from a journal; [`assert_trio`] (`trio.rs`) runs the three checks; `util.rs` holds the step
//! runner [`execute`], journal printing and comparison, and [`Rng`].

#![allow(dead_code)] // each test file uses its own part of the harness

mod env;
mod replay;
mod sim;
mod store;
mod trio;
mod upgrade;
mod util;

use std::future::Future;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tether_core::{Ctx, ErasedWorkflow, Registry, WorkflowError};

// Re-exported so that tests keep using `harness::Name`; each test binary uses only some.
#[allow(unused_imports)]
pub use env::SimEnv;
#[allow(unused_imports)]
pub use replay::{replay, replay_run, replay_run_with_env, replay_with_env, Replayed};
#[allow(unused_imports)]
pub use sim::Sim;
#[allow(unused_imports)]
pub use store::{without_outputs, SharedStore, Store, Wait};
#[allow(unused_imports)]
pub use trio::{assert_trio, assert_trio_of};
#[allow(unused_imports)]
pub use util::{assert_same_journal, dump, execute, is_command_record, Rng};

/// The run every simulation drives.
pub const RUN_ID: &str = "run-under-test";
/// The name the workflow under test is registered with.
pub const WORKFLOW: &str = "under_test";
/// Where the simulated clock starts (2023-11-14, in ms since the Unix epoch).
pub const START_MS: u64 = 1_700_000_000_000;
/// The seed of the simulated random source.
pub const SEED: u64 = 0x5eed;

/// Register `f` as the workflow under test and return it type-erased, as the engine sees it.
pub fn workflow<F, Fut, I, O>(f: F) -> Arc<dyn ErasedWorkflow>
where
    F: Fn(Ctx, I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, WorkflowError>> + Send + 'static,
    I: DeserializeOwned + 'static,
    O: Serialize + 'static,
{
    let mut registry = Registry::new();
    registry.workflow(WORKFLOW, f);
    registry.get(WORKFLOW).expect("just registered")
}
