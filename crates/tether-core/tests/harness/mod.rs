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

#![allow(dead_code)] // each test file uses its own part of the harness

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::executor::block_on;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tether_core::{
    CommandIndex, Ctx, DueTimer, Environment, ErasedWorkflow, ErrorInfo, Event, EventBody,
    Progress, Registry, ReplayError, RunMachine, StepTask, TestEnvironment, ThreadInfo,
    WorkflowError, ERROR_ENVELOPE,
};

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

// ---------------------------------------------------------------------------------------------
// The environment
// ---------------------------------------------------------------------------------------------

/// The simulation's clock and random source: a [`TestEnvironment`] (a clock moved by hand and a
/// seeded generator) that also counts the random bytes it has handed out.
///
/// The count is what lets a replayed run pick up the random sequence exactly where the live run
/// was (see [`SimEnv::skip_to`]): a replay answers `random`, `uuid` and generated tokens from
/// the journal, so it draws fewer bytes than the live run did.
#[derive(Debug)]
pub struct SimEnv {
    inner: TestEnvironment,
    drawn: AtomicU64,
}

impl SimEnv {
    /// A clock at `start_ms` and a generator seeded with [`SEED`].
    pub fn new(start_ms: u64) -> Arc<SimEnv> {
        Arc::new(SimEnv {
            inner: TestEnvironment::new(start_ms, SEED),
            drawn: AtomicU64::new(0),
        })
    }

    /// The simulated time, ms since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        self.inner.now_ms()
    }

    /// Move the clock forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.inner.advance(ms);
    }

    /// Move the clock forward to `at_ms` (the clock never goes back).
    pub fn advance_to(&self, at_ms: u64) {
        let now = self.now_ms();
        assert!(
            at_ms >= now,
            "the clock cannot go back from {now} to {at_ms}"
        );
        self.inner.advance(at_ms - now);
    }

    /// How many random bytes were handed out so far.
    pub fn drawn(&self) -> u64 {
        self.drawn.load(Ordering::SeqCst)
    }

    /// Draw and throw away bytes until `drawn` bytes have been handed out in all.
    pub fn skip_to(&self, drawn: u64) {
        let have = self.drawn();
        assert!(
            have <= drawn,
            "this environment already handed out {have} bytes, more than the {drawn} asked for"
        );
        let mut sink = vec![0u8; (drawn - have) as usize];
        self.random_bytes(&mut sink);
    }
}

impl Environment for SimEnv {
    fn now_ms(&self) -> u64 {
        self.inner.now_ms()
    }

    fn random_bytes(&self, buf: &mut [u8]) {
        self.drawn.fetch_add(buf.len() as u64, Ordering::SeqCst);
        self.inner.random_bytes(buf);
    }
}

// ---------------------------------------------------------------------------------------------
// The store's side of shared state, hook threads and signals
// ---------------------------------------------------------------------------------------------

/// A registered wait for a signal.
#[derive(Clone, Debug, PartialEq)]
pub struct Wait {
    /// The signal id.
    pub signal_id: String,
    /// The waiting run.
    pub run_id: String,
    /// Its wait command.
    pub cmd: CommandIndex,
}

/// What the store holds for one namespace, as `tether-store` specifies it (`WriteOp::Signal`,
/// `WriteOp::SpawnHook`): the shared state, the kept signals, the registered waits and the hook
/// threads created. Shared by the [`Sim`]s of the namespace's runs.
#[derive(Debug, Default)]
pub struct Store {
    /// The namespace's shared state.
    pub state: BTreeMap<String, Value>,
    /// Signals sent while nobody waited, oldest first: `(signal_id, payload)`.
    pub kept: VecDeque<(String, Value)>,
    /// Registered waits, oldest first.
    pub waits: Vec<Wait>,
    /// Every `HookSpawned` the store committed, in order (a thread was created for each; a
    /// spawn whose id exists creates nothing, see [`Store::spawn_conflicts`]).
    pub spawned: Vec<EventBody>,
    /// Spawns whose hook id already existed (the store creates no second thread).
    pub spawn_conflicts: usize,
    /// `SignalReceived` entries for other runs than the sender: `(run_id, body)`, taken by
    /// [`Sim::deliver_signals`].
    pub deliveries: Vec<(String, EventBody)>,
}

/// The store of one namespace, shared by its runs' simulations.
pub type SharedStore = Arc<Mutex<Store>>;

impl Store {
    /// A new, empty store.
    pub fn shared() -> SharedStore {
        Arc::new(Mutex::new(Store::default()))
    }

    /// Hand `payload` to the oldest wait on `signal_id` (removing it), or keep it.
    pub fn send(&mut self, signal_id: &str, payload: &Value) -> Option<Wait> {
        match self.waits.iter().position(|w| w.signal_id == signal_id) {
            Some(i) => Some(self.waits.remove(i)),
            None => {
                self.kept
                    .push_back((signal_id.to_string(), payload.clone()));
                None
            }
        }
    }

