//! One live run: a task that owns the run's [`RunMachine`], feeds it the run's committed
//! journal entries in order, writes what the workflow decided, runs its steps and fires its
//! timers. A resume reaches it as a `HookReceived` entry in its inbox: no replay on the hot path.
//!
//! The actor writes through the group-commit writer and waits for each of its writes to
//! commit before going on; committed entries come back through its inbox (they are applied
//! in journal order like any other entry, which keeps live execution and replay identical).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use std::sync::Arc as StdArc;
use tether_core::{ErasedWorkflow, Event, EventBody, Progress, RunMachine, RunStatus};
use tether_store::{Fence, OpOutcome, OpRejected, StoreError, WakeAt, WriteOp};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{debug, info_span, warn, Instrument};

use crate::activity::Ticket;
use crate::engine::Inner;
use crate::start::Seed;
use crate::step_runner::run_step;

/// A message to a live run.
#[derive(Debug)]
pub(crate) enum ActorMsg {
    /// Committed journal entries of this run, in order.
    Events(Vec<Event>, Delivery),
    /// The cache is full: leave if idle.
    Evict,
    /// Another process committed entries up to `last_seq` (a `LISTEN/NOTIFY` hint).
    Poke {
        /// The run's last seq after that commit.
        last_seq: u64,
    },
}

/// A message in a live run's inbox, with the ticket that counts it as work in flight until
/// the run has handled it (see `activity.rs`).
#[derive(Debug)]
pub(crate) struct Mail {
    pub msg: ActorMsg,
    pub ticket: Ticket,
}

/// How committed entries reached the actor: when their group commit returned, and the span
/// of the request that wrote them (a resume's apply span is its child).
#[derive(Debug)]
pub(crate) struct Delivery {
    pub committed: std::time::Instant,
    pub span: tracing::Span,
}

/// Why an actor stopped.
#[derive(Debug)]
enum Exit {
    /// The run ended (or was already over, or does not exist).
    Done,
    /// Evicted while idle; already removed from the cache.
    Evicted,
    /// Code and journal disagree; the run is marked and left alone until restart.
    Blocked,
    /// A storage failure; rebuild later.
    Failed(String),
    /// Another node holds the run (its claim was refused, or this node's was fenced off).
    NotMine,
}

/// How [`Actor::finish`] left the run.
enum Finish {
    /// The actor stops.
    Exit(Exit),
    /// A hook thread's attempt failed and was journaled (`AttemptFailed`); the next one
    /// starts at its `retry_at_ms`.
    Retry,
}

/// When the next attempt of a hook thread whose journal is `journal` may start: the
/// `retry_at_ms` of its last `AttemptFailed`, unless that attempt has already begun (a command
/// record follows) or the run was asked to cancel since (it then starts at once, and ends).
/// `None` when there is nothing to wait for.
pub(crate) fn retry_due(journal: &[Event]) -> Option<u64> {
    let i = journal
        .iter()
        .rposition(|e| matches!(e.body, EventBody::AttemptFailed { .. }))?;
    let EventBody::AttemptFailed { retry_at_ms, .. } = journal[i].body else {
        return None;
    };
    let begun = journal[i + 1..].iter().any(|e| {
        e.body.command_index().is_some() || matches!(e.body, EventBody::CancelRequested { .. })
    });
    (!begun).then_some(retry_at_ms)
}

