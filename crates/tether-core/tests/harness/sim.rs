//! The run driver, [`Sim`]: one run and the host around it (journal, clock, step runner,
//! deliveries from the outside world), plus the [`Snapshot`]s of what the host saw after each
//! entry. How a commit completes records is in `store.rs`; the replay checks in `trio.rs`.

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};

use serde_json::Value;
use tether_core::{
    CommandIndex, Deadline, DueTimer, ErasedWorkflow, Event, EventBody, Progress, ReplayError,
    RunMachine, StepTask, ThreadInfo, ERROR_ENVELOPE,
};

use super::{dump, execute, SharedStore, SimEnv, Store, RUN_ID, START_MS, WORKFLOW};

/// What the host can observe of a run after an entry was fed; recorded for every live entry so
/// that replays can be compared with the live run at the same point.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Snapshot {
    pub(super) progress: Progress,
    pub(super) pending_timers: Vec<DueTimer>,
    pub(super) pending_deadlines: Vec<Deadline>,
    pub(super) steps_in_flight: usize,
    pub(super) drawn: u64,
    pub(super) attempt: u32,
}

impl Snapshot {
    pub(super) fn of(machine: &RunMachine, progress: &Progress, env: &SimEnv) -> Snapshot {
        Snapshot {
            progress: progress.clone(),
            pending_timers: machine.pending_timers(),
            pending_deadlines: machine.pending_deadlines(),
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
    pub(super) run_id: String,
    pub(super) workflow: Arc<dyn ErasedWorkflow>,
    /// The clock and random source of the live run.
    pub env: Arc<SimEnv>,
    pub(super) journal: Vec<Event>,
    pub(super) machine: RunMachine,
    pub(super) progress: Progress,
    /// Steps the machine asked for that have not run yet.
    pub(super) queued_steps: Vec<StepTask>,
    /// Tokens held by active hooks of *other* runs: token -> holder run.
    pub(super) tokens_elsewhere: HashMap<String, String>,
    /// `snapshots[seq - 1]`: the state right after entry `seq` was fed.
    pub(super) snapshots: Vec<Snapshot>,
    /// The namespace's store (shared with the run's hook threads).
    pub(super) store: SharedStore,
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

    /// Commit the machine's new command records, in order, until it issues no more; then, if
    /// the workflow returned, append the terminal entry.
    ///
    /// A hook thread that failed with attempts left gets `AttemptFailed` instead, and its next
    /// attempt is rebuilt by replay at once; the records of that attempt wait for the next
    /// commit (the engine waits for the back-off first). One that failed for good signals its
    /// `fail_signal` with the error envelope, and one that completed without sending its
    /// exec signal sends its output on it, as the engine does.
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
        // A thread that completes without sending its exec signal sends its output on it.
        let exec_signal = match &end {
            EventBody::RunCompleted { output } => self
                .machine
                .exec_signal_unsent()
                .map(|id| (id, output.clone())),
            _ => None,
        };
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
        if let Some((signal_id, output)) = exec_signal {
            self.signal(&signal_id, output);
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

    /// Move the clock forward by `advance_ms`, then deliver every deadline that is due
    /// (committed timers fire, hooks expire), earliest first, as the engine does. Returns the
    /// command indices of the fired timers and expired hooks.
    pub fn fire_due_timers(&mut self, advance_ms: u64) -> Vec<CommandIndex> {
        self.env.advance(advance_ms);
        let mut fired = Vec::new();
        while !matches!(self.progress, Progress::Finished(_)) {
            let now = self.env.now_ms();
            let due = self
                .machine
                .pending_deadlines()
                .into_iter()
                .find(|d| d.at_ms <= now && !fired.contains(&d.cmd));
            let Some(due) = due else { break };
            fired.push(due.cmd);
            self.deliver(due.entry);
        }
        fired
    }

    /// Move the clock to the earliest pending deadline (if it is ahead) and deliver it (a
    /// timer fires, or a hook expires).
    pub fn fire_next_timer(&mut self) -> Option<CommandIndex> {
        let due = self.machine.pending_deadlines().into_iter().next()?;
        if due.at_ms > self.env.now_ms() {
            self.env.advance_to(due.at_ms);
        }
        self.deliver(due.entry);
        Some(due.cmd)
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

    /// `(hook_cmd, token)` of the hooks created and neither disposed nor expired, according to
    /// the journal.
    pub fn active_hooks(&self) -> Vec<(CommandIndex, String)> {
        let mut active = Vec::new();
        for e in &self.journal {
            match &e.body {
                EventBody::HookCreated { cmd, token, .. } => active.push((*cmd, token.clone())),
                EventBody::HookDisposed { hook_cmd, .. }
                | EventBody::HookExpired { hook_cmd, .. } => active.retain(|(c, _)| c != hook_cmd),
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
}