    /// The kept signals with this id.
    pub fn kept_of(&self, signal_id: &str) -> Vec<Value> {
        self.kept
            .iter()
            .filter(|(id, _)| id == signal_id)
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// Complete a state record against the shared state.
    fn state_op(&mut self, body: EventBody) -> EventBody {
        match body {
            EventBody::StateGet { cmd, key, .. } => {
                let value = self.state.get(&key).cloned();
                EventBody::StateGet { cmd, key, value }
            }
            EventBody::StateSet { cmd, key, value } => {
                self.state.insert(key.clone(), value.clone());
                EventBody::StateSet { cmd, key, value }
            }
            EventBody::StateIncr { cmd, key, by, .. } => {
                let value = match self.state.get(&key) {
                    None => Some(by),
                    Some(v) => v.as_i64().map(|n| n.saturating_add(by)),
                };
                if let Some(n) = value {
                    self.state.insert(key.clone(), Value::from(n));
                }
                EventBody::StateIncr {
                    cmd,
                    key,
                    by,
                    value,
                }
            }
            EventBody::StateDelete { cmd, key, .. } => {
                let existed = self.state.remove(&key).is_some();
                EventBody::StateDelete { cmd, key, existed }
            }
            other => other,
        }
    }
}

/// A record as the workflow issues it, before the store filled its outputs: comparing two of
/// these compares the command's inputs only.
pub fn without_outputs(body: &EventBody) -> EventBody {
    match body.clone() {
        EventBody::StateGet { cmd, key, .. } => EventBody::StateGet {
            cmd,
            key,
            value: None,
        },
        EventBody::StateIncr { cmd, key, by, .. } => EventBody::StateIncr {
            cmd,
            key,
            by,
            value: None,
        },
        EventBody::StateDelete { cmd, key, .. } => EventBody::StateDelete {
            cmd,
            key,
            existed: false,
        },
        EventBody::SignalSent {
            cmd,
            signal_id,
            payload,
            ..
        } => EventBody::SignalSent {
            cmd,
            signal_id,
            payload,
            delivered_to: None,
        },
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// The simulator
// ---------------------------------------------------------------------------------------------

/// What the host can observe of a run after an entry was fed; recorded for every live entry so
/// that replays can be compared with the live run at the same point.
#[derive(Clone, Debug, PartialEq)]
struct Snapshot {
    progress: Progress,
    pending_timers: Vec<DueTimer>,
    steps_in_flight: usize,
    drawn: u64,
    attempt: u32,
}

impl Snapshot {
    fn of(machine: &RunMachine, progress: &Progress, env: &SimEnv) -> Snapshot {
        Snapshot {
            progress: progress.clone(),
            pending_timers: machine.pending_timers(),
            steps_in_flight: machine.steps_in_flight(),
            drawn: env.drawn(),
            attempt: machine.attempt(),
        }
    }
}

/// One run and the host around it: the journal, the clock, the step runner and the store's
/// token table.
pub struct Sim {
    /// The run's id ([`RUN_ID`] for a main run, the hook id for a hook thread).
    run_id: String,
    workflow: Arc<dyn ErasedWorkflow>,
    /// The clock and random source of the live run.
    pub env: Arc<SimEnv>,
    journal: Vec<Event>,
    machine: RunMachine,
    progress: Progress,
    /// Steps the machine asked for that have not run yet.
    queued_steps: Vec<StepTask>,
    /// Tokens held by active hooks of *other* runs: token -> holder run.
    tokens_elsewhere: HashMap<String, String>,
    /// `snapshots[seq - 1]`: the state right after entry `seq` was fed.
    snapshots: Vec<Snapshot>,
    /// The namespace's store (shared with the run's hook threads).
    store: SharedStore,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Sim {{ progress: {:?}, journal:\n{}}}",
            self.progress,
            dump(&self.journal)
        )
    }
}

impl Sim {
    /// Create a run: its journal is `[RunStarted]` at seq 1, and it is "replayed" from that one
    /// entry, which runs the workflow until its first stall.
    pub fn start(workflow: &Arc<dyn ErasedWorkflow>, input: Value) -> Sim {
        Sim::start_run(
            workflow,
            RUN_ID,
            EventBody::RunStarted {
                workflow: WORKFLOW.to_string(),
                input,
                thread: None,
            },
            Store::shared(),
        )
    }

    /// Create run `run_id` whose journal starts with `first` (a `RunStarted`), in the namespace
    /// whose store is `store`.
    pub fn start_run(
        workflow: &Arc<dyn ErasedWorkflow>,
        run_id: &str,
        first: EventBody,
        store: SharedStore,
    ) -> Sim {
        let env = SimEnv::new(START_MS);
        let first = Event {
            seq: 1,
            at_ms: env.now_ms(),
            body: first,
        };
        let (machine, progress) = RunMachine::replay(
            run_id,
            workflow.as_ref(),
            env.clone(),
            std::slice::from_ref(&first),
        )
        .unwrap_or_else(|e| panic!("a new run cannot fail to replay: {e}"));
        let mut sim = Sim {
            run_id: run_id.to_string(),
            workflow: workflow.clone(),
            env,
            journal: vec![first],
            machine,
            progress,
            queued_steps: Vec::new(),
            tokens_elsewhere: HashMap::new(),
            snapshots: Vec::new(),
            store,
        };
        sim.after_feed();
        sim
    }