pub(crate) async fn run_actor(
    inner: Arc<Inner>,
    run_id: String,
    generation: u64,
    mut rx: mpsc::UnboundedReceiver<Mail>,
    idle: Arc<AtomicBool>,
    applied: tokio::sync::watch::Sender<u64>,
    starting: Ticket,
) {
    let span = info_span!("run", run_id = %run_id);
    let (exit, busy) = async {
        let mut actor = Actor {
            inner: inner.clone(),
            run_id: run_id.clone(),
            generation,
            idle,
            applied,
            steps: JoinSet::new(),
            fired_sent: HashSet::new(),
            status_sent: None,
            wake_sent: None,
            checkpoint_sent: 0,
            result_after: None,
            announced: false,
            fence: None,
            busy: Some(starting),
        };
        let exit = actor.run(&mut rx).await;
        // Give the run up for others, unless it ended (the store cleared its owner) or is
        // held elsewhere anyway.
        if let (Some(fence), Exit::Evicted | Exit::Blocked | Exit::Failed(_)) =
            (&actor.fence, &exit)
        {
            inner.write_detached(WriteOp::Release {
                run_id: run_id.clone(),
                fence: fence.clone(),
            });
        }
        // Still busy until the run has left the cache (below).
        let busy = actor.busy.take().unwrap_or_else(|| actor.inner.ticket());
        (exit, busy)
    }
    .instrument(span)
    .await;
    inner.first_flush_done(&run_id);
    match exit {
        Exit::Evicted => debug!(%run_id, "evicted"),
        Exit::Done => inner.remove_live(&run_id, generation),
        Exit::Blocked => {
            inner.remove_live(&run_id, generation);
            inner.blocked.lock().insert(run_id);
        }
        Exit::NotMine => {
            debug!(%run_id, ?exit, "run leaves this node's memory");
            inner.remove_live(&run_id, generation);
        }
        Exit::Failed(why) => {
            warn!(%run_id, %why, "run stopped on a storage failure; it will be rebuilt");
            inner.remove_live(&run_id, generation);
            inner.wake_later(run_id);
        }
    }
    drop(busy);
}

struct Actor {
    inner: Arc<Inner>,
    run_id: String,
    generation: u64,
    idle: Arc<AtomicBool>,
    applied: tokio::sync::watch::Sender<u64>,
    steps: JoinSet<(EventBody, Ticket)>,
    fired_sent: HashSet<u32>,
    status_sent: Option<RunStatus>,
    wake_sent: Option<Option<u64>>,
    checkpoint_sent: u64,
    /// A step result this actor wrote is committed and waits in the inbox, not yet applied
    /// (the machine's last `seq` when it was written: the result comes after it). The run is
    /// still busy, so no status change is written meanwhile: without this, each step would
    /// write `suspended` and then `running` again. A message with only entries the machine
    /// already has (the run's own `RunStarted`, handed over by the commit that created it)
    /// does not count as the result.
    result_after: Option<u64>,
    announced: bool,
    /// This actor's claim on the run; every write carries it.
    fence: Option<Fence>,
    /// Counts this run as work in flight while it is between two waits (`None` while it
    /// waits in `run`'s `select!`; see `activity.rs`).
    busy: Option<Ticket>,
}

