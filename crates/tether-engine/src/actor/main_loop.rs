//! The live run's main loop: run the workflow's new steps, write what it decided, then wait
//! for a message, a step's result or the next timer; and feeding committed entries to the
//! run's machine (reading those another process wrote first).

use std::sync::atomic::Ordering;

use tether_core::{Event, EventBody, Progress, RunMachine, RunStatus};
use tether_store::{WakeAt, WriteOp};
use tokio::sync::mpsc;
use tracing::{warn, Instrument};

use super::finish::Finish;
use super::{Actor, ActorMsg, Exit, Mail};
use crate::step_runner::run_step;

impl Actor {
    pub(super) async fn run(&mut self, rx: &mut mpsc::UnboundedReceiver<Mail>) -> Exit {
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
                let ticket = self.inner.activity.ticket();
                self.steps.spawn(run_step(inner, run_id, task, ticket));
            }
            if let Err(exit) = self.flush(&mut machine).await {
                return exit;
            }
            if !self.announced {
                self.announced = true;
                self.inner.new_runs.first_flush_done(&self.run_id);
            }

            let deadline = machine
                .pending_deadlines()
                .into_iter()
                .filter(|d| !self.fired_sent.contains(&d.cmd))
                .map(|d| d.at_ms)
                .min();
            // Due timers fire and due hooks expire in time order, then command order (the
            // order of `pending_deadlines`). A manual clock registers the wait here, before the run stops
            // counting as busy below.
            let timer = self.inner.clock().wait_until(deadline);
            let mut timer = std::pin::pin!(timer);
            // A run marked running is rebuilt after a crash whatever its mark says, so the
            // mark only matters once it rests (suspended): no checkpoint per step.
            if machine.last_seq() > self.checkpoint_sent
                && self.status_sent != Some(RunStatus::Running)
            {
                // Not awaited: it rides along with the next group commit others start (a
                // resume of this run, usually). After a crash, runs with entries past their
                // checkpoint are rebuilt (a spurious rebuild is cheap, a missed one would
                // strand a payload).
                self.checkpoint_sent = machine.last_seq();
                self.inner.writer.write_deferred(WriteOp::Checkpoint {
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
                            && self.inner.live.try_evict(&self.run_id, self.generation, rx)
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
                            self.busy = Some(self.inner.activity.ticket());
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
                    self.busy = Some(self.inner.activity.ticket());
                    drop(wakeup);
                    let now = self.inner.now_ms();
                    let mut fired = Vec::new();
                    for d in machine.pending_deadlines() {
                        if d.at_ms <= now && self.fired_sent.insert(d.cmd) {
                            fired.push(d.entry);
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
            .map_err(Exit::from)?;
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
}