    /// Start the hook thread `hook_id` that this run spawned (its `HookSpawned` must be
    /// committed), running `workflow`, in this run's namespace, as the store creates it.
    pub fn start_thread(&self, workflow: &Arc<dyn ErasedWorkflow>, hook_id: &str) -> Sim {
        let spawned = self
            .store()
            .spawned
            .iter()
            .find(|b| matches!(b, EventBody::HookSpawned { hook_id: h, .. } if h == hook_id))
            .cloned()
            .unwrap_or_else(|| panic!("the store has no hook thread {hook_id:?}\n{self:?}"));
        let EventBody::HookSpawned {
            workflow: name,
            args,
            retry,
            fail_signal,
            ..
        } = spawned
        else {
            unreachable!("only spawns are kept")
        };
        let info = ThreadInfo {
            root_run: self.root_run(),
            parent_run: self.run_id.clone(),
            retry,
            fail_signal,
        };
        Sim::start_run(
            workflow,
            hook_id,
            EventBody::RunStarted {
                workflow: name,
                input: args,
                thread: Some(info),
            },
            self.store.clone(),
        )
    }

    /// The run whose namespace this run works in.
    pub fn root_run(&self) -> String {
        self.machine
            .thread()
            .map_or_else(|| self.run_id.clone(), |t| t.root_run.clone())
    }

    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The namespace's store.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The namespace's store, to share.
    pub fn shared_store(&self) -> SharedStore {
        self.store.clone()
    }

    // --- the journal ---------------------------------------------------------------------

    /// Append `body` as the next entry, committed now.
    fn append(&mut self, body: EventBody) -> Event {
        let event = Event {
            seq: self.journal.len() as u64 + 1,
            at_ms: self.env.now_ms(),
            body,
        };
        self.journal.push(event.clone());
        event
    }

    /// Feed a committed entry to the machine.
    fn feed(&mut self, event: &Event) -> Result<Progress, ReplayError> {
        let progress = self.machine.feed(event)?;
        self.progress = progress.clone();
        self.after_feed();
        Ok(progress)
    }

    fn feed_or_panic(&mut self, event: &Event) {
        if let Err(e) = self.feed(event) {
            panic!(
                "feeding entry {} failed: {e}\n{}",
                event.seq,
                dump(&self.journal)
            );
        }
    }

    /// Collect the steps the machine asked for and remember what the host sees now.
    fn after_feed(&mut self) {
        self.queued_steps.extend(self.machine.take_step_tasks());
        self.snapshots
            .push(Snapshot::of(&self.machine, &self.progress, &self.env));
        assert_eq!(self.snapshots.len() as u64, self.machine.last_seq());
    }

    /// Append any entry and feed it: for tests that write the journal by hand.
    pub fn push(&mut self, body: EventBody) -> Result<Progress, ReplayError> {
        let event = self.append(body);
        self.feed(&event)
    }

    /// Feed entry `seq` a second time (a duplicate notification).
    pub fn feed_again(&mut self, seq: u64) -> Result<Progress, ReplayError> {
        let event = self.journal[seq as usize - 1].clone();
        self.machine.feed(&event)
    }

    /// The store's view of a new command record: what it writes for it (in this order, in the
    /// same commit). A `HookCreated` whose token another active hook holds is written as
    /// `HookConflict` instead; shared-state records get their outputs; `HookSpawned` creates
    /// the thread; `SignalSent` and `SignalWaited` deliver, keep or register (a delivery to
    /// this run follows as `SignalReceived`).
    fn store_outcome(&self, record: EventBody) -> Vec<EventBody> {
        let mut store = self.store();
        match record {
            EventBody::HookCreated { cmd, token, .. } if self.token_holder(&token).is_some() => {
                let holder_run = self.token_holder(&token).expect("checked");
                vec![EventBody::HookConflict {
                    cmd,
                    token,
                    holder_run,
                }]
            }
            EventBody::StateGet { .. }
            | EventBody::StateSet { .. }
            | EventBody::StateIncr { .. }
            | EventBody::StateDelete { .. } => vec![store.state_op(record)],
            EventBody::HookSpawned { ref hook_id, .. } => {
                let exists = store.spawned.iter().any(
                    |b| matches!(b, EventBody::HookSpawned { hook_id: h, .. } if h == hook_id),
                );
                if exists {
                    store.spawn_conflicts += 1;
                } else {
                    store.spawned.push(record.clone());
                }
                vec![record]
            }
            EventBody::SignalSent {
                cmd,
                signal_id,
                payload,
                ..
            } => match store.send(&signal_id, &payload) {
                None => vec![EventBody::SignalSent {
                    cmd,
                    signal_id,
                    payload,
                    delivered_to: None,
                }],
                Some(wait) if wait.run_id == self.run_id => vec![
                    EventBody::SignalSent {
                        cmd,
                        signal_id,
                        payload: payload.clone(),
                        delivered_to: Some(wait.run_id),
                    },
                    EventBody::SignalReceived {
                        wait_cmd: wait.cmd,
                        payload,
                    },
                ],
                Some(wait) => {
                    store.deliveries.push((
                        wait.run_id.clone(),
                        EventBody::SignalReceived {
                            wait_cmd: wait.cmd,
                            payload: payload.clone(),
                        },
                    ));
                    vec![EventBody::SignalSent {
                        cmd,
                        signal_id,
                        payload,
                        delivered_to: Some(wait.run_id),
                    }]
                }
            },
            EventBody::SignalWaited { cmd, ref signal_id } => {
                match store.kept.iter().position(|(id, _)| id == signal_id) {
                    Some(i) => {
                        let (_, payload) = store.kept.remove(i).expect("found");
                        vec![
                            record,
                            EventBody::SignalReceived {
                                wait_cmd: cmd,
                                payload,
                            },
                        ]
                    }
                    None => {
                        store.waits.push(Wait {
                            signal_id: signal_id.clone(),
                            run_id: self.run_id.clone(),
                            cmd,
                        });
                        vec![record]
                    }
                }
            }
            other => vec![other],
        }
    }