impl Actor {
    async fn run(&mut self, rx: &mut mpsc::UnboundedReceiver<Mail>) -> Exit {
        let (workflow, journal) = match self.load().await {
            Ok(Some(x)) => x,
            Ok(None) => return Exit::Done,
            Err(exit) => return exit,
        };
        // A hook thread between two attempts (after a restart, an eviction, or woken by an
        // entry or the poller) waits out its back-off before the next attempt runs any code.
        let (mut machine, mut progress) = match self.start_attempt(rx, &workflow, journal).await {
            Ok(x) => x,
            Err(exit) => return exit,
        };
        loop {
            if let Progress::Finished(end) = &progress {
                match self.finish(&mut machine, end.clone()).await {
                    Finish::Exit(exit) => return exit,
                    Finish::Retry => {
                        // The failed attempt's leftovers go: its steps (a result of theirs
                        // must not land in the next attempt), its timers' marks (command
                        // indices start over).
                        self.steps.shutdown().await;
                        self.fired_sent.clear();
                        self.result_after = None;
                        drop(machine);
                        let journal = match self.read_journal().await {
                            Ok(j) => j,
                            Err(exit) => return exit,
                        };
                        (machine, progress) = match self.start_attempt(rx, &workflow, journal).await
                        {
                            Ok(x) => x,
                            Err(exit) => return exit,
                        };
                        continue;
                    }
                }
            }
            for task in machine.take_step_tasks() {
                let inner = self.inner.clone();
                let run_id = self.run_id.clone();
                let ticket = self.inner.ticket();
                self.steps.spawn(run_step(inner, run_id, task, ticket));
            }
            if let Err(exit) = self.flush(&mut machine).await {
                return exit;
            }
            if !self.announced {
                self.announced = true;
                self.inner.first_flush_done(&self.run_id);
            }

            let deadline = machine
                .pending_timers()
                .into_iter()
                .filter(|t| !self.fired_sent.contains(&t.cmd))
                .map(|t| t.fire_at_ms)
                .min();
            // Due timers are fired in `fire_at_ms` order, then command order (the order of
            // `pending_timers`). A manual clock registers the wait here, before the run stops
            // counting as busy below.
            let timer = self.inner.clock().wait_until(deadline);
            let mut timer = std::pin::pin!(timer);
            // A run marked running is rebuilt after a crash whatever its mark says, so the
            // mark only matters once it rests (suspended): no checkpoint per step.
            if machine.last_seq() > self.checkpoint_sent
                && self.status_sent != Some(RunStatus::Running)
            {
                // Not awaited: it rides along with the next group commit. After a crash, runs
                // with entries past their checkpoint are rebuilt (a spurious rebuild is cheap,
                // a missed one would strand a payload).
                self.checkpoint_sent = machine.last_seq();
                self.inner.write_detached(WriteOp::Checkpoint {
                    run_id: self.run_id.clone(),
                    applied_seq: self.checkpoint_sent,
                });
            }
            self.applied.send_replace(machine.last_seq());
            self.idle.store(self.steps.is_empty(), Ordering::Release);
            // Waiting: what can wake the run (a message, a step, the timer) is counted itself.
            self.busy = None;
            tokio::select! {
                mail = rx.recv() => match mail.map(|m| {
                    self.busy = Some(m.ticket);
                    m.msg
                }) {
                    None => return Exit::Done,
                    Some(ActorMsg::Events(events, delivery)) => {
                        tether_store::crash_point!("actor.before_apply");
                        for e in events {
                            let resumed = matches!(e.body, EventBody::HookReceived { .. });
                            let span = crate::metrics::apply_span(
                                resumed,
                                &delivery.span,
                                &self.run_id,
                                e.seq,
                            );
                            match self.feed(&mut machine, e).instrument(span).await {
                                Ok(p) => progress = p,
                                Err(exit) => return exit,
                            }
                            if resumed {
                                self.inner.metrics.resume_woke(delivery.committed.elapsed());
                            }
                            if matches!(progress, Progress::Finished(_)) {
                                break;
                            }
                        }
                    }
                    Some(ActorMsg::Poke { last_seq }) => {
                        if last_seq > machine.last_seq() {
                            tether_store::crash_point!("actor.before_apply");
                            match self.catch_up(&mut machine).await {
                                Ok(p) => progress = p,
                                Err(exit) => return exit,
                            }
                        }
                    }
                    Some(ActorMsg::Evict) => {
                        if self.steps.is_empty()
                            && self.inner.try_evict(&self.run_id, self.generation, rx)
                        {
                            return Exit::Evicted;
                        }
                    }
                },
                Some(done) = self.steps.join_next(), if !self.steps.is_empty() => {
                    let body = match done {
                        Ok((body, ticket)) => {
                            self.busy = Some(ticket);
                            body
                        }
                        Err(e) => {
                            self.busy = Some(self.inner.ticket());
                            return Exit::Failed(format!("step task ended abnormally: {e}"));
                        }
                    };
                    tether_store::crash_point!("step.before_journal");
                    if let Err(exit) = self.append(vec![body], None, WakeAt::Keep).await {
                        return exit;
                    }
                    self.result_after = Some(machine.last_seq());
                }
                wakeup = &mut timer, if deadline.is_some() => {
                    // Busy before the wait stops counting as due.
                    self.busy = Some(self.inner.ticket());
                    drop(wakeup);
                    let now = self.inner.now_ms();
                    let mut fired = Vec::new();
                    for t in machine.pending_timers() {
                        if t.fire_at_ms <= now && self.fired_sent.insert(t.cmd) {
                            fired.push(EventBody::TimerFired { cmd: t.cmd });
                        }
                    }
                    tether_store::crash_point!("timer.before_fire");
                    if !fired.is_empty() {
                        if let Err(exit) = self.append(fired, None, WakeAt::Keep).await {
                            return exit;
                        }
                    }
                }
            }
        }
    }

