//! A hook thread between two attempts: when its next attempt is due, and waiting for it (or
//! for a cancel request) before the attempt is rebuilt by replay.

use std::sync::atomic::Ordering;
use std::sync::Arc as StdArc;

use tether_core::{ErasedWorkflow, Event, EventBody, Progress, RunMachine};
use tether_store::WriteOp;
use tokio::sync::mpsc;

use super::{Actor, ActorMsg, Exit, Mail};

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
impl Actor {
    /// Start the run's current attempt from `journal`: for a hook thread between two
    /// attempts, first wait on the engine's clock until the next attempt's `retry_at_ms`
    /// (no code of it runs before), then read the journal again (entries that came meanwhile)
    /// and rebuild the run by replay.
    pub(super) async fn start_attempt(
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
            self.inner.new_runs.first_flush_done(&self.run_id);
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
                                self.inner.writer.write_deferred(WriteOp::Checkpoint {
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
                            if self.inner.live.try_evict(&self.run_id, self.generation, rx) {
                                return Err(Exit::Evicted);
                            }
                        }
                    }
                }
                wakeup = &mut timer => {
                    // Busy before the wait stops counting as due.
                    self.busy = Some(self.inner.activity.ticket());
                    drop(wakeup);
                }
            }
        }
    }
}