    fn token_holder(&self, token: &str) -> Option<String> {
        if let Some(run) = self.tokens_elsewhere.get(token) {
            return Some(run.clone());
        }
        self.hook_cmd_of(token).map(|_| self.run_id.clone())
    }

    /// Pretend an active hook of run `holder_run` holds `token`: creating a hook with that token
    /// from now on is written as `HookConflict`.
    pub fn conflict(&mut self, token: &str, holder_run: &str) {
        self.tokens_elsewhere
            .insert(token.to_string(), holder_run.to_string());
    }

    /// Commit the machine's new command records, in order, until it issues no more; then, if
    /// the workflow returned, append the terminal entry.
    ///
    /// A hook thread that failed with attempts left gets `AttemptFailed` instead, and its next
    /// attempt is rebuilt by replay at once; the records of that attempt wait for the next
    /// commit (the engine waits for the back-off first). One that failed for good signals its
    /// `fail_signal` with the error envelope, as the engine does.
    pub fn commit_outbox(&mut self) {
        while self.commit_batch() > 0 {}
        let Progress::Finished(end) = self.progress.clone() else {
            return;
        };
        if self.is_finished() {
            return;
        }
        let thread = self.machine.thread().cloned();
        if let (EventBody::RunFailed { error }, Some(thread)) = (&end, &thread) {
            let attempt = self.machine.attempt();
            if attempt < thread.retry.maximum_attempts.max(1) {
                let retry_at_ms =
                    self.env.now_ms() + thread.retry.delay_after(attempt).as_millis() as u64;
                self.append(EventBody::AttemptFailed {
                    attempt,
                    error: error.clone(),
                    retry_at_ms,
                });
                self.next_attempt();
                return;
            }
        }
        let event = self.append(end.clone());
        self.feed_or_panic(&event);
        // A finished run's waits are dropped.
        self.store().waits.retain(|w| w.run_id != self.run_id);
        if let (
            EventBody::RunFailed { error },
            Some(ThreadInfo {
                fail_signal: Some(signal_id),
                ..
            }),
        ) = (&end, thread)
        {
            let payload = serde_json::json!({ ERROR_ENVELOPE: error });
            self.signal(&signal_id, payload);
        }
    }

    /// Commit the records the machine has issued so far as one transaction (not those it issues
    /// when fed them). Returns how many entries were appended.
    pub fn commit_batch(&mut self) -> usize {
        let records = self.machine.take_outbox();
        // One transaction: every record gets its seq, then the commit notification feeds
        // them back one by one.
        let mut committed = Vec::new();
        for record in records {
            for body in self.store_outcome(record) {
                committed.push(self.append(body));
            }
        }
        for event in &committed {
            self.feed_or_panic(event);
        }
        committed.len()
    }

    /// Rebuild the machine from the whole journal, as the engine does for a hook thread's next
    /// attempt (the journal ends with `AttemptFailed`).
    fn next_attempt(&mut self) {
        let (machine, progress) = RunMachine::replay(
            &self.run_id,
            self.workflow.as_ref(),
            self.env.clone(),
            &self.journal,
        )
        .unwrap_or_else(|e| panic!("the next attempt failed to replay: {e}\n{self:?}"));
        self.machine = machine;
        self.progress = progress;
        self.queued_steps.clear();
        self.after_feed();
    }

    // --- signals -----------------------------------------------------------------------------

    /// Send a signal from outside (client, HTTP, the engine), as `WriteOp::Signal`: to the
    /// oldest wait on `signal_id` (a wait of this run gets its `SignalReceived` now; another
    /// run's is queued for its [`Sim::deliver_signals`]), or kept. Returns the run it went to.
    pub fn signal(&mut self, signal_id: &str, payload: Value) -> Option<String> {
        let wait = self.store().send(signal_id, &payload)?;
        let body = EventBody::SignalReceived {
            wait_cmd: wait.cmd,
            payload,
        };
        if wait.run_id == self.run_id {
            self.deliver(body);
        } else {
            self.store().deliveries.push((wait.run_id.clone(), body));
        }
        Some(wait.run_id)
    }

    /// Append the signals other runs (hook threads, the outside) delivered to this run's waits,
    /// in delivery order. Returns how many.
    pub fn deliver_signals(&mut self) -> usize {
        let mine: Vec<EventBody> = {
            let mut store = self.store();
            let (mine, others) = std::mem::take(&mut store.deliveries)
                .into_iter()
                .partition(|(run, _)| *run == self.run_id);
            store.deliveries = others;
            mine.into_iter().map(|(_, b)| b).collect()
        };
        let n = mine.len();
        for body in mine {
            self.deliver(body);
        }
        n
    }

    // --- steps -----------------------------------------------------------------------------

    /// `(cmd, name)` of the steps waiting to run.
    pub fn queued_steps(&self) -> Vec<(CommandIndex, String)> {
        self.queued_steps
            .iter()
            .map(|t| (t.cmd, t.name.clone()))
            .collect()
    }

    /// Run every queued step to its final result and append it. Returns how many ran.
    pub fn run_steps(&mut self) -> usize {
        let tasks = std::mem::take(&mut self.queued_steps);
        for task in &tasks {
            self.finish_step(task);
        }
        tasks.len()
    }