    /// The workflow returned. A hook thread that failed with attempts left journals the
    /// failed attempt (the next one starts after its back-off, see `start_attempt`); one that
    /// failed for good signals its `exec_hook` caller the error, and one that completed
    /// without sending its `exec_hook` signal sends its output on it (either in the same
    /// transaction as its end); anything else just ends.
    async fn finish(&mut self, machine: &mut RunMachine, end: EventBody) -> Finish {
        let mut events = machine.take_outbox();
        let thread = machine.thread().cloned();
        let attempt = machine.attempt();
        let signal = match (&end, &thread) {
            (EventBody::RunFailed { error }, Some(thread))
                if attempt < thread.retry.maximum_attempts.max(1) =>
            {
                let retry_at =
                    self.inner.now_ms() + thread.retry.delay_after(attempt).as_millis() as u64;
                warn!(run_id = %self.run_id, attempt, error = %error, "hook thread failed; it will run again");
                events.push(EventBody::AttemptFailed {
                    attempt,
                    error: error.clone(),
                    retry_at_ms: retry_at,
                });
                let wake = WakeAt::Set(Some(retry_at));
                return match self.append(events, Some(RunStatus::Suspended), wake).await {
                    Ok(_) => {
                        self.status_sent = Some(RunStatus::Suspended);
                        self.wake_sent = Some(Some(retry_at));
                        Finish::Retry
                    }
                    Err(exit) => Finish::Exit(exit),
                };
            }
            (EventBody::RunFailed { error }, Some(thread)) => {
                thread.fail_signal.clone().map(|id| {
                    (
                        id,
                        serde_json::json!({ tether_core::ERROR_ENVELOPE: error }),
                    )
                })
            }
            (EventBody::RunCompleted { output }, Some(_)) => {
                machine.exec_signal_unsent().map(|id| (id, output.clone()))
            }
            _ => None,
        };
        events.push(end);
        let Some((signal_id, payload)) = signal else {
            return Finish::Exit(match self.append(events, None, WakeAt::Keep).await {
                Ok(_) => Exit::Done,
                Err(exit) => exit,
            });
        };
        let ops = vec![
            WriteOp::Append {
                run_id: self.run_id.clone(),
                events,
                status: None,
                wake_at: WakeAt::Keep,
                fence: self.fence.clone(),
                at_ms: self.inner.now_ms(),
            },
            WriteOp::Signal {
                signal_id,
                payload,
                at_ms: self.inner.now_ms(),
            },
        ];
        Finish::Exit(match self.inner.write_all(ops).await {
            Ok(results) => match results.first() {
                Some(Err(OpRejected::Fenced { .. })) => Exit::NotMine,
                _ => Exit::Done,
            },
            Err(e) => Exit::Failed(e.to_string()),
        })
    }

    /// Start the run's current attempt from `journal`: for a hook thread between two
    /// attempts, first wait on the engine's clock until the next attempt's `retry_at_ms`
    /// (no code of it runs before), then read the journal again (entries that came meanwhile)
    /// and rebuild the run by replay.
    async fn start_attempt(
        &mut self,
        rx: &mut mpsc::UnboundedReceiver<Mail>,
        workflow: &StdArc<dyn ErasedWorkflow>,
        mut journal: Vec<Event>,
    ) -> Result<(RunMachine, Progress), Exit> {
        if let Some(at) = retry_due(&journal) {
            if self.inner.now_ms() < at {
                self.wait_retry(rx, at).await?;
                journal = self.read_journal().await?;
            }
        }
        match self.rebuild(workflow.as_ref(), &journal).await? {
            Some(x) => Ok(x),
            None => Err(Exit::Done),
        }
    }

    /// Wait until the clock reads `at` (a hook thread's next attempt), or until the run is
    /// asked to cancel (the attempt then starts at once and ends cancelled). Entries arriving
    /// meanwhile stay in the store (the attempt reads them); the run may be evicted.
    async fn wait_retry(
        &mut self,
        rx: &mut mpsc::UnboundedReceiver<Mail>,
        at: u64,
    ) -> Result<(), Exit> {
        loop {
            if self.inner.now_ms() >= at {
                return Ok(());
            }
            // Registered with a manual clock before the run stops counting as busy.
            let timer = self.inner.clock().wait_until(Some(at));
            let mut timer = std::pin::pin!(timer);
            self.idle.store(true, Ordering::Release);
            self.inner.first_flush_done(&self.run_id);
            self.busy = None;
            tokio::select! {
                mail = rx.recv() => {
                    let Some(mail) = mail else { return Err(Exit::Done) };
                    self.busy = Some(mail.ticket);
                    match mail.msg {
                        ActorMsg::Events(events, _) => {
                            if events
                                .iter()
                                .any(|e| matches!(e.body, EventBody::CancelRequested { .. }))
                            {
                                return Ok(());
                            }
                            // Nothing before `retry_at` needs this run (its `wake_at` is
                            // `retry_at`): should it leave memory, the poller need not take it
                            // back before then.
                            let last = events.last().map_or(0, |e| e.seq);
                            if last > self.checkpoint_sent {
                                self.checkpoint_sent = last;
                                self.inner.write_detached(WriteOp::Checkpoint {
                                    run_id: self.run_id.clone(),
                                    applied_seq: last,
                                });
                            }
                        }
                        ActorMsg::Poke { .. } => {
                            // Another node wrote: a cancel request, maybe.
                            if retry_due(&self.read_journal().await?).is_none() {
                                return Ok(());
                            }
                        }
                        ActorMsg::Evict => {
                            if self.inner.try_evict(&self.run_id, self.generation, rx) {
                                return Err(Exit::Evicted);
                            }
                        }
                    }
                }
                wakeup = &mut timer => {
                    // Busy before the wait stops counting as due.
                    self.busy = Some(self.inner.ticket());
                    drop(wakeup);
                }
            }
        }
    }