    /// Run the queued step called `name` (the others wait).
    pub fn run_step(&mut self, name: &str) {
        let i = self
            .queued_steps
            .iter()
            .position(|t| t.name == name)
            .unwrap_or_else(|| panic!("no queued step {name:?} in {:?}", self.queued_steps()));
        let task = self.queued_steps.remove(i);
        self.finish_step(&task);
    }

    /// Forget the queued steps, as a worker that dies while running them.
    pub fn drop_steps(&mut self) -> Vec<StepTask> {
        std::mem::take(&mut self.queued_steps)
    }

    fn finish_step(&mut self, task: &StepTask) {
        if matches!(self.progress, Progress::Finished(_)) {
            return; // the engine stops a run's steps once it has ended
        }
        let result = execute(task);
        let event = self.append(result);
        self.feed_or_panic(&event);
    }

    /// Commit and run steps until the run waits for the outside world (or has ended).
    pub fn settle(&mut self) {
        loop {
            self.commit_outbox();
            if self.queued_steps.is_empty() || matches!(self.progress, Progress::Finished(_)) {
                break;
            }
            self.run_steps();
        }
        if self.is_finished() {
            self.queued_steps.clear();
        }
    }

    // --- deliveries --------------------------------------------------------------------------

    fn deliver(&mut self, body: EventBody) {
        assert!(
            !self.is_finished(),
            "cannot deliver {} to a run that has ended",
            body.kind()
        );
        let event = self.append(body);
        self.feed_or_panic(&event);
    }

    /// Accept `payload` for the hook created by command `hook_cmd`.
    pub fn resume(&mut self, hook_cmd: CommandIndex, payload: Value) {
        self.deliver(EventBody::HookReceived { hook_cmd, payload });
    }

    /// Accept `payload` for the active hook holding `token`, as the resume API does; an unknown
    /// (or released) token is refused.
    pub fn resume_token(&mut self, token: &str, payload: Value) -> Result<CommandIndex, String> {
        let hook_cmd = self
            .hook_cmd_of(token)
            .ok_or_else(|| format!("no active hook holds token {token:?}"))?;
        self.resume(hook_cmd, payload);
        Ok(hook_cmd)
    }

    /// Ask the run to cancel.
    pub fn cancel(&mut self, reason: Option<&str>) {
        self.deliver(EventBody::CancelRequested {
            reason: reason.map(str::to_string),
        });
    }

    /// Move the clock forward by `advance_ms`, then fire every committed timer that is due,
    /// earliest first. Returns the fired timers' command indices.
    pub fn fire_due_timers(&mut self, advance_ms: u64) -> Vec<CommandIndex> {
        self.env.advance(advance_ms);
        let mut fired = Vec::new();
        while !matches!(self.progress, Progress::Finished(_)) {
            let now = self.env.now_ms();
            let due = self
                .machine
                .pending_timers()
                .into_iter()
                .find(|t| t.fire_at_ms <= now && !fired.contains(&t.cmd));
            let Some(timer) = due else { break };
            fired.push(timer.cmd);
            self.deliver(EventBody::TimerFired { cmd: timer.cmd });
        }
        fired
    }

    /// Move the clock to the earliest pending deadline (if it is ahead) and fire that timer.
    pub fn fire_next_timer(&mut self) -> Option<CommandIndex> {
        let timer = self.machine.pending_timers().into_iter().next()?;
        if timer.fire_at_ms > self.env.now_ms() {
            self.env.advance_to(timer.fire_at_ms);
        }
        self.deliver(EventBody::TimerFired { cmd: timer.cmd });
        Some(timer.cmd)
    }

    // --- looking at the run ------------------------------------------------------------------

    /// The journal so far.
    pub fn journal(&self) -> &[Event] {
        &self.journal
    }

    /// Where the run stands.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// The live machine.
    pub fn machine(&self) -> &RunMachine {
        &self.machine
    }

    /// The live machine, to take its outbox by hand.
    pub fn machine_mut(&mut self) -> &mut RunMachine {
        &mut self.machine
    }

    /// The committed timers the host would fire.
    pub fn pending_timers(&self) -> Vec<DueTimer> {
        self.machine.pending_timers()
    }

    /// Whether the journal ends with a terminal entry.
    pub fn is_finished(&self) -> bool {
        self.journal.last().is_some_and(|e| e.body.is_terminal())
    }

    /// The terminal entry.
    pub fn end(&self) -> &EventBody {
        let last = &self.journal.last().expect("a journal is never empty").body;
        assert!(last.is_terminal(), "the run has not ended:\n{self:?}");
        last
    }

    /// The output of a completed run.
    pub fn output(&self) -> Value {
        match self.end() {
            EventBody::RunCompleted { output } => output.clone(),
            other => panic!("expected run_completed, the run ended with {other:?}\n{self:?}"),
        }
    }

    /// The kinds of the journal's entries, in order: the journal's shape at a glance.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.journal.iter().map(|e| e.body.kind()).collect()
    }

    /// The bodies of the entries of one kind (e.g. `"hook_created"`), in order.
    pub fn entries(&self, kind: &str) -> Vec<&EventBody> {
        self.journal
            .iter()
            .map(|e| &e.body)
            .filter(|b| b.kind() == kind)
            .collect()
    }

    /// `(hook_cmd, token)` of the hooks created and not disposed, according to the journal.
    pub fn active_hooks(&self) -> Vec<(CommandIndex, String)> {
        let mut active = Vec::new();
        for e in &self.journal {
            match &e.body {
                EventBody::HookCreated { cmd, token, .. } => active.push((*cmd, token.clone())),
                EventBody::HookDisposed { hook_cmd, .. } => active.retain(|(c, _)| c != hook_cmd),
                _ => {}
            }
        }
        active
    }

    /// The one active hook.
    pub fn hook(&self) -> (CommandIndex, String) {
        let active = self.active_hooks();
        assert_eq!(
            active.len(),
            1,
            "expected exactly one active hook\n{self:?}"
        );
        active[0].clone()
    }

    /// The command index of the active hook holding `token`.
    pub fn hook_cmd_of(&self, token: &str) -> Option<CommandIndex> {
        self.active_hooks()
            .into_iter()
            .find(|(_, t)| t == token)
            .map(|(c, _)| c)
    }

    // --- replay --------------------------------------------------------------------------------

    /// Rebuild a fresh machine from the first `n` journal entries, as a worker restarting after
    /// a crash that happened right after entry `n` was committed.
    pub fn replay_prefix(&self, n: usize) -> Result<Replayed, ReplayError> {
        replay_run(&self.run_id, &self.workflow, &self.journal[..n])
    }

    /// (b): the complete journal replays to the same end, issuing nothing.
    pub fn check_full_replay(&self) {
        let r = replay_run(&self.run_id, &self.workflow, &self.journal)
            .unwrap_or_else(|e| panic!("(b) replaying the complete journal failed: {e}\n{self:?}"));
        assert_eq!(
            r.progress,
            Progress::Finished(self.end().clone()),
            "(b) replaying the complete journal must reach the recorded end\n{self:?}"
        );
        assert!(
            r.outbox.is_empty(),
            "(b) replaying the complete journal issued new records {:?}\n{self:?}",
            r.outbox
        );
        assert!(
            r.step_tasks.is_empty(),
            "(b) replaying the complete journal asked to run steps {:?}\n{self:?}",
            r.step_tasks
        );
        let live = self.snapshots.last().expect("at least one entry");
        assert_eq!(r.machine.pending_timers(), live.pending_timers);
        assert_eq!(r.machine.steps_in_flight(), live.steps_in_flight);
    }

    /// (c): every prefix replays to the live state at that point; from every suspension point
    /// (nothing left to append) the replayed run, continued with the rest of the journal's
    /// deliveries, writes the same journal.
    pub fn check_every_prefix(&self) {
        for n in 1..self.journal.len() {
            let r = self.replay_prefix(n).unwrap_or_else(|e| {
                panic!("(c) replaying the first {n} entries failed: {e}\n{self:?}")
            });
            let live = &self.snapshots[n - 1];
            let here = format!("(c) after replaying the first {n} entries");
            assert_eq!(r.progress, live.progress, "{here}: progress\n{self:?}");
            assert_eq!(
                r.machine.pending_timers(),
                live.pending_timers,
                "{here}: pending timers\n{self:?}"
            );
            assert_eq!(
                r.machine.steps_in_flight(),
                live.steps_in_flight,
                "{here}: steps in flight\n{self:?}"
            );
            self.check_records_are_recorded_later(n, &r.outbox);
            self.check_steps_are_rerun(n, &r.step_tasks);
            if r.outbox.is_empty() {
                let continued = self.continue_after(n, r);
                assert_same_journal(&continued, &self.journal, &here);
            }
        }
    }

    /// A replay cut between a command and its record issues the record again: it must be the
    /// one the live run appended later, at the same command index.
    fn check_records_are_recorded_later(&self, n: usize, outbox: &[EventBody]) {
        for record in outbox {
            let cmd = record
                .command_index()
                .expect("records carry a command index");
            let later = self.journal[n..]
                .iter()
                .map(|e| &e.body)
                .find(|b| is_command_record(b) && b.command_index() == Some(cmd))
                .unwrap_or_else(|| {
                    panic!("(c) after replaying {n} entries the machine issued {record:?}, which the live run never recorded\n{self:?}")
                });
            assert!(
                same_command(record, later),
                "(c) after replaying {n} entries the machine issued {record:?}; the live run recorded {later:?}\n{self:?}"
            );
        }
    }

    /// A replay cut while a step runs asks for the step again (at-least-once): its result, if
    /// the live run has one, is recorded later under the same name.
    fn check_steps_are_rerun(&self, n: usize, tasks: &[StepTask]) {
        for task in tasks {
            let result = |range: &[Event]| {
                range.iter().find_map(|e| match &e.body {
                    EventBody::StepCompleted { cmd, name, .. }
                    | EventBody::StepFailed { cmd, name, .. }
                        if *cmd == task.cmd =>
                    {
                        Some(name.clone())
                    }
                    _ => None,
                })
            };
            assert_eq!(
                result(&self.journal[..n]),
                None,
                "(c) after replaying {n} entries the machine asked to re-run step #{} whose result is journaled\n{self:?}",
                task.cmd
            );
            if let Some(name) = result(&self.journal[n..]) {
                assert_eq!(name, task.name, "(c) step #{} changed name", task.cmd);
            }
        }
    }