    /// The run's whole journal, from the store.
    async fn read_journal(&self) -> Result<Vec<Event>, Exit> {
        self.inner
            .store
            .load_journal(&self.run_id, 0)
            .await
            .map_err(|e| Exit::Failed(e.to_string()))
    }

    /// Load and claim the run: its workflow and journal. `Ok(None)`: nothing to run.
    async fn load(&mut self) -> Result<Option<(StdArc<dyn ErasedWorkflow>, Vec<Event>)>, Exit> {
        if let Some(seed) = self.inner.take_seed(&self.run_id) {
            return self.load_seeded(seed).await;
        }
        let inner = &self.inner;
        let record = match inner.store.get_run(&self.run_id).await {
            Ok(Some(r)) if !r.status.is_terminal() => r,
            Ok(_) => return Ok(None),
            Err(e) => return Err(Exit::Failed(e.to_string())),
        };
        let Some(workflow) = inner.registry.get(&record.workflow) else {
            let err = tether_core::ErrorInfo::new(
                "workflow_not_registered",
                format!(
                    "workflow {:?} is not registered on this worker; the run waits for a worker that has it",
                    record.workflow
                ),
            );
            return Err(self.block(err).await);
        };
        let now = self.inner.now_ms();
        let claim = WriteOp::Claim {
            run_id: self.run_id.clone(),
            node: inner.node_id.clone(),
            lease_until_ms: now + inner.config.lease.as_millis() as u64,
            now_ms: now,
        };
        match inner.write(claim).await {
            Ok(Ok(OpOutcome::Claimed { epoch })) => {
                if record.owner.as_ref().is_some_and(|o| *o != inner.node_id) {
                    inner.metrics.lease_taken_over();
                }
                self.fence = Some(Fence {
                    node: inner.node_id.clone(),
                    epoch,
                });
            }
            Ok(Err(OpRejected::Owned { .. })) => return Err(Exit::NotMine),
            Ok(Err(OpRejected::RunFinished { .. } | OpRejected::RunNotFound { .. })) => {
                return Ok(None)
            }
            Ok(other) => return Err(Exit::Failed(format!("claim answered {other:?}"))),
            Err(e) => return Err(Exit::Failed(e.to_string())),
        }
        // Read the journal after the claim: nothing can be appended by a previous owner since.
        let journal = inner
            .store
            .load_journal(&self.run_id, 0)
            .await
            .map_err(|e| Exit::Failed(e.to_string()))?;
        self.status_sent = Some(record.status);
        self.wake_sent = Some(record.wake_at_ms);
        Ok(Some((workflow, journal)))
    }

    /// Rebuild the run by replaying `journal`; a journal the code disagrees with blocks it.
    async fn rebuild(
        &mut self,
        workflow: &dyn ErasedWorkflow,
        journal: &[Event],
    ) -> Result<Option<(RunMachine, Progress)>, Exit> {
        let replay = {
            let _span = info_span!("replay", entries = journal.len()).entered();
            RunMachine::replay(&self.run_id, workflow, self.inner.env.clone(), journal)
        };
        match replay {
            Ok(x) => Ok(Some(x)),
            Err(e) => {
                warn!(run_id = %self.run_id, error = %e, "replay failed");
                Err(self.block(e.to_info()).await)
            }
        }
    }