    /// Continue a run replayed from the first `n` entries as the live host would: append its own
    /// command records, and take every delivery and step result from the rest of the live
    /// journal, in the same order and at the same times. Returns the journal it writes.
    fn continue_after(&self, n: usize, replayed: Replayed) -> Vec<Event> {
        let Replayed {
            mut machine,
            mut progress,
            step_tasks: mut tasks,
            env,
            ..
        } = replayed;
        // The replay drew fewer random bytes than the live run did (recorded values are read
        // from the journal): catch up, so that new draws are the live run's draws.
        env.skip_to(self.snapshots[n - 1].drawn);
        let mut journal = self.journal[..n].to_vec();
        let mut outbox: VecDeque<EventBody> = VecDeque::new();
        for recorded in &self.journal[n..] {
            env.advance_to(recorded.at_ms);
            outbox.extend(machine.take_outbox());
            tasks.extend(machine.take_step_tasks());
            let here = format!(
                "(c) continuing after {n} replayed entries, at entry {}",
                recorded.seq
            );
            if let EventBody::AttemptFailed { error, .. } = &recorded.body {
                // The engine writes this in place of the failed attempt's end, then rebuilds
                // the thread by replay for its next attempt.
                assert!(
                    matches!(&progress, Progress::Finished(EventBody::RunFailed { error: e }) if e == error),
                    "{here}: the attempt did not fail with {error:?}: {progress:?}\n{self:?}"
                );
                assert!(
                    outbox.is_empty(),
                    "{here}: records left over {outbox:?}\n{self:?}"
                );
                journal.push(recorded.clone());
                let (m, p) =
                    RunMachine::replay(&self.run_id, self.workflow.as_ref(), env.clone(), &journal)
                        .unwrap_or_else(|e| {
                            panic!("{here}: the next attempt failed: {e}\n{self:?}")
                        });
                machine = m;
                progress = p;
                tasks.clear();
                assert_eq!(
                    Snapshot::of(&machine, &progress, &env),
                    self.snapshots[recorded.seq as usize - 1],
                    "{here}: state differs from the live run\n{self:?}"
                );
                continue;
            }
            let body = match &recorded.body {
                b if b.is_terminal() => match &progress {
                    Progress::Finished(end) => end.clone(),
                    Progress::Waiting => panic!("{here}: the run has not ended\n{self:?}"),
                },
                b if is_command_record(b) => {
                    let mine = outbox.pop_front().unwrap_or_else(|| {
                        panic!("{here}: the run issued no command where the live run recorded {b:?}\n{self:?}")
                    });
                    match (&mine, b) {
                        // The store's answer to a contested token.
                        (
                            EventBody::HookCreated { cmd, token, .. },
                            EventBody::HookConflict {
                                cmd: c, token: t, ..
                            },
                        ) if cmd == c && token == t => b.clone(),
                        // The same command: the store filled its outputs (what was read, the
                        // count, where a signal went) as it did for the live run.
                        _ if without_outputs(&mine) == without_outputs(b) => b.clone(),
                        _ => mine,
                    }
                }
                EventBody::StepCompleted { cmd, name, .. }
                | EventBody::StepFailed { cmd, name, .. } => {
                    match tasks.iter().position(|t| t.cmd == *cmd) {
                        Some(i) => {
                            let task = tasks.remove(i);
                            assert_eq!(&task.name, name, "{here}: step name");
                        }
                        None => assert!(
                            journal.iter().any(|e| matches!(&e.body,
                                EventBody::StepCompleted { cmd: c, .. } | EventBody::StepFailed { cmd: c, .. } if c == cmd)),
                            "{here}: the run never asked to run step #{cmd}\n{self:?}"
                        ),
                    }
                    recorded.body.clone()
                }
                delivery => delivery.clone(),
            };
            let event = Event {
                seq: recorded.seq,
                at_ms: env.now_ms(),
                body,
            };
            journal.push(event.clone());
            progress = machine
                .feed(&event)
                .unwrap_or_else(|e| panic!("{here}: feeding failed: {e}\n{self:?}"));
            assert_eq!(
                Snapshot::of(&machine, &progress, &env),
                self.snapshots[event.seq as usize - 1],
                "{here}: state differs from the live run\n{self:?}"
            );
        }
        outbox.extend(machine.take_outbox());
        assert!(
            outbox.is_empty(),
            "(c) continuing after {n} replayed entries: records left over {outbox:?}\n{self:?}"
        );
        journal
    }
}

/// A machine rebuilt by replay, with what it asked for right away.
#[derive(Debug)]
pub struct Replayed {
    /// The machine, positioned after the last replayed entry.
    pub machine: RunMachine,
    /// Where the run stands.
    pub progress: Progress,
    /// Records it wants appended (commands issued past the end of the replayed journal).
    pub outbox: Vec<EventBody>,
    /// Steps it wants run (issued, with no result in the replayed journal).
    pub step_tasks: Vec<StepTask>,
    /// Its environment.
    pub env: Arc<SimEnv>,
}

/// Replay `journal` with `workflow` on a worker whose clock reads the last entry's commit time.
pub fn replay(
    workflow: &Arc<dyn ErasedWorkflow>,
    journal: &[Event],
) -> Result<Replayed, ReplayError> {
    let at_ms = journal.last().map_or(START_MS, |e| e.at_ms);
    replay_with_env(workflow, journal, SimEnv::new(at_ms))
}