    /// Build a run this node just created, claimed and marked running in one commit (see
    /// `start.rs`): its journal is the `RunStarted` entry that commit wrote, so nothing is read.
    async fn load_seeded(
        &mut self,
        seed: Seed,
    ) -> Result<Option<(StdArc<dyn ErasedWorkflow>, Vec<Event>)>, Exit> {
        let EventBody::RunStarted { workflow, .. } = &seed.started.body else {
            return Err(Exit::Failed(
                "a run's seed does not start with RunStarted".into(),
            ));
        };
        let Some(workflow) = self.inner.registry.get(workflow) else {
            // `start_run` checked it; only a seed of another engine could get here.
            return Err(Exit::Failed(format!(
                "workflow {workflow:?} is not registered"
            )));
        };
        self.fence = Some(seed.fence);
        self.status_sent = Some(RunStatus::Running);
        self.wake_sent = Some(None);
        Ok(Some((workflow, vec![seed.started])))
    }

    async fn block(&self, error: tether_core::ErrorInfo) -> Exit {
        let op = WriteOp::MarkBlocked {
            run_id: self.run_id.clone(),
            error,
            fence: self.fence.clone(),
            at_ms: self.inner.now_ms(),
        };
        match self.inner.write(op).await {
            Ok(Err(OpRejected::Fenced { .. })) => Exit::NotMine,
            Ok(_) => Exit::Blocked,
            Err(e) => Exit::Failed(e.to_string()),
        }
    }

    /// Apply one committed entry; on a gap in the sequence (entries another process wrote),
    /// read the missing entries first.
    async fn feed(&mut self, machine: &mut RunMachine, e: Event) -> Result<Progress, Exit> {
        if e.seq > machine.last_seq() + 1 {
            return self.catch_up(machine).await;
        }
        self.apply(machine, vec![e]).await
    }

    /// Read and apply every entry past the machine's position.
    async fn catch_up(&mut self, machine: &mut RunMachine) -> Result<Progress, Exit> {
        let events = self
            .inner
            .store
            .load_journal(&self.run_id, machine.last_seq())
            .await
            .map_err(|e| Exit::Failed(e.to_string()))?;
        self.apply(machine, events).await
    }

    async fn apply(
        &mut self,
        machine: &mut RunMachine,
        events: Vec<Event>,
    ) -> Result<Progress, Exit> {
        let mut progress = Progress::Waiting;
        for e in &events {
            progress = match machine.feed(e) {
                Ok(p) => p,
                Err(err) => {
                    warn!(run_id = %self.run_id, error = %err, "journal and code disagree");
                    return Err(self.block(err.to_info()).await);
                }
            };
            if matches!(progress, Progress::Finished(_)) {
                break;
            }
        }
        Ok(progress)
    }

    /// Write new command records and status changes, if any, in one append.
    async fn flush(&mut self, machine: &mut RunMachine) -> Result<(), Exit> {
        let events = machine.take_outbox();
        if self
            .result_after
            .is_some_and(|before| machine.last_seq() > before)
        {
            self.result_after = None;
        }
        let status = if self.steps.is_empty() && self.result_after.is_none() {
            RunStatus::Suspended
        } else {
            RunStatus::Running
        };
        let wake = machine.pending_timers().first().map(|t| t.fire_at_ms);
        let status_change = (self.status_sent != Some(status)).then_some(status);
        let wake_change = if self.wake_sent != Some(wake) {
            WakeAt::Set(wake)
        } else {
            WakeAt::Keep
        };
        if events.is_empty() && status_change.is_none() && wake_change == WakeAt::Keep {
            return Ok(());
        }
        self.append(events, status_change, wake_change).await?;
        self.status_sent = Some(status);
        self.wake_sent = Some(wake);
        Ok(())
    }

    async fn append(
        &self,
        events: Vec<EventBody>,
        status: Option<RunStatus>,
        wake_at: WakeAt,
    ) -> Result<(), Exit> {
        let op = WriteOp::Append {
            run_id: self.run_id.clone(),
            events,
            status,
            wake_at,
            fence: self.fence.clone(),
            at_ms: self.inner.now_ms(),
        };
        match self.inner.write(op).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(OpRejected::Fenced { .. })) => Err(Exit::NotMine),
            Ok(Err(OpRejected::RunFinished { .. } | OpRejected::RunNotFound { .. })) => {
                Err(Exit::Done)
            }
            Ok(Err(other)) => Err(Exit::Failed(other.to_string())),
            Err(e) => Err(Exit::Failed(store_msg(&e))),
        }
    }
}

fn store_msg(e: &StoreError) -> String {
    e.to_string()
}