/// [`replay`] for run `run_id` (a hook thread's id is part of what it computes).
pub fn replay_run(
    run_id: &str,
    workflow: &Arc<dyn ErasedWorkflow>,
    journal: &[Event],
) -> Result<Replayed, ReplayError> {
    let at_ms = journal.last().map_or(START_MS, |e| e.at_ms);
    replay_run_with_env(run_id, workflow, journal, SimEnv::new(at_ms))
}

/// Replay `journal` with `workflow` in the given environment.
pub fn replay_with_env(
    workflow: &Arc<dyn ErasedWorkflow>,
    journal: &[Event],
    env: Arc<SimEnv>,
) -> Result<Replayed, ReplayError> {
    replay_run_with_env(RUN_ID, workflow, journal, env)
}

/// [`replay_with_env`] for run `run_id`.
pub fn replay_run_with_env(
    run_id: &str,
    workflow: &Arc<dyn ErasedWorkflow>,
    journal: &[Event],
    env: Arc<SimEnv>,
) -> Result<Replayed, ReplayError> {
    let (mut machine, progress) =
        RunMachine::replay(run_id, workflow.as_ref(), env.clone(), journal)?;
    let outbox = machine.take_outbox();
    let step_tasks = machine.take_step_tasks();
    Ok(Replayed {
        machine,
        progress,
        outbox,
        step_tasks,
        env,
    })
}

/// Run a step to its final result as the engine's step runner does, minus the back-off sleeps:
/// attempts until success, a fatal error, or `policy.maximum_attempts`.
pub fn execute(task: &StepTask) -> EventBody {
    let max = task.policy.maximum_attempts.max(1);
    let mut attempt = 1;
    loop {
        match block_on((task.body)()) {
            Ok(output) => {
                return EventBody::StepCompleted {
                    cmd: task.cmd,
                    name: task.name.clone(),
                    output,
                    attempts: attempt,
                }
            }
            Err(e) if e.is_fatal() || attempt >= max => {
                return EventBody::StepFailed {
                    cmd: task.cmd,
                    name: task.name.clone(),
                    error: ErrorInfo::new("step_failed", e.message()),
                    attempts: attempt,
                }
            }
            Err(_) => attempt += 1,
        }
    }
}

/// Run a scenario three ways (see the module documentation) and return the live simulation.
/// `driver` plays the outside world; whatever it leaves undone is settled afterwards, and the
/// run must then have ended.
pub fn assert_trio(
    workflow: &Arc<dyn ErasedWorkflow>,
    input: Value,
    driver: impl FnOnce(&mut Sim),
) -> Sim {
    assert_trio_of(Sim::start(workflow, input), driver)
}

/// [`assert_trio`] for a run already started (e.g. a hook thread, [`Sim::start_thread`]).
pub fn assert_trio_of(mut sim: Sim, driver: impl FnOnce(&mut Sim)) -> Sim {
    driver(&mut sim);
    sim.settle();
    assert!(
        sim.is_finished(),
        "(a) the driver must bring the run to its end\n{sim:?}"
    );
    sim.check_full_replay();
    sim.check_every_prefix();
    sim
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/// Entries the machine issues for its own commands (everything with a command index except step
/// results, which the step runner writes).
pub fn is_command_record(body: &EventBody) -> bool {
    body.command_index().is_some()
        && !matches!(
            body,
            EventBody::StepCompleted { .. } | EventBody::StepFailed { .. }
        )
}

/// Whether a record issued after a replay is the same command as the one recorded live. Values
/// that come from the environment (times, random values, generated tokens) may differ.
fn same_command(issued: &EventBody, recorded: &EventBody) -> bool {
    match (issued, recorded) {
        (
            EventBody::HookCreated {
                generated: false, ..
            },
            EventBody::HookCreated { .. },
        ) => issued == recorded,
        (
            EventBody::HookCreated {
                cmd,
                token,
                generated: false,
                ..
            },
            EventBody::HookConflict {
                cmd: c, token: t, ..
            },
        ) => cmd == c && token == t,
        (
            EventBody::HookDisposed { cmd, hook_cmd, .. },
            EventBody::HookDisposed {
                cmd: c,
                hook_cmd: h,
                ..
            },
        ) => cmd == c && hook_cmd == h,
        _ => issued.kind() == recorded.kind() && issued.command_index() == recorded.command_index(),
    }
}

/// The journal, one entry a line, for failure messages.
pub fn dump(journal: &[Event]) -> String {
    let mut out = String::new();
    for e in journal {
        let body = serde_json::to_string(&e.body).unwrap_or_else(|err| err.to_string());
        let _ = writeln!(out, "  {:>4} @{} {body}", e.seq, e.at_ms);
    }
    out
}

/// Assert two journals are equal, pointing at the first entry that differs.
pub fn assert_same_journal(actual: &[Event], expected: &[Event], context: &str) {
    if let Some(i) =
        (0..actual.len().max(expected.len())).find(|&i| actual.get(i) != expected.get(i))
    {
        panic!(
            "{context}: journals differ at entry {}:\n  got      {:?}\n  expected {:?}\ngot:\n{}expected:\n{}",
            i + 1,
            actual.get(i),
            expected.get(i),
            dump(actual),
            dump(expected)
        );
    }
}

/// A tiny deterministic generator (xorshift64) for tests that shuffle deliveries.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator (a zero seed is replaced).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// `true` with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next_u64() % den < num
    }
}
